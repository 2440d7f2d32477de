"""Diagnosis: the problems the data shows, their likely causes, and the improvement plan (Table 3)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from .i18n import fmt_value

PLAN_COLUMNS = ["problem", "cause", "measure", "owner", "deadline", "expected_effect", "source"]

STAGE_NAMES = {"lead": "lead", "first_contact": "first contact", "needs_confirmed": "needs confirmed",
               "proposal": "proposal/quote", "negotiation": "negotiation", "won": "won"}

MEASURES = {
    "slow_response": ("Turn on follow-up reminders and a 24-hour first-contact SLA for every new lead",
                      "response time at or below target; conversion up with it"),
    "followup_late": ("Review overdue follow-up tasks weekly per rep; reminders before the due time",
                      "on-time completion at target"),
    "weak_stage": ("Coach the stage with a checklist and review stalled deals weekly",
                   "stage conversion up by 5 points"),
    "slow_stage": ("Set a stage time limit and escalate deals that pass it",
                   "average dwell at or below the benchmark"),
    "loss_reason": ("Address the top loss reason: pricing guidance, needs discovery script or competitor brief",
                    "fewer deals lost for this reason"),
    "receipts": ("Reconcile listed deals with finance and correct amounts in the CRM",
                 "difference rate under the threshold"),
    "data_quality": ("Enforce unique phone/e-mail on customer creation; require contact fields",
                     "no duplicate customers next period"),
    "churn_risk": ("Call every high-risk account within 48 h; service recovery for open complaints",
                   "fewer high-risk accounts at the next review"),
    "cpa": ("Cut or re-target the campaigns over benchmark; move budget to channels with the best LTV/CAC",
            "CAC back under benchmark"),
    "goal_gap": ("Keep the measures above running and track the goal metric monthly",
                 "goal reached by the deadline"),
}


def find_problems(
    headline_after: pd.DataFrame,
    funnel_table: pd.DataFrame,
    reconciliation: dict,
    cleaning_log: pd.DataFrame,
    response_target_hours: float,
    followup_target: float,
    goal: dict,
    churn_rules: pd.DataFrame | None = None,
    cpa_alerts: pd.DataFrame | None = None,
    response_slope: dict | None = None,
) -> pd.DataFrame:
    """Return the problems the data shows, most important first: kind, problem, evidence, cause.

    ``goal`` holds metric, name, unit, now, target and higher_is_better. The optional
    churn rule table, CPA alerts and response-time slope add their problems.
    """
    rows: list[dict] = []
    h = headline_after.set_index("metric")

    def add(kind: str, problem: str, evidence: str, cause: str, weight: float) -> None:
        rows.append({"kind": kind, "problem": problem, "evidence": evidence, "cause": cause, "weight": weight})

    now, target = goal["now"], goal["target"]
    gap_open = (now < target) if goal["higher_is_better"] else (now > target)
    if pd.notna(now) and gap_open:
        add("goal_gap", f"{goal['name']} is below its target" if goal["higher_is_better"]
            else f"{goal['name']} is above its target",
            f"now {fmt_value(now, goal['unit'])}, target {fmt_value(target, goal['unit'])}",
            "the drivers below", 10)
    rt = h["value"].get("lead_response_hours")
    if rt is not None and pd.notna(rt) and rt > response_target_hours:
        slope = ""
        if response_slope and response_slope.get("ci_low", 0) > 0:
            slope = f"; each day faster goes with {response_slope['per_unit'] * 100:+.1f} pp conversion"
        add("slow_response", "Leads wait too long for the first contact",
            f"average {rt:.1f} h against a {response_target_hours:g} h target{slope}",
            "no reminder or SLA on new leads", 8)
    ot = h["value"].get("followup_ontime_rate")
    if ot is not None and pd.notna(ot) and ot < followup_target:
        add("followup_late", "Follow-up tasks are often late",
            f"{ot:.1%} done on time against {followup_target:.0%}", "tasks not scheduled or reminded", 6)
    f = funnel_table.dropna(subset=["conversion_rate"])
    if len(f):
        weak = f.loc[f["conversion_rate"].idxmin()]
        add("weak_stage", f"Largest drop-off after '{STAGE_NAMES.get(weak['stage'], weak['stage'])}'",
            f"{weak['conversion_rate']:.1%} go on ({int(weak['entered'])} entered)",
            f"top loss reasons: {weak['top_loss_reasons'] or 'not recorded'}", 7)
    for _, s in funnel_table[funnel_table["dwell_alert"].fillna(False).astype(bool)].iterrows():
        add("slow_stage", f"Deals stall in '{STAGE_NAMES.get(s['stage'], s['stage'])}'",
            f"average {s['avg_dwell_days']:.1f} days against a {s['dwell_benchmark_days']:g}-day benchmark",
            "no stage time limit", 5)
    reasons = ", ".join(r for r in funnel_table["top_loss_reasons"] if r)
    if reasons:
        add("loss_reason", "Deals are lost for recurring reasons", reasons, "see the loss reasons per stage", 4)
    if reconciliation.get("mismatched", 0) or reconciliation.get("no_receipt", 0):
        add("receipts", "CRM won amounts disagree with finance receipts",
            f"{reconciliation['mismatched']} mismatched, {reconciliation['no_receipt']} without receipt; "
            f"difference rate {reconciliation['difference_rate']:.2%} "
            f"({'within' if reconciliation['passes'] else 'above'} {reconciliation['max_diff_rate']:.0%})",
            "amounts edited after closing, or receipts not booked", 3)
    if churn_rules is not None and len(churn_rules):
        high = int((churn_rules["risk_level"] == "high").sum())
        if high:
            add("churn_risk", "Active customers show churn warning signs",
                f"{high} of {len(churn_rules)} active buyers at high risk (few visits, no order, a complaint)",
                "complaints not followed up; no re-engagement of quiet accounts", 6.5)
    if cpa_alerts is not None and len(cpa_alerts):
        over = cpa_alerts[cpa_alerts["alert"] == "over_benchmark"] if "alert" in cpa_alerts else cpa_alerts
        if len(over):
            names = ", ".join(str(x) for x in over.get("name", over.get("campaign_id")).head(3))
            add("cpa", "Campaigns cost more per customer than planned",
                f"{len(over)} campaign(s) over their CPA benchmark by more than the tolerance: {names}",
                "targeting or channel mix", 4.5)
    dups = cleaning_log[(cleaning_log["rule"] == "duplicate customer") & (cleaning_log["table"] == "customers")]
    if len(dups):
        add("data_quality", "Duplicate customer records", f"{int(dups['rows'].sum())} duplicates merged",
            "no uniqueness check on phone or e-mail", 2)
    out = pd.DataFrame(rows, columns=["kind", "problem", "evidence", "cause", "weight"])
    return out.sort_values("weight", ascending=False, kind="stable").drop(columns="weight").reset_index(drop=True)


def improvement_plan(problems: pd.DataFrame, analyst_items: list[dict], owner: str, deadline: date) -> pd.DataFrame:
    """Return Table 3: the analyst's own plan rows first, then one suggested measure per problem found."""
    rows = [{**item, "source": "analyst"} for item in analyst_items]
    for _, p in problems.iterrows():
        measure, effect = MEASURES.get(p["kind"], ("Investigate further", "to be defined"))
        rows.append({"problem": p["problem"], "cause": p["cause"], "measure": measure, "owner": owner,
                     "deadline": deadline, "expected_effect": effect, "source": "data"})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def tracking_table(plan: pd.DataFrame, case) -> pd.DataFrame:
    """Return the action tracking table: each measure with its owner, deadline, KPI to watch and status."""
    from .metrics import CATALOGUE

    kpi = CATALOGUE[case.goal.metric].name(case.language)
    out = plan[["measure", "owner", "deadline", "expected_effect"]].copy()
    out.insert(0, "action", range(1, len(out) + 1))
    out["kpi_to_watch"] = kpi
    out["review"] = "monthly, at the case re-run"
    out["status"] = "planned"
    return out
