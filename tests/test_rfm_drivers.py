"""RFM segments, the response-time driver, and the ratio metrics (churn, CAC, LTV)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import drivers, metrics, segments


# --------------------------------------------------------------------------- RFM
def test_quintiles_give_five_equal_groups_and_ties_share_a_score():
    assert segments.quintile_score(pd.Series(range(1, 11))).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert segments.quintile_score(pd.Series([7, 7, 7, 7])).nunique() == 1
    # recency: fewer days is better
    assert segments.quintile_score(pd.Series([1, 100]), higher_is_better=False).tolist() == [5, 1]


def test_segment_map_covers_all_25_score_pairs_with_the_usual_names():
    import re

    names = {}
    for r in range(1, 6):
        for f in range(1, 6):
            hits = [n for p, n in segments.RFM_SEGMENTS if re.fullmatch(p, f"{r}{f}")]
            assert len(hits) == 1, (r, f, hits)
            names[(r, f)] = hits[0]
    assert names[(5, 5)] == "champions" and names[(1, 1)] == "hibernating"
    assert names[(1, 5)] == "cant_lose" and names[(5, 1)] == "new" and names[(3, 3)] == "need_attention"
    assert set(names.values()) == set(segments.SEGMENT_ORDER)


def test_rfm_scores_and_segments_by_hand():
    # ten customers: recency falls and frequency/spend rise with the index, so #9 is best on every axis
    value = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(10)],
            "recency_days": [300 - 30 * i for i in range(10)],
            "orders": [1 + i for i in range(10)],
            "spend": [1000.0 * (i + 1) for i in range(10)],
        }
    )
    got = segments.rfm(value).set_index("customer_id")
    assert got.loc["C9", ["r", "f", "m"]].tolist() == [5, 5, 5] and got.loc["C9", "segment"] == "champions"
    assert got.loc["C0", ["r", "f", "m"]].tolist() == [1, 1, 1] and got.loc["C0", "segment"] == "hibernating"
    summary = segments.segment_summary(got.reset_index())
    assert summary["customers"].sum() == 10
    assert summary["revenue_share"].sum() == pytest.approx(1.0)
    champions = summary.set_index("segment").loc["champions"]
    assert champions["revenue"] == 9000 + 10000 and champions["median_recency_days"] == (60 + 30) / 2


# --------------------------------------------------------------------------- drivers
def _leads(hours, won):
    created = pd.Timestamp("2025-07-01")
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(len(hours))],
            "created_at": created,
            "first_contact_at": [created + pd.Timedelta(hours=h) if h is not None else pd.NaT for h in hours],
        }
    )
    opps = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i, w in enumerate(won) if w],
            "status": "won",
            "closed_at": created + pd.Timedelta(days=30),
        }
    )
    return leads, opps


def test_response_buckets_count_and_rate_by_hand():
    leads, opps = _leads([1, 2, 5, 30, 80, None], [True, False, True, False, False, False])
    rc = drivers.response_conversion(leads, opps)
    assert len(rc) == 5, "a lead never contacted has no response time"
    b = drivers.by_response_bucket(rc).set_index("bucket")
    assert b.loc["< 4 h", "leads"] == 2 and b.loc["< 4 h", "conversion_rate"] == 0.5
    assert b.loc["4–12 h", "conversion_rate"] == 1.0
    assert b.loc["1–2 days", "leads"] == 1 and b.loc["> 3 days", "converted"] == 0
    assert b.loc["12–24 h", "leads"] == 0 and np.isnan(b.loc["12–24 h", "conversion_rate"])


def test_win_outside_the_conversion_window_does_not_count():
    leads, opps = _leads([1], [True])
    opps["closed_at"] = pd.Timestamp("2025-07-01") + pd.Timedelta(days=91)
    assert drivers.response_conversion(leads, opps, conversion_window_days=90)["converted"].tolist() == [0.0]


def test_slope_recovers_a_known_effect_with_an_interval():
    rng = np.random.default_rng(0)
    days = rng.uniform(0, 4, 4000)
    converted = rng.random(4000) < (0.40 - 0.08 * days)  # 8 pp less per day of delay
    rc = pd.DataFrame({"response_hours": days * 24, "converted": converted.astype(float)})
    s = drivers.response_slope(rc)
    assert s.ci_low < 0.08 < s.ci_high and s.ci_low > 0
    assert drivers.slope_sentence(s, "en").startswith("Each day faster first response goes with +")


def test_slope_needs_enough_varied_leads():
    with pytest.raises(ValueError, match="at least 10 contacted leads"):
        drivers.response_slope(pd.DataFrame({"response_hours": [5.0] * 20, "converted": [1.0] * 20}))


# --------------------------------------------------------------------------- ratio metrics
def _tables():
    t = {
        "customers": pd.DataFrame({"customer_id": ["A", "B", "C"], "department": "D1", "owner_rep": "r1"}),
        "orders": pd.DataFrame(
            {
                "customer_id": ["A", "A", "B", "C", "A"],
                "department": "D1",
                "order_date": pd.to_datetime(["2024-03-01", "2024-09-01", "2024-10-01", "2024-11-01", "2025-02-01"]),
                "amount": [100.0, 100.0, 200.0, 300.0, 100.0],
            }
        ),
        "campaigns": pd.DataFrame(
            {
                "campaign_id": ["K"],
                "spend": [3100.0],
                "start_date": pd.to_datetime(["2025-01-01"]),
                "end_date": pd.to_datetime(["2025-01-31"]),
            }
        ),
        "leads": pd.DataFrame({"lead_id": ["L1", "L2"], "campaign_id": ["K", "K"], "department": ["D1", "D2"]}),
        "opportunities": pd.DataFrame(
            {
                "lead_id": ["L1", "L2"],
                "status": ["won", "won"],
                "department": ["D1", "D2"],
                "closed_at": pd.to_datetime(["2025-01-10", "2025-01-20"]),
            }
        ),
    }
    return t


def test_churn_rate_by_hand():
    # bought in the year before 2025-01-01: A, B, C; bought in Jan-Mar 2025: A only
    got = metrics.compute("churn_rate", _tables(), "2025-01-01", "2025-03-31")
    assert got["value"].iloc[0] == pytest.approx(2 / 3) and got["n"].iloc[0] == 3


def test_cac_pro_rata_spend_over_customers_won():
    t = _tables()
    # all of January's 3,100 spend over the 2 customers won from leads
    assert metrics.value("cac", t, "2025-01-01", "2025-01-31") == pytest.approx(1550.0)
    # 15 of the campaign's 31 days fall in 1-15 January, and one customer was won then
    assert metrics.value("cac", t, "2025-01-01", "2025-01-15") == pytest.approx(3100 * 15 / 31)
    # one department: half the campaign's leads, one customer
    assert metrics.value("cac", t, "2025-01-01", "2025-01-31", department="D1") == pytest.approx(1550.0)


def test_ratio_metrics_refuse_a_per_rep_breakdown():
    with pytest.raises(ValueError, match="ratio of totals and cannot be broken down by 'owner_rep'"):
        metrics.compute("cac", _tables(), "2025-01-01", "2025-01-31", by="owner_rep")


def test_segment_breakdown_uses_the_given_segments():
    t = _tables()
    extra = pd.DataFrame({"customer_id": ["A"], "department": "D1", "order_date": [pd.Timestamp("2024-08-01")]})
    t["orders"] = pd.concat([t["orders"], extra.assign(amount=100.0)], ignore_index=True)
    seg = pd.Series({"A": "loyal", "B": "new"})
    # September to December: A's September order comes 31 days after August's, B and C buy once
    got = metrics.compute("repeat_purchase_rate", t, "2024-09-01", "2024-12-31", by="segment", segments=seg)
    got = got.set_index("segment")
    assert got.loc["loyal", "value"] == 1.0 and got.loc["new", "value"] == 0.0
    assert got.loc["unassigned", "n"] == 1  # C has no segment
    with pytest.raises(ValueError, match="needs segments"):
        metrics.compute("repeat_purchase_rate", t, "2024-01-01", "2024-12-31", by="segment")
