"""The service desk's problems for the diagnosis: a rising complaint theme, a channel answered too slowly, and
complaining customers who buy again less.

They apply when the goal is a service or retention metric (:data:`SERVICE_GOALS`). Step 6 adds the service
findings of step 5 to the goal's drivers (:func:`with_service`); the rules here (:data:`SERVICE_RULES`,
registered by :mod:`crmnb.analysis.diagnosis`) word them. None of them estimates a share of the gap: they bear
on the goal as its drivers, as associations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from crmnb.present.words import category, fmt_value

SERVICE_GOALS = ("repeat_purchase_rate", "csat", "complaint_resolution_hours")
"""The goal metrics the service desk's problems bear on."""

BEARS_ON: dict[str, tuple[str, ...]] = {
    "repeat_purchase_rate": ("rising_theme", "complaint_repeat", "service_targets"),
    "csat": ("rising_theme", "service_targets", "complaint_repeat"),
    "complaint_resolution_hours": ("rising_theme", "service_targets"),
}
"""Per goal metric, the service problems that bear on it (added to :data:`crmnb.analysis.bearing.BEARS_ON`)."""

MIN_TICKETS = 20
"""A channel needs this many tickets before its first response is judged."""

Finding = dict[str, object]


def _pct(x: float) -> str:
    return fmt_value(float(x), "rate")


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def rising_row(themes: pd.DataFrame, language: str) -> dict | None:
    """Return the driver row of the theme that rose most beyond chance, with the figures its words need."""
    from crmnb.analysis.themes import theme_name

    up = themes[themes["rising"].astype(bool)] if len(themes) else themes
    if not len(up):
        return None
    r = up.sort_values("share_change", ascending=False).iloc[0]
    figures = {
        "theme": theme_name(r["theme"], language),
        "before": _pct(r["share_before"]),
        "after": _pct(r["share_after"]),
        "diff": 100 * r["share_change"],
        "low": 100 * r["ci_low"],
        "high": 100 * r["ci_high"],
        "p": _p(r["p_holm"]),
        "example": r["example"],
        "n": int(r["complaints_after"]),
    }
    return {"kind": "rising_theme", "segment": r["theme"], "n": int(r["complaints_after"]), "figures": figures}


def slow_channel_row(targets: pd.DataFrame, language: str) -> dict | None:
    """Return the driver row of the ticket channel furthest below its first-response target, when it trails the
    other channels; None when first responses were not exported."""
    if not len(targets) or not targets["first_response_within"].notna().any():
        return None
    tk = targets.assign(ok=targets["first_response_within"] * targets["tickets"])
    by = tk.groupby("channel").agg(n=("tickets", "sum"), ok=("ok", "sum"), hours=("first_response_target", "first"))
    by = by.assign(median=tk.groupby("channel")["first_response_hours"].median())
    by = by[(by["n"] >= MIN_TICKETS) & (by.index != "")]
    if len(by) < 2:
        return None
    by["share"] = by["ok"] / by["n"]
    worst = by["share"].idxmin()
    rest = by.drop(index=worst)
    rest_share = rest["ok"].sum() / rest["n"].sum()
    if by.loc[worst, "share"] >= min(0.8, rest_share - 0.1):  # within reach of the others: not a problem
        return None
    w = by.loc[worst]
    figures = {
        "channel": str(category(worst, language)),
        "share": _pct(w["share"]),
        "rest": _pct(rest_share),
        "hours": f"{w['hours']:g}",
        "median": f"{w['median']:.1f}",
        "n": int(w["n"]),
    }
    return {"kind": "service_targets", "segment": worst, "n": int(w["n"]), "figures": figures}


def complaint_repeat_row(outcomes: pd.DataFrame, language: str) -> dict | None:
    """Return the driver row of complaining customers buying again less, when its interval lies below zero."""
    r = outcomes[outcomes["outcome"] == "repeat_90d"] if len(outcomes) else outcomes
    if not len(r) or not (r.iloc[0]["ci_high"] < 0):
        return None
    r = r.iloc[0]
    figures = {
        "rate_c": _pct(r["complainant_rate"]),
        "rate_r": _pct(r["requester_rate"]),
        "diff": 100 * r["rate_difference"],
        "low": 100 * r["ci_low"],
        "high": 100 * r["ci_high"],
        "n": int(r["complainants"]),
    }
    return {"kind": "complaint_repeat", "segment": "complaint", "n": int(r["complainants"]), "figures": figures}


def with_service(
    drivers: pd.DataFrame,
    themes: pd.DataFrame,
    targets: pd.DataFrame,
    outcomes: pd.DataFrame,
    goal: dict,
    language: str,
) -> pd.DataFrame:
    """Return the goal's drivers with the service findings added, when the goal is a service or retention metric.

    Each added row has kind, segment and n, no estimate of the gap it would close (NaN), and ``figures``: what
    its words in the diagnosis are filled with."""
    if goal.get("metric") not in SERVICE_GOALS:
        return drivers
    rows = [
        rising_row(themes, language),
        slow_channel_row(targets, language),
        complaint_repeat_row(outcomes, language),
    ]
    rows = [r for r in rows if r is not None]
    if not rows:
        return drivers
    extra = pd.DataFrame(rows).assign(value=np.nan, rest_value=np.nan, gain=np.nan, share_of_gap=np.nan)
    return pd.concat([drivers.assign(figures=None), extra], ignore_index=True)


def _rule(kind: str) -> Callable[[object, str], list[Finding]]:
    """Return the rule that words the service finding ``kind`` from the goal's drivers."""

    def find(ctx, language: str) -> list[Finding]:
        d = ctx.driver(kind)
        return [dict(d["figures"])] if d is not None and isinstance(d.get("figures"), dict) else []

    find.__doc__ = f"Find the service finding {kind!r} among the goal's drivers (service_problems.with_service)."
    return find


SERVICE_RULES: tuple[tuple[str, float, Callable[[object, str], list[Finding]]], ...] = (
    ("rising_theme", 7.2, _rule("rising_theme")),
    ("complaint_repeat", 6.8, _rule("complaint_repeat")),
    ("service_targets", 6.2, _rule("service_targets")),
)
"""The service desk's diagnosis rules: kind, weight, function."""
