"""Words of the report in English and Chinese, and number formats."""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

CATALOGUE_DIR = Path(__file__).with_name("catalogue")
"""The message catalogue: one YAML file per part of the product, each key with its ``en`` and ``zh`` text."""

LANGUAGES = ("en", "zh")
"""The languages a report is written in."""


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader in C (libyaml) where the wheel has it: the catalogue reads in a tenth of the time."""


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    """Return every message by key, read once from the catalogue's YAML files.

    A key must be in one file only and have a text in every language; a file that breaks
    either rule is named.
    """
    messages: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}
    for file in sorted(CATALOGUE_DIR.glob("*.yaml")):
        entries = yaml.load(file.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}
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
    return COUNTS.vformat(text, (), values) if values else text


class CountFormatter(string.Formatter):
    """Fill placeholders as str.format does, but a whole number with no format of its own gets thousands
    separators (3012 → 3,012): counts read the same in every sentence without each message asking.

    >>> COUNTS.format("{n} entered, {rate:.1%} go on, step {step}", n=3012, rate=0.415, step=4)
    '3,012 entered, 41.5% go on, step 4'
    """

    def format_field(self, value: object, format_spec: str) -> str:
        if not format_spec and isinstance(value, int | np.integer) and not isinstance(value, bool):
            return format(int(value), ",")
        return super().format_field(value, format_spec)


COUNTS = CountFormatter()
"""The formatter of every message: str.format, with separators in bare counts."""


RETOLD = ("cleaning.", "words.clv.gg_not_used")
"""The messages kept in English in the hand-offs (the cleaning log, a model's note) that a report says again."""


@functools.cache
def _retold_patterns(lang: str) -> list[tuple[re.Pattern, str, list[str]]]:
    """Return, for each message kept in English, a pattern of its English text and its text in ``lang``."""
    out = []
    for key, texts in catalogue().items():
        if not key.startswith(RETOLD) or texts["en"] == texts[lang]:
            continue
        parts, names = [], []
        for literal, name, _spec, conversion in string.Formatter().parse(texts["en"]):
            parts.append(re.escape(literal))
            if name is not None:
                names.append(name)
                quote = "'" if conversion == "r" else ""
                parts.append(f"{quote}(.+?){quote}")
        if sum(c.isalpha() for c in re.sub(r"\{[^}]*\}", "", texts["en"])) < 2:
            continue  # a message of placeholders alone would match any text
        zh = re.sub(r"\{(\w+)![rs]\}", r"{\1}", texts[lang])
        out.append((re.compile("".join(parts), re.S), zh, names))
    return out


def retold(text: str, lang: str, depth: int = 2) -> str:
    """Return an English log message (or two joined) in ``lang``; text that is no such message stays as it is.

    >>> retold("duplicate customer", "zh"), retold("written as YYYY/M/D; fractions of a second dropped", "zh")
    ('重复客户', '原写法为 YYYY/M/D；去掉秒的小数部分')
    """
    if lang == "en" or not isinstance(text, str) or not text or depth == 0:
        return text
    for pattern, _target, _names in _retold_patterns(lang):  # a message with a second one added (detail + note)
        literal = pattern.pattern.split("(")[0].replace("\\", "")
        at = text.find(literal, 1) if literal else -1
        if at > 0:
            head, tail = retold(text[:at], lang, depth - 1), retold(text[at:], lang, depth - 1)
            if head != text[:at] and tail != text[at:]:
                return head + tail
    for pattern, target, names in _retold_patterns(lang):
        m = pattern.fullmatch(text)
        if m:
            values = {n: _retold_value(v, lang, depth) for n, v in zip(names, m.groups())}
            return target.format(**values)
    return text


def _retold_value(value: str, lang: str, depth: int) -> str:
    """Return a value found inside a log message in ``lang``: a message, a column or a category."""
    if has(f"column.{value}"):
        return t(f"column.{value}", lang)
    told = retold(value, lang, depth - 1)
    return told if told != value else str(category(value, lang))


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
    ('15.3%', '23.5 h', '41,235')
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if unit == "rate":
        return f"{v:,.1%}"
    if unit == "hours":
        return f"{v:.1f} h"
    if unit == "days":
        return f"{v:.1f} d"
    if unit == "CNY":  # whole yuan, half a yuan up (as a reader rounds, not to even)
        return f"{math.copysign(math.floor(abs(v) + 0.5), v):,.0f}"
    if unit == "points":
        return f"{v:+.1f}"
    return f"{v:.2f}"


def fmt_sig(v: float, digits: int = 3) -> str:
    """Return a model parameter with ``digits`` significant digits, thousands separated, never in e-notation.

    >>> fmt_sig(2610.4), fmt_sig(0.032149), fmt_sig(23.71)
    ('2,610', '0.0321', '23.7')
    """
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    r = float(f"{v:.{digits}g}")
    return f"{int(r):,}" if r.is_integer() else f"{r:,}"


def fmt_change(rate: float | None) -> str:
    """Format a relative change as a signed percentage.

    >>> fmt_change(-0.5), fmt_change(0.1806)
    ('-50.0%', '+18.1%')
    """
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "–"
    return f"{rate:+,.1%}"


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
    """Return a table header in ``lang``.

    A metric's id reads as the metric's name, ``n_<metric>`` as the count behind it; another
    name the catalogue lacks reads with spaces for underscores.

    >>> column("owner_rep", "en"), column("n_lead_conversion_rate", "zh")
    ('Rep', '样本数（线索转化率）')
    """
    key = f"column.{name}"
    if has(key):
        return t(key, lang)
    if has(f"metric.{name}.name"):
        return t(f"metric.{name}.name", lang)
    if name.startswith("n_") and has(f"metric.{name[2:]}.name"):
        return t("words.column.n_of", lang, metric=t(f"metric.{name[2:]}.name", lang))
    return name.replace("_", " ")


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
