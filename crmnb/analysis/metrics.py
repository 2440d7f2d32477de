"""The metric catalogue: each metric declared once, computed the same way everywhere.

A metric's function returns its *units*: one row per lead, order, ticket… that the
metric averages, with the columns ``when`` (the date that places the unit in a
period), ``department``, ``owner_rep``, ``customer_id`` and ``value``. A rate is the
mean of a 0/1 value, an average time the mean of hours. So every metric can be
computed for any period and broken down by department, rep, month or segment, and
tested for a before/after change, from the same units.

>>> units = lead_conversion_units(tables, "2025-07-01", "2025-12-31")  # doctest: +SKIP
>>> compute("lead_conversion_rate", tables, "2025-07-01", "2025-12-31", by="department")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmnb.analysis.metric_engine import GROUPS, run_aggregate, run_values
from crmnb.analysis.metric_units import (
    UNIT_COLUMNS,
    Tables,
    cac_value,
    churn_units,
    complaint_resolution_units,
    conversion_left_out,
    converted_within,
    csat_units,
    followup_ontime_units,
    in_period,
    lead_conversion_units,
    lead_response_units,
    ltv_cac_value,
    ltv_value,
    nps_units,
    opportunity_win_units,
    order_value_units,
    rate_sql,
    row_sql,
    sales_cycle_units,
)
from crmnb.analysis.repeat_units import REPEAT_WINDOW_DAYS, repeat_left_out, repeat_purchase_units
from crmnb.present.words import t

# the unit functions live in crmnb.analysis.metric_units; their names stay importable from here
__all__ = [
    "CATALOGUE",
    "HEADLINE",
    "UNIT_COLUMNS",
    "Metric",
    "Tables",
    "aggregate",
    "breakdown",
    "catalogue_table",
    "compute",
    "converted_within",
    "headline",
    "ltv_or_blank",
    "series_note",
    "in_period",
    "units",
    "value",
]


# --------------------------------------------------------------------------- catalogue
@dataclass(frozen=True)
class Metric:
    """One declared metric; its name and formula are the message catalogue's ``metric.<id>.name`` and ``.formula``."""

    id: str
    dimension: str  # efficiency / effect / experience
    sources: tuple[str, ...]
    unit: str  # rate / hours / days / CNY / score / points / ratio
    units: Callable[..., pd.DataFrame] | None
    higher_is_better: bool = True
    total: Callable[..., tuple[float, int]] | None = None  # for ratios of totals (CAC, LTV): value and n
    goal: bool = False  # a case's goal may name it (crmnb.params.model.GOAL_METRICS)
    # the metric's own settings and their defaults (a window length), passed to its unit function
    # unless the caller gives them; the formula text names them
    opts: tuple[tuple[str, object], ...] = ()
    # a customer may give several units (one per month they bought): their intervals count customers, not
    # units (crmnb.analysis.compare.design_effect)
    per_customer_month: bool = False

    def name(self, language: str) -> str:
        """Return the metric's name in ``language`` (en or zh)."""
        return t(f"metric.{self.id}.name", language)

    def formula_in(self, language: str, **opts) -> str:
        """Return how the metric is measured, in ``language`` (en or zh), with its settings (``opts``) filled in."""
        given = {k: opts.get(k, v) for k, v in self.opts}
        return t(f"metric.{self.id}.formula", language, **given)


CATALOGUE: dict[str, Metric] = {
    m.id: m
    for m in [
        Metric(
            "lead_response_hours",
            "efficiency",
            ("leads",),
            "hours",
            lead_response_units,
            higher_is_better=False,
            goal=True,
        ),
        Metric("followup_ontime_rate", "efficiency", ("activities",), "rate", followup_ontime_units, goal=True),
        Metric(
            "lead_conversion_rate",
            "effect",
            ("leads", "opportunities"),
            "rate",
            lead_conversion_units,
            goal=True,
            opts=(("conversion_window_days", 90),),
        ),
        Metric("opportunity_win_rate", "effect", ("opportunities",), "rate", opportunity_win_units, goal=True),
        Metric(
            "sales_cycle_days",
            "efficiency",
            ("opportunities", "leads"),
            "days",
            sales_cycle_units,
            higher_is_better=False,
            goal=True,
        ),
        Metric("avg_order_value", "effect", ("orders",), "CNY", order_value_units, goal=True),
        Metric(
            "repeat_purchase_rate",
            "effect",
            ("orders", "customers"),
            "rate",
            repeat_purchase_units,
            goal=True,
            opts=(("repeat_window_days", REPEAT_WINDOW_DAYS),),
            per_customer_month=True,
        ),
        Metric("csat", "experience", ("tickets",), "score", csat_units, goal=True),
        Metric("nps", "experience", ("tickets",), "points", nps_units),
        Metric(
            "complaint_resolution_hours",
            "experience",
            ("tickets",),
            "hours",
            complaint_resolution_units,
            higher_is_better=False,
            goal=True,
        ),
        Metric("churn_rate", "effect", ("orders", "customers"), "rate", churn_units, higher_is_better=False),
        Metric(
            "cac",
            "efficiency",
            ("campaigns", "leads", "opportunities"),
            "CNY",
            None,
            higher_is_better=False,
            total=cac_value,
        ),
        Metric(
            "ltv", "effect", ("orders", "customers"), "CNY", None, total=ltv_value, opts=(("clv_horizon_months", 12),)
        ),
        Metric(
            "ltv_cac", "effect", ("orders", "campaigns", "leads", "opportunities"), "ratio", None, total=ltv_cac_value
        ),
    ]
}
"""Every metric crmnb computes, by id."""

HEADLINE: tuple[str, ...] = (
    "lead_response_hours",
    "followup_ontime_rate",
    "lead_conversion_rate",
    "avg_order_value",
    "repeat_purchase_rate",
    "csat",
    "complaint_resolution_hours",
)
"""The headline metrics step 3 reports for every case."""


def units(metric: str, tables: Tables, start, end, department: str | None = None, **opts) -> pd.DataFrame:
    """Return the units of ``metric`` in the period, for one department or all."""
    if metric not in CATALOGUE:
        raise KeyError(f"unknown metric {metric!r}; known: {', '.join(CATALOGUE)}")
    if CATALOGUE[metric].units is None:
        raise ValueError(
            f"metric {metric!r} is a ratio of totals: it has a value per period and department, "
            f"not per lead or customer"
        )
    # a unit function built on the engine filters the department itself; the rest are filtered here
    u = CATALOGUE[metric].units(tables, start, end, **{**dict(CATALOGUE[metric].opts), **opts}, department=department)
    if department is not None:
        u = u[u["department"] == department]
    return u.reset_index(drop=True)


def aggregate(u: pd.DataFrame, by: str | list[str] | None = None) -> pd.DataFrame:
    """Return value (mean of the units) and n, overall or per group; ``by='month'`` groups by calendar month."""
    if by is None:
        return pd.DataFrame({"value": [u["value"].mean() if len(u) else np.nan], "n": [len(u)]})
    keys = [by] if isinstance(by, str) else list(by)
    u = u.copy()
    if "month" in keys:
        u["month"] = pd.to_datetime(u["when"]).dt.to_period("M").dt.to_timestamp()
    g = u.groupby(keys, dropna=False)["value"]
    return pd.DataFrame({"value": g.mean(), "n": g.size()}).reset_index()


def compute(
    metric: str,
    tables: Tables,
    start,
    end,
    department: str | None = None,
    by: str | list[str] | None = None,
    segments: pd.Series | None = None,
    **opts,
) -> pd.DataFrame:
    """Compute ``metric`` for the period, overall or per ``by`` (department, owner_rep, month, segment).

    ``segments`` maps customer_id to a segment (a tier, an RFM segment) for ``by='segment'``.
    """
    m = CATALOGUE.get(metric)
    if m is not None and m.total is not None:
        if by is not None:
            raise ValueError(
                f"metric {metric!r} is a ratio of totals and cannot be broken down by {by!r}; "
                f"compute it per department instead"
            )
        v, n = m.total(tables, start, end, department, **opts)
        return pd.DataFrame({"value": [v], "n": [n]})
    if segments is None:
        got = (_engine_groups if by is not None else _engine_total)(metric, tables, start, end, department, by, opts)
        if got is not None:
            return got
    u = units(metric, tables, start, end, department, **opts)
    if segments is not None:
        u = u.assign(segment=u["customer_id"].map(segments).fillna("unassigned"))
    elif by == "segment" or (isinstance(by, list) and "segment" in by):
        raise ValueError("by='segment' needs segments: a Series mapping customer_id to segment")
    return aggregate(u, by)


def _engine_groups(metric: str, tables: Tables, start, end, department, by, opts: dict) -> pd.DataFrame | None:
    """Return a 0/1 metric's value and n per ``by`` counted by DuckDB over unread hand-offs (None: not so)."""
    keys = [by] if isinstance(by, str) else list(by)
    if not set(keys) <= set(GROUPS) or len(set(keys)) != len(keys) or metric not in CATALOGUE:
        return None
    u = rate_sql(metric, tables, start, end, department, **{**dict(CATALOGUE[metric].opts), **opts})
    return None if u is None else run_aggregate(u, keys)


def _engine_total(metric: str, tables: Tables, start, end, department, by, opts: dict) -> pd.DataFrame | None:
    """Return a metric's value and n over the period from the values alone of its units' query (None: no query):
    the same mean as :func:`aggregate` of the units, without their key columns in pandas."""
    if metric not in CATALOGUE or CATALOGUE[metric].units is None:
        return None
    u = row_sql(metric, tables, start, end, department, **{**dict(CATALOGUE[metric].opts), **opts})
    if u is None:
        return None
    v = pd.Series(run_values(u), dtype=float)
    return pd.DataFrame({"value": [v.mean() if len(v) else np.nan], "n": [len(v)]})


def value(metric: str, tables: Tables, start, end, department: str | None = None, **opts) -> float:
    """Return the single figure of ``metric`` for the period (NaN when nothing was measured)."""
    return float(compute(metric, tables, start, end, department, **opts)["value"].iloc[0])


def ltv_or_blank(tables: Tables, start, end, department: str | None = None, **opts) -> float | pd.Series:
    """Return the LTV for the campaign and channel tables: the figure, or an empty Series (their LTV
    columns left blank) when the lifetime model cannot be fitted on this data."""
    v = value("ltv", tables, start, end, department, **opts)
    return v if np.isfinite(v) else pd.Series(dtype=float)


def headline(
    tables: Tables,
    start,
    end,
    department: str | None = None,
    metrics: Iterable[str] = HEADLINE,
    *,
    language: str,
    **opts,
) -> pd.DataFrame:
    """Return the headline metrics for the period: id, name, dimension, value, unit, n."""
    rows = []
    for mid in metrics:
        m = CATALOGUE[mid]
        r = compute(mid, tables, start, end, department, **opts).iloc[0]
        rows.append(
            {
                "metric": mid,
                "name": m.name(language),
                "dimension": m.dimension,
                "value": r["value"],
                "unit": m.unit,
                "n": int(r["n"]),
            }
        )
    return pd.DataFrame(rows)


def catalogue_table(period: str, language: str, **opts) -> pd.DataFrame:
    """Return the metric list: name, dimension, formula (with the case's ``opts``), source tables and period."""
    return pd.DataFrame(
        [
            {
                "metric": m.id,
                "name": m.name(language),
                "dimension": m.dimension,
                "formula": m.formula_in(language, **opts),
                "source": ", ".join(m.sources),
                "period": period,
                "unit": m.unit,
            }
            for m in CATALOGUE.values()
        ]
    )


def breakdown(
    tables: Tables, start, end, department: str | None, by: str, metrics: Iterable[str], **opts
) -> pd.DataFrame:
    """Return several metrics side by side per ``by`` (owner_rep, month, segment…): one column per metric id,
    and ``n_<id>`` with the units counted."""
    out: pd.DataFrame | None = None
    for mid in metrics:
        part = compute(mid, tables, start, end, department, by=by, **opts)
        part = part.rename(columns={"value": mid, "n": f"n_{mid}"})
        # a metric with no units has an all-missing ``by`` column of another type than the others'
        part[by] = part[by].astype(object)
        out = part if out is None else out.merge(part, on=by, how="outer")
    return out.sort_values(by).reset_index(drop=True) if out is not None else pd.DataFrame()


LEFT_OUT = {"lead_conversion_rate": conversion_left_out, "repeat_purchase_rate": repeat_left_out}
"""The metrics whose window may run outside the data, and how to count the units they leave out."""


def series_note(metric: str, tables: Tables, start, end, language: str, **opts) -> str:
    """Return the caption under a monthly series: what each month's point measures, and what is left out."""
    m = CATALOGUE[metric]
    text = t("series.note", language, formula=m.formula_in(language, **opts))
    if metric in LEFT_OUT:
        given = {**dict(m.opts), **opts}
        n, cut = LEFT_OUT[metric](tables, start, end, **given)
        if n:
            key = f"series.left_out.{metric}"
            text += " " + t(key, language, n=n, date=f"{cut:%Y-%m-%d}", **given)
    return text
