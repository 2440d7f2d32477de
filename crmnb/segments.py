"""Customer value tiers."""

from __future__ import annotations

import numpy as np
import pandas as pd

TIERS = ("high_value", "potential", "low_value")


def customer_value(orders: pd.DataFrame, as_of) -> pd.DataFrame:
    """Return per customer: cumulative spend, orders, repeat share and days since last order, up to ``as_of``.

    A customer's repeat share is the share of their orders that were repeat
    purchases: (orders − 1) / orders.
    """
    o = orders[orders["order_date"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    g = o.groupby("customer_id")
    out = pd.DataFrame({"spend": g["amount"].sum(), "orders": g.size(), "last_order": g["order_date"].max()})
    out["repeat_share"] = (out["orders"] - 1) / out["orders"]
    out["recency_days"] = (pd.Timestamp(as_of) - out["last_order"]).dt.days
    return out.reset_index()


def assign_tiers(value: pd.DataFrame, high_spend: float = 300_000, high_repeat: float = 0.6,
                 potential_spend: float = 100_000, potential_repeat: float = 0.3) -> pd.Series:
    """Return each customer's tier: high value, potential, or low value.

    >>> v = pd.DataFrame({"spend": [350_000, 150_000, 150_000], "repeat_share": [0.7, 0.4, 0.1]})
    >>> assign_tiers(v).tolist()
    ['high_value', 'potential', 'low_value']
    """
    high = (value["spend"] >= high_spend) & (value["repeat_share"] >= high_repeat)
    potential = ~high & (value["spend"] >= potential_spend) & (value["repeat_share"] >= potential_repeat)
    return pd.Series(np.select([high, potential], ["high_value", "potential"], "low_value"), index=value.index)


def tier_summary(value: pd.DataFrame, tiers: pd.Series) -> pd.DataFrame:
    """Return per tier: customers, revenue, revenue share and median recency in days."""
    v = value.assign(tier=tiers)
    g = v.groupby("tier")
    out = pd.DataFrame({"customers": g.size(), "revenue": g["spend"].sum(),
                        "median_recency_days": g["recency_days"].median()}).reindex(TIERS).fillna(0)
    out["customers"] = out["customers"].astype(int)
    out["revenue_share"] = out["revenue"] / out["revenue"].sum() if out["revenue"].sum() else np.nan
    out["customer_share"] = out["customers"] / out["customers"].sum() if out["customers"].sum() else np.nan
    return out.reset_index()
