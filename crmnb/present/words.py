"""Words of the report in English and Chinese, and number formats."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TypeVar

import yaml

T = TypeVar("T")

CATALOGUE_DIR = Path(__file__).with_name("catalogue")
"""The message catalogue: one YAML file per part of the product, each key with its ``en`` and ``zh`` text."""

LANGUAGES = ("en", "zh")
"""The languages a report is written in."""


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    """Return every message by key, read once from the catalogue's YAML files.

    A key must be in one file only and have a text in every language; a file that breaks
    either rule is named.
    """
    messages: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}
    for file in sorted(CATALOGUE_DIR.glob("*.yaml")):
        entries = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for key, texts in entries.items():
            if key in messages:
                raise ValueError(f"{file.name}: message {key!r} is also in {where[key]}")
            missing = [lang for lang in LANGUAGES if not isinstance((texts or {}).get(lang), str)]
            if missing:
                raise ValueError(f"{file.name}: message {key!r} has no {' or '.join(missing)} text")
            messages[key], where[key] = texts, file.name
    return messages


def check_language(lang: str) -> str:
    """Return ``lang`` if it is a report language, else raise ValueError naming the choices."""
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {lang!r}")
    return lang


def t(key: str, lang: str, **values: object) -> str:
    """Return the message ``key`` in ``lang`` with its placeholders filled.

    >>> t("report.summary", "en"), t("report.summary", "zh")
    ('Executive summary', '执行摘要')
    >>> t("step.4", "zh")
    '数据清洗与交叉验证'
    """
    check_language(lang)
    try:
        text = catalogue()[key][lang]
    except KeyError:
        raise KeyError(f"no message {key!r} in the catalogue ({CATALOGUE_DIR})") from None
    return text.format(**values) if values else text


def has(key: str) -> bool:
    """Return whether the catalogue has a message ``key``."""
    return key in catalogue()


def word(key: str, language: str = "en") -> str:
    """Return the report word for ``key`` in ``language``."""
    return t(f"report.{key}", language)


def step_title(step: int, language: str) -> str:
    """Return the title of step ``step`` (1-7) of the method in ``language``."""
    return t(f"step.{step}", language)


def department(name: str, language: str = "en") -> str:
    """Return a department's display name: English in en reports, as written in zh ones."""
    key = f"department.{name}"
    return t(key, language) if has(key) else name


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
    key = f"column.{name}"
    return t(key, lang or language()) if has(key) else name


def category(value: object, lang: str | None = None) -> object:
    """Return a category (stage, tier, risk level…) in the report language."""
    if value is None:
        return value
    key = f"category.{value}"
    if not has(key):
        return value
    text = t(key, lang or language())
    return value if text == str(value) else text  # unchanged, with its type, where the wording is the value


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


def stage_labels(lang: str | None = None) -> dict[str, str]:
    """Return the funnel stages' display names in the report language."""
    lang = lang or language()
    return {k[len("stage.") :]: v[lang] for k, v in catalogue().items() if k.startswith("stage.")}
