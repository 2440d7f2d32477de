"""Words of the report in English and Chinese, and number formats."""

from __future__ import annotations

import math

DEPARTMENT_EN = {"销售一部": "Sales 1", "客户服务部": "Customer service"}

STEP_TITLES = {
    "en": {
        1: "Goal and scope",
        2: "Data collection",
        3: "Dimensions and metrics",
        4: "Cleaning and cross-validation",
        5: "Typical-case deep dive",
        6: "Diagnosis and improvement plan",
        7: "Visualisation and iteration plan",
    },
    "zh": {
        1: "明确分析目标与范围",
        2: "收集CRM系统数据与业务资料",
        3: "拆解分析维度与指标",
        4: "数据清洗与交叉验证",
        5: "典型案例深度分析",
        6: "问题诊断与方案制定",
        7: "结果可视化与迭代规划",
    },
}

WORDS = {
    "en": {
        "summary": "Executive summary",
        "contents": "Contents",
        "goal": "Goal",
        "baseline": "Baseline",
        "now": "Now",
        "target": "Target",
        "deadline": "by",
        "verdict": "Verdict",
        "findings": "Main findings",
        "actions": "Top actions",
        "owner": "Owner",
        "due": "Due",
        "reached": "Target reached",
        "improving": "Improving, target not yet reached",
        "flat": "No clear improvement yet",
        "worse": "Moving away from the target",
        "department": "Department",
        "period": "Period",
        "case_owner": "Case owner",
        "generated": "Generated",
        "masked": "Personal data masked",
        "before": "before",
        "after": "after",
        "notes": "Analyst notes",
    },
    "zh": {
        "summary": "执行摘要",
        "contents": "目录",
        "goal": "目标",
        "baseline": "基线",
        "now": "当前",
        "target": "目标值",
        "deadline": "截止",
        "verdict": "结论",
        "findings": "主要发现",
        "actions": "重点行动",
        "owner": "负责人",
        "due": "完成时间",
        "reached": "已达成目标",
        "improving": "正在改善，尚未达成目标",
        "flat": "暂无明显改善",
        "worse": "偏离目标",
        "department": "所属部门",
        "period": "分析周期",
        "case_owner": "负责人",
        "generated": "生成时间",
        "masked": "个人信息已脱敏",
        "before": "实施前",
        "after": "实施后",
        "notes": "分析师备注",
    },
}


def word(key: str, language: str = "en") -> str:
    """Return the report word for ``key`` in ``language``."""
    return WORDS[language][key]


def department(name: str, language: str = "en") -> str:
    """Return a department's display name: English in en reports, as written in zh ones."""
    return DEPARTMENT_EN.get(name, name) if language == "en" else name


def fmt_value(v: float | None, unit: str) -> str:
    """Format a metric value with its unit: rates as %, hours and days with one decimal, money with separators.

    >>> fmt_value(0.153, "rate"), fmt_value(23.46, "hours"), fmt_value(41234.5, "CNY")
    ('15.3%', '23.5 h', '41,234')
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if unit == "rate":
        return f"{v:.1%}"
    if unit == "hours":
        return f"{v:.1f} h"
    if unit == "days":
        return f"{v:.1f} d"
    if unit == "CNY":
        return f"{v:,.0f}"
    if unit == "points":
        return f"{v:+.1f}"
    return f"{v:.2f}"


def fmt_change(rate: float | None) -> str:
    """Format a relative change as a signed percentage.

    >>> fmt_change(-0.5), fmt_change(0.1806)
    ('-50.0%', '+18.1%')
    """
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "–"
    return f"{rate:+.1%}"
