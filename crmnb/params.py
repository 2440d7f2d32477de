"""Case parameters: one YAML file per case, validated once, up front, into a typed object.

>>> case = load_case("parameters/lead_conversion_uplift.yaml")  # doctest: +SKIP
>>> case.goal.target  # doctest: +SKIP
0.2
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import CaseFileError
from .paths import resolve
from .schema import DEFAULT_FILES, FUNNEL_STAGES, TABLES
from .sources import Located, TableSource, check_tables, locate

GOAL_METRICS: dict[str, str] = {
    "lead_conversion_rate": "rate",
    "repeat_purchase_rate": "rate",
    "opportunity_win_rate": "rate",
    "followup_ontime_rate": "rate",
    "lead_response_hours": "hours",
    "sales_cycle_days": "days",
    "avg_order_value": "CNY",
    "csat": "score",
    "complaint_resolution_hours": "hours",
}
"""Metrics a case goal may name, with their unit."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Period(_Model):
    """The analysis period, both ends included."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    @property
    def days(self) -> int:
        """Return the length of the period in days."""
        return (self.end - self.start).days + 1


class Goal(_Model):
    """A SMART goal: which metric moves from which baseline to which target, by when."""

    metric: str
    baseline: float
    target: float
    deadline: date

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in GOAL_METRICS:
            raise ValueError(f"unknown metric {v!r}; expected one of {', '.join(GOAL_METRICS)}")
        return v

    @model_validator(mode="after")
    def _sensible(self) -> "Goal":
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
    - ``tables``: per table, a full source declaration (:class:`crmnb.sources.TableSource`):
      a ``file`` with its ``encoding``, ``sep``, ``sheet`` and ``header_row``, or ``sql``
      (a database ``url`` with a ``table`` or a SELECT ``query``, read-only), and an
      optional column ``mapping`` (a preset such as ``salesforce_opportunity``, or
      columns, values and constants written out; see :mod:`crmnb.mappings`).
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

    dir: Path
    files: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, TableSource] = Field(default_factory=dict)
    sql_url: str | None = None

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
    def _sources(self) -> "DataSource":
        check_tables(self.tables, self.files, self.sql_url)
        return self

    def source(self, table: str) -> "Located":
        """Return where ``table`` comes from: its file (with how to read it) or its database."""
        return locate(self, table)


class TierThresholds(_Model):
    """Value tiers: high value needs both high spend and high repeat share; potential needs the middle band."""

    high_spend: float = Field(300_000, gt=0)
    high_repeat: float = Field(0.6, ge=0, le=1)
    potential_spend: float = Field(100_000, ge=0)
    potential_repeat: float = Field(0.3, ge=0, le=1)

    @model_validator(mode="after")
    def _bands(self) -> "TierThresholds":
        if self.potential_spend >= self.high_spend:
            raise ValueError("potential_spend must be below high_spend")
        if self.potential_repeat > self.high_repeat:
            raise ValueError("potential_repeat must not exceed high_repeat")
        return self


class ChurnThresholds(_Model):
    """Churn warning rules (high risk: few visits, no orders and a complaint in the look-back) and model horizon."""

    lookback_months: int = Field(3, gt=0, le=24)
    min_visits_per_month: float = Field(3, ge=0)
    max_orders: int = Field(0, ge=0)
    min_complaints: int = Field(1, ge=1)
    horizon_days: int = Field(90, gt=0, le=365)


class Thresholds(_Model):
    """Analysis thresholds; every one has the method's default."""

    tiers: TierThresholds = Field(default_factory=TierThresholds)
    churn: ChurnThresholds = Field(default_factory=ChurnThresholds)
    cpa_overrun_max: float = Field(0.30, ge=0)
    forecast_tolerance: float = Field(0.08, gt=0, lt=1)
    forecast_horizon_weeks: int = Field(12, gt=0, le=52)
    clv_horizon_months: int = Field(12, gt=0, le=60)

    conversion_window_days: int = Field(90, gt=0, le=730)
    max_followups_per_customer: int = Field(100, gt=0)
    receipt_amount_tolerance: float = Field(1.0, ge=0)
    receipt_diff_rate_max: float = Field(0.01, ge=0, lt=1)
    response_time_target_hours: float = Field(24.0, gt=0)
    followup_ontime_target: float = Field(0.8, gt=0, le=1)
    dwell_benchmark_days: dict[str, float] = Field(
        default_factory=lambda: {"needs_confirmed": 10.0, "proposal": 12.0, "negotiation": 15.0}
    )
    funnel_stages: tuple[str, ...] = FUNNEL_STAGES

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

    problem: str
    cause: str
    measure: str
    owner: str
    deadline: date
    expected_effect: str


class CaseParams(_Model):
    """Everything a case needs, typed and checked."""

    case_id: str
    title: str
    department: str
    control_department: str | None = None
    owner: str
    period: Period
    goal: Goal
    intervention_date: date | None = None
    data: DataSource
    thresholds: Thresholds = Field(default_factory=Thresholds)
    language: Literal["en", "zh"] = "en"
    mask_pii: bool = True
    notes: str = ""
    plan: tuple[PlanItem, ...] = ()
    timeout_minutes: float = Field(30, gt=0, le=24 * 60)
    cell_timeout_seconds: float = Field(600, gt=0)
    source_file: Path | None = None

    @field_validator("case_id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]{0,63}", v):
            raise ValueError(f"{v!r} must be lower-case letters, digits, '_' or '-' (it names the output folder)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "CaseParams":
        if self.control_department is not None and self.control_department == self.department:
            raise ValueError("control_department must differ from department")
        if self.intervention_date is not None and not (
            self.period.start < self.intervention_date <= self.period.end
        ):
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


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    kind = err["type"]
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind == "missing":
        return loc, "missing key"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    found = err.get("input")
    if kind not in ("value_error",) and not isinstance(found, (dict, list)):
        msg = f"{msg} (found {found!r})"
    return loc, msg


def _suggest(loc: str, model: type[BaseModel]) -> str:
    """Return ' (did you mean X?)' for a misspelt key, else ''."""
    parts = loc.split(".")
    m: Any = model
    for p in parts[:-1]:
        field = m.model_fields.get(p) if isinstance(m, type) and issubclass(m, BaseModel) else None
        if field is None:
            return ""
        m = field.annotation
    if not (isinstance(m, type) and issubclass(m, BaseModel)):
        return ""
    close = difflib.get_close_matches(parts[-1], list(m.model_fields), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_case(raw: Any, source: str | Path = "<case>") -> CaseParams:
    """Validate a case mapping (as read from YAML) into :class:`CaseParams`.

    Relative ``data.dir`` paths are taken relative to the case file's folder.
    Raises :class:`CaseFileError` naming the file and every bad key.
    """
    if not isinstance(raw, dict):
        raise CaseFileError(f"{source}: expected a mapping of keys to values, found {type(raw).__name__}")
    origins: dict[str, Path] = getattr(raw, "origins", {})
    merged_from: tuple[Path, ...] = getattr(raw, "defaults", ())
    raw = dict(raw)
    if "source_file" in raw:
        where = _where("source_file", origins, source)
        raise CaseFileError(f"{source}: key 'source_file': unknown key (it is set by crmnb){where}")
    try:
        case = CaseParams.model_validate({**raw, "source_file": str(source)})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc, msg = _describe(err)
            hint = _suggest(loc, CaseParams) if msg == "unknown key" else ""
            where = _where(loc, origins, source) if loc else ""
            # a check across keys (intervention in the period…) has no single key: its message names them
            lines.append(f"  - key '{loc}': {msg}{hint}{where}" if loc else f"  - {msg}")
        merged = f" (merged with {', '.join(_short(f, source) for f in merged_from)})" if merged_from else ""
        raise CaseFileError(f"{source}: invalid case file{merged}\n" + "\n".join(lines)) from None
    if not case.data.dir.is_absolute():
        base = Path(source).parent if str(source) != "<case>" else Path.cwd()
        data = case.data.model_copy(update={"dir": (base / case.data.dir).resolve()})
        case = case.model_copy(update={"data": data})
    return case


DEFAULTS_FILE = "_defaults.yaml"
"""Shared defaults for every case file in the same folder."""

DEPARTMENTS_DIR = "_departments"
"""Folder (beside the case files) of per-department defaults, one ``<department>.yaml`` each."""


class CaseMapping(dict):
    """A case's mapping after merging defaults; remembers which file set each key.

    ``origins`` maps a dotted key (``thresholds.tiers.high_spend``) to the file that
    set it last; ``defaults`` lists the defaults files that were merged, in order.
    """

    def __init__(self, data: dict, origins: dict[str, Path], defaults: tuple[Path, ...]):
        super().__init__(data)
        self.origins = origins
        self.defaults = defaults


def deep_merge(base: Any, over: Any) -> Any:
    """Return ``over`` merged onto ``base``: mappings merge key by key, lists and scalars replace.

    >>> deep_merge({"a": {"x": 1, "y": 2}, "l": [1, 2]}, {"a": {"y": 3}, "l": [9]})
    {'a': {'x': 1, 'y': 3}, 'l': [9]}
    """
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return over


def _record(origins: dict[str, Path], mapping: dict, file: Path, prefix: str = "") -> None:
    """Note ``file`` as the origin of every key in ``mapping``, nested keys included."""
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        origins[dotted] = file
        if isinstance(value, dict):
            _record(origins, value, file, dotted + ".")
        else:  # a scalar or list replaces whatever was below it
            for k in [k for k in origins if k.startswith(dotted + ".")]:
                origins[k] = file


def _where(loc: str, origins: dict[str, Path], source: str | Path) -> str:
    """Return ' (set in FILE)' when the key at ``loc`` (or what is below it) came from a defaults file."""
    if not origins:
        return ""
    parts = loc.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        below = {f for k, f in origins.items() if k == key or k.startswith(key + ".")}
        if below:
            others = sorted(str(f) for f in below if str(f) != str(source))
            if not others:
                return ""
            return f" (set in {', '.join(others)})" if len(below) == len(others) else f" (set in {source} and {', '.join(others)})"
    return ""


def _short(file: Path, source: str | Path) -> str:
    """Return ``file`` relative to the case file's folder when it is below it."""
    try:
        return str(Path(file).relative_to(Path(source).parent))
    except ValueError:
        return str(file)


def _read_yaml(file: Path, what: str) -> Any:
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CaseFileError(f"{file}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise CaseFileError(f"{file}: not UTF-8 text; save the {what} as UTF-8") from None


def _read_defaults(file: Path, forbidden: tuple[str, ...]) -> dict:
    raw = _read_yaml(file, "defaults file")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CaseFileError(f"{file}: expected a mapping of keys to values, found {type(raw).__name__}")
    for key in forbidden:
        if key in raw:
            raise CaseFileError(f"{file}: key '{key}' cannot be a default; set it in each case file")
    return raw


def department_defaults_file(folder: Path, department: str) -> Path | None:
    """Return ``<folder>/_departments/<department>.yaml`` when it exists (Unicode names compared in NFC form)."""
    import unicodedata

    if not department or "/" in department or "\\" in department or department.startswith("."):
        return None
    base = folder / DEPARTMENTS_DIR
    exact = base / f"{department}.yaml"
    if exact.is_file():
        return exact
    if not base.is_dir():
        return None
    wanted = unicodedata.normalize("NFC", department)
    for f in sorted(base.glob("*.yaml")):  # a file name written in another normal form (macOS writes NFD)
        if unicodedata.normalize("NFC", f.stem) == wanted:
            return f
    return None


def merged_defaults(folder: Path, department: str | None = None) -> dict:
    """Return the defaults a case file in ``folder`` of ``department`` gets: shared, then the department's."""
    out: dict = {}
    shared = folder / DEFAULTS_FILE
    if shared.is_file():
        out = deep_merge(out, _read_defaults(shared, forbidden=("case_id", "source_file")))
    dept = department_defaults_file(folder, department) if department else None
    if dept is not None:
        out = deep_merge(out, _read_defaults(dept, forbidden=("case_id", "department", "source_file")))
    return out


def read_case_mapping(path: str | Path) -> tuple[dict, Path]:
    """Read a case file's YAML mapping merged onto its defaults, and return it with the file's resolved path.

    Defaults come from ``_defaults.yaml`` beside the case file, then
    ``_departments/<department>.yaml``; the case file wins. Mappings merge key by
    key; lists and scalars replace. The result is a :class:`CaseMapping` that knows
    which file set each key, so validation errors can name it.
    """
    file = resolve(path)
    if not file.is_file():
        raise CaseFileError(f"{path}: case file not found (looked for {file})")
    raw = _read_yaml(file, "case file")
    if not isinstance(raw, dict):
        return raw, file  # parse_case says what is wrong with it
    shared = file.parent / DEFAULTS_FILE
    layers: list[tuple[Path, dict]] = []
    if shared.is_file():
        layers.append((shared, _read_defaults(shared, forbidden=("case_id", "source_file"))))
    department = raw.get("department", layers[0][1].get("department") if layers else None)
    dept = department_defaults_file(file.parent, department) if isinstance(department, str) else None
    if dept is not None:
        layers.append((dept, _read_defaults(dept, forbidden=("case_id", "department", "source_file"))))
    merged: dict = {}
    origins: dict[str, Path] = {}
    for source, layer in [*layers, (file, raw)]:
        merged = deep_merge(merged, layer)
        _record(origins, layer, source)
    return CaseMapping(merged, origins, tuple(f for f, _ in layers)), file


def case_settings(path: str | Path) -> dict:
    """Return the case's settings as plain JSON values (dates as ISO text), as the runner passes them to notebooks."""
    import json

    raw, _ = read_case_mapping(path)
    return json.loads(json.dumps(raw, default=str))


def load_case(path: str | Path, settings: dict | None = None) -> CaseParams:
    """Read and validate the case file at ``path`` into :class:`CaseParams`.

    ``settings``, when given, is the case's mapping as the runner passed it (dates may
    be text); it is validated instead of re-reading the file.
    """
    if settings is not None:
        return parse_case(settings, resolve(path))
    raw, file = read_case_mapping(path)
    return parse_case(raw, file)
