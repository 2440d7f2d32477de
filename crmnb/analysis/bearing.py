"""Whether a problem bears on the case's goal, what its segment means for the goal, and the reps an action names."""

from __future__ import annotations

import pandas as pd

from crmnb.analysis.service_problems import BEARS_ON as SERVICE_BEARS_ON
from crmnb.present.words import fmt_value, has, t

Finding = dict[str, object]

BEARS_ON: dict[str, tuple[str, ...]] = {
    "lead_conversion_rate": (
        "slow_response",
        "uncontacted",
        "weak_stage",
        "channel_mix",
        "loss_reason",
        "followup_late",
    ),
    "repeat_purchase_rate": ("no_followup", "complaints", "low_satisfaction", "churn_risk"),
    "opportunity_win_rate": ("weak_stage", "loss_reason", "slow_stage", "slow_response", "channel_mix"),
    "sales_cycle_days": ("slow_stage", "slow_response", "weak_stage", "channel_mix"),
    "avg_order_value": (),
    "csat": ("complaints", "slow_resolution"),
    "complaint_resolution_hours": ("slow_resolution",),
    "followup_ontime_rate": ("followup_late", "task_type"),
    "lead_response_hours": ("slow_response", "off_hours", "channel_mix", "followup_late"),
}
"""Per goal metric, the kinds of problem that bear on it (its drivers); the goal gap and the driver scan's
subgroups always do. The others go to the secondary list, below every problem that bears on the goal."""
BEARS_ON = {m: (*kinds, *SERVICE_BEARS_ON.get(m, ())) for m, kinds in BEARS_ON.items()}  # the service desk's problems


def bears_on_goal(kind: str, goal: dict, finding: Finding) -> bool:
    """Return True when a problem of ``kind`` bears on the goal: the goal gap, a subgroup of the scan, or a
    driver of the goal metric whose segment, where it was measured, falls short of the rest."""
    if kind in ("goal_gap", "segment"):
        return True
    if kind not in BEARS_ON.get(str(goal.get("metric", "")), ()):
        return False
    gain = finding.get("_gain")
    return gain is None or bool(pd.notna(gain) and gain > 0)


def goal_move(gain: float, unit: str, language: str) -> str:
    """Return how far the goal metric moves: points for a rate, else in its unit.

    >>> goal_move(0.012, "rate", "en"), goal_move(3.25, "hours", "en")
    ('+1.2 pp', '3.2 h')
    """
    return t("diagnosis.move.rate", language, pp=gain * 100) if unit == "rate" else fmt_value(gain, unit)


def goal_evidence(kind: str, finding: Finding, language: str) -> str:
    """Return what a problem's segment means for the goal, added to its evidence: its figure against the rest
    and how much of the gap it would close by doing as well (empty when not estimated or not short)."""
    gain = finding.get("_gain")
    if gain is None or not (pd.notna(gain) and gain > 0):
        return ""
    unit, share = str(finding["goal_unit"]), finding.get("_share")
    share = "" if share is None or pd.isna(share) else t("diagnosis.share", language, share=share)
    key = f"diagnosis.{kind}.on_goal" if has(f"diagnosis.{kind}.on_goal") else "diagnosis.on_goal_evidence"
    figures = {k: fmt_value(finding.get(f"_{k}"), unit) for k in ("value", "rest")}
    return t(key, language, **{**finding, **figures, "move": goal_move(gain, unit, language), "share": share})


def worst_reps(by_rep: pd.DataFrame | None, metric: str, language: str, higher_is_better: bool, top: int = 3) -> str:
    """Return the reps furthest behind on ``metric`` with their figure, as the action's target names them."""
    if by_rep is None or metric not in by_rep or not len(by_rep):
        return ""
    f = by_rep.dropna(subset=[metric]).sort_values(metric, ascending=higher_is_better).head(top)
    unit = "rate" if metric.endswith("_rate") else "hours"
    names = t("diagnosis.losses.sep", language).join(
        f"{r['owner_rep']} {fmt_value(r[metric], unit)}" for _, r in f.iterrows()
    )
    return t("diagnosis.reps", language, reps=names) if names else ""
