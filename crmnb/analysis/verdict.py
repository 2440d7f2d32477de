"""The goal's verdict with its uncertainty: the after-window level and its 95% interval against the target.

The level's interval is measured as Table 2 measures the metric: Wilson's score interval for a rate
(Table 2's test and Newcombe interval are built on it), a percentile bootstrap of the mean for hours,
days, money and scores (normal above 20,000 units, where Table 2 switches to Welch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from crmnb.analysis.compare import wilson

VERDICTS = ("reached", "on_track", "not_reached", "wrong_way", "not_measured")
"""Every verdict, best first: the interval clears the target; it includes the target (within the margin of
error); it falls short of it; the level moved significantly against the goal's direction; nothing to judge."""


@dataclass(frozen=True)
class Level:
    """A metric's level in a window with its 95% interval and the number of units it rests on."""

    value: float
    low: float
    high: float
    n: int


def rate_level(k: float, n: float) -> Level:
    """Return a rate's level ``k``/``n`` with its Wilson 95% interval.

    >>> lv = rate_level(201, 1000)
    >>> round(lv.value, 3), round(lv.low, 4), round(lv.high, 4)
    (0.201, 0.1773, 0.227)
    """
    if n <= 0:
        return Level(float("nan"), float("nan"), float("nan"), 0)
    low, high = wilson(k, n)
    return Level(k / n, low, high, int(n))


def mean_level(values, n_boot: int = 2000, seed: int = 0) -> Level:
    """Return the mean of ``values`` with a percentile bootstrap 95% interval (normal above 20,000 values).

    >>> lv = mean_level([10.0] * 50)
    >>> lv.value, lv.low, lv.high, lv.n
    (10.0, 10.0, 10.0, 50)
    """
    x = np.asarray(values, float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return Level(float("nan"), float("nan"), float("nan"), 0)
    mean = float(x.mean())
    if len(x) == 1:
        return Level(mean, float("nan"), float("nan"), 1)
    if len(x) > 20_000:  # as Table 2: the bootstrap and the normal interval agree at this size
        half = stats.norm.ppf(0.975) * x.std(ddof=1) / np.sqrt(len(x))
        return Level(mean, mean - half, mean + half, len(x))
    rng = np.random.default_rng(seed)
    boots = rng.choice(x, (n_boot, len(x))).mean(axis=1) if len(x) * n_boot <= 5e7 else _boot_loop(x, n_boot, rng)
    low, high = np.percentile(boots, [2.5, 97.5])
    return Level(mean, float(low), float(high), len(x))


def _boot_loop(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Return bootstrap means one resample at a time (large samples: bounded memory)."""
    return np.array([rng.choice(x, len(x)).mean() for _ in range(n_boot)])


def judge(level: Level, target: float, higher_is_better: bool, change_low: float, change_high: float) -> str:
    """Return the verdict of a goal (one of :data:`VERDICTS`) from the after-window level and its interval,
    the target, the goal's direction, and the 95% interval of the change from the before window.

    >>> judge(Level(0.201, 0.177, 0.227, 1000), 0.20, True, 0.01, 0.08)
    'on_track'
    >>> judge(Level(0.26, 0.233, 0.288, 1000), 0.20, True, 0.05, 0.12)
    'reached'
    >>> judge(Level(0.14, 0.12, 0.16, 1000), 0.20, True, -0.06, -0.01)
    'wrong_way'
    >>> judge(Level(0.16, 0.14, 0.18, 1000), 0.20, True, -0.01, 0.04)
    'not_reached'
    """
    if not np.isfinite(level.value):
        return "not_measured"
    low, high = (level.low, level.high) if np.isfinite(level.low) else (level.value, level.value)
    if (low > target) if higher_is_better else (high < target):
        return "reached"
    against = (change_high < 0) if higher_is_better else (change_low > 0)
    if np.isfinite(change_low) and np.isfinite(change_high) and against:
        return "wrong_way"
    if low <= target <= high:
        return "on_track"
    return "not_reached"
