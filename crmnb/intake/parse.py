"""All reading and writing: CRM exports in (read-only), step hand-offs in and out.

Raw exports are only ever opened for reading. Intake turns an export into a typed
canonical table and lists, rather than hides, every value it could not read.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmnb.errors import DataError
from crmnb.intake.numbers import read_numbers
from crmnb.intake.schema import ROW, TABLES

DATE_FORMATS: tuple[tuple[str, str], ...] = (
    ("%Y-%m-%d %H:%M:%S", "YYYY-MM-DD hh:mm:ss"),
    ("%Y-%m-%d %H:%M", "YYYY-MM-DD hh:mm"),
    ("%Y-%m-%d", "YYYY-MM-DD"),
    ("%Y-%m-%dT%H:%M:%S", "YYYY-MM-DDThh:mm:ss"),
    ("%Y/%m/%d %H:%M:%S", "YYYY/M/D hh:mm:ss"),
    ("%Y/%m/%d %H:%M", "YYYY/M/D hh:mm"),
    ("%Y/%m/%d", "YYYY/M/D"),
    ("%Y年%m月%d日 %H:%M:%S", "YYYY年M月D日 hh:mm:ss"),
    ("%Y年%m月%d日 %H:%M", "YYYY年M月D日 hh:mm"),
    ("%Y年%m月%d日", "YYYY年M月D日"),
)
"""Date formats CRM exports use, tried in order; none puts the day before the month."""


# --------------------------------------------------------------------------- intake
@dataclass
class Intake:
    """A typed canonical table plus what intake found on the way."""

    table: pd.DataFrame
    issues: pd.DataFrame  # table, row, column, value, problem
    formats: pd.DataFrame  # table, column, format, rows
    source: str = ""  # the file, or the database and table, it was read from
    notes: list[str] = field(default_factory=list)  # what intake noticed about the table as a whole
    read_as: dict[str, Any] = field(default_factory=dict)  # encoding and separator of a CSV
    validation: Any = None  # crmnb.intake.checks.Report: what schema validation found
    profile: dict[str, Any] | None = None  # rows, date range and coverage, kept once the rows are dropped
    # whether every finding is the rows' own, so that batches of one table may be taken in apart and joined:
    # False when a column's amounts were read by what the whole column shows (a convention, a currency)
    local: bool = True
    first_seen: dict[tuple[str, str], int] = field(default_factory=dict)  # (column, format): its first row
    batches: int = 0  # how many batches it was taken in (crmnb.intake.stream); 0: whole
    # taken in batches with many unreadable values: ``issues`` holds the first of each column, this file
    # all of them (crmnb.intake.spill), and ``issue_count`` how many there are
    issues_file: Path | None = None
    issue_count: int | None = None

    @property
    def unreadable(self) -> int:
        """Return how many values of the table could not be read (those kept in memory, or all on disk)."""
        return len(self.issues) if self.issue_count is None else self.issue_count

    def summarised(self, name: str) -> Intake:
        """Return this intake without its rows (the table's columns kept), with its :func:`table_profile`:
        what step 2 shows of a table once it is written."""
        profile = self.profile or table_profile(name, self.table)
        # new empty columns: a slice of an Arrow-backed column, even empty, keeps the whole column's buffers
        empty = pd.DataFrame({c: pd.array([], dtype=t) for c, t in self.table.dtypes.items()})
        return dataclasses.replace(self, table=empty, profile=profile)


def table_profile(name: str, df: pd.DataFrame) -> dict[str, Any]:
    """Return a taken-in table's rows, the first and last of its main date and how filled its columns are."""
    spec = TABLES[name]
    dcol = spec.dates[0] if spec.dates else None
    cols = list(spec.columns)
    return {
        "rows": len(df),
        "columns": len(cols),
        "from": df[dcol].min() if dcol and len(df) else pd.NaT,
        "to": df[dcol].max() if dcol and len(df) else pd.NaT,
        "coverage": df[cols].notna().to_numpy().mean() if len(df) else float("nan"),
    }


def all_issues(intakes: dict[str, Intake]) -> pd.DataFrame:
    """Return the unreadable values of every table kept in memory, in the order of the tables (the
    ``intake/issues`` hand-off, unless a table's are on disk: :func:`crmnb.intake.spill.write_issues`)."""
    issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
    return issues.astype({"row": "int64"}) if len(issues) else issues


def all_formats(intakes: dict[str, Intake]) -> pd.DataFrame:
    """Return the date formats of every table, in the order of the tables (the ``intake/formats`` hand-off)."""
    return pd.concat([g.formats for g in intakes.values()], ignore_index=True)


ISSUE_COLUMNS = ["table", "row", "column", "value", "problem"]


DEFAULT_TIMEZONE = "Asia/Shanghai"
"""The time zone a case's times are in unless its case file sets ``timezone``."""


def parse_dates(values: pd.Series, timezone: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Parse text dates in any of :data:`DATE_FORMATS`.

    Returns the parsed datetimes (NaT where empty or unreadable) and, per value, the
    label of the format it was read with ('' for empty, None for unreadable). A time
    written with its zone (``…Z``, ``+00:00``, ``+0800``) is converted to ``timezone``
    (an IANA name) and labelled ``… ±zone → <timezone>``; without ``timezone`` the
    time is kept as written. Times without a zone are local times, kept as written.

    >>> parsed, fmt = parse_dates(pd.Series(["2025-03-04 10:00:00", "2025/3/4 10:05", "x"]))
    >>> list(fmt)
    ['YYYY-MM-DD hh:mm:ss', 'YYYY/M/D hh:mm', None]
    """
    text = _trimmed(values.astype("string"))
    if not _repeats(text):  # times to the second are mostly distinct: finding the distinct ones costs more
        return _parse_text(text.set_axis(values.index), timezone)
    # each distinct text is read once: a date column repeats its values (days, times to the minute)
    codes, distinct = pd.factorize(text, use_na_sentinel=True)
    got, how = _parse_text(pd.Series(distinct, dtype="string"), timezone)
    codes = np.where(codes < 0, len(distinct), codes)  # a missing value: the NaT and '' put after the last
    out = np.append(got.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))[codes]
    label = np.append(how.to_numpy(dtype=object), np.array([""], dtype=object))[codes]
    return pd.Series(out, index=values.index, dtype="datetime64[ns]"), pd.Series(
        label, index=values.index, dtype=object
    )


def _repeats(text: pd.Series, sample: int = 20_000) -> bool:
    """Return True when a column's values repeat enough (in a sample spread over it) to be read once each."""
    return len(text) <= sample or distinct_share(text, sample) < 0.5


def distinct_share(values: pd.Series, sample: int = 20_000) -> float:
    """Return the share of distinct values (missing ones not counted) among ``sample`` spread over a column."""
    spread = values if len(values) <= sample else values.iloc[:: len(values) // sample]
    return spread.nunique() / max(len(spread), 1)


def _parse_text(text: pd.Series, timezone: str | None) -> tuple[pd.Series, pd.Series]:
    """Return :func:`parse_dates` of text already trimmed, one value at a time (each value on its own)."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    # a list of None: pd.Series(None, dtype=object) holds NaN, not None, under pandas 3
    label = pd.Series([None] * len(text), index=text.index, dtype=object)
    empty = text.isna() | (text == "")
    label[empty] = ""
    todo = ~empty
    _parse_formats(text, todo, out, label, "")
    if todo.any():
        # ISO timestamps from CRM APIs: fractions of a second dropped, a time zone converted
        # (2025-03-04T02:00:00.000Z reads as 2025-03-04 10:00:00 in Asia/Shanghai)
        m = text[todo].str.extract(_ISO_TAIL)
        has_tail = m[0].notna() & (m[1].notna() | m[2].notna())
        if has_tail.any():
            stripped = m.loc[has_tail, 0]
            zoned = " ±zone" + (f" → {timezone}" if timezone else "")
            suffix = pd.Series(np.where(m.loc[has_tail, 2].notna(), zoned, " .fraction"), index=stripped.index)
            sub_todo = pd.Series(True, index=stripped.index)
            _parse_formats(stripped, sub_todo, out, label, suffix)
            todo.loc[stripped.index[~sub_todo.to_numpy()]] = False
            if timezone:
                _to_zone(out, m.loc[has_tail, 2].dropna(), timezone)
    return out, label


def _to_zone(out: pd.Series, zones: pd.Series, timezone: str) -> None:
    """Convert the times in ``out`` written with a zone (``zones``: Z, +08:00, -0500) to ``timezone``."""
    zones = zones[out[zones.index].notna().to_numpy()]
    if not len(zones):
        return
    parts = zones.str.extract(r"^(?P<sign>[+-])(?P<h>\d{2}):?(?P<m>\d{2})$")
    minutes = (parts["h"].astype(float) * 60 + parts["m"].astype(float)).fillna(0)  # Z: UTC
    minutes = minutes.where(parts["sign"] != "-", -minutes)
    utc = out[zones.index] - pd.to_timedelta(minutes, unit="min")
    out[zones.index] = utc.dt.tz_localize("UTC").dt.tz_convert(timezone).dt.tz_localize(None)


_ISO_TAIL = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$"


_FIELDS = (
    r"^(?P<y>\d{4})\D+(?P<m>\d{1,2})\D+(?P<d>\d{1,2})(?:\D+(?P<H>\d{1,2})\D+(?P<M>\d{1,2})(?:\D+(?P<S>\d{1,2}))?)?"
)
"""The numbers of a date in any of :data:`DATE_FORMATS`, in order: year, month, day, hour, minute, second."""

_SAMPLE = _dt.datetime(2000, 11, 22, 13, 44, 55)
"""A date whose fields are all two digits and all different: where each field sits in a format's text."""


def _written_as_parsed(arr: pa.Array, got: pa.Array, fmt: str) -> pa.Array:
    """Return, per value, whether the day and second written in the text are those of the parsed date.

    Values as wide as the format with every field padded have each field at a fixed
    place and are read by slicing; others (2025/3/4) by a regular expression, which
    is slower but rare. Both are compared the same way.
    """
    sample = _SAMPLE.strftime(fmt)
    fields = [
        (sample.index(str(v)), group, part)  # ``index`` counts characters, as Arrow's utf8 slicing does
        for v, group, part in ((22, "d", pc.day), (55, "S", pc.second))
        if str(v) in sample
    ]

    def agree(written: pa.Array, parsed: pa.Array) -> np.ndarray:
        same = pc.fill_null(pc.equal(pc.cast(written, pa.int64()), parsed), False)
        return np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)

    parsed = np.asarray(pc.is_valid(got).to_numpy(zero_copy_only=False), dtype=bool)
    fixed = parsed & np.asarray(pc.equal(pc.utf8_length(arr), len(sample)).to_numpy(zero_copy_only=False), dtype=bool)
    # as wide as the format, yet laid out otherwise ("2024-1-02  10:05:01": a month of one digit, two
    # spaces) when a field's place does not hold two digits: such values go to the regular expression
    slices = [pc.utf8_slice_codeunits(arr, at, at + 2) for at, _, _ in fields]
    for written in slices:
        two = pc.fill_null(pc.match_substring_regex(written, "^[0-9]{2}$"), False)
        fixed &= np.asarray(two.to_numpy(zero_copy_only=False), dtype=bool)
    fixed_pa = pa.array(fixed)
    ok = np.ones(len(arr), dtype=bool)
    for written, (_, _, part) in zip(slices, fields):
        ok &= ~fixed | agree(pc.if_else(fixed_pa, written, "0"), part(got))
    idx = np.flatnonzero(parsed & ~fixed)
    if len(idx):
        sub_got = pc.take(got, idx)
        groups = pc.extract_regex(pc.take(arr, idx), _FIELDS)
        sub_ok = np.ones(len(idx), dtype=bool)
        for _, group, part in fields:
            sub_ok &= agree(pc.struct_field(groups, group), part(sub_got))
        ok[idx] = sub_ok
    return pa.array(ok)


def _may_be_moved(got: pa.Array, fmt: str) -> np.ndarray:
    """Return, per parsed value, whether Arrow may have moved it from the date written: only those are checked.

    Arrow takes a day 1-31 and a second 0-61, and moves what overflows forward: the 29th to 31st
    of a short month land on the 1st to 3rd of the next, second 60 or 61 on second 0 or 1. A value
    parsed to any other day and second was read as written.
    """
    moved = pc.less_equal(pc.day(got), 3)
    if "%S" in fmt:
        moved = pc.or_(moved, pc.less_equal(pc.second(got), 1))
    return np.asarray(pc.fill_null(moved, False).to_numpy(zero_copy_only=False), dtype=bool)


def _strptime(text: pd.Series, fmt: str) -> pd.Series:
    """Parse ``text`` with ``fmt`` in Arrow's vectorised strptime: NaT where it does not match.

    Arrow is lenient where pandas is not (2025-02-30 becomes 2 March, second 60 the next
    minute), so a value counts only when the date it gives has the day and the second
    written in the text; that rejects exactly the impossible dates.
    """
    arr = pa.array(text.astype("str"), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    got = pc.strptime(arr, format=fmt, unit="ns", error_is_null=True)
    ok = np.ones(len(arr), dtype=bool)
    idx = np.flatnonzero(_may_be_moved(got, fmt))
    if len(idx):
        ok[idx] = _written_as_parsed(pc.take(arr, idx), pc.take(got, idx), fmt).to_numpy(zero_copy_only=False)
    got = pc.if_else(pa.array(ok), got, pa.scalar(None, got.type))
    return pd.Series(got.to_numpy(zero_copy_only=False), index=text.index).astype("datetime64[ns]")


def _parse_formats(text: pd.Series, todo: pd.Series, out: pd.Series, label: pd.Series, suffix) -> None:
    for fmt, name in DATE_FORMATS:
        if not todo.any():
            break
        got = _strptime(text[todo], fmt)
        ok = got.notna()
        idx = got.index[ok.to_numpy()]
        out.loc[idx] = got[ok]
        label.loc[idx] = name + suffix if isinstance(suffix, str) else name + suffix.loc[idx]
        todo.loc[idx] = False


def intake(
    raw: pd.DataFrame,
    table: str,
    source: str | Path = "",
    decimal: str | None = None,
    timezone: str | None = None,
    first_row: int = 1,
) -> Intake:
    """Turn a text export into the typed canonical ``table``.

    Checks required columns (raising :class:`DataError` naming the file and column),
    adds absent optional columns as missing, types every column, and lists each value
    that could not be read; such a cell becomes missing and the row is judged in cleaning.
    Amounts are read as :func:`crmnb.intake.numbers.read_numbers` says, with the
    source's declared ``decimal`` separator if any; times written with a zone are
    converted to ``timezone`` (default :data:`DEFAULT_TIMEZONE`). ``first_row`` is the export row of the
    first row of ``raw`` (a later batch of a table starts further down).
    """
    spec = TABLES[table]
    where = f"{source} (table '{table}')" if source else f"table '{table}'"
    missing = [c for c in spec.required if c not in raw.columns]
    if missing:
        raise DataError(
            f"{where}: required column(s) missing: {', '.join(missing)}; "
            f"found: {', '.join(map(str, raw.columns)) or 'none'}{_separator_hint(raw, table)}"
        )
    n = len(raw)
    df = pd.DataFrame(index=pd.RangeIndex(n))
    df[ROW] = np.arange(first_row, first_row + n)
    issues: list[pd.DataFrame] = []
    formats: list[dict[str, Any]] = []
    notes: list[str] = []
    local, seen = True, {}
    for col, kind in spec.columns.items():
        if col not in raw.columns:
            df[col] = _absent(kind, df.index)
            continue
        s = raw[col].reset_index(drop=True)
        if kind == "datetime":
            parsed, label = parse_dates(s, timezone or DEFAULT_TIMEZONE)
            bad = label.isna()
            df[col] = parsed
            formats += _formats_of(table, col, label[~bad & (label != "")], first_row, seen)
            if bad.any():
                issues.append(_issues(table, df[ROW][bad], col, s[bad], "unreadable date"))
        elif kind in ("float", "int"):
            got = read_numbers(s, str(source) or "the export", col, table, decimal)
            bad = got.bad
            df[col] = got.values.astype(float)
            notes += got.notes
            local = local and got.local
            if bad.any():
                issues.append(_issues(table, df[ROW][bad], col, s[bad], "not a number"))
        else:
            df[col] = _text(s)
    issue_df = pd.concat(issues, ignore_index=True) if issues else pd.DataFrame(columns=ISSUE_COLUMNS)
    formats_df = pd.DataFrame(formats, columns=["table", "column", "format", "rows"])
    return Intake(df, issue_df, formats_df, notes=notes, local=local, first_seen=seen)


def _formats_of(table: str, col: str, read: pd.Series, first_row: int, seen: dict) -> list[dict[str, Any]]:
    """Return a date column's formats by how many values use each, the most used first; note in ``seen``
    the export row each is first used in (batches of a table are ranked as the whole table would be)."""
    counts = read.value_counts()
    seen.update({(col, f): int(i) + first_row for i, f in read.drop_duplicates().items()})
    return [{"table": table, "column": col, "format": f, "rows": int(k)} for f, k in counts.items()]


def _absent(kind: str, index: pd.Index) -> pd.Series:
    """Return an optional column the export does not have: missing in every row, typed as its kind."""
    out = pd.Series(pd.NaT if kind == "datetime" else np.nan, index=index)
    if kind == "datetime":
        return out.astype("datetime64[ns]")
    return out.astype(object) if kind in ("id", "str") else out


def _text(s: pd.Series) -> pd.Series:
    """Return text with surrounding blanks removed, except a tab or CR before a formula (``\\t=1+1``): that
    value is kept as written, so the workbook still sees and disarms it rather than a bare ``=1+1``."""
    text = s.astype("str")  # Arrow-backed text: a tenth of the memory of objects
    stripped = _trimmed(text)
    # only a value holding a tab or CR can be armed: test those few by the pattern, not every value
    maybe = np.flatnonzero(_holds_any(text, ("\t", "\r")))
    if not len(maybe):
        return stripped
    armed = np.zeros(len(text), dtype=bool)
    armed[maybe] = text.iloc[maybe].str.match(_ARMED).fillna(False).to_numpy(dtype=bool)
    return stripped.where(~armed, text)


def _holds_any(text: pd.Series, parts: tuple[str, ...]) -> np.ndarray:
    """Return, per value, whether it holds any of ``parts`` (plain text, no pattern): Arrow's substring
    search, several times as fast as a character class by regular expression."""
    arr = pa.array(text, type=pa.large_string(), from_pandas=True)
    if not _bytes_hold(arr, parts):  # most columns: no value holds any, told by one scan of the bytes
        return np.zeros(len(arr), dtype=bool)
    found = pc.match_substring(arr, parts[0])
    for part in parts[1:]:
        found = pc.or_(found, pc.match_substring(arr, part))
    return np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool)


def _trimmed(text: pd.Series) -> pd.Series:
    """Return Arrow-backed text with surrounding blanks removed: the text itself when no value can have any."""
    return text.str.strip() if _may_have_blanks(pa.array(text, from_pandas=True)) else text


def _may_have_blanks(arr: pa.Array | pa.ChunkedArray) -> bool:
    """Return False when no value of Arrow text begins or ends with a byte that may be blank: a control
    character, a space, or any byte of a character past ASCII (ids, codes, dates, addresses). Trimming
    such text, as Arrow does (Python's blanks), changes nothing, so it is not done."""
    for chunk in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return True
        _, offsets, data = chunk.buffers()
        if data is None or not len(chunk):
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        at = np.frombuffer(offsets, dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
        if at[-1] == at[0]:
            continue
        held = np.frombuffer(data, dtype=np.uint8)
        # each value's first and last byte; an empty value's lands on a neighbour's byte, which only makes
        # the answer True more often; a byte outside printable ASCII (0x21-0x7E) wraps to 0x5E or more
        first = held[np.minimum(at[:-1], at[-1] - 1)]
        last = held[np.maximum(at[1:] - 1, at[0])]
        if ((first - 0x21) >= 0x5E).any() or ((last - 0x21) >= 0x5E).any():
            return True
    return False


def _bytes_hold(arr: pa.Array | pa.ChunkedArray, parts: tuple[str, ...]) -> bool:
    """Return False when no byte of a text array's values is one of ``parts`` (single ASCII characters):
    then no value holds any. True when one may (or a part is longer): the values are then searched."""
    if any(len(p) != 1 or not p.isascii() for p in parts):
        return True
    for chunk in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        _, offsets, data = chunk.buffers()
        if data is None or not len(chunk):
            continue
        at = np.frombuffer(offsets, dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
        held = np.frombuffer(data, dtype=np.uint8)[at[0] : at[-1]]
        if any(np.any(held == ord(p)) for p in parts):
            return True
    return False


_ARMED = r"\s*[\t\r]\s*[=+\-@]"
"""A formula behind a tab or CR, as a spreadsheet still runs it."""


def _separator_hint(raw: pd.DataFrame, table: str) -> str:
    """Return a hint when the header looks split on another separator than the one used."""
    names = [str(c) for c in raw.columns]
    if len(names) > 2:
        return ""
    for sep, word in (("\t", "tab"), (";", "semicolon"), ("|", "pipe"), (",", "comma")):
        if any(n.count(sep) >= 2 for n in names):
            shown = "tab" if sep == "\t" else sep
            return (
                f"; the header looks {word}-separated ({sep!r}), not split by the separator used: "
                f"declare sep: '{shown}' in data.tables.{table}, or leave sep out to detect it"
            )
    return ""


def _issues(table: str, rows: pd.Series, col: str, values: pd.Series, problem: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "table": table,
            "row": rows.to_numpy(),
            "column": col,
            "value": values.astype(str).to_numpy(),
            "problem": problem,
        }
    )
