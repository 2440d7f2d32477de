"""Score the ledger's actions: each started action's own KPI since its start, with its interval, against
the control department where the case has one, and a verdict (working, too early, no measurable effect,
worse), plus whether it is overdue.

An action is measured on its scope's units from its start to the data's end ("after") against the span
of the same length just before its start ("before"); with a control department, the difference of
the two differences (difference-in-differences) is what is judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crmnb.analysis.compare import compare_units, diff_in_diff

MIN_DAYS = 28
"""An action started fewer days before the data's end than this is too early to judge."""
MIN_UNITS = 30
"""An action with fewer units since its start than this is too early to judge."""

VERDICTS = ("working", "too_early", "no_effect", "worse", "not_started", "no_start", "dropped")


@dataclass(frozen=True)
class Kpi:
    """What an action's KPI is: its unit (rate, hours…) and its good direction."""

    unit: str
    higher_is_better: bool
    clustered: bool = False


def kpi_of(metric: str) -> Kpi:
    """Return the unit and good direction of an action's KPI (a catalogue metric or ``uncontacted_share``)."""
    if metric == "uncontacted_share":
        return Kpi("rate", False)
    from crmnb.analysis.metrics import CATALOGUE

    m = CATALOGUE[metric]
    return Kpi(m.unit, m.higher_is_better, m.per_customer_month)


def kpi_name(metric: str, lang: str) -> str:
    """Return an action KPI's name as readers see it."""
    from crmnb.analysis.metrics import CATALOGUE
    from crmnb.present.words import t

    return t("loop.kpi.uncontacted_share", lang) if metric == "uncontacted_share" else CATALOGUE[metric].name(lang)


def uncontacted_units(tables, start, end, department: str | None) -> pd.DataFrame:
    """Return one unit per lead created in the period: 1 when it never got a first contact."""
    leads = tables["leads"]
    lo, hi = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
    keep = (leads["created_at"] >= lo) & (leads["created_at"] < hi)
    if department is not None:
        keep &= leads["department"] == department
    part = leads[keep]
    return pd.DataFrame(
        {"when": part["created_at"].to_numpy(), "customer_id": part["customer_id"].to_numpy(),
         "value": part["first_contact_at"].isna().to_numpy(dtype=float)}
    )  # fmt: skip


def kpi_units(metric: str, tables, start, end, department: str | None, opts: dict) -> pd.DataFrame:
    """Return an action KPI's units in a period for one department."""
    if metric == "uncontacted_share":
        return uncontacted_units(tables, start, end, department)
    from crmnb.analysis.metrics import units

    return units(metric, tables, start, end, department, **opts)


def _judge(effect: float, low: float, high: float, better_up: bool) -> str:
    """Return working / worse when the interval excludes no change on the good / bad side, else no_effect."""
    if not np.isfinite(low) or not np.isfinite(high):
        return "no_effect"
    good = low > 0 if better_up else high < 0
    bad = high < 0 if better_up else low > 0
    return "working" if good else "worse" if bad else "no_effect"


def score_action(action, tables, as_of: date, control: str | None, opts: dict) -> dict:
    """Return one action's score: before, after, change and its interval, control's change, verdict, overdue."""
    overdue = action.status in ("planned", "in progress") and action.due < as_of
    out = {"id": action.id, "overdue": bool(overdue), "before": np.nan, "after": np.nan, "change": np.nan,
           "ci_low": np.nan, "ci_high": np.nan, "control_change": np.nan, "n_after": 0}  # fmt: skip
    if action.status == "dropped":
        return {**out, "verdict": "dropped"}
    if action.start is None or action.start > as_of:
        return {**out, "verdict": "no_start" if action.status == "done" else "not_started"}
    kpi = kpi_of(action.kpi)
    days = (as_of - action.start).days + 1
    before = (action.start - timedelta(days=days), action.start - timedelta(days=1))
    after = (action.start, as_of)
    ub, ua = (kpi_units(action.kpi, tables, *w, action.scope, opts) for w in (before, after))
    out["n_after"] = len(ua)
    if len(ua) < MIN_UNITS or len(ub) < MIN_UNITS or days < MIN_DAYS:
        return {**out, "before": _mean(ub), "after": _mean(ua), "verdict": "too_early"}
    d = compare_units(ub, ua, kpi.unit, kpi.clustered)
    effect, low, high = d.diff, d.ci_low, d.ci_high
    out.update(before=d.before, after=d.after, change=d.diff, ci_low=d.ci_low, ci_high=d.ci_high)
    if control and control != action.scope:
        cb, ca = (kpi_units(action.kpi, tables, *w, control, opts) for w in (before, after))
        if len(cb) >= MIN_UNITS and len(ca) >= MIN_UNITS:
            dc = compare_units(cb, ca, kpi.unit, kpi.clustered)
            effect, low, high = diff_in_diff(d, dc)
            out.update(control_change=dc.diff, change=effect, ci_low=low, ci_high=high)
    return {**out, "verdict": _judge(effect, low, high, kpi.higher_is_better)}


def _mean(u: pd.DataFrame) -> float:
    return float(u["value"].mean()) if len(u) else np.nan


def score_ledger(ledger, tables, as_of: date, control: str | None, opts: dict) -> pd.DataFrame:
    """Return every ledger action's score, one row per action in ledger order."""
    rows = [score_action(a, tables, as_of, control, opts) for a in ledger.actions]
    return pd.DataFrame(rows)
