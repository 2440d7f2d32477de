"""The method's own templates as workbook sheets, built from the hand-offs in the template's columns.

Per-customer value tiers, churn early warning (with satisfaction on five points) and action
tracking (with completion, the metric's change and the next iteration's advice). Each builder takes
the workspace and the case and returns the sheet's rows under its own column names; the workbook
gives them their headers (``sheet.column.*``) and number formats.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from crmnb.handoffs import Workspace
from crmnb.params.model import CaseParams
from crmnb.present.masking import mask_companies
from crmnb.present.words import fmt_value, t


def _customers(ws: Workspace, case: CaseParams) -> pd.DataFrame:
    """Return customer_id, the customer's (masked) name and industry, from the cleaned customers."""
    have = ws.columns("clean/customers")  # a large company's customers: only the columns the sheet shows
    c = ws.read("clean/customers", columns=[k for k in ("customer_id", "company", "name", "industry") if k in have])
    name = c["company"] if "company" in c else c.get("name", c["customer_id"])
    name = mask_companies(name) if case.mask_pii else name
    industry = c["industry"] if "industry" in c else pd.Series(pd.NA, index=c.index)
    return pd.DataFrame({"customer_id": c["customer_id"], "customer": name, "industry": industry}).drop_duplicates(
        "customer_id"
    )


def value_tiers(ws: Workspace, case: CaseParams) -> pd.DataFrame:
    """Return the value-tier template: per customer, cumulative spend, order value, repeat share, tier, last purchase.

    The figures are step 5's (deep_dive/rfm): order value is spend per order, repeat share
    (orders − 1) / orders, the last purchase the period's end less the days since it.
    """
    rfm = ws.read("deep_dive/rfm")
    out = rfm[["customer_id", "spend", "orders", "tier", "recency_days"]].merge(
        _customers(ws, case), on="customer_id", how="left"
    )
    out["order_value"] = out["spend"] / out["orders"]
    out["repeat_share"] = (out["orders"] - 1) / out["orders"]
    out["last_purchase"] = pd.Timestamp(case.period.end) - pd.to_timedelta(out["recency_days"], unit="D")
    out = out.sort_values(["spend", "customer_id"], ascending=[False, True])
    cols = ["customer_id", "customer", "industry", "spend", "orders", "order_value", "repeat_share", "tier"]
    return out[[*cols, "last_purchase"]].reset_index(drop=True)


def _satisfaction(ws: Workspace, case: CaseParams) -> pd.Series:
    """Return each customer's mean satisfaction (CSAT, 1-5) on tickets of the churn look-back, by customer_id."""
    if not ws.exists("clean/tickets"):
        return pd.Series(dtype=float)
    if "csat" not in ws.columns("clean/tickets"):
        return pd.Series(dtype=float)
    tickets = ws.read("clean/tickets", columns=["customer_id", "created_at", "csat"])
    end = pd.Timestamp(case.period.end) + pd.Timedelta(days=1)
    start = pd.Timestamp(case.period.end) - pd.DateOffset(months=int(case.thresholds.churn.lookback_months))
    inside = tickets[(tickets["created_at"] >= start) & (tickets["created_at"] < end)]
    return inside.groupby("customer_id")["csat"].mean()


def churn_warning(ws: Workspace, case: CaseParams) -> pd.DataFrame:
    """Return the churn early-warning template: visits in the look-back, orders, complaints, satisfaction,
    risk level and intervention, highest risk first.

    The intervention is the watch list's (step 6) for a customer on it, else the one the rules suggest.
    """
    from crmnb.analysis.watch import suggest_actions

    rules = ws.read("deep_dive/churn_rules")
    out = rules[["customer_id", "visits", "orders", "complaints", "risk_level"]].merge(
        _customers(ws, case), on="customer_id", how="left"
    )
    out["satisfaction"] = out["customer_id"].map(_satisfaction(ws, case))
    suggested = suggest_actions(
        rules["risk_level"],
        rules["complained"],
        rules["low_visits"] | rules["no_orders"],
        pd.Series(False, index=rules.index),
        language=case.language,
    )
    out["intervention"] = suggested.to_numpy()
    if ws.exists("plan/watch_list"):
        watch = ws.read("plan/watch_list").set_index("customer_id")["action"]
        out["intervention"] = out["customer_id"].map(watch).fillna(out["intervention"])
    rank = out["risk_level"].map({"high": 0, "medium": 1, "low": 2}).fillna(3)
    out = out.assign(_rank=rank).sort_values(["_rank", "complaints", "customer_id"], ascending=[True, False, True])
    cols = ["customer_id", "customer", "visits", "orders", "complaints", "satisfaction", "risk_level", "intervention"]
    return out[cols].reset_index(drop=True)


def _goal_change(ws: Workspace, case: CaseParams) -> tuple[str, str]:
    """Return the goal metric's change as readers see it ('15.2% → 20.1% (+4.9 pp)') and the summary's verdict."""
    verdict = (
        ws.read_json("report/summary").get("verdict", "not_measured") if ws.exists("report/summary") else "not_measured"
    )
    if not ws.exists("report/kpi_compare"):
        return "–", verdict
    kpi = ws.read("report/kpi_compare").set_index("metric")
    if case.goal.metric not in kpi.index:
        return "–", verdict
    row = kpi.loc[case.goal.metric]
    unit = str(row.get("unit", "rate"))
    diff = float(row["difference"])
    shown = (
        t("sheet.pp", case.language, value=f"{diff * 100:+.1f}")
        if unit == "rate"
        else f"{'+' if diff >= 0 else ''}{fmt_value(diff, unit)}"
    )
    return f"{fmt_value(float(row['before']), unit)} → {fmt_value(float(row['after']), unit)} ({shown})", verdict


def action_tracking(ws: Workspace, case: CaseParams) -> pd.DataFrame:
    """Return the action-tracking template: action, owner, deadline, completion, the metric's change and the
    next iteration's advice (from the verdict on the goal)."""
    tracking = ws.read("report/tracking")
    change, verdict = _goal_change(ws, case)
    out = pd.DataFrame(
        {
            "action": tracking["measure"],
            "owner": tracking["owner"],
            "deadline": tracking["deadline"],
            "completion": tracking.get("status", pd.Series("planned", index=tracking.index)),
            "kpi_to_watch": tracking.get("kpi_to_watch", pd.Series("", index=tracking.index)),
            "metric_change": change,
            "next_iteration": t(f"sheet.advice.{verdict}", case.language),
        }
    )
    if "advice" in tracking:  # scored from the action ledger: each action's own KPI since its start
        own = tracking["metric_change"].fillna("").astype(str)
        out["metric_change"], out["next_iteration"] = own.where(own != "", "–"), tracking["advice"]
        out.insert(4, "start", tracking["start"]), out.insert(7, "verdict", tracking["verdict"])
    return out


TEMPLATES: dict[str, Callable[[Workspace, CaseParams], pd.DataFrame]] = {
    "value_tiers": value_tiers,
    "churn_warning": churn_warning,
    "action_tracking": action_tracking,
}
"""Each template sheet's builder by its name in the hand-off catalogue's sheet declarations."""
