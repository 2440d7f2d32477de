"""Case parameters: one YAML file per case, validated once, up front, into a typed object.

>>> case = load_case("parameters/lead_conversion_uplift.yaml")  # doctest: +SKIP
>>> case.goal.target  # doctest: +SKIP
0.2
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmnb.intake.parse import DEFAULT_TIMEZONE
from crmnb.intake.schema import DEFAULT_FILES, FUNNEL_STAGES, TABLES
from crmnb.intake.sources import Located, TableSource, check_tables, locate
from crmnb.params.campaigns import CampaignSettings
from crmnb.params.loop import ReviewEvery
from crmnb.params.predict import PredictSettings
from crmnb.params.service import ServiceSettings

GOAL_METRICS: dict[str, str] = {
    "lead_response_hours": "hours",
    "followup_ontime_rate": "rate",
    "lead_conversion_rate": "rate",
    "opportunity_win_rate": "rate",
    "sales_cycle_days": "days",
    "avg_order_value": "CNY",
    "repeat_purchase_rate": "rate",
    "csat": "score",
    "complaint_resolution_hours": "hours",
}
"""Metrics a case goal may name, with their unit: the metric catalogue's entries marked ``goal``
(:data:`crmnb.analysis.metrics.CATALOGUE`; a test keeps the two the same). Written out here, checking a
case file does not import the analyses: the runner starts 0.7 s sooner and 50 MB smaller without scipy."""


class _Model(BaseModel):
    # allow_inf_nan: a threshold of .nan never fires and .inf changes every level it bounds
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)


class Period(_Model):
    """The analysis period, both ends included."""

    start: date = Field(description="first day analysed")
    end: date = Field(description="last day analysed; after start")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    @property
    def days(self) -> int:
        """Return the length of the period in days."""
        return (self.end - self.start).days + 1


class Goal(_Model):
    """A SMART goal: which metric moves from which baseline to which target, by when."""

    metric: str = Field(description=f"one of: {', '.join(GOAL_METRICS)}")
    baseline: float = Field(description="the metric's value before; rates as fractions (0.15 for 15%)")
    target: float = Field(description="the value to reach; differs from baseline (below it for times and durations)")
    deadline: date = Field(description="when the target is to be reached, YYYY-MM-DD")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in GOAL_METRICS:
            raise ValueError(f"unknown metric {v!r}; expected one of {', '.join(GOAL_METRICS)}")
        return v

    @model_validator(mode="after")
    def _sensible(self) -> Goal:
        if self.target == self.baseline:
            raise ValueError(f"target equals baseline ({self.target}): there is nothing to reach")
        if GOAL_METRICS[self.metric] == "rate":
            for name, v in (("baseline", self.baseline), ("target", self.target)):
                if not 0 <= v <= 1:
                    raise ValueError(f"{name} {v} is a rate and must lie between 0 and 1 (write 15% as 0.15)")
        elif self.baseline < 0 or self.target < 0:
            raise ValueError("baseline and target cannot be negative")
        return self

    @property
    def higher_is_better(self) -> bool:
        """Return True when the goal is to raise the metric."""
        return self.target > self.baseline


class DataSource(_Model):
    """Where the case's CRM data is: a folder of exports, and per table how to read it.

    - ``dir``: the folder of the export files (relative to the case file).
    - ``files``: file names per table, where they differ from the usual ones
      (``orders: orders_2025.csv``).
    - ``tables``: per table, a full source declaration (:class:`crmnb.intake.sources.TableSource`):
      a ``file`` with its ``encoding``, ``sep``, ``sheet`` and ``header_row``, or ``sql``
      (a database ``url`` with a ``table`` or a SELECT ``query``, read-only), and an
      optional column ``mapping`` (a preset such as ``salesforce_opportunity``, or
      columns, values and constants written out; see :mod:`crmnb.intake.mappings`).
    - ``sql_url``: a database (SQLAlchemy URL, e.g. ``sqlite:///crm.db`` relative to
      ``dir``) that every table not named in ``files`` or ``tables`` is read from,
      from the database table of the same name.

    Example::

        data:
          dir: ../exports
          tables:
            orders: {file: orders.csv, encoding: gbk, sep: ";"}
            campaigns: {file: campaigns.xlsx, sheet: 活动, header_row: 2}
            leads: {sql: {url: "sqlite:///crm.db", table: leads}}
            opportunities: {file: Opportunity.csv, mapping: salesforce_opportunity}
    """

    dir: Path = Field(description="folder of the CRM exports, relative to this file; never written to")
    files: dict[str, str] = Field(
        default_factory=dict,
        description="file name per table where it differs from <table>.csv (campaigns.xlsx for campaigns)",
    )
    tables: dict[str, TableSource] = Field(
        default_factory=dict,
        description="per table, a full source: file with encoding/sep/sheet/header_row, or sql, and a column mapping; see README 'Case files'",
    )
    sql_url: str | None = Field(
        None, description="a database (SQLAlchemy URL) that every table not named in files or tables is read from"
    )

    @field_validator("files")
    @classmethod
    def _known_tables(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {', '.join(unknown)}; expected some of {', '.join(TABLES)}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _files_from_tables(cls, v: Any) -> Any:
        # a file declared under ``tables`` is also the table's entry in ``files``, so
        # ``CaseParams.data_path`` names it
        if isinstance(v, dict) and isinstance(v.get("tables"), dict):
            files = dict(v.get("files") or {})
            for name, src in v["tables"].items():
                file = src if isinstance(src, str) else (src.get("file") if isinstance(src, dict) else None)
                if isinstance(file, str) and name not in files:
                    files[name] = file
            v = {**v, "files": files}
        return v

    @model_validator(mode="after")
    def _sources(self) -> DataSource:
        check_tables(self.tables, self.files, self.sql_url)
        return self

    def source(self, table: str) -> Located:
        """Return where ``table`` comes from: its file (with how to read it) or its database."""
        return locate(self, table)


class TierThresholds(_Model):
    """Value tiers: high value needs both high spend and high repeat share; potential needs the middle band."""

    high_spend: float = Field(300_000, gt=0, description="high value: spend at least this (> 0) ...")
    high_repeat: float = Field(0.6, ge=0, le=1, description="... and repeat share at least this (0-1)")
    potential_spend: float = Field(100_000, ge=0, description="potential: spend at least this (below high_spend) ...")
    potential_repeat: float = Field(
        0.3, ge=0, le=1, description="... or repeat share at least this (0-1, at most high_repeat)"
    )

    @model_validator(mode="after")
    def _bands(self) -> TierThresholds:
        if self.potential_spend >= self.high_spend:
            raise ValueError("potential_spend must be below high_spend")
        if self.potential_repeat > self.high_repeat:
            raise ValueError("potential_repeat must not exceed high_repeat")
        return self


class ChurnThresholds(_Model):
    """Churn warning rules (high risk: few visits, no orders and a complaint in the look-back) and model horizon."""

    lookback_months: int = Field(3, gt=0, le=24, description="look-back in months (1-24)")
    min_visits_per_month: float = Field(3, ge=0, description="fewer visits a month than this counts as few (>= 0)")
    max_orders: int = Field(0, ge=0, description="at most this many orders counts as few (>= 0)")
    min_complaints: int = Field(1, ge=1, description="at least this many complaints (>= 1)")
    horizon_days: int = Field(
        90, gt=0, le=365, description="the churn model predicts no order within this many days (1-365)"
    )


class Thresholds(_Model):
    """Analysis thresholds; every one has the method's default."""

    # in the order `crmnb new` explains them: the ones a case most often sets first
    conversion_window_days: int = Field(
        90, gt=0, le=730, description="a lead counts as converted if won within this many days (1-730)"
    )
    max_followups_per_customer: int = Field(
        100, gt=0, description="more follow-ups than this on one customer is an outlier (> 0)"
    )
    receipt_amount_tolerance: float = Field(
        1.0, ge=0, description="CNY a receipt may differ from its won deal and still match (>= 0)"
    )
    receipt_diff_rate_max: float = Field(
        0.01, ge=0, lt=1, description="acceptable share of won deals without a matching receipt (0-1)"
    )
    response_time_target_hours: float = Field(
        24.0, gt=0, description="first contact of a new lead within this many hours (> 0)"
    )
    followup_ontime_target: float = Field(
        0.8, gt=0, le=1, description="share of follow-up tasks done by their due time (0-1)"
    )
    dwell_benchmark_days: dict[str, float] = Field(
        default_factory=lambda: {"needs_confirmed": 10.0, "proposal": 12.0, "negotiation": 15.0},
        description="longest stay per stage in days; longer raises a dwell alert",
    )
    funnel_stages: tuple[str, ...] = Field(
        FUNNEL_STAGES, description="funnel stages in order, ending with won; a subset of the default"
    )
    tiers: TierThresholds = Field(
        default_factory=TierThresholds, description="value tiers from cumulative spend (CNY) and repeat share of orders"
    )
    churn: ChurnThresholds = Field(
        default_factory=ChurnThresholds,
        description="high churn risk = all of: few visits, few orders, a complaint, in the look-back",
    )
    cpa_overrun_max: float = Field(
        0.30, ge=0, description="alert when a campaign's cost per customer is this much over its benchmark"
    )
    forecast_tolerance: float = Field(
        0.08, gt=0, lt=1, description="flag the forecast when its deviation (WAPE) passes this (0-1)"
    )
    forecast_horizon_weeks: int = Field(12, gt=0, le=52, description="weeks of won revenue to forecast (1-52)")
    clv_horizon_months: int = Field(12, gt=0, le=60, description="lifetime value over this many months (1-60)")

    @field_validator("dwell_benchmark_days")
    @classmethod
    def _known_stages(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(FUNNEL_STAGES))
        if bad:
            raise ValueError(f"unknown stage(s) {', '.join(bad)}; expected some of {', '.join(FUNNEL_STAGES)}")
        if any(d <= 0 for d in v.values()):
            raise ValueError("dwell benchmarks must be positive numbers of days")
        return v

    @field_validator("funnel_stages")
    @classmethod
    def _stage_order(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in v if s not in FUNNEL_STAGES]
        if bad:
            raise ValueError(f"unknown stage(s) {', '.join(bad)}; expected some of {', '.join(FUNNEL_STAGES)}")
        if list(v) != [s for s in FUNNEL_STAGES if s in v] or len(v) < 2 or v[-1] != "won":
            raise ValueError("stages must keep the funnel order and end with 'won'")
        return v


class PlanItem(_Model):
    """One row of the improvement plan (Table 3) written by the analyst."""

    problem: str = Field(description="the problem")
    cause: str = Field(description="its cause")
    measure: str = Field(description="what is done about it")
    owner: str = Field(description="who does it")
    deadline: date = Field(description="by when, YYYY-MM-DD")
    expected_effect: str = Field(description="what should change, and by how much")


class ActionOwner(_Model):
    """Who carries out the actions on one kind of problem, and by when."""

    owner: str | None = Field(None, description="who does it; default: the case owner")
    deadline: date | None = Field(None, description="by when, YYYY-MM-DD; default: the goal's deadline")


class CaseParams(_Model):
    """Everything a case needs, typed and checked."""

    case_id: str = Field(
        description="lower-case letters, digits, '_' or '-'; names the output folder; the file is named after it"
    )
    title: str = Field(description="the case's name, as the report and Table 1 show it")
    department: str = Field(description="the department whose CRM use is analysed, written as the CRM writes it")
    control_department: str | None = Field(
        None, description="a department without the intervention, for difference-in-differences"
    )
    owner: str = Field(description="who owns the case and its improvement plan (Table 1)")
    period: Period = Field(description="the analysis period, both ends included, as YYYY-MM-DD")
    goal: Goal = Field(description="the SMART goal: which metric moves from which baseline to which target, by when")
    intervention_date: date | None = Field(
        None,
        description="the change being evaluated: after = this day to period end, before = the same span just before; within the period",
    )
    data: DataSource = Field(description="where the CRM data is")
    thresholds: Thresholds = Field(
        default_factory=Thresholds, description="analysis thresholds; each has a default; set one here to override it"
    )
    campaigns: CampaignSettings = Field(
        default_factory=CampaignSettings,
        description="campaign analyses: attribution half-life, A/B minimum sends, budget move share",
    )
    language: Literal["en", "zh"] = Field("en", description="language of the report and tables: en or zh")
    timezone: str = Field(
        DEFAULT_TIMEZONE,
        description="IANA time zone of the case (Asia/Shanghai); times exported with a zone (Z, +00:00) are converted to it",
    )
    mask_pii: bool = Field(True, description="mask names, phones and e-mails in every output: true or false")
    notes: str = Field("", description="your conclusions; they open the report")
    pdf: bool = Field(
        False, description="also write report.pdf (A4, to print or archive; needs headless Chromium): true or false"
    )
    predict: PredictSettings = Field(
        default_factory=PredictSettings, description="lead and deal scoring, routing advice and the pipeline forecast"
    )
    plan: tuple[PlanItem, ...] = Field(
        (), description="your own improvement-plan rows (Table 3), added to those the analysis proposes"
    )
    action_owners: dict[str, ActionOwner] = Field(
        default_factory=dict,
        description="per kind of problem the analysis finds (complaints, slow_response, weak_stage…; a wrong kind is refused with the list), who owns its action and by when",
    )
    review_every: ReviewEvery | None = Field(None, description="how often the case is reviewed: '3 months', '2 weeks'")
    timeout_minutes: float = Field(
        30, gt=0, le=24 * 60, description="stop the case when it runs longer than this; reported as a timeout (> 0)"
    )
    cell_timeout_seconds: float = Field(
        600, gt=0, description="stop a notebook cell that runs longer than this; reported as a timeout (> 0)"
    )
    service: ServiceSettings = Field(default_factory=ServiceSettings, description="service-desk targets and themes")
    source_file: Path | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        import zoneinfo

        try:
            if "/" not in v and v != "UTC":
                raise ValueError
            zoneinfo.ZoneInfo(v)
        except Exception:  # not a name, not a zone, or a path: zoneinfo raises several kinds
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Asia/Shanghai or UTC") from None
        return v

    @field_validator("case_id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]{0,63}", v):
            raise ValueError(f"{v!r} must be lower-case letters, digits, '_' or '-' (it names the output folder)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CaseParams:
        if self.control_department is not None and self.control_department == self.department:
            raise ValueError("control_department must differ from department")
        if self.intervention_date is not None and not (self.period.start < self.intervention_date <= self.period.end):
            # the intervention may also open the period: then 'before' is the same span before it
            if self.intervention_date != self.period.start:
                raise ValueError(
                    f"intervention_date {self.intervention_date} must fall within the period "
                    f"{self.period.start} .. {self.period.end}"
                )
        return self

    # ---- derived ---------------------------------------------------------------
    def data_path(self, table: str) -> Path:
        """Return the file that holds ``table`` for this case."""
        return self.data.dir / self.data.files.get(table, DEFAULT_FILES[table])

    @property
    def windows(self) -> dict[str, tuple[date, date]]:
        """Return the before and after windows (inclusive dates) for before/after comparisons.

        After runs from the intervention to the end of the period; before is the span of
        the same length just before the intervention. Without an intervention the period
        is split in two halves.
        """
        from datetime import timedelta

        pivot = self.intervention_date
        if pivot is None:
            pivot = self.period.start + timedelta(days=self.period.days // 2)
        after_days = (self.period.end - pivot).days + 1
        before_start = pivot - timedelta(days=after_days)
        return {"before": (before_start, pivot - timedelta(days=1)), "after": (pivot, self.period.end)}
