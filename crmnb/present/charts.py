"""Figures in one consistent style, English or Chinese, each with alt text.

Functions return a :class:`Chart` (a figure plus its alt text); they never show or
save. A Chart displays in a notebook as a PNG with its alt text as the plain-text
form, which the report uses for the image's ``alt`` attribute.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, PercentFormatter

from crmnb.analysis.forecast import weekly_series

matplotlib.use("Agg")

from crmnb.present.fonts import register_chart_font
from crmnb.present.words import category, column, has, t


def _label(value: object, lang: str) -> str:
    """Return a category or legend entry in ``lang`` (``high_value`` reads "high value" in English)."""
    text = str(category(value, lang))
    if has(f"chart.legend.{text}"):
        text = t(f"chart.legend.{text}", lang)
    return text if lang == "zh" else text.replace("_", " ")


PALETTE = ["#2f6f9f", "#e07b39", "#5a9e6f", "#9b59b6", "#c0392b", "#7f8c8d"]
DPI = 96


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Register a font with Chinese glyphs (bold included) and return its family name (None when none is found)."""
    return register_chart_font()


def setup_style() -> None:
    """Apply crmnb's chart style: white grid, one palette, readable sizes, CJK-capable fonts."""
    cjk = cjk_font()
    plt.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "figure.figsize": (7.5, 3.8),
            "axes.grid": True,
            "grid.color": "#e5e5e5",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "axes.labelsize": 10,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "legend.fontsize": 9,
            "legend.frameon": False,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
            "font.family": ["DejaVu Sans"] + ([cjk] if cjk else []),
            "axes.unicode_minus": False,
        }
    )


@dataclass
class Chart:
    """A rendered figure, its alt text and the words drawn in it (titles, labels, ticks, legend)."""

    png: bytes
    alt: str
    title: str
    texts: tuple[str, ...] = ()

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"image/png": base64.b64encode(self.png).decode("ascii"), "text/plain": self.alt}

    def save(self, path: str | Path) -> Path:
        """Write the PNG to ``path`` and return it."""
        p = Path(path)
        p.write_bytes(self.png)
        return p


def _finish(fig: plt.Figure, title: str, alt: str) -> Chart:
    fig.tight_layout()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a missing glyph must not pass unnoticed
        fig.savefig(buf, format="png", dpi=DPI)
    drawn = tuple(t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip())
    plt.close(fig)
    return Chart(buf.getvalue(), alt, title, drawn)


def _pct_axis(ax, axis: str = "y") -> None:
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def trend(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None,
    title: str,
    ylabel: str,
    percent: bool = False,
    marker: pd.Timestamp | None = None,
    marker_label: str = "",
    target: float | None = None,
    target_label: str = "",
    *,
    lang: str,
) -> Chart:
    """Return a line chart of ``y`` over ``x``, one line per ``hue``, with an optional event line and target.

    Legend entries and the alt text are in ``lang``; titles and labels are passed in already worded.
    """
    setup_style()
    fig, ax = plt.subplots()
    groups = df.groupby(hue, sort=True) if hue else [(None, df)]
    lines = []
    for name, g in groups:
        g = g.sort_values(x)
        ax.plot(
            g[x], g[y], marker="o", markersize=3.5, linewidth=1.8, label=None if name is None else _label(name, lang)
        )
        if len(g):
            last = g.iloc[-1]
            lines.append(f"{_label(name, lang)}: {last[y]:.1%}" if percent else f"{_label(name, lang)}: {last[y]:.1f}")
    _mark_event_and_target(ax, marker, marker_label, target, target_label)
    if percent:
        _pct_axis(ax)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    if hue:
        ax.legend(loc="best")
    fig.autofmt_xdate()
    alt = t("chart.alt.line", lang, title=title, x=column(x, lang), values="; ".join(lines))
    return _finish(fig, title, alt)


def _mark_event_and_target(
    ax, marker: pd.Timestamp | None, marker_label: str, target: float | None, target_label: str
) -> None:
    """Draw the event's dashed vertical line and the target's dotted horizontal one, each with its label."""
    if marker is not None:
        ax.axvline(marker, color="#555", linestyle="--", linewidth=1)
        ax.annotate(
            marker_label,
            (marker, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
            color="#555",
        )
    if target is not None:
        ax.axhline(target, color=PALETTE[4], linestyle=":", linewidth=1.2)
        ax.annotate(
            target_label,
            (0, target),
            xycoords=("axes fraction", "data"),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
            color=PALETTE[4],
        )


def bars(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None,
    title: str,
    ylabel: str,
    percent: bool = False,
    horizontal: bool = False,
    *,
    lang: str,
) -> Chart:
    """Return a grouped bar chart comparing ``y`` across ``x`` (e.g. reps, departments), split by ``hue``.

    Category names, legend entries and the alt text are in ``lang``.
    """
    setup_style()
    cats = list(dict.fromkeys(df[x]))
    hues = list(dict.fromkeys(df[hue])) if hue else [None]
    fig, ax = plt.subplots(figsize=(7.5, max(3.2, 0.32 * len(cats) + 1.2)) if horizontal else None)
    width = 0.8 / len(hues)
    pos = np.arange(len(cats))
    for i, h in enumerate(hues):
        sub = df if h is None else df[df[hue] == h]
        vals = sub.set_index(x)[y].reindex(cats).to_numpy(dtype=float)
        offs = pos - 0.4 + width * (i + 0.5)
        (ax.barh if horizontal else ax.bar)(offs, vals, width * 0.95, label=None if h is None else _label(h, lang))
    names = [_label(c, lang) for c in cats]
    if horizontal:
        ax.set_yticks(pos, names)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        if percent:
            _pct_axis(ax, "x")
    else:
        ax.set_xticks(pos, names, rotation=30 if len(cats) > 5 else 0, ha="right" if len(cats) > 5 else "center")
        ax.set_ylabel(ylabel)
        if percent:
            _pct_axis(ax)
    ax.set_title(title)
    if hue:  # beside long horizontal bars a legend inside the axes would cover them
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0)) if horizontal else ax.legend()
    fmt = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:,.1f}")
    desc = "; ".join(
        f"{_label(r[x], lang)}{' ' + _label(r[hue], lang) if hue else ''}: {fmt(r[y])}" for _, r in df.iterrows()
    )
    return _finish(fig, title, t("chart.alt.bars", lang, title=title, values=desc))


def funnel_chart(table: pd.DataFrame, labels: dict[str, str], title: str, xlabel: str, *, lang: str) -> Chart:
    """Return a funnel: one horizontal bar per stage with its count and conversion to the next stage.

    ``labels`` names the stages (e.g. ``stage_labels(lang)``); the alt text is in ``lang``.
    """
    setup_style()
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(table) + 1.3))
    names = [labels.get(s, s) for s in table["stage"]]
    vals = table["entered"].to_numpy(dtype=float)
    ax.barh(names, vals, color=PALETTE[0], left=(vals.max() - vals) / 2)
    for i, (v, r) in enumerate(zip(vals, table["conversion_rate"])):
        txt = f"{int(v):,}" + (f"   → {r:.0%}" if pd.notna(r) else "")
        ax.text(
            vals.max() / 2,
            i,
            txt,
            va="center",
            ha="center",
            color="white" if v > vals.max() * 0.25 else "#222",
            fontsize=9,
            fontweight="bold",
        )
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.grid(False)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: ""))
    desc = "; ".join(
        t("chart.alt.funnel_stage", lang, name=n, count=f"{int(v):,}", rate=f"{r:.0%}")
        if pd.notna(r)
        else f"{n}: {int(v):,}"
        for n, v, r in zip(names, vals, table["conversion_rate"])
    )
    return _finish(fig, title, t("chart.alt.funnel", lang, title=title, values=desc))


def heatmap(
    matrix: pd.DataFrame,
    title: str,
    xlabel: str | None = None,
    ylabel: str | None = None,
    percent: bool = True,
    labels: dict[str, str] | None = None,
    cmap: str = "Blues",
    colorbar_label: str | None = None,
    *,
    lang: str,
) -> Chart:
    """Return a heatmap of ``matrix`` (rows × columns) with each cell's value written in it.

    ``percent`` shows shares (0–1) as percentages on a 0–100% scale; ``labels`` renames
    rows and columns for display (e.g. Chinese stage names). Empty cells stay grey.
    Axis and colour-bar labels left out read "Funnel stage", "Channel" and "Share of leads" in ``lang``.
    """
    if not isinstance(matrix, pd.DataFrame) or matrix.empty:
        raise ValueError("heatmap: the matrix is empty (no rows or no columns)")
    xlabel = t("chart.heatmap.xlabel", lang) if xlabel is None else xlabel
    ylabel = t("chart.heatmap.ylabel", lang) if ylabel is None else ylabel
    names = labels or {}
    values = matrix.to_numpy(dtype=float)
    rows = [names.get(str(r), str(category(r, lang))) for r in matrix.index]
    cols = [names.get(str(c), str(category(c, lang))) for c in matrix.columns]
    finite = values[np.isfinite(values)]
    vmax = 1.0 if percent else (float(finite.max()) if finite.size and finite.max() > 0 else 1.0)
    vmin = 0.0 if percent or not finite.size else min(0.0, float(finite.min()))
    setup_style()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.05 * len(cols) + 2.8), max(2.6, 0.42 * len(rows) + 1.6)))
    cm = plt.get_cmap(cmap).with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cm, vmin=vmin, vmax=vmax, aspect="auto")
    fmt = (lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:,.1f}")
    _write_cells(ax, values, fmt, vmin, vmax)
    ax.set_xticks(
        np.arange(len(cols)), cols, rotation=30 if len(cols) > 4 else 0, ha="right" if len(cols) > 4 else "center"
    )
    ax.set_yticks(np.arange(len(rows)), rows)
    ax.grid(False)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(t("chart.heatmap.colorbar", lang) if colorbar_label is None else colorbar_label)
    if percent:
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    cell = lambda v: fmt(v) if np.isfinite(v) else t("chart.alt.no_value", lang)
    desc = "; ".join(f"{r}: " + ", ".join(f"{c} {cell(v)}" for c, v in zip(cols, row)) for r, row in zip(rows, values))
    alt = t("chart.alt.heatmap", lang, title=title, ylabel=ylabel, xlabel=xlabel, values=desc)
    return _finish(fig, title, alt)


def _write_cells(ax, values: np.ndarray, fmt, vmin: float, vmax: float) -> None:
    """Write each cell's value in it, white on the dark cells; an empty cell shows a dash."""
    for (i, j), v in np.ndenumerate(values):
        dark = np.isfinite(v) and (v - vmin) / ((vmax - vmin) or 1) > 0.6
        ax.text(
            j,
            i,
            fmt(v) if np.isfinite(v) else "–",
            ha="center",
            va="center",
            fontsize=8.5,
            color="white" if dark else "#222",
        )


# --------------------------------------------------------------------------- forecast
def _money(v: float, lang: str) -> str:
    """Return an axis label for CNY: 1.2M, 350k, 900; in Chinese 120万, 35万, 900."""
    a = abs(v)
    if lang == "zh":  # Chinese readers count in 万 (10,000)
        return f"{v / 1e4:,.0f}万" if a >= 1e4 else f"{v:.0f}"
    return f"{v / 1e6:.1f}M" if a >= 1e6 else f"{v / 1e3:.0f}k" if a >= 1e3 else f"{v:.0f}"


def forecast_chart(
    weekly: pd.DataFrame | pd.Series,
    forecast: pd.DataFrame,
    title: str | None = None,
    ylabel: str | None = None,
    xlabel: str | None = None,
    history_weeks: int = 52,
    accuracy: float | None = None,
    *,
    lang: str,
) -> Chart:
    """Return a line chart of the last ``history_weeks`` actual weeks, the forecast and its band.

    Actual weeks that fall in the forecast (an earlier ``as_of``) are drawn too.
    ``accuracy`` (a backtest WAPE) is added to the legend and the alt text. Titles left
    out read "Weekly won revenue: actuals and forecast" and its axes in ``lang``.
    """
    missing = [c for c in ("week", "forecast") if c not in forecast]
    if missing or forecast.empty:
        raise ValueError("table 'forecast' is empty or lacks week/forecast: pass rolling_forecast's result")
    title = t("chart.forecast.title", lang) if title is None else title
    weeks, y = weekly_series(weekly)
    show = weeks >= pd.Timestamp(forecast["week"].min()) - pd.Timedelta(weeks=history_weeks)
    setup_style()
    fig, ax = plt.subplots()
    ax.plot(weeks[show], y[show], color=PALETTE[0], linewidth=1.6, label=t("chart.forecast.actual", lang))
    _draw_forecast(ax, forecast, accuracy, lang)
    ax.axvline(
        pd.Timestamp(forecast["week"].iloc[0]) - pd.Timedelta(days=3.5), color="#888", linestyle=":", linewidth=1
    )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _money(v, lang)))
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.set_ylabel(t("chart.forecast.ylabel", lang) if ylabel is None else ylabel)
    ax.set_xlabel(t("chart.forecast.xlabel", lang) if xlabel is None else xlabel)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    return _finish(fig, title, _forecast_alt(title, weeks[show], y[-1], weeks[-1], forecast, accuracy, lang))


def _has_band(forecast: pd.DataFrame) -> bool:
    """Return whether the forecast has a prediction band to draw."""
    return {"lower", "upper"} <= set(forecast) and forecast["upper"].notna().any()


def _draw_forecast(ax, forecast: pd.DataFrame, accuracy: float | None, lang: str) -> None:
    """Draw the forecast line and its band, labelled in ``lang`` with the method, accuracy and band level."""
    fw = pd.DatetimeIndex(forecast["week"])
    label = (
        t("chart.forecast.method", lang, method=category(forecast["method"].iloc[0], lang))
        if "method" in forecast
        else t("chart.forecast.plain", lang)
    )
    if accuracy is not None:
        label += t("chart.forecast.wape", lang, wape=f"{accuracy:.0%}")
    ax.plot(
        fw, forecast["forecast"], color=PALETTE[1], linewidth=1.8, linestyle="--", marker="o", markersize=3, label=label
    )
    if _has_band(forecast):
        level = float(forecast["level"].iloc[0]) if "level" in forecast else None
        ax.fill_between(
            fw,
            forecast["lower"],
            forecast["upper"],
            color=PALETTE[1],
            alpha=0.18,
            linewidth=0,
            label=t("chart.forecast.band_level", lang, level=f"{level:.0%}")
            if level
            else t("chart.forecast.band", lang),
        )


def _forecast_alt(
    title: str,
    shown: pd.DatetimeIndex,
    latest: float,
    latest_week: pd.Timestamp,
    forecast: pd.DataFrame,
    accuracy: float | None,
    lang: str,
) -> str:
    """Return the forecast chart's alt text: the weeks shown, the forecast's span and total, its band and accuracy."""
    fw = pd.DatetimeIndex(forecast["week"])
    f = forecast["forecast"].to_numpy(float)
    alt = t(
        "chart.alt.forecast",
        lang,
        title=title,
        weeks=len(shown),
        first=f"{shown[0]:%Y-%m-%d}",
        latest=f"{latest_week:%Y-%m-%d}",
        latest_value=f"{latest:,.0f}",
        horizon=len(f),
        start=f"{fw[0]:%Y-%m-%d}",
        end=f"{fw[-1]:%Y-%m-%d}",
        total=f"{f.sum():,.0f}",
        low=f"{f.min():,.0f}",
        high=f"{f.max():,.0f}",
    )
    if _has_band(forecast):
        band = forecast[["lower", "upper"]].dropna()  # the weeks the band reaches
        lo, hi = band["lower"], band["upper"]
        level = float(forecast["level"].iloc[0]) if "level" in forecast else None
        alt += t(
            "chart.alt.forecast_band",
            lang,
            level=f"{level:.0%}",
            first_low=f"{lo.iloc[0]:,.0f}",
            first_high=f"{hi.iloc[0]:,.0f}",
            last_low=f"{lo.iloc[-1]:,.0f}",
            last_high=f"{hi.iloc[-1]:,.0f}",
        )
    if accuracy is not None:
        alt += t("chart.alt.forecast_wape", lang, wape=f"{accuracy:.1%}")
    return alt + t("chart.alt.end", lang)
