"""The driver scan's chart: the subgroups furthest from the rest, each with its 95% interval, against the average."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from crmnb.analysis.scan import subgroup_label
from crmnb.present.charts import PALETTE, Chart, _finish, _pct_axis, setup_style
from crmnb.present.words import fmt_value, t


def scan_chart(scan: pd.DataFrame, goal: Mapping, top: int = 10, *, lang: str) -> Chart:
    """Return the ``top`` subgroups of the scan that would close most of the gap, as points with their 95%
    intervals beside the goal metric's overall value; filled points are those beyond chance (Holm p < 0.05)."""
    setup_style()
    rows = scan[scan["gain"] > 0].head(top)
    if rows.empty:
        rows = scan.head(top)
    labels = [f"{subgroup_label(r['dimension'], r['subgroup'], lang)} ({int(r['n'])})" for _, r in rows.iterrows()]
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.34 * len(rows) + 1.4)))
    pos = np.arange(len(rows))
    v = rows["value"].to_numpy(float)
    lo, hi = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
    ax.hlines(pos, lo, hi, color=PALETTE[0], linewidth=2)
    sig = rows["significant"].to_numpy(bool)
    ax.scatter(v[sig], pos[sig], color=PALETTE[4], zorder=3, s=36)
    ax.scatter(v[~sig], pos[~sig], facecolor="white", edgecolor=PALETTE[0], zorder=3, s=36)
    if pd.notna(goal["now"]):
        ax.axvline(goal["now"], color="#555555", linestyle="--", linewidth=1, label=t("scan.chart.rest", lang))
    if pd.notna(goal.get("target")):
        ax.axvline(goal["target"], color=PALETTE[1], linestyle=":", linewidth=1.5, label=t("scan.chart.target", lang))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the rows, never over an interval
    ax.set_yticks(pos, labels)
    ax.invert_yaxis()
    if goal["unit"] == "rate":
        _pct_axis(ax, "x")
    title = t("scan.chart.title", lang, name=goal["name"])
    ax.set_title(title)
    ax.set_xlabel(t("scan.chart.note", lang))
    values = "; ".join(
        f"{label}: {fmt_value(r['value'], goal['unit'])}" for label, (_, r) in zip(labels, rows.iterrows(), strict=True)
    )
    return _finish(fig, title, t("scan.chart.alt", lang, title=title, values=values))
