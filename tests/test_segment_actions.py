"""Tests of crmnb.analysis.segment_actions: every RFM segment and value tier carries its treatment."""

import pandas as pd
import pytest

from crmnb.analysis import segment_actions as sa
from crmnb.analysis import segments


def _summaries() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Six customers scored by hand: two champions, one at risk, three hibernating; tiers from spend."""
    value = pd.DataFrame(
        {
            "customer_id": list("ABCDEF"),
            "spend": [400_000.0, 350_000.0, 120_000.0, 5_000.0, 2_000.0, 1_000.0],
            "repeat_share": [0.8, 0.7, 0.4, 0.0, 0.0, 0.0],
            "recency_days": [3, 5, 200, 300, 320, 400],
            "orders": [10, 8, 3, 1, 1, 1],
        }
    )
    scored = value.assign(segment=["champions", "champions", "at_risk", "hibernating", "hibernating", "hibernating"])
    tiers = segments.tier_summary(value, segments.assign_tiers(value))
    return segments.segment_summary(scored), tiers


def test_every_segment_and_tier_has_a_treatment_in_both_languages():
    assert set(segments.SEGMENT_ORDER) <= set(sa.ACTIONS)
    assert set(segments.TIERS) <= set(sa.ACTIONS)
    seg, tiers = _summaries()
    out = sa.segment_actions(seg, tiers, "en")
    assert (out["treatment_id"] != "none").all()
    assert out["treatment_en"].str.len().gt(10).all() and out["treatment_zh"].str.len().gt(5).all()
    assert out["treatment_zh"].str.contains("[\u4e00-\u9fff]").all()


def test_counts_and_revenue_come_from_the_summaries():
    seg, tiers = _summaries()
    out = sa.segment_actions(seg, tiers, "zh").set_index("group_id")
    assert out.loc["champions", "customers"] == 2
    assert out.loc["champions", "revenue"] == pytest.approx(750_000.0)
    assert out.loc["champions", "revenue_share"] == pytest.approx(750_000 / 878_000)
    assert out.loc["high_value", "customers"] == 2 and out.loc["potential", "customers"] == 1
    assert out.loc["low_value", "revenue"] == pytest.approx(8_000.0)
    assert out.loc["at_risk", "treatment_id"] == "win_back"
    assert out.loc["high_value", "treatment_id"] == "vip_service"
    assert out.loc["potential", "treatment_id"] == "targeted_campaign"
    assert out.loc["at_risk", "treatment"].startswith("流失挽回")
    assert out.loc["at_risk", "group_name"] != "at_risk"  # worded in Chinese


def test_sentences_name_the_biggest_groups_and_say_when_there_are_none():
    seg, tiers = _summaries()
    lines = sa.plan_rows(sa.segment_actions(seg, tiers, "en"), "en")
    # VIP service first (high value tier: 750,000 CNY, as many as the champions), then win-back, then campaigns
    assert len(lines) == 3 and "750,000 CNY" in lines[0] and "VIP service" in lines[0]
    assert "at risk" in lines[1] and "Win-back" in lines[1] and "Targeted campaigns" in lines[2]
    empty = sa.segment_actions(seg.iloc[:0], tiers.iloc[:0], "en")
    assert sa.plan_rows(empty, "en") == ["No treatments: the case has no customers with orders to segment."]
