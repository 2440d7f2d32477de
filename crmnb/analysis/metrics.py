"""The metric catalogue: each metric declared once, computed the same way everywhere.

A metric's function returns its *units*: one row per lead, order, ticket… that the
metric averages, with the columns ``when`` (the date that places the unit in a
period), ``department``, ``owner_rep``, ``customer_id`` and ``value``. A rate is the
mean of a 0/1 value, an average time the mean of hours. So every metric can be
computed for any period and broken down by department, rep, month or segment, and
tested for a before/after change, from the same units.

>>> units = lead_conversion_units(tables, "2025-07-01", "2025-12-31")  # doctest: +SKIP
>>> compute("lead_conversion_rate", tables, "2025-07-01", "2025-12-31", by="department")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

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


# --------------------------------------------------------------------------- unit functions
def lead_response_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per contacted lead created in the period: hours from creation to first contact."""
    leads = in_period(t["leads"], "created_at", start, end)
    leads = leads[leads["first_contact_at"].notna()]
    hours = _hours(leads["created_at"], leads["first_contact_at"])
    keep = hours >= 0
    return _units(leads[keep], "created_at", hours[keep])


def followup_ontime_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per follow-up task due in the period: 1 if completed by its due time."""
    act = in_period(t["activities"], "due_at", start, end)
    ok = act["completed_at"].notna() & (act["completed_at"] <= act["due_at"])
    return _units(act, "due_at", ok)


def converted_within(leads: pd.DataFrame, opportunities: pd.DataFrame, days: int) -> pd.Series:
    """Return, per lead, whether one of its deals was won within ``days`` of the lead's creation."""
    opp = opportunities
    won = opp[(opp["status"] == "won") & opp["lead_id"].notna() & opp["closed_at"].notna()]
    first_win = _lookup(leads["lead_id"], won.groupby("lead_id")["closed_at"].min())
    return first_win.notna() & (first_win <= leads["created_at"] + pd.Timedelta(days=days))


def lead_conversion_units(t: Tables, start, end, conversion_window_days: int = 90, **_) -> pd.DataFrame:
    """Return one unit per lead created in the period: 1 if it became a won deal within the conversion window."""
    leads = in_period(t["leads"], "created_at", start, end)
    return _units(leads, "created_at", converted_within(leads, t["opportunities"], conversion_window_days))


def opportunity_win_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per opportunity closed (won or lost) in the period: 1 if won."""
    opp = t["opportunities"]
    opp = in_period(opp[opp["status"].isin(["won", "lost"])], "closed_at", start, end)
    return _units(opp, "closed_at", opp["status"] == "won")


def sales_cycle_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per deal won in the period: days from the lead's creation (else the deal's) to the win."""
    opp = t["opportunities"]
    won = in_period(opp[opp["status"] == "won"], "closed_at", start, end)
    lead_created = _lookup(won["lead_id"], t["leads"].set_index("lead_id")["created_at"])
    began = lead_created.fillna(won["created_at"])
    days = (won["closed_at"] - began).dt.total_seconds() / 86400.0
    return _units(won, "closed_at", days)


def order_value_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per order placed in the period: its amount."""
    orders = in_period(t["orders"], "order_date", start, end)
    orders = orders[orders["amount"].notna()]
    return _units(orders, "order_date", orders["amount"])


def repeat_purchase_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per customer who bought in the period: 1 if they bought at least twice in it."""
    orders = in_period(t["orders"], "order_date", start, end)
    g = orders.groupby("customer_id", sort=True)
    per = pd.DataFrame(
        {
            "when": g["order_date"].min(),
            "department": g["department"].first(),
            "n": g.size(),
        }
    ).reset_index()
    reps = t["customers"].drop_duplicates("customer_id").set_index("customer_id")["owner_rep"]
    per["owner_rep"] = per["customer_id"].map(reps)
    return _units(per, "when", per["n"] >= 2)


def csat_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per surveyed ticket opened in the period: its satisfaction score (1–5)."""
    tk = in_period(t["tickets"], "created_at", start, end)
    tk = tk[tk["csat"].notna()]
    return _units(tk, "created_at", tk["csat"])


def nps_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per NPS answer in the period: +100 promoter (9–10), −100 detractor (0–6), else 0."""
    tk = in_period(t["tickets"], "created_at", start, end)
    tk = tk[tk["nps"].notna()]
    score = np.where(tk["nps"] >= 9, 100.0, np.where(tk["nps"] <= 6, -100.0, 0.0))
    return _units(tk, "created_at", score)


def complaint_resolution_units(t: Tables, start, end, **_) -> pd.DataFrame:
    """Return one unit per resolved complaint opened in the period: hours to resolution."""
    tk = in_period(t["tickets"], "created_at", start, end)
    tk = tk[(tk["type"] == "complaint") & tk["resolved_at"].notna()]
    hours = _hours(tk["created_at"], tk["resolved_at"])
    keep = hours >= 0
    return _units(tk[keep], "created_at", hours[keep])


def churn_units(t: Tables, start, end, lookback_days: int = 365, **_) -> pd.DataFrame:
    """Return one unit per customer who bought in the year before the period: 1 if they bought nothing in it."""
    lo = pd.Timestamp(start)
    orders = t["orders"]
    base = in_period(orders, "order_date", lo - pd.Timedelta(days=lookback_days), lo - pd.Timedelta(days=1))
    ids = base["customer_id"].dropna().unique()
    bought = set(in_period(orders, "order_date", start, end)["customer_id"].dropna())
    cust = t["customers"].drop_duplicates("customer_id").set_index("customer_id")
    per = pd.DataFrame({"customer_id": ids, "when": lo})
    per["department"] = per["customer_id"].map(cust["department"])
    per["owner_rep"] = per["customer_id"].map(cust["owner_rep"])
    return _units(per, "when", ~isin(per["customer_id"], bought))


def _campaign_spend(t: Tables, start, end, department: str | None) -> float:
    """Return campaign spend falling in the period (pro rata by days), for one department by its share of leads."""
    c = t["campaigns"].dropna(subset=["spend"])
    lo, hi = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
    c_start = c["start_date"].fillna(lo)
    c_end = c["end_date"].fillna(hi - pd.Timedelta(days=1)) + pd.Timedelta(days=1)
    days = (c_end - c_start).dt.days.clip(lower=1)
    overlap = ((c_end.clip(upper=hi) - c_start.clip(lower=lo)).dt.days).clip(lower=0)
    spend = c["spend"] * overlap / days
    if department is not None:
        leads = t["leads"].dropna(subset=["campaign_id"])
        share = (leads["department"] == department).groupby(leads["campaign_id"]).mean()
        spend = spend * c["campaign_id"].map(share).fillna(0).to_numpy()
    return float(spend.sum())


def _new_customers(t: Tables, start, end, department: str | None) -> int:
    opp = in_period(t["opportunities"], "closed_at", start, end)
    won = opp[(opp["status"] == "won") & opp["lead_id"].notna()]
    if department is not None:
        won = won[won["department"] == department]
    return int(won["lead_id"].nunique())


def cac_value(t: Tables, start, end, department: str | None = None, **_) -> tuple[float, int]:
    """Return customer acquisition cost (campaign spend in the period / customers won from leads) and n."""
    n = _new_customers(t, start, end, department)
    spend = _campaign_spend(t, start, end, department)
    return (spend / n if n else float("nan")), n


def ltv_value(t: Tables, start, end, department: str | None = None, max_years: float = 10.0, **_) -> tuple[float, int]:
    """Return the average-based lifetime value: order value × orders a year per buyer × expected years.

    Measured over the 365 days up to the period's end; expected years = 1 / annual churn
    rate, capped at ``max_years``. Revenue, not margin.
    """
    hi = pd.Timestamp(end)
    lo = hi - pd.Timedelta(days=364)
    orders = in_period(t["orders"], "order_date", lo, hi)
    if department is not None:
        orders = orders[orders["department"] == department]
    buyers = orders["customer_id"].nunique()
    if not buyers:
        return float("nan"), 0
    aov = orders["amount"].mean()
    per_year = len(orders) / buyers
    churn = churn_units(t, lo, hi)
    if department is not None:
        churn = churn[churn["department"] == department]
    rate = churn["value"].mean() if len(churn) else float("nan")
    years = min(1 / rate, max_years) if rate and rate > 0 else max_years
    return float(aov * per_year * years), int(buyers)


def ltv_cac_value(t: Tables, start, end, department: str | None = None, **_) -> tuple[float, int]:
    """Return LTV / CAC for the period."""
    ltv, n = ltv_value(t, start, end, department)
    cac, _ = cac_value(t, start, end, department)
    return (ltv / cac if cac and cac > 0 else float("nan")), n


# --------------------------------------------------------------------------- catalogue
@dataclass(frozen=True)
class Metric:
    """One declared metric."""

    id: str
    name_en: str
    name_zh: str
    dimension: str  # efficiency / effect / experience
    formula: str
    sources: tuple[str, ...]
    unit: str  # rate / hours / days / CNY / score / points / ratio
    units: Callable[..., pd.DataFrame] | None
    higher_is_better: bool = True
    total: Callable[..., tuple[float, int]] | None = None  # for ratios of totals (CAC, LTV): value and n

    def name(self, language: str = "en") -> str:
        """Return the metric's name in ``language`` (en or zh)."""
        return self.name_zh if language == "zh" else self.name_en


CATALOGUE: dict[str, Metric] = {
    m.id: m
    for m in [
        Metric(
            "lead_response_hours",
            "Lead response time (hours)",
            "线索响应时长（小时）",
            "efficiency",
            "average hours from lead creation to first contact, contacted leads created in the period",
            ("leads",),
            "hours",
            lead_response_units,
            higher_is_better=False,
        ),
        Metric(
            "followup_ontime_rate",
            "Follow-up task completion rate (on time)",
            "跟进任务完成率",
            "efficiency",
            "follow-up tasks completed by their due time / tasks due in the period",
            ("activities",),
            "rate",
            followup_ontime_units,
        ),
        Metric(
            "lead_conversion_rate",
            "Lead conversion rate",
            "线索转化率",
            "effect",
            "leads won within the conversion window / leads created in the period",
            ("leads", "opportunities"),
            "rate",
            lead_conversion_units,
        ),
        Metric(
            "opportunity_win_rate",
            "Opportunity win rate",
            "商机赢单率",
            "effect",
            "opportunities won / opportunities closed (won or lost) in the period",
            ("opportunities",),
            "rate",
            opportunity_win_units,
        ),
        Metric(
            "sales_cycle_days",
            "Sales cycle (days)",
            "成交周期（天）",
            "efficiency",
            "average days from lead creation to win, deals won in the period",
            ("opportunities", "leads"),
            "days",
            sales_cycle_units,
            higher_is_better=False,
        ),
        Metric(
            "avg_order_value",
            "Average order value (CNY)",
            "客单价（元）",
            "effect",
            "order revenue / number of orders placed in the period",
            ("orders",),
            "CNY",
            order_value_units,
        ),
        Metric(
            "repeat_purchase_rate",
            "Repeat-purchase rate",
            "复购率",
            "effect",
            "customers with two or more orders in the period / customers with an order in the period",
            ("orders", "customers"),
            "rate",
            repeat_purchase_units,
        ),
        Metric(
            "csat",
            "Customer satisfaction (CSAT, 1–5)",
            "客户满意度评分（CSAT）",
            "experience",
            "average satisfaction score of surveyed tickets opened in the period",
            ("tickets",),
            "score",
            csat_units,
        ),
        Metric(
            "nps",
            "Net promoter score (NPS)",
            "净推荐值（NPS）",
            "experience",
            "% promoters (9–10) − % detractors (0–6) among NPS answers in the period",
            ("tickets",),
            "points",
            nps_units,
        ),
        Metric(
            "complaint_resolution_hours",
            "Complaint resolution time (hours)",
            "投诉解决时长（小时）",
            "experience",
            "average hours from complaint to resolution, resolved complaints opened in the period",
            ("tickets",),
            "hours",
            complaint_resolution_units,
            higher_is_better=False,
        ),
        Metric(
            "churn_rate",
            "Churn rate",
            "客户流失率",
            "effect",
            "customers who bought in the 12 months before the period and bought nothing in it / those customers",
            ("orders", "customers"),
            "rate",
            churn_units,
            higher_is_better=False,
        ),
        Metric(
            "cac",
            "Customer acquisition cost (CAC, CNY)",
            "获客成本（CAC）",
            "efficiency",
            "campaign spend falling in the period / customers won from leads in the period",
            ("campaigns", "leads", "opportunities"),
            "CNY",
            None,
            higher_is_better=False,
            total=cac_value,
        ),
        Metric(
            "ltv",
            "Customer lifetime value (LTV, CNY)",
            "客户生命周期价值（LTV）",
            "effect",
            "average order value × orders a year per buyer × 1 / annual churn rate (12 months to period end)",
            ("orders", "customers"),
            "CNY",
            None,
            total=ltv_value,
        ),
        Metric(
            "ltv_cac",
            "LTV / CAC",
            "LTV/CAC",
            "effect",
            "lifetime value / customer acquisition cost",
            ("orders", "campaigns", "leads", "opportunities"),
            "ratio",
            None,
            total=ltv_cac_value,
        ),
    ]
}
"""Every metric crmnb computes, by id."""

HEADLINE: tuple[str, ...] = (
    "lead_response_hours",
    "followup_ontime_rate",
    "lead_conversion_rate",
    "avg_order_value",
    "repeat_purchase_rate",
    "csat",
    "complaint_resolution_hours",
)
"""The headline metrics step 3 reports for every case."""


def units(metric: str, tables: Tables, start, end, department: str | None = None, **opts) -> pd.DataFrame:
    """Return the units of ``metric`` in the period, for one department or all."""
    if metric not in CATALOGUE:
        raise KeyError(f"unknown metric {metric!r}; known: {', '.join(CATALOGUE)}")
    if CATALOGUE[metric].units is None:
        raise ValueError(
            f"metric {metric!r} is a ratio of totals: it has a value per period and department, "
            f"not per lead or customer"
        )
    u = CATALOGUE[metric].units(tables, start, end, **opts)
    if department is not None:
        u = u[u["department"] == department]
    return u.reset_index(drop=True)


def aggregate(u: pd.DataFrame, by: str | list[str] | None = None) -> pd.DataFrame:
    """Return value (mean of the units) and n, overall or per group; ``by='month'`` groups by calendar month."""
    if by is None:
        return pd.DataFrame({"value": [u["value"].mean() if len(u) else np.nan], "n": [len(u)]})
    keys = [by] if isinstance(by, str) else list(by)
    u = u.copy()
    if "month" in keys:
        u["month"] = pd.to_datetime(u["when"]).dt.to_period("M").dt.to_timestamp()
    g = u.groupby(keys, dropna=False)["value"]
    return pd.DataFrame({"value": g.mean(), "n": g.size()}).reset_index()


def compute(
    metric: str,
    tables: Tables,
    start,
    end,
    department: str | None = None,
    by: str | list[str] | None = None,
    segments: pd.Series | None = None,
    **opts,
) -> pd.DataFrame:
    """Compute ``metric`` for the period, overall or per ``by`` (department, owner_rep, month, segment).

    ``segments`` maps customer_id to a segment (a tier, an RFM segment) for ``by='segment'``.
    """
    m = CATALOGUE.get(metric)
    if m is not None and m.total is not None:
        if by is not None:
            raise ValueError(
                f"metric {metric!r} is a ratio of totals and cannot be broken down by {by!r}; "
                f"compute it per department instead"
            )
        v, n = m.total(tables, start, end, department, **opts)
        return pd.DataFrame({"value": [v], "n": [n]})
    u = units(metric, tables, start, end, department, **opts)
    if segments is not None:
        u = u.assign(segment=u["customer_id"].map(segments).fillna("unassigned"))
    elif by == "segment" or (isinstance(by, list) and "segment" in by):
        raise ValueError("by='segment' needs segments: a Series mapping customer_id to segment")
    return aggregate(u, by)


def value(metric: str, tables: Tables, start, end, department: str | None = None, **opts) -> float:
    """Return the single figure of ``metric`` for the period (NaN when nothing was measured)."""
    return float(compute(metric, tables, start, end, department, **opts)["value"].iloc[0])


def headline(
    tables: Tables,
    start,
    end,
    department: str | None = None,
    metrics: Iterable[str] = HEADLINE,
    language: str = "en",
    **opts,
) -> pd.DataFrame:
    """Return the headline metrics for the period: id, name, dimension, value, unit, n."""
    rows = []
    for mid in metrics:
        m = CATALOGUE[mid]
        r = compute(mid, tables, start, end, department, **opts).iloc[0]
        rows.append(
            {
                "metric": mid,
                "name": m.name(language),
                "dimension": m.dimension,
                "value": r["value"],
                "unit": m.unit,
                "n": int(r["n"]),
            }
        )
    return pd.DataFrame(rows)


FORMULA_ZH = {
    "lead_response_hours": "本期创建且已联系的线索，从创建到首次联系的平均小时数",
    "followup_ontime_rate": "按时完成的跟进任务数 / 本期到期的跟进任务数",
    "lead_conversion_rate": "转化窗口内成交的线索数 / 本期创建的线索数",
    "opportunity_win_rate": "赢单商机数 / 本期关闭（赢单或丢单）的商机数",
    "sales_cycle_days": "本期赢单商机从线索创建到成交的平均天数",
    "avg_order_value": "本期订单收入 / 订单数",
    "repeat_purchase_rate": "本期下单2次及以上的客户数 / 本期下单客户数",
    "csat": "本期工单满意度评分（1–5）的平均值",
    "nps": "推荐者（9–10分）占比 − 贬损者（0–6分）占比",
    "complaint_resolution_hours": "本期已解决投诉从受理到解决的平均小时数",
    "churn_rate": "前12个月有购买、本期无购买的客户数 / 前12个月有购买的客户数",
    "cac": "本期活动投入 / 本期由线索成交的客户数",
    "ltv": "客单价 × 每位客户年购买次数 × 1 / 年流失率（截至期末的12个月）",
    "ltv_cac": "客户生命周期价值 / 获客成本",
}
"""The catalogue's formulas in Chinese."""


def catalogue_table(period: str, language: str = "en") -> pd.DataFrame:
    """Return the metric list: name, dimension, formula, source tables and period."""
    return pd.DataFrame(
        [
            {
                "metric": m.id,
                "name": m.name(language),
                "dimension": m.dimension,
                "formula": FORMULA_ZH.get(m.id, m.formula) if language == "zh" else m.formula,
                "source": ", ".join(m.sources),
                "period": period,
                "unit": m.unit,
            }
            for m in CATALOGUE.values()
        ]
    )


def breakdown(
    tables: Tables, start, end, department: str | None, by: str, metrics: Iterable[str], **opts
) -> pd.DataFrame:
    """Return several metrics side by side per ``by`` (owner_rep, month, segment…): one column per metric id,
    and ``n_<id>`` with the units counted."""
    out: pd.DataFrame | None = None
    for mid in metrics:
        part = compute(mid, tables, start, end, department, by=by, **opts)
        part = part.rename(columns={"value": mid, "n": f"n_{mid}"})
        # a metric with no units has an all-missing ``by`` column of another type than the others'
        part[by] = part[by].astype(object)
        out = part if out is None else out.merge(part, on=by, how="outer")
    return out.sort_values(by).reset_index(drop=True) if out is not None else pd.DataFrame()
