"""The metrics whose unit joins tables, as DuckDB SQL over the hand-offs: lead conversion (a lead and its deals)
and churn (a customer's orders before and in the period, its rep from the customers).

While a step has not read the tables whole, DuckDB joins the files and only the period's units reach pandas,
in the order the frames' units come in; the SQL keeps the frames' semantics (a missing value is never a match,
times are compared in nanoseconds as pandas compares them). A table with other column types than the SQL
assumes is measured from its frame instead (None here).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crmnb.analysis.metric_engine import KEY_COLUMNS, UnitsSQL, run_sql, unread_file

NS_PER_DAY = 86_400 * 1_000_000_000

_TEXT = "text"
_TIME = "time"


def _typed(path: Path, wanted: dict[str, str]) -> bool:
    """Return True when the file has each column ``wanted`` with its kind (text, time), and its keys as text."""
    types = {f.name: f.type for f in pq.read_schema(path)}
    text = lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)
    ok = {_TEXT: text, _TIME: lambda t: t == pa.timestamp("ns")}
    keys = {c: _TEXT for c in KEY_COLUMNS if c in types}
    return all(c in types and ok[k](types[c]) for c, k in {**wanted, **keys}.items())


def _kinds(path: Path, wanted: dict[str, str]) -> set[str]:
    """Return the columns of ``wanted`` the file has with their kind."""
    return {c for c in wanted if _typed(path, {c: wanted[c]})}


def _files(tables: Mapping[str, Any], wanted: dict[str, dict[str, str]]) -> dict[str, Path] | None:
    """Return the hand-off file of each table ``wanted`` while every one is unread and typed as the SQL assumes."""
    paths = {name: unread_file(tables, name) for name in wanted}
    if any(p is None or not _typed(p, wanted[n]) for n, p in paths.items()):
        return None
    return paths


def _keys_sql(path: Path, alias: str) -> str:
    have = set(pq.read_schema(path).names)
    return ", ".join(f'{alias}."{c}"' if c in have else f'NULL::VARCHAR AS "{c}"' for c in KEY_COLUMNS)


def _department_sql(path: Path, alias: str, department: str | None) -> str:
    if department is None:
        return ""
    if "department" not in pq.read_schema(path).names:
        return " AND false"  # no department column: no unit belongs to one
    return f' AND {alias}."department" = $department'


def _window(start, end) -> dict:
    return {
        "lo": pd.Timestamp(start).to_pydatetime(),
        "hi": (pd.Timestamp(end) + pd.Timedelta(days=1)).to_pydatetime(),
    }


# --------------------------------------------------------------------------- lead conversion
CONVERSION_SQL = """
WITH won AS (
    SELECT lead_id, min(closed_at) AS first_win
    FROM read_parquet($opportunities)
    WHERE status = 'won' AND lead_id IS NOT NULL AND closed_at IS NOT NULL
    GROUP BY lead_id
)
SELECT l.created_at AS "when", {keys},
       CAST(coalesce(epoch_ns(w.first_win) <= epoch_ns(l.created_at) + $window_ns, false) AS DOUBLE) AS value,
       {row_id}l.file_row_number AS _order
FROM read_parquet($leads, file_row_number = true) AS l
LEFT JOIN won AS w ON w.lead_id = l.lead_id
WHERE l.created_at >= $lo AND l.created_at < $hi AND epoch_ns(l.created_at) + $window_ns < $until{department}
"""


def conversion_sql(
    tables: Mapping[str, Any],
    start,
    end,
    days: int,
    until: pd.Timestamp,
    department: str | None,
    row_id: str | None = None,
) -> UnitsSQL | None:
    """Return the SQL of the lead conversion's units of the period (None: a table is read, or typed otherwise).

    A lead created in the period whose ``days``-day window is over by ``until`` is a unit: 1 if one of its
    deals was won within the window.
    """
    paths = _files(
        tables,
        {
            "leads": {"lead_id": _TEXT, "created_at": _TIME},
            "opportunities": {"lead_id": _TEXT, "status": _TEXT, "closed_at": _TIME},
        },
    )
    if paths is None:
        return None
    params = {"window_ns": int(days) * NS_PER_DAY, "until": int(pd.Timestamp(until).value), **_window(start, end)}
    return _joined_units(CONVERSION_SQL, paths, "leads", ("l", "l"), department, row_id, params)


def _joined_units(
    template: str,
    paths: dict[str, Path],
    unit_table: str,
    aliases: tuple[str, str],
    department: str | None,
    row_id: str | None,
    params: dict,
) -> UnitsSQL | None:
    """Return the units query ``template`` over the files ``paths`` (each a parameter by its table's name),
    whose units are rows of ``unit_table``: its key columns, department filter and ``row_id`` filled in for
    the aliases (keys, department) the template gives that table; None when the file lacks ``row_id`` as text."""
    unit = paths[unit_table]
    if row_id is not None and row_id not in _kinds(unit, {row_id: _TEXT}):
        return None
    keys, where = aliases
    sql = template.format(
        keys=_keys_sql(unit, keys),
        department=_department_sql(unit, where, department),
        row_id=f'{keys}."{row_id}" AS row_id, ' if row_id else "",
    )
    have = frozenset(pq.read_schema(unit).names)
    params = {**{name: str(path) for name, path in paths.items()}, **params}
    if department is not None and "department" in have:
        params["department"] = department
    return UnitsSQL(sql, params, have)


# --------------------------------------------------------------------------- sales cycle
SALES_CYCLE_SQL = """
WITH won AS (
    SELECT o.* FROM read_parquet($opportunities, file_row_number = true) AS o
    WHERE o.status = 'won' AND o.closed_at >= $lo AND o.closed_at < $hi{department}
), began AS (
    SELECT l.lead_id, arg_min(l.created_at, l.file_row_number) AS created_at
    FROM read_parquet($leads, file_row_number = true) AS l SEMI JOIN won ON won.lead_id = l.lead_id
    GROUP BY l.lead_id
)
SELECT w.closed_at AS "when", {keys},
       CAST((epoch_ns(w.closed_at) - epoch_ns(coalesce(b.created_at, w.created_at))) / 1000000000
            / CAST(86400 AS DOUBLE) AS DOUBLE) AS value,
       {row_id}w.file_row_number AS _order
FROM won AS w LEFT JOIN began AS b ON b.lead_id = w.lead_id
"""


def sales_cycle_sql(
    tables: Mapping[str, Any], start, end, department: str | None, row_id: str | None = None
) -> UnitsSQL | None:
    """Return the SQL of the sales cycle's units of the period (None: a table is read, or typed otherwise): per
    deal won in the period, the days from its lead's creation (else the deal's) to the win, in seconds / 86400
    as pandas computes them. Only the leads of the period's won deals are read past their ids."""
    paths = _files(
        tables,
        {
            "leads": {"lead_id": _TEXT, "created_at": _TIME},
            "opportunities": {"lead_id": _TEXT, "status": _TEXT, "created_at": _TIME, "closed_at": _TIME},
        },
    )
    if paths is None:
        return None
    return _joined_units(SALES_CYCLE_SQL, paths, "opportunities", ("w", "o"), department, row_id, _window(start, end))


# --------------------------------------------------------------------------- churn
CHURN_SQL = """
WITH base AS (
    SELECT customer_id, min(file_row_number) AS first_row
    FROM read_parquet($orders, file_row_number = true)
    WHERE order_date >= $base_lo AND order_date < $lo AND customer_id IS NOT NULL
    GROUP BY customer_id
), bought AS (
    SELECT DISTINCT customer_id FROM read_parquet($orders)
    WHERE order_date >= $lo AND order_date < $hi AND customer_id IS NOT NULL
), customer AS (
    SELECT customer_id, department, owner_rep FROM (
        SELECT customer_id, department, owner_rep,
               row_number() OVER (PARTITION BY customer_id ORDER BY file_row_number) AS k
        FROM read_parquet($customers, file_row_number = true)
    ) WHERE k = 1
)
SELECT b.customer_id, c.department, c.owner_rep, x.customer_id IS NULL AS churned
FROM base AS b
LEFT JOIN customer AS c ON c.customer_id = b.customer_id
LEFT JOIN bought AS x ON x.customer_id = b.customer_id
ORDER BY b.first_row
"""


def churn_rows(tables: Mapping[str, Any], start, end, lookback_days: int) -> pa.Table | None:
    """Return, per customer who bought in the ``lookback_days`` before the period (in the order of their first
    such order), their department and rep (the customers' first row) and whether they bought nothing in it;
    None while a table is read or typed otherwise."""
    paths = _files(
        tables,
        {
            "orders": {"customer_id": _TEXT, "order_date": _TIME},
            "customers": {"customer_id": _TEXT, "department": _TEXT, "owner_rep": _TEXT},
        },
    )
    if paths is None:
        return None
    lo = pd.Timestamp(start)
    params = {
        "orders": str(paths["orders"]),
        "customers": str(paths["customers"]),
        "base_lo": (lo - pd.Timedelta(days=lookback_days)).to_pydatetime(),
        **_window(start, end),
    }
    # every department's: the caller keeps one (so that its frame has the frames' types even when empty)
    return run_sql(CHURN_SQL, params)


# --------------------------------------------------------------------------- repeat purchase
REPEAT_SQL = """
WITH dated AS (
    SELECT customer_id, order_date, department, file_row_number AS r
    FROM read_parquet($orders, file_row_number = true)
    -- the period's orders and those of the window before it: no other order can count
    WHERE customer_id IS NOT NULL AND order_date >= $window_lo AND order_date < $hi
), months AS (
    SELECT customer_id, min(order_date) AS first_order, max(order_date) AS "when", count(*) AS n,
           arg_max(department, (order_date, r)) FILTER (WHERE department IS NOT NULL) AS department
    FROM dated
    WHERE order_date >= $lo AND order_date < $hi
    GROUP BY customer_id, date_trunc('month', order_date)
), customer AS (
    SELECT customer_id, first(owner_rep ORDER BY file_row_number) AS owner_rep
    FROM read_parquet($customers, file_row_number = true)
    WHERE customer_id IN (SELECT customer_id FROM months)
    GROUP BY customer_id
)
SELECT m."when", m.department, c.owner_rep, m.customer_id,
       CAST(m.n >= 2 OR coalesce(epoch_ns(p.order_date) >= epoch_ns(m."when") - $window_ns, false) AS DOUBLE)
           AS value
FROM months AS m
ASOF LEFT JOIN dated AS p ON p.customer_id = m.customer_id AND m.first_order > p.order_date
LEFT JOIN customer AS c ON c.customer_id = m.customer_id
WHERE epoch_ns(m."when") - $window_ns >= $data_start
ORDER BY m.customer_id, m."when"
"""


def repeat_units_sql(
    tables: Mapping[str, Any], start, end, window_days: int, data_start: pd.Timestamp
) -> pd.DataFrame | None:
    """Return the repeat purchase's units of the period from DuckDB (None: a table is read, or typed otherwise):
    one per customer and calendar month with an order, by customer then month, as
    :func:`crmnb.analysis.repeat_units.repeat_purchase_units` gives them.

    A month's department is that of its last order (by date, then table order) naming one; the order before
    the month's first is the customer's latest strictly before it. An order before the period's start less the
    window cannot make a month repeating, so that search looks from there on (none found: none that counts).
    """
    paths = _files(
        tables,
        {
            "orders": {"customer_id": _TEXT, "order_date": _TIME, "department": _TEXT},
            "customers": {"customer_id": _TEXT, "owner_rep": _TEXT},
        },
    )
    if paths is None:
        return None
    params = {
        "orders": str(paths["orders"]),
        "customers": str(paths["customers"]),
        "window_ns": int(window_days) * NS_PER_DAY,
        "window_lo": (pd.Timestamp(start) - pd.Timedelta(days=window_days)).to_pydatetime(),
        "data_start": int(pd.Timestamp(data_start).value) if data_start > pd.Timestamp.min else -(2**63) + 1,
        **_window(start, end),
    }
    got = run_sql(REPEAT_SQL, params)
    out = {"when": got["when"].to_numpy().astype("datetime64[ns]")}
    for c in ("department", "owner_rep", "customer_id"):
        out[c] = got[c].to_pandas().to_numpy()
    out["value"] = got["value"].to_numpy()
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- orders for the lifetime value
ORDERS_UNTIL_SQL = """
SELECT customer_id, order_date, amount
FROM read_parquet($orders, file_row_number = true)
WHERE customer_id IS NOT NULL AND order_date IS NOT NULL AND order_date < $until{department}
ORDER BY file_row_number
"""


def orders_until(tables: Mapping[str, Any], as_of, department: str | None) -> pd.DataFrame | None:
    """Return the orders the lifetime value is fitted on (with a customer, dated up to ``as_of``'s day, of one
    department or all), in the table's order, with the columns the fit reads (customer, date, amount), from DuckDB; None while the orders are read or typed otherwise, or
    when none is left (the frame then says why)."""
    paths = _files(
        tables,
        {"orders": {"order_id": _TEXT, "customer_id": _TEXT, "order_date": _TIME, "department": _TEXT}},
    )
    if paths is None or not pa.types.is_float64(pq.read_schema(paths["orders"]).field("amount").type):
        return None
    params = {
        "orders": str(paths["orders"]),
        "until": (pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)).to_pydatetime(),
    }
    if department is not None:
        params["department"] = department
    got = run_sql(ORDERS_UNTIL_SQL.format(department=" AND department = $department" if department else ""), params)
    return got.to_pandas() if got.num_rows else None


# --------------------------------------------------------------------------- acquisition cost
def new_customers(tables: Mapping[str, Any], start, end, department: str | None) -> int | None:
    """Return how many leads became a won deal closed in the period (of one department or all), from DuckDB;
    None while the deals are read or typed otherwise."""
    paths = _files(tables, {"opportunities": {"lead_id": _TEXT, "status": _TEXT, "closed_at": _TIME}})
    if paths is None:
        return None
    path = paths["opportunities"]
    sql = f"""
        SELECT count(DISTINCT lead_id) AS n FROM read_parquet($opportunities) AS o
        WHERE status = 'won' AND lead_id IS NOT NULL AND closed_at >= $lo AND closed_at < $hi
        {_department_sql(path, "o", department)}
    """
    params = {"opportunities": str(path), **_window(start, end)}
    if department is not None and "department" in pq.read_schema(path).names:
        params["department"] = department
    return int(run_sql(sql, params)["n"][0].as_py())


def department_share(tables: Mapping[str, Any], department: str) -> pd.Series | None:
    """Return, per campaign, the share of its leads that belong to ``department`` (a whole count over n, so
    pandas' mean to the last bit), from DuckDB; None while the leads are read or typed otherwise."""
    paths = _files(tables, {"leads": {"campaign_id": _TEXT, "department": _TEXT}})
    if paths is None:
        return None
    sql = """
        SELECT campaign_id, sum(CASE WHEN department = $department THEN 1.0 ELSE 0.0 END) / count(*) AS share
        FROM read_parquet($leads) WHERE campaign_id IS NOT NULL GROUP BY campaign_id
    """
    got = run_sql(sql, {"leads": str(paths["leads"]), "department": department})
    return pd.Series(got["share"].to_numpy(), index=got["campaign_id"].to_pandas(), dtype=float)
