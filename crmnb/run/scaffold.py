"""Write a new case file: every key there, each explained, valid as written once its data exists.

>>> new_case("churn_q1", "销售一部", data_dir="data/demo")  # doctest: +SKIP
(PosixPath('.../parameters/churn_q1.yaml'), ['owner', 'goal.baseline', 'goal.target', ...])
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from crmnb.errors import CaseFileError
from crmnb.params.files import deep_merge, load_case, merged_defaults
from crmnb.params.model import GOAL_METRICS, CaseParams, Thresholds
from crmnb.paths import workbook_root

COMMENT_COLUMN = 34

# What each key means and which values it allows, by dotted key. The template shows, after
# this, the default a key left out gets (from the method, _defaults.yaml, the department).
DOC: dict[str, str] = {
    "case_id": "lower-case letters, digits, '_' or '-'; names the output folder; the file is named after it",
    "title": "the case's name, as the report and Table 1 show it",
    "department": "the department whose CRM use is analysed, written as the CRM writes it",
    "control_department": "a department without the intervention, for difference-in-differences",
    "owner": "who owns the case and its improvement plan (Table 1)",
    "period": "the analysis period, both ends included, as YYYY-MM-DD",
    "period.start": "first day analysed",
    "period.end": "last day analysed; after start",
    "goal": "the SMART goal: which metric moves from which baseline to which target, by when",
    "goal.metric": "one of: " + ", ".join(GOAL_METRICS),
    "goal.baseline": "the metric's value before; rates as fractions (0.15 for 15%)",
    "goal.target": "the value to reach; differs from baseline (below it for times and durations)",
    "goal.deadline": "when the target is to be reached, YYYY-MM-DD",
    "intervention_date": "the change being evaluated: after = this day to period end, before = the same "
    "span just before; within the period",
    "data": "where the CRM data is",
    "data.dir": "folder of the CRM exports, relative to this file; never written to",
    "data.files": "file name per table where it differs from <table>.csv (campaigns.xlsx for campaigns)",
    "data.tables": "per table, a full source: file with encoding/sep/sheet/header_row, or sql, and a column "
    "mapping; see README 'Case files'",
    "data.sql_url": "a database (SQLAlchemy URL) that every table not named in files or tables is read from",
    "thresholds": "analysis thresholds; each has a default; set one here to override it",
    "thresholds.conversion_window_days": "a lead counts as converted if won within this many days (1-730)",
    "thresholds.max_followups_per_customer": "more follow-ups than this on one customer is an outlier (> 0)",
    "thresholds.receipt_amount_tolerance": "CNY a receipt may differ from its won deal and still match (>= 0)",
    "thresholds.receipt_diff_rate_max": "acceptable share of won deals without a matching receipt (0-1)",
    "thresholds.response_time_target_hours": "first contact of a new lead within this many hours (> 0)",
    "thresholds.followup_ontime_target": "share of follow-up tasks done by their due time (0-1)",
    "thresholds.dwell_benchmark_days": "longest stay per stage in days; longer raises a dwell alert",
    "thresholds.funnel_stages": "funnel stages in order, ending with won; a subset of the default",
    "thresholds.tiers": "value tiers from cumulative spend (CNY) and repeat share of orders",
    "thresholds.tiers.high_spend": "high value: spend at least this (> 0) ...",
    "thresholds.tiers.high_repeat": "... and repeat share at least this (0-1)",
    "thresholds.tiers.potential_spend": "potential: spend at least this (below high_spend) ...",
    "thresholds.tiers.potential_repeat": "... or repeat share at least this (0-1, at most high_repeat)",
    "thresholds.churn": "high churn risk = all of: few visits, few orders, a complaint, in the look-back",
    "thresholds.churn.lookback_months": "look-back in months (1-24)",
    "thresholds.churn.min_visits_per_month": "fewer visits a month than this counts as few (>= 0)",
    "thresholds.churn.max_orders": "at most this many orders counts as few (>= 0)",
    "thresholds.churn.min_complaints": "at least this many complaints (>= 1)",
    "thresholds.churn.horizon_days": "the churn model predicts no order within this many days (1-365)",
    "thresholds.cpa_overrun_max": "alert when a campaign's cost per customer is this much over its benchmark",
    "thresholds.forecast_tolerance": "flag the forecast when its deviation (WAPE) passes this (0-1)",
    "thresholds.forecast_horizon_weeks": "weeks of won revenue to forecast (1-52)",
    "thresholds.clv_horizon_months": "lifetime value over this many months (1-60)",
    "language": "language of the report and tables: en or zh",
    "mask_pii": "mask names, phones and e-mails in every output: true or false",
    "notes": "your conclusions; they open the report",
    "plan": "your own improvement-plan rows (Table 3), added to those the analysis proposes",
    "plan.problem": "the problem",
    "plan.cause": "its cause",
    "plan.measure": "what is done about it",
    "plan.owner": "who does it",
    "plan.deadline": "by when, YYYY-MM-DD",
    "plan.expected_effect": "what should change, and by how much",
    "timeout_minutes": "stop the case when it runs longer than this; reported as a timeout (> 0)",
    "cell_timeout_seconds": "stop a notebook cell that runs longer than this; reported as a timeout (> 0)",
}

PLACEHOLDERS: dict[str, tuple[float, float]] = {
    "rate": (0.15, 0.20),
    "hours": (24.0, 12.0),
    "days": (60.0, 45.0),
    "CNY": (1000.0, 1100.0),
    "score": (4.0, 4.5),
}
"""Baseline and target written for a new case, by the metric's unit, until the analyst fills in theirs."""


def _scalar(v: Any) -> str:
    """Return a value as YAML writes it on one line."""
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    text = yaml.safe_dump(v, allow_unicode=True, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _width(s: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in s)


def _line(text: str, comment: str) -> str:
    pad = max(1, COMMENT_COLUMN - _width(text))
    return f"{text}{' ' * pad}# {comment}" if comment else text


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def key(
        self,
        dotted: str,
        value: Any = None,
        *,
        depth: int = 0,
        active: bool = True,
        default: Any = None,
        note: str = "",
        section: bool = False,
    ) -> None:
        """Write one key with its meaning; optional keys are commented out and show their default."""
        name = dotted.split(".")[-1]
        indent = "  " * depth
        body = f"{indent}{name}:" if section else f"{indent}{name}: {_scalar(value)}"
        comment = DOC[dotted]
        if default is not None and not section:
            comment += f"; default {_scalar(default)}"
        if note:
            comment += f"; {note}"
        self.lines.append(_line(body if active else f"# {body}", comment))

    def raw(self, text: str = "") -> None:
        self.lines.append(text)


def _thresholds(w: _Writer, defaults: dict, prefix: str = "thresholds", depth: int = 1) -> None:
    order = list(DOC)
    for name, value in sorted(
        defaults.items(),
        key=lambda kv: order.index(f"{prefix}.{kv[0]}") if f"{prefix}.{kv[0]}" in order else len(order),
    ):
        dotted = f"{prefix}.{name}"
        if isinstance(value, dict) and dotted != "thresholds.dwell_benchmark_days":
            w.key(dotted, depth=depth, active=False, section=True)
            _thresholds(w, value, dotted, depth + 1)
        elif isinstance(value, dict):  # a mapping of stage to days: show it whole
            w.key(dotted, depth=depth, active=False, section=True, note=f"default {_scalar(value)}")
            for stage, days in value.items():
                w.raw(f"# {'  ' * (depth + 1)}{stage}: {_scalar(days)}")
        else:
            w.key(dotted, value, depth=depth, active=False, default=value)


def render(
    case_id: str,
    department: str,
    *,
    title: str,
    owner: str,
    metric: str,
    data_dir: str,
    defaults: dict,
    language: str | None = None,
    today: date | None = None,
) -> str:
    """Return the text of a new case file; ``defaults`` are the merged defaults files it will get."""
    today = today or date.today()
    end = today.replace(day=1) - timedelta(days=1)  # the last complete month …
    first = end.year * 12 + end.month - 1 - 5  # … and the five before it
    start = date(first // 12, first % 12 + 1, 1)
    deadline = end + timedelta(days=183)
    base, target = PLACEHOLDERS[GOAL_METRICS[metric]]
    optional = ("control_department", "language", "mask_pii", "timeout_minutes", "cell_timeout_seconds")
    method = {k: CaseParams.model_fields[k].default for k in optional}
    effective = deep_merge({**method, "thresholds": Thresholds().model_dump(mode="json")}, defaults)
    w = _Writer()
    w.raw(f"# Case: {title}")
    w.raw(f"# Written by `crmnb new` on {today}. Every key is explained after its '#'. Keys commented out")
    w.raw("# are optional: they show the default the case gets from the method, parameters/_defaults.yaml and")
    w.raw(f"# parameters/_departments/{department}.yaml; remove the '# ' to set one. Values marked TODO are")
    w.raw(f"# placeholders: put in your own. Then check the file: crmnb validate parameters/{case_id}.yaml")
    w.raw()
    w.raw("# ---- the case card (Table 1)")
    w.key("case_id", case_id)
    w.key("title", title)
    w.key("department", department)
    w.key(
        "control_department",
        effective.get("control_department") or "<another department>",
        active=False,
        note="default none" if not effective.get("control_department") else "",
    )
    w.key("owner", owner, note="TODO" if owner.startswith("TODO") else "")
    w.raw()
    w.raw("# ---- period and goal")
    w.key("period", section=True)
    w.key("period.start", start, depth=1, note="TODO")
    w.key("period.end", end, depth=1, note="TODO")
    w.key("goal", section=True)
    w.key("goal.metric", metric, depth=1)
    w.key("goal.baseline", base, depth=1, note="TODO")
    w.key("goal.target", target, depth=1, note="TODO")
    w.key("goal.deadline", deadline, depth=1, note="TODO")
    pivot = start + (end - start) / 2
    w.key(
        "intervention_date",
        date(pivot.year, pivot.month, 1),
        active=False,
        note="default none: the period is split in two halves",
    )
    w.raw()
    w.raw("# ---- data")
    w.key("data", section=True)
    w.key("data.dir", data_dir, depth=1)
    w.key("data.files", section=True, depth=1, active=False)
    w.raw("#     orders: orders_2025.csv")
    w.key("data.tables", section=True, depth=1, active=False)
    w.raw("#     orders: {file: orders.csv, encoding: gbk, sep: ';'}")
    w.key("data.sql_url", "sqlite:///crm.db", depth=1, active=False, note="default none")
    w.raw()
    w.raw("# ---- thresholds (defaults shown; set only what differs for this case)")
    w.key("thresholds", section=True, active=False)
    _thresholds(w, effective["thresholds"])
    w.raw()
    w.raw("# ---- report and run")
    w.key(
        "language",
        language or effective["language"],
        active=language is not None,
        default=None if language else effective["language"],
    )
    w.key("mask_pii", effective["mask_pii"], active=False, default=effective["mask_pii"])
    w.key("timeout_minutes", effective["timeout_minutes"], active=False, default=effective["timeout_minutes"])
    w.key(
        "cell_timeout_seconds",
        effective["cell_timeout_seconds"],
        active=False,
        default=effective["cell_timeout_seconds"],
    )
    w.key("notes", "", note="TODO once the analysis has run")
    w.key("plan", section=True, active=False, note="default none")
    w.raw(_line("#   - problem: Leads wait too long for the first contact", DOC["plan.problem"]))
    for field, example in (
        ("cause", "No reminder when a lead is assigned"),
        ("measure", "Reminders and a 24-hour first-contact SLA"),
        ("owner", owner if not owner.startswith("TODO") else "Sales operations lead"),
        ("deadline", deadline.isoformat()),
        ("expected_effect", "Response time halves"),
    ):
        w.raw(_line(f"#     {field}: {example}", DOC[f"plan.{field}"]))
    return "\n".join(w.lines) + "\n"


def new_case(
    case_id: str,
    department: str,
    *,
    title: str | None = None,
    owner: str | None = None,
    metric: str = "lead_conversion_rate",
    data_dir: str | Path | None = None,
    parameters_dir: str | Path | None = None,
    language: str | None = None,
) -> tuple[Path, list[str]]:
    """Write ``parameters/<case_id>.yaml`` from the template and return it with the keys left to fill in.

    Refuses to overwrite a file, and refuses a case id or metric the case file would not accept.
    """
    try:
        CaseParams._slug(case_id)
    except ValueError as exc:
        raise CaseFileError(f"case_id {exc}") from None
    if metric not in GOAL_METRICS:
        raise CaseFileError(f"unknown metric {metric!r}; expected one of {', '.join(GOAL_METRICS)}")
    if not department.strip():
        raise CaseFileError("--department must name a department")
    folder = Path(parameters_dir) if parameters_dir else workbook_root() / "parameters"
    folder = folder.resolve()
    path = folder / f"{case_id}.yaml"
    if path.exists():
        raise CaseFileError(f"{path}: already exists; choose another case_id or edit that file")
    if data_dir is None:
        data = Path(os.path.relpath(folder.parent / "data" / case_id, folder)).as_posix()
    else:
        given = Path(data_dir).expanduser().resolve()
        try:
            data = Path(os.path.relpath(given, folder)).as_posix()
        except ValueError:  # another drive (Windows)
            data = given.as_posix()
    todo = ["owner"] if owner is None else []
    text = render(
        case_id,
        department.strip(),
        title=title or case_id.replace("_", " ").replace("-", " ").capitalize(),
        owner=owner or "TODO: who owns the case",
        metric=metric,
        data_dir=data,
        defaults=merged_defaults(folder, department.strip()),
        language=language,
    )
    todo += ["period", "goal.baseline", "goal.target", "goal.deadline", "intervention_date (if there is one)"]
    if not (folder / data).is_dir():
        todo.append(f"data: put the CRM exports in {(folder / data).resolve()}")
    folder.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as f:  # 'x': never overwrite, even when another process just wrote it
        f.write(text)
    try:
        load_case(path)
    except CaseFileError:
        path.unlink()  # a template that does not validate is a bug here, not the analyst's to fix
        raise
    return path, todo
