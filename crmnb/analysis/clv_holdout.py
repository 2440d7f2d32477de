"""Does the lifetime model predict? BG/NBD fitted on an earlier span, checked against the purchases after it.

The calibration/holdout check of the CLV literature (Fader, Hardie and Lee 2005) and of the
``lifetimes`` package (``calibration_and_holdout_data``,
``plot_calibration_purchases_vs_holdout_purchases``): summarise the orders up to a
calibration end, fit BG/NBD on that summary, predict each customer's repeat purchases in the
holdout span that follows, and compare with the purchases they made, by their number of
repeat purchases in calibration (0, 1, …, 7+).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from crmnb.analysis.bgnbd import (
    DAYS_PER_MONTH,
    MIN_REPEAT_CUSTOMERS,
    BGNBDParams,
    expected_purchases,
    fit_bgnbd,
    rfm_summary,
)
from crmnb.errors import NotEnoughData
from crmnb.present.words import t

TOP_GROUP = 7
"""Calibration frequencies from this one up are pooled in one group ("7+")."""

BY_FREQUENCY_COLUMNS = ["frequency_group", "customers", "actual", "predicted", "actual_total", "predicted_total"]
"""Columns of the by-frequency table: mean and total holdout purchases per calibration frequency group."""


class HoldoutCheck(NamedTuple):
    """The calibration/holdout check: per customer, by frequency group, the model, and its span."""

    table: pd.DataFrame  # per customer: frequency_cal, recency_cal, T_cal, frequency_holdout, predicted_holdout
    by_frequency: pd.DataFrame  # BY_FREQUENCY_COLUMNS
    bgnbd: BGNBDParams
    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp
    duration_holdout: float  # in periods of ``freq``

    @property
    def error(self) -> float:
        """Return the relative error of the total predicted holdout purchases ((predicted − actual) / actual)."""
        actual, predicted = float(self.table["frequency_holdout"].sum()), float(self.table["predicted_holdout"].sum())
        if not actual:  # nothing bought in the holdout: any prediction of purchases is too high
            return float("inf") if predicted > 0 else float("nan")
        return predicted / actual - 1


def calibration_and_holdout(
    orders: pd.DataFrame,
    calibration_end,
    observation_end,
    freq: str = "W",
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Return per customer who bought by ``calibration_end``: the calibration summary and the holdout purchases.

    Columns ``frequency_cal``, ``recency_cal``, ``T_cal`` (:func:`rfm_summary` at the calibration
    end), ``frequency_holdout`` (purchase occasions, distinct ``freq`` periods with an order,
    after the calibration end up to ``observation_end``) and ``duration_holdout`` (the
    periods between the two ends), as ``lifetimes.utils.calibration_and_holdout_data`` has them.
    """
    cal_end, obs_end = pd.Timestamp(calibration_end), pd.Timestamp(observation_end)
    if not obs_end > cal_end:
        raise ValueError(
            f"the observation end ({obs_end.date()}) must come after the calibration end ({cal_end.date()})"
        )
    cal = rfm_summary(orders, cal_end, freq=freq, customer_col=customer_col, date_col=date_col, amount_col=None)
    cal = cal.drop(columns="monetary_value").rename(
        columns={"frequency": "frequency_cal", "recency": "recency_cal", "T": "T_cal"}
    )
    dates = pd.to_datetime(orders[date_col])
    after = orders[(dates > cal_end) & (dates < obs_end.normalize() + pd.Timedelta(days=1))]
    after = after[after[customer_col].notna()]
    periods = pd.to_datetime(after[date_col]).dt.to_period(freq)
    occasions = pd.DataFrame({"customer_id": after[customer_col].to_numpy(), "p": periods.to_numpy()})
    holdout = occasions.drop_duplicates().groupby("customer_id").size()
    cal["frequency_holdout"] = cal["customer_id"].map(holdout).fillna(0).astype(int)
    cal["duration_holdout"] = float((obs_end.to_period(freq) - cal_end.to_period(freq)).n)
    return cal


def frequency_groups(frequency: pd.Series, top: int = TOP_GROUP) -> pd.Series:
    """Return each calibration frequency as its group's label: "0", "1", …, and "7+" for ``top`` and over.

    >>> frequency_groups(pd.Series([0, 3, 7, 12])).tolist()
    ['0', '3', '7+', '7+']
    """
    return frequency.astype(int).map(lambda v: f"{top}+" if v >= top else str(v))


def by_frequency(table: pd.DataFrame, top: int = TOP_GROUP) -> pd.DataFrame:
    """Return actual and predicted holdout purchases (mean per customer and total) by calibration frequency."""
    if not len(table):
        return empty_by_frequency()
    g = table.assign(frequency_group=frequency_groups(table["frequency_cal"], top)).groupby("frequency_group")
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "actual": g["frequency_holdout"].mean(),
            "predicted": g["predicted_holdout"].mean(),
            "actual_total": g["frequency_holdout"].sum().astype(float),
            "predicted_total": g["predicted_holdout"].sum(),
        }
    ).reset_index()
    order = out["frequency_group"].str.rstrip("+").astype(int)
    return out.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)[BY_FREQUENCY_COLUMNS]


def empty_by_frequency() -> pd.DataFrame:
    """Return a by-frequency table with no rows, for a case where the check could not be made."""
    return pd.DataFrame({c: pd.Series(dtype=object if c == "frequency_group" else float) for c in BY_FREQUENCY_COLUMNS})


def holdout_check(
    orders: pd.DataFrame,
    as_of,
    horizon_months: float = 12,
    freq: str = "W",
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> HoldoutCheck:
    """Return the check for the CLV as of ``as_of``: fit on the orders before the holdout, predict the holdout.

    The holdout is the last ``horizon_months`` before ``as_of`` (the span the CLV predicts),
    shortened to half the orders' history when that is shorter, so calibration keeps at least
    as much history as it is asked to predict.
    """
    obs_end = pd.Timestamp(as_of)
    dates = pd.to_datetime(orders[date_col])
    known = orders[customer_col].notna() & (dates <= obs_end.normalize() + pd.Timedelta(days=1))
    if not known.any():
        raise NotEnoughData("clv.no_orders", MIN_REPEAT_CUSTOMERS, 0, need=MIN_REPEAT_CUSTOMERS, date=obs_end.date())
    history_days = (obs_end - dates[known].min()).days
    days = min(horizon_months * DAYS_PER_MONTH, history_days / 2)
    cal_end = (obs_end - pd.Timedelta(days=round(days))).normalize()
    table = calibration_and_holdout(orders, cal_end, obs_end, freq, customer_col, date_col)
    repeat = int((table["frequency_cal"] > 0).sum())
    if repeat < MIN_REPEAT_CUSTOMERS:
        key = "series.holdout.too_few"
        raise NotEnoughData(key, MIN_REPEAT_CUSTOMERS, repeat, need=MIN_REPEAT_CUSTOMERS, n=repeat, date=cal_end.date())
    bg = fit_bgnbd(table["frequency_cal"], table["recency_cal"], table["T_cal"])
    duration = float(table["duration_holdout"].iloc[0])
    x, t_x, T = (table[c].to_numpy(dtype=float) for c in ("frequency_cal", "recency_cal", "T_cal"))
    table["predicted_holdout"] = expected_purchases(bg, duration, x, t_x, T)
    return HoldoutCheck(table, by_frequency(table), bg, cal_end, obs_end, duration)


def describe_holdout(check: HoldoutCheck, lang: str) -> str:
    """Return the check's reading in one sentence: spans, total predicted and actual purchases, the error."""
    tb = check.table
    weeks = (check.observation_end - check.calibration_end).days / 7
    return t(
        "series.holdout.reading",
        lang,
        cal_end=f"{check.calibration_end:%Y-%m-%d}",
        obs_end=f"{check.observation_end:%Y-%m-%d}",
        weeks=f"{weeks:.0f}",
        n=f"{len(tb):,}",
        predicted=f"{tb['predicted_holdout'].sum():,.0f}",
        actual=f"{tb['frequency_holdout'].sum():,.0f}",
        error=f"{check.error:+.1%}",
        verdict=t(f"series.holdout.{_verdict(check.error)}", lang),
    )


CLOSE = 0.10
"""A total holdout error within this share reads as close (the CDNOW check of the literature is within a few percent)."""


def _verdict(error: float) -> str:
    """Return close, high or low for a total holdout error."""
    if np.isnan(error) or abs(error) <= CLOSE:  # nothing predicted and nothing bought: nothing to warn of
        return "close"
    return "high" if error > 0 else "low"


def chart_frame(check: HoldoutCheck, lang: str) -> pd.DataFrame:
    """Return the by-frequency means in long form for a bar chart: group, series (actual / predicted), purchases."""
    bf = check.by_frequency
    long = bf.melt(id_vars="frequency_group", value_vars=["actual", "predicted"], var_name="series")
    long["series"] = long["series"].map(lambda s: t(f"series.holdout.{s}", lang))
    return long.rename(columns={"value": "purchases"})
