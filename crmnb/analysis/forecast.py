"""Rolling forecast of weekly won revenue, checked against its own past.

Weekly won revenue (weeks start on Monday; a week without a win is 0) is forecast
12 weeks ahead by a simple model fitted with numpy alone. The same model is re-run
at every past week (a rolling-origin backtest), which gives both its accuracy —
WAPE, the weighted absolute percentage error Σ|a − f| / Σ|a|, defined even when
some weeks are 0, unlike MAPE — and the prediction band: the spread of past
actual/forecast ratios at the same horizon.

>>> weekly = weekly_revenue(opportunities, end="2026-03-31")  # doctest: +SKIP
>>> fc = rolling_forecast(weekly)  # doctest: +SKIP
>>> forecast_accuracy(backtest(weekly))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from crmnb.errors import NotEnoughData
from crmnb.present.words import t

METHODS: tuple[str, ...] = ("ses", "holt_damped", "moving_average")
"""Forecast methods: simple exponential smoothing, Holt's damped trend, moving average."""

ALPHAS = np.round(np.arange(0.05, 0.951, 0.05), 2)
"""Smoothing weights tried when fitting exponential smoothing (the one with the least one-week-ahead error wins)."""

BETAS = np.array([0.02, 0.05, 0.1, 0.2])
"""Trend smoothing weights tried for Holt's damped trend."""

PHI = 0.9
"""Damping of Holt's trend: each week ahead adds 90% of the previous week's trend step."""

MA_WEEKS = 8
"""Weeks averaged by the moving-average method."""

COLUMNS = ("status", "amount", "closed_at", "department")
"""The deals' columns the forecast reads (``t.columns("opportunities", COLUMNS)``: not the whole table)."""

MIN_HISTORY = 8
"""Fewest weeks any method forecasts from."""


# --------------------------------------------------------------------------- weekly series
def weekly_revenue(opportunities: pd.DataFrame, department: str | None = None, start=None, end=None) -> pd.DataFrame:
    """Return won revenue per week (Monday to Sunday): week, revenue (CNY), deals; weeks without a win are 0.

    A deal counts in the week of its ``closed_at``; won deals without a close date or
    amount are left out. Without ``start``/``end`` the weeks run from the first to the
    last win; with them, only the **complete** weeks inside (so a window ending on a
    Tuesday export date drops that last, partial week).

    >>> opps = pd.DataFrame({"status": ["won", "won", "lost"], "amount": [100.0, 50.0, 70.0],
    ...                      "closed_at": pd.to_datetime(["2025-01-06", "2025-01-22", "2025-01-08"])})
    >>> weekly_revenue(opps)["revenue"].tolist()
    [100.0, 0.0, 50.0]
    """
    if not isinstance(opportunities, pd.DataFrame):
        raise ValueError(f"table 'opportunities' must be a DataFrame, got {type(opportunities).__name__}")
    need = ["status", "amount", "closed_at"] + (["department"] if department is not None else [])
    missing = [c for c in need if c not in opportunities]
    if missing:
        raise ValueError(f"table 'opportunities': missing column(s) {', '.join(missing)}")
    opp = opportunities
    if department is not None:
        known = sorted(opp["department"].dropna().unique().tolist())
        if department not in known:
            raise ValueError(f"table 'opportunities': no department {department!r}; known: {', '.join(known)}")
        opp = opp[opp["department"] == department]
    won = opp[(opp["status"] == "won") & opp["closed_at"].notna() & opp["amount"].notna()]
    day = won["closed_at"].dt.normalize()
    week = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    g = pd.DataFrame({"week": week, "amount": won["amount"].astype(float)}).groupby("week")["amount"]
    if start is None and end is None and won.empty:
        raise ValueError(
            "table 'opportunities': no won deal with a close date and amount"
            + (f" in department {department!r}" if department is not None else "")
        )
    if start is not None:
        s = pd.Timestamp(start).normalize()
        first = s + pd.Timedelta(days=(7 - s.weekday()) % 7)  # the first Monday on or after start
    else:
        first = week.min()
    if end is not None:
        e = pd.Timestamp(end).normalize()
        last = e - pd.Timedelta(days=(e.weekday() + 1) % 7) - pd.Timedelta(days=6)  # Monday of the last full week
    else:
        last = week.max()
    if pd.isna(first) or pd.isna(last) or last < first:
        raise ValueError(f"no complete week between {start} and {end}")
    weeks = pd.date_range(first, last, freq="W-MON", name="week")
    out = pd.DataFrame(
        {
            "week": weeks,
            "revenue": g.sum().reindex(weeks, fill_value=0.0).to_numpy(dtype=float),
            "deals": g.size().reindex(weeks, fill_value=0).to_numpy(dtype=int),
        }
    )
    return out


def weekly_series(weekly: pd.DataFrame | pd.Series) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Return the weeks and revenue of a weekly series (a :func:`weekly_revenue` table or a Series by week)."""
    if isinstance(weekly, pd.DataFrame):
        missing = [c for c in ("week", "revenue") if c not in weekly]
        if missing:
            raise ValueError(f"table 'weekly': missing column(s) {', '.join(missing)}")
        weeks, values = pd.DatetimeIndex(weekly["week"]), weekly["revenue"].to_numpy(dtype=float)
    elif isinstance(weekly, pd.Series):
        weeks, values = pd.DatetimeIndex(weekly.index), weekly.to_numpy(dtype=float)
    else:
        raise ValueError(f"weekly must be a DataFrame (week, revenue) or a Series by week, got {type(weekly).__name__}")
    if len(values) == 0:
        raise ValueError("table 'weekly' is empty: no weeks to forecast from")
    if np.isnan(values).any():
        raise ValueError("table 'weekly': revenue has missing weeks (NaN); a week without a win is 0")
    if len(weeks) > 1 and ((weeks[1:] - weeks[:-1]) != pd.Timedelta(days=7)).any():
        raise ValueError(
            "table 'weekly': weeks must be consecutive, 7 days apart (use weekly_revenue, "
            "which fills weeks without a win with 0)"
        )
    return weeks, values


# --------------------------------------------------------------------------- methods
def _ses(y: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast by simple exponential smoothing; the weight is the grid value with the least one-step error."""
    level = np.full(len(ALPHAS), y[: min(4, len(y))].mean())
    sse = np.zeros(len(ALPHAS))
    for v in y:
        err = v - level
        sse += err * err
        level = level + ALPHAS * err
    return np.full(horizon, level[np.argmin(sse)])


def _holt_damped(y: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast by Holt's additive damped trend (φ = 0.9); weights from a grid, least one-step error."""
    a, b = np.meshgrid(ALPHAS, BETAS, indexing="ij")
    a, b = a.ravel(), b.ravel()
    k = min(4, len(y) // 2)
    level = np.full(len(a), y[:k].mean())
    trend = np.full(len(a), (y[k : 2 * k].mean() - y[:k].mean()) / k)
    sse = np.zeros(len(a))
    for v in y:
        pred = level + PHI * trend
        err = v - pred
        sse += err * err
        new_level = pred + a * err
        trend = PHI * trend + b * (new_level - level - PHI * trend)
        level = new_level
    best = np.argmin(sse)
    steps = np.cumsum(PHI ** np.arange(1, horizon + 1))
    return np.maximum(level[best] + steps * trend[best], 0.0)


def _moving_average(y: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast the mean of the last eight weeks."""
    return np.full(horizon, y[-MA_WEEKS:].mean())


_METHODS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "ses": _ses,
    "holt_damped": _holt_damped,
    "moving_average": _moving_average,
}


def _method(method: str) -> Callable[[np.ndarray, int], np.ndarray]:
    if method not in _METHODS:
        raise ValueError(f"unknown forecast method {method!r}; expected one of {', '.join(METHODS)}")
    return _METHODS[method]


def _check_horizon(horizon: int) -> None:
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a whole number of weeks ≥ 1, got {horizon!r}")


# --------------------------------------------------------------------------- backtest and forecast
def backtest(
    weekly: pd.DataFrame | pd.Series, horizon: int = 12, min_train: int = 26, step: int = 1, method: str = "holt_damped"
) -> pd.DataFrame:
    """Return a rolling-origin backtest: forecast vs actual per origin and weeks ahead.

    The model is fitted on the first ``min_train`` weeks, then on each ``step`` weeks
    more, and forecasts up to ``horizon`` weeks after each origin (fewer near the end,
    where no actual is known yet). Columns: origin (last week fitted), step (weeks
    ahead, 1 = next week), week, actual, forecast, error (forecast − actual).

    >>> weekly = pd.Series(5.0, index=pd.date_range("2025-01-06", periods=30, freq="W-MON"))
    >>> bt = backtest(weekly, horizon=2, min_train=26)
    >>> len(bt), float(bt["error"].abs().max())
    (7, 0.0)
    """
    _check_horizon(horizon)
    if int(step) != step or step < 1:
        raise ValueError(f"step must be a whole number of weeks ≥ 1, got {step!r}")
    if min_train < MIN_HISTORY:
        raise ValueError(f"min_train must be at least {MIN_HISTORY} weeks, got {min_train}")
    weeks, y = weekly_series(weekly)
    if len(y) <= min_train:
        raise ValueError(f"table 'weekly' has {len(y)} weeks; a backtest needs more than min_train={min_train}")
    fit = _method(method)
    origins = np.arange(min_train, len(y), step)
    parts = []
    for o in origins:  # one fit per origin (about a hundred for two years of weeks)
        h = min(horizon, len(y) - o)
        parts.append(np.column_stack([np.full(h, o - 1), np.arange(1, h + 1), fit(y[:o], h)]))
    arr = np.vstack(parts)
    at = arr[:, 0].astype(int) + arr[:, 1].astype(int)
    out = pd.DataFrame(
        {
            "origin": weeks[arr[:, 0].astype(int)],
            "step": arr[:, 1].astype(int),
            "week": weeks[at],
            "actual": y[at],
            "forecast": arr[:, 2],
        }
    )
    out["error"] = out["forecast"] - out["actual"]
    out["method"] = method
    return out


def _band(bt: pd.DataFrame, horizon: int, level: float, min_points: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Return per step the low and high quantiles of actual/forecast in a backtest (NaN with too few points)."""
    ok = bt[bt["forecast"] > 0]
    ratio = (ok["actual"] / ok["forecast"]).groupby(ok["step"])
    q = (1 - level) / 2
    lo = ratio.quantile(q).where(ratio.size() >= min_points)
    hi = ratio.quantile(1 - q).where(ratio.size() >= min_points)
    steps = np.arange(1, horizon + 1)
    return lo.reindex(steps).to_numpy(dtype=float), hi.reindex(steps).to_numpy(dtype=float)


def rolling_forecast(
    weekly: pd.DataFrame | pd.Series,
    horizon: int = 12,
    method: str = "holt_damped",
    level: float = 0.8,
    as_of=None,
    min_train: int = 26,
) -> pd.DataFrame:
    """Return the next ``horizon`` weeks' forecast with a ``level`` prediction band: week, step, forecast, lower, upper.

    ``method`` is ``holt_damped`` (the default: exponential smoothing of the level
    and of a trend that fades out, so a growing business is not under-forecast for
    long, while no trend is extrapolated forever), ``ses`` (simple exponential
    smoothing: a level only) or ``moving_average`` (the last eight weeks' mean);
    :func:`compare_methods` scores them on the same weeks. The model uses the weeks up to
    ``as_of`` (default: all), so a forecast made earlier can be compared with what
    happened (:func:`deviation_rate`). The band is the forecast times the
    ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of actual/forecast at the same
    step in a :func:`backtest` on the same weeks — errors of weekly revenue grow with
    its level, so the band scales with it. It is not forced around the line: a model
    that kept missing one way in the backtest gets a band shifted that way, which is
    where the actuals tend to land. It is NaN at a step with fewer than 8 backtest
    points (too little history).
    """
    _check_horizon(horizon)
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1 (write 80% as 0.8), got {level!r}")
    fit = _method(method)
    weeks, y = weekly_series(weekly)
    if as_of is not None:
        keep = weeks <= pd.Timestamp(as_of)
        weeks, y = weeks[keep], y[keep]
    if len(y) < MIN_HISTORY:
        raise ValueError(
            f"table 'weekly' has {len(y)} weeks up to {as_of or 'the end'}; a forecast needs at least {MIN_HISTORY}"
        )
    point = fit(y, horizon)
    if len(y) > max(min_train, MIN_HISTORY):
        lo, hi = _band(backtest(pd.Series(y, index=weeks), horizon, min_train, 1, method), horizon, level)
    else:
        lo = hi = np.full(horizon, np.nan)
    ahead = pd.date_range(weeks[-1] + pd.Timedelta(days=7), periods=horizon, freq="W-MON")
    return pd.DataFrame(
        {
            "week": ahead,
            "step": np.arange(1, horizon + 1),
            "forecast": point,
            "lower": np.maximum(point * lo, 0.0),
            "upper": point * hi,
            "level": level,
            "method": method,
            "origin": weeks[-1],
        }
    )


# --------------------------------------------------------------------------- accuracy
def wape(actual, forecast) -> float:
    """Return the weighted absolute percentage error Σ|a − f| / Σ|a| (pairs with a missing value are skipped).

    Unlike MAPE (the mean of |a − f| / |a|) it stays defined when some weeks are 0.

    >>> wape([100, 0, 50], [90, 10, 50])
    0.13333333333333333
    """
    a, f = np.asarray(actual, dtype=float).ravel(), np.asarray(forecast, dtype=float).ravel()
    if a.shape != f.shape:
        raise ValueError(f"actual and forecast differ in length: {a.size} vs {f.size}")
    ok = ~(np.isnan(a) | np.isnan(f))
    if not ok.any():
        raise ValueError("wape: no pair of actual and forecast to compare")
    scale = np.abs(a[ok]).sum()
    if scale == 0:
        raise ValueError("wape is undefined when every actual is 0")
    return float(np.abs(a[ok] - f[ok]).sum() / scale)


def forecast_accuracy(backtest: pd.DataFrame, by_step: bool = False) -> pd.DataFrame:
    """Return the backtest's accuracy: points, WAPE, bias and MAE, overall or per step ahead.

    ``bias`` = Σ(f − a) / Σ|a|: positive when the model over-forecasts. The overall row
    also holds ``total_wape`` and ``total_bias``: the same for the whole horizon's total
    (e.g. 12 weeks), over the origins that have every week of it.
    """
    missing = [c for c in ("origin", "step", "actual", "forecast") if c not in backtest]
    if missing:
        raise ValueError(f"table 'backtest': missing column(s) {', '.join(missing)}")
    if backtest.empty:
        raise ValueError("table 'backtest' is empty: nothing to score")

    def score(df: pd.DataFrame) -> dict:
        a, f = df["actual"].to_numpy(float), df["forecast"].to_numpy(float)
        scale = np.abs(a).sum()
        return {
            "n": len(df),
            "wape": np.abs(f - a).sum() / scale if scale else np.nan,
            "bias": (f - a).sum() / scale if scale else np.nan,
            "mae": np.abs(f - a).mean(),
        }

    if by_step:
        rows = [{"step": int(s), **score(g)} for s, g in backtest.groupby("step")]
        return pd.DataFrame(rows)
    full = backtest.groupby("origin").filter(lambda g: len(g) == backtest["step"].max())
    tot = full.groupby("origin")[["actual", "forecast"]].sum()
    scale = tot["actual"].abs().sum()
    row = {
        "step": "all",
        **score(backtest),
        "horizon": int(backtest["step"].max()),
        "origins": len(tot),
        "total_wape": (tot["forecast"] - tot["actual"]).abs().sum() / scale if scale else np.nan,
        "total_bias": (tot["forecast"] - tot["actual"]).sum() / scale if scale else np.nan,
    }
    return pd.DataFrame([row])


def deviation_flag(wape: float | np.ndarray | pd.Series, tolerance: float = 0.08):
    """Return True where the deviation (e.g. a WAPE) is more than ``tolerance`` (default 8%).

    >>> deviation_flag(0.079), deviation_flag(0.081)
    (False, True)
    """
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a share ≥ 0 (write 8% as 0.08), got {tolerance!r}")
    w = np.asarray(wape, dtype=float)
    if np.isnan(w).any():
        raise ValueError("deviation_flag: the deviation is missing (NaN); score it first")
    flag = np.abs(w).round(12) > tolerance
    if isinstance(wape, pd.Series):
        return pd.Series(flag, index=wape.index, name="flag")
    return bool(flag) if flag.ndim == 0 else flag


def deviation_rate(forecast: pd.DataFrame, weekly: pd.DataFrame | pd.Series, tolerance: float = 0.08) -> pd.DataFrame:
    """Return the forecast deviation rate (预测偏差率) per forecast week where the actual is known.

    deviation_rate = (forecast − actual) / actual (NaN when the actual is 0), with
    ``flag`` when its size passes ``tolerance``; ``cumulative_wape`` is the WAPE of the
    weeks so far. Weeks not yet known have no actual and are left out.
    """
    missing = [c for c in ("week", "forecast") if c not in forecast]
    if missing:
        raise ValueError(f"table 'forecast': missing column(s) {', '.join(missing)}")
    weeks, y = weekly_series(weekly)
    actual = pd.Series(y, index=weeks)
    out = forecast[["week", "step", "forecast"] if "step" in forecast else ["week", "forecast"]].copy()
    out["actual"] = out["week"].map(actual)
    out = out[out["actual"].notna()].reset_index(drop=True)
    if out.empty:
        raise ValueError("deviation_rate: no forecast week has an actual yet (forecast from an earlier as_of)")
    out["deviation"] = out["forecast"] - out["actual"]
    out["deviation_rate"] = out["deviation"] / out["actual"].where(out["actual"] != 0)
    size = out["deviation_rate"].where(out["actual"] != 0, np.where(out["deviation"] != 0, np.inf, 0.0))
    out["flag"] = deviation_flag(size, tolerance).to_numpy()  # a miss on a zero week is always flagged
    abs_err = out["deviation"].abs().cumsum()
    out["cumulative_wape"] = abs_err / out["actual"].abs().cumsum().where(lambda s: s > 0)
    return out


def compare_methods(
    weekly: pd.DataFrame | pd.Series, horizon: int = 12, min_train: int = 26, methods: tuple[str, ...] = METHODS
) -> pd.DataFrame:
    """Return each method's backtest accuracy on the same weeks, best (lowest WAPE) first."""
    rows = [forecast_accuracy(backtest(weekly, horizon, min_train, 1, m)).assign(method=m) for m in methods]
    out = pd.concat(rows, ignore_index=True).drop(columns="step")
    return out[["method"] + [c for c in out if c != "method"]].sort_values("wape", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- a case's forecast
class WeeklyForecast(NamedTuple):
    """A department's weekly won revenue, its backtest and accuracy, and the forecast ahead."""

    weekly: pd.DataFrame
    backtest: pd.DataFrame
    accuracy: pd.DataFrame
    forecast: pd.DataFrame


def weekly_forecast(
    opportunities: pd.DataFrame,
    department: str | None,
    end,
    horizon: int = 12,
    min_train: int = 26,
    method: str = "holt_damped",
) -> WeeklyForecast:
    """Return the department's weekly won revenue up to ``end``, its rolling backtest and accuracy, and the
    ``horizon``-week forecast: :func:`weekly_revenue`, :func:`backtest`, :func:`forecast_accuracy` and
    :func:`rolling_forecast` in one call.

    Raises :class:`NotEnoughData` when the weeks from the first win to ``end`` are too few
    to fit on ``min_train`` weeks and test on at least one more.
    """
    opp = opportunities
    if department is not None and "department" in opp:
        opp = opp[opp["department"] == department]
    won = opp[(opp["status"] == "won") & opp["closed_at"].notna() & opp["amount"].notna()]
    weekly = weekly_revenue(opp, end=end) if len(won) else None
    n = len(weekly) if weekly is not None else 0
    need = max(min_train, MIN_HISTORY) + 1
    if n < need:
        key = "forecast.not_made.one" if n == 1 else "forecast.not_made.many"
        raise NotEnoughData(key, need, n, need=need, min_train=min_train, n=n, end=end)
    bt = backtest(weekly, horizon=horizon, min_train=min_train, method=method)
    return WeeklyForecast(
        weekly, bt, forecast_accuracy(bt), rolling_forecast(weekly, horizon=horizon, method=method, min_train=min_train)
    )


FORECAST_COLUMNS = {
    "week": "datetime64[ns]",
    "step": "int64",
    "forecast": float,
    "lower": float,
    "upper": float,
    "level": float,
    "method": object,
    "origin": "datetime64[ns]",
}
ACCURACY_COLUMNS = {
    "step": object,
    "n": "int64",
    "wape": float,
    "bias": float,
    "mae": float,
    "horizon": "int64",
    "origins": "int64",
    "total_wape": float,
    "total_bias": float,
}


def empty_forecast() -> pd.DataFrame:
    """Return a forecast table with no rows (the columns of :func:`rolling_forecast`)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in FORECAST_COLUMNS.items()})


def empty_accuracy() -> pd.DataFrame:
    """Return an accuracy table with no rows (the columns of :func:`forecast_accuracy`)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in ACCURACY_COLUMNS.items()})


def describe_accuracy(accuracy: pd.DataFrame, lang: str, tolerance: float = 0.08) -> str:
    """State the backtest's accuracy and whether the horizon total passes the tolerance, in ``lang``."""
    a = accuracy.iloc[0]
    flag = bool(deviation_flag(a["total_wape"], tolerance))
    verdict = t("forecast.accuracy.above" if flag else "forecast.accuracy.within", lang)
    return t(
        "forecast.accuracy",
        lang,
        origins=int(a["origins"]),
        wape=a["wape"],
        bias=a["bias"],
        h=int(a["horizon"]),
        total_wape=a["total_wape"],
        tolerance=tolerance,
        verdict=verdict,
    )
