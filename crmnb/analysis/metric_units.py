"""The metrics' units: per metric, the leads, orders, tickets… it averages, each with its date and value.

A unit function returns one row per unit with the columns ``when`` (the date that places
the unit in a period), ``department``, ``owner_rep``, ``customer_id`` and ``value``; a
total function (CAC, LTV) returns a ratio of totals and its n. :mod:`crmnb.analysis.metrics`
declares which function measures which metric.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crmnb.analysis.clv import NewCustomerValue, new_customer_value
from crmnb.analysis.metric_engine import (
    KEY_COLUMNS,
    Query,
    Units,
    UnitsSQL,
    columns,
    engine_sql,
    engine_units,
    hours_sql,
    latest_times,
    remember,
    run_units,
    select,
    source,
)
from crmnb.analysis.metric_sql import (
    churn_rows,
    conversion_sql,
    department_share,
    new_customers,
    orders_until,
    sales_cycle_sql,
)
from crmnb.analysis.repeat_units import ORDER_COLUMNS, owner_reps
from crmnb.frames import isin

Tables = dict[str, pd.DataFrame]
UNIT_COLUMNS = ["when", "department", "owner_rep", "customer_id", "value"]


def in_period(df: pd.DataFrame, col: str, start: date | str, end: date | str) -> pd.DataFrame:
    """Return the rows whose ``col`` falls on a day from ``start`` to ``end`` inclusive."""
    lo = pd.Timestamp(start)
    hi = pd.Timestamp(end) + pd.Timedelta(days=1)
    s = df[col]
    return df[(s >= lo) & (s < hi)]


def _units(df: pd.DataFrame, when: str, value: pd.Series | np.ndarray) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "when": df[when].to_numpy(),
            "department": df["department"].to_numpy() if "department" in df else None,
            "owner_rep": df["owner_rep"].to_numpy() if "owner_rep" in df else None,
            "customer_id": df["customer_id"].to_numpy() if "customer_id" in df else None,
            "value": np.asarray(value, dtype=float),
        }
    )
    return out


def _hours(a: pd.Series, b: pd.Series) -> pd.Series:
    return (b - a).dt.total_seconds() / 3600.0


def _lookup(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """Return ``mapping`` at ``keys``, on the keys' index; missing where absent.

    Unlike ``keys.map(mapping)`` this keeps the mapping's dtype when the mapping is
    empty (pandas casts an empty mapper to float, which fails for datetimes).
    """
    return pd.Series(mapping.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=mapping.dtype)


# --------------------------------------------------------------------------- the same units as DuckDB SQL
# Each row-wise metric whose unit is one row of one table, its value from that row alone, is also a query
# over the table's hand-off (crmnb.analysis.metric_engine.Query): while a step has not read the table,
# DuckDB filters the file and only the period's units reach pandas. The SQL keeps the frame's semantics:
# a missing value is never a unit's, hours are nanoseconds / 1e9 / 3600 as pandas computes them.
FOLLOWUP_ONTIME = Query(
    "activities",
    "due_at",
    "coalesce(completed_at IS NOT NULL AND completed_at <= due_at, false)",
    times=("completed_at",),
)
"""A follow-up task is done on time when it was completed by its due time (a missing time: not on time)."""
LEAD_RESPONSE = Query(
    "leads",
    "created_at",
    hours_sql("created_at", "first_contact_at"),
    f"first_contact_at IS NOT NULL AND {hours_sql('created_at', 'first_contact_at')} >= 0",
    times=("first_contact_at",),
)
OPPORTUNITY_WIN = Query("opportunities", "closed_at", "status = 'won'", "status IN ('won', 'lost')", texts=("status",))
ORDER_VALUE = Query("orders", "order_date", "amount", "amount IS NOT NULL AND NOT isnan(amount)", numbers=("amount",))
CSAT = Query("tickets", "created_at", "csat", "csat IS NOT NULL AND NOT isnan(csat)", numbers=("csat",))
NPS = Query(
    "tickets",
    "created_at",
    "CASE WHEN nps >= 9 THEN 100 WHEN nps <= 6 THEN -100 ELSE 0 END",
    "nps IS NOT NULL AND NOT isnan(nps)",
    numbers=("nps",),
)
COMPLAINT_RESOLUTION = Query(
    "tickets",
    "created_at",
    hours_sql("created_at", "resolved_at"),
    f"type = 'complaint' AND resolved_at IS NOT NULL AND {hours_sql('created_at', 'resolved_at')} >= 0",
    times=("resolved_at",),
    texts=("type",),
)


# --------------------------------------------------------------------------- unit functions
# Each row-wise metric's units of the whole table are built once (crmnb.analysis.metric_engine) and the
# period is a filter on them: whether a row is a unit and its value do not depend on the period.
LEAD_COLUMNS = ("lead_id", "created_at", "first_contact_at", *KEY_COLUMNS)
OPPORTUNITY_COLUMNS = ("opportunity_id", "lead_id", "status", "created_at", "closed_at", *KEY_COLUMNS)


def _whole(t: Tables, metric: str, names: tuple[str, ...], build, *extra) -> Units:
    """Return ``build()``, the units of ``metric`` over whole tables ``names``, kept while those tables live."""
    return remember(tuple(source(t, n) for n in names), (metric, *extra), build)


def lead_response_units(t: Tables, start, end, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per contacted lead created in the period: hours from creation to first contact."""

    got = engine_units(t, LEAD_RESPONSE, start, end, department)
    if got is not None:
        return got

    def build() -> Units:
        leads = columns(t, "leads", LEAD_COLUMNS)
        hours = _hours(leads["created_at"], leads["first_contact_at"])
        return Units.of(leads, "created_at", hours, leads["first_contact_at"].notna() & (hours >= 0))

    return select(_whole(t, "lead_response", ("leads",), build), start, end, department)


def followup_ontime_units(t: Tables, start, end, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per follow-up task due in the period: 1 if completed by its due time."""

    got = engine_units(t, FOLLOWUP_ONTIME, start, end, department)  # the largest table: only the period's tasks
    if got is not None:
        return got

    def build() -> Units:
        act = columns(t, "activities", ("due_at", "completed_at", *KEY_COLUMNS))
        return Units.of(act, "due_at", act["completed_at"].notna() & (act["completed_at"] <= act["due_at"]))

    return select(_whole(t, "followup_ontime", ("activities",), build), start, end, department)


def converted_within(leads: pd.DataFrame, opportunities: pd.DataFrame, days: int) -> pd.Series:
    """Return, per lead, whether one of its deals was won within ``days`` of the lead's creation."""
    opp = opportunities
    won = opp[(opp["status"] == "won") & opp["lead_id"].notna() & opp["closed_at"].notna()]
    first_win = _lookup(leads["lead_id"], won.groupby("lead_id")["closed_at"].min())
    return first_win.notna() & (first_win <= leads["created_at"] + pd.Timedelta(days=days))


SCHEDULED = ("due_at",)
"""Date columns that may lie ahead of the export (a task's due time): they do not show how far the data reach."""


def data_end(t: Tables) -> pd.Timestamp:
    """Return the end of the last day the data record an event on: the latest date in any table.

    A look-ahead that runs past this moment would count the future as "did not happen", so
    the units whose look-ahead is not over by then are left out. Dates after the export
    (future dates) are quarantined by the cleaning, so the latest date stands for the export.
    """
    last = latest_times(t, SCHEDULED)
    return (max(last).normalize() + pd.Timedelta(days=1)) if last else pd.Timestamp.max


def looked_ahead(when: pd.Series, days: int, end: pd.Timestamp) -> pd.Series:
    """Return, per date, whether its ``days``-day look-ahead is over by ``end`` (the data's end)."""
    return when + pd.Timedelta(days=days) < end


def lead_conversion_units(
    t: Tables, start, end, conversion_window_days: int = 90, department: str | None = None, **_
) -> pd.DataFrame:
    """Return one unit per lead created in the period whose conversion window the data covers:
    1 if it became a won deal within the window (leads too recent to tell are left out)."""
    until = data_end(t)
    got = conversion_sql(t, start, end, conversion_window_days, until, department)
    if got is not None:  # DuckDB joins the unread leads and deals: only the period's units reach pandas
        return run_units(got)

    def build() -> Units:
        leads = columns(t, "leads", LEAD_COLUMNS)
        won = converted_within(leads, columns(t, "opportunities", OPPORTUNITY_COLUMNS), conversion_window_days)
        return Units.of(leads, "created_at", won, looked_ahead(leads["created_at"], conversion_window_days, until))

    names = ("leads", "opportunities")
    return select(_whole(t, "lead_conversion", names, build, conversion_window_days, until), start, end, department)


def rate_sql(metric: str, t: Tables, start, end, department: str | None = None, **opts) -> UnitsSQL | None:
    """Return the SQL of a 0/1 metric's units while its tables are unread hand-offs (None: not, or not such a
    metric), so that their counts per group come from the engine."""
    if metric == "lead_conversion_rate":
        days = opts.get("conversion_window_days", 90)
        return conversion_sql(t, start, end, days, data_end(t), department)
    q = {"followup_ontime_rate": FOLLOWUP_ONTIME, "opportunity_win_rate": OPPORTUNITY_WIN}.get(metric)
    return None if q is None else engine_sql(t, q, start, end, department)


ROW_QUERIES = {
    "lead_response_hours": LEAD_RESPONSE,
    "followup_ontime_rate": FOLLOWUP_ONTIME,
    "opportunity_win_rate": OPPORTUNITY_WIN,
    "avg_order_value": ORDER_VALUE,
    "csat": CSAT,
    "nps": NPS,
    "complaint_resolution_hours": COMPLAINT_RESOLUTION,
}
"""The metrics whose unit is one row of one table, measured by a query of it."""


def row_sql(
    metric: str, t: Tables, start, end, department: str | None, row_id: str | None = None, **opts
) -> UnitsSQL | None:
    """Return the SQL of a metric's units (each with its row's ``row_id`` column when named) while its tables
    are unread hand-offs (None: not, or the metric's units are not rows of one table)."""
    if metric == "lead_conversion_rate":
        days = opts.get("conversion_window_days", 90)
        return conversion_sql(t, start, end, days, data_end(t), department, row_id)
    q = ROW_QUERIES.get(metric)
    return None if q is None else engine_sql(t, q, start, end, department, row_id)


def conversion_left_out(t: Tables, start, end, conversion_window_days: int = 90, **_) -> tuple[int, pd.Timestamp]:
    """Return how many leads of the period are left out as too recent to tell, and the day from which they are."""
    until = data_end(t)
    cut = until - pd.Timedelta(days=conversion_window_days)
    leads = in_period(columns(t, "leads", ("created_at",)), "created_at", start, end)
    return int((~looked_ahead(leads["created_at"], conversion_window_days, until)).sum()), cut


def opportunity_win_units(t: Tables, start, end, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per opportunity closed (won or lost) in the period: 1 if won."""

    got = engine_units(t, OPPORTUNITY_WIN, start, end, department)
    if got is not None:
        return got

    def build() -> Units:
        opp = columns(t, "opportunities", OPPORTUNITY_COLUMNS)
        return Units.of(opp, "closed_at", opp["status"] == "won", opp["status"].isin(["won", "lost"]))

    return select(_whole(t, "opportunity_win", ("opportunities",), build), start, end, department)


def sales_cycle_units(t: Tables, start, end, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per deal won in the period: days from the lead's creation (else the deal's) to the win."""
    got = sales_cycle_sql(t, start, end, department)
    if got is not None:  # DuckDB joins the period's won deals to their leads: only those units reach pandas
        return run_units(got)

    def build() -> Units:
        opp = columns(t, "opportunities", OPPORTUNITY_COLUMNS)
        won = opp[(opp["status"] == "won").to_numpy(dtype=bool)]
        leads = columns(t, "leads", ("lead_id", "created_at"))
        began = _lookup(won["lead_id"], leads.set_index("lead_id")["created_at"]).fillna(won["created_at"])
        return Units.of(won, "closed_at", (won["closed_at"] - began).dt.total_seconds() / 86400.0)

    return select(_whole(t, "sales_cycle", ("opportunities", "leads"), build), start, end, department)


def order_value_units(t: Tables, start, end, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per order placed in the period: its amount."""

    got = engine_units(t, ORDER_VALUE, start, end, department)
    if got is not None:
        return got

    def build() -> Units:
        orders = columns(t, "orders", ("order_date", "amount", *KEY_COLUMNS))
        return Units.of(orders, "order_date", orders["amount"], orders["amount"].notna())

    return select(_whole(t, "order_value", ("orders",), build), start, end, department)


TICKET_COLUMNS = ("created_at", "resolved_at", "type", "csat", "nps", *KEY_COLUMNS)


def csat_units(t: Tables, start, end, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per surveyed ticket opened in the period: its satisfaction score (1–5)."""

    got = engine_units(t, CSAT, start, end, department)
    if got is not None:
        return got

    def build() -> Units:
        tk = columns(t, "tickets", TICKET_COLUMNS)
        return Units.of(tk, "created_at", tk["csat"], tk["csat"].notna())

    return select(_whole(t, "csat", ("tickets",), build), start, end, department)


def nps_units(t: Tables, start, end, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per NPS answer in the period: +100 promoter (9–10), −100 detractor (0–6), else 0."""

    got = engine_units(t, NPS, start, end, department)
    if got is not None:
        return got

    def build() -> Units:
        tk = columns(t, "tickets", TICKET_COLUMNS)
        score = np.where(tk["nps"] >= 9, 100.0, np.where(tk["nps"] <= 6, -100.0, 0.0))
        return Units.of(tk, "created_at", score, tk["nps"].notna())

    return select(_whole(t, "nps", ("tickets",), build), start, end, department)


def complaint_resolution_units(t: Tables, start, end, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per resolved complaint opened in the period: hours to resolution."""

    got = engine_units(t, COMPLAINT_RESOLUTION, start, end, department)
    if got is not None:
        return got

    def build() -> Units:
        tk = columns(t, "tickets", TICKET_COLUMNS)
        hours = _hours(tk["created_at"], tk["resolved_at"])
        return Units.of(tk, "created_at", hours, (tk["type"] == "complaint") & tk["resolved_at"].notna() & (hours >= 0))

    return select(_whole(t, "complaint_resolution", ("tickets",), build), start, end, department)


def churn_units(t: Tables, start, end, lookback_days: int = 365, department: str | None = None, **_) -> pd.DataFrame:
    """Return one unit per customer who bought in the year before the period: 1 if they bought nothing in it."""
    lo = pd.Timestamp(start)
    got = churn_rows(t, start, end, lookback_days)
    if got is not None:  # DuckDB reads the unread orders and customers: one row per customer reaches pandas
        per = pd.DataFrame({"customer_id": got["customer_id"].to_pandas().to_numpy(), "when": lo})
        per["department"] = got["department"].to_pandas().to_numpy()
        per["owner_rep"] = got["owner_rep"].to_pandas().to_numpy()
        return _units(per, "when", got["churned"].to_numpy())
    orders = columns(t, "orders", ("customer_id", "order_date"))
    base = in_period(orders, "order_date", lo - pd.Timedelta(days=lookback_days), lo - pd.Timedelta(days=1))
    ids = base["customer_id"].dropna().unique()
    bought = pd.Index(in_period(orders, "order_date", start, end)["customer_id"].dropna().unique())
    cust = owner_reps(t)
    per = pd.DataFrame({"customer_id": ids, "when": lo})
    per["department"] = per["customer_id"].map(cust["department"])
    per["owner_rep"] = per["customer_id"].map(cust["owner_rep"])
    return _units(per, "when", ~isin(per["customer_id"], bought))


def _campaign_spend(t: Tables, start, end, department: str | None) -> float:
    """Return campaign spend falling in the period (pro rata by days), for one department by its share of leads."""
    c = columns(t, "campaigns", ("campaign_id", "spend", "start_date", "end_date")).dropna(subset=["spend"])
    lo, hi = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
    c_start = c["start_date"].fillna(lo)
    c_end = c["end_date"].fillna(hi - pd.Timedelta(days=1)) + pd.Timedelta(days=1)
    days = (c_end - c_start).dt.days.clip(lower=1)
    overlap = ((c_end.clip(upper=hi) - c_start.clip(lower=lo)).dt.days).clip(lower=0)
    spend = c["spend"] * overlap / days
    if department is not None:
        share = department_share(t, department)
        if share is None:
            leads = columns(t, "leads", ("campaign_id", "department")).dropna(subset=["campaign_id"])
            share = (leads["department"] == department).groupby(leads["campaign_id"]).mean()
        spend = spend * c["campaign_id"].map(share).fillna(0).to_numpy()
    return float(spend.sum())


def _new_customers(t: Tables, start, end, department: str | None) -> int:
    n = new_customers(t, start, end, department)
    if n is not None:  # DuckDB counts over the unread deals
        return n
    opp = in_period(columns(t, "opportunities", OPPORTUNITY_COLUMNS), "closed_at", start, end)
    won = opp[(opp["status"] == "won") & opp["lead_id"].notna()]
    if department is not None:
        won = won[won["department"] == department]
    return int(won["lead_id"].nunique())


def cac_value(t: Tables, start, end, department: str | None = None, **_) -> tuple[float, int]:
    """Return customer acquisition cost (campaign spend in the period / customers won from leads) and n."""
    n = _new_customers(t, start, end, department)
    spend = _campaign_spend(t, start, end, department)
    return (spend / n if n else float("nan")), n


def ltv_parts(t: Tables, end, department: str | None = None, clv_horizon_months: float = 12) -> NewCustomerValue:
    """Return the lifetime value of a newly won customer over the CLV horizon and its parts, from the
    orders up to ``end`` (one department's or all): the BG/NBD model and horizon the CLV uses."""

    def build() -> NewCustomerValue:
        # DuckDB keeps the rows the model uses (one department's, up to the end), in order: the same fit
        orders = orders_until(t, end, department)
        if orders is None:
            orders = columns(t, "orders", ORDER_COLUMNS)
            if department is not None:
                orders = orders[orders["department"] == department]
        return new_customer_value(orders, end, clv_horizon_months)

    # the LTV and LTV/CAC of a step fit the same model: once
    return remember((source(t, "orders"),), ("ltv", str(end), department, clv_horizon_months), build)


def ltv_value(
    t: Tables, start, end, department: str | None = None, clv_horizon_months: float = 12, **_
) -> tuple[float, int]:
    """Return the lifetime value of a newly won customer over the CLV horizon (:func:`ltv_parts`) and n.

    First purchase + BG/NBD expected repeat purchases × mean repeat purchase: the same model
    and horizon as the CLV of existing customers, so LTV/CAC compares the acquisition cost with
    what a new customer brings in that horizon. NaN when the model cannot be fitted.
    """
    try:
        parts = ltv_parts(t, end, department, clv_horizon_months)
    except ValueError:  # too few repeat buyers, or no orders: no model, no LTV
        return float("nan"), 0
    return float(parts.value), parts.n


def ltv_cac_value(t: Tables, start, end, department: str | None = None, **opts) -> tuple[float, int]:
    """Return LTV / CAC for the period."""
    ltv, n = ltv_value(t, start, end, department, **opts)
    cac, _ = cac_value(t, start, end, department)
    return (ltv / cac if cac and cac > 0 else float("nan")), n
