"""Campaign spend as a driver of the pipeline forecast's new-deal part: when new leads and deals rise after
short campaigns, by how much and how many weeks later.

A short campaign (a trade show, an event: at most :data:`SHORT_DAYS` days) is a pulse whose after-effect can
be timed; campaigns that run all year are the background the trend absorbs. On weekly counts up to a forecast
origin, ``log(1 + count)`` is regressed on a quadratic trend and, per week after a pulse's end, an indicator
(a distributed lag of :data:`LAGS` weeks); the window of lags that fits best gives one lift with its 95%
interval. As that window is the best of many tried, the rise counts only past a bound that allows for the
search (Bonferroni over the windows); and, with leads to choose the window on, new deals must rise in it too.
Only campaigns started by the origin and weeks complete by it are used, so the backtest scores the
driver as it could have been known. The lift is an association: the weeks after a campaign may differ for
other reasons.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

SHORT_DAYS = 28
"""A campaign of at most this many days is a pulse whose effect can be timed."""
LAGS = 10
"""Weeks after a pulse's end the distributed lag looks at."""
MAX_WINDOW = 6
"""Longest run of lag weeks the effect is taken to last."""
MIN_PULSES = 2
"""Fewest pulses, each with all its lag weeks observed, before a lift is estimated."""
Z = 1.959964
"""The normal quantile of a 95% interval."""


class Driver(NamedTuple):
    """What the campaign driver found at one origin: the pulses' ends, the lag window (weeks after the end,
    first and last), the lift of new deals in it with its interval, the same for new leads, and why it is not
    used (empty when it is)."""

    ends: np.ndarray
    first: int
    last: int
    lift: float
    low: float
    high: float
    lead_lift: float
    lead_low: float
    lead_high: float
    pulses: int
    reason: str
    profile: pd.DataFrame

    @property
    def used(self) -> bool:
        """Return whether the lift is clear enough to go into the forecast."""
        return not self.reason


def pulse_ends(campaigns: pd.DataFrame | None, origin: pd.Timestamp) -> np.ndarray:
    """Return the day after the end of each short campaign with spend that had started by ``origin``, sorted."""
    if campaigns is None or not len(campaigns) or not {"start_date", "end_date"} <= set(campaigns):
        return np.array([], dtype="datetime64[ns]")
    start = pd.to_datetime(campaigns["start_date"], errors="coerce")
    end = pd.to_datetime(campaigns["end_date"], errors="coerce")
    spend = pd.to_numeric(campaigns.get("spend", pd.Series(1.0, index=campaigns.index)), errors="coerce").fillna(0)
    short = ((end - start).dt.days <= SHORT_DAYS) & (start <= origin) & (spend > 0) & end.notna()
    return np.sort((end[short] + pd.Timedelta(days=1)).to_numpy(dtype="datetime64[ns]"))


def lag_matrix(weeks: pd.DatetimeIndex, ends: np.ndarray, lags: int = LAGS) -> np.ndarray:
    """Return per week (starting Monday) and lag k how many pulses had ended k whole weeks before it began.

    >>> lag_matrix(pd.date_range("2025-01-06", periods=4, freq="W-MON"), np.array(["2025-01-10"], "M8[ns]"), 3)
    array([[0., 0., 0.],
           [1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    x = np.zeros((len(weeks), lags))
    w = pd.DatetimeIndex(weeks).to_numpy(dtype="datetime64[ns]")
    for e in ends:
        k = np.floor((w - e) / np.timedelta64(7, "D")).astype(int)
        ok = (k >= 0) & (k < lags)
        x[np.flatnonzero(ok), k[ok]] += 1
    return x


def _ols(y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Return the least-squares coefficients, their standard errors and the residual sum of squares."""
    b, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ b
    dof = max(len(y) - a.shape[1], 1)
    cov = (r @ r / dof) * np.linalg.pinv(a.T @ a)
    return b, np.sqrt(np.clip(np.diag(cov), 0, None)), float(r @ r)


def _trend(n: int) -> np.ndarray:
    """Return the intercept and a quadratic trend in years over ``n`` weeks."""
    t = np.arange(n) / 52.0
    return np.column_stack([np.ones(n), t, t**2])


def profile(y: np.ndarray, x: np.ndarray) -> pd.DataFrame:
    """Return the distributed lag: per week after a pulse the lift of ``y`` with its 95% interval."""
    b, se, _ = _ols(np.log1p(y), np.column_stack([_trend(len(y)), x]))
    b, se = b[3:], se[3:]
    return pd.DataFrame({"lag_weeks": np.arange(x.shape[1]), "lift": np.exp(b),
                         "lift_low": np.exp(b - Z * se), "lift_high": np.exp(b + Z * se)})  # fmt: skip


def window_fit(y: np.ndarray, x: np.ndarray, window: tuple[int, int] | None = None) -> tuple[int, int, float, float]:
    """Return the lag window (first, last) that fits ``y`` best (or the one given), its log-lift and standard error."""
    trend = _trend(len(y))
    best = None
    spans = [window] if window else [(a, a + n - 1) for a in range(x.shape[1]) for n in range(1, MAX_WINDOW + 1)]
    for first, last in spans:
        if last >= x.shape[1]:
            continue
        b, se, rss = _ols(np.log1p(y), np.column_stack([trend, x[:, first : last + 1].sum(axis=1)]))
        if best is None or rss < best[0]:
            best = (rss, first, last, float(b[3]), float(se[3]))
    return best[1], best[2], best[3], best[4]


def searched_z(lags: int) -> float:
    """Return the normal quantile a window's rise must pass when it is the best of every window tried
    (Bonferroni: a 5% two-sided chance of a false rise over all of them).

    >>> round(searched_z(10), 2)
    3.26
    """
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - 0.025 / windows_tried(lags))


def windows_tried(lags: int = LAGS) -> int:
    """Return how many lag windows the search tries: every start, every length up to :data:`MAX_WINDOW`."""
    return sum(min(MAX_WINDOW, lags - a) for a in range(lags))


def _none(ends: np.ndarray, pulses: int, reason: str) -> Driver:
    """Return a driver that is not used, saying why."""
    nan = float("nan")
    empty = pd.DataFrame(columns=["lag_weeks", "lift", "lift_low", "lift_high"])
    return Driver(ends, -1, -1, nan, nan, nan, nan, nan, nan, pulses, reason, empty)


def fit(
    weeks: pd.DatetimeIndex, deals: np.ndarray, leads: np.ndarray | None, campaigns, origin: pd.Timestamp
) -> Driver:
    """Return the campaign driver known at ``origin`` from the weekly new ``deals`` (and ``leads``) counts of
    ``weeks`` (Mondays; only weeks complete by the origin are used)."""
    if campaigns is None or not len(campaigns):
        return _none(np.array([], "M8[ns]"), 0, "no_campaigns")
    ends = pulse_ends(campaigns, origin)
    if not len(ends):
        return _none(ends, 0, "no_pulses")
    keep = pd.DatetimeIndex(weeks) + pd.Timedelta(days=7) <= origin + pd.Timedelta(seconds=1)
    w = pd.DatetimeIndex(weeks)[keep]
    done = int(sum((e + np.timedelta64(7 * LAGS, "D")) <= w[-1].to_datetime64() for e in ends)) if len(w) else 0
    if done < MIN_PULSES or len(w) < 52:
        return _none(ends, done, "too_few_pulses")
    x = lag_matrix(w, ends)
    main = leads[keep] if leads is not None and np.nansum(leads) > 0 else deals[keep]
    first, last, lb, ls = window_fit(main, x)
    _, _, db, ds = window_fit(deals[keep], x, (first, last))
    lead = (np.exp(lb), np.exp(lb - Z * ls), np.exp(lb + Z * ls)) if main is not deals[keep] else (np.nan,) * 3
    lift = (np.exp(db), np.exp(db - Z * ds), np.exp(db + Z * ds))
    # the window is the best of many tried on the same weeks: its rise must clear the bound of that search
    clear = ls > 0 and lb / ls > searched_z(LAGS) and (main is deals[keep] or lift[1] > 1)
    reason = "" if clear else "unclear"
    return Driver(ends, first, last, *lift, *lead, done, reason, profile(main, x))


def multipliers(d: Driver, weeks: pd.DatetimeIndex) -> np.ndarray:
    """Return per week the factor the driver puts on new deals: its lift in a pulse's window, else 1."""
    if not d.used:
        return np.ones(len(weeks))
    x = lag_matrix(weeks, d.ends)[:, d.first : d.last + 1].sum(axis=1)
    return d.lift**x


def weekly_counts(created: pd.Series, weeks: pd.DatetimeIndex) -> np.ndarray:
    """Return how many of the timestamps ``created`` fall in each week (Monday to Sunday) of ``weeks``."""
    c = pd.to_datetime(created, errors="coerce").dropna()
    monday = (c - pd.to_timedelta(c.dt.day_of_week, unit="D")).dt.normalize()
    return monday.value_counts().reindex(pd.DatetimeIndex(weeks), fill_value=0).to_numpy(float)


def weekly_leads(ws, department: str | None) -> pd.DataFrame:
    """Return the department's new leads per week (Monday), counted in the engine: week, leads."""
    where, params = ("WHERE department = ?", [department]) if department is not None else ("", [])
    sql = (
        "SELECT date_trunc('week', CAST(created_at AS TIMESTAMP)) AS week, count(*) AS leads "
        f"FROM clean.leads {where} GROUP BY 1 HAVING week IS NOT NULL ORDER BY 1"
    )
    out = ws.sql(sql, params, needs=("clean/leads",))
    return out.assign(week=pd.to_datetime(out["week"]), leads=out["leads"].astype(float))


class Inflow(NamedTuple):
    """The weekly new deals and leads of a department and its campaigns: what the driver is fitted on."""

    weeks: pd.DatetimeIndex
    deals: np.ndarray
    leads: np.ndarray | None
    campaigns: pd.DataFrame | None

    def at(self, origin: pd.Timestamp) -> Driver:
        """Return the driver as known at ``origin``."""
        return fit(self.weeks, self.deals, self.leads, self.campaigns, origin)

    def factors(self, d: Driver, origin: pd.Timestamp, horizon: int) -> np.ndarray:
        """Return the driver's factors on new deals in the ``horizon`` weeks after ``origin`` (a week's end)."""
        monday = (origin - pd.Timedelta(days=6)).normalize()
        return multipliers(d, pd.date_range(monday + pd.Timedelta(days=7), periods=horizon, freq="W-MON"))


def inflow(opp: pd.DataFrame, leads: pd.DataFrame | None, campaigns: pd.DataFrame | None, end) -> Inflow | None:
    """Return the inflow of the prepared deals ``opp`` and the weekly ``leads`` (week, leads) up to ``end``."""
    if not len(opp):
        return None
    c = opp["created_at"]
    first = (c.min() - pd.Timedelta(days=int(c.min().day_of_week))).normalize()
    weeks = pd.date_range(first, pd.Timestamp(end), freq="W-MON")
    lead = None
    if leads is not None and len(leads):
        lead = leads.set_index("week")["leads"].reindex(weeks, fill_value=0).to_numpy(float)
    return Inflow(weeks, weekly_counts(c, weeks), lead, campaigns)
