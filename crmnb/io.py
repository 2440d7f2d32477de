"""All reading and writing: CRM exports in (read-only), step hand-offs in and out.

Raw exports are only ever opened for reading. Intake turns an export into a typed
canonical table and lists, rather than hides, every value it could not read.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError, HandoffMissing
from .schema import TABLES

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

ROW = "_row"
"""Column holding each row's 1-based position in its export, kept through every step."""


# --------------------------------------------------------------------------- raw exports
def read_export(path: Path, table: str, sheet: str | None = None, *, encoding: str | None = None,
                sep: str | None = None, header_row: int = 1) -> pd.DataFrame:
    """Read one export file as text, exactly as it is, without writing to it.

    CSV is read as UTF-8 (with or without BOM), falling back to GB18030 as Chinese
    Excel saves it (GBK is a subset), with the separator (comma, semicolon, tab, '|')
    that gives the table's columns; ``encoding`` and ``sep`` override the detection.
    Excel reads ``sheet`` (default: the sheet named after the table, else the first)
    with its header on ``header_row``. Raises :class:`DataError` naming the file when
    it is absent, empty or unreadable. See :mod:`crmnb.sources` for SQL sources.
    """
    from .sources import Located, TableSource, _is_excel, read

    spec = TableSource.model_construct(file=str(path), sql=None, encoding=encoding, sep=sep, sheet=sheet,
                                       header_row=header_row, mapping=None)
    loc = Located(table, "excel" if _is_excel(Path(path)) else "csv", spec, path=Path(path))
    return read(loc, list(TABLES[table].columns) if table in TABLES else ()).frame


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
    validation: Any = None  # crmnb.validate.Report: what schema validation found


ISSUE_COLUMNS = ["table", "row", "column", "value", "problem"]


def parse_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse text dates in any of :data:`DATE_FORMATS`.

    Returns the parsed datetimes (NaT where empty or unreadable) and, per value, the
    label of the format it was read with ('' for empty, None for unreadable).

    >>> parsed, fmt = parse_dates(pd.Series(["2025-03-04 10:00:00", "2025/3/4 10:05", "x"]))
    >>> list(fmt)
    ['YYYY-MM-DD hh:mm:ss', 'YYYY/M/D hh:mm', None]
    """
    text = values.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    # a list of None: pd.Series(None, dtype=object) holds NaN, not None, under pandas 3
    label = pd.Series([None] * len(values), index=values.index, dtype=object)
    empty = text.isna() | (text == "")
    label[empty] = ""
    todo = ~empty
    _parse_formats(text, todo, out, label, "")
    if todo.any():
        # ISO timestamps from CRM APIs: fractions of a second dropped, a time zone kept as written
        # (2025-03-04T10:00:00.000+0800 reads as 2025-03-04 10:00:00, the wall-clock time exported)
        m = text[todo].str.extract(_ISO_TAIL)
        has_tail = m[0].notna() & (m[1].notna() | m[2].notna())
        if has_tail.any():
            stripped = m.loc[has_tail, 0]
            suffix = pd.Series(np.where(m.loc[has_tail, 2].notna(), " ±zone", " .fraction"), index=stripped.index)
            sub_todo = pd.Series(True, index=stripped.index)
            _parse_formats(stripped, sub_todo, out, label, suffix)
            todo.loc[stripped.index[~sub_todo.to_numpy()]] = False
    return out, label


_ISO_TAIL = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$"


_FIELDS = r"^(?P<y>\d{4})\D+(?P<m>\d{1,2})\D+(?P<d>\d{1,2})(?:\D+(?P<H>\d{1,2})\D+(?P<M>\d{1,2})(?:\D+(?P<S>\d{1,2}))?)?"
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
    fields = [(sample.index(str(v)), group, part)  # ``index`` counts characters, as Arrow's utf8 slicing does
              for v, group, part in ((22, "d", pc.day), (55, "S", pc.second)) if str(v) in sample]

    def agree(written: pa.Array, parsed: pa.Array) -> np.ndarray:
        same = pc.fill_null(pc.equal(pc.cast(written, pa.int64()), parsed), False)
        return np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)

    parsed = np.asarray(pc.is_valid(got).to_numpy(zero_copy_only=False), dtype=bool)
    fixed = parsed & np.asarray(pc.equal(pc.utf8_length(arr), len(sample)).to_numpy(zero_copy_only=False),
                                dtype=bool)
    fixed_pa = pa.array(fixed)
    ok = np.ones(len(arr), dtype=bool)
    for at, _, part in fields:
        written = pc.if_else(fixed_pa, pc.utf8_slice_codeunits(arr, at, at + 2), "0")
        ok &= ~fixed | agree(written, part(got))
    idx = np.flatnonzero(parsed & ~fixed)
    if len(idx):
        sub_got = pc.take(got, idx)
        groups = pc.extract_regex(pc.take(arr, idx), _FIELDS)
        sub_ok = np.ones(len(idx), dtype=bool)
        for _, group, part in fields:
            sub_ok &= agree(pc.struct_field(groups, group), part(sub_got))
        ok[idx] = sub_ok
    return pa.array(ok)


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
    ok = _written_as_parsed(arr, got, fmt)
    got = pc.if_else(ok, got, pa.scalar(None, got.type))
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


def intake(raw: pd.DataFrame, table: str, source: str | Path = "") -> Intake:
    """Turn a text export into the typed canonical ``table``.

    Checks required columns (raising :class:`DataError` naming the file and column),
    adds absent optional columns as missing, types every column, and lists each value
    that could not be read; such a cell becomes missing and the row is judged in cleaning.
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
    df[ROW] = np.arange(1, n + 1)
    issues: list[pd.DataFrame] = []
    formats: list[dict[str, Any]] = []
    for col, kind in spec.columns.items():
        if col not in raw.columns:
            df[col] = pd.Series(pd.NaT if kind == "datetime" else np.nan, index=df.index)
            if kind == "datetime":
                df[col] = df[col].astype("datetime64[ns]")
            elif kind in ("id", "str"):
                df[col] = df[col].astype(object)
            continue
        s = raw[col].reset_index(drop=True)
        if kind == "datetime":
            parsed, label = parse_dates(s)
            bad = label.isna()
            df[col] = parsed
            counts = label[~bad & (label != "")].value_counts()
            formats += [{"table": table, "column": col, "format": f, "rows": int(k)} for f, k in counts.items()]
            if bad.any():
                issues.append(_issues(table, df[ROW][bad], col, s[bad], "unreadable date"))
        elif kind in ("float", "int"):
            txt = s.astype("string").str.replace(",", "", regex=False).str.strip()
            num = pd.to_numeric(txt, errors="coerce")
            bad = num.isna() & txt.notna() & (txt != "")
            df[col] = num.astype(float)
            if bad.any():
                issues.append(_issues(table, df[ROW][bad], col, s[bad], "not a number"))
        else:
            df[col] = s.astype("str").str.strip()  # Arrow-backed text: a tenth of the memory of objects
    issue_df = pd.concat(issues, ignore_index=True) if issues else pd.DataFrame(columns=ISSUE_COLUMNS)
    return Intake(df, issue_df, pd.DataFrame(formats, columns=["table", "column", "format", "rows"]))


def _separator_hint(raw: pd.DataFrame, table: str) -> str:
    """Return a hint when the header looks split on another separator than the one used."""
    names = [str(c) for c in raw.columns]
    if len(names) > 2:
        return ""
    for sep, word in (("\t", "tab"), (";", "semicolon"), ("|", "pipe"), (",", "comma")):
        if any(n.count(sep) >= 2 for n in names):
            shown = "tab" if sep == "\t" else sep
            return (f"; the header looks {word}-separated ({sep!r}), not split by the separator used: "
                    f"declare sep: '{shown}' in data.tables.{table}, or leave sep out to detect it")
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


def load_tables(case: Any, progress: Any = None) -> dict[str, Intake]:
    """Read, map, take in and validate every canonical table the case names; never writes to a source.

    Each table's source is declared in the case file (:mod:`crmnb.sources`); the
    first table that cannot be used raises :class:`DataError` naming it.
    """
    from .sources import load_tables as _load

    return _load(case, progress)


# --------------------------------------------------------------------------- hand-offs
HANDOFF_STEPS: dict[str, tuple[int, str]] = {
    "scope": (1, "01_goal_and_scope"),
    "intake": (2, "02_data_collection"),
    "metrics": (3, "03_metrics"),
    "clean": (4, "04_cleaning_and_validation"),
    "deep_dive": (5, "05_case_deep_dive"),
    "plan": (6, "06_diagnosis_and_plan"),
    "report": (7, "07_report_and_iteration"),
}
"""Which step writes each hand-off folder."""


@dataclass
class Workspace:
    """The output folder of one case: ``<output_root>/<case_id>/``."""

    root: Path
    case_id: str
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def folder(self) -> Path:
        """Return the case's output folder."""
        return self.root / self.case_id

    @property
    def data(self) -> Path:
        """Return the folder of the step hand-offs."""
        return self.folder / "data"

    def _path(self, name: str, ext: str) -> Path:
        if not re.fullmatch(r"[a-z0-9_]+/[a-z0-9_]+", name):
            raise ValueError(f"hand-off name must look like 'step/name', got {name!r}")
        return self.data / f"{name}.{ext}"

    def write(self, name: str, df: pd.DataFrame) -> Path:
        """Write a table hand-off as Parquet and return its path."""
        path = self._path(name, "parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path, index=False)
        self._cache[name] = df
        return path

    def read(self, name: str) -> pd.DataFrame:
        """Read a table hand-off, or say which step to run first."""
        if name in self._cache:
            return self._cache[name]
        path = self._path(name, "parquet")
        if not path.exists():
            raise self._missing(name, path)
        return pd.read_parquet(path)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a small hand-off (figures, sentences) as JSON."""
        path = self._path(name, "json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        return path

    def read_json(self, name: str) -> Any:
        """Read a JSON hand-off, or say which step to run first."""
        path = self._path(name, "json")
        if not path.exists():
            raise self._missing(name, path)
        return json.loads(path.read_text(encoding="utf-8"))

    def exists(self, name: str) -> bool:
        """Return True when the hand-off has been written."""
        return self._path(name, "parquet").exists() or self._path(name, "json").exists()

    def tables(self, step: str) -> "Tables":
        """Return every canonical table a step wrote (``intake`` or ``clean``), each read when first used."""
        return Tables(self, step)

    def _missing(self, name: str, path: Path) -> HandoffMissing:
        step = HANDOFF_STEPS.get(name.split("/")[0])
        which = f"run step {step[0]} ({step[1]}.ipynb) first" if step else "run the earlier steps first"
        return HandoffMissing(f"hand-off '{name}' not found at {path}: {which}")


class Tables(MutableMapping):
    """The canonical tables of one step, read from their hand-offs when first used.

    A step that needs three of the eleven tables reads three: at 100 times the demo
    data, the visits and activities alone are 12 million rows. A missing hand-off
    raises :class:`HandoffMissing` when it is used, naming the step to run.
    """

    def __init__(self, ws: Workspace, step: str):
        self._ws, self._step = ws, step
        self._names = list(TABLES)
        self._got: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._got:
            if name not in self._names:
                raise KeyError(name)
            self._got[name] = self._ws.read(f"{self._step}/{name}")
        return self._got[name]

    def __setitem__(self, name: str, df: pd.DataFrame) -> None:
        if name not in self._names:
            self._names.append(name)
        self._got[name] = df

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._got.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self):
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<{self._step} tables: {', '.join(self._names)}; read so far: {', '.join(self._got) or 'none'}>"


def save_intake(ws: Workspace, intakes: dict[str, Intake]) -> pd.DataFrame:
    """Write every intake table, the unreadable values and the date formats; return the issues."""
    for name, got in intakes.items():
        ws.write(f"intake/{name}", got.table)
    issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
    formats = pd.concat([g.formats for g in intakes.values()], ignore_index=True)
    ws.write("intake/issues", issues.astype({"row": "int64"}) if len(issues) else issues)
    ws.write("intake/formats", formats)
    return issues


def save_cleaned(ws: Workspace, cleaned) -> None:
    """Write the cleaned tables, the cleaning log, the quarantine, the merges and the row reconciliation."""
    for name, df in cleaned.tables.items():
        ws.write(f"clean/{name}", df)
    ws.write("clean/log", cleaned.log)
    ws.write("clean/quarantine", cleaned.quarantine)
    ws.write("clean/merges", cleaned.merges)
    ws.write("clean/reconciliation", cleaned.reconciliation)
