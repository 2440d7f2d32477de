"""The rows the goal's units are traced to, read only for those units: a lead's channel and times, a customer's
rep and industry, a deal's lead. Each lookup is the first row of each id, as ``drop_duplicates(key)`` of the
whole table gives it, but reads only the rows whose id a unit names (and only the columns asked for) while the
table is an unread hand-off.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pyarrow.parquet as pq

from crmnb.analysis.metric_engine import run_units, unread_file
from crmnb.analysis.metric_units import row_sql
from crmnb.frames import rows_where


def present(tables: Mapping, table: str, wanted: tuple[str, ...]) -> list[str]:
    """Return the columns of ``wanted`` table ``table`` has, from its file's schema while it is unread."""
    path = unread_file(tables, table)
    have = pq.read_schema(path).names if path is not None else tables[table].columns
    return [c for c in wanted if c in have]


def first_rows(tables: Mapping, table: str, key: str, ids, wanted: tuple[str, ...]) -> pd.DataFrame:
    """Return the first row of each id among ``ids`` (missing ones included) of table ``table``, indexed by
    ``key``: the columns of ``wanted`` it has."""
    cols = present(tables, table, wanted)
    if unread_file(tables, table) is None or not hasattr(tables, "where"):
        whole = tables[table]
        return whole[[key, *cols]].drop_duplicates(key).set_index(key)
    values = pd.unique(pd.Series(ids, dtype=object))
    # the rows of those ids, in the table's order: the first of an id is its first in the whole table
    rows = rows_where(tables, table, key, values, [key, *cols])
    return rows.drop_duplicates(key).set_index(key)


def traced_rows(
    metric: str, tables: Mapping, table: str, key: str, start, end, department: str | None, **opts
) -> pd.DataFrame | None:
    """Return the goal metric's units with ``row_id`` (the unit's row) and ``customer_id`` (that of the first
    row of its id) from DuckDB while its tables are unread hand-offs; None when they are not."""
    sql = row_sql(metric, tables, start, end, department, key, **opts)
    if sql is None:
        return None
    u = run_units(sql)
    real = first_rows(tables, table, key, u["row_id"], ("customer_id",))
    col = real["customer_id"] if "customer_id" in real else pd.Series(dtype=object)
    u["customer_id"] = u["row_id"].map(col)
    return u.drop(columns="row_id").assign(row_id=u["row_id"])
