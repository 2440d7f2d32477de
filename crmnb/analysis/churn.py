"""Churn early warning (客户流失预警): rule-based risk levels, a leak-free model and a watch list.

Three parts, all DataFrame in, DataFrame out:

* :func:`rule_risk` grades every active buyer high / medium / low from visits, orders
  and complaints over the months before the as-of date (:class:`ChurnRules`).
* :func:`build_features` and :func:`label_churn` make a model table at a cutoff:
  features only from events dated *before* the cutoff, the label from the orders in
  ``[cutoff, cutoff + horizon)``. :func:`train_and_evaluate` trains at
  ``as_of − 2 × horizon`` and evaluates on the later cutoff ``as_of − horizon``, whose
  labels are fully observed by ``as_of``; :func:`score` gives probabilities at ``as_of``.
* :func:`crmnb.analysis.watch.watch_list` puts both together, with masked contact data and an action.

>>> result = train_and_evaluate(customers, orders, visits, tickets, activities, "2026-04-01")  # doctest: +SKIP
>>> features = build_features(customers, orders, visits, tickets, activities, "2026-04-01")  # doctest: +SKIP
>>> rules = rule_risk(customers, orders, visits, tickets, "2026-04-01")  # doctest: +SKIP
>>> watch_list(customers, rules, score(result, features), drivers=drivers(result, features))  # doctest: +SKIP

Dates are instants: ``"2026-04-01"`` means 2026-04-01 00:00, so everything on
2026-03-31 is before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from crmnb.analysis.events import DAY_NS, NAT_NS, codes, events_before, ns, timestamp
from crmnb.errors import NotEnoughData

RISK_LEVELS: tuple[str, ...] = ("high", "medium", "low")
"""Risk levels, most urgent first; rules are evaluated in this order."""

COMPLAINT_TYPES: frozenset[str] = frozenset({"complaint", "投诉"})

RULE_COLUMNS: dict[str, tuple[str, ...]] = {
    "visits": ("customer_id", "visited_at"),
    "tickets": ("customer_id", "created_at", "type"),
}
"""The columns :func:`rule_risk` reads of the event tables: a step reads only these of the hand-offs."""

FEATURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("customer_id", "order_date", "amount"),
    "visits": ("customer_id", "visited_at"),
    "tickets": ("customer_id", "created_at", "type", "resolved_at", "csat"),
    "activities": ("customer_id", "due_at", "completed_at"),
}
"""The columns :func:`build_features` and :func:`label_churn` read of the event tables."""
"""Ticket types that count as a complaint (compared trimmed and lower-cased)."""


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class ChurnRules:
    """Thresholds of the rule-based risk levels.

    high: visits/month below ``min_visits_per_month`` and at most ``max_orders`` orders
    and at least ``min_complaints`` complaints, all in the ``lookback_months`` before
    the as-of date; medium: low visits and no orders, or low visits and a complaint;
    low: everything else. Only buyers whose last order is at most
    ``active_within_days`` before the as-of date are graded (None: every buyer).
    """

    lookback_months: int = 3
    min_visits_per_month: float = 3.0
    max_orders: int = 0
    min_complaints: int = 1
    active_within_days: int | None = 365


def as_rules(rules: ChurnRules | Mapping[str, Any] | None) -> ChurnRules:
    """Return ``rules`` as :class:`ChurnRules`; a dict may set any of its fields.

    >>> as_rules({"min_visits_per_month": 2}).min_visits_per_month
    2
    """
    if rules is None:
        return ChurnRules()
    if isinstance(rules, ChurnRules):
        return rules
    if isinstance(rules, Mapping):
        known = {f.name for f in fields(ChurnRules)}
        unknown = sorted(set(rules) - known)
        if unknown:
            raise ValueError(f"unknown churn rule(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return ChurnRules(**rules)
    raise TypeError(f"rules must be ChurnRules, a dict or None, not {type(rules).__name__}")


def _buyers(
    customers: pd.DataFrame, orders: pd.DataFrame, cutoff: pd.Timestamp, max_lapse_days: int | None
) -> pd.DataFrame:
    """Return first_order, last_order, orders and spend per customer who bought before ``cutoff``.

    Only customers of the customers table count; those whose last order is more than
    ``max_lapse_days`` before the cutoff are left out (already lost, not at risk).
    Sorted by customer_id.
    """
    ids = pd.Index(customers["customer_id"].dropna().unique()).sort_values()
    code = codes(orders["customer_id"], ids)
    t = ns(orders["order_date"])
    c = cutoff.value
    ok = (t != NAT_NS) & (t < c) & (code >= 0)
    code, t = code[ok], t[ok]
    amount = np.nan_to_num(orders["amount"].to_numpy(dtype=float, na_value=np.nan)[ok])
    n = np.bincount(code, minlength=len(ids))
    first = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(first, code, t)
    last = np.full(len(ids), NAT_NS)
    np.maximum.at(last, code, t)
    keep = n > 0
    if max_lapse_days is not None:
        keep &= last >= c - int(max_lapse_days) * DAY_NS
    out = pd.DataFrame(
        {
            "first_order": first[keep],
            "last_order": last[keep],
            "orders_total": n[keep],
            "spend_total": np.bincount(code, weights=amount, minlength=len(ids))[keep],
        },
        index=ids[keep],
    )
    out.index.name = "customer_id"
    return out


def _is_complaint(types: pd.Series) -> np.ndarray:
    return types.astype("string").str.strip().str.lower().isin(COMPLAINT_TYPES).fillna(False).to_numpy(dtype=bool)


def _plural(n: np.ndarray, one: str, many: str) -> np.ndarray:
    return np.where(n == 1, one, many)


def _fmt(values: np.ndarray, spec: str) -> pd.Series:
    return pd.Series(values).map(spec.format)


def _reasons(
    r: ChurnRules,
    per_month: np.ndarray,
    low_visits: np.ndarray,
    o_int: np.ndarray,
    no_orders: np.ndarray,
    c_int: np.ndarray,
) -> pd.Series:
    """Return each buyer's reasons: visits per month, orders and complaints in the lookback, with the rule's
    threshold where it is crossed."""
    months = f"{r.lookback_months:g} month" + ("" if r.lookback_months == 1 else "s")
    thr = f"{r.min_visits_per_month:g}"
    v_txt = _fmt(per_month, "{:.1f}") + " visits/month" + pd.Series(np.where(low_visits, f" < {thr}", ""))
    o_txt = pd.Series(
        np.where(
            o_int == 0,
            f"no order in {months}",
            pd.Series(o_int).astype(str).to_numpy()
            + _plural(o_int, " order", " orders")
            + f" in {months}"
            + np.where(no_orders, f" ≤ {r.max_orders}", ""),
        )
    )
    c_txt = pd.Series(
        np.where(
            c_int == 0,
            "no complaint",
            pd.Series(c_int).astype(str).to_numpy() + _plural(c_int, " complaint", " complaints"),
        )
    )
    return v_txt + "; " + o_txt + "; " + c_txt


def _grade(
    r: ChurnRules, per_month: np.ndarray, n_orders: np.ndarray, n_complaints: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the rules' flags low visits, no orders and complained, and the risk level they give."""
    low_visits = per_month < r.min_visits_per_month
    no_orders = n_orders <= r.max_orders
    complained = n_complaints >= r.min_complaints
    high = low_visits & no_orders & complained
    medium = (low_visits & no_orders) | (complained & low_visits)
    return low_visits, no_orders, complained, np.select([high, medium], ["high", "medium"], "low")


def rule_risk(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    visits: pd.DataFrame,
    tickets: pd.DataFrame,
    as_of: Any,
    rules: ChurnRules | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Grade each active buyer's churn risk by the rules, evaluated high → medium → low.

    Returns one row per buyer (last order at most ``active_within_days`` before
    ``as_of``), sorted by customer_id: visits and visits_per_month (visits in the
    lookback / lookback months), orders and complaints in the lookback, last_order,
    spend_12m, the flags low_visits / no_orders / complained, risk_level and reasons.
    The lookback is ``[as_of − lookback_months, as_of)``.
    """
    r = as_rules(rules)
    as_of = timestamp(as_of)
    start = (as_of - pd.DateOffset(months=int(r.lookback_months))).value
    year = (as_of - pd.DateOffset(years=1)).value
    buyers = _buyers(customers, orders, as_of, r.active_within_days)
    idx = buyers.index

    ov = events_before(orders, "order_date", idx, as_of)
    amount = orders["amount"].to_numpy(dtype=float, na_value=np.nan)[ov.pos]
    vv = events_before(visits, "visited_at", idx, as_of)
    tv = events_before(tickets, "created_at", idx, as_of)
    complaint = _is_complaint(tickets["type"].iloc[tv.pos])

    n_visits = vv.count(start)
    per_month = n_visits / float(r.lookback_months)
    n_orders = ov.count(start)
    n_complaints = tv.count(start, mask=complaint)
    spend = ov.count(year, weights=np.nan_to_num(amount))

    low_visits, no_orders, complained, level = _grade(r, per_month, n_orders, n_complaints)

    o_int, c_int = n_orders.astype(int), n_complaints.astype(int)
    reasons = _reasons(r, per_month, low_visits, o_int, no_orders, c_int)

    return pd.DataFrame(
        {
            "customer_id": idx.to_numpy(),
            "visits": n_visits.astype(int),
            "visits_per_month": per_month,
            "orders": o_int,
            "complaints": c_int,
            "last_order": pd.to_datetime(buyers["last_order"].to_numpy()),
            "spend_12m": spend,
            "low_visits": low_visits,
            "no_orders": no_orders,
            "complained": complained,
            "risk_level": level,
            "reasons": reasons.to_numpy(),
        }
    )


# --------------------------------------------------------------------------- features and labels
FEATURES: tuple[str, ...] = (
    "recency_days",
    "tenure_days",
    "orders_total",
    "mean_gap_days",
    "recency_gap_ratio",
    "orders_90",
    "orders_180",
    "orders_365",
    "spend_90",
    "spend_180",
    "spend_365",
    "visits_30",
    "visits_90",
    "visits_trend",
    "days_since_visit",
    "tickets_90",
    "complaints_90",
    "complaints_365",
    "csat_mean",
    "csat_answers",
    "followups_90",
    "overdue_followups_90",
)
"""Model features, in column order."""

FEATURE_LABELS: dict[str, str] = {
    "recency_days": "days since last order",
    "tenure_days": "days as customer",
    "orders_total": "orders ever",
    "mean_gap_days": "mean days between orders",
    "recency_gap_ratio": "days since last order / usual gap",
    "orders_90": "orders in 90 days",
    "orders_180": "orders in 180 days",
    "orders_365": "orders in 365 days",
    "spend_90": "spend in 90 days",
    "spend_180": "spend in 180 days",
    "spend_365": "spend in 365 days",
    "visits_30": "visits in 30 days",
    "visits_90": "visits in 90 days",
    "visits_trend": "visit trend per month",
    "days_since_visit": "days since last visit",
    "tickets_90": "tickets in 90 days",
    "complaints_90": "complaints in 90 days",
    "complaints_365": "complaints in 365 days",
    "csat_mean": "mean CSAT",
    "csat_answers": "CSAT answers",
    "followups_90": "follow-ups done in 90 days",
    "overdue_followups_90": "overdue follow-ups in 90 days",
}
"""Plain-English name of each feature, for the reasons of the watch list."""

RISKY_SIDE: dict[str, int] = {
    "recency_days": 1,
    "tenure_days": -1,
    "orders_total": -1,
    "mean_gap_days": 1,
    "recency_gap_ratio": 1,
    "orders_90": -1,
    "orders_180": -1,
    "orders_365": -1,
    "spend_90": -1,
    "spend_180": -1,
    "spend_365": -1,
    "visits_30": -1,
    "visits_90": -1,
    "visits_trend": -1,
    "days_since_visit": 1,
    "tickets_90": 0,
    "complaints_90": 1,
    "complaints_365": 1,
    "csat_mean": -1,
    "csat_answers": 0,
    "followups_90": -1,
    "overdue_followups_90": 1,
}
"""Which side of the average reads as a churn signal: 1 above, −1 below, 0 either."""

CSAT_NEUTRAL = 3.0
"""CSAT given to customers never surveyed (the middle of the 1–5 scale)."""

VISIT_GAP_CAP = 365.0
"""Days since last visit are capped here; customers never seen get the cap."""


def build_features(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    visits: pd.DataFrame,
    tickets: pd.DataFrame,
    activities: pd.DataFrame,
    cutoff: Any,
    max_lapse_days: int | None = 365,
) -> pd.DataFrame:
    """Build the model features at ``cutoff`` from events dated before it only.

    One row per customer with an order before the cutoff whose last order is at most
    ``max_lapse_days`` before it, indexed by customer_id (sorted), columns
    :data:`FEATURES`. CSAT counts only tickets resolved before the cutoff; a
    follow-up counts as overdue when it was due in the 90 days before the cutoff and
    not completed by then. Raises ValueError when no customer qualifies.
    """
    cutoff = timestamp(cutoff)
    buyers = _buyers(customers, orders, cutoff, max_lapse_days)
    if buyers.empty:
        raise _no_buyers(orders, cutoff, max_lapse_days)
    idx = buyers.index
    d = {k: cutoff.value - k * DAY_NS for k in (30, 90, 180, 365)}
    out = pd.DataFrame(
        {
            **_order_features(buyers, customers, orders, cutoff, d),
            **_visit_features(visits, idx, cutoff, d),
            **_ticket_features(tickets, idx, cutoff, d),
            **_followup_features(activities, idx, cutoff, d),
        },
        index=idx,
    )
    return out[list(FEATURES)]


def _no_buyers(orders: pd.DataFrame, cutoff: pd.Timestamp, max_lapse_days: int | None) -> NotEnoughData:
    """Return the error that says no customer had bought before ``cutoff``, with what the orders cover."""
    dated = orders["order_date"].notna().any()
    return NotEnoughData(
        f"churn.no_buyers.{'all' if max_lapse_days is None else 'lapse'}.{'dated' if dated else 'undated'}",
        1,
        0,
        cutoff=f"{cutoff:%Y-%m-%d %H:%M}",
        days=max_lapse_days,
        rows=len(orders),
        first=f"{orders['order_date'].min():%Y-%m-%d}" if dated else "",
        last=f"{orders['order_date'].max():%Y-%m-%d}" if dated else "",
    )


def _order_features(
    buyers: pd.DataFrame, customers: pd.DataFrame, orders: pd.DataFrame, cutoff: pd.Timestamp, d: dict[int, int]
) -> dict[str, np.ndarray]:
    """Return the order features of ``buyers``: recency, tenure, order gaps, orders and spend per window."""
    c, idx = cutoff.value, buyers.index
    ov = events_before(orders, "order_date", idx, cutoff)
    amount = np.nan_to_num(orders["amount"].to_numpy(dtype=float, na_value=np.nan)[ov.pos])
    first, last, n_total = (
        buyers["first_order"].to_numpy(),
        buyers["last_order"].to_numpy(),
        buyers["orders_total"].to_numpy(),
    )
    recency = (c - last) / DAY_NS
    began = first.copy()  # the earlier of created_at and the first order
    cc, created = codes(customers["customer_id"], idx), ns(customers["created_at"])
    has = (cc >= 0) & (created != NAT_NS)
    np.minimum.at(began, cc[has], created[has])
    tenure = (c - began) / DAY_NS
    since_first = (c - first) / DAY_NS
    mean_gap = np.where(n_total >= 2, (last - first) / DAY_NS / np.maximum(n_total - 1, 1), since_first)
    mean_gap = np.maximum(mean_gap, 1.0)
    return {
        "recency_days": recency,
        "tenure_days": tenure,
        "orders_total": n_total.astype(float),
        "mean_gap_days": mean_gap,
        "recency_gap_ratio": recency / mean_gap,
        "orders_90": ov.count(d[90]),
        "orders_180": ov.count(d[180]),
        "orders_365": ov.count(d[365]),
        "spend_90": ov.count(d[90], weights=amount),
        "spend_180": ov.count(d[180], weights=amount),
        "spend_365": ov.count(d[365], weights=amount),
    }


def _visit_features(
    visits: pd.DataFrame, idx: pd.Index, cutoff: pd.Timestamp, d: dict[int, int]
) -> dict[str, np.ndarray]:
    """Return the visit features: visits in 30 and 90 days, their trend, days since the last visit."""
    if hasattr(visits, "visit_counts"):  # a hand-off file (crmnb.analysis.churn_engine): DuckDB counts
        v30, v90, v_last = visits.visit_counts(idx, cutoff, d)
    else:
        vv = events_before(visits, "visited_at", idx, cutoff)
        v30, v90, v_last = vv.count(d[30]), vv.count(d[90]), vv.last()
    since = np.where(v_last == NAT_NS, VISIT_GAP_CAP, np.minimum((cutoff.value - v_last) / DAY_NS, VISIT_GAP_CAP))
    return {"visits_30": v30, "visits_90": v90, "visits_trend": v30 - (v90 - v30) / 2.0, "days_since_visit": since}


def _ticket_features(
    tickets: pd.DataFrame, idx: pd.Index, cutoff: pd.Timestamp, d: dict[int, int]
) -> dict[str, np.ndarray]:
    """Return the service features: tickets and complaints per window, CSAT of tickets resolved before cutoff."""
    tv = events_before(tickets, "created_at", idx, cutoff)
    complaint = _is_complaint(tickets["type"].iloc[tv.pos])
    resolved = ns(tickets["resolved_at"])[tv.pos]
    csat = tickets["csat"].to_numpy(dtype=float, na_value=np.nan)[tv.pos]
    answered = (resolved != NAT_NS) & (resolved < cutoff.value) & ~np.isnan(csat)
    csat_n = tv.count(mask=answered)
    csat_sum = tv.count(weights=np.nan_to_num(csat), mask=answered)
    return {
        "tickets_90": tv.count(d[90]),
        "complaints_90": tv.count(d[90], mask=complaint),
        "complaints_365": tv.count(d[365], mask=complaint),
        "csat_mean": np.where(csat_n > 0, csat_sum / np.maximum(csat_n, 1), CSAT_NEUTRAL),
        "csat_answers": csat_n,
    }


def _followup_features(
    activities: pd.DataFrame, idx: pd.Index, cutoff: pd.Timestamp, d: dict[int, int]
) -> dict[str, np.ndarray]:
    """Return the follow-up features: done in 90 days, and due in 90 days but still open at the cutoff."""
    if hasattr(activities, "followup_features"):  # a hand-off file (crmnb.analysis.churn_engine): DuckDB counts
        return activities.followup_features(idx, cutoff, d)
    done = events_before(activities, "completed_at", idx, cutoff)
    due = events_before(activities, "due_at", idx, cutoff)
    completed = ns(activities["completed_at"])[due.pos]
    open_at_cutoff = (completed == NAT_NS) | (completed >= cutoff.value)
    return {"followups_90": done.count(d[90]), "overdue_followups_90": due.count(d[90], mask=open_at_cutoff)}


def label_churn(
    orders: pd.DataFrame, customers_index: pd.Index | pd.DataFrame | pd.Series, cutoff: Any, horizon_days: int = 90
) -> pd.Series:
    """Label each customer churned (1) when they placed no order in ``[cutoff, cutoff + horizon_days)``.

    Only that window is read, so the label never sees the features' past. The
    orders must cover the whole window, else late buyers look churned.
    """
    if isinstance(customers_index, (pd.DataFrame, pd.Series)):
        customers_index = customers_index.index
    lo = timestamp(cutoff)
    hi = lo + pd.Timedelta(days=horizon_days)
    t = ns(orders["order_date"])
    inside = (t != NAT_NS) & (t >= lo.value) & (t < hi.value)
    index = pd.Index(customers_index)
    code = codes(orders["customer_id"], index)
    bought = np.bincount(code[inside & (code >= 0)], minlength=len(index)) > 0
    return pd.Series((~bought).astype(np.int8), index=customers_index, name="churned")
