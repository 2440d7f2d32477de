"""Diagnosis: the problems the data shows, their likely causes, and the improvement plan (Table 3).

Each rule is one small function registered in :data:`RULES` with its kind and weight: it reads one :class:`Context`
and returns, for each problem it finds, the figures that fill its words, the catalogue's ``diagnosis.<kind>.*``
(``problem``, ``evidence``, ``cause``; ``measure``, ``effect``, ``target``, ``kpi``). Problems bearing on the goal
come first (crmnb/analysis/bearing.py), by the share of the gap their driver would close.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from crmnb.analysis.bearing import bears_on_goal, goal_evidence, goal_move, worst_reps
from crmnb.analysis.losses import ranked_reasons, top_reason
from crmnb.analysis.service_problems import SERVICE_RULES
from crmnb.intake.ledger import LOG_LANGUAGE
from crmnb.present.words import category, fmt_value, has, stage_labels, t
from crmnb.registry import Registry

PLAN_COLUMNS = [
    "problem",
    "cause",
    "measure",
    "target",
    "kpi",
    "owner",
    "deadline",
    "expected_effect",
    "bears_on_goal",
    "source",
]
PROBLEM_COLUMNS = ["kind", "problem", "evidence", "cause", "bears_on_goal", "share_of_gap"]
ACTION_COLUMNS = ["goal_effect", "target", "measure", "kpi", "expected_effect"]
"""What a problem's row of the plan says, kept beside it in the problems table (the plan reads it from there)."""
PROBLEM_WORDS = ("problem", "evidence", "cause")
"""The words of a problem found, each the message ``diagnosis.<kind>.<word>``."""
PLAN_WORDS = ("measure", "effect", "target", "kpi")
"""The words of the plan row a problem suggests (action, effect, target, KPI), each ``diagnosis.<kind>.<word>``."""


GOAL_KEYS = ("name", "unit", "now", "target", "higher_is_better")
NEEDED_COLUMNS = {
    "headline_after": ("metric", "value"),
    "funnel_table": ("stage", "conversion_rate", "dwell_alert", "top_loss_reasons"),
    "cleaning_log": ("rule", "table", "rows"),
}
"""The columns of each hand-off the rules read whenever it has rows."""


@dataclass(frozen=True)
class Context:
    """What the diagnosis rules read: the steps' hand-offs, the case's thresholds and its goal.

    ``goal`` holds name, unit, now, target and higher_is_better (metric may be there too). The
    churn rule table, CPA alerts and response-time slope are optional; each adds its problems.
    """

    headline_after: pd.DataFrame  # the headline metrics of the after window: metric, value
    funnel_table: pd.DataFrame  # deep_dive/funnel
    reconciliation: dict  # clean/receipts_summary
    cleaning_log: pd.DataFrame  # clean/log
    response_target_hours: float
    followup_target: float
    goal: dict
    churn_rules: pd.DataFrame | None = None
    cpa_alerts: pd.DataFrame | None = None
    response_slope: dict | None = None
    drivers: pd.DataFrame | None = None  # crmnb.analysis.goal_tree.goal_drivers
    scan: pd.DataFrame | None = None  # crmnb.analysis.scan.driver_scan
    losses: pd.DataFrame | None = None  # crmnb.analysis.funnel.loss_stage: lost deals, their stage and reason
    by_rep: pd.DataFrame | None = None  # metrics/by_rep: the reps an action on response or follow-up names

    def __post_init__(self) -> None:
        check_context(self)

    def metric(self, name: str) -> float | None:
        """Return a headline metric's value, or None when it is not there or not measured."""
        value = self.headline_after.set_index("metric")["value"].get(name)
        return None if value is None or pd.isna(value) else value

    def driver(self, kind: str) -> dict | None:
        """Return the goal driver of ``kind`` (:func:`crmnb.analysis.goal_tree.goal_drivers`), or None."""
        d = self.drivers
        if d is None or not len(d) or kind not in set(d["kind"]):
            return None
        return d[d["kind"] == kind].iloc[0].to_dict()

    def gain(self, kind: str, language: str, **extra: object) -> Finding:
        """Return the figures of the goal driver of ``kind`` that a finding carries (empty when none)."""
        d = self.driver(kind)
        if d is None:
            return {}
        seg = d.get("segment")
        seg = (stage_labels(language).get(seg) or str(category(seg, language))) if isinstance(seg, str) else ""
        figures = {"_gain": d["gain"], "_share": d["share_of_gap"], "n": int(d["n"]), "segment": seg}
        return {**figures, "_value": d["value"], "_rest": d["rest_value"], **extra}


def check_context(ctx: Context) -> None:
    """Raise ValueError naming what is missing when a hand-off lacks a column or the goal a key."""
    for field, needed in NEEDED_COLUMNS.items():
        frame = getattr(ctx, field)
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"diagnosis: {field} has no column {', '.join(missing)}")
    missing = [k for k in GOAL_KEYS if k not in ctx.goal]
    if missing:
        raise ValueError(f"diagnosis: the goal has no {', '.join(missing)}")


Finding = dict[str, object]
"""The figures one problem's words are filled with (the placeholders of its messages)."""


@dataclass(frozen=True)
class Rule:
    """One diagnosis rule: the kind of problem it finds, its weight in the ranking, and its function."""

    kind: str
    weight: float
    find: Callable[[Context, str], list[Finding]]

    def words(self, finding: Finding, language: str) -> dict[str, str]:
        """Return the problem's words (problem, evidence, cause) in ``language``, filled with ``finding``."""
        return {w: t(f"diagnosis.{self.kind}.{w}", language, **finding) for w in PROBLEM_WORDS}

    def action(self, finding: Finding, language: str) -> dict[str, str]:
        """Return the plan row's words in ``language``: measure, target, KPI and expected effect."""
        key = f"diagnosis.{self.kind}"
        target = f"{key}.target" if "n" in finding or not has(f"{key}.target_all") else f"{key}.target_all"
        words = {
            "measure": t(f"{key}.measure", language, **finding),
            "target": t(target, language, **finding),
            "kpi": t(f"{key}.kpi", language, **finding),
            "expected_effect": t(f"{key}.effect", language, **finding),
        }
        gain = finding.get("_gain")
        if gain is not None and pd.notna(gain) and gain > 0 and "goal_unit" in finding:
            share = finding.get("_share")
            share = "" if share is None or pd.isna(share) else t("diagnosis.share", language, share=share)
            move = goal_move(gain, str(finding["goal_unit"]), language)
            words["expected_effect"] += t(
                "diagnosis.on_goal", language, name=finding["goal_name"], move=move, share=share
            )
        return words


RULES: Registry[Rule] = Registry("diagnosis rule")
"""The diagnosis rules by the kind of problem they find, in the order they run."""


def register(kind: str, weight: float) -> Callable:
    """Return a decorator that registers a rule function finding problems of ``kind``, after the rules before it."""

    def add(fn: Callable[[Context, str], list[Finding]]) -> Callable[[Context, str], list[Finding]]:
        RULES.add(kind, Rule(kind, weight, fn))
        return fn

    return add


def stage_name(stage: str, language: str) -> str:
    """Return a funnel stage's display name, or the stage as written when it is not a known one."""
    return stage_labels(language).get(stage, stage)


# --------------------------------------------------------------------------- the rules, in order
@register("goal_gap", weight=10)
def goal_gap(ctx: Context, language: str) -> list[Finding]:
    """Find the goal metric on the wrong side of its target."""
    goal = ctx.goal
    now, target = goal["now"], goal["target"]
    gap_open = (now < target) if goal["higher_is_better"] else (now > target)
    if not (pd.notna(now) and gap_open):
        return []
    side = t("diagnosis.goal_gap.below" if goal["higher_is_better"] else "diagnosis.goal_gap.above", language)
    return [
        {
            "name": goal["name"],
            "side": side,
            "now": fmt_value(now, goal["unit"]),
            "target": fmt_value(target, goal["unit"]),
        }
    ]


@register("slow_response", weight=8)
def slow_response(ctx: Context, language: str) -> list[Finding]:
    """Find leads waiting longer than the target for their first contact."""
    hours = ctx.metric("lead_response_hours")
    late = (ctx.driver("slow_response") or {}).get("gain", 0) > 0  # late leads fall short even if the mean is met
    if hours is None or not (hours > ctx.response_target_hours or late):
        return []
    slope, found = ctx.response_slope, ""
    if slope and (slope.get("ci_low") or 0) > 0:
        found = t("diagnosis.slow_response.slope", language, pp=slope["per_unit"] * 100)
    reps = worst_reps(ctx.by_rep, "lead_response_hours", language, higher_is_better=False)
    return [
        {
            **ctx.gain("slow_response", language),
            "hours": hours,
            "target": ctx.response_target_hours,
            "slope": found,
            "reps": reps,
        }
    ]


@register("followup_late", weight=6)
def followup_late(ctx: Context, language: str) -> list[Finding]:
    """Find follow-up tasks done on time less often than the target."""
    rate = ctx.metric("followup_ontime_rate")
    if rate is None or not rate < ctx.followup_target:
        return []
    reps = worst_reps(ctx.by_rep, "followup_ontime_rate", language, higher_is_better=True)
    found: Finding = {"rate": rate, "target": ctx.followup_target, "reps": reps}
    if "n" in ctx.headline_after:  # tasks due in the window: those not done on time are the target
        n = ctx.headline_after.set_index("metric")["n"].get("followup_ontime_rate")
        found["n"] = int(round(n * (1 - rate))) if n is not None and pd.notna(n) else None
    return [{k: v for k, v in found.items() if v is not None}]


@register("weak_stage", weight=7)
def weak_stage(ctx: Context, language: str) -> list[Finding]:
    """Find the funnel stage fewest leads go on from."""
    f = ctx.funnel_table.dropna(subset=["conversion_rate"])
    if not len(f):
        return []
    weak = f.loc[f["conversion_rate"].idxmin()]
    driver = ctx.driver("weak_stage") or {}
    if driver.get("segment") in set(f["stage"]):
        weak = f[f["stage"] == driver["segment"]].iloc[0]
    lost = int(round(weak["entered"] * (1 - weak["conversion_rate"])))
    reasons = weak["top_loss_reasons"] or t("diagnosis.weak_stage.not_recorded", language)
    if ctx.losses is not None:
        reasons = ranked_reasons(ctx.losses, language, stage=weak["stage"], lost=lost) or reasons
        if weak["stage"] in ("lead", "first_contact"):  # lost before any deal: nowhere to record a reason
            reasons += t("diagnosis.losses.no_deal", language)
    return [
        {
            **ctx.gain("weak_stage", language),
            "stage": stage_name(weak["stage"], language),
            "rate": weak["conversion_rate"],
            "entered": int(weak["entered"]),
            "n": int(weak["entered"]),
            "lost": lost,
            "reasons": reasons,
        }
    ]


@register("slow_stage", weight=5)
def slow_stage(ctx: Context, language: str) -> list[Finding]:
    """Find each stage whose deals dwell longer than its benchmark."""
    funnel = ctx.funnel_table
    slow = funnel[funnel["dwell_alert"].fillna(False).astype(bool)]
    driver = ctx.driver("slow_stage") or {}
    return [
        {
            **(ctx.gain("slow_stage", language) if driver.get("segment") == r["stage"] else {}),
            "stage": stage_name(r["stage"], language),
            "days": r["avg_dwell_days"],
            "benchmark": r["dwell_benchmark_days"],
            "n": int(r["entered"]),
        }
        for _, r in slow.iterrows()
    ]


@register("loss_reason", weight=4)
def loss_reason(ctx: Context, language: str) -> list[Finding]:
    """Find the loss reasons of the lost deals, ranked over all stages, with the share left without a reason."""
    if ctx.losses is not None:
        if not len(ctx.losses):
            return []
        top = top_reason(ctx.losses, language)
        return [{"reasons": ranked_reasons(ctx.losses, language), "n": len(ctx.losses), "top": top}]
    reasons = ", ".join(r for r in ctx.funnel_table["top_loss_reasons"] if r)
    return [{"reasons": reasons, "n": "–", "top": ""}] if reasons else []


@register("receipts", weight=3)
def receipts(ctx: Context, language: str) -> list[Finding]:
    """Find won deals whose CRM amount finance did not receive, when receipts were checked."""
    rc = ctx.reconciliation
    if not rc.get("checked", True) or not (rc.get("mismatched", 0) or rc.get("no_receipt", 0)):
        return []
    verdict = t("diagnosis.receipts.within" if rc["passes"] else "diagnosis.receipts.above", language)
    return [
        {
            "mismatched": rc["mismatched"],
            "no_receipt": rc["no_receipt"],
            "rate": rc["difference_rate"],
            "verdict": verdict,
            "max_rate": rc["max_diff_rate"],
        }
    ]


@register("churn_risk", weight=6.5)
def churn_risk(ctx: Context, language: str) -> list[Finding]:
    """Find active customers at high risk of churning by the warning rules."""
    rules = ctx.churn_rules
    if rules is None or not len(rules):
        return []
    high = int((rules["risk_level"] == "high").sum())
    medium = int((rules["risk_level"] == "medium").sum())
    return [{"medium": medium, **ctx.gain("churn_risk", language), "high": high, "active": len(rules)}] if high else []


@register("cpa", weight=4.5)
def cpa(ctx: Context, language: str) -> list[Finding]:
    """Find campaigns whose cost per customer is over their benchmark by more than the tolerance."""
    alerts = ctx.cpa_alerts
    if alerts is None or not len(alerts):
        return []
    over = alerts[alerts["alert"] == "over_benchmark"] if "alert" in alerts else alerts
    if not len(over):
        return []
    names = ", ".join(str(x) for x in over.get("name", over.get("campaign_id")).head(3))
    return [{"count": len(over), "names": names, "n": len(over)}]


@register("data_quality", weight=2)
def data_quality(ctx: Context, language: str) -> list[Finding]:
    """Find duplicate customer records that cleaning merged."""
    log = ctx.cleaning_log
    merged = t("cleaning.duplicate_customer.rule", LOG_LANGUAGE)  # the log's own wording of the rule
    dups = log[(log["rule"] == merged) & (log["table"] == "customers")]
    return [{"merged": int(dups["rows"].sum()), "n": int(dups["rows"].sum())}] if len(dups) else []


def _driver_rule(kind: str) -> Callable[[Context, str], list[Finding]]:
    """Return a rule finding the goal driver ``kind`` when its segment falls short of the rest."""

    def find(ctx: Context, language: str) -> list[Finding]:
        figures = ctx.gain(kind, language)
        return [figures] if figures and figures["_gain"] > 0 else []

    find.__doc__ = f"Find the goal driver {kind!r} when its segment falls short of the rest (goal_tree.goal_drivers)."
    return find


for _kind, _weight in (
    ("no_followup", 7.5),
    ("complaints", 7),
    ("low_satisfaction", 6),
    ("uncontacted", 7),
    ("channel_mix", 5.5),
    ("slow_resolution", 6),
    ("off_hours", 6),
    ("task_type", 5.5),
):
    register(_kind, weight=_weight)(_driver_rule(_kind))
for _kind, _weight, _find in SERVICE_RULES:  # the service desk's: crmnb/analysis/service_problems.py
    register(_kind, weight=_weight)(_find)


@register("segment", weight=5)
def segment(ctx: Context, language: str) -> list[Finding]:
    """Find the subgroups of the driver scan whose goal metric falls short of the rest beyond chance (Holm)."""
    from crmnb.analysis.scan import strongest, subgroup_label

    if ctx.scan is None or not len(ctx.scan):
        return []
    scan = ctx.scan
    unit = ctx.goal["unit"]
    return [
        {
            "_gain": r["gain"],
            "_share": r["share_of_gap"],
            "_value": r["value"],
            "_rest": r["rest_value"],
            "group": subgroup_label(r["dimension"], r["subgroup"], language),
            "n": int(r["n"]),
            "name": ctx.goal["name"],
            "value": fmt_value(r["value"], unit),
            "rest": fmt_value(r["rest_value"], unit),
            "low": fmt_value(r["ci_low"], unit),
            "high": fmt_value(r["ci_high"], unit),
            "p": "< 0.001" if r["p_holm"] < 0.001 else f"= {r['p_holm']:.3f}",
        }
        for _, r in strongest(scan, top=2).iterrows()
    ]


# --------------------------------------------------------------------------- problems and the plan
def find_problems(context: Context, language: str) -> pd.DataFrame:
    """Return the problems the data shows, those bearing on the goal first, each group most of the gap first.

    Every rule of :data:`RULES` runs in order on ``context``; its problems are worded in ``language``.
    Columns: kind, problem, evidence, cause, bears_on_goal, share_of_gap (the fraction of the gap to target
    the problem's segment would close by doing as well as the rest; NaN when not estimable), then what its
    plan row says (goal_effect in the goal's unit, target, measure, kpi, expected_effect). The goal gap leads;
    the problems that bear on the goal follow by goal_effect, then by the rule's weight; the rest after them.
    """
    goal = context.goal
    rows = []
    for rule in RULES:
        for finding in rule.find(context, language):
            finding = {"goal_name": goal["name"], "goal_unit": goal["unit"], **finding}
            gain = finding.get("_gain")
            words = rule.words(finding, language)
            words["evidence"] += goal_evidence(rule.kind, finding, language)
            rows.append(
                {
                    "kind": rule.kind,
                    **words,
                    "bears_on_goal": bears_on_goal(rule.kind, goal, finding),
                    "share_of_gap": float(finding.get("_share", float("nan"))),
                    "goal_effect": float("nan") if gain is None else float(gain),
                    **rule.action(finding, language),
                    "weight": rule.weight,
                }
            )
    out = pd.DataFrame(rows, columns=[*PROBLEM_COLUMNS, *ACTION_COLUMNS, "weight"])
    out = out.astype({"bears_on_goal": bool, "share_of_gap": float, "goal_effect": float})
    out["_first"] = out["kind"] == "goal_gap"
    keys = ["_first", "bears_on_goal", "goal_effect", "weight"]
    out = out.sort_values(keys, ascending=False, kind="stable", na_position="last")
    return out.drop(columns=["weight", "_first"]).reset_index(drop=True)


def plan_words(kind: str, language: str) -> tuple[str, str]:
    """Return the measure a problem of ``kind`` suggests and its expected effect, in ``language``, unfilled.

    >>> plan_words("cpa", "en")[1], plan_words("no_such_kind", "zh")[0]
    ('CAC back under benchmark', '进一步调查')
    """
    key = f"diagnosis.{kind}" if kind in RULES else "diagnosis.other"
    measure, effect = (t(f"{key}.{w}", language) for w in PLAN_WORDS[:2])
    return measure, effect


def improvement_plan(
    problems: pd.DataFrame,
    analyst_items: list[dict],
    owner: str,
    deadline: date,
    language: str,
    owners: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Return Table 3: the analyst's own plan rows first, then one action per problem found (the goal gap is
    the goal, tracked in Table 2, not an action). Each action names its target, its KPI and its expected
    effect; its owner and deadline are the case file's ``action_owners`` for its kind, else the case's."""
    rows = [{"target": "", "kpi": "", "bears_on_goal": True, **item, "source": "analyst"} for item in analyst_items]
    owners = owners or {}
    for _, p in problems[problems["kind"] != "goal_gap"].iterrows():
        measure, effect = plan_words(p["kind"], language)
        given = owners.get(p["kind"]) or {}
        rows.append(
            {
                "problem": p["problem"],
                "cause": p["cause"],
                "measure": p.get("measure", measure),
                "target": p.get("target", ""),
                "kpi": p.get("kpi", ""),
                "owner": given.get("owner") or owner,
                "deadline": given.get("deadline") or deadline,
                "expected_effect": p.get("expected_effect", effect),
                "bears_on_goal": bool(p.get("bears_on_goal", True)),
                "source": "data",
            }
        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def tracking_table(plan: pd.DataFrame, case, tables=None, problems: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the action tracking table: with the cleaned ``tables``, the ledger's actions scored and the plan's
    new proposals (:mod:`crmnb.analysis.action_tracking`); without, each measure planned, watched by its own KPI."""
    from crmnb.analysis.metrics import CATALOGUE

    if tables is not None:
        from crmnb.analysis.action_tracking import tracking

        return tracking(plan, case, tables, problems)
    goal_kpi = CATALOGUE[case.goal.metric].name(case.language)
    out = plan[[c for c in ("measure", "target", "owner", "deadline", "expected_effect") if c in plan]].copy()
    out.insert(0, "action", range(1, len(out) + 1))
    own = plan["kpi"].fillna("").astype(str) if "kpi" in plan else pd.Series("", index=plan.index)
    out["kpi_to_watch"] = own.where(own != "", goal_kpi)
    out["review"], out["status"] = t("diagnosis.tracking.review", case.language), "planned"
    return out


def unchecked_receipts(receipts: pd.DataFrame, summary: dict, language: str) -> str | None:
    """Return the note that won deals could not be checked against finance because the data has no
    receipts at all, or None when there are receipts to check against.

    >>> unchecked_receipts(pd.DataFrame(columns=["receipt_id"]), {"won_deals": 2}, "en")
    'Won deals not checked against finance: the check needs the finance receipts (the receipts table); this data has none, so 2 won deals stay unchecked.'
    """
    if len(receipts):
        return None
    n = int(summary.get("won_deals", 0))
    return t("diagnosis.unchecked_receipts.one" if n == 1 else "diagnosis.unchecked_receipts.other", language, n=n)
