"""The metric engine: the columns a metric needs, read once, and each metric's units built once per table.

Most metrics measure one row of one table (a lead, a task, an order): whether a row is a unit, and its
value, do not depend on the period asked for. So :func:`remember` keeps every such metric's units of
the whole table, built in one pass over only the columns it needs, for as long as the table lives;
a period and a department are then a filter on a few arrays (:func:`select`), not a new pass over
millions of rows. The text columns (department, rep, customer) are held as codes into their distinct
values, so no period's units convert Arrow strings to Python objects one by one.

A table the step has not read yet is read from its hand-off, only the columns asked for
(:func:`columns`). Tables are not changed in place once a metric is computed on them: a cleaning step
makes new frames, which start anew here.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KEY_COLUMNS = ("department", "owner_rep", "customer_id")
"""The text columns every unit carries, to break a metric down by."""


# --------------------------------------------------------------------------- reading only what is needed
def unread_file(tables: Mapping[str, pd.DataFrame], name: str) -> Path | None:
    """Return the hand-off file behind table ``name`` of a step's tables when it has not been read yet."""
    unread = getattr(tables, "unread_file", None)  # a step's tables (crmnb.handoffs.Tables); a dict has none
    return unread(name) if unread is not None else None


def source(tables: Mapping[str, pd.DataFrame], name: str) -> object:
    """Return what a table's columns come from: its frame, or the step's tables while it is unread."""
    return tables if unread_file(tables, name) is not None else tables[name]


def columns(tables: Mapping[str, pd.DataFrame], name: str, wanted: tuple[str, ...]) -> pd.DataFrame:
    """Return the columns ``wanted`` of table ``name`` that it has, reading only those from an unread hand-off."""
    path = unread_file(tables, name)
    if path is None:
        df = tables[name]
        return df[[c for c in wanted if c in df.columns]]
    have = set(pq.read_schema(path).names)
    # not kept: what is built from the columns is, and the columns of the largest tables would hold
    # hundreds of MB through the step
    return pd.read_parquet(path, columns=[c for c in wanted if c in have])


def _file_latest(path: Path, skip: tuple[str, ...]) -> list[pd.Timestamp]:
    """Return the latest time of each timestamp column of a Parquet file, from its statistics where they hold it."""
    f = pq.ParquetFile(path)
    out = []
    for i, field in enumerate(f.schema_arrow):
        if field.name in skip or not pa.types.is_timestamp(field.type):
            continue
        stats = [f.metadata.row_group(g).column(i).statistics for g in range(f.metadata.num_row_groups)]
        used = [s for s in stats if s is None or s.num_values > 0]  # num_values: the non-missing ones
        if all(s is not None and s.has_min_max for s in used):
            highs = [s.max for s in used]
        else:  # a row group without statistics: read the column
            highs = [pd.read_parquet(path, columns=[field.name])[field.name].max()]
        highs = [pd.Timestamp(h) for h in highs if h is not None and not pd.isna(h)]
        if highs:
            out.append(max(highs))
    return out


def latest_times(tables: Mapping[str, Any], skip: tuple[str, ...]) -> list[pd.Timestamp]:
    """Return the latest time of every date column of every table (but ``skip``), without reading unread tables."""
    last = []
    for name in list(tables):
        path = unread_file(tables, name)
        if path is not None:
            last += _file_latest(path, skip)
            continue
        df = tables[name]
        if not isinstance(df, pd.DataFrame):
            continue
        last += [
            df[c].max()
            for c in df.columns
            if c not in skip and pd.api.types.is_datetime64_any_dtype(df[c]) and df[c].notna().any()
        ]
    return last


# --------------------------------------------------------------------------- units queried from a hand-off
@dataclass(frozen=True)
class Query:
    """A row-wise metric's units as SQL over its table's hand-off: the date that places a unit in a period,
    its value, and which rows are units. The SQL assumes the column types named here; a file with others
    (or without a column) is measured from its frame instead."""

    table: str
    when: str
    value: str  # the unit's value: a number, or a boolean counted as 1 or 0
    rows: str = "true"  # which rows are units
    times: tuple[str, ...] = ()  # timestamp columns read besides ``when``
    numbers: tuple[str, ...] = ()  # float columns read
    texts: tuple[str, ...] = ()  # text columns read besides the keys


def hours_sql(start: str, end: str) -> str:
    """Return the SQL of the hours from ``start`` to ``end`` as pandas gives them: nanoseconds / 1e9 / 3600."""
    return f"((epoch_ns({end}) - epoch_ns({start})) / 1000000000 / CAST(3600 AS DOUBLE))"


def engine_ready(path: Path, q: Query) -> bool:
    """Return True when a hand-off's file has every column of ``q`` with the type its SQL assumes, and its key
    columns as text."""
    types = {f.name: f.type for f in pq.read_schema(path)}

    def typed(cols, ok) -> bool:
        return all(c in types and ok(types[c]) for c in cols)

    text = lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)
    return (
        typed((q.when, *q.times), lambda t: t == pa.timestamp("ns"))
        and typed(q.numbers, pa.types.is_float64)
        and typed((*q.texts, *(c for c in KEY_COLUMNS if c in types)), text)
    )


def engine_units(tables: Mapping[str, Any], q: Query, start, end, department: str | None) -> pd.DataFrame | None:
    """Return the units of ``q`` in the period from DuckDB while its table is an unread hand-off (None: not)."""
    got = engine_sql(tables, q, start, end, department)
    return None if got is None else run_units(got)


def engine_sql(
    tables: Mapping[str, Any], q: Query, start, end, department: str | None, row_id: str | None = None
) -> UnitsSQL | None:
    """Return the SQL of the units of ``q`` in the period while its table is an unread hand-off (None: not);
    with ``row_id``, each unit carries that text column of its row too (None when the file lacks it)."""
    path = unread_file(tables, q.table)
    if path is None or not engine_ready(path, q):
        return None
    if row_id is not None and not _is_text(path, row_id):
        return None
    return units_sql(path, q, start, end, department, row_id)


def _is_text(path: Path, column: str) -> bool:
    """Return True when the Parquet file has ``column`` as text."""
    schema = pq.read_schema(path)
    if column not in schema.names:
        return False
    kind = schema.field(column).type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


@dataclass(frozen=True)
class UnitsSQL:
    """A metric's units of a period as a DuckDB query: when, the key columns, value, in the frames' order (the
    column ``_order``); ``have`` names the key columns its table has (the others are NULL)."""

    sql: str
    params: dict
    have: frozenset[str]


def units_sql(path: Path, q: Query, start, end, department: str | None = None, row_id: str | None = None) -> UnitsSQL:
    """Return the SQL of the units of the period (and department) of a hand-off, in the table's order; with
    ``row_id``, each unit carries that column of its row as ``row_id``."""
    have = set(pq.read_schema(path).names)
    keys = ", ".join(f'"{c}"' if c in have else f'NULL::VARCHAR AS "{c}"' for c in KEY_COLUMNS)
    if department is not None and "department" not in have:
        department_sql = " AND false"  # no department column: no unit belongs to one
    else:
        department_sql = ' AND "department" = $department' if department is not None else ""
    sql = f"""
        SELECT "{q.when}" AS "when", {keys}, CAST(({q.value}) AS DOUBLE) AS value,
            {f'"{row_id}" AS row_id, ' if row_id else ""}file_row_number AS _order
        FROM read_parquet($path, file_row_number = true)
        WHERE "{q.when}" >= $lo AND "{q.when}" < $hi AND ({q.rows}){department_sql}
    """
    params = {
        "path": str(path),
        "lo": pd.Timestamp(start).to_pydatetime(),
        "hi": (pd.Timestamp(end) + pd.Timedelta(days=1)).to_pydatetime(),
    }
    if department is not None and "department" in have:
        params["department"] = department
    return UnitsSQL(sql, params, frozenset(have))


def query_units(path: Path, q: Query, start, end, department: str | None = None) -> pd.DataFrame:
    """Return the units of the period (and department) of a hand-off, as :func:`select` gives them.

    DuckDB filters the file; only the period's units reach pandas, in the table's order.
    """
    return run_units(units_sql(path, q, start, end, department))


_ENGINE: list = []  # the process's DuckDB database for the metrics' queries, opened by the first


def run_sql(
    sql: str,
    params: dict,
    result: Callable[[Any], Any] = lambda relation: relation.to_arrow_table(),
    register: Mapping[str, Any] | None = None,
) -> Any:
    """Return ``result`` of DuckDB ``sql`` (over hand-off files named in ``params``, and the Arrow tables or
    frames of ``register`` under their names): by default the result as an Arrow table.

    The queries share one in-memory database (a new one costs a tenth of a second, and a step runs dozens);
    it holds no table, so each query reads the files as they are now. Each query sets its own memory limit,
    the shared database keeping the last one's, and one that cannot spill past it runs again with the next.
    """
    from crmnb.frames import with_memory

    def attempt(limit: str) -> Any:
        cur = cursor()
        try:
            cur.execute(f"SET memory_limit = '{limit}'")
            for name, table in (register or {}).items():
                cur.register(name, table)
            return result(cur.sql(sql, params=params))
        finally:
            cur.close()

    return with_memory(MEMORY_LIMITS, attempt)


MEMORY_LIMITS = ("512MB", "1GB", "3GB")
"""DuckDB's memory for a metric's query: past it the joins and groupings spill to disk rather than grow with the
data (at 1000x the demo the repeat purchase's months and their ASOF join took 2.9 GB without a limit, DuckDB's
default being 80% of the machine); a query that cannot spill runs again with the next."""


def cursor():
    """Return a new cursor on the process's shared DuckDB database (close it when done): a query of its own,
    without the tenth of a second a new database costs."""
    from crmnb.frames import connect

    if not _ENGINE:
        _ENGINE.append(connect())
    return _ENGINE[0].cursor()


def release() -> None:
    """Close the shared metric database if one is open; the next query opens another. What DuckDB holds for it
    (0.11 GB after step 6 at 100 times the demo: its cached file pages, its hash tables' arenas) goes back to the
    system between steps rather than under the next step's frames."""
    while _ENGINE:
        _ENGINE.pop().close()


def run_units(u: UnitsSQL) -> pd.DataFrame:
    """Return the units of a query as a frame: when, department, owner_rep, customer_id, value."""
    got = run_sql(f"SELECT * EXCLUDE (_order) FROM ({u.sql}) ORDER BY _order", u.params)
    return units_frame(got, set(u.have))


def run_values(u: UnitsSQL) -> np.ndarray:
    """Return the values of a query's units alone, in the units' order (a mean of them is the frame's)."""
    return run_sql(f"SELECT value FROM ({u.sql}) ORDER BY _order", u.params)["value"].to_numpy()


GROUPS = ("month", "department", "owner_rep")
"""What a rate's units can be grouped by in the engine."""


def run_aggregate(u: UnitsSQL, by: list[str]) -> pd.DataFrame | None:
    """Return value (mean) and n of a 0/1 metric's units per ``by`` (of :data:`GROUPS`) from DuckDB, ordered as
    pandas' groupby orders them (missing keys last); None when nothing was measured (the frame path's types).

    A mean of 0/1 values is a whole count over n, so it is the same to the last bit in any summing order.
    """
    cols = ", ".join("date_trunc('month', \"when\") AS month" if c == "month" else f'"{c}"' for c in by)
    keys = ", ".join(f'"{c}"' for c in by)
    order = ", ".join(f'"{c}" ASC NULLS LAST' for c in by)
    sql = f"""
        SELECT {keys}, sum(value) / count(*) AS value, count(*) AS n
        FROM (SELECT {cols}, value FROM ({u.sql}))
        GROUP BY {keys} ORDER BY {order}
    """
    got = run_sql(sql, u.params)
    if not got.num_rows:
        return None
    out = {}
    for c in by:
        if c == "month":
            # the month as metrics.aggregate makes it (its unit is pandas' own choice)
            month = pd.Series(got[c].to_numpy().astype("datetime64[ns]"))
            out[c] = month.dt.to_period("M").dt.to_timestamp().to_numpy()
        else:
            out[c] = _text(got[c]) if c in u.have else np.full(got.num_rows, np.nan, dtype=object)
    out["value"] = got["value"].to_numpy()
    out["n"] = got["n"].to_numpy().astype(np.int64)
    return pd.DataFrame(out)


def units_frame(got: pa.Table, have: set[str]) -> pd.DataFrame:
    """Return the units a query gave (when, the keys, value) as :func:`select` builds them; a key column the
    table does not have (not in ``have``) is None."""
    cols = {c: (_text(got[c]) if c in have else None) for c in KEY_COLUMNS}
    when = got["when"].to_numpy().astype("datetime64[ns]")
    out = pd.DataFrame({"when": when, **cols, "value": got["value"].to_numpy()})
    if "row_id" in got.column_names:  # the unit's own row, for tracing it to what it belongs to
        out["row_id"] = _text(got["row_id"])
    return out


def _text(column: pa.ChunkedArray) -> pd.Series | np.ndarray:
    """Return a text column as the frame :func:`select` builds holds it, without a Python object per value.

    A frame built from Python strings and NaN infers the ``str`` dtype, which Arrow gives directly; one
    without a single string (empty, or every value missing) stays ``object``, NaN for each missing value.
    """
    if column.null_count < len(column):
        return column.to_pandas()
    return np.full(len(column), np.nan, dtype=object)


# --------------------------------------------------------------------------- keeping what was built
_KEPT: dict[tuple, tuple[tuple[weakref.ref, ...], object]] = {}


def _forget(key: tuple) -> None:
    _KEPT.pop(key, None)


def remember(owners: tuple[object, ...], key: tuple, build: Callable[[], Any]) -> Any:
    """Return ``build()``, built once while every one of ``owners`` (frames, a step's tables) lives."""
    k = (tuple(id(o) for o in owners), key)
    hit = _KEPT.get(k)
    if hit is not None and all(r() is o for r, o in zip(hit[0], owners, strict=True)):
        return hit[1]
    value = build()
    _KEPT[k] = (tuple(weakref.ref(o) for o in owners), value)
    for o in owners:
        weakref.finalize(o, _forget, k)
    return value


def once(build: Callable[..., Any], frames: tuple[object, ...], *args: Any) -> Any:
    """Return ``build(*frames, *args)``, built once while ``frames`` live: :func:`remember` keyed by the call.

    ``args`` must be hashable (dates, names). The result is shared: a caller that changes it copies it first.
    """
    return remember(frames, (build.__module__, build.__qualname__, *args), lambda: build(*frames, *args))


# --------------------------------------------------------------------------- units held as arrays
@dataclass(frozen=True)
class Keys:
    """A text column as codes into its distinct values; code -1 (missing) picks the last value, the missing one."""

    codes: np.ndarray
    labels: np.ndarray
    missing: object = None  # what the column's missing value is read as (``labels[-1]`` when coded)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Return the column's values at ``rows``, as the column's own ``to_numpy()`` gives them."""
        return self.labels[self.codes[rows]]

    def equals(self, value: object) -> np.ndarray:
        """Return, per row, whether the column holds ``value``."""
        return (self.labels == value)[self.codes]


def encode(s: pd.Series | None) -> Keys | None:
    """Return a column as :class:`Keys` (None when the table has no such column).

    Text stored as Arrow strings is coded; any other column keeps its values as they are.

    >>> k = encode(pd.Series(["b", None, "b"], dtype="str"))
    >>> k.take(np.array([0, 1, 2])).tolist(), k.equals("b").tolist()
    (['b', nan, 'b'], [True, False, True])
    """
    if s is None:
        return None
    if not isinstance(s.dtype, pd.StringDtype):
        return Keys(np.arange(len(s)), s.to_numpy())
    codes, uniques = pd.factorize(s)
    codes = codes.astype(np.int32) if len(uniques) < 2**31 - 1 else codes  # half the memory of the codes
    labels = np.empty(len(uniques) + 1, dtype=object)
    labels[:-1] = np.asarray(uniques, dtype=object)
    labels[-1] = pd.Series([None], dtype=s.dtype).to_numpy()[0]
    return Keys(codes, labels, labels[-1])


@dataclass(frozen=True)
class Units:
    """A metric's units of a whole table, in the table's row order: when, value and the key columns."""

    when: np.ndarray
    value: np.ndarray
    keys: dict[str, Keys | None]

    @classmethod
    def of(cls, df: pd.DataFrame, when: str, value: Any, rows: Any = None) -> Units:
        """Return the units of the rows ``rows`` (a mask; all rows when None) of ``df``, placed by ``when``."""
        value = np.asarray(value, dtype=float)
        if rows is not None:
            rows = np.asarray(rows, dtype=bool)
            df, value = df[rows], value[rows]
        keys = {c: encode(df[c]) if c in df.columns else None for c in KEY_COLUMNS}
        return cls(df[when].to_numpy(), value, keys)


def period_mask(when: np.ndarray, start, end) -> np.ndarray:
    """Return, per date, whether it falls on a day from ``start`` to ``end`` inclusive (as ``in_period``)."""
    lo = pd.Timestamp(start)
    hi = pd.Timestamp(end) + pd.Timedelta(days=1)
    s = pd.Series(when, copy=False)
    return ((s >= lo) & (s < hi)).to_numpy()


def select(u: Units, start, end, department: str | None = None) -> pd.DataFrame:
    """Return the units of the period (and department) as a frame: when, department, owner_rep, customer_id, value."""
    keep = period_mask(u.when, start, end)
    if department is not None:
        dep = u.keys["department"]
        keep = keep & dep.equals(department) if dep is not None else np.zeros_like(keep)
    rows = np.flatnonzero(keep)
    cols = {c: (k.take(rows) if k is not None else None) for c, k in u.keys.items()}
    return pd.DataFrame({"when": u.when[rows], **cols, "value": u.value[rows]})
