"""Customer value tiers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

TIERS = ("high_value", "potential", "low_value")


def cents(amount) -> pd.Series | int:
    """Return money as whole cents (int64), so that sums and comparisons are exact to the cent; a missing
    amount counts as 0, as it does in a sum.

    >>> cents(pd.Series([299_999.7, 0.1, 0.1, 0.1])).sum(), cents(300_000)
    (np.int64(30000000), 30000000)
    """
    if np.isscalar(amount):
        return int(round(float(amount) * 100))
    return np.round(pd.Series(amount, dtype=float).fillna(0) * 100).astype("int64")


def customer_value(orders: pd.DataFrame, as_of) -> pd.DataFrame:
    """Return per customer: cumulative spend, orders, repeat share and days since last order, up to ``as_of``.

    A customer's repeat share is the share of their orders that were repeat
    purchases: (orders − 1) / orders.
    """
    o = orders[orders["order_date"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    o = o.assign(_cents=cents(o["amount"]))
    g = o.groupby("customer_id")
    spend = g["_cents"].sum() / 100  # summed in whole cents: 299,999.70 + 3 × 0.10 is exactly 300,000.00
    out = pd.DataFrame({"spend": spend, "orders": g.size(), "last_order": g["order_date"].max()})
    out["repeat_share"] = (out["orders"] - 1) / out["orders"]
    # calendar days: an order later on the as-of day itself is 0 days ago, not -1
    out["recency_days"] = (pd.Timestamp(as_of).normalize() - out["last_order"].dt.normalize()).dt.days
    return out.reset_index()


def assign_tiers(
    value: pd.DataFrame,
    high_spend: float = 300_000,
    high_repeat: float = 0.6,
    potential_spend: float = 100_000,
    potential_repeat: float = 0.3,
) -> pd.Series:
    """Return each customer's tier: high value, potential, or low value.

    >>> v = pd.DataFrame({"spend": [350_000, 150_000, 150_000], "repeat_share": [0.7, 0.4, 0.1]})
    >>> assign_tiers(v).tolist()
    ['high_value', 'potential', 'low_value']
    """
    spend = cents(value["spend"])  # money compared at cent precision, not in floating point
    high = (spend >= cents(high_spend)) & (value["repeat_share"] >= high_repeat)
    potential = ~high & (spend >= cents(potential_spend)) & (value["repeat_share"] >= potential_repeat)
    return pd.Series(np.select([high, potential], ["high_value", "potential"], "low_value"), index=value.index)


def tier_summary(value: pd.DataFrame, tiers: pd.Series) -> pd.DataFrame:
    """Return per tier: customers, revenue, revenue share and median recency in days."""
    v = value.assign(tier=tiers)
    g = v.groupby("tier")
    out = (
        pd.DataFrame(
            {"customers": g.size(), "revenue": g["spend"].sum(), "median_recency_days": g["recency_days"].median()}
        )
        .reindex(TIERS)
        .fillna(0)
    )
    out["customers"] = out["customers"].astype(int)
    out["revenue_share"] = out["revenue"] / out["revenue"].sum() if out["revenue"].sum() else np.nan
    out["customer_share"] = out["customers"] / out["customers"].sum() if out["customers"].sum() else np.nan
    return out.reset_index()


# --------------------------------------------------------------------------- RFM
RFM_SEGMENTS: tuple[tuple[str, str], ...] = (
    (r"[1-2][1-2]", "hibernating"),
    (r"[1-2][3-4]", "at_risk"),
    (r"[1-2]5", "cant_lose"),
    (r"3[1-2]", "about_to_sleep"),
    (r"33", "need_attention"),
    (r"[3-4][4-5]", "loyal"),
    (r"41", "promising"),
    (r"51", "new"),
    (r"[4-5][2-3]", "potential_loyalists"),
    (r"5[4-5]", "champions"),
)
"""The usual RFM segment map on (recency score, frequency score); it covers all 25 pairs."""


def _segment_table() -> np.ndarray:
    """Return the segment of each (R, F) pair, 1–5 each, as a 6 × 6 table: the first pattern that matches."""
    table = np.full((6, 6), None, dtype=object)
    for r in range(1, 6):
        for f in range(1, 6):
            table[r, f] = next((name for pattern, name in RFM_SEGMENTS if re.fullmatch(pattern, f"{r}{f}")), None)
    return table


_SEGMENT_OF = _segment_table()
"""The segment of each (R, F) pair, looked up per customer rather than matched 10 patterns × customers."""

SEGMENT_ORDER = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
)


def _band_scores(counts: np.ndarray, k: int = 5) -> np.ndarray:
    """Return a score 1..``k`` for each tie group (groups in ascending order, ``counts`` customers each).

    Whole tie groups fill the bands from the bottom: each band takes groups while that brings it
    nearer an equal share of the customers not yet placed, and leaves a group for every band above it.
    With ``k`` groups or fewer the groups spread over 1..k (lowest 1, highest k); one group scores
    the middle.

    >>> _band_scores(np.array([5, 2, 1, 1, 1, 1])).tolist()
    [1, 2, 3, 4, 4, 5]
    >>> _band_scores(np.array([6, 3, 1])).tolist(), _band_scores(np.array([4])).tolist()
    ([1, 3, 5], [3])
    """
    g = len(counts)
    if g <= k:
        return np.rint(1 + (k - 1) * np.arange(g) / (g - 1)).astype(int) if g > 1 else np.full(g, (k + 1) // 2)
    scores = np.empty(g, dtype=int)
    i = 0
    for s in range(1, k + 1):
        bands_left = k - s + 1
        target = counts[i:].sum() / bands_left
        j, got = i + 1, counts[i]
        last = g if s == k else g - (bands_left - 1)
        while j < last and (s == k or abs(got + counts[j] - target) <= abs(got - target)):
            got += counts[j]
            j += 1
        scores[i:j] = s
        i = j
    return scores


def quintile_score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Return 1–5 scores (5 best) in five bands of about equal size that keep ties together.

    Equal values share a score, and whole tie groups fill the bands from the worst up
    (:func:`_band_scores`), so the worst value always scores 1 and the best 5 even when one value
    holds most customers: with over 40% of customers on one order, one order is F = 1 (average-rank
    quintiles gave it 2 or 3, and "new" and "promising" could never be assigned).

    >>> quintile_score(pd.Series([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).tolist()
    [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    >>> quintile_score(pd.Series([1, 1, 1, 1, 1, 2, 2, 3, 4, 7])).tolist()
    [1, 1, 1, 1, 1, 2, 2, 3, 4, 5]
    """
    v = values.to_numpy(dtype=float)
    _, inverse, counts = np.unique(v if higher_is_better else -v, return_inverse=True, return_counts=True)
    return pd.Series(_band_scores(counts)[inverse], index=values.index)


def rfm(value: pd.DataFrame) -> pd.DataFrame:
    """Return R, F and M scores (tie-aware quintiles, :func:`quintile_score`) and the named segment for each
    customer.

    ``value`` comes from :func:`customer_value` (recency_days, orders, spend). Recent,
    frequent, high-spending customers score 5.
    """
    out = value.copy()
    out["r"] = quintile_score(out["recency_days"], higher_is_better=False)
    out["f"] = quintile_score(out["orders"])
    out["m"] = quintile_score(out["spend"])
    rf = out["r"].astype(str) + out["f"].astype(str)
    out["segment"] = pd.Series(_SEGMENT_OF[out["r"].to_numpy(), out["f"].to_numpy()], index=out.index, dtype=object)
    out["rfm"] = rf + out["m"].astype(str)
    return out


def segment_summary(scored: pd.DataFrame, by: str = "segment", order: tuple[str, ...] = SEGMENT_ORDER) -> pd.DataFrame:
    """Return per segment: customers, revenue, revenue share, median recency and average orders."""
    g = scored.groupby(by)
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "revenue": g["spend"].sum(),
            "median_recency_days": g["recency_days"].median(),
            "avg_orders": g["orders"].mean(),
        }
    )
    out = out.reindex([s for s in order if s in out.index])
    total = out["revenue"].sum()
    out["revenue_share"] = out["revenue"] / total if total else np.nan
    out["customer_share"] = out["customers"] / out["customers"].sum()
    return out.reset_index(names=by)
