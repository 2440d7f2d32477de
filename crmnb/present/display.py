"""What notebooks display: formatted tables and generated sentences, escaped for HTML.

A notebook binds the case's language once, ``show = Display(case.language)``, and then writes
``show.table(df)`` and ``show.text(sentence)``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

from crmnb.present.words import CATEGORY_COLUMNS, category, check_language, column, fmt_value, t


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

    def formatted(self) -> pd.DataFrame:
        """Return the table as text cells, numbers formatted."""
        d = self.df.head(self.max_rows).copy()
        for c in d.columns:
            s = d[c]
            if c in self.by_unit and self.unit_col in d.columns:
                d[c] = [fmt_value(v, u) for v, u in zip(s, self.df[self.unit_col].head(self.max_rows))]
            elif c in self.percent:
                d[c] = s.map(lambda v: fmt_value(v, "rate"))
            elif c in self.money:
                d[c] = s.map(lambda v: fmt_value(v, "CNY"))
            elif c in self.decimals:
                n = self.decimals[c]
                d[c] = s.map(lambda v, n=n: "–" if pd.isna(v) else f"{v:,.{n}f}")
            elif pd.api.types.is_datetime64_any_dtype(s):
                d[c] = s.dt.strftime("%Y-%m-%d %H:%M").str.replace(" 00:00", "", regex=False).fillna("–")
            elif pd.api.types.is_float_dtype(s):
                d[c] = s.map(lambda v: "–" if pd.isna(v) else (f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"))
            else:
                d[c] = s.map(lambda v: "–" if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)) else str(v))
            if c in CATEGORY_COLUMNS:
                d[c] = d[c].map(lambda v: category(v, self.lang))
        return d.rename(columns=lambda c: column(c, self.lang))

    def _repr_html_(self) -> str:
        body = self.formatted().to_html(index=False, escape=True, border=0, classes="t")
        cap = f"<p class='caption'>{html.escape(self.caption)}</p>" if self.caption else ""
        rest = len(self.df) - self.max_rows
        more = f"<p class='more'>{html.escape(t('report.more_rows', self.lang, rows=rest))}</p>" if rest > 0 else ""
        return f"<div class='table'>{cap}{body}{more}</div>"

    def __repr__(self) -> str:
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
