"""Cleaning in the engine: repeated keys found by DuckDB, and each cleaned table written by one streaming query.

A cleaned table is its intake hand-off with the cleaning plan (:class:`~crmnb.intake.clean_tables.Plan`)
applied as small side tables: a one-byte mask per row (kept, and each column set to missing), joined to
the Parquet file by position so that the rows keep their order, and the customer merge map, applied
to each streamed Arrow batch. No cleaned table is held whole in pandas: only one Arrow batch of it is in
memory at a time, and it is written with the schema of the table as taken in.

Its check is the cleaned schema (:func:`crmnb.intake.clean_checks.batch_schema`), once per table: pandera
checks the table's columns and types on the written file's (empty) frame, and DuckDB counts, over the
whole file, the values the schema's checks rule out (a required value missing, a value outside its
allowed set or its bounds). Only when some are found is the file read again, batch by batch, through
pandera, so that the message names the columns and rows as the full check does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmnb.intake.schema import ROW, TABLES

BATCH_ROWS = 131_072
"""Rows per Arrow batch streamed from DuckDB and per Parquet row group (as every hand-off)."""


@dataclass
class Plan:
    """The part of a cleaning plan a query of kept rows reads: the rows kept, the values set to missing."""

    kept: np.ndarray | None = None
    missing: dict = field(default_factory=dict)
    dropped: np.ndarray | None = None  # or, instead of the rows kept, the positions of those removed


@cache
def connect() -> duckdb.DuckDBPyConnection:
    """Return cleaning's own DuckDB connection, made once (opening one costs 27 ms, a query on the demo 8 ms):
    two threads, memory capped, spilling past it, joins built on their right side. Side tables are registered
    under a name for one query and unregistered after it."""
    from crmnb.frames import connect as engine

    con = engine(threads=2, memory_limit="1GB", preserve_insertion_order=True)
    # every join here is written with the small side table on the right, to be hashed; the kept rows'
    # positional scan has no row estimate, so the optimisers would hash the whole table instead (the
    # unknown customers of 6 M visits ran out of memory at 100x the demo)
    con.execute("SET disabled_optimizers = 'join_order,build_side_probe_side'")
    return con


def release() -> None:
    """Close cleaning's connection if one is open; the next query opens another. What DuckDB holds for it
    (about 0.3 GB after cleaning 100 times the demo) goes back to the system rather than into later steps."""
    if connect.cache_info().currsize:
        connect().close()
        connect.cache_clear()


def quote(name: str) -> str:
    """Return ``name`` quoted as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def later_repeats(keys: pd.Series) -> np.ndarray | None:
    """Return, for each value of ``keys`` in order, whether an earlier one equals it (as
    ``Series.duplicated(keep="first")``, a missing value equal to a missing value), found by DuckDB's hash
    aggregate; None when the values are not text DuckDB can take."""
    try:
        arr = pa.array(keys, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type)):
        return None
    side = pa.table({"k": arr, "i": pa.array(np.arange(len(arr), dtype=np.int64))})
    con = connect()
    con.register("side", side)
    try:
        later = con.sql(
            "SELECT s.i FROM side s JOIN (SELECT k, min(i) AS first FROM side GROUP BY k HAVING count(*) > 1) d "
            "ON s.k IS NOT DISTINCT FROM d.k WHERE s.i > d.first"
        ).fetchnumpy()["i"]
    finally:
        con.unregister("side")
    out = np.zeros(len(arr), dtype=bool)
    out[later.astype(np.int64)] = True
    return out


def _mask(plan, rows: int, columns: list[str]) -> pa.Table:
    """Return the side table joined by position: whether each row is kept, and set to missing per column."""
    keep = np.ones(rows, dtype=bool)
    if plan.kept is not None:
        keep[:] = False
        keep[plan.kept] = True
    if plan.dropped is not None:
        keep[plan.dropped] = False
    side = {"_keep": keep}
    for i, col in enumerate(c for c in columns if c in plan.missing):
        miss = np.zeros(rows, dtype=bool)
        miss[plan.missing[col]] = True
        side[f"_miss{i}"] = miss
    return pa.table(side)


def _select(src: Path, plan, columns: list[str], positions: bool = False) -> str:
    """Return the query of the cleaned table: the intake file by position with its mask, kept rows only
    (with ``positions``, each row's position in the file first, as ``_pos``)."""
    missing = [c for c in columns if c in plan.missing]
    cols = [
        f"CASE WHEN m._miss{missing.index(c)} THEN NULL ELSE t.{quote(c)} END AS {quote(c)}"
        if c in missing
        else f"t.{quote(c)}"
        for c in columns
    ]
    read = f"read_parquet({_literal(src)}, file_row_number = true)" if positions else f"read_parquet({_literal(src)})"
    pos = ["t.file_row_number AS _pos"] if positions else []
    return f"SELECT {', '.join(pos + cols)} FROM {read} t POSITIONAL JOIN mask m WHERE m._keep"


def _repointed_sql(query: str, repoint: dict[str, dict], columns: list[str]) -> tuple[str, dict[str, pa.Table]]:
    """Return ``query`` with the ids the merge map names replaced by the kept ones (a join to each column's
    map, as :func:`_repointed` does batch by batch), and the maps to register for it."""
    sides, joins, swaps = {}, [], []
    for i, (col, to) in enumerate((c, to) for c, to in repoint.items() if c in columns and to):
        q, name = quote(col), f"_rp{i}"
        sides[name] = pa.table(
            {"old": pa.array(list(to), pa.string()), "new": pa.array(list(to.values()), pa.string())}
        )
        joins.append(f"LEFT JOIN {name} ON b.{q} = {name}.old")
        swaps.append(f"coalesce({name}.new, b.{q}) AS {q}")
    if not sides:
        return query, {}
    return f"SELECT b.* REPLACE ({', '.join(swaps)}) FROM ({query}) b {' '.join(joins)}", sides


def kept_rows(*args, **kwargs) -> pd.DataFrame:
    """Return what :func:`kept_arrow` returns (same arguments) as a frame indexed by position: the rows a
    cleaning rule moves, found without reading the table into pandas."""
    df = kept_arrow(*args, **kwargs).to_pandas()
    df.index = pd.Index(df.pop("_pos").to_numpy(dtype=np.int64))
    return df


def kept_arrow(
    src: Path,
    rows: int,
    kept: np.ndarray | None,
    missing: dict,
    columns: list[str],
    body: str,
    repoint: dict[str, dict] | None = None,
    sides: dict[str, pa.Table] | None = None,
    dropped: np.ndarray | None = None,
) -> pa.Table:
    """Return the result of ``body``, SQL over ``v`` (the kept rows of a table's intake file ``src``, with
    their position ``_pos`` and ``columns``, values set to missing as ``missing`` says, ids re-pointed as
    ``repoint`` says, the rows ``kept``, or all but those ``dropped``) and over the small ``sides`` tables by
    their names, in the file's order, as an Arrow table with ``_pos`` a column (a large result, such as the
    kept customer ids, is not turned into Python objects)."""
    plan = Plan(kept, missing, dropped)
    view, maps = _repointed_sql(_select(src, plan, columns, positions=True), repoint or {}, columns)
    tables = {"mask": _mask(plan, rows, columns), **maps, **(sides or {})}
    con = connect()
    try:
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(f"WITH v AS NOT MATERIALIZED ({view}) {body} ORDER BY _pos").to_arrow_table()
    finally:
        for name in tables:
            con.unregister(name)


def among_sql(column: str, side: str, within: bool) -> str:
    """Return the SQL over ``v`` of the rows whose ``column`` is set and is (``within``) or is not one of the
    ``side`` table's ``column``."""
    q = quote(column)
    return f"SELECT v.* FROM v {'SEMI' if within else 'ANTI'} JOIN {side} s ON v.{q} = s.{q} WHERE v.{q} IS NOT NULL"


def heavy_sql(column: str, limit: int) -> str:
    """Return the SQL over ``v`` of the rows whose ``column`` more than ``limit`` rows share, with that
    number of rows as ``_per``."""
    q = quote(column)
    return (
        f"SELECT v.*, c._per FROM v JOIN (SELECT {q}, count(*) AS _per FROM v WHERE {q} IS NOT NULL "
        f"GROUP BY {q} HAVING count(*) > {int(limit)}) c ON v.{q} = c.{q}"
    )


def is_missing(column: str, kind: pa.DataType) -> str:
    """Return the SQL true for a missing value of ``column`` (for a float, NaN too, as pandas counts it)."""
    q = quote(column)
    return f"({q} IS NULL OR isnan({q}))" if pa.types.is_floating(kind) else f"{q} IS NULL"


def later_repeats_sql(column: str) -> str:
    """Return the SQL over ``v`` of the rows whose ``column`` an earlier kept row has already.

    The keys are grouped by their 64-bit hash first (a missing key hashes as every other missing one), and
    only the rows of a hash seen more than once are grouped by the key itself: grouping 10 M text keys
    took 4.8 s at 100x the demo, their hashes 2.1 s.
    """
    q = quote(column)
    return (
        f"SELECT * FROM (WITH c AS (SELECT hash({q}) AS _h FROM v GROUP BY _h HAVING count(*) > 1), "
        f"s AS (SELECT v.* FROM v SEMI JOIN c ON hash(v.{q}) = c._h) "
        f"SELECT s.* FROM s JOIN (SELECT {q}, min(_pos) AS _first FROM s GROUP BY {q} HAVING count(*) > 1) d "
        f"ON s.{q} IS NOT DISTINCT FROM d.{q} WHERE s._pos > d._first)"
    )


def may_repeat(src: Path, column: str) -> bool:
    """Return whether two rows of a table's intake file ``src`` have the same hash of ``column``: when none
    do, no kept row repeats a key, and the rows are not read again (at 100x the demo, one pass over the
    file instead of two, for every table but the few whose keys repeat)."""
    q = quote(column)
    got = connect().sql(
        f"SELECT count(*) FROM (SELECT hash({q}) AS _h FROM read_parquet({_literal(src)}) GROUP BY _h "
        "HAVING count(*) > 1)"
    )
    return got.fetchall()[0][0] > 0


def outside_sql(column: str, lo: float | None, hi: float | None) -> str:
    """Return the SQL true for a value of ``column`` below ``lo`` or above ``hi`` (either may be None)."""
    q = quote(column)
    return " OR ".join(x for x in (lo is not None and f"{q} < {lo}", hi is not None and f"{q} > {hi}") if x)


def after(column: str, moment: pd.Timestamp) -> str:
    """Return the SQL true for a value of ``column`` after ``moment``."""
    return f"{quote(column)} > CAST({_literal(f'{moment:%Y-%m-%d %H:%M:%S.%f}')} AS TIMESTAMP)"


def flagged_sql(conditions: dict[str, str]) -> str:
    """Return the SQL over ``v`` of the rows that meet any of ``conditions``, with a flag per condition in
    turn (``_f0``, ``_f1``, ...), in one scan of the table."""
    flags = ", ".join(f"({c}) AS _f{i}" for i, c in enumerate(conditions.values()))
    return f"SELECT *, {flags} FROM v WHERE {' OR '.join(f'({c})' for c in conditions.values())}"


def _repointed(batch: pa.RecordBatch, repoint: dict[str, dict]) -> pa.RecordBatch:
    """Return a batch with the ids the merge map names replaced by the kept ones (Arrow compute, no pandas)."""
    for col, to in repoint.items():
        i = batch.schema.get_field_index(col)
        if i < 0 or not to:
            continue
        ids = batch.column(i)
        old = pa.array(list(to), type=ids.type)
        new = pa.array(list(to.values()), type=ids.type)
        at = pc.index_in(ids, value_set=old)
        batch = batch.set_column(i, col, pc.if_else(pc.is_null(at), ids, pc.take(new, at)))
    return batch


def target_schema(empty: pd.DataFrame) -> pa.Schema:
    """Return the Arrow schema a cleaned table is written with: that of its intake frame, as pandas gives it."""
    return pa.Schema.from_pandas(empty, preserve_index=False)


def stream(src: Path, plan, rows: int, schema: pa.Schema, bad: str | None = None) -> Iterator[pa.RecordBatch]:
    """Yield the cleaned table in Arrow batches, in the intake file's order, cast to ``schema``; with ``bad``
    (SQL over the cleaned columns), each batch has one more column last, ``_bad``, whether its row meets it."""
    con = connect()
    con.register("mask", _mask(plan, rows, schema.names))
    query = _select(src, plan, schema.names)
    if bad is not None:
        query = f"SELECT *, ({bad}) AS _bad FROM ({query})"
        schema = schema.append(pa.field("_bad", pa.bool_()))
    try:
        reader = con.sql(query).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            yield _repointed(batch, plan.repoint).cast(schema)
    finally:
        con.unregister("mask")


def write_table(src: Path, plan, rows: int, empty: pd.DataFrame, part: Path, table: str = "") -> tuple[int, int]:
    """Write the cleaned table from its intake file ``src`` to ``part``; return the rows written and, for
    ``table``, how many of them its cleaned schema's value checks rule out, counted in the same pass.

    Without dictionary encoding: most columns are ids or free text, for which the writer built a dictionary
    and then dropped it (at 100x the demo, email events took 11.8 s to write so and 4.5 s without, and read
    back into pandas in 2.0 s instead of 10.3 s, in a file of about the same size).
    """
    schema = target_schema(empty)
    conds = _conditions(table, schema.names, {f.name: f.type for f in schema}) if table else []
    bad = " OR ".join(f"({c})" for c in conds) if conds else None
    written = failing = 0
    with pq.ParquetWriter(part, schema, compression="lz4", use_dictionary=False) as writer:
        for batch in stream(src, plan, rows, schema, bad):
            if bad is not None:
                failing += int(pc.sum(batch.column("_bad")).as_py() or 0)
                batch = batch.drop_columns(["_bad"])
            if batch.num_rows:
                writer.write_batch(batch, row_group_size=BATCH_ROWS)
                written += batch.num_rows
    return written, failing


def _conditions(table: str, columns: list[str], types: dict[str, pa.DataType]) -> list[str]:
    """Return, per value check of the cleaned schema, the SQL that is true for a row failing it."""
    spec, found = TABLES[table], []
    if ROW in columns:
        found.append(f"{quote(ROW)} IS NULL OR {quote(ROW)} < 1")
    for col in (c for c in spec.columns if c in columns):
        q = quote(col)
        floating = pa.types.is_floating(types[col])
        nan = f" OR isnan({q})" if floating else ""
        if col in spec.required:
            found.append(f"{q} IS NULL{nan}")
        if col in spec.allowed:
            found.append(f"{q} IS NOT NULL AND {q} NOT IN ({', '.join(map(_literal, spec.allowed[col]))})")
        lo, hi = spec.bounds.get(col, (None, None))
        if floating and (lo is not None or hi is not None):
            found.append(f"NOT isnan({q}) AND ({outside_sql(col, lo, hi)})")
    return found


def failures(path: Path, table: str) -> int:
    """Return how many values of a table's Parquet file its cleaned schema's value checks rule out (DuckDB)."""
    schema = pq.read_schema(path)
    types = {f.name: f.type for f in schema}
    conds = _conditions(table, schema.names, types)
    if not conds:
        return 0
    counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in conds)
    got = connect().sql(f"SELECT {counts} FROM read_parquet({_literal(path)})").fetchall()[0]
    return int(sum(got))
