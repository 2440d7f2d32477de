"""crmnb.analysis.segments: customer value and the three value tiers of the method."""

from __future__ import annotations

import pandas as pd
import pytest

from crmnb.analysis.segments import TIERS, assign_tiers, customer_value, tier_summary

T = pd.Timestamp


def values(rows: list[tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame({"spend": [r[0] for r in rows], "repeat_share": [r[1] for r in rows]})


def test_tiers_with_the_method_defaults_boundaries_included():
    v = values(
        [
            (300_000, 0.60),  # high: both thresholds met exactly
            (1_000_000, 0.59),  # spends a lot, repeats too little for high: potential
            (299_999, 0.90),  # repeats a lot, spends just too little for high: potential
            (100_000, 0.30),  # potential: both thresholds met exactly
            (99_999, 0.90),  # low: spend below 100k
            (150_000, 0.29),  # low: repeat share below 0.3
            (0, 0.0),  # low
        ]
    )
    assert assign_tiers(v).tolist() == [
        "high_value",
        "potential",
        "potential",
        "potential",
        "low_value",
        "low_value",
        "low_value",
    ]


def test_tiers_with_changed_thresholds():
    v = values([(60_000, 0.5), (60_000, 0.2), (20_000, 0.2), (19_999, 0.9)])
    tiers = assign_tiers(v, high_spend=50_000, high_repeat=0.5, potential_spend=20_000, potential_repeat=0.2)
    assert tiers.tolist() == ["high_value", "potential", "potential", "low_value"]
    # the same customers under the defaults are all low value
    assert set(assign_tiers(v)) == {"low_value"}


def test_tiers_keep_the_index():
    v = values([(400_000, 0.8), (1, 0)]).set_axis(["C7", "C9"])
    assert assign_tiers(v).to_dict() == {"C7": "high_value", "C9": "low_value"}


def orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C1", "C2", "C3", "C2"],
            "order_date": [
                T("2025-01-10"),
                T("2025-06-01"),
                T("2025-12-31 18:00"),
                T("2025-11-30"),
                T("2026-01-01"),
                T("2026-02-01"),
            ],
            "amount": [100_000.0, 150_000.0, 100_000.0, 50_000.0, 999_999.0, 999_999.0],
        }
    )


def test_customer_value_up_to_as_of_inclusive():
    v = customer_value(orders(), "2025-12-31").set_index("customer_id")
    assert sorted(v.index) == ["C1", "C2"]  # C3 only bought after as_of
    assert v.loc["C1", "spend"] == 350_000 and v.loc["C1", "orders"] == 3
    assert v.loc["C1", "repeat_share"] == pytest.approx(2 / 3)
    assert v.loc["C1", "last_order"] == T("2025-12-31 18:00")
    assert v.loc["C2", "spend"] == 50_000 and v.loc["C2", "repeat_share"] == 0.0
    assert v.loc["C2", "recency_days"] == 31
    assert v.loc["C1", "recency_days"] == 0  # bought on the as-of day itself, late in the day


def test_tier_summary():
    v = customer_value(orders(), "2025-12-31")
    s = tier_summary(v, assign_tiers(v)).set_index("tier")
    assert s.index.tolist() == list(TIERS)  # every tier listed, even an empty one
    assert s["customers"].to_dict() == {"high_value": 1, "potential": 0, "low_value": 1}
    assert s["revenue"].to_dict() == {"high_value": 350_000, "potential": 0, "low_value": 50_000}
    assert s.loc["high_value", "revenue_share"] == pytest.approx(350 / 400)
    assert s.loc["low_value", "customer_share"] == pytest.approx(0.5)
    assert s.loc["low_value", "median_recency_days"] == 31


def test_tier_summary_of_no_customers_is_all_zero_not_an_error():
    v = customer_value(orders(), "2024-12-31")  # before any order
    assert v.empty
    s = tier_summary(v, assign_tiers(v))
    assert s["customers"].tolist() == [0, 0, 0]
    assert s["revenue_share"].isna().all()
