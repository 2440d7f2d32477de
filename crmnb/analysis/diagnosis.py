"""Diagnosis: the problems the data shows, their likely causes, and the improvement plan (Table 3).

Each diagnosis rule is one small function registered in :data:`RULES` with its kind and weight. It
reads what it needs from one :class:`Context` and returns, for each problem it finds, the figures
its words are filled with. Its words are the catalogue's ``diagnosis.<kind>.*`` messages
(crmnb/present/catalogue/diagnosis.yaml): ``problem``, ``evidence`` and ``cause`` for the problem,
``measure`` and ``effect`` for its row of the improvement plan. A new rule is one function under
``@register(...)`` and its five messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from crmnb.intake.ledger import LOG_LANGUAGE
from crmnb.present.words import fmt_value, stage_labels, t
from crmnb.registry import Registry

PLAN_COLUMNS = ["problem", "cause", "measure", "owner", "deadline", "expected_effect", "source"]
PROBLEM_COLUMNS = ["kind", "problem", "evidence", "cause"]
PROBLEM_WORDS = ("problem", "evidence", "cause")
"""The words of a problem found, each the message ``diagnosis.<kind>.<word>``."""
PLAN_WORDS = ("measure", "effect")
"""The words of the plan row a problem suggests, each the message ``diagnosis.<kind>.<word>``."""

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

    def __post_init__(self) -> None:
        check_context(self)

    def metric(self, name: str) -> float | None:
        """Return a headline metric's value, or None when it is not there or not measured."""
        value = self.headline_after.set_index("metric")["value"].get(name)
        return None if value is None or pd.isna(value) else value


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
    if hours is None or not hours > ctx.response_target_hours:
        return []
    slope, found = ctx.response_slope, ""
    if slope and slope.get("ci_low", 0) > 0:
        found = t("diagnosis.slow_response.slope", language, pp=slope["per_unit"] * 100)
    return [{"hours": hours, "target": ctx.response_target_hours, "slope": found}]


@register("followup_late", weight=6)
def followup_late(ctx: Context, language: str) -> list[Finding]:
    """Find follow-up tasks done on time less often than the target."""
    rate = ctx.metric("followup_ontime_rate")
    if rate is None or not rate < ctx.followup_target:
        return []
    return [{"rate": rate, "target": ctx.followup_target}]


@register("weak_stage", weight=7)
def weak_stage(ctx: Context, language: str) -> list[Finding]:
    """Find the funnel stage fewest leads go on from."""
    f = ctx.funnel_table.dropna(subset=["conversion_rate"])
    if not len(f):
        return []
    weak = f.loc[f["conversion_rate"].idxmin()]
    return [
        {
            "stage": stage_name(weak["stage"], language),
            "rate": weak["conversion_rate"],
            "entered": int(weak["entered"]),
            "reasons": weak["top_loss_reasons"] or t("diagnosis.weak_stage.not_recorded", language),
        }
    ]


@register("slow_stage", weight=5)
def slow_stage(ctx: Context, language: str) -> list[Finding]:
    """Find each stage whose deals dwell longer than its benchmark."""
    funnel = ctx.funnel_table
    slow = funnel[funnel["dwell_alert"].fillna(False).astype(bool)]
    return [
        {
            "stage": stage_name(r["stage"], language),
            "days": r["avg_dwell_days"],
            "benchmark": r["dwell_benchmark_days"],
        }
        for _, r in slow.iterrows()
    ]


@register("loss_reason", weight=4)
def loss_reason(ctx: Context, language: str) -> list[Finding]:
    """Find the loss reasons recorded at any stage."""
    reasons = ", ".join(r for r in ctx.funnel_table["top_loss_reasons"] if r)
    return [{"reasons": reasons}] if reasons else []


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
    return [{"high": high, "active": len(rules)}] if high else []


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
    return [{"count": len(over), "names": names}]


@register("data_quality", weight=2)
def data_quality(ctx: Context, language: str) -> list[Finding]:
    """Find duplicate customer records that cleaning merged."""
    log = ctx.cleaning_log
    merged = t("cleaning.duplicate_customer.rule", LOG_LANGUAGE)  # the log's own wording of the rule
    dups = log[(log["rule"] == merged) & (log["table"] == "customers")]
    return [{"merged": int(dups["rows"].sum())}] if len(dups) else []


# --------------------------------------------------------------------------- problems and the plan
def find_problems(context: Context, language: str) -> pd.DataFrame:
    """Return the problems the data shows, most important first: kind, problem, evidence, cause.

    Every rule of :data:`RULES` runs in order on ``context``; its problems are worded in
    ``language`` and ranked by the rule's weight (ties in the order found).
    """
    rows = [
        {"kind": rule.kind, **rule.words(finding, language), "weight": rule.weight}
        for rule in RULES
        for finding in rule.find(context, language)
    ]
    out = pd.DataFrame(rows, columns=[*PROBLEM_COLUMNS, "weight"])
    return out.sort_values("weight", ascending=False, kind="stable").drop(columns="weight").reset_index(drop=True)


def plan_words(kind: str, language: str) -> tuple[str, str]:
    """Return the measure a problem of ``kind`` suggests and its expected effect, in ``language``.

    >>> plan_words("cpa", "en")[1], plan_words("no_such_kind", "zh")[0]
    ('CAC back under benchmark', '进一步调查')
    """
    key = f"diagnosis.{kind}" if kind in RULES else "diagnosis.other"
    measure, effect = (t(f"{key}.{w}", language) for w in PLAN_WORDS)
    return measure, effect


def improvement_plan(
    problems: pd.DataFrame, analyst_items: list[dict], owner: str, deadline: date, language: str
) -> pd.DataFrame:
    """Return Table 3: the analyst's own plan rows first, then one suggested measure per problem found."""
    rows = [{**item, "source": "analyst"} for item in analyst_items]
    for _, p in problems.iterrows():
        measure, effect = plan_words(p["kind"], language)
        rows.append(
            {
                "problem": p["problem"],
                "cause": p["cause"],
                "measure": measure,
                "owner": owner,
                "deadline": deadline,
                "expected_effect": effect,
                "source": "data",
            }
        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def tracking_table(plan: pd.DataFrame, case) -> pd.DataFrame:
    """Return the action tracking table: each measure with its owner, deadline, KPI to watch and status."""
    from crmnb.analysis.metrics import CATALOGUE

    kpi = CATALOGUE[case.goal.metric].name(case.language)
    out = plan[["measure", "owner", "deadline", "expected_effect"]].copy()
    out.insert(0, "action", range(1, len(out) + 1))
    out["kpi_to_watch"] = kpi
    out["review"] = t("diagnosis.tracking.review", case.language)
    out["status"] = "planned"
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
