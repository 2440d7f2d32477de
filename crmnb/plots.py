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

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

from .i18n import category, column, language, phrase  # noqa: E402
from .paths import bundled_cjk_font  # noqa: E402


def _label(value: object) -> str:
    """Return a category or legend entry in the report language (``high_value`` reads "high value" in English)."""
    text = phrase(str(category(value)))
    return text if language() == "zh" else text.replace("_", " ")

PALETTE = ["#2f6f9f", "#e07b39", "#5a9e6f", "#9b59b6", "#c0392b", "#7f8c8d"]
DPI = 96


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Register a font with Chinese glyphs and return its family name (None when none is found).

    Uses the Noto Sans SC file installed with crmnb's dependencies, else a system CJK font.
    """
    candidates = [bundled_cjk_font(), Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
                  Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")]
    for path in candidates:
        if path is not None and path.is_file():
            font_manager.fontManager.addfont(str(path))
            return font_manager.FontProperties(fname=str(path)).get_name()
    return None


def setup_style() -> None:
    """Apply crmnb's chart style: white grid, one palette, readable sizes, CJK-capable fonts."""
    cjk = cjk_font()
    plt.rcParams.update({
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
    })


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


def trend(df: pd.DataFrame, x: str, y: str, hue: str | None, title: str, ylabel: str, percent: bool = False,
          marker: pd.Timestamp | None = None, marker_label: str = "", target: float | None = None,
          target_label: str = "") -> Chart:
    """Return a line chart of ``y`` over ``x``, one line per ``hue``, with an optional event line and target."""
    setup_style()
    fig, ax = plt.subplots()
    groups = df.groupby(hue, sort=True) if hue else [(None, df)]
    lines = []
    for name, g in groups:
        g = g.sort_values(x)
        ax.plot(g[x], g[y], marker="o", markersize=3.5, linewidth=1.8, label=None if name is None else _label(name))
        if len(g):
            last = g.iloc[-1]
            lines.append(f"{_label(name)}: {last[y]:.1%}" if percent else f"{_label(name)}: {last[y]:.1f}")
    if marker is not None:
        ax.axvline(marker, color="#555", linestyle="--", linewidth=1)
        ax.annotate(marker_label, (marker, 1), xycoords=("data", "axes fraction"), xytext=(4, -12),
                    textcoords="offset points", fontsize=8, color="#555")
    if target is not None:
        ax.axhline(target, color=PALETTE[4], linestyle=":", linewidth=1.2)
        ax.annotate(target_label, (0, target), xycoords=("axes fraction", "data"), xytext=(4, 3),
                    textcoords="offset points", fontsize=8, color=PALETTE[4])
    if percent:
        _pct_axis(ax)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    if hue:
        ax.legend(loc="best")
    fig.autofmt_xdate()
    alt = phrase("{title}. Line chart by {x}; latest values: {values}.", title=title, x=column(x),
                 values="; ".join(lines))
    return _finish(fig, title, alt)


def bars(df: pd.DataFrame, x: str, y: str, hue: str | None, title: str, ylabel: str, percent: bool = False,
         horizontal: bool = False) -> Chart:
    """Return a grouped bar chart comparing ``y`` across ``x`` (e.g. reps, departments), split by ``hue``."""
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
        (ax.barh if horizontal else ax.bar)(offs, vals, width * 0.95, label=None if h is None else _label(h))
    names = [_label(c) for c in cats]
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
    desc = "; ".join(f"{_label(r[x])}{' ' + _label(r[hue]) if hue else ''}: {fmt(r[y])}" for _, r in df.iterrows())
    return _finish(fig, title, phrase("{title}. Bar chart: {values}.", title=title, values=desc))


def funnel_chart(table: pd.DataFrame, labels: dict[str, str], title: str, xlabel: str) -> Chart:
    """Return a funnel: one horizontal bar per stage with its count and conversion to the next stage."""
    setup_style()
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(table) + 1.3))
    names = [labels.get(s, s) for s in table["stage"]]
    vals = table["entered"].to_numpy(dtype=float)
    ax.barh(names, vals, color=PALETTE[0], left=(vals.max() - vals) / 2)
    for i, (v, r) in enumerate(zip(vals, table["conversion_rate"])):
        txt = f"{int(v):,}" + (f"   → {r:.0%}" if pd.notna(r) else "")
        ax.text(vals.max() / 2, i, txt, va="center", ha="center", color="white" if v > vals.max() * 0.25 else "#222",
                fontsize=9, fontweight="bold")
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.grid(False)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: ""))
    desc = "; ".join(phrase("{name}: {count}, {rate} go on", name=n, count=f"{int(v):,}", rate=f"{r:.0%}")
                     if pd.notna(r) else f"{n}: {int(v):,}" for n, v, r in zip(names, vals, table["conversion_rate"]))
    return _finish(fig, title, phrase("{title}. Funnel: {values}.", title=title, values=desc))
