"""Drivers: how an outcome moves with what the team controls, stated with its uncertainty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crmnb.analysis.metrics import converted_within
from crmnb.errors import NotEnoughData
from crmnb.present.words import t

RESPONSE_BUCKETS: tuple[tuple[float, float, str], ...] = (
    (0, 4, "< 4 h"),
    (4, 12, "4–12 h"),
    (12, 24, "12–24 h"),
    (24, 48, "1–2 days"),
    (48, 72, "2–3 days"),
    (72, np.inf, "> 3 days"),
)
"""Response-time buckets, in hours: lower bound included, upper excluded."""


def response_conversion(
    leads: pd.DataFrame, opportunities: pd.DataFrame, conversion_window_days: int = 90
) -> pd.DataFrame:
    """Return one row per contacted lead: response hours and whether it was won within the window."""
    converted = converted_within(leads, opportunities, conversion_window_days)
    hours = (leads["first_contact_at"] - leads["created_at"]).dt.total_seconds() / 3600
    out = pd.DataFrame(
        {
            "lead_id": leads["lead_id"].to_numpy(),
            "response_hours": hours.to_numpy(),
            "converted": converted.to_numpy().astype(float),
        }
    )
    return out[out["response_hours"].notna() & (out["response_hours"] >= 0)].reset_index(drop=True)


def by_response_bucket(rc: pd.DataFrame) -> pd.DataFrame:
    """Return conversion per response-time bucket: leads, converted, rate and its 95% Wilson interval.

    >>> rc = pd.DataFrame({"response_hours": [1, 2, 30, 31], "converted": [1.0, 0.0, 0.0, 0.0]})
    >>> by_response_bucket(rc)[["bucket", "leads", "conversion_rate"]].head(1).values.tolist()
    [['< 4 h', 2, 0.5]]
    """
    edges = [b[0] for b in RESPONSE_BUCKETS] + [np.inf]
    labels = [b[2] for b in RESPONSE_BUCKETS]
    cut = pd.cut(rc["response_hours"], edges, right=False, labels=labels)
    g = rc.groupby(cut, observed=False)["converted"]
    out = pd.DataFrame({"leads": g.size(), "converted": g.sum()}).reset_index(names="bucket")
    out["conversion_rate"] = out["converted"] / out["leads"].where(out["leads"] > 0)
    lo, hi = wilson(out["converted"].to_numpy(), out["leads"].to_numpy())
    out["ci_low"], out["ci_high"] = lo, hi
    out["bucket"] = out["bucket"].astype(str)
    out["converted"] = out["converted"].astype(int)
    return out


def wilson(k: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Return the Wilson score interval of k successes in n trials (NaN where n is 0)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@dataclass(frozen=True)
class Slope:
    """A linear slope with its 95% interval."""

    per_unit: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


def response_slope(rc: pd.DataFrame, cap_hours: float = 120.0) -> Slope:
    """Return the change in conversion (as a share) per day *faster* first response.

    A linear probability model of converted on response days (capped at ``cap_hours``
    so a few forgotten leads do not set the slope), with heteroskedasticity-robust
    (HC1) standard errors.
    """
    x = np.minimum(rc["response_hours"].to_numpy(float), cap_hours) / 24.0
    y = rc["converted"].to_numpy(float)
    n = len(x)
    if n < 10 or np.ptp(x) == 0:
        raise NotEnoughData("drivers.no_slope.same" if n >= 10 else "drivers.no_slope", 10, n, n=n)
    X = np.column_stack([np.ones(n), x])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    meat = (X * resid[:, None] ** 2).T @ X
    cov = bread @ meat @ bread * n / (n - 2)
    se = float(np.sqrt(cov[1, 1]))
    faster = -float(beta[1])  # one day *faster* is minus one day of response
    z = stats.norm.ppf(0.975)
    p = float(2 * stats.norm.sf(abs(faster) / se)) if se > 0 else float("nan")
    return Slope(faster, faster - z * se, faster + z * se, p, n)


def slope_record(s: Slope | None, gap: NotEnoughData | None, lang: str) -> dict:
    """Return the slope as step 5 hands it on: its figures and the sentence, or, when it could not be
    estimated, empty figures and the reason (``gap``, a :class:`crmnb.errors.NotEnoughData`)."""
    if s is None:
        return {
            "per_unit": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "n": getattr(gap, "found", None),
            "sentence": gap.say(lang) if gap is not None else "",
        }
    return {**s.__dict__, "sentence": slope_sentence(s, lang)}


def slope_sentence(s: Slope, lang: str) -> str:
    """State the slope as a sentence a manager reads, in ``lang``.

    >>> slope_sentence(Slope(0.031, 0.02, 0.042, 0.0001, 500), "en")
    'Each day faster first response goes with +3.1 pp conversion (95% CI +2.0 to +4.2 pp; 500 leads).'
    """
    return t("drivers.slope", lang, per_unit=s.per_unit * 100, ci_low=s.ci_low * 100, ci_high=s.ci_high * 100, n=s.n)
