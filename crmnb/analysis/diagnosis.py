"""Diagnosis: the problems the data shows, their likely causes, and the improvement plan (Table 3)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from crmnb.present.words import fmt_value, say, stage_labels

PLAN_COLUMNS = ["problem", "cause", "measure", "owner", "deadline", "expected_effect", "source"]

STAGE_NAMES = {
    "lead": "lead",
    "first_contact": "first contact",
    "needs_confirmed": "needs confirmed",
    "proposal": "proposal/quote",
    "negotiation": "negotiation",
    "won": "won",
}

MEASURES = {
    "slow_response": (
        "Turn on follow-up reminders and a 24-hour first-contact SLA for every new lead",
        "response time at or below target; conversion up with it",
    ),
    "followup_late": (
        "Review overdue follow-up tasks weekly per rep; reminders before the due time",
        "on-time completion at target",
    ),
    "weak_stage": (
        "Coach the stage with a checklist and review stalled deals weekly",
        "stage conversion up by 5 points",
    ),
    "slow_stage": ("Set a stage time limit and escalate deals that pass it", "average dwell at or below the benchmark"),
    "loss_reason": (
        "Address the top loss reason: pricing guidance, needs discovery script or competitor brief",
        "fewer deals lost for this reason",
    ),
    "receipts": (
        "Reconcile listed deals with finance and correct amounts in the CRM",
        "difference rate under the threshold",
    ),
    "data_quality": (
        "Enforce unique phone/e-mail on customer creation; require contact fields",
        "no duplicate customers next period",
    ),
    "churn_risk": (
        "Call every high-risk account within 48 h; service recovery for open complaints",
        "fewer high-risk accounts at the next review",
    ),
    "cpa": (
        "Cut or re-target the campaigns over benchmark; move budget to channels with the best LTV/CAC",
        "CAC back under benchmark",
    ),
    "goal_gap": ("Keep the measures above running and track the goal metric monthly", "goal reached by the deadline"),
}


MEASURES_ZH = {
    "slow_response": ("开启跟进提醒，并对每条新线索设定24小时首次联系时限", "响应时长达到目标，转化率随之提升"),
    "followup_late": ("每周按销售代表复盘逾期跟进任务；到期前提醒", "按时完成率达到目标"),
    "weak_stage": ("为该阶段制定检查清单并辅导，每周复盘停滞商机", "该阶段转化率提升5个百分点"),
    "slow_stage": ("设定阶段时限，超时商机升级处理", "平均停留时长不超过基准"),
    "loss_reason": ("针对首要丢单原因：定价指引、需求挖掘话术或竞品应对材料", "因该原因丢单减少"),
    "receipts": ("与财务核对所列商机并在CRM中更正金额", "差异率低于阈值"),
    "data_quality": ("新建客户时强制电话/邮箱唯一并要求填写联系方式", "下一周期无重复客户"),
    "churn_risk": ("48小时内联系所有高风险客户；对未关闭投诉进行服务补救", "下次复盘时高风险客户减少"),
    "cpa": ("削减或重新定向超基准的活动；预算转向LTV/CAC最高的渠道", "获客成本回到基准以内"),
    "goal_gap": ("持续执行上述措施，按月跟踪目标指标", "截止日前达成目标"),
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

    def stage(name: str) -> str:
        return stage_labels()[name] if name in STAGE_NAMES else name

    def add(kind: str, problem: str, evidence: str, cause: str, weight: float) -> None:
        rows.append({"kind": kind, "problem": problem, "evidence": evidence, "cause": cause, "weight": weight})

    now, target = goal["now"], goal["target"]
    gap_open = (now < target) if goal["higher_is_better"] else (now > target)
    if pd.notna(now) and gap_open:
        nv, tv = fmt_value(now, goal["unit"]), fmt_value(target, goal["unit"])
        add(
            "goal_gap",
            say(f"{goal['name']} is below its target", f"{goal['name']}低于目标")
            if goal["higher_is_better"]
            else say(f"{goal['name']} is above its target", f"{goal['name']}高于目标"),
            say(f"now {nv}, target {tv}", f"当前 {nv}，目标 {tv}"),
            say("the drivers below", "见下列驱动因素"),
            10,
        )
    rt = h["value"].get("lead_response_hours")
    if rt is not None and pd.notna(rt) and rt > response_target_hours:
        slope = ""
        if response_slope and response_slope.get("ci_low", 0) > 0:
            pp = response_slope["per_unit"] * 100
            slope = say(f"; each day faster goes with {pp:+.1f} pp conversion", f"；每快一天转化率约{pp:+.1f}个百分点")
        add(
            "slow_response",
            say("Leads wait too long for the first contact", "线索首次跟进不及时"),
            say(
                f"average {rt:.1f} h against a {response_target_hours:g} h target{slope}",
                f"平均 {rt:.1f} 小时，目标 {response_target_hours:g} 小时{slope}",
            ),
            say("no reminder or SLA on new leads", "新线索缺少提醒和响应时限"),
            8,
        )
    ot = h["value"].get("followup_ontime_rate")
    if ot is not None and pd.notna(ot) and ot < followup_target:
        add(
            "followup_late",
            say("Follow-up tasks are often late", "跟进任务经常逾期"),
            say(
                f"{ot:.1%} done on time against {followup_target:.0%}", f"按时完成 {ot:.1%}，目标 {followup_target:.0%}"
            ),
            say("tasks not scheduled or reminded", "任务未排期或无提醒"),
            6,
        )
    f = funnel_table.dropna(subset=["conversion_rate"])
    if len(f):
        weak = f.loc[f["conversion_rate"].idxmin()]
        reasons = weak["top_loss_reasons"] or say("not recorded", "未记录")
        add(
            "weak_stage",
            say(f"Largest drop-off after '{stage(weak['stage'])}'", f"“{stage(weak['stage'])}”之后流失最多"),
            say(
                f"{weak['conversion_rate']:.1%} go on ({int(weak['entered'])} entered)",
                f"仅 {weak['conversion_rate']:.1%} 进入下一阶段（进入 {int(weak['entered'])}）",
            ),
            say(f"top loss reasons: {reasons}", f"主要丢单原因：{reasons}"),
            7,
        )
    for _, r in funnel_table[funnel_table["dwell_alert"].fillna(False).astype(bool)].iterrows():
        add(
            "slow_stage",
            say(f"Deals stall in '{stage(r['stage'])}'", f"商机在“{stage(r['stage'])}”阶段停滞"),
            say(
                f"average {r['avg_dwell_days']:.1f} days against a {r['dwell_benchmark_days']:g}-day benchmark",
                f"平均停留 {r['avg_dwell_days']:.1f} 天，基准 {r['dwell_benchmark_days']:g} 天",
            ),
            say("no stage time limit", "缺少阶段时限"),
            5,
        )
    reasons = ", ".join(r for r in funnel_table["top_loss_reasons"] if r)
    if reasons:
        add(
            "loss_reason",
            say("Deals are lost for recurring reasons", "丢单原因反复出现"),
            reasons,
            say("see the loss reasons per stage", "见各阶段丢单原因"),
            4,
        )
    if reconciliation.get("checked", True) and (
        reconciliation.get("mismatched", 0) or reconciliation.get("no_receipt", 0)
    ):
        rc = reconciliation
        add(
            "receipts",
            say("CRM won amounts disagree with finance receipts", "CRM成交金额与财务回款不一致"),
            say(
                f"{rc['mismatched']} mismatched, {rc['no_receipt']} without receipt; difference rate "
                f"{rc['difference_rate']:.2%} ({'within' if rc['passes'] else 'above'} {rc['max_diff_rate']:.0%})",
                f"{rc['mismatched']} 笔金额不符，{rc['no_receipt']} 笔无回款；差异率 {rc['difference_rate']:.2%}"
                f"（{'未超过' if rc['passes'] else '超过'} {rc['max_diff_rate']:.0%}）",
            ),
            say("amounts edited after closing, or receipts not booked", "成交后修改金额或回款未入账"),
            3,
        )
    if churn_rules is not None and len(churn_rules):
        high = int((churn_rules["risk_level"] == "high").sum())
        if high:
            add(
                "churn_risk",
                say("Active customers show churn warning signs", "活跃客户出现流失预警信号"),
                say(
                    f"{high} of {len(churn_rules)} active buyers at high risk (few visits, no order, a complaint)",
                    f"{len(churn_rules)} 位活跃客户中 {high} 位为高风险（访问少、无订单、有投诉）",
                ),
                say("complaints not followed up; no re-engagement of quiet accounts", "投诉未跟进；沉默客户无唤醒"),
                6.5,
            )
    if cpa_alerts is not None and len(cpa_alerts):
        over = cpa_alerts[cpa_alerts["alert"] == "over_benchmark"] if "alert" in cpa_alerts else cpa_alerts
        if len(over):
            names = ", ".join(str(x) for x in over.get("name", over.get("campaign_id")).head(3))
            add(
                "cpa",
                say("Campaigns cost more per customer than planned", "营销活动获客成本超出计划"),
                say(
                    f"{len(over)} campaign(s) over their CPA benchmark by more than the tolerance: {names}",
                    f"{len(over)} 个活动的获客成本超出基准：{names}",
                ),
                say("targeting or channel mix", "投放定向或渠道组合"),
                4.5,
            )
    dups = cleaning_log[(cleaning_log["rule"] == "duplicate customer") & (cleaning_log["table"] == "customers")]
    if len(dups):
        n = int(dups["rows"].sum())
        add(
            "data_quality",
            say("Duplicate customer records", "客户记录重复"),
            say(f"{n} duplicates merged", f"合并了 {n} 条重复记录"),
            say("no uniqueness check on phone or e-mail", "电话和邮箱未做唯一性校验"),
            2,
        )
    out = pd.DataFrame(rows, columns=["kind", "problem", "evidence", "cause", "weight"])
    return out.sort_values("weight", ascending=False, kind="stable").drop(columns="weight").reset_index(drop=True)


def unchecked_receipts(receipts: pd.DataFrame, summary: dict) -> str | None:
    """Return the note that won deals could not be checked against finance because the data has no
    receipts at all, or None when there are receipts to check against.

    >>> unchecked_receipts(pd.DataFrame(columns=["receipt_id"]), {"won_deals": 2})
    'Won deals not checked against finance: the check needs the finance receipts (the receipts table); this data has none, so 2 won deals stay unchecked.'
    """
    if len(receipts):
        return None
    n = int(summary.get("won_deals", 0))
    return say(
        f"Won deals not checked against finance: the check needs the finance receipts (the receipts table); "
        f"this data has none, so {n} won deal{'s' if n != 1 else ''} stay{'s' if n == 1 else ''} unchecked.",
        f"未核对CRM成交与财务回款：核对需要财务回款数据（receipts表），本数据没有回款记录，{n}笔成交商机未能核对。",
    )


def improvement_plan(problems: pd.DataFrame, analyst_items: list[dict], owner: str, deadline: date) -> pd.DataFrame:
    """Return Table 3: the analyst's own plan rows first, then one suggested measure per problem found."""
    rows = [{**item, "source": "analyst"} for item in analyst_items]
    for _, p in problems.iterrows():
        book = say(MEASURES, MEASURES_ZH)
        measure, effect = book.get(p["kind"], ("Investigate further", "to be defined"))
        rows.append(
            {
                "problem": p["problem"],
                "cause": p["cause"],
                "measure": measure,
                "owner": owner,
                "deadline": deadline,
                "expected_effect": effect,
                "source": "data",
            }
        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def tracking_table(plan: pd.DataFrame, case) -> pd.DataFrame:
    """Return the action tracking table: each measure with its owner, deadline, KPI to watch and status."""
    from crmnb.analysis.metrics import CATALOGUE

    kpi = CATALOGUE[case.goal.metric].name(case.language)
    out = plan[["measure", "owner", "deadline", "expected_effect"]].copy()
    out.insert(0, "action", range(1, len(out) + 1))
    out["kpi_to_watch"] = kpi
    out["review"] = say("monthly, at the case re-run", "每月，随案例重新运行")
    out["status"] = "planned"
    return out
