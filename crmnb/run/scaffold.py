"""Write a new case file: every key there, each explained, valid as written once its data exists.

>>> new_case("churn_q1", "销售一部", data_dir="data/demo")  # doctest: +SKIP
(PosixPath('.../parameters/churn_q1.yaml'), ['owner', 'goal.baseline', 'goal.target', ...])
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from crmnb.errors import CaseFileError
from crmnb.params.campaigns import CampaignSettings
from crmnb.params.files import deep_merge, load_case, merged_defaults
from crmnb.params.model import GOAL_METRICS, CaseParams, Thresholds
from crmnb.paths import workbook_root

COMMENT_COLUMN = 34


def field_docs(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    """Return what each setting means, by dotted key, from the models' field descriptions, in their order."""
    docs: dict[str, str] = {}
    for name, info in model.model_fields.items():
        if not info.description:
            continue  # not a setting (the file the case was read from)
        docs[prefix + name] = info.description
        inner = settings_model(info.annotation)
        if inner is not None:
            docs |= field_docs(inner, f"{prefix}{name}.")
    return docs


def settings_model(annotation: Any) -> type[BaseModel] | None:
    """Return the settings model a field holds, itself, as a list of them (the plan's rows) or as the values
    of a mapping (the action owners by kind), if any."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    kinds = args if origin is tuple else args[1:] if origin is dict else (annotation,)
    for kind in kinds:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
    return None


DOC: dict[str, str] = field_docs(CaseParams)
"""What each key means and which values it allows, by dotted key: the settings' field descriptions in
crmnb/params/model.py. The template shows, after this, the default a key left out gets (from the method,
_defaults.yaml, the department)."""

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


@dataclass(frozen=True)
class Dates:
    """The placeholder dates of a new case: the last six complete months, a deadline half a year on."""

    start: date
    end: date
    deadline: date

    @classmethod
    def before(cls, today: date) -> Dates:
        """Return the dates for a case written on ``today``."""
        end = today.replace(day=1) - timedelta(days=1)  # the last complete month …
        first = end.year * 12 + end.month - 1 - 5  # … and the five before it
        return cls(date(first // 12, first % 12 + 1, 1), end, end + timedelta(days=183))


def data_today(folder: Path) -> date | None:
    """Return the day after the last order of a data folder's ``orders.csv``, when that is before today: a new
    case's placeholder period is then the data's last six complete months, which validate finds rows in."""
    import pandas as pd

    file = folder / "orders.csv"
    if not file.is_file():
        return None
    try:
        dates = pd.read_csv(file, usecols=["order_date"], dtype=str, encoding="utf-8")["order_date"]
        last = pd.to_datetime(dates, errors="coerce", format="mixed").max()
    except Exception:  # another layout or encoding: the placeholder period is from today
        return None
    return None if pd.isna(last) else min(date.today(), last.date() + timedelta(days=1))


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
    dates = Dates.before(today)
    optional = (
        "control_department",
        "language",
        "timezone",
        "mask_pii",
        "pdf",
        "timeout_minutes",
        "cell_timeout_seconds",
    )
    method = {k: CaseParams.model_fields[k].default for k in optional}
    effective = deep_merge({**method, "thresholds": Thresholds().model_dump(mode="json")}, defaults)
    w = _Writer()
    w.raw(f"# Case: {title}")
    w.raw(f"# Written by `crmnb new` on {today}. Every key is explained after its '#'. Keys commented out")
    w.raw("# are optional: they show the default the case gets from the method, parameters/_defaults.yaml and")
    w.raw(f"# parameters/_departments/{department}.yaml; remove the '# ' to set one. Values marked TODO are")
    w.raw(f"# placeholders: put in your own. Then check the file: crmnb validate parameters/{case_id}.yaml")
    w.raw()
    _card(w, case_id, title, department, owner, effective)
    _period_and_goal(w, metric, dates)
    _data(w, data_dir)
    w.raw("# ---- thresholds (defaults shown; set only what differs for this case)")
    w.key("thresholds", section=True, active=False)
    _thresholds(w, effective["thresholds"])
    w.raw()
    _service(w)
    w.raw("# ---- campaign analyses (defaults shown)")
    w.key("campaigns", section=True, active=False)
    _thresholds(w, deep_merge(CampaignSettings().model_dump(mode="json"), defaults.get("campaigns", {})), "campaigns")
    w.raw()
    w.raw("# ---- scoring, routing and the pipeline forecast (defaults shown)")
    w.key("predict", section=True, active=False)
    _thresholds(w, CaseParams.model_fields["predict"].default_factory().model_dump(mode="json"), "predict")
    w.raw()
    _report_and_run(w, effective, language)
    _plan(w, owner, dates.deadline)
    return "\n".join(w.lines) + "\n"


def _card(w: _Writer, case_id: str, title: str, department: str, owner: str, effective: dict) -> None:
    """Write the case card's keys (Table 1)."""
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


def _period_and_goal(w: _Writer, metric: str, dates: Dates) -> None:
    """Write the period, the goal with placeholder figures for its metric's unit, and the intervention."""
    base, target = PLACEHOLDERS[GOAL_METRICS[metric]]
    w.raw("# ---- period and goal")
    w.key("period", section=True)
    w.key("period.start", dates.start, depth=1, note="TODO")
    w.key("period.end", dates.end, depth=1, note="TODO")
    w.key("goal", section=True)
    w.key("goal.metric", metric, depth=1)
    w.key("goal.baseline", base, depth=1, note="TODO")
    w.key("goal.target", target, depth=1, note="TODO")
    w.key("goal.deadline", dates.deadline, depth=1, note="TODO")
    pivot = dates.start + (dates.end - dates.start) / 2
    w.key(
        "intervention_date",
        date(pivot.year, pivot.month, 1),
        active=False,
        note="default none: the period is split in two halves",
    )
    w.raw()


def _data(w: _Writer, data_dir: str) -> None:
    """Write where the data is, with the optional per-table sources as examples."""
    w.raw("# ---- data")
    w.key("data", section=True)
    w.key("data.dir", data_dir, depth=1)
    w.key("data.files", section=True, depth=1, active=False)
    w.raw("#     orders: orders_2025.csv")
    w.key("data.tables", section=True, depth=1, active=False)
    w.raw("#     orders: {file: orders.csv, encoding: gbk, sep: ';'}")
    w.key("data.sql_url", "sqlite:///crm.db", depth=1, active=False, note="default none")
    w.raw()


def _report_and_run(w: _Writer, effective: dict, language: str | None) -> None:
    """Write the report's language, the masking, the time limits and the notes."""
    w.raw("# ---- report and run")
    w.key(
        "language",
        language or effective["language"],
        active=language is not None,
        default=None if language else effective["language"],
    )
    for key in ("timezone", "mask_pii", "pdf", "timeout_minutes", "cell_timeout_seconds"):
        w.key(key, effective[key], active=False, default=effective[key])
    w.key("review_every", "3 months", active=False, note="default none: the case is reviewed when run by hand")
    w.key("notes", "", note="TODO once the analysis has run")


def _service(w: _Writer) -> None:
    """Write the service desk's settings, commented out, with their defaults (the themes with an example)."""
    from crmnb.params.service import ServiceSettings

    w.raw("# ---- the service desk: ticket targets and complaint themes (defaults shown)")
    w.key("service", section=True, active=False)
    for name, value in ServiceSettings().model_dump(mode="json").items():
        if not isinstance(value, dict):
            w.key(f"service.{name}", value, depth=1, active=False, default=value)
            continue
        w.key(
            f"service.{name}",
            depth=1,
            active=False,
            section=True,
            note="default " + (_scalar(value) if value else "none; for example"),
        )
        for k, v in (value or {"安装": ["安装失败", "装不上"]}).items():
            w.raw(f"#     {k}: {_scalar(v)}")
    w.raw()


def _plan(w: _Writer, owner: str, deadline: date) -> None:
    """Write an example of who owns which kind of action, and a row of the analyst's own plan, commented out."""
    w.key("action_owners", section=True, active=False, note="default: the case owner and the goal's deadline")
    w.raw(_line("#   complaints:", "a kind of problem the analysis finds"))
    w.raw(_line("#     owner: Service quality lead", DOC["action_owners.owner"]))
    w.raw(_line(f"#     deadline: {deadline.isoformat()}", DOC["action_owners.deadline"]))
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
        today=data_today(folder / data),
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
