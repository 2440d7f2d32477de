"""The demo's calendar: seconds since 1970 as int64, the export window, quarters, office hours.

Every moment in the generator is an int64 count of seconds; :data:`NAT` marks a missing one.
"""

from __future__ import annotations

import numpy as np

DAY = 86_400
HOUR = 3_600
MONTH = int(30.4375 * DAY)
NAT = np.iinfo(np.int64).min
"""Missing timestamp in the int64-seconds arrays used throughout."""
NEVER = np.iinfo(np.int64).max
"""A moment after every other (a customer who never churns)."""


def ts(text: str) -> int:
    """Return seconds since 1970-01-01 for an ISO date(time) string."""
    return int(np.datetime64(text, "s").astype(np.int64))


HISTORY_START = ts("2021-01-01")
START = ts("2024-01-01")
EXPORT_END = ts("2026-04-01") - 1  # 2026-03-31 23:59:59
QUARTER_STARTS = tuple(
    ts(s)
    for s in (
        "2024-01-01",
        "2024-04-01",
        "2024-07-01",
        "2024-10-01",
        "2025-01-01",
        "2025-04-01",
        "2025-07-01",
        "2025-10-01",
        "2026-01-01",
        "2026-04-01",
    )
)
Q3_2025, Q4_2025 = 6, 7  # indices into QUARTER_STARTS


def days(rng: np.random.Generator, lo: int, hi: int, n: int, weekend: float = 0.3) -> np.ndarray:
    """Return ``n`` random midnights in [lo, hi), weekends less likely."""
    day = np.arange(lo // DAY, -(-hi // DAY), dtype=np.int64)
    w = np.where((day + 3) % 7 >= 5, weekend, 1.0)
    return rng.choice(day, size=n, p=w / w.sum()) * DAY


def office_time(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return ``n`` times of day in seconds, mostly office hours."""
    h = np.where(rng.random(n) < 0.5, rng.normal(10.2, 1.3, n), rng.normal(15.3, 1.8, n))
    odd = (h < 7.5) | (h > 22.0)
    h = np.where(odd, rng.uniform(8.5, 18.0, n), h)
    return (h * HOUR).astype(np.int64)


def snap(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Return each moment moved to an office time on the same day."""
    return t // DAY * DAY + office_time(rng, len(t))


def gamma_seconds(rng: np.random.Generator, mean_days: float, shape: float, n: int) -> np.ndarray:
    """Return gamma-distributed durations in seconds."""
    return (rng.gamma(shape, mean_days / shape, n) * DAY).astype(np.int64)
