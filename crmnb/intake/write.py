"""A table's Parquet file written a batch at a time, as one whole table's write would write it."""

from __future__ import annotations

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
        if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        and pc.count_distinct(table[f.name]).as_py() <= limit
    ]


class BatchWriter:
    """Append frames of one table to a Parquet file; the file reads back as the frames joined would.

    A column with no value in the first batch (a contact key where no row has a phone) is typed null
    by Arrow, as writing the whole table would type it when it stays without a value to the end; a
    later batch that has a value in it retypes the rows written so far (:meth:`_widen`), once.
    """

    def __init__(self, path: Path, options: dict[str, Any]) -> None:
        self.path = Path(path)
        self.target = self.path  # the file written to: another one once the rows so far were retyped
        self.options = dict(options)
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None

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
        if wider:
            self._widen(wider)
        if not table.schema.equals(self.schema, check_metadata=False):
            table = table.cast(self.schema)
        self.writer.write_table(table, row_group_size=self.options.get("row_group_size"))

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
        self.writer.close()
        self.writer = None
        if self.target != self.path:
            self.target.replace(self.path)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self.writer is not None:
            self.writer.close()
            self.writer = None
            if self.target != self.path:
                self.target.unlink(missing_ok=True)
            return
        self.close()
