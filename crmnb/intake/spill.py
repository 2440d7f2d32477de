"""Unreadable values of a table taken in batches: a few per column in memory, the full list on disk.

A table whose every row has an unreadable date would otherwise hold one issue per row in step 2. Past
:data:`ISSUE_ROWS` issues in one column, every issue of the table goes to a Parquet file beside its hand-off
(:class:`IssueSpill`) and memory keeps the first :data:`ISSUE_ROWS` of each column, in row order: what the
notebook shows. The ``intake/issues`` hand-off is then written from those files (:func:`write_issues`),
in the order and with the rows the whole list in memory would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crmnb.intake.damage import CUT_PROBLEM
from crmnb.intake.parse import ISSUE_COLUMNS, Intake, all_issues
from crmnb.intake.schema import TABLES

ISSUE_ROWS = 10_000
"""The most unreadable values of one column of one table that step 2 keeps in memory."""


class IssueSpill:
    """The unreadable values of one table as its batches find them: counted, capped per column in memory,
    written whole to ``path`` once a column passes :data:`ISSUE_ROWS`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.writer: pq.ParquetWriter | None = None
        self.kept: dict[str, int] = {}  # column: issues kept in memory
        self.total = 0

    @property
    def spilled(self) -> bool:
        """Return True when the full list is on disk."""
        return self.path.exists()

    def add(self, issues: pd.DataFrame, held: list[pd.DataFrame]) -> pd.DataFrame:
        """Count one batch's issues; return those memory keeps (``held``: those kept so far, written to disk
        with these when a column first passes the cap)."""
        self.total += len(issues)
        rank = issues.groupby("column", sort=False).cumcount().to_numpy()
        before = issues["column"].map(self.kept).fillna(0).to_numpy()
        fits = rank + before < ISSUE_ROWS
        if self.writer is None and not fits.all():
            for frame in held:
                self._write(frame)
        if self.writer is not None:
            self._write(issues)
        kept = issues[fits]
        for col, n in kept["column"].value_counts().items():
            self.kept[col] = self.kept.get(col, 0) + int(n)
        return kept

    def _write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame[ISSUE_COLUMNS].astype({"row": "int64"}), preserve_index=False)
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="lz4")
        self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        """Finish the file on disk, if any."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def count_at(self, row: int) -> int:
        """Return how many of the issues on disk are of export row ``row``."""
        got = pq.read_table(self.path, columns=["row"], filters=[("row", "=", row)])
        return got.num_rows


def write_issues(path: Path, kept: Mapping[str, Intake], options: dict[str, Any]) -> None:
    """Write the ``intake/issues`` hand-off from each table's issues, read from disk where they were spilled:
    the rows and order :func:`crmnb.intake.parse.all_issues` gives, a row group at a time."""
    writer: pq.ParquetWriter | None = None
    opts = {k: v for k, v in options.items() if k != "row_group_size"}
    try:
        for frame in _issue_frames(kept, options.get("row_group_size") or 1 << 17):
            if not len(frame):  # the tables without any: nothing to type the columns by
                continue
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, **opts)
            writer.write_table(table.cast(writer.schema), row_group_size=options.get("row_group_size"))
    finally:
        if writer is not None:
            writer.close()
    for got in kept.values():
        if got.issues_file is not None:
            Path(got.issues_file).unlink(missing_ok=True)


def _issue_frames(kept: Mapping[str, Intake], rows: int):
    """Yield the issues of every table in order, as :func:`all_issues` types them, ``rows`` at a time."""
    from crmnb.frames import connect

    memory: dict[str, Intake] = {}
    for name, got in kept.items():
        if got.issues_file is None:
            memory[name] = got
            continue
        if memory:
            yield all_issues(memory)
            memory = {}
        order = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(TABLES[name].columns))
        cut = got.issues[got.issues["problem"] == CUT_PROBLEM]
        skip = f"WHERE row <> {int(cut['row'].iloc[0])}" if len(cut) else ""
        at = "'" + str(got.issues_file).replace("'", "''") + "'"
        sql = f'SELECT * FROM read_parquet({at}) {skip} ORDER BY CASE "column" {order} END, row'
        with connect(memory_limit="256MB", threads=2) as con:
            reader = con.sql(sql).to_arrow_reader(rows)
            for batch in reader:
                yield all_issues({name: _as_issues(batch.to_pandas())})
        if len(cut):
            yield all_issues({name: _as_issues(cut.reset_index(drop=True))})
    if memory or not kept:
        yield all_issues(memory) if memory else pd.DataFrame(columns=ISSUE_COLUMNS)


def _as_issues(frame: pd.DataFrame) -> Intake:
    """Return a frame of issues as the one field of an intake that :func:`all_issues` reads."""
    return Intake(pd.DataFrame(), frame[ISSUE_COLUMNS], pd.DataFrame())
