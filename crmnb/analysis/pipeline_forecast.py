"""A 12-week forecast of weekly won revenue built from the pipeline, chosen against the old one by backtest.

Three parts: the deals open at the origin, each weighted by its stage's win rate and spread over
the weeks by how late past deals closed against their expected close date; new deals not yet in
the pipeline, from the last quarter's pace of new deals, the first stage's win rate and the lag
from creation to a win; and, in ``pipeline_seasonal``, the new-deal part scaled by the month of
the quarter (the ratio of past weekly won revenue to its centred 13-week mean). The damped-trend
model of :mod:`crmnb.analysis.forecast` stays as the baseline: a rolling-origin backtest over the
last weeks whose 12 weeks ahead are known scores every method on the same origins, and the one
with the smallest 12-week deviation is chosen. The miss of the latest complete window is broken
into slipped deals, lost deals, pipeline deals won beyond their weight, the new-deal shortfall and
the seasonal adjustment, which add up to the total error.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from crmnb.analysis import forecast as baseline
from crmnb.analysis.pipeline_drivers import Inflow
from crmnb.analysis.pipeline_state import campaign_extra, close_week_odds, new_deal_rate, open_deals, stage_win_rates
from crmnb.errors import NotEnoughData

METHODS: tuple[str, ...] = ("holt_damped", "pipeline", "pipeline_seasonal", "pipeline_campaign")
SEASON_WEEKS = 13
LEVEL = 0.8
COMPONENTS = ("slipped", "lost_deals", "won_above_weight", "new_deals", "campaign", "seasonality")
"""The parts of a pipeline forecast's error, in the order the breakdown lists them."""


def week_end(week: pd.Timestamp) -> pd.Timestamp:
    """Return the last moment of the week that starts on Monday ``week``."""
    return week + pd.Timedelta(days=7) - pd.Timedelta(seconds=1)


def month_of_quarter(weeks: pd.DatetimeIndex) -> np.ndarray:
    """Return 0, 1 or 2: the month of its quarter each week's Thursday falls in."""
    return ((pd.DatetimeIndex(weeks) + pd.Timedelta(days=3)).month.to_numpy() - 1) % 3


def seasonal_index(weekly: pd.DataFrame, upto: pd.Timestamp) -> np.ndarray:
    """Return the month-of-quarter factors of weekly won revenue up to ``upto`` (ratio to a centred 13-week mean,
    averaged per month and scaled to a mean of 1); all 1 with under a year of weeks."""
    w = weekly[weekly["week"] <= upto]
    if len(w) < 52:
        return np.ones(3)
    ma = w["revenue"].rolling(SEASON_WEEKS, center=True).mean()
    ratio = (w["revenue"] / ma.where(ma > 0)).to_numpy()
    m = month_of_quarter(pd.DatetimeIndex(w["week"]))
    idx = np.array([np.nanmean(ratio[m == k]) if np.isfinite(ratio[m == k]).any() else 1.0 for k in range(3)])
    return idx / idx.mean()


class Parts(NamedTuple):
    """One pipeline forecast: per week ahead its parts, and per open deal its forecast and amount."""

    weeks: pd.DatetimeIndex
    pipeline: np.ndarray
    new_plain: np.ndarray
    season: np.ndarray
    deals: pd.DataFrame  # opportunity_id, amount, p_win, forecast (over the horizon)
    campaign: np.ndarray | None = None  # what the campaign driver adds to the new-deal part
    rate: tuple[float, np.ndarray] | None = None  # a week's new deals' won revenue and its spread over the weeks

    @property
    def campaign_part(self) -> np.ndarray:
        """Return what the campaign driver adds to the new deals (zero without it)."""
        return np.zeros(len(self.weeks)) if self.campaign is None else self.campaign

    @property
    def new_deals(self) -> np.ndarray:
        """Return the new-deal part with the campaign's and after the seasonal factor."""
        return (self.new_plain + self.campaign_part) * self.season

    @property
    def total(self) -> np.ndarray:
        """Return the forecast per week."""
        return self.pipeline + self.new_deals


def forecast_parts(
    opp, sh, weekly: pd.DataFrame, week: pd.Timestamp, horizon: int, seasonal: bool, flow: Inflow | None = None
) -> Parts:
    """Return the pipeline forecast made at the end of the week starting ``week`` (with the campaign driver
    known then, given the ``flow`` of new deals and leads)."""
    origin = week_end(week)
    rates = stage_win_rates(opp, sh, origin)
    deals = open_deals(opp, sh, origin, rates)
    odds = close_week_odds(deals, opp, sh, origin, horizon)
    weight = (deals["p_win"] * deals["amount"].fillna(0.0)).to_numpy()[:, None] * odds
    ahead = pd.date_range(week + pd.Timedelta(days=7), periods=horizon, freq="W-MON")
    season = seasonal_index(weekly, week)[month_of_quarter(ahead)] if seasonal else np.ones(horizon)
    d = deals[["opportunity_id", "amount", "p_win"]].assign(forecast=weight.sum(axis=1))
    lam, g = new_deal_rate(opp, sh, origin, horizon, rates)
    # week k gets the deals created in weeks 1..k that close k - c weeks later
    p = Parts(ahead, weight.sum(axis=0), lam * np.cumsum(g), season, d, rate=(lam, g))
    return p if flow is None else with_campaign(p, opp, sh, flow, origin, horizon)


def with_campaign(p: Parts, opp, sh, flow: Inflow, origin: pd.Timestamp, horizon: int) -> Parts:
    """Return ``p`` with the campaign driver known at ``origin`` in its new-deal part (unchanged where it is
    not used)."""
    d = flow.at(origin)
    if not d.used:
        return p
    lam, g = p.rate if p.rate is not None else new_deal_rate(opp, sh, origin, horizon)
    return p._replace(campaign=campaign_extra(lam, g, flow.factors(d, origin, horizon)))


def _origins(weekly: pd.DataFrame, horizon: int, n: int, min_train: int) -> list[int]:
    """Return the positions of the backtest's origin weeks: the last ``n`` whose ``horizon`` weeks are known."""
    last = len(weekly) - horizon - 1
    first = max(min_train - 1, last - n + 1)
    if last < first:
        raise NotEnoughData(
            "predict.forecast.too_short",
            min_train + horizon + 1,
            len(weekly),
            n=len(weekly),
            need=min_train + horizon + 1,
        )
    return list(range(first, last + 1))


def backtest(
    opp, sh, weekly: pd.DataFrame, horizon: int = 12, n: int = 20, min_train: int = 26, flow: Inflow | None = None
) -> pd.DataFrame:
    """Return every method's forecast and the actual per origin and week ahead, on the same origins (the
    campaign method only with a ``flow`` of new deals and leads to fit its driver on)."""
    pos = _origins(weekly, horizon, n, min_train)
    y, weeks = weekly["revenue"].to_numpy(float), pd.DatetimeIndex(weekly["week"])
    rows = []
    for o in pos:
        # the two pipeline methods differ only by the seasonal factor: the deals and the pace are worked out once
        seasonal = forecast_parts(opp, sh, weekly, weeks[o], horizon, True)
        plain = seasonal._replace(season=np.ones(horizon))
        made = {"pipeline": plain, "pipeline_seasonal": seasonal}
        if flow is not None:
            made["pipeline_campaign"] = with_campaign(plain, opp, sh, flow, week_end(weeks[o]), horizon)
        for method, p in made.items():
            rows.append(pd.DataFrame({"method": method, "origin": weeks[o], "step": np.arange(1, horizon + 1),
                                      "week": p.weeks, "actual": y[o + 1 : o + 1 + horizon], "forecast": p.total}))  # fmt: skip
    old = baseline.backtest(weekly, horizon=horizon, min_train=min_train)
    old = old[old["origin"].isin(weeks[pos])][["origin", "step", "week", "actual", "forecast"]]
    out = pd.concat([old.assign(method=METHODS[0]), *rows], ignore_index=True)
    out["error"] = out["forecast"] - out["actual"]
    return out[["method", "origin", "step", "week", "actual", "forecast", "error"]]


def accuracy(bt: pd.DataFrame) -> pd.DataFrame:
    """Return per method: origins, weekly WAPE, bias, and the 12-week deviation (WAPE of each origin's total);
    the chosen method (smallest 12-week deviation) is marked."""
    rows = []
    for method, g in bt.groupby("method", sort=False):
        tot = g.groupby("origin")[["actual", "forecast"]].sum()
        scale = g["actual"].abs().sum()
        rows.append({
            "method": method,
            "origins": len(tot),
            "wape": float((g["forecast"] - g["actual"]).abs().sum() / scale) if scale else np.nan,
            "bias": float((g["forecast"] - g["actual"]).sum() / scale) if scale else np.nan,
            "total_wape": float((tot["forecast"] - tot["actual"]).abs().sum() / tot["actual"].abs().sum()),
            "total_bias": float((tot["forecast"] - tot["actual"]).sum() / tot["actual"].abs().sum()),
        })  # fmt: skip
    out = pd.DataFrame(rows)
    out["chosen"] = out["method"] == out.loc[out["total_wape"].idxmin(), "method"]
    return out


def _band(bt: pd.DataFrame, method: str, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Return per step the 10% and 90% quantiles of actual/forecast of ``method`` in the backtest."""
    b = bt[(bt["method"] == method) & (bt["forecast"] > 0)]
    r = (b["actual"] / b["forecast"]).groupby(b["step"])
    q = (1 - LEVEL) / 2
    steps = np.arange(1, horizon + 1)
    return r.quantile(q).reindex(steps).to_numpy(float), r.quantile(1 - q).reindex(steps).to_numpy(float)


def final_forecast(
    opp, sh, weekly: pd.DataFrame, bt: pd.DataFrame, acc: pd.DataFrame, horizon: int, flow: Inflow | None = None
) -> pd.DataFrame:
    """Return the chosen method's forecast of the weeks after the last one, with its parts and its 80% band."""
    chosen = str(acc.loc[acc["chosen"], "method"].iloc[0])
    last = pd.Timestamp(weekly["week"].iloc[-1])
    lo, hi = _band(bt, chosen, horizon)
    if chosen == METHODS[0]:
        fc = baseline.rolling_forecast(weekly, horizon=horizon)
        pipe, new, camp = np.full(horizon, np.nan), np.full(horizon, np.nan), np.full(horizon, np.nan)
        point = fc["forecast"].to_numpy()
    else:
        p = parts_of(chosen, opp, sh, weekly, last, horizon, flow)
        pipe, new, camp, point = p.pipeline, p.new_deals, p.campaign_part * p.season, p.total
    ahead = pd.date_range(last + pd.Timedelta(days=7), periods=horizon, freq="W-MON")
    return pd.DataFrame({"week": ahead, "step": np.arange(1, horizon + 1), "pipeline": pipe, "new_deals": new,
                         "campaign_effect": camp, "forecast": point, "lower": np.maximum(point * lo, 0), "upper": point * hi,
                         "level": LEVEL, "method": chosen, "origin": last})  # fmt: skip


def parts_of(method: str, opp, sh, weekly: pd.DataFrame, week: pd.Timestamp, horizon: int, flow: Inflow | None):
    """Return the parts of pipeline method ``method``'s forecast made at the end of the week starting ``week``."""
    return forecast_parts(
        opp, sh, weekly, week, horizon, method == "pipeline_seasonal", flow if method == "pipeline_campaign" else None
    )
