"""The hand-off catalogue: every hand-off a step writes, declared once, with its step and its sheet in tables.xlsx."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from crmnb.intake.schema import TABLES

# --------------------------------------------------------------------------- the hand-off catalogue
HANDOFF_STEPS: dict[str, tuple[int, str]] = {
    "scope": (1, "01_goal_and_scope"),
    "intake": (2, "02_data_collection"),
    "metrics": (3, "03_metrics"),
    "clean": (4, "04_cleaning_and_validation"),
    "deep_dive": (5, "05_case_deep_dive"),
    "plan": (6, "06_diagnosis_and_plan"),
    "report": (7, "07_report_and_iteration"),
}
"""Which step writes each hand-off folder: a hand-off is written by the step of its folder."""

Kind = Literal["table", "json"]


@dataclass(frozen=True)
class Sheet:
    """A hand-off's sheet in tables.xlsx: its title and which columns show as percent or money.

    Its title in the case's language is the message ``sheet.<folder>.<name>`` (``title`` where there is
    none). A ``template`` sheet is one of the method's templates, built from this and other hand-offs
    (crmnb.present.sheets.TEMPLATES); a ``one_page`` sheet prints on one page.
    """

    title: str
    percent: tuple[str, ...] = ()
    money: tuple[str, ...] = ()
    template: str | None = None
    one_page: bool = False


@dataclass(frozen=True)
class Handoff:
    """One declared hand-off: ``folder/name``, a table (Parquet) or a record (JSON), and its sheet if any."""

    name: str
    kind: Kind = "table"
    sheet: Sheet | None = None

    @property
    def step(self) -> tuple[int, str]:
        """Return the number and notebook of the step that writes this hand-off."""
        return HANDOFF_STEPS[self.name.split("/")[0]]


def _table(
    name: str,
    title: str | None = None,
    percent: tuple[str, ...] = (),
    money: tuple[str, ...] = (),
    template: str | None = None,
    one_page: bool = False,
) -> Handoff:
    """Return a table hand-off, with a sheet in tables.xlsx when it has a title."""
    return Handoff(name, "table", Sheet(title, percent, money, template, one_page) if title else None)


def _json(name: str) -> Handoff:
    """Return a record hand-off (JSON); records have no sheet."""
    return Handoff(name, "json")


# columns that several sheets format alike
_RATES, _SHARES, _SPEND = ("conversion", "roi"), ("revenue_share", "customer_share"), ("spend", "cac", "revenue")

# The hand-offs with a sheet come first, in the order of the sheets in tables.xlsx (the
# method's Tables 1-3 lead); the rest follow by step. The receipts check (step 4) is written
# under the name of the cleaned receipts table, replacing it: one name, declared once here.
_DECLARED: tuple[Handoff, ...] = (
    _table("scope/case_card", "Table 1 case card", one_page=True),
    _table("report/kpi_compare", "Table 2 KPI before-after", ("change_rate",), one_page=True),
    _table("plan/plan", "Table 3 improvement plan", one_page=True),
    _table("metrics/catalogue", "Metric catalogue"),
    _table("metrics/headline", "Headline metrics"),
    _table("intake/inventory", "Data inventory", ("coverage",)),
    _table("clean/log", "Cleaning log"),
    _table("clean/reconciliation", "Row reconciliation"),
    _table("clean/receipts", "Receipts check", ("difference_rate",), ("crm_amount", "finance_amount", "difference")),
    _table("deep_dive/funnel", "Funnel", ("conversion_rate", "overall_rate")),
    _table("deep_dive/tiers", "Value tiers", _SHARES, ("revenue",)),
    _table("deep_dive/rfm", "Customer value tiers", template="value_tiers"),
    _table("deep_dive/segments", "RFM segments", _SHARES, ("revenue",)),
    _table(
        "metrics/by_rep", "Metrics by rep", ("followup_ontime_rate", "lead_conversion_rate", "opportunity_win_rate")
    ),
    _table("metrics/unit_economics", "CAC and LTV"),
    _table("deep_dive/response_buckets", "Response-time drivers", ("conversion_rate", "ci_low", "ci_high")),
    _table("deep_dive/clv_by_tier", "CLV by tier", ("prob_alive",), ("clv", "clv_total")),
    _table("deep_dive/clv_holdout", "CLV holdout check"),
    _table("deep_dive/channels", "Channels", _RATES, _SPEND),
    _table("deep_dive/campaigns", "Campaigns", _RATES, _SPEND),
    _table("deep_dive/attribution", "Attribution"),
    _table("plan/cpa_alerts", "CPA alerts", ("overrun",), ("spend", "cac", "excess_spend")),
    _table("plan/churn_model", "Churn model"),
    _table("plan/watch_list", "Churn watch list", ("churn_probability",)),
    _table("deep_dive/churn_rules", "Churn early warning", template="churn_warning"),
    _table("plan/problems", "Problems"),
    _table("plan/drivers", "Goal drivers", ("share_of_gap",)),
    _table("plan/scan", "Driver scan", ("share_of_gap",)),
    _table("report/forecast", "Forecast", (), ("forecast", "lower", "upper")),
    _table("report/forecast_accuracy", "Forecast accuracy", ("wape", "bias", "total_wape", "total_bias")),
    _table("report/tracking", "Action tracking", template="action_tracking"),
    # step 1
    _table("scope/goal"),
    _table("scope/scope"),
    # step 2: every canonical table as read, and what could not be read
    *(_table(f"intake/{t}") for t in TABLES),
    _table("intake/issues"),
    _table("intake/formats"),
    # step 4: every canonical table as cleaned, what was set aside and merged, the receipts check
    *(_table(f"clean/{t}") for t in TABLES if t != "receipts"),
    _table("clean/quarantine"),
    _table("clean/merges"),
    _json("clean/receipts_summary"),
    _table("clean/metric_impact"),
    # step 5
    _json("deep_dive/response_slope"),
    _table("deep_dive/clv"),
    _json("deep_dive/clv_params"),
    _table("deep_dive/channel_stage"),
    _json("deep_dive/cases"),
    # step 6
    _table("plan/churn_lift"),
    # step 7
    _table("report/monthly"),
    _table("report/response_by_rep"),
    _json("report/summary"),
    # step 5: the service desk (tickets against targets, satisfaction, complaint themes, complaints and buying)
    _table(
        "deep_dive/service_targets", "Service targets", ("first_response_within", "resolution_within", "reopened_rate")
    ),
    _table("deep_dive/satisfaction", "Satisfaction by group"),
    _table(
        "deep_dive/complaint_themes",
        "Complaint themes",
        ("share_before", "share_after", "share_change", "ci_low", "ci_high"),
    ),
    _table("deep_dive/theme_trend", "Complaint themes by month", ("share",)),
    _table(
        "deep_dive/complaint_outcomes",
        "Complaints and later buying",
        ("complainant_rate", "requester_rate", "rate_difference", "ci_low", "ci_high"),
    ),
    # campaigns, attribution in depth and segment treatments (step 5)
    _table("deep_dive/segment_actions", "Segment treatments", ("revenue_share",), ("revenue",)),
    _table("deep_dive/email_funnel", "E-mail funnel", ("rate", "ci_low", "ci_high", "of_sent")),
    _table("deep_dive/ab_tests", "A-B tests", ("rate_a", "rate_b", "difference", "ci_low", "ci_high")),
    _table("deep_dive/utm", "UTM channels", ("conversion", "ci_low", "ci_high")),
    _table("plan/budget", "Budget by channel", (), ("spend", "revenue")),
    # lead and deal scoring, the pipeline to work (step 6)
    _table("plan/scoring_model", "Scoring model", ("calibration_error", "holdout_win_rate")),
    _table("plan/scoring_calibration", "Scoring calibration", ("mean_probability", "win_rate")),
    _table("plan/pipeline_to_work", "Pipeline to work", ("win_probability",), ("amount",)),
    _table("plan/scored"),
    # the pipeline forecast, chosen by backtest (step 7)
    _table("report/forecast_backtest", "Forecast backtest", ("wape", "bias", "total_wape", "total_bias")),
    _table(
        "report/pipeline_forecast",
        "Pipeline forecast",
        (),
        ("pipeline", "new_deals", "campaign_effect", "forecast", "lower", "upper"),
    ),
    _table(
        "report/forecast_miss", "Forecast miss breakdown", ("share_of_error",), ("forecast", "actual_revenue", "error")
    ),
    _json("report/pipeline_coverage"),
    # routing advice (step 6)
    _table(
        "plan/routing_rates",
        "Rep x segment win rates",
        ("raw_win_rate", "rep_win_rate", "segment_win_rate", "shrunk_win_rate", "rate_low", "rate_high"),
    ),
    _table("plan/routing", "Routing advice", ("win_probability", "current_rate", "suggested_rate"), ("amount",)),
    _table("plan/routing_workload", "Routing workload"),
    # the run history (crmnb.run.since, with the report): the goal's units and what the next run compares with
    _table("report/goal_units"),
    _json("report/since_last_run"),
    # the campaign driver of the pipeline forecast's new deals (step 7)
    _table("report/campaign_driver", "Campaign driver"),
)


def _catalogue(entries: tuple[Handoff, ...]) -> dict[str, Handoff]:
    """Return the hand-offs by name; a name declared twice or outside a step's folder is a bug here."""
    out: dict[str, Handoff] = {}
    for h in entries:
        if h.name in out:
            raise ValueError(f"hand-off {h.name!r} is declared twice in crmnb/handoff_catalogue.py")
        if not re.fullmatch(r"[a-z0-9_]+/[a-z0-9_]+", h.name) or h.name.split("/")[0] not in HANDOFF_STEPS:
            raise ValueError(f"hand-off {h.name!r} must be 'folder/name' with a folder of {', '.join(HANDOFF_STEPS)}")
        out[h.name] = h
    return out


HANDOFFS: dict[str, Handoff] = _catalogue(_DECLARED)
"""Every hand-off a step writes, by name: the only names a :class:`Workspace` writes or reads."""

EXTENSIONS: dict[str, str] = {"table": "parquet", "json": "json"}
"""The file extension of each kind of hand-off."""


def handoff(name: str, kind: Kind | None = None) -> Handoff:
    """Return the declared hand-off ``name``, or raise ValueError naming the closest declared names.

    >>> handoff("deep_dive/funnel").step
    (5, '05_case_deep_dive')
    >>> handoff("deep_dive/funel")
    Traceback (most recent call last):
    ...
    ValueError: hand-off 'deep_dive/funel' is not declared; closest: deep_dive/funnel, ...
    """
    h = HANDOFFS.get(name)
    if h is None:
        close = difflib.get_close_matches(str(name), HANDOFFS, n=3, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else "no declared name is close"
        raise ValueError(f"hand-off {name!r} is not declared; {hint} (the catalogue: HANDOFFS in {__file__})")
    if kind is not None and h.kind != kind:
        raise ValueError(f"hand-off {name!r} is declared a {h.kind}, not a {kind} (HANDOFFS in {__file__})")
    return h


def sheets() -> list[Handoff]:
    """Return the hand-offs that have a sheet in tables.xlsx, in the sheets' order."""
    return [h for h in HANDOFFS.values() if h.sheet is not None]
