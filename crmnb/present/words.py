"""Words of the report in English and Chinese, and number formats."""

from __future__ import annotations

import math
from typing import TypeVar

T = TypeVar("T")

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


# --------------------------------------------------------------------------- the report's language
_LANGUAGE = ["en"]


def set_language(language: str) -> None:
    """Set the language tables, charts and sentences are written in (``en`` or ``zh``)."""
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', not {language!r}")
    _LANGUAGE[0] = language


def language() -> str:
    """Return the current report language."""
    return _LANGUAGE[0]


def say(en: T, zh: T) -> T:
    """Return the English or the Chinese wording, whichever the report is written in."""
    return zh if _LANGUAGE[0] == "zh" else en


COLUMNS_ZH = {
    "case": "案例名称",
    "department": "所属部门",
    "period": "分析周期",
    "owner": "负责人",
    "goal": "核心分析目标",
    "item": "项目",
    "value": "数值",
    "metric": "指标",
    "name": "名称",
    "dimension": "维度",
    "formula": "计算公式",
    "source": "数据来源",
    "unit": "单位",
    "n": "样本数",
    "table": "数据表",
    "file": "文件",
    "rows": "行数",
    "columns": "列数",
    "from": "起始",
    "to": "截止",
    "coverage": "完整度",
    "unreadable_values": "无法读取的值",
    "row": "行号",
    "column": "列",
    "problem": "问题",
    "rule": "规则",
    "action": "处理",
    "detail": "说明",
    "rows_in": "输入行数",
    "rows_kept": "保留行数",
    "rows_quarantined": "隔离行数",
    "balanced": "行数平衡",
    "duplicate_id": "重复记录",
    "kept_id": "保留记录",
    "match_on": "匹配依据",
    "duplicate_row": "重复记录行号",
    "opportunity_id": "商机编号",
    "customer_id": "客户编号",
    "closed_at": "成交日期",
    "crm_amount": "CRM金额",
    "finance_amount": "财务回款金额",
    "receipts": "回款笔数",
    "difference": "差额",
    "difference_rate": "差异率",
    "status": "状态",
    "before_cleaning": "清洗前",
    "after_cleaning": "清洗后",
    "stage": "阶段",
    "entered": "进入数",
    "converted": "转化数",
    "conversion_rate": "转化率",
    "overall_rate": "累计转化率",
    "avg_dwell_days": "平均停留时长（天）",
    "median_dwell_days": "停留时长中位数（天）",
    "top_loss_reasons": "主要丢单原因",
    "dwell_benchmark_days": "停留基准（天）",
    "dwell_alert": "停留预警",
    "tier": "客户层级",
    "customers": "客户数",
    "revenue": "收入",
    "median_recency_days": "最近购买间隔中位数（天）",
    "revenue_share": "收入占比",
    "customer_share": "客户占比",
    "segment": "RFM分群",
    "avg_orders": "平均订单数",
    "bucket": "首次响应时长",
    "leads": "线索数",
    "ci_low": "95%置信下限",
    "ci_high": "95%置信上限",
    "prob_alive": "活跃概率",
    "expected_purchases": "预期购买次数",
    "clv": "客户生命周期价值",
    "clv_total": "生命周期价值合计",
    "channel": "渠道",
    "campaigns": "活动数",
    "spend": "投入",
    "cpa_benchmark": "获客成本基准",
    "conversion": "转化率",
    "cac": "获客成本",
    "deal_revenue": "成交收入",
    "repeat_revenue": "复购收入",
    "roi": "投资回报率",
    "ltv": "LTV",
    "ltv_cac": "LTV/CAC",
    "campaign_id": "活动编号",
    "start_date": "开始日期",
    "end_date": "结束日期",
    "spend_total": "总投入",
    "spend_share": "期内投入占比",
    "risk_level": "流失风险等级",
    "company": "公司",
    "industry": "行业",
    "owner_rep": "销售代表",
    "amount": "金额",
    "loss_reason": "丢单原因",
    "response_hours": "响应时长（小时）",
    "cycle_days": "成交周期（天）",
    "when": "时间",
    "event": "事件",
    "evidence": "证据",
    "cause": "原因分析",
    "measure": "改进措施",
    "deadline": "完成时间",
    "expected_effect": "预期效果",
    "before": "实施前数值",
    "after": "实施后数值",
    "change_rate": "变化率",
    "notes": "备注",
    "kpi_to_watch": "跟踪指标",
    "review": "复盘频率",
    "model": "模型",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "base_rate": "基准流失率",
    "brier": "Brier分数",
    "churn_probability": "流失概率",
    "reasons": "主要原因",
    "phone": "电话",
    "overrun": "超出比例",
    "excess_spend": "超额投入",
    "alert": "预警",
    "decile": "十分位",
    "lift": "提升度",
    "window": "时段",
    "month": "月份",
    "week": "周",
}
"""Chinese table headers, by column name."""

VALUES_ZH = {
    "lead": "潜在客户（线索获取）",
    "first_contact": "初步沟通（首次跟进）",
    "needs_confirmed": "需求确认",
    "proposal": "方案报价",
    "negotiation": "谈判签约",
    "won": "成交",
    "lost": "丢单",
    "high_value": "高价值客户",
    "potential": "潜力客户",
    "low_value": "低价值客户",
    "high": "高",
    "medium": "中",
    "low": "低",
    "efficiency": "效率维度",
    "effect": "效果维度",
    "experience": "体验维度",
    "price": "价格",
    "unclear_needs": "需求不明确",
    "competitor": "竞争对手",
    "slow_response": "响应慢",
    "champions": "冠军客户",
    "loyal": "忠诚客户",
    "potential_loyalists": "潜在忠诚客户",
    "new": "新客户",
    "promising": "有潜力客户",
    "need_attention": "需关注客户",
    "about_to_sleep": "即将沉睡客户",
    "at_risk": "流失风险客户",
    "cant_lose": "不能失去的客户",
    "hibernating": "沉睡客户",
    "matched": "一致",
    "mismatch": "金额不符",
    "no receipt": "无回款",
    "receipt without won deal": "回款无对应成交",
    "before": "实施前",
    "after": "实施后",
    "planned": "计划中",
    "rate": "比率",
    "hours": "小时",
    "days": "天",
    "CNY": "元",
    "score": "分",
    "points": "分",
    "ratio": "倍",
    "True": "是",
    "False": "否",
    "quarantined": "已隔离",
    "over_benchmark": "超出基准",
    "no_customers": "无获客",
    "< 4 h": "< 4 小时",
    "4–12 h": "4–12 小时",
    "12–24 h": "12–24 小时",
    "1–2 days": "1–2 天",
    "2–3 days": "2–3 天",
    "> 3 days": "> 3 天",
    "search": "搜索推广",
    "wechat": "微信",
    "content": "内容营销",
    "trade_show": "展会",
    "referral": "转介绍",
    "email": "邮件营销",
    "all channels": "全部渠道",
    "ses": "简单指数平滑",
    "holt_damped": "阻尼趋势指数平滑",
    "moving_average": "移动平均",
}
"""Chinese names of the categories tables show (stages, tiers, segments, levels…)."""

CATEGORY_COLUMNS = {
    "stage",
    "tier",
    "segment",
    "risk_level",
    "dimension",
    "status",
    "window",
    "unit",
    "loss_reason",
    "alert",
    "balanced",
    "dwell_alert",
    "bucket",
    "channel",
    "method",
}


def column(name: str, lang: str | None = None) -> str:
    """Return a table header in the report language."""
    return COLUMNS_ZH.get(name, name) if (lang or language()) == "zh" else name


def category(value: object, lang: str | None = None) -> object:
    """Return a category (stage, tier, risk level…) in the report language."""
    if (lang or language()) != "zh":
        return value
    return VALUES_ZH.get(str(value), value) if value is not None else value


PHRASES_ZH = {
    "Sales funnel, leads created {start} – {end}": "销售转化漏斗（线索创建于 {start} 至 {end}）",
    "leads reaching each stage (→ share going on to the next)": "各阶段线索数（→ 进入下一阶段的比例）",
    "Customers and revenue by value tier": "各价值层级的客户与收入占比",
    "share of customers / of revenue (%)": "客户占比 / 收入占比（%）",
    "Revenue share by RFM segment": "各RFM分群的收入占比",
    "share of the department's revenue (%)": "占部门收入比例（%）",
    "Lead conversion by first-response time": "不同首次响应时长的线索转化率",
    "leads won within the window (%)": "转化窗口内成交的线索（%）",
    "Share of each channel's leads reaching each stage": "各渠道线索到达各阶段的比例",
    "{metric} by month": "{metric}（按月）",
    "intervention": "干预上线",
    "target {value}": "目标 {value}",
    "Lead response time by rep": "各销售代表的线索响应时长",
    "average hours to first contact (h)": "首次联系平均时长（小时）",
    "Weekly won revenue: actuals and forecast": "每周成交收入：实际与预测",
    "Won revenue (CNY per week)": "成交收入（元/周）",
    "Week (starting Monday)": "周（周一开始）",
    "Funnel stage": "漏斗阶段",
    "Channel": "渠道",
    "Share of leads": "线索占比",
    "customer_share": "客户占比",
    "revenue_share": "收入占比",
    "Actual": "实际",
    "before": "实施前",
    "after": "实施后",
    "Forecast ({method})": "预测（{method}）",
    "Forecast": "预测",
    ", backtest WAPE {wape}": "，回测预测偏差率 {wape}",
    "{level} band": "{level} 预测区间",
    "Prediction band": "预测区间",
    # alt text: what a reader without the image is told
    "{title}. Line chart by {x}; latest values: {values}.": "{title}。折线图（按{x}）；最新值：{values}。",
    "{title}. Bar chart: {values}.": "{title}。柱状图：{values}。",
    "{title}. Funnel: {values}.": "{title}。漏斗图：{values}。",
    "{name}: {count}, {rate} go on": "{name}：{count}，{rate} 进入下一阶段",
    "{title}. Heatmap, {ylabel} (rows) by {xlabel} (columns): {values}.": "{title}。热力图，行为{ylabel}，列为{xlabel}：{values}。",
    "n/a": "无数据",
}
"""Chinese chart titles, labels and legends, keyed by their English text (with {placeholders})."""


def phrase(text: str, lang: str | None = None, **values) -> str:
    """Return a chart phrase in the report language, with its placeholders filled."""
    if (lang or language()) == "zh":
        text = PHRASES_ZH.get(text, text)
    return text.format(**values) if values else text


STAGE_NAMES_EN = {
    "lead": "lead",
    "first_contact": "first contact",
    "needs_confirmed": "needs confirmed",
    "proposal": "proposal/quote",
    "negotiation": "negotiation",
    "won": "won",
}


def stage_labels(lang: str | None = None) -> dict[str, str]:
    """Return the funnel stages' display names in the report language."""
    if (lang or language()) == "zh":
        return {k: VALUES_ZH[k] for k in STAGE_NAMES_EN}
    return dict(STAGE_NAMES_EN)
