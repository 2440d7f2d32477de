"""What notebooks display: formatted tables and generated sentences, escaped for HTML.

A notebook binds the case's language once, ``show = Display(case.language)``, and then writes
``show.table(df)`` and ``show.text(sentence)``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crmnb.present.words import category, check_language, column, department, fmt_change, fmt_value, has, retold, t

MONEY_WORDS = ("revenue", "spend", "amount", "cac", "ltv", "clv", "cpa_benchmark", "difference")
"""Column names (or their last or first word) that hold money, shown with separators and no decimals."""

CHANGE_COLUMNS = ("change_rate", "change")
"""Columns that hold a relative change, shown as a signed % (+18.1%, -50.0%)."""

RATE_ENDINGS = ("_rate", "_share", "_probability")
"""Endings of columns that hold a share of one, shown as % with one decimal."""


def _is_missing(v: object) -> bool:
    """Return whether a cell is empty (None, NaN, NaT)."""
    return v is None or (pd.api.types.is_scalar(v) and pd.isna(v))


def column_kind(name: str) -> str | int | None:
    """Return how a column is formatted when its caller did not say: change, rate, money, one decimal, row or None.

    >>> column_kind("conversion_rate"), column_kind("deal_revenue"), column_kind("cycle_days"), column_kind("ltv_cac")
    ('rate', 'money', 'one', None)
    >>> column_kind("change_rate"), column_kind("duplicate_row")
    ('change', 0)
    """
    if name.startswith("n_"):  # the count behind a figure
        return None
    if name in CHANGE_COLUMNS:
        return "change"
    if name == "row" or name.endswith("_row"):  # a row number names a row: no separators
        return 0
    if name.endswith(RATE_ENDINGS):
        return "rate"
    parts = name.split("_")
    if name != "ltv_cac" and (name in MONEY_WORDS or parts[-1] in MONEY_WORDS or parts[0] in MONEY_WORDS):
        return "money"
    if parts[-1] in ("hours", "days"):
        return "one"
    return None


def _floats(s: pd.Series) -> list[str]:
    """Return a float column as text with one number of decimals for the whole column (0 when all are whole)."""
    whole = all(_is_missing(v) or float(v).is_integer() for v in s)
    n = 0 if whole else 2
    return ["–" if _is_missing(v) else f"{v:,.{n}f}" for v in s]


def _is_flag(s: pd.Series) -> bool:
    """Return whether a column holds only True/False (and gaps)."""
    if pd.api.types.is_bool_dtype(s):
        return True
    values = [v for v in s if not _is_missing(v)]
    return s.dtype == object and bool(values) and all(isinstance(v, (bool, np.bool_)) for v in values)


def cell_words(value: object, lang: str) -> object:
    """Return a text cell in ``lang``: a category, or a list of them ("price (26), competitor (17)").

    >>> cell_words("price (26), unclear_needs (5)", "zh"), cell_words("leads, orders", "en")
    ('价格 (26)、需求不明确 (5)', 'leads, orders')
    """
    if not isinstance(value, str):
        return category(value, lang)
    worded = category(value, lang)
    if worded == value:
        worded = retold(value, lang)
    if worded != value:
        return worded
    parts = []
    for part in value.split(", "):
        m = re.fullmatch(r"(.+?) \((\d[\d,]*)\)", part)
        name, count = (m.group(1), f" ({m.group(2)})") if m else (part, "")
        if not has(f"category.{name}"):
            return value  # free text with a comma, not a list of categories
        parts.append(f"{category(name, lang)}{count}")
    return ("、" if lang == "zh" else ", ").join(parts)


def format_column(s: pd.Series, name: str, lang: str, *, kind: str | None = None, unit=None) -> list[str]:
    """Return one column's cells as text in ``lang``: numbers by ``kind`` (or by the column's name), words worded."""
    kind = column_kind(name) if kind is None else kind
    if unit is not None:
        return [fmt_value(v, u) for v, u in zip(s, unit)]
    if _is_flag(s):
        return ["–" if _is_missing(v) else str(category(bool(v), lang)) for v in s]
    if pd.api.types.is_datetime64_any_dtype(s):
        return list(s.dt.strftime("%Y-%m-%d %H:%M").str.replace(" 00:00", "", regex=False).fillna("–"))
    if pd.api.types.is_numeric_dtype(s):
        if kind == "change":
            return [fmt_change(v) for v in s]
        if kind == "rate":
            return [fmt_value(v, "rate") for v in s]
        if kind == "money":
            return [fmt_value(v, "CNY") for v in s]
        if kind == "one":
            return ["–" if _is_missing(v) else f"{v:,.1f}" for v in s]
        if kind == 0 and (name == "row" or name.endswith("_row")):
            return ["–" if _is_missing(v) else f"{v:.0f}" for v in s]
        if isinstance(kind, int):
            return ["–" if _is_missing(v) else f"{v:,.{kind}f}" for v in s]
        if pd.api.types.is_integer_dtype(s):
            return ["–" if _is_missing(v) else f"{v:,}" for v in s]
        return _floats(s)
    if name == "department":
        return ["–" if _is_missing(v) else department(str(v), lang) for v in s]
    if name in ("column", "match_on"):  # their values are column names
        return ["–" if _is_missing(v) else column(str(v), lang) if has(f"column.{v}") else str(v) for v in s]
    return ["–" if _is_missing(v) else str(cell_words(v, lang)) for v in s]


def shown_columns(df: pd.DataFrame) -> list[str]:
    """Return the columns a reader sees: a metric id column beside the metric's name is left out."""
    cols = list(df.columns)
    if "metric" in cols and "name" in cols and all(has(f"metric.{m}.name") for m in df["metric"].dropna()):
        cols.remove("metric")
    return cols


@dataclass
class Table:
    """A DataFrame formatted for reading in ``lang``: percentages, money and hours, at most ``max_rows`` rows."""

    df: pd.DataFrame
    lang: str
    caption: str = ""
    percent: list[str] = field(default_factory=list)
    money: list[str] = field(default_factory=list)
    decimals: dict[str, int] = field(default_factory=dict)
    max_rows: int = 40
    by_unit: list[str] = field(default_factory=list)
    unit_col: str = "unit"

    def _kind(self, c: str) -> str | int | None:
        """Return the format the caller asked for column ``c``, if any."""
        if column_kind(str(c)) == "change":
            return "change"
        if c in self.percent or column_kind(str(c)) == "rate":  # a rate reads as % whatever decimals were asked
            return "rate"
        if c in self.money:
            return "money"
        return self.decimals.get(c)

    def formatted(self) -> pd.DataFrame:
        """Return the table as text cells, numbers formatted, headers and categories in the report language."""
        d = self.df.head(self.max_rows)
        units = d[self.unit_col] if self.unit_col in d.columns else None
        out = pd.DataFrame(
            {
                c: format_column(d[c], str(c), self.lang, kind=self._kind(c), unit=units if c in self.by_unit else None)
                for c in shown_columns(d)
            },
            index=d.index,
        )
        return out.rename(columns=lambda c: column(str(c), self.lang))

    def _repr_html_(self) -> str:
        cap = f"<p class='caption'>{html.escape(self.caption)}</p>" if self.caption else ""
        if self.df.empty:  # a header alone tells the reader nothing
            return f"<div class='empty-table'>{cap}<p>{html.escape(t('words.table.empty', self.lang))}</p></div>"
        body = self.formatted().to_html(index=False, escape=True, border=0, classes="t")
        rest = len(self.df) - self.max_rows
        more = f"<p class='more'>{html.escape(t('report.more_rows', self.lang, rows=rest))}</p>" if rest > 0 else ""
        return f"<div class='table'>{cap}{body}{more}</div>"

    def __repr__(self) -> str:
        if self.df.empty:
            return (self.caption + "\n" if self.caption else "") + t("words.table.empty", self.lang)
        return (self.caption + "\n" if self.caption else "") + self.formatted().to_string(index=False)


def table(
    df: pd.DataFrame,
    caption: str = "",
    percent=(),
    money=(),
    decimals=None,
    max_rows: int = 40,
    by_unit=(),
    *,
    lang: str,
) -> Table:
    """Return ``df`` ready to display in ``lang``: headers and categories worded, numbers formatted, long tables cut.

    Columns in ``by_unit`` are formatted by each row's ``unit`` (a rate as %, hours with h…).
    The caption is shown as given.
    """
    return Table(
        df, check_language(lang), caption, list(percent), list(money), dict(decimals or {}), max_rows, list(by_unit)
    )


@dataclass
class Text:
    """A generated sentence or list, shown as escaped HTML."""

    lines: list[str]
    heading: str = ""

    def _repr_html_(self) -> str:
        head = f"<p><strong>{html.escape(self.heading)}</strong></p>" if self.heading else ""
        if len(self.lines) == 1:
            return f"{head}<p>{html.escape(self.lines[0])}</p>"
        items = "".join(f"<li>{html.escape(x)}</li>" for x in self.lines)
        return f"{head}<ul>{items}</ul>"

    def __repr__(self) -> str:
        return "\n".join(
            ([self.heading] if self.heading else []) + [f"- {x}" if len(self.lines) > 1 else x for x in self.lines]
        )


def text(*lines: str, heading: str = "") -> Text:
    """Return sentences to display as a paragraph (one) or a bullet list (several)."""
    return Text(list(lines), heading)


@dataclass(frozen=True)
class Display:
    """Tables and sentences for a notebook, in one report language: ``show = Display(case.language)``."""

    lang: str

    def __post_init__(self) -> None:
        check_language(self.lang)

    def table(
        self, df: pd.DataFrame, caption: str = "", percent=(), money=(), decimals=None, max_rows: int = 40, by_unit=()
    ) -> Table:
        """Return ``df`` ready to display in this language (see :func:`table`)."""
        return table(df, caption, percent, money, decimals, max_rows, by_unit, lang=self.lang)

    def text(self, *lines: str, heading: str = "") -> Text:
        """Return sentences to display as a paragraph (one) or a bullet list (several)."""
        return text(*lines, heading=heading)
