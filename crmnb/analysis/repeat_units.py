"""The repeat purchase's units: one per customer and calendar month with an order, from the orders kept as arrays.

A unit's window depends on the period asked for (a month cut by the period's edge counts only its
orders inside), so these units are built per period; what does not depend on it (the dated orders,
each customer's code, month and rep, the orders sorted by customer and date) is built once per table
(:func:`crmnb.analysis.metric_engine.remember`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmnb.analysis.metric_engine import Keys, columns, encode, period_mask, remember, source

Tables = Mapping[str, pd.DataFrame]
REPEAT_WINDOW_DAYS = 90
"""The repeat-purchase window: a buyer is repeating if they also bought in this many days before."""

ORDER_COLUMNS = ("order_id", "customer_id", "order_date", "amount", "department")


def data_start(t: Tables) -> pd.Timestamp:
    """Return the start of the first day the orders record; a trailing window reaching before it is cut short."""
    if "orders" not in t:
        return pd.Timestamp.min

    def build() -> pd.Timestamp:
        o = columns(t, "orders", ("order_date",))["order_date"]
        return o.min().normalize() if o.notna().any() else pd.Timestamp.min

    return remember((source(t, "orders"),), ("data_start",), build)


def owner_reps(t: Tables) -> pd.DataFrame:
    """Return each customer's rep and department (the first row of a customer id), kept per table."""
    build = lambda: (
        columns(t, "customers", ("customer_id", "owner_rep", "department"))
        .drop_duplicates("customer_id")
        .set_index("customer_id")
    )
    return remember((source(t, "customers"),), ("owner_reps",), build)


@dataclass(frozen=True)
class DatedOrders:
    """The orders with a customer and a date, as arrays: the customer's code (in the customers' sorted order),
    the date, its calendar month and the department; and each order as one sortable number."""

    customers: pd.Series  # the distinct customer ids, sorted, as the orders' column holds them
    code: np.ndarray
    date: np.ndarray
    month: np.ndarray
    department: Keys
    dates: np.ndarray  # the distinct order dates, ascending
    keys: np.ndarray  # customer code × (distinct dates + 1) + the date's rank, ascending


def dated_orders(t: Tables) -> DatedOrders:
    """Return the dated orders (:class:`DatedOrders`), kept per table."""

    def build() -> DatedOrders:
        o = columns(t, "orders", ORDER_COLUMNS).dropna(subset=["customer_id", "order_date"])
        code, customers = pd.factorize(o["customer_id"], sort=True)  # sorted: the units come by customer
        date = o["order_date"].to_numpy()
        dates = np.unique(date)
        keys = np.sort(code.astype(np.int64) * (len(dates) + 1) + np.searchsorted(dates, date))
        month = date.astype("datetime64[M]").astype(np.int64)
        ids = pd.Series(customers, dtype=o["customer_id"].dtype)
        return DatedOrders(ids, code, date, month, encode(o["department"]), dates, keys)

    return remember((source(t, "orders"),), ("dated_orders",), build)


def previous_order(t: Tables, customer_id: pd.Series, first: np.ndarray) -> np.ndarray:
    """Return, per customer and date, the customer's last order date strictly before it (NaT if none)."""
    k = dated_orders(t)
    return _previous(k, pd.Index(k.customers).get_indexer(customer_id).astype(np.int64), first)


def _previous(k: DatedOrders, code: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Return, per customer code (-1: none) and date, the customer's last order date strictly before it."""
    span = len(k.dates) + 1
    code = code.astype(np.int64)
    # the customer's orders dated before ``first`` have the keys below code × span + rank(first)
    at = np.searchsorted(k.keys, code * span + np.searchsorted(k.dates, first), side="left") - 1
    hit = (at >= 0) & (code >= 0) & (k.keys[np.maximum(at, 0)] // span == code)
    prev = np.full(len(code), np.datetime64("NaT"), dtype=k.dates.dtype)
    prev[hit] = k.dates[k.keys[at[hit]] % span]
    return prev


def _customer_keys(t: Tables) -> tuple[np.ndarray, np.ndarray]:
    """Return, per customer code of the dated orders, the customer id and rep as the units give them, kept."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        ids = dated_orders(t).customers
        return ids.to_numpy(), ids.map(owner_reps(t)["owner_rep"]).to_numpy()

    return remember((source(t, "orders"), source(t, "customers")), ("customer_keys",), build)


@dataclass(frozen=True)
class Months:
    """The customer-months of a period with an order: customer code, first and last order, orders, department."""

    code: np.ndarray
    first: np.ndarray
    when: np.ndarray
    n: np.ndarray
    department: np.ndarray


def customer_months(k: DatedOrders, start, end) -> Months:
    """Return the customer-months of the orders in the period, by customer then month.

    A month's department is that of its last order (by date, ties in table order) that names one.
    """
    rows = np.flatnonzero(period_mask(k.date, start, end))
    if not len(rows):
        nothing = np.array([], dtype=np.int64)
        return Months(nothing, k.date[rows], k.date[rows], nothing, np.array([], dtype=object))
    rows = rows[np.lexsort((k.date[rows], k.month[rows], k.code[rows]))]  # stable: ties keep table order
    code, month, date = k.code[rows], k.month[rows], k.date[rows]
    opens = np.flatnonzero(np.r_[True, (code[1:] != code[:-1]) | (month[1:] != month[:-1])])
    closes = np.r_[opens[1:], len(rows)].astype(np.int64) - 1
    dept = k.department.take(rows)
    # the last order so far that names a department, at each month's last order
    named = np.maximum.accumulate(np.where(pd.notna(dept), np.arange(len(rows)), -1))
    at = named[closes]
    department = np.where(at >= opens, dept[np.maximum(at, 0)], k.department.missing)
    return Months(code[opens], date[opens], date[closes], np.diff(np.r_[opens, len(rows)]), department)


def repeat_purchase_units(t: Tables, start, end, repeat_window_days: int = REPEAT_WINDOW_DAYS, **_) -> pd.DataFrame:
    """Return one unit per customer and calendar month with an order in the period: 1 if the customer
    placed another order in the ``repeat_window_days`` days up to their last order of that month.

    The window trails the purchase, so each month is complete as soon as it ends and every
    month has the same window; a unit whose window reaches before the first order in the data
    is left out. The period's rate is the unit-weighted mean of its months'.
    """
    from crmnb.analysis.metric_sql import repeat_units_sql

    got = repeat_units_sql(t, start, end, repeat_window_days, data_start(t))
    if got is not None:  # DuckDB reads the unread orders: only the period's customer-months reach pandas
        return got
    k = dated_orders(t)
    m = customer_months(k, start, end)
    window = np.timedelta64(pd.Timedelta(days=repeat_window_days))
    keep = np.flatnonzero(pd.Series(m.when - window, copy=False) >= data_start(t))
    code = m.code[keep]
    before = _previous(k, code, m.first[keep])
    value = (m.n[keep] >= 2) | (pd.Series(before, copy=False) >= pd.Series(m.when[keep] - window, copy=False))
    ids, reps = _customer_keys(t)
    return pd.DataFrame(
        {
            "when": m.when[keep],
            "department": m.department[keep],
            "owner_rep": reps[code],
            "customer_id": ids[code],
            "value": np.asarray(value, dtype=float),
        }
    )


def repeat_left_out(
    t: Tables, start, end, repeat_window_days: int = REPEAT_WINDOW_DAYS, **_
) -> tuple[int, pd.Timestamp]:
    """Return how many customer-months of the period are left out as their window reaches before the data,
    and the day before which they are."""
    cut = data_start(t) + pd.Timedelta(days=repeat_window_days)
    when = customer_months(dated_orders(t), start, end).when
    return int((pd.Series(when, copy=False) < cut).sum()), cut
