"""Arrow-aware helpers: stand-ins for the pandas operations that loop in Python on text columns, and DuckDB and
Arrow row filters over the Parquet hand-offs.

Text columns are pandas' ``str`` dtype, stored as Arrow strings. On them,
``Series.isin(values)`` builds one Arrow scalar per value in Python before the
(fast) Arrow kernel runs: about 3 µs a value, so checking 6 million activities
against 660,000 customer ids costs seconds. :func:`isin` converts the values in
one call instead and gives the same answer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _arrow_text(s: pd.Series) -> pa.ChunkedArray | pa.Array | None:
    arr = getattr(s.array, "_pa_array", None)
    if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return arr
    return None


def isin(s: pd.Series, values: Any) -> pd.Series:
    """Return ``s.isin(values)`` as a boolean Series; fast when ``s`` is an Arrow text column.

    A missing value in ``s`` is "in" ``values`` when they hold a missing value too, as with
    ``Series.isin``.

    >>> isin(pd.Series(["a", "b", None], dtype="str"), ["b", "c"]).tolist()
    [False, True, False]
    """
    arr = _arrow_text(s)
    if arr is None:
        return s.isin(values)
    if isinstance(values, (pd.Series, pd.Index)):
        vals = values.array
        pa_vals = getattr(vals, "_pa_array", None)
        if pa_vals is None:
            vals = np.asarray(vals, dtype=object)
    elif isinstance(values, np.ndarray):
        pa_vals, vals = None, values.astype(object, copy=False)
    else:
        pa_vals, vals = None, np.asarray(list(values), dtype=object)
    try:
        if pa_vals is None:
            pa_vals = pa.array(vals, from_pandas=True)
        if isinstance(pa_vals, pa.ChunkedArray):
            pa_vals = pa_vals.combine_chunks()
        if not (
            pa.types.is_string(pa_vals.type) or pa.types.is_large_string(pa_vals.type) or pa.types.is_null(pa_vals.type)
        ):
            return s.isin(values)  # numbers or mixed values: pandas' own rules
        has_null = pa_vals.null_count > 0
        pa_vals = pa_vals.drop_null().cast(arr.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return s.isin(values)
    found = pc.is_in(arr, value_set=pa_vals)
    if has_null:
        found = pc.or_(found, pc.is_null(arr))
    return pd.Series(np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool), index=s.index, name=s.name)


def rows_where(tables: Any, name: str, column: str, values: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """Return the rows of table ``name`` whose ``column`` is among ``values``, with a fresh index.

    ``tables`` is a step's tables (:class:`crmnb.handoffs.Tables`, which reads only those rows from
    the hand-off when the table is not read yet) or a plain mapping of frames.

    >>> rows_where({"t": pd.DataFrame({"id": ["a", "b", "a"], "n": [1, 2, 3]})}, "t", "id", ["a"])["n"].tolist()
    [1, 3]
    """
    where = getattr(tables, "where", None)
    if where is not None:
        return where(name, column, values, columns)
    df = tables[name]
    df = df[isin(df[column], values)].reset_index(drop=True)
    return df if columns is None else df[list(columns)]


# --------------------------------------------------------------------------- DuckDB over the Parquet hand-offs
def connect(**settings: Any):
    """Return a new in-memory DuckDB connection with ``settings`` (threads, memory_limit…) that spills what does
    not fit to the system's temporary folder, and gives the memory of a query back when it ends."""
    import duckdb

    # never into the outputs, nor into the kernel's working folder (DuckDB's default ".tmp" there would land
    # in the workbook's notebooks/): a spill file there would be moved with the case's outputs
    return duckdb.connect(
        config={"temp_directory": str(Path(tempfile.gettempdir()) / "crmnb-duckdb"), **GIVE_BACK, **settings}
    )


GIVE_BACK = {"allocator_flush_threshold": "0MB", "allocator_bulk_deallocation_flush_threshold": "0MB"}
"""DuckDB's allocator settings that return a query's freed memory to the system at once. By default it keeps up
to 128 MB per thread and 512 MB freed in bulk for the next query; in a step that runs a query and then works
in pandas, that memory stays held under the frames: at 100x the demo, 0.25 GB after step 6's scoring
features, held through the rest of the step by the process's shared database."""


def with_memory(limits: tuple[str, ...], attempt: Callable[[str], Any]) -> Any:
    """Return ``attempt(limit)`` for the first of DuckDB's memory ``limits`` under which it does not run out of
    memory (a query that cannot spill); past the last, raise what DuckDB raised."""
    import duckdb

    for i, limit in enumerate(limits):
        try:
            return attempt(limit)
        except duckdb.OutOfMemoryException:
            if i == len(limits) - 1:
                raise
    raise ValueError("no memory limit to run with")


def bind_views(con, paths: dict[str, Path]) -> set[str]:
    """Create the view ``folder.name`` over each hand-off file ``paths["folder/name"]``; return the names bound.

    A view reads its file at every query, so a step sees what the steps before it wrote.
    """
    for name, path in paths.items():
        folder, table = name.split("/")
        literal = str(path).replace("'", "''")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {folder}")
        con.execute(f"CREATE OR REPLACE VIEW {folder}.{table} AS SELECT * FROM read_parquet('{literal}')")
    return set(paths)


def read_rows(path: Path, where: dict[str, Any], columns: list[str] | None = None) -> pd.DataFrame:
    """Return the rows of the Parquet file at ``path`` that :func:`row_filter` keeps (only ``columns`` when given),
    in the file's order with a fresh index: the frame ``pd.read_parquet(path, columns, filters=...)`` gives.

    When the filter names a few values (:data:`FEW_VALUES`), its columns are read first, one row group at a
    time, and only the row groups that hold a kept row are read with the other columns. The two activities
    of one lead among 6 million (a typical case's timeline at 100 times the demo) cost 0.3 s and 40 MB
    instead of 0.8 s and 340 MB. Many values (a department's customers) keep most row groups: those are
    read as a whole, filtered by Arrow's scanner.
    """
    import pyarrow.parquet as pq

    expr = row_filter(path, where)
    if sum(_how_many(v) for v in where.values()) > FEW_VALUES:
        return pd.read_parquet(path, columns=columns, filters=expr)
    pf = pq.ParquetFile(path)
    wanted = pf.schema_arrow.names if columns is None else list(columns)
    parts = []
    for group in range(pf.num_row_groups):
        keys = pf.read_row_group(group, columns=list(where))
        keys = keys.append_column(_POSITION, pa.array(np.arange(keys.num_rows, dtype=np.int64)))
        kept = keys.filter(expr).column(_POSITION)
        if len(kept):
            parts.append(pf.read_row_group(group, columns=wanted).select(wanted).take(kept))
    table = pa.concat_tables(parts) if parts else pf.schema_arrow.empty_table().select(wanted)
    return table.to_pandas()


def _how_many(values: Any) -> float:
    try:
        return len(values)
    except TypeError:  # values without a length (a generator): taken as many
        return float("inf")


FEW_VALUES = 1_000
"""Up to this many values in a row filter, :func:`read_rows` reads the other columns only of the row groups
that hold a kept row (each row group's filter builds its lookup of the values again: cheap for a few)."""

_POSITION = "__crmnb_position"
"""The column that numbers a row group's rows while its filter runs (no hand-off has a column of that name)."""


def row_filter(path: Path, where: dict[str, Any]):
    """Return the Arrow expression that keeps the rows of the Parquet file whose column values are among the given
    ones; a missing value among them keeps the rows missing that value, as ``Series.isin`` does."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema, expr = pq.read_schema(path), None
    for column, values in where.items():
        wanted = values.array if isinstance(values, (pd.Series, pd.Index)) else values
        arr = pa.array(wanted if isinstance(wanted, (pa.Array, pd.api.extensions.ExtensionArray)) else list(wanted))
        kind = schema.field(column).type
        if pa.types.is_null(kind):  # a column with no value at all: only a missing value matches
            keep = pc.field(column).is_null() if arr.null_count else pc.scalar(False)
        else:
            keep = pc.field(column).isin(arr.drop_null().cast(kind))
            if arr.null_count:
                keep = keep | pc.field(column).is_null()
        expr = keep if expr is None else expr & keep
    return expr
