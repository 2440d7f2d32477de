"""crmnb.analysis.funnel: stage counts, conversion, dwell time and loss reasons of a cohort of leads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis.funnel import conversion_table, funnel
from crmnb.intake.schema import FUNNEL_STAGES

T = pd.Timestamp
NaT = pd.NaT


# --------------------------------------------------------------------------- the worked example
def test_conversion_table_reproduces_the_worked_example():
    stages = list(FUNNEL_STAGES)
    t = conversion_table(stages, [1000, 800, 500, 300, 180, 108])
    assert t["stage"].tolist() == stages
    assert t["entered"].tolist() == [1000, 800, 500, 300, 180, 108]
    assert t["converted"].iloc[:5].tolist() == [800, 500, 300, 180, 108]
    assert pd.isna(t["converted"].iloc[5])
    rates = t["conversion_rate"].tolist()
    assert rates[:5] == pytest.approx([0.80, 0.625, 0.60, 0.60, 0.60])
    assert np.isnan(rates[5])  # nothing after 'won'
    assert t["overall_rate"].tolist() == pytest.approx([1.0, 0.8, 0.5, 0.3, 0.18, 0.108])


def test_conversion_table_refuses_a_growing_funnel():
    with pytest.raises(ValueError, match="cannot grow"):
        conversion_table(["lead", "first_contact", "won"], [100, 120, 10])


def test_conversion_table_refuses_mismatched_lengths():
    with pytest.raises(ValueError):
        conversion_table(["lead", "won"], [100, 50, 10])


def test_conversion_table_with_an_empty_stage():
    t = conversion_table(["lead", "first_contact", "won"], [10, 0, 0])
    assert t["conversion_rate"].iloc[0] == 0.0
    assert np.isnan(t["conversion_rate"].iloc[1])  # nobody entered: no rate, not a division error


# --------------------------------------------------------------------------- a small cohort
def leads_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4", "L5"],
            "created_at": [T("2025-03-01"), T("2025-03-01"), T("2025-03-01"), T("2025-03-01"), T("2025-03-01")],
            "first_contact_at": [T("2025-03-02"), T("2025-03-03"), T("2025-03-04"), T("2025-03-03"), NaT],
        }
    )


def opps_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3"],
            "lead_id": ["L1", "L2", "L3"],
            "created_at": [T("2025-03-05"), T("2025-03-05"), T("2025-03-06")],
            "status": ["won", "lost", "lost"],
            "loss_reason": [None, "price", "unclear_needs"],
        }
    )


def history_frame() -> pd.DataFrame:
    rows = [
        # O1: 4 days in needs_confirmed, 10 in proposal, 15 in negotiation, then won
        ("O1", "needs_confirmed", "2025-03-05", "2025-03-09"),
        ("O1", "proposal", "2025-03-09", "2025-03-19"),
        ("O1", "negotiation", "2025-03-19", "2025-04-03"),
        ("O1", "won", "2025-04-03", None),
        # O2: 8 days in needs_confirmed, 20 in proposal, lost there (price)
        ("O2", "needs_confirmed", "2025-03-05", "2025-03-13"),
        ("O2", "proposal", "2025-03-13", "2025-04-02"),
        ("O2", "lost", "2025-04-02", None),
        # O3: 12 days in needs_confirmed, lost there (unclear needs)
        ("O3", "needs_confirmed", "2025-03-06", "2025-03-18"),
        ("O3", "lost", "2025-03-18", None),
    ]
    return pd.DataFrame(
        {
            "opportunity_id": [r[0] for r in rows],
            "stage": [r[1] for r in rows],
            "entered_at": [T(r[2]) for r in rows],
            "exited_at": [T(r[3]) if r[3] else NaT for r in rows],
        }
    )


BENCH = {"needs_confirmed": 10.0, "proposal": 12.0, "negotiation": 15.0}


def cohort_funnel(**kw) -> pd.DataFrame:
    return funnel(leads_frame(), opps_frame(), history_frame(), **kw).set_index("stage")


def test_funnel_entered_per_stage():
    f = cohort_funnel()
    assert f.index.tolist() == list(FUNNEL_STAGES)
    assert f["entered"].tolist() == [5, 4, 3, 2, 1, 1]
    assert f["conversion_rate"].iloc[:5].tolist() == pytest.approx([4 / 5, 3 / 4, 2 / 3, 1 / 2, 1 / 1])


def test_funnel_dwell_days_per_stage():
    f = cohort_funnel()
    # lead → first contact: 1, 2, 3, 2 days
    assert f.loc["lead", "avg_dwell_days"] == pytest.approx(2.0)
    # first contact → first opportunity: L1 3 days, L2 2 days, L3 2 days
    assert f.loc["first_contact", "avg_dwell_days"] == pytest.approx(7 / 3)
    assert f.loc["needs_confirmed", "avg_dwell_days"] == pytest.approx((4 + 8 + 12) / 3)
    assert f.loc["needs_confirmed", "median_dwell_days"] == pytest.approx(8.0)
    assert f.loc["proposal", "avg_dwell_days"] == pytest.approx((10 + 20) / 2)
    assert f.loc["negotiation", "avg_dwell_days"] == pytest.approx(15.0)
    assert np.isnan(f.loc["won", "avg_dwell_days"])


def test_funnel_loss_reasons_per_stage():
    f = cohort_funnel()
    assert f.loc["needs_confirmed", "top_loss_reasons"] == "unclear_needs (1)"
    assert f.loc["proposal", "top_loss_reasons"] == "price (1)"
    assert f.loc["lead", "top_loss_reasons"] == "never contacted (1)"
    assert f.loc["negotiation", "top_loss_reasons"] == ""


def test_funnel_dwell_alert_fires_only_above_the_benchmark():
    f = cohort_funnel(benchmarks=BENCH)
    assert f["dwell_benchmark_days"].loc[["needs_confirmed", "proposal", "negotiation"]].tolist() == [10, 12, 15]
    assert not f.loc["needs_confirmed", "dwell_alert"]  # 8 days, benchmark 10
    assert f.loc["proposal", "dwell_alert"]  # 15 days, benchmark 12
    assert not f.loc["negotiation", "dwell_alert"]  # 15 days, benchmark 15: equal is not above
    assert not f.loc[["lead", "first_contact", "won"], "dwell_alert"].any()  # no benchmark, no alert


def test_funnel_without_benchmarks_raises_no_alert():
    assert not cohort_funnel()["dwell_alert"].any()


def test_funnel_with_a_subset_of_stages():
    f = cohort_funnel(stages=("lead", "needs_confirmed", "won"), benchmarks=BENCH)
    assert f.index.tolist() == ["lead", "needs_confirmed", "won"]
    assert f["entered"].tolist() == [5, 3, 1]
    assert f["conversion_rate"].iloc[:2].tolist() == pytest.approx([3 / 5, 1 / 3])
    assert f.loc["needs_confirmed", "avg_dwell_days"] == pytest.approx(8.0)


def test_funnel_counts_only_the_cohort():
    # L2 left out of the cohort: its opportunity and its loss no longer count
    leads = leads_frame()
    f = funnel(leads[leads["lead_id"] != "L2"], opps_frame(), history_frame()).set_index("stage")
    assert f["entered"].tolist() == [4, 3, 2, 1, 1, 1]
    assert f.loc["proposal", "top_loss_reasons"] == ""
    # dwell times are those of the cohort's deals only: O1's 10 days in proposal, not O2's 20
    assert f.loc["proposal", "avg_dwell_days"] == pytest.approx(10.0)
    assert f.loc["needs_confirmed", "avg_dwell_days"] == pytest.approx((4 + 12) / 2)


def test_never_contacted_counts_only_leads_that_went_no_further():
    leads = leads_frame().assign(first_contact_at=NaT)  # an export without first-contact times
    f = funnel(leads, opps_frame(), history_frame()).set_index("stage")
    # L1–L3 have deals, so they went on; only L4 and L5 were lost before any contact
    assert f.loc["lead", "top_loss_reasons"] == "never contacted (2)"
