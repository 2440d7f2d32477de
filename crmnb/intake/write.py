"""A table's Parquet file written a batch at a time, as one whole table's write would write it."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def few_values(table: pa.Table, share: float = 0.01) -> list[str]:
    """Return the text columns whose distinct values are at most ``share`` of the rows: only those are
    dictionary-encoded. A dictionary tried on ids, contact keys or notes is given up after its first page,
    at a cost; kept to departments, reps, types and channels, an activities batch is written about a
    quarter faster and is smaller, and reads faster."""
    limit = max(int(table.num_rows * share), 1)
    return [
        f.name
        for f in table.schema
        if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)) and _at_most(table[f.name], limit)
    ]


def _at_most(column: pa.ChunkedArray, limit: int) -> bool:
    """Return True when a column has at most ``limit`` distinct values. Its first rows are counted first:
    more than ``limit`` there (ids, keys, notes) settles it without hashing the whole column."""
    head = column.slice(0, 4 * limit)
    if len(head) < len(column) and pc.count_distinct(head).as_py() > limit:
        return False
    return pc.count_distinct(column).as_py() <= limit


class BatchWriter:
    """Append frames of one table to a Parquet file; the file reads back as the frames joined would.

    A column with no value in the first batch (a contact key where no row has a phone) is typed null
    by Arrow, as writing the whole table would type it when it stays without a value to the end; a
    later batch that has a value in it retypes the rows written so far (:meth:`_widen`), once.

    Each batch is encoded and written in a thread of its own while the next batch is taken in (Arrow lets
    go of Python meanwhile); one write at most is under way, so one batch at most is held for it.
    """

    def __init__(self, path: Path, options: dict[str, Any]) -> None:
        self.path = Path(path)
        self.target = self.path  # the file written to: another one once the rows so far were retyped
        self.options = dict(options)
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def write(self, df) -> None:
        """Append one batch (a pandas frame with the columns and dtypes of the first)."""
        table = pa.Table.from_pandas(df, preserve_index=False)
        if self.writer is None:
            self.schema = table.schema
            self.options.setdefault("use_dictionary", few_values(table))
            self.writer = pq.ParquetWriter(self.target, self.schema, **self._opts())
        # as text, as a column first seen without a value was always written
        wider = {
            f.name: pa.string()
            for f in table.schema
            if not pa.types.is_null(f.type) and pa.types.is_null(self.schema.field(f.name).type)
        }
        self._wait()
        if wider:
            self._widen(wider)
        if not table.schema.equals(self.schema, check_metadata=False):
            table = table.cast(self.schema)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="crmnb-write")
        self._pending = self._pool.submit(self.writer.write_table, table, self.options.get("row_group_size"))

    def _wait(self) -> None:
        """Wait for the write under way, if any; raise what it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _stop(self) -> None:
        """Wait for the write under way, whatever it raises, and let the writing thread go."""
        try:
            if self._pending is not None:
                self._pending.exception()
        finally:
            self._pending = None
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def _opts(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k != "row_group_size"}

    def _widen(self, types: dict[str, pa.DataType]) -> None:
        """Retype the columns typed null so far (``types``: their type now) in the rows written, a row group at
        a time, into a new file that the next batches are written to."""
        self.writer.close()
        source_path = self.target
        self.target = self.path.with_name(self.path.name + f".{len(types)}.{id(self)}.widen")
        fields = [f.with_type(types[f.name]) if f.name in types else f for f in self.schema]
        self.schema = pa.schema(fields, metadata=self.schema.metadata)
        self.writer = pq.ParquetWriter(self.target, self.schema, **self._opts())
        source = pq.ParquetFile(source_path)
        for i in range(source.num_row_groups):
            group = source.read_row_group(i)
            cols = [pa.nulls(group.num_rows, f.type) if f.name in types else group[f.name] for f in self.schema]
            self.writer.write_table(pa.Table.from_arrays(cols, schema=self.schema))
        source.close()
        source_path.unlink()

    def close(self) -> None:
        """Finish the file."""
        if self.writer is None:
            return
        try:
            self._wait()
        finally:
            self._stop()
            self.writer.close()
            self.writer = None
        if self.target != self.path:
            self.target.replace(self.path)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self.writer is not None:
            self._stop()
            self.writer.close()
            self.writer = None
            if self.target != self.path:
                self.target.unlink(missing_ok=True)
            return
        self.close()
