"""The step hand-offs of a case: each step writes its tables and records under outputs/<case_id>/data/, later steps read them."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from crmnb.errors import HandoffMissing
from crmnb.frames import bind_views, connect, isin, row_filter
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
        "report/pipeline_forecast", "Pipeline forecast", (), ("pipeline", "new_deals", "forecast", "lower", "upper")
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


PARQUET_OPTIONS: dict[str, Any] = {"compression": "lz4", "row_group_size": 128 * 1024}
"""How table hand-offs are written: LZ4 (decodes faster than Snappy at about the same size) in row groups
of 128 Ki rows, so a query or a read of a few columns runs over the groups in parallel."""


@dataclass
class Workspace:
    """The output folder of one case: ``<output_root>/<case_id>/``.

    Tables are written and read as Parquet with pyarrow; nothing written is kept in memory, so a step
    holds only the frames it reads. :meth:`read` takes ``columns`` to read only those; :meth:`sql`
    and :meth:`query` run DuckDB SQL over the hand-offs, each visible as a view by its name
    (``clean.orders``, ``deep_dive.rfm``).
    """

    root: Path
    case_id: str
    _engine: Any = field(default=None, repr=False, compare=False)  # DuckDB, opened by the first query
    _views: set[str] = field(default_factory=set, repr=False, compare=False)

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
        import pyarrow.parquet as pq

        path = self._path(name, "table", writing=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, **PARQUET_OPTIONS)
        self._views.discard(name)  # a view binds the file's columns: bind it anew at the next query
        return path

    def read(
        self, name: str, columns: list[str] | tuple[str, ...] | None = None, where: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Read a table hand-off, or say which step to run first.

        ``columns``: only these, in this order. ``where``: only the rows whose value in each given
        column is one of the given values (a missing value matches a missing one, as ``Series.isin``),
        in the file's order; the rest are never converted to pandas.
        """
        path = self._path(name, "table")
        if not path.exists():
            raise self._missing(name, path)
        if columns is not None:
            columns = list(columns)
            self._check_columns(name, path, columns)
        if not where:
            return pd.read_parquet(path, columns=columns)
        self._check_columns(name, path, list(where))
        try:
            return pd.read_parquet(path, columns=columns, filters=row_filter(path, where))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            # values of another type than the column's (numbers for text…): pandas' own rules, as Series.isin
            df = pd.read_parquet(path, columns=None if columns is None else list(dict.fromkeys([*columns, *where])))
            for column, values in where.items():
                df = df[isin(df[column], values)]
            return df.reset_index(drop=True) if columns is None else df[columns].reset_index(drop=True)

    def columns(self, name: str) -> list[str]:
        """Return the columns of a table hand-off, read from its file's schema alone."""
        import pyarrow.parquet as pq

        path = self._path(name, "table")
        if not path.exists():
            raise self._missing(name, path)
        return list(pq.read_schema(path).names)

    def _check_columns(self, name: str, path: Path, wanted: list[str]) -> None:
        import pyarrow.parquet as pq

        have = pq.read_schema(path).names
        unknown = [c for c in wanted if c not in have]
        if unknown:
            raise KeyError(f"hand-off '{name}' has no column {', '.join(map(repr, unknown))}; it has {', '.join(have)}")

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

    def query(self, sql: str, params: list | dict | None = None, needs: tuple[str, ...] = ()):
        """Return a DuckDB relation of ``sql`` over the hand-offs, lazily evaluated.

        Each table hand-off written so far is a view by its name, ``folder.name``; a name in ``needs``
        that is not written yet raises :class:`HandoffMissing` naming the step to run.

        >>> import tempfile
        >>> ws = Workspace(Path(tempfile.mkdtemp()), "case")
        >>> _ = ws.write("deep_dive/tiers", pd.DataFrame({"tier": ["A", "B"], "revenue": [3.0, 1.0]}))
        >>> ws.sql("SELECT sum(revenue) AS revenue FROM deep_dive.tiers")["revenue"].tolist()
        [4.0]
        """
        for name in needs:
            path = self._path(name, "table")
            if not path.exists():
                raise self._missing(name, path)
        con = self._connection()
        self._bind_views(con)
        return con.sql(sql, params=params)

    def sql(self, sql: str, params: list | dict | None = None, needs: tuple[str, ...] = ()) -> pd.DataFrame:
        """Return the result of DuckDB ``sql`` over the hand-offs as a pandas frame (see :meth:`query`)."""
        return self.query(sql, params, needs).df()

    def close(self) -> None:
        """Close the DuckDB connection, if a query opened one."""
        if self._engine is not None:
            self._engine.close()
            self._engine, self._views = None, set()

    def _connection(self):
        if self._engine is None:
            self._engine = connect()
        return self._engine

    def _bind_views(self, con) -> None:
        tables = {n: self._path(n, "table") for n, h in HANDOFFS.items() if h.kind == "table" and n not in self._views}
        self._views |= bind_views(con, {n: p for n, p in tables.items() if p.exists()})

    def _missing(self, name: str, path: Path) -> HandoffMissing:
        number, notebook = handoff(name).step
        return HandoffMissing(f"hand-off '{name}' not found at {path}: run step {number} ({notebook}.ipynb) first")


class Tables(MutableMapping):
    """The canonical tables of one step, read from their hand-offs when first used.

    A step that needs three of the eleven tables reads three: at 100 times the demo
    data, the visits and activities alone are 12 million rows. ``columns(name, [...])``
    reads only some columns of a table (taken from the whole table when it is read
    already); ``release(name)`` lets go of what was read. A missing hand-off raises
    :class:`HandoffMissing` when it is used, naming the step to run.
    """

    def __init__(self, ws: Workspace, step: str):
        self._ws, self._step = ws, step
        self._names = list(TABLES)
        self._got: dict[str, pd.DataFrame] = {}
        self._set: set[str] = set()  # tables a notebook put here itself: never re-read from a file

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._got:
            if name not in self._names:
                raise KeyError(name)
            self._got[name] = self._ws.read(f"{self._step}/{name}")
        return self._got[name]

    def unread_file(self, name: str) -> Path | None:
        """Return the hand-off file of table ``name`` while it has not been read whole, else None.

        None also when a notebook set the table here itself, or its hand-off has not been written.
        """
        if name in self._got or name not in self._names:
            return None
        path = self._ws.data / self._step / f"{name}.{EXTENSIONS['table']}"
        return path if path.exists() else None

    def columns(self, name: str, columns: list[str] | tuple[str, ...]) -> pd.DataFrame:
        """Return only ``columns`` of table ``name``: from the whole table if read already, else from its file."""
        if name in self._got:
            return self._got[name][list(columns)]
        if name not in self._names:
            raise KeyError(name)
        return self._ws.read(f"{self._step}/{name}", columns=columns)

    def where(self, name: str, column: str, values: Any, columns: list[str] | None = None) -> pd.DataFrame:
        """Return the rows of table ``name`` whose ``column`` is among ``values`` (only ``columns`` when given).

        Taken from the whole table when it is read already; else only those rows are read from its file.
        """
        if name in self._got:
            df = self._got[name]
            df = df[isin(df[column], values)].reset_index(drop=True)
            return df if columns is None else df[list(columns)]
        if name not in self._names:
            raise KeyError(name)
        return self._ws.read(f"{self._step}/{name}", columns=columns, where={column: values})

    def release(self, *names: str) -> None:
        """Let go of the tables read so far under ``names``; they are read again when next used."""
        for name in names:
            if name not in self._set:
                self._got.pop(name, None)

    def __setitem__(self, name: str, df: pd.DataFrame) -> None:
        if name not in self._names:
            self._names.append(name)
        self._got[name] = df
        self._set.add(name)

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._got.pop(name, None)
        self._set.discard(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self):
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<{self._step} tables: {', '.join(self._names)}; read so far: {', '.join(self._got) or 'none'}>"


def save_intake(ws: Workspace, intakes: Mapping[str, Intake] | Iterable[tuple[str, Intake]]) -> dict[str, Intake]:
    """Write every intake table as it comes, then the unreadable values and the date formats.

    ``intakes`` is a mapping, or pairs as :func:`crmnb.intake.load.iter_tables` yields them
    one at a time: each table is written and let go before the next is taken in, so step 2
    holds one table rather than all; a CSV export it takes in and writes a batch at a time, so
    step 2 holds one batch of it. Returns every table's intake without its rows
    (:meth:`Intake.summarised`: notes, issues, formats and the inventory's figures), in the order of the tables.
    """
    from crmnb.intake.parse import all_formats, all_issues

    def sink(name: str) -> tuple[Path, dict[str, Any]]:
        ws._views.discard(f"intake/{name}")  # a view binds the file's columns: bind it anew at the next query
        return ws._path(f"intake/{name}", "table", writing=True), PARQUET_OPTIONS

    if hasattr(intakes, "write_to"):
        intakes = intakes.write_to(sink)
    kept: dict[str, Intake] = {}
    for name, got in intakes.items() if isinstance(intakes, Mapping) else intakes:
        if not got.batches:  # taken in whole: written here
            ws.write(f"intake/{name}", got.table)
        kept[name] = got.summarised(name)
        del got
    kept = {name: kept[name] for name in TABLES if name in kept}
    issues = all_issues(kept)
    ws.write("intake/issues", issues)
    ws.write("intake/formats", all_formats(kept))
    return kept


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
