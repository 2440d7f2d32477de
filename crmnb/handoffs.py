"""The step hand-offs of a case: each step writes its tables and records under outputs/<case_id>/data/, later steps read them."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from crmnb.errors import HandoffMissing
from crmnb.intake.parse import Intake
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
)


def _catalogue(entries: tuple[Handoff, ...]) -> dict[str, Handoff]:
    """Return the hand-offs by name; a name declared twice or outside a step's folder is a bug here."""
    out: dict[str, Handoff] = {}
    for h in entries:
        if h.name in out:
            raise ValueError(f"hand-off {h.name!r} is declared twice in crmnb/handoffs.py")
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


@dataclass
class Workspace:
    """The output folder of one case: ``<output_root>/<case_id>/``."""

    root: Path
    case_id: str
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def folder(self) -> Path:
        """Return the case's output folder."""
        return self.root / self.case_id

    @property
    def data(self) -> Path:
        """Return the folder of the step hand-offs."""
        return self.folder / "data"

    def _path(self, name: str, kind: Kind, writing: bool = False) -> Path:
        # a write must match the declared kind; a read of the other kind finds no file, and says which step
        # writes the name
        handoff(name, kind if writing else None)
        return self.data / f"{name}.{EXTENSIONS[kind]}"

    def write(self, name: str, df: pd.DataFrame) -> Path:
        """Write a table hand-off as Parquet and return its path."""
        path = self._path(name, "table", writing=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path, index=False)
        self._cache[name] = df
        return path

    def read(self, name: str) -> pd.DataFrame:
        """Read a table hand-off, or say which step to run first."""
        if name in self._cache:
            return self._cache[name]
        path = self._path(name, "table")
        if not path.exists():
            raise self._missing(name, path)
        return pd.read_parquet(path)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a small hand-off (figures, sentences) as JSON."""
        path = self._path(name, "json", writing=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        return path

    def read_json(self, name: str) -> Any:
        """Read a JSON hand-off, or say which step to run first."""
        path = self._path(name, "json")
        if not path.exists():
            raise self._missing(name, path)
        return json.loads(path.read_text(encoding="utf-8"))

    def exists(self, name: str) -> bool:
        """Return True when the hand-off has been written."""
        h = handoff(name)
        return self._path(name, h.kind).exists()

    def tables(self, step: str) -> Tables:
        """Return every canonical table a step wrote (``intake`` or ``clean``), each read when first used."""
        for name in TABLES:
            handoff(f"{step}/{name}")  # a step that writes no canonical tables is refused now, not at first use
        return Tables(self, step)

    def _missing(self, name: str, path: Path) -> HandoffMissing:
        number, notebook = handoff(name).step
        return HandoffMissing(f"hand-off '{name}' not found at {path}: run step {number} ({notebook}.ipynb) first")


class Tables(MutableMapping):
    """The canonical tables of one step, read from their hand-offs when first used.

    A step that needs three of the eleven tables reads three: at 100 times the demo
    data, the visits and activities alone are 12 million rows. A missing hand-off
    raises :class:`HandoffMissing` when it is used, naming the step to run.
    """

    def __init__(self, ws: Workspace, step: str):
        self._ws, self._step = ws, step
        self._names = list(TABLES)
        self._got: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._got:
            if name not in self._names:
                raise KeyError(name)
            self._got[name] = self._ws.read(f"{self._step}/{name}")
        return self._got[name]

    def __setitem__(self, name: str, df: pd.DataFrame) -> None:
        if name not in self._names:
            self._names.append(name)
        self._got[name] = df

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._got.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self):
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<{self._step} tables: {', '.join(self._names)}; read so far: {', '.join(self._got) or 'none'}>"


def save_intake(ws: Workspace, intakes: dict[str, Intake]) -> pd.DataFrame:
    """Write every intake table, the unreadable values and the date formats; return the issues."""
    for name, got in intakes.items():
        ws.write(f"intake/{name}", got.table)
    issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
    formats = pd.concat([g.formats for g in intakes.values()], ignore_index=True)
    ws.write("intake/issues", issues.astype({"row": "int64"}) if len(issues) else issues)
    ws.write("intake/formats", formats)
    return issues


def save_cleaned(ws: Workspace, cleaned) -> None:
    """Write the cleaned tables, the cleaning log, the quarantine, the merges and the row reconciliation.

    Each cleaned table is built from its intake table, checked and written in batches, one table at a
    time, and not kept: ``cleaned.tables`` reads it back from its hand-off when next used.
    """
    for name in cleaned.tables:
        handoff(f"clean/{name}", "table")
        cleaned.tables.write(name, ws.data / f"clean/{name}.{EXTENSIONS['table']}")
    ws.write("clean/log", cleaned.log)
    ws.write("clean/quarantine", cleaned.quarantine)
    ws.write("clean/merges", cleaned.merges)
    ws.write("clean/reconciliation", cleaned.reconciliation)
