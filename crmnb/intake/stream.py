"""Step 2 in batches: an export read, taken in, checked and written a batch of rows at a time.

A CSV export is read by Arrow's streaming reader :data:`BATCH_ROWS` rows at a time; each batch is typed,
pseudonymised and checked as a whole table would be (:func:`crmnb.intake.load.take_in`), and appended to the
table's Parquet file, so that step 2 holds one batch, never the whole table. What needs the whole table is
kept as small state across the batches (the date formats and their counts, the inventory's figures, whether
any row falls in the analysis period, the last rows of a file that may be cut short) or asked of the written
Parquet file (duplicate keys, by DuckDB). Whatever one batch cannot settle alone (amounts read by the
convention or currency their whole column shows, an error whose message names the whole table's rows)
raises :class:`Whole`: the table is then taken in whole, as before, so that the results are the same.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crmnb.errors import CrmnbError
from crmnb.intake.ahead import read_ahead
from crmnb.intake.checks import (
    KEEP_ROWS,
    PROBLEM_COLUMNS,
    ROW_LEVEL,
    Report,
    batch_problems,
    duplicate_keys,
    in_table_order,
)
from crmnb.intake.damage import cut_last_row, duplicate_headers, header_names, mark_cut
from crmnb.intake.parse import ISSUE_COLUMNS, Intake, intake
from crmnb.intake.period import outside_period
from crmnb.intake.read import _decode_sample, detect_separator, iter_csv_batches, iter_csv_chunks
from crmnb.intake.schema import ROW, TABLES
from crmnb.intake.sources import Located
from crmnb.intake.spill import IssueSpill
from crmnb.intake.write import BatchWriter

BATCH_ROWS = 1 << 19
"""Rows taken in at a time: about 0.3 GB of an activities export as text and typed at once. A multiple of the
hand-offs' row groups (128 Ki rows), so the Parquet file has the row groups a whole table's would have."""

TAIL_ROWS = 1001
"""The last rows kept of a file that does not end with a line break: what :func:`cut_last_row` looks at."""


Prepare = Callable[[str, pd.DataFrame], pd.DataFrame] | None
"""What is applied to a batch's text before it is typed: the table's name and the text, to the text."""


class Whole(Exception):
    """A table one batch at a time cannot take in as a whole would: take it in whole (why in the message)."""


def streamable(loc: Located, mapping: Any) -> bool:
    """Return True when a table's source can be taken in in batches: a CSV file read under its own names."""
    return loc.kind == "csv" and mapping is None and loc.path is not None


@dataclass
class _Found:
    """What the batches of one table found so far: all that is kept of them once they are written."""

    name: str
    rows: int = 0
    batches: int = 0
    issues: list[pd.DataFrame] = field(default_factory=list)
    problems: list[pd.DataFrame] = field(default_factory=list)
    kept: dict[tuple[str, str], int] = field(default_factory=dict)  # (column, kind): problems kept so far
    dropped: int = 0  # problems past KEEP_ROWS of their column and kind: counted, not kept
    formats: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (column, format): [rows, first row]
    dates: list[pd.Timestamp] = field(default_factory=list)  # each batch's first and last main date
    filled: int = 0  # cells of the canonical columns with a value
    in_period: bool = False
    empty: pd.DataFrame | None = None  # the typed table's columns, no rows
    tail: pd.DataFrame | None = None
    keys: pd.DataFrame | None = None  # the first batch's keys: checked in memory when it is the only one
    spill: IssueSpill | None = None  # the unreadable values, capped in memory, all on disk past the cap

    def add(self, got: Intake, probs: pd.DataFrame, in_period: bool) -> None:
        """Keep what one batch, taken in, found."""
        spec = TABLES[self.name]
        df = got.table
        self.rows += len(df)
        self.batches += 1
        if len(got.issues):
            kept = got.issues if self.spill is None else self.spill.add(got.issues, self.issues)
            if len(kept):
                self.issues.append(kept)
        if len(probs):
            self.problems.append(self._within(probs))
        for rec in got.formats.itertuples(index=False):
            count = self.formats.setdefault((rec.column, rec.format), [0, got.first_seen[(rec.column, rec.format)]])
            count[0] += int(rec.rows)
        if spec.dates and len(df):
            self.dates += [df[spec.dates[0]].min(), df[spec.dates[0]].max()]
        self.filled += int(df[list(spec.columns)].notna().to_numpy().sum())
        self.in_period = self.in_period or in_period
        if self.empty is None:
            self.empty = got.summarised(self.name).table
        key = spec.key
        self.keys = df[[key, ROW]].copy() if key and self.batches == 1 else None

    def _within(self, probs: pd.DataFrame) -> pd.DataFrame:
        """Return the problems of one batch that fit in :data:`KEEP_ROWS` per column and kind; count the rest."""
        keys = list(zip(probs["column"], probs["kind"]))
        before = np.array([self.kept.get(k, 0) for k in keys], dtype=np.int64)
        fits = probs.groupby(["column", "kind"], sort=False).cumcount().to_numpy() + before < KEEP_ROWS
        for k, n in pd.Series([k for k, f in zip(keys, fits) if f], dtype=object).value_counts().items():
            self.kept[k] = self.kept.get(k, 0) + int(n)
        self.dropped += int((~fits).sum())
        return probs[fits]

    def keep_tail(self, raw: pd.DataFrame) -> None:
        """Keep the last :data:`TAIL_ROWS` rows of text seen, copied so as not to hold the batch's buffers."""
        last = raw.iloc[-TAIL_ROWS:]
        last = pd.DataFrame({c: pd.array(last[c].to_numpy(dtype=object), dtype=last[c].dtype) for c in last})
        both = last if self.tail is None else pd.concat([self.tail, last], ignore_index=True)
        self.tail = both.iloc[-TAIL_ROWS:].reset_index(drop=True)

    def profile(self) -> dict[str, Any]:
        """Return the inventory's figures of the whole table (:func:`crmnb.intake.parse.table_profile`)."""
        spec = TABLES[self.name]
        read = [d for d in self.dates if pd.notna(d)]
        cells = self.rows * len(spec.columns)
        return {
            "rows": self.rows,
            "columns": len(spec.columns),
            "from": min(read) if read else pd.NaT,
            "to": max(read) if read else pd.NaT,
            "coverage": np.float64(self.filled) / cells if cells else float("nan"),
        }

    def format_table(self) -> pd.DataFrame:
        """Return the date formats as a whole table's: per column, the most used first, ties by first use."""
        order = list(TABLES[self.name].columns)
        keys = sorted(self.formats, key=lambda k: (order.index(k[0]), -self.formats[k][0], self.formats[k][1]))
        rows = [{"table": self.name, "column": c, "format": f, "rows": self.formats[(c, f)][0]} for c, f in keys]
        return pd.DataFrame(rows, columns=["table", "column", "format", "rows"])

    def issue_table(self) -> pd.DataFrame:
        """Return the unreadable values as a whole table's: column by column, each in row order."""
        if not self.issues:
            return pd.DataFrame(columns=ISSUE_COLUMNS)
        issues = pd.concat(self.issues, ignore_index=True)
        order = {c: i for i, c in enumerate(TABLES[self.name].columns)}
        at = issues["column"].map(order).to_numpy()
        return issues.iloc[np.lexsort((issues["row"].to_numpy(), at))].reset_index(drop=True)


class _Unread(Whole):
    """A reader that could not read the file (Arrow's stricter parser): the next reader is tried."""


def take_in_streamed(
    case: Any, name: str, loc: Located, key: bytes | None, target: Path, options: dict, prepare: Prepare = None
) -> Intake:
    """Return one CSV table taken in batch by batch and written to ``target`` (Parquet, ``options``), without
    its rows: what :func:`crmnb.intake.load.take_in_for` and writing it would give.

    Read by Arrow's streaming reader (UTF-8), else by pandas' reader in chunks (another encoding, a row
    short of fields). ``prepare(name, text)`` is applied to each batch's text before it is typed (the
    row-local steps of :data:`crmnb.intake.load.ROW_STEPS`). Raises :class:`Whole` (having written
    nothing) when the table must be taken in whole.
    """
    enc, sep, notes = _how_to_read(loc, name)
    header = loc.spec.header_row
    readers = [lambda: iter_csv_chunks(loc.path, enc, sep, header, BATCH_ROWS)]
    if codecs.lookup(enc).name in ("utf-8", "utf-8-sig"):  # Arrow skips a BOM itself
        readers.insert(0, lambda: iter_csv_batches(loc.path, sep, header, BATCH_ROWS))
    for reader in readers:
        batches = _guarded(read_ahead(reader()))
        try:
            return _streamed(case, name, loc, key, target, options, batches, (enc, sep, notes, prepare))
        except _Unread:
            continue
        finally:
            batches.close()  # the thread reading ahead stops now, not when the generator is collected
    raise Whole("no reader reads the file in batches")


def _guarded(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Yield the batches of a reader; raise :class:`_Unread` where the reader fails."""
    try:
        while True:
            try:
                raw = next(batches)
            except StopIteration:
                return
            except Exception as exc:
                raise _Unread(f"{type(exc).__name__}: {exc}") from exc
            yield raw
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _streamed(case: Any, name: str, loc: Located, key, target: Path, options: dict, batches, how) -> Intake:
    """Return one table taken in from ``batches`` and written to ``target`` (see :func:`take_in_streamed`)."""
    enc, sep, notes, prepare = how
    part = target.with_name(target.name + ".part")
    found = _Found(name, spill=IssueSpill(target.with_name(target.name + ".issues")))
    target.parent.mkdir(parents=True, exist_ok=True)
    ends_whole = _ends_with_line_break(loc.path)
    try:
        with BatchWriter(part, options) as out:
            for raw in batches:
                text = raw if prepare is None else prepare(name, raw)
                got, probs, in_period = _one_batch(case, name, loc, text, found.rows + 1, key)
                out.write(got.table)
                found.add(got, probs, in_period)
                if not ends_whole:
                    found.keep_tail(raw)
                del raw, text, got
        if not found.batches or not found.in_period:
            raise Whole("no rows, or none in the analysis period: the message names the whole table's")
        dupes, more = duplicate_keys(part, name, found.keys)
        found.dropped += more
    except Exception as exc:
        part.unlink(missing_ok=True)
        found.spill.close()
        found.spill.path.unlink(missing_ok=True)
        if not isinstance(exc, (Whole, CrmnbError)):
            _say_whole(loc, name, exc)
        raise exc if isinstance(exc, Whole) else Whole(f"{type(exc).__name__}: {exc}") from exc
    found.spill.close()
    got = _summary(found, loc, enc, sep, notes, dupes)
    cut = None if ends_whole else cut_last_row(loc.path, found.tail, enc, sep)
    if cut is not None:
        mark_cut(got, found.tail, name, cut, rows=found.rows)
        if got.issues_file is not None:  # the cut row's own issues replaced by one
            got.issue_count = found.spill.total - found.spill.count_at(found.rows) + 1
    part.replace(target)
    return got


def _say_whole(loc: Located, name: str, exc: Exception) -> None:
    """Warn that a table falls back to being taken in whole for a reason no data gives (a fault, not the export).

    The results are the same either way, so nothing else would tell: only the time and the memory, which at a
    large company's size are the difference between a run and none. The warning names the exception's kind
    alone: its message may quote the export's values.
    """
    import warnings

    warnings.warn(
        f"{loc.label} (table '{name}'): taken in whole rather than a batch at a time, after an unexpected "
        f"{type(exc).__name__}; the results are the same, but the whole table is held in memory",
        RuntimeWarning,
        stacklevel=2,
    )


def _how_to_read(loc: Located, name: str) -> tuple[str, str, list[str]]:
    """Return the encoding and separator of a CSV and the notes on its header, as
    :func:`crmnb.intake.read.read` finds them; raise :class:`Whole` where it would say more."""
    path, spec = loc.path, loc.spec
    if not path.is_file() or path.stat().st_size == 0:
        raise Whole("absent or empty: said as before")
    try:
        sample, enc = _decode_sample(path, spec.encoding, header_row=spec.header_row)
        sep = (
            spec.sep if spec.sep is not None else detect_separator(sample, list(TABLES[name].columns), spec.header_row)
        )
        first, _ = _decode_sample(path, enc)
        names = header_names(first, sep, spec.header_row)
        notes = duplicate_headers(names, list(TABLES[name].columns), f"{path} (table '{name}')")
    except Exception as exc:
        raise Whole(str(exc)) from exc
    return enc, sep, notes


def _ends_with_line_break(path: Path) -> bool:
    """Return True when a file's last byte ends a line: the last row is then whole."""
    with open(path, "rb") as fh:  # read-only, and only the last byte
        fh.seek(-1, 2)
        return fh.read(1) in (b"\n", b"\r")


def _one_batch(
    case: Any, name: str, loc: Located, raw: pd.DataFrame, first_row: int, key: bytes | None
) -> tuple[Intake, pd.DataFrame, bool]:
    """Return one batch taken in, its row-level problems and whether a row of it falls in the analysis period."""
    if not len(raw):
        raise Whole("a header and no rows: said as before")
    got = intake(raw, name, loc.label, loc.spec.decimal, getattr(case, "timezone", None), first_row)
    if not got.local:
        raise Whole("amounts read by what their whole column shows")
    if key is not None:
        from crmnb.intake.protect import protect

        protect(got, key)
    probs = batch_problems(got.table, name)
    if (~probs["kind"].isin(ROW_LEVEL)).any():
        raise Whole("a problem no row settles: the message names the whole table's rows")
    in_period = not hasattr(case, "period") or outside_period(name, got.table, case, got.issues) is None
    return got, probs, in_period


def _summary(found: _Found, loc: Located, enc: str, sep: str, notes: list[str], dupes: pd.DataFrame) -> Intake:
    """Return the intake of the whole table from what its batches found, without its rows."""
    name = found.name
    probs = [p for p in (*found.problems, dupes) if len(p)]
    problems = (
        in_table_order(pd.concat(probs, ignore_index=True), name) if probs else pd.DataFrame(columns=PROBLEM_COLUMNS)
    )
    return Intake(
        found.empty,
        found.issue_table(),
        found.format_table(),
        source=loc.label,
        notes=list(notes),
        read_as={"encoding": "utf-8" if enc == "utf-8-sig" else enc, "sep": sep},
        validation=Report(name, loc.label, found.rows, problems, dropped=found.dropped),
        profile=found.profile(),
        batches=found.batches,
        issues_file=found.spill.path if found.spill.spilled else None,
        issue_count=found.spill.total if found.spill.spilled else None,
    )
