"""The executive summary of a case: goal, verdict with its uncertainty, main findings, top actions.

Keys others read: ``verdict`` (one of :data:`crmnb.analysis.verdict.VERDICTS`), ``headline`` (one short line
in the case's language, for an e-mail subject and the index page), ``verdict_text`` (the full sentences with
the margin and the interval), ``interval`` ([low, high] of the after-window level), ``latest_month``
(``{"month": "2025-12", "value": …}`` or None) and ``baseline_note`` (a sentence or None).
"""

from __future__ import annotations

import math

import pandas as pd

from crmnb.analysis.verdict import Level, judge, mean_level, rate_level
from crmnb.params.model import CaseParams
from crmnb.present.words import fmt_value, t

_SUFFIXES = ("%", " h", " d")


def _finite(v: object) -> bool:
    """Return whether ``v`` is a finite number."""
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def amount(d: float, unit: str, lang: str, signed: bool = False) -> str:
    """Return a difference of a metric in its unit: percentage points for rates, hours, days, money.

    >>> amount(0.001, "rate", "en"), amount(-0.049, "rate", "zh", signed=True), amount(2.25, "hours", "en")
    ('0.1 pp', '-4.9个百分点', '2.2 h')
    """
    sign = "+" if signed else ""
    if unit == "rate":
        return t("brief.pp", lang, d=f"{d * 100:{sign}.1f}")
    if unit in ("hours", "days"):
        return f"{d:{sign}.1f} {unit[0]}"
    if unit == "CNY":
        return f"{d:{sign},.0f}"
    if unit == "points":
        return f"{d:{sign}.1f}"
    return f"{d:{sign}.2f}"


def span(low: float, high: float, unit: str) -> str:
    """Return an interval as the reader writes it, the unit once.

    >>> span(0.189, 0.214, "rate"), span(11.24, 13.5, "hours"), span(4.1, 4.32, "score")
    ('18.9–21.4%', '11.2–13.5 h', '4.10–4.32')
    """
    a, b = fmt_value(low, unit), fmt_value(high, unit)
    for suffix in _SUFFIXES:
        if a.endswith(suffix) and b.endswith(suffix):
            a = a[: -len(suffix)]
    return f"{a}–{b}"


def after_level(row: pd.Series, case: CaseParams, tables: dict | None) -> Level:
    """Return the goal metric's after-window level with its 95% interval, measured as Table 2 measures it."""
    from crmnb.analysis.metrics import CATALOGUE, units

    n = int(row.get("n_after", 0) or 0)
    if CATALOGUE[case.goal.metric].unit == "rate":
        worth = n / float(row.get("deff_after", 1.0) or 1.0)  # a customer's several months count once-ish
        return rate_level(float(row["after"]) * worth, worth) if n else rate_level(0, 0)
    if tables is None:  # without the units, the level stands without an interval
        return Level(float(row["after"]), float("nan"), float("nan"), n)
    opts = {"conversion_window_days": case.thresholds.conversion_window_days}
    u = units(case.goal.metric, tables, *case.windows["after"], case.department, **opts)
    return mean_level(u["value"].to_numpy())


def latest_month(monthly: pd.DataFrame | None, case: CaseParams) -> dict | None:
    """Return the goal metric in the latest full calendar month of the after window, from the monthly series
    the report's chart shows (``report/monthly``), or None when the window holds no full month."""
    from crmnb.present.words import department

    if monthly is None or monthly.empty:
        return None
    start, end = (pd.Timestamp(d) for d in case.windows["after"])
    mine = monthly[monthly["department"].isin({case.department, department(case.department, case.language)})]
    months = pd.to_datetime(mine["month"])
    full = (months >= start) & (months + pd.offsets.MonthEnd(0) <= end)
    rows = mine[full.to_numpy()].assign(_m=months[full]).sort_values("_m")
    if rows.empty:
        return None
    last = rows.iloc[-1]
    n = int(last["n"]) if "n" in rows.columns and _finite(last["n"]) else None
    return {"month": f"{last['_m']:%Y-%m}", "value": float(last["value"]), "n": n}


def _level_sentence(verdict: str, level: Level, case: CaseParams, unit: str) -> str:
    """Return the verdict's first sentence: the level, its margin to the target, its interval against it."""
    lang, target = case.language, case.goal.target
    now, goal = fmt_value(level.value, unit), fmt_value(target, unit)
    label = t(f"brief.verdict.{verdict}", lang)
    margin = amount(abs(level.value - target), unit, lang)
    side = "equal" if margin == amount(0.0, unit, lang) else ("above" if level.value > target else "below")
    parts = t(f"brief.level.{side}", lang, now=now, target=goal, margin=margin)
    if _finite(level.low) and _finite(level.high):
        where = "includes" if level.low <= target <= level.high else ("above" if level.low > target else "below")
        parts += t(f"brief.interval.{where}", lang, interval=span(level.low, level.high, unit))
    else:
        parts += t("brief.interval.none", lang)
    return t("brief.sentence", lang, s=t("brief.labelled", lang, label=label, text=parts))


def _change_sentence(row: pd.Series, unit: str, lang: str) -> str:
    """Return the sentence on the change from the before window, with its interval (and the control's)."""
    if not (_finite(row["before"]) and _finite(row["difference"])):
        return t("brief.sentence", lang, s=t("brief.change.none", lang))
    d = float(row["difference"])
    values = dict(
        dir=t("brief.up" if d > 0 else "brief.down", lang),
        diff=amount(abs(d), unit, lang),
        before=fmt_value(float(row["before"]), unit),
        low=amount(float(row["ci_low"]), unit, lang, signed=True),
        high=amount(float(row["ci_high"]), unit, lang, signed=True),
    )
    clear = _finite(row["ci_low"]) and (row["ci_low"] > 0 or row["ci_high"] < 0)
    s = t("brief.change.clear" if clear else "brief.change.unclear", lang, **values)
    if _finite(row.get("did")):
        s += t(
            "brief.control",
            lang,
            did=amount(float(row["did"]), unit, lang, signed=True),
            low=amount(float(row["did_ci_low"]), unit, lang, signed=True),
            high=amount(float(row["did_ci_high"]), unit, lang, signed=True),
        )
    return t("brief.sentence", lang, s=s)


def latest_sentence(latest: dict | None, unit: str, lang: str) -> str:
    """Return how the latest full month compares ("December alone: 18.1%"), or '' without one.

    >>> latest_sentence({"month": "2025-12", "value": 0.181, "n": 530}, "rate", "en")
    'December alone: 18.1% (95% CI 15.1–21.6%).'
    """
    if not latest:
        return ""
    month = t(f"brief.month.{int(latest['month'][5:7])}", lang)
    s = t("brief.latest", lang, month=month, value=fmt_value(latest["value"], unit))
    n = latest.get("n")
    if unit == "rate" and n:
        lv = rate_level(round(latest["value"] * n), n)
        s += t("brief.latest_ci", lang, interval=span(lv.low, lv.high, unit))
    return t("brief.sentence", lang, s=s)


def baseline_note(case: CaseParams, before: float, unit: str) -> str | None:
    """Return the sentence saying the case file's baseline differs from the measured before window, beyond
    rounding (as both are shown), or None when they agree or nothing was measured."""
    stated, measured = fmt_value(case.goal.baseline, unit), fmt_value(before, unit)
    if not _finite(before) or stated == measured:
        return None
    start, end = case.windows["before"]
    note = t("brief.baseline_note", case.language, stated=stated, measured=measured, start=start, end=end)
    return t("brief.sentence", case.language, s=note)


def _findings(case: CaseParams, kpi: pd.DataFrame, problems: pd.DataFrame) -> list[str]:
    """Return the three findings that matter most to the goal (its own change is in the verdict's text).

    With the diagnosis's ``bears_on_goal`` column, only the problems bearing on the goal, most of the gap
    first; without it, the clearest other change in Table 2 and the first problems found.
    """
    from crmnb.analysis.compare import describe_change

    lang, metric = case.language, case.goal.metric
    rows = problems[problems["kind"] != "goal_gap"]
    if "bears_on_goal" in rows.columns:
        rows = rows[rows["bears_on_goal"].fillna(False).astype(bool)]
        if "share_of_gap" in rows.columns:
            rows = rows.sort_values("share_of_gap", ascending=False, na_position="last", kind="stable")
        return [
            t("brief.finding", lang, problem=p["problem"], evidence=p["evidence"]) for _, p in rows.head(3).iterrows()
        ]
    findings = []
    others = kpi[(kpi["metric"] != metric) & ((kpi["ci_low"] > 0) | (kpi["ci_high"] < 0))]
    # the response time is the lever the method watches first; then the clearest other change
    others = others.assign(_first=others["metric"] != "lead_response_hours").sort_values(["_first", "p_value"])
    for _, r in others.head(1).iterrows():
        findings.append(describe_change(r, lang))
    for _, p in rows.head(3 - len(findings)).iterrows():
        findings.append(t("brief.finding", lang, problem=p["problem"], evidence=p["evidence"]))
    return findings


def top_actions(plan: pd.DataFrame, n: int = 3) -> list[dict]:
    """Return the plan's first ``n`` actions that bear on the goal (the case file's own rows always do).

    Actions on problems off the goal stay in Table 3, under the goal's, but not in the brief.
    """
    if "bears_on_goal" in plan:
        plan = plan[plan["bears_on_goal"].fillna(False).astype(bool)]
    return plan.head(n)[["measure", "owner", "deadline"]].astype(str).to_dict("records")


def make_summary(
    case: CaseParams,
    kpi: pd.DataFrame,
    problems: pd.DataFrame,
    plan: pd.DataFrame,
    tables: dict | None = None,
    monthly: pd.DataFrame | None = None,
) -> dict:
    """Return the executive summary: the goal, before → now with its interval against the target, the verdict
    with its headline and sentences, the latest month, three findings and the top actions.

    ``tables`` (the cleaned tables) give a mean's interval; ``monthly`` (``report/monthly``) the latest
    month. Its words are in the case's language.
    """
    from crmnb.analysis.metrics import CATALOGUE

    lang, g = case.language, case.goal
    m = CATALOGUE[g.metric]
    row = kpi.set_index("metric").loc[g.metric]
    level = after_level(row, case, tables)
    verdict = judge(level, g.target, g.higher_is_better, float(row["ci_low"]), float(row["ci_high"]))
    latest = latest_month(monthly, case)
    if verdict == "not_measured":
        text = t("brief.sentence", lang, s=t("brief.not_measured", lang))
    else:
        sentences = [_level_sentence(verdict, level, case, m.unit), _change_sentence(row, m.unit, lang)]
        text = t("brief.join", lang).join([*sentences, *filter(None, [latest_sentence(latest, m.unit, lang)])])
    values = dict(now=fmt_value(level.value, m.unit), target=fmt_value(g.target, m.unit))
    return {
        "goal": {
            "metric": g.metric,
            "name": m.name(lang),
            "unit": m.unit,
            "baseline": g.baseline,
            "target": g.target,
            "deadline": str(g.deadline),
        },
        "windows": {w: [str(d) for d in case.windows[w]] for w in ("before", "after")},
        "before": float(row["before"]),
        "now": float(row["after"]),
        "verdict": verdict,
        "headline": t(f"brief.headline.{verdict}", lang, **values),
        "verdict_text": text,
        "interval": [level.low, level.high] if _finite(level.low) else None,
        "latest_month": latest,
        "baseline_note": baseline_note(case, float(row["before"]), m.unit),
        "findings": _findings(case, kpi, problems),
        "actions": top_actions(plan),
    }
