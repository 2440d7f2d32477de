"""A table's Parquet file written a batch at a time, as one whole table's write would write it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


class BatchWriter:
    """Append frames of one table to a Parquet file; the file reads back as the frames joined would.

    A text column with no value in the first batch (a contact key where no row has a phone) is typed
    null by Arrow; it is written as text, and if it stays without a value to the end, the file is
    rewritten with it null, as writing the whole table would type it.
    """

    def __init__(self, path: Path, options: dict[str, Any]) -> None:
        self.path = Path(path)
        self.options = dict(options)
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self.empty: set[str] = set()  # columns typed null in every batch so far

    def write(self, df) -> None:
        """Append one batch (a pandas frame with the columns and dtypes of the first)."""
        table = pa.Table.from_pandas(df, preserve_index=False)
        if self.writer is None:
            self.empty = {f.name for f in table.schema if pa.types.is_null(f.type)}
            fields = [f.with_type(pa.string()) if f.name in self.empty else f for f in table.schema]
            self.schema = pa.schema(fields, metadata=table.schema.metadata)
            opts = {k: v for k, v in self.options.items() if k != "row_group_size"}
            self.writer = pq.ParquetWriter(self.path, self.schema, **opts)
        self.empty -= {f.name for f in table.schema if not pa.types.is_null(f.type)}
        if not table.schema.equals(self.schema, check_metadata=False):
            table = table.cast(self.schema)
        self.writer.write_table(table, row_group_size=self.options.get("row_group_size"))

    def close(self) -> None:
        """Finish the file; type null the text columns that never held a value."""
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        if self.empty:
            self._retype()

    def _retype(self) -> None:
        """Rewrite the file with the columns of :attr:`empty` null, a row group at a time."""
        tmp = self.path.with_name(self.path.name + ".retype")
        source = pq.ParquetFile(self.path)
        opts = {k: v for k, v in self.options.items() if k != "row_group_size"}
        fields = [f.with_type(pa.null()) if f.name in self.empty else f for f in self.schema]
        schema = pa.schema(fields, metadata=self.schema.metadata)
        with pq.ParquetWriter(tmp, schema, **opts) as out:
            for i in range(source.num_row_groups):
                group = source.read_row_group(i)  # Arrow casts no text to null: the columns are made anew
                cols = [pa.nulls(group.num_rows) if f.name in self.empty else group[f.name] for f in schema]
                table = pa.Table.from_arrays(cols, schema=schema)
                out.write_table(table, row_group_size=self.options.get("row_group_size"))
        source.close()
        tmp.replace(self.path)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self.writer is not None:
            self.writer.close()
            self.writer = None
            return
        self.close()
