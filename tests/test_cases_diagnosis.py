"""crmnb.analysis.cases and crmnb.analysis.diagnosis: typical cases picked by rule, problems found, the improvement plan."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis.cases import case_timeline, missing_case, pick_cases
from crmnb.analysis.diagnosis import (
    PLAN_COLUMNS,
    PLAN_WORDS,
    PROBLEM_WORDS,
    RULES,
    Context,
    find_problems,
    improvement_plan,
    plan_words,
    register,
    unchecked_receipts,
)
from crmnb.analysis.funnel import gaps
from crmnb.present import words

T = pd.Timestamp
NaT = pd.NaT
START, END = date(2025, 3, 1), date(2025, 3, 31)


# --------------------------------------------------------------------------- typical cases
def leads() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4"],
            "created_at": [T("2025-02-01 00:00"), T("2025-02-01 00:00"), T("2025-02-01 00:00"), T("2025-02-03 09:00")],
            "first_contact_at": [
                T("2025-02-01 02:00"),
                T("2025-02-03 00:00"),
                T("2025-02-01 01:00"),
                T("2025-02-03 10:00"),
            ],
            "channel": ["web", "phone", "web", "exhibition"],
        }
    )


def opportunities() -> pd.DataFrame:
    rows = [
        # id, lead, department, status, amount, closed_at, loss_reason
        ("W1", "L1", "D1", "won", 500.0, "2025-03-10", None),  # contacted in 2 h
        ("W2", "L2", "D1", "won", 900.0, "2025-03-12", None),  # bigger, but contacted after 48 h
        ("W3", "L3", "D1", "won", 5000.0, "2025-04-02", None),  # closed after the period
        ("W4", "L3", "D2", "won", 3000.0, "2025-03-15", None),  # another department
        ("F1", "L4", "D1", "lost", 100.0, "2025-03-20", "price"),  # lost in negotiation
        ("F2", "L1", "D1", "lost", 1000.0, "2025-03-21", "competitor"),  # lost at proposal
        ("F3", "L4", "D1", "lost", 800.0, "2025-03-22", "slow_response"),  # lost in negotiation, bigger than F1
        ("F4", "L4", "D1", "open", 9999.0, None, None),
    ]
    return pd.DataFrame(
        {
            "opportunity_id": [r[0] for r in rows],
            "lead_id": [r[1] for r in rows],
            "customer_id": "C1",
            "department": [r[2] for r in rows],
            "owner_rep": "wang",
            "created_at": T("2025-02-10"),
            "status": [r[3] for r in rows],
            "stage": [r[3] for r in rows],
            "amount": [r[4] for r in rows],
            "closed_at": [T(r[5]) if r[5] else NaT for r in rows],
            "loss_reason": [r[6] for r in rows],
        }
    )


def history() -> pd.DataFrame:
    rows = [
        ("F1", "needs_confirmed", "2025-02-10"),
        ("F1", "proposal", "2025-02-20"),
        ("F1", "negotiation", "2025-03-01"),
        ("F1", "lost", "2025-03-20"),
        ("F2", "needs_confirmed", "2025-02-10"),
        ("F2", "proposal", "2025-02-25"),
        ("F2", "lost", "2025-03-21"),
        ("F3", "needs_confirmed", "2025-02-11"),
        ("F3", "proposal", "2025-02-21"),
        ("F3", "negotiation", "2025-03-05"),
        ("F3", "lost", "2025-03-22"),
    ]
    return pd.DataFrame(
        {
            "opportunity_id": [r[0] for r in rows],
            "stage": [r[1] for r in rows],
            "entered_at": [T(r[2]) for r in rows],
            "exited_at": NaT,
        }
    )


def test_pick_cases_success_is_the_largest_win_contacted_within_the_target():
    picks = pick_cases(opportunities(), leads(), START, END, "D1", 24, stage_history=history())
    assert picks["success"] == "W1"  # W2 is larger but waited 48 h; W3 closed later; W4 is another department


def test_pick_cases_failure_is_lost_at_the_latest_stage_then_largest():
    picks = pick_cases(opportunities(), leads(), START, END, "D1", 24, stage_history=history())
    assert picks["failure"] == "F3"  # negotiation beats proposal (F2, larger); F3 is larger than F1


def test_pick_cases_without_stage_history_takes_the_largest_loss():
    picks = pick_cases(opportunities(), leads(), START, END, "D1", 24)
    assert picks["failure"] == "F2"


def test_pick_cases_response_target_and_fallback():
    assert pick_cases(opportunities(), leads(), START, END, "D1", 72)["success"] == "W2"
    # nobody contacted within 30 minutes: the largest win of the period all the same
    assert pick_cases(opportunities(), leads(), START, END, "D1", 0.5)["success"] == "W2"
    # without a department filter W4 (3000) is in play
    assert pick_cases(opportunities(), leads(), START, END, None, 24)["success"] == "W4"


def test_pick_cases_with_nothing_closed_gives_none():
    picks = pick_cases(opportunities(), leads(), date(2024, 1, 1), date(2024, 1, 31), "D1", 24)
    assert picks == {"success": None, "failure": None}


def test_case_timeline_in_time_order():
    acts = pd.DataFrame(
        {
            "activity_id": ["A1", "A2", "A3"],
            "lead_id": ["L4", "L4", "L9"],
            "type": ["call", "visit", "call"],
            "completed_at": [T("2025-02-05"), NaT, T("2025-02-06")],
            "note": ["sent brochure", None, "other lead"],
        }
    )
    t = {"opportunities": opportunities(), "leads": leads(), "activities": acts, "stage_history": history()}
    tl = case_timeline("F3", t, "en")
    assert tl["event"].tolist() == [
        "lead created",
        "first contact",
        "follow-up: call",
        "stage: needs confirmed",  # stages and reasons in readers' words
        "stage: proposal/quote",
        "stage: negotiation",
        "stage: lost",
    ]
    assert tl["when"].is_monotonic_increasing
    assert tl["detail"].iloc[0] == "channel exhibition"
    assert tl["detail"].iloc[2] == "sent brochure"
    assert tl["detail"].iloc[-1] == "slow response"  # the loss reason on the lost stage


def test_case_timeline_without_stage_history_shows_the_deal_opening_and_closing():
    t = {
        "opportunities": opportunities(),
        "leads": leads(),
        "activities": pd.DataFrame(columns=["lead_id", "type", "completed_at", "note"]),
        "stage_history": history().iloc[:0],
    }
    tl = case_timeline("F3", t, "en")
    assert tl["event"].tolist()[-2:] == ["deal created", "stage: lost"]
    assert tl["detail"].iloc[-1] == "slow response"


def test_no_typical_case_is_said_in_plain_words():
    assert missing_case("success", "en") == (
        "No success case: it needs a deal of the department won in the period; this data has none."
    )
    assert missing_case("failure", "zh") == "无失败案例：需要本部门本周期丢单的商机，本数据没有。"


def test_funnel_gaps_name_what_an_export_of_deals_lacks():
    lead = pd.DataFrame({"lead_id": ["L1"]})
    deals = pd.DataFrame({"opportunity_id": ["D1", "D2"], "lead_id": [None, None]})
    sh = pd.DataFrame({"opportunity_id": pd.Series([], dtype=object)})
    got = gaps(lead, deals, sh, "en")
    assert got == [
        "Funnel traced only to the lead stage: the stages after it need deals linked to their leads "
        "(a lead id on each deal); none of this data's 2 deals has one.",
        "Deal-stage dwell times not measured: they need the deals' stage history; this data has none.",
    ]
    assert gaps(lead, deals.assign(lead_id=["L1", None]), pd.DataFrame({"opportunity_id": ["D1"]}), "en") == []


def test_case_timeline_unknown_deal_raises():
    t = {"opportunities": opportunities(), "leads": leads(), "activities": pd.DataFrame(), "stage_history": history()}
    with pytest.raises(KeyError):
        case_timeline("NOPE", t, "en")


# --------------------------------------------------------------------------- diagnosis
def headline_after(response: float = 30.0, ontime: float = 0.85) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric": ["lead_response_hours", "followup_ontime_rate", "lead_conversion_rate"],
            "value": [response, ontime, 0.17],
        }
    )


def funnel_table(alert: bool = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage": ["lead", "first_contact", "needs_confirmed", "won"],
            "entered": [100, 80, 40, 28],
            "conversion_rate": [0.8, 0.5, 0.7, np.nan],
            "avg_dwell_days": [1.0, 3.0, 14.0, np.nan],
            "dwell_benchmark_days": [np.nan, np.nan, 10.0, np.nan],
            "dwell_alert": [False, False, alert, False],
            "top_loss_reasons": ["never contacted (5)", "", "price (7), competitor (2)", ""],
        }
    )


RECON = {"mismatched": 2, "no_receipt": 1, "difference_rate": 0.02, "passes": False, "max_diff_rate": 0.01}
LOG = pd.DataFrame(
    {
        "rule": ["duplicate customer", "duplicate customer", "phone format"],
        "table": ["customers", "orders", "customers"],
        "rows": [3, 5, 9],
    }
)
GOAL = {
    "metric": "lead_conversion_rate",
    "name": "Lead conversion rate",
    "now": 0.17,
    "target": 0.20,
    "unit": "rate",
    "higher_is_better": True,
}


def problems(**kw) -> pd.DataFrame:
    args = {
        "headline_after": headline_after(),
        "funnel_table": funnel_table(),
        "reconciliation": RECON,
        "cleaning_log": LOG,
        "response_target_hours": 24.0,
        "followup_target": 0.8,
        "goal": GOAL,
    }
    args.update(kw)
    return find_problems(Context(**args), "en")


def test_find_problems_most_important_first():
    p = problems()
    assert p["kind"].tolist() == [
        "goal_gap",
        "slow_response",
        "weak_stage",
        "loss_reason",
        "slow_stage",  # does not bear on lead conversion: the secondary list
        "receipts",
        "data_quality",
    ]
    assert p["bears_on_goal"].tolist() == [True] * 4 + [False] * 3
    assert list(p.columns)[:6] == ["kind", "problem", "evidence", "cause", "bears_on_goal", "share_of_gap"]


def test_find_problems_evidence_carries_the_figures():
    p = problems().set_index("kind")
    assert p.loc["goal_gap", "problem"] == "Lead conversion rate is below its target"
    assert p.loc["goal_gap", "evidence"] == "now 17.0%, target 20.0%"
    assert p.loc["slow_response", "evidence"] == "average 30.0 h against a 24 h target"
    assert p.loc["weak_stage", "problem"] == "Largest drop-off after 'first contact'"
    assert p.loc["weak_stage", "evidence"] == "50.0% go on (80 entered)"
    assert p.loc["slow_stage", "problem"] == "Deals stall in 'needs confirmed'"
    assert p.loc["slow_stage", "evidence"] == "average 14.0 days against a 10-day benchmark"
    assert "2 mismatched, 1 without receipt" in p.loc["receipts", "evidence"]
    assert "2.00%" in p.loc["receipts", "evidence"] and "above 1%" in p.loc["receipts", "evidence"]
    assert p.loc["data_quality", "evidence"] == "3 duplicates merged"  # customers merged, not orders re-pointed


def test_find_problems_quiet_when_targets_are_met():
    p = problems(
        headline_after=headline_after(response=24.0, ontime=0.8),
        funnel_table=funnel_table(alert=False),
        reconciliation={"mismatched": 0, "no_receipt": 0},
        cleaning_log=LOG.iloc[2:],
        goal={**GOAL, "now": 0.21},
    )
    assert "goal_gap" not in set(p["kind"])
    assert "slow_response" not in set(p["kind"])  # exactly on target is not a problem
    assert "followup_late" not in set(p["kind"])
    assert "slow_stage" not in set(p["kind"])
    assert "receipts" not in set(p["kind"])
    assert "data_quality" not in set(p["kind"])


def test_find_problems_late_followups_and_a_lower_is_better_goal():
    goal = {
        "metric": "lead_response_hours",
        "name": "Lead response time",
        "now": 30.0,
        "target": 24.0,
        "unit": "hours",
        "higher_is_better": False,
    }
    p = problems(headline_after=headline_after(ontime=0.62), goal=goal).set_index("kind")
    assert p.loc["goal_gap", "problem"] == "Lead response time is above its target"
    assert p.loc["followup_late", "evidence"] == "62.0% done on time against 80%"


def test_improvement_plan_puts_the_analyst_rows_first():
    analyst = [
        {
            "problem": "Reps skip the CRM on WeChat deals",
            "cause": "no WeChat integration",
            "measure": "Log WeChat follow-ups daily",
            "owner": "Sales 1 lead",
            "deadline": date(2026, 1, 31),
            "expected_effect": "complete follow-up history",
        }
    ]
    p = problems()
    plan = improvement_plan(p, analyst, owner="Sales 1 operations lead", deadline=date(2026, 6, 30), language="en")
    assert list(plan.columns) == PLAN_COLUMNS
    p = p[p["kind"] != "goal_gap"]  # the goal is tracked in Table 2, not an action
    assert len(plan) == 1 + len(p)
    assert plan["source"].tolist() == ["analyst"] + ["data"] * len(p)
    assert plan.iloc[0]["problem"] == "Reps skip the CRM on WeChat deals"
    assert plan.iloc[0]["owner"] == "Sales 1 lead"
    data = plan.iloc[1:].reset_index(drop=True)
    assert data["problem"].tolist() == p["problem"].tolist()
    assert data["measure"].tolist() == p["measure"].tolist()
    assert data.loc[data["problem"].str.contains("drop-off"), "measure"].iloc[0].startswith("Coach the 'first contact'")
    assert set(data["owner"]) == {"Sales 1 operations lead"}
    assert set(data["deadline"]) == {date(2026, 6, 30)}


def test_improvement_plan_without_problems_or_analyst_rows_is_empty():
    plan = improvement_plan(problems().iloc[0:0], [], owner="x", deadline=date(2026, 1, 1), language="en")
    assert plan.empty and list(plan.columns) == PLAN_COLUMNS


def test_receipts_not_checked_are_said_and_not_a_problem():
    none = pd.DataFrame(columns=["receipt_id", "opportunity_id", "amount"])
    note = unchecked_receipts(none, {"won_deals": 1}, "en")
    assert note == (
        "Won deals not checked against finance: the check needs the finance receipts (the receipts table); "
        "this data has none, so 1 won deal stays unchecked."
    )
    assert unchecked_receipts(pd.DataFrame({"receipt_id": ["R1"]}), {"won_deals": 1}, "en") is None
    kinds = problems(reconciliation={**RECON, "checked": False})["kind"].tolist()
    assert "receipts" not in kinds and "receipts" in problems()["kind"].tolist()


# --------------------------------------------------------------------------- the rules as a registry
def test_every_rule_has_its_words_and_its_plan_row_in_both_languages():
    assert [r.kind for r in RULES][:3] == ["goal_gap", "slow_response", "followup_late"]
    assert len(RULES) == 22 and all(r.find.__doc__ for r in RULES)
    for rule in RULES:
        for part in (*PROBLEM_WORDS, *PLAN_WORDS):
            assert words.has(f"diagnosis.{rule.kind}.{part}"), f"diagnosis.{rule.kind}.{part}"


def test_problems_are_worded_in_the_language_passed():
    p = find_problems(
        Context(headline_after(), funnel_table(), RECON, LOG, 24.0, 0.8, {**GOAL, "name": "线索转化率"}), "zh"
    ).set_index("kind")
    assert p.loc["goal_gap", "problem"] == "线索转化率低于目标"
    assert p.loc["slow_response", "evidence"] == "平均 30.0 小时，目标 24 小时"
    assert p.loc["receipts", "evidence"] == "2 笔金额不符，1 笔无回款；差异率 2.00%（超过 1%）"
    assert plan_words("receipts", "zh") == ("与财务核对所列商机并在CRM中更正金额", "差异率低于阈值")
    assert improvement_plan(p.reset_index(), [], "x", date(2026, 1, 1), language="zh")["measure"].iloc[0] == (
        "开启跟进提醒，并对每条新线索设定24小时首次联系时限"
    )
    note = unchecked_receipts(pd.DataFrame(columns=["receipt_id"]), {"won_deals": 3}, language="zh")
    assert note.endswith("3笔成交商机未能核对。")


def test_a_rule_registered_twice_or_unknown_is_refused():
    with pytest.raises(ValueError, match="'cpa' is registered already"):
        register("cpa", weight=1)(lambda ctx, language: [])
    with pytest.raises(KeyError, match="no diagnosis rule named 'nope'"):
        RULES.get("nope")


def test_a_context_without_what_the_rules_read_is_refused():
    with pytest.raises(ValueError, match="funnel_table has no column dwell_alert"):
        Context(headline_after(), funnel_table().drop(columns="dwell_alert"), RECON, LOG, 24.0, 0.8, GOAL)
    with pytest.raises(ValueError, match="the goal has no target"):
        Context(
            headline_after(), funnel_table(), RECON, LOG, 24.0, 0.8, {k: v for k, v in GOAL.items() if k != "target"}
        )


def test_a_missing_or_unmeasured_metric_finds_no_problem():
    h = headline_after().assign(value=np.nan)
    p = problems(headline_after=h)
    assert not {"slow_response", "followup_late"} & set(p["kind"])
    assert Context(h, funnel_table(), RECON, LOG, 24.0, 0.8, GOAL).metric("no_such_metric") is None
