"""Step 1 and 2 tables: the case card, the goal, the scope and the data inventory."""

from __future__ import annotations

import pandas as pd

from crmnb.params.model import GOAL_METRICS, CaseParams
from crmnb.present.words import department, fmt_value


def case_card(case: CaseParams) -> pd.DataFrame:
    """Return Table 1, the case card: case, department, period, owner, goal."""
    g = case.goal
    unit = GOAL_METRICS[g.metric]
    from crmnb.analysis.metrics import CATALOGUE

    by = "截止" if case.language == "zh" else "by"
    goal = (
        f"{CATALOGUE[g.metric].name(case.language)}: {fmt_value(g.baseline, unit)} → "
        f"{fmt_value(g.target, unit)} {by} {g.deadline}"
    )
    return pd.DataFrame(
        [
            {
                "case": case.title,
                "department": department(case.department, case.language),
                "period": f"{case.period.start} – {case.period.end}",
                "owner": case.owner,
                "goal": goal,
            }
        ]
    )


def goal_table(case: CaseParams) -> pd.DataFrame:
    """Return the goal confirmation: metric, baseline, target, deadline, and the comparison windows."""
    from crmnb.analysis.metrics import CATALOGUE

    g = case.goal
    w = case.windows
    zh = case.language == "zh"
    none = "无" if zh else "none named"
    rows = [
        ("metric (specific)", CATALOGUE[g.metric].name(case.language)),
        ("formula (measurable)", CATALOGUE[g.metric].formula),
        ("baseline", fmt_value(g.baseline, GOAL_METRICS[g.metric])),
        ("target (achievable)", fmt_value(g.target, GOAL_METRICS[g.metric])),
        ("direction", ("提升" if zh else "raise") if g.higher_is_better else ("降低" if zh else "lower")),
        ("deadline (time-bound)", str(g.deadline)),
        ("intervention", str(case.intervention_date) if case.intervention_date else none),
        ("before window", f"{w['before'][0]} – {w['before'][1]}"),
        ("after window", f"{w['after'][0]} – {w['after'][1]}"),
        ("control group", department(case.control_department, case.language) if case.control_department else none),
    ]
    if zh:
        names = [
            "指标（具体）",
            "计算公式（可衡量）",
            "基线",
            "目标值（可实现）",
            "方向",
            "截止时间（有时限）",
            "干预措施上线日期",
            "实施前时段",
            "实施后时段",
            "对照组",
        ]
        rows = [(n, v) for n, (_, v) in zip(names, rows)]
    return pd.DataFrame(rows, columns=["item", "value"])


def scope_table(case: CaseParams) -> pd.DataFrame:
    """Return the scope: team, customer group, period and data dimensions."""
    dep = department(case.department, case.language)
    if case.language == "zh":
        return pd.DataFrame(
            [
                ("团队", dep),
                ("客户群体", f"{dep}负责的线索与客户"),
                ("分析周期", f"{case.period.start} – {case.period.end}（{case.period.days} 天）"),
                ("数据维度", "时间（月）、部门、销售代表、渠道、漏斗阶段、客户层级"),
                ("数据来源", case.data.dir.name),
            ],
            columns=["item", "value"],
        )
    return pd.DataFrame(
        [
            ("team", dep),
            ("customer group", f"leads and customers owned by {dep}"),
            ("period", f"{case.period.start} – {case.period.end} ({case.period.days} days)"),
            ("data dimensions", "time (month), department, rep, channel, funnel stage, customer tier"),
            ("data source", case.data.dir.name),
        ],
        columns=["item", "value"],
    )


def leads_in(
    tables: dict[str, pd.DataFrame], case: CaseParams, window: str = "period", department_name: str | None = None
) -> pd.DataFrame:
    """Return the leads of the case's department created in the period (or the 'before'/'after' window)."""
    start, end = (case.period.start, case.period.end) if window == "period" else case.windows[window]
    from crmnb.analysis.metrics import in_period

    leads = in_period(tables["leads"], "created_at", start, end)
    return leads[leads["department"] == (department_name or case.department)]
