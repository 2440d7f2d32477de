"""The tables cleaning reads and the tables it builds: one intake table at a time, in batches.

Cleaning never copies a whole table per rule. The rules read a few columns of each table (its keys,
required values, dates, customer ids) and note what they drop or change as small side tables, a
:class:`Plan` per table: the positions of the rows kept, the positions of values set to missing, the
customer ids re-pointed to the kept record, the columns dropped or rewritten. Each cleaned table is
then built once from its intake table by applying its plan, batch by batch, so that only one batch
of one big table is in memory while the cleaned tables are written.

An intake table is a :class:`~pandas.DataFrame` (tests, ``crmnb validate``) or the path of its Parquet
hand-off (step 4, :func:`intake_files`); both read the same through :class:`Source`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crmnb.frames import isin, read_rows
from crmnb.intake import clean_engine
from crmnb.intake.clean_checks import Checker
from crmnb.intake.schema import TABLES

BATCH_ROWS = 100_000
"""How many rows of a table are built, checked and written at a time."""

Table = pd.DataFrame | str | Path


def intake_files(ws) -> dict[str, Path]:
    """Return the path of every intake table hand-off of a workspace (a :class:`crmnb.handoffs.Workspace`),
    by table name, for :func:`~crmnb.intake.cleaning.clean`; a missing one says which step to run first."""
    for name in TABLES:
        if not ws.exists(f"intake/{name}"):
            ws.read(f"intake/{name}")  # raises HandoffMissing, naming the step that writes it
    return {name: ws.data / "intake" / f"{name}.parquet" for name in TABLES}


class Source:
    """The intake tables, read column by column or batch by batch, never copied whole."""

    def __init__(self, tables: Mapping[str, Table]):
        self.names = list(tables)
        self._frames: dict[str, pd.DataFrame] = {}
        self._schemas: dict[str, pa.Schema] = {}
        self._rows: dict[str, int] = {}
        self._paths: dict[str, Path] = {}
        for name, t in tables.items():
            if isinstance(t, pd.DataFrame):
                # a fresh 0..n-1 index: a row's position is how every side table names it
                self._frames[name] = t.reset_index(drop=True)
            else:
                self._schemas[name], self._rows[name] = pq.read_schema(t), pq.read_metadata(t).num_rows
                self._paths[name] = Path(t)

    def _open(self, name: str) -> pq.ParquetFile:
        """Return the hand-off of ``name`` opened for one read. An open file keeps what it has read (at 1000x the
        demo 0.7 GB once the customers were read through), so none is kept open between reads."""
        return pq.ParquetFile(self._paths[name])

    @property
    def files_only(self) -> bool:
        """Return True when every table is read from its Parquet hand-off (none held as a frame)."""
        return not self._frames

    def kind(self, name: str, column: str) -> pa.DataType:
        """Return the Arrow type of a column of a table read from its Parquet hand-off."""
        return self._schemas[name].field(column).type

    def columns(self, name: str) -> list[str]:
        """Return the columns of a table, in their order."""
        if name in self._frames:
            return list(self._frames[name].columns)
        return list(self._schemas[name].names)

    def rows(self, name: str) -> int:
        """Return the number of rows of a table."""
        if name in self._frames:
            return len(self._frames[name])
        return self._rows[name]

    def read(self, name: str, columns: list[str]) -> pd.DataFrame:
        """Return some columns of a table (those it has), indexed by row position."""
        have = [c for c in columns if c in self.columns(name)]
        if name in self._frames:
            return self._frames[name][have]
        return self._open(name).read(columns=have).to_pandas()

    def batches(self, name: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """Yield a table in batches of rows, each indexed by its rows' positions in the table."""
        if name in self._frames:
            df = self._frames[name] if columns is None else self._frames[name][columns]
            for start in range(0, len(df), BATCH_ROWS):
                yield df.iloc[start : start + BATCH_ROWS]
            return
        start = 0
        for batch in self._open(name).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            frame = pa.Table.from_batches([batch]).to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame

    def empty(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Return a table's columns with no rows, with their types."""
        if name in self._frames:
            df = self._frames[name]
            return (df if columns is None else df[columns]).iloc[:0]
        return self._schemas[name].empty_table().to_pandas()[columns or slice(None)]

    def file(self, name: str) -> Path | None:
        """Return the Parquet hand-off a table is read from (None for a frame)."""
        return self._paths.get(name)

    def take(self, name: str, positions: np.ndarray) -> pd.DataFrame:
        """Return the rows at ``positions`` (sorted), with all their columns as taken in."""
        if name in self._frames:
            return self._frames[name].iloc[positions]
        parts, start = [], 0
        for batch in self._open(name).iter_batches(batch_size=BATCH_ROWS):
            lo, hi = np.searchsorted(positions, [start, start + batch.num_rows])
            if hi > lo:
                parts.append(batch.take(pa.array(positions[lo:hi] - start)))
            start += batch.num_rows
        schema = self._schemas[name]
        return pa.Table.from_batches(parts, schema=schema).to_pandas() if parts else self.empty(name)


@dataclass
class Plan:
    """What cleaning does to one table, as side tables applied when the table is built."""

    kept: np.ndarray | None = None  # positions of the rows kept, ascending; None: all of them
    missing: dict[str, np.ndarray] = field(default_factory=dict)  # column -> positions set to missing
    repoint: dict[str, dict] = field(default_factory=dict)  # column -> {old id: kept id}
    drop: list[str] = field(default_factory=list)  # columns dropped
    rewrite: dict[str, Callable[[pd.Series], pd.Series]] = field(default_factory=dict)  # column -> new values
    dropped: np.ndarray | None = None  # or, instead of ``kept``, the positions of the rows removed, ascending
    """A large table that cleaning removed a few rows of is planned by those (a few thousand positions), not
    by the rows kept: at 1000x the demo the kept positions of all tables took 2.6 GB through steps 4's end."""

    @property
    def unchanged(self) -> bool:
        """Return True when the table is cleaned as taken in: every row kept, no value or column changed."""
        removed = self.dropped is not None and len(self.dropped)
        return self.kept is None and not (removed or self.missing or self.repoint or self.drop or self.rewrite)

    def apply(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Return one batch of the intake table as cleaned: rows kept, values changed, columns dropped."""
        out = batch if self.kept is None else batch.iloc[_within(self.kept, batch.index) - batch.index[0]]
        if self.dropped is not None:
            out = out[~out.index.isin(_within(self.dropped, batch.index))]
        for col, positions in self.missing.items():
            if col not in out.columns:  # some columns only (CleanTables.frame)
                continue
            hit = out.index.isin(_within(positions, batch.index))
            if hit.any():
                out = out.copy()
                out.loc[hit, col] = np.nan
        for col, to in self.repoint.items():
            if col not in out.columns:
                continue
            hit = isin(out[col], to)
            if hit.any():
                out = out.copy()
                out.loc[hit, col] = out.loc[hit, col].map(to)
        if self.drop:
            out = out.drop(columns=[c for c in self.drop if c in out.columns])
        if self.rewrite:
            out = out.assign(**{col: fn(out[col]) for col, fn in self.rewrite.items() if col in out.columns})
        return out


def _within(positions: np.ndarray, index: pd.Index) -> np.ndarray:
    """Return the sorted ``positions`` that fall in a batch's range of row positions."""
    if not len(index):
        return positions[:0]
    lo, hi = np.searchsorted(positions, [index[0], index[-1] + 1])
    return positions[lo:hi]


def build(source: Source, name: str, plan: Plan, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Yield a cleaned table in batches (at least one, maybe empty), each with a fresh 0-based index."""
    start, some = 0, False
    for batch in source.batches(name, columns):
        out = plan.apply(batch)
        if len(out) or not some:
            out.index = pd.RangeIndex(start, start + len(out))
            start += len(out)
            some = True
            yield out
    if not some:
        yield plan.apply(source.empty(name, columns))


def write(batches: Iterator[pd.DataFrame], path: Path, check: Checker) -> int:
    """Write a table's batches to one Parquet file, each checked first; return the rows written.

    The file is put in place only when every batch passed its check; else :class:`DataError` names what failed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    writer, rows = None, 0
    try:
        for batch in batches:
            check(batch)
            arrow = pa.Table.from_pandas(batch, preserve_index=False)
            if writer is None:
                # LZ4, as every hand-off (crmnb.handoffs.PARQUET_OPTIONS): faster to write than Snappy
                writer = pq.ParquetWriter(part, arrow.schema, compression="lz4")
            writer.write_table(arrow if arrow.schema.equals(writer.schema) else arrow.cast(writer.schema))
            rows += len(batch)
    finally:
        if writer is not None:
            writer.close()
    if check.found:
        part.unlink(missing_ok=True)
        check.raise_found()
    part.replace(path)
    return rows


def copy_checked(batches: Iterator[pd.DataFrame], src: Path, path: Path, check: Checker) -> int:
    """Check a table's batches, then copy its file ``src`` to ``path``; return the rows checked.

    As :func:`write`: the file is put in place only when every batch passed, else :class:`DataError` says why.
    """
    rows = 0
    for batch in batches:
        check(batch)
        rows += len(batch)
    check.raise_found()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    shutil.copyfile(src, part)
    part.replace(path)
    return rows


def _passes(name: str, path: Path, failing: int | None = None) -> bool:
    """Return True when a table's Parquet file passes its cleaned schema: columns and types by pandera on its
    empty frame, values by DuckDB over the whole file (or ``failing``, their count made while it was written)."""
    check = Checker(name)
    check(pq.read_schema(path).empty_table().to_pandas())
    if check.found:
        return False
    return (clean_engine.failures(path, name) if failing is None else failing) == 0


def _batches_of(path: Path) -> Iterator[pd.DataFrame]:
    """Yield a Parquet file in pandas batches (to describe what fails its check)."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
        yield pa.Table.from_batches([batch]).to_pandas()


def write_by_engine(name: str, src: Path, plan: Plan, source: Source, path: Path) -> int:
    """Write cleaned table ``name`` from its intake file by one streaming DuckDB query (its intake file copied
    when cleaning left it unchanged), checked against its schema; return its rows.

    The file is put in place only when it passed its check; else :class:`DataError` names what failed, as
    the check batch by batch through pandera describes it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    failing = None  # counted over the file once copied
    if plan.unchanged:
        shutil.copyfile(src, part)
        rows = source.rows(name)
    else:
        empty = source.empty(name).drop(columns=[c for c in plan.drop if c in source.columns(name)])
        rows, failing = clean_engine.write_table(src, plan, source.rows(name), empty, part, name)
    if not _passes(name, part, failing):
        check = Checker(name)
        for batch in _batches_of(part):
            check(batch)
        if check.found:
            part.unlink(missing_ok=True)
            check.raise_found()
    part.replace(path)
    return rows


class CleanTables(Mapping):
    """The cleaned tables, each built from its intake table and plan when first used.

    ``tables[name]`` is the whole table (kept once read); :meth:`frame` gives some of its columns
    without keeping them. Once written (:func:`crmnb.handoffs.save_cleaned`), they are read from their
    hand-offs.
    """

    def __init__(self, source: Source, plans: dict[str, Plan]):
        self._source, self._plans = source, plans
        self._files: dict[str, Path] = {}
        self._got: dict[str, pd.DataFrame] = {}

    def batches(self, name: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """Yield a cleaned table in batches (see :func:`build`)."""
        return build(self._source, name, self._plans[name], columns)

    def write(self, name: str, path: Path) -> int:
        """Build, check and write table ``name`` to ``path``; later reads come from there. Return its rows.

        A table cleaning leaves as it was taken in (at 100x the demo: leads, deals, stage history, touches,
        receipts; 7 M rows) is checked batch by batch as any other, and its intake file copied rather than
        rebuilt through pandas and written anew.
        """
        src, plan = self._source.file(name), self._plans[name]
        if src is not None and not plan.rewrite:  # by the engine, without pandas (crmnb.intake.clean_engine)
            rows = write_by_engine(name, src, plan, self._source, Path(path))
        else:
            rows = write(self.batches(name), Path(path), Checker(name))
        self._files[name] = Path(path)
        self._got.pop(name, None)
        return rows

    def file(self, name: str) -> Path | None:
        """Return the hand-off table ``name`` was written to, or None before it is written."""
        return self._files.get(name)

    def frame(self, name: str, columns: list[str], where: dict[str, list] | None = None) -> pd.DataFrame:
        """Return some columns of a cleaned table (those it has), not kept for later; with ``where``, only the rows
        whose values of its columns are among those given (``{"status": ["won"]}``), in order, with a fresh
        index (once written, read so from the file: at 1000x the demo the won deals are a third of 5.7 M)."""
        if where and name in self._files and name not in self._got:
            have = pq.ParquetFile(self._files[name]).schema_arrow.names
            return read_rows(self._files[name], where, [c for c in columns if c in have])
        if name in self._got:
            got = self._got[name][[c for c in columns if c in self._got[name].columns]]
        elif name in self._files:
            have = pq.ParquetFile(self._files[name]).schema_arrow.names
            got = pd.read_parquet(self._files[name], columns=[c for c in columns if c in have])
        else:
            have = [c for c in columns if c in self._source.columns(name) and c not in self._plans[name].drop]
            got = pd.concat(list(self.batches(name, have)))
        for col, values in (where or {}).items():
            got = got[isin(got[col], values)]
        return got.reset_index(drop=True) if where else got

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._got:
            if name not in self._plans:
                raise KeyError(name)
            if name in self._files:
                self._got[name] = pd.read_parquet(self._files[name])
            else:
                check = Checker(name)
                parts = [check(b) or b for b in self.batches(name)]
                check.raise_found()  # what the analyses read passes its schema, or this names why
                self._got[name] = pd.concat(parts)
        return self._got[name]

    def __iter__(self):
        return iter(self._plans)

    def __len__(self) -> int:
        return len(self._plans)

    def __repr__(self) -> str:
        return f"<cleaned tables: {', '.join(self._plans)}; read so far: {', '.join(self._got) or 'none'}>"
