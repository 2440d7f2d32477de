"""A case's pipeline forecast in one call: weekly series, backtest of every method, the chosen forecast, its
coverage and the miss breakdown of the latest complete window; and the sentences the report shows."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from crmnb.analysis import forecast as baseline
from crmnb.analysis.forecast_miss import coverage, miss_breakdown
from crmnb.analysis.pipeline_drivers import MIN_PULSES, Driver, inflow, windows_tried
from crmnb.analysis.pipeline_forecast import METHODS, accuracy, backtest, final_forecast, parts_of, week_end
from crmnb.analysis.pipeline_state import prepared
from crmnb.errors import NotEnoughData
from crmnb.present.words import category, department, t

COLUMNS = {
    "opportunities": [
        "opportunity_id",
        "department",
        "created_at",
        "status",
        "amount",
        "closed_at",
        "expected_close_date",
    ],
    "stage_history": ["opportunity_id", "stage", "entered_at"],
}
"""The columns the pipeline forecast reads."""


class PipelineForecast(NamedTuple):
    """The department's weekly won revenue, every method's backtest and accuracy, the chosen forecast,
    its coverage and the miss breakdown of the latest complete window."""

    weekly: pd.DataFrame
    backtest: pd.DataFrame
    accuracy: pd.DataFrame
    forecast: pd.DataFrame
    coverage: dict
    miss: pd.DataFrame
    driver: Driver | None = None  # the campaign driver known at the last week; None without campaigns and leads


def run(
    opportunities,
    stage_history,
    dept: str | None,
    end,
    lang: str,
    horizon: int = 12,
    origins: int = 20,
    min_train: int = 26,
    campaigns: pd.DataFrame | None = None,
    leads: pd.DataFrame | None = None,
) -> PipelineForecast:
    """Return the department's pipeline forecast up to ``end``, chosen against the damped trend by backtest;
    with ``campaigns`` (and the weekly new ``leads``: week, leads), the campaign driver is one more candidate."""
    opp, sh = prepared(opportunities, stage_history, dept)
    won = opp[(opp["status"] == "won") & opp["closed_at"].notna()]
    weekly = baseline.weekly_revenue(opp, end=end) if len(won) else pd.DataFrame({"week": [], "revenue": []})
    need = min_train + horizon + 1
    if len(weekly) < need:
        raise NotEnoughData("predict.forecast.too_short", need, len(weekly), n=len(weekly), need=need)
    last = pd.Timestamp(weekly["week"].iloc[-1])
    flow = inflow(opp, leads, campaigns, last) if campaigns is not None else None
    driver = flow.at(week_end(last)) if flow is not None else None
    # the campaign method is a candidate only where the data up to the last week support the driver
    flow = flow if driver is not None and driver.used else None
    bt = backtest(opp, sh, weekly, horizon, origins, min_train, flow)
    acc = accuracy(bt)
    fc = final_forecast(opp, sh, weekly, bt, acc, horizon, flow)
    chosen = str(acc.loc[acc["chosen"], "method"].iloc[0])
    seasonal, camp = chosen == "pipeline_seasonal", flow if chosen == "pipeline_campaign" else None
    last_full = pd.Timestamp(bt["origin"].max())
    miss = miss_breakdown(opp, sh, weekly, last_full, horizon, seasonal, lang, camp)
    parts = parts_of(chosen, opp, sh, weekly, last, horizon, flow)
    return PipelineForecast(weekly, bt, acc, fc, coverage(parts.pipeline, weekly, horizon), miss, driver)


def describe(pf: PipelineForecast, tolerance: float, lang: str) -> str:
    """State the backtest: each method's weekly WAPE and 12-week deviation, the chosen one against the tolerance."""
    a = pf.accuracy.set_index("method")
    chosen = str(a.index[a["chosen"]][0])
    best = a.loc[chosen]
    key = "predict.forecast.within" if best["total_wape"] <= tolerance else "predict.forecast.above"
    return t(
        "predict.forecast.backtest",
        lang,
        origins=int(best["origins"]),
        h=int(pf.forecast["step"].max()),
        old_wape=a.loc[METHODS[0], "wape"],
        old_total=a.loc[METHODS[0], "total_wape"],
        new_wape=a.loc["pipeline", "wape"],
        new_total=a.loc["pipeline", "total_wape"],
        season_total=a.loc["pipeline_seasonal", "total_wape"],
        chosen=category(chosen, lang),
        verdict=t(key, lang, tolerance=tolerance, total=best["total_wape"], by=best["total_wape"] - tolerance),
    )


def describe_miss(pf: PipelineForecast, tolerance: float, lang: str) -> str:
    """State the latest complete window's miss and its largest part with the remedy, in ``lang``."""
    m = pf.miss
    dev = m.attrs["total_error"] / m.attrs["actual"] if m.attrs["actual"] else np.nan
    big = m.loc[m["error"].abs().idxmax()]
    key = "predict.miss.within" if abs(dev) <= tolerance else "predict.miss.above"
    return t(
        key,
        lang,
        origin=f"{m.attrs['origin']:%Y-%m-%d}",
        deviation=dev,
        tolerance=tolerance,
        part=category(big["component"], lang),
        share=big["share_of_error"],
        remedy=big["remedy"],
    )


def describe_coverage(pf: PipelineForecast, dept: str, lang: str) -> str:
    """State the pipeline coverage: weighted pipeline due in the horizon against the recent pace, in ``lang``."""
    c = pf.coverage
    return t("predict.coverage", lang, department=department(dept, lang), h=int(pf.forecast["step"].max()), **c)


def empty_accuracy() -> pd.DataFrame:
    """Return a backtest accuracy table with no rows."""
    return pd.DataFrame(columns=["method", "origins", "wape", "bias", "total_wape", "total_bias", "chosen"])


def empty_forecast() -> pd.DataFrame:
    """Return a pipeline forecast with no rows."""
    return pd.DataFrame(
        columns=[
            "week",
            "step",
            "pipeline",
            "new_deals",
            "campaign_effect",
            "forecast",
            "lower",
            "upper",
            "level",
            "method",
            "origin",
        ]
    )


def empty_miss() -> pd.DataFrame:
    """Return a miss breakdown with no rows."""
    return pd.DataFrame(columns=["component", "forecast", "actual_revenue", "error", "share_of_error", "remedy"])


def describe_driver(pf: PipelineForecast | None, dept: str | None, lang: str) -> str:
    """State what the campaign driver found (lag window, lift with its interval, as an association) and whether
    the backtest kept it, or why it does not run, in ``lang``."""
    if pf is None:
        return t("predict.driver.no_forecast", lang)
    d = pf.driver
    if d is None:
        return t("predict.driver.no_campaigns", lang)
    where = {"department": department(dept, lang) if dept else "", "pulses": d.pulses, "need": MIN_PULSES,
             "tried": windows_tried()}  # fmt: skip
    # lag week k holds the days 7k to 7k + 6 after a campaign's end: said in days, week 0 reads "0 to 6 days"
    span = {"first_day": 7 * d.first, "last_day": 7 * d.last + 6, "lift": d.lift, "low": d.low, "high": d.high}
    if d.reason:
        return t(f"predict.driver.{d.reason}", lang, **where, **span)
    end = f"{pd.Timestamp(pf.weekly['week'].iloc[-1]) + pd.Timedelta(days=6):%Y-%m-%d}"
    lead = {"lead_lift": d.lead_lift, "lead_low": d.lead_low, "lead_high": d.lead_high}
    found = "predict.driver.found_deals" if np.isnan(d.lead_lift) else "predict.driver.found"
    a = pf.accuracy.set_index("method")
    said = t(found, lang, end=end, **where, **span, **lead)
    if "pipeline_campaign" not in a.index:
        return said
    key = "predict.driver.chosen" if bool(a.loc["pipeline_campaign", "chosen"]) else "predict.driver.not_chosen"
    plain = a.loc["pipeline", "total_wape"]
    sep = "" if lang == "zh" else " "
    return f"{said}{sep}{t(key, lang, total=a.loc['pipeline_campaign', 'total_wape'], plain=plain)}"


def driver_table(pf: PipelineForecast | None) -> pd.DataFrame:
    """Return the campaign driver's distributed lag: per week after a short campaign the lift of new leads (or
    deals, without leads) with its 95% interval, and whether the week is in the window the forecast uses."""
    cols = ["series", "lag_weeks", "lift", "lift_low", "lift_high", "in_window"]
    d = None if pf is None else pf.driver
    if d is None or not len(d.profile):
        return pd.DataFrame(columns=cols)
    p = d.profile.assign(series="deals" if np.isnan(d.lead_lift) else "leads")
    p["in_window"] = p["lag_weeks"].between(d.first, d.last)
    return p[cols].reset_index(drop=True)
