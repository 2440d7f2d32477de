"""The executive summary of a case: goal, verdict, main findings, top actions."""

from __future__ import annotations

import pandas as pd

from crmnb.params.model import CaseParams


def make_summary(case: CaseParams, kpi: pd.DataFrame, problems: pd.DataFrame, plan: pd.DataFrame) -> dict:
    """Return the executive summary: goal, before → now against target, verdict, three findings, top actions.

    Its words are in the case's language.
    """
    from crmnb.analysis.compare import describe_change
    from crmnb.analysis.metrics import CATALOGUE

    lang = case.language
    g = case.goal
    m = CATALOGUE[g.metric]
    row = kpi.set_index("metric").loc[g.metric]
    now, before = float(row["after"]), float(row["before"])
    up = g.higher_is_better
    significant = row["ci_low"] > 0 or row["ci_high"] < 0
    if (now >= g.target) if up else (now <= g.target):
        verdict = "reached"
    elif significant and ((row["difference"] > 0) == up):
        verdict = "improving"
    elif significant:
        verdict = "worse"
    else:
        verdict = "flat"
    findings = [describe_change(row, case.language)]
    others = kpi[(kpi["metric"] != g.metric) & ((kpi["ci_low"] > 0) | (kpi["ci_high"] < 0))]
    # the response time is the lever the method watches first; then the clearest other change
    others = others.assign(_first=others["metric"] != "lead_response_hours").sort_values(["_first", "p_value"])
    for _, r in others.head(1).iterrows():
        findings.append(describe_change(r, case.language))
    for _, p in problems[problems["kind"] != "goal_gap"].head(3 - len(findings)).iterrows():
        findings.append(f"{p['problem']}: {p['evidence']}.")
    actions = plan.head(3)[["measure", "owner", "deadline"]].astype(str).to_dict("records")
    return {
        "goal": {
            "metric": g.metric,
            "name": m.name(lang),
            "unit": m.unit,
            "baseline": g.baseline,
            "target": g.target,
            "deadline": str(g.deadline),
        },
        "before": before,
        "now": now,
        "verdict": verdict,
        "findings": findings,
        "actions": actions,
    }
