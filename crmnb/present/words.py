"""Words of the report in English and Chinese, and number formats."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import yaml

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


def word(key: str, language: str) -> str:
    """Return the report word for ``key`` in ``language``."""
    return t(f"report.{key}", language)


def step_title(step: int, language: str) -> str:
    """Return the title of step ``step`` (1-7) of the method in ``language``."""
    return t(f"step.{step}", language)


def department(name: str, language: str) -> str:
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


def translator(lang: str) -> Callable[..., str]:
    """Return :func:`t` bound to ``lang``, so a notebook writes ``tr(key, **values)``.

    >>> tr = translator("zh")
    >>> tr("chart.trend.title", metric="复购率")
    '复购率（按月）'
    """
    return functools.partial(t, lang=check_language(lang))


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
"""The columns whose values are categories, shown in the report language in displayed tables."""


def column(name: str, lang: str) -> str:
    """Return a table header in ``lang`` (a name the catalogue lacks stays as it is)."""
    key = f"column.{name}"
    return t(key, lang) if has(key) else name


def category(value: object, lang: str) -> object:
    """Return a category (stage, tier, risk level…) in ``lang``; a value the catalogue lacks stays as it is."""
    if value is None:
        return value
    key = f"category.{value}"
    if not has(key):
        return value
    text = t(key, lang)
    return value if text == str(value) else text  # unchanged, with its type, where the wording is the value


def stage_labels(lang: str) -> dict[str, str]:
    """Return the funnel stages' display names in ``lang``."""
    return {k[len("stage.") :]: v[lang] for k, v in catalogue().items() if k.startswith("stage.")}
