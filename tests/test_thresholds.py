"""A threshold changed in a case file changes the results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from crmnb.analysis.funnel import funnel
from crmnb.analysis.marketing import cpa_alerts
from crmnb.analysis.segments import assign_tiers
from crmnb.params import parse_case

ROOT = Path(__file__).resolve().parents[1]


def _case(**thresholds):
    raw = yaml.safe_load((ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    raw["thresholds"] = {**raw.get("thresholds", {}), **thresholds}
    return parse_case(raw, ROOT / "parameters" / "lead_conversion_uplift.yaml")


def test_tier_thresholds_from_the_case_file_move_customers():
    value = pd.DataFrame({"spend": [250_000.0, 120_000.0], "repeat_share": [0.65, 0.35]})
    default = assign_tiers(value, **_case().thresholds.tiers.model_dump())
    lower = assign_tiers(value, **_case(tiers={"high_spend": 200_000}).thresholds.tiers.model_dump())
    assert default.tolist() == ["potential", "potential"]
    assert lower.tolist() == ["high_value", "potential"]


def test_dwell_benchmark_from_the_case_file_fires_the_alert():
    leads = pd.DataFrame(
        {
            "lead_id": ["L1"],
            "created_at": [pd.Timestamp("2025-07-01")],
            "first_contact_at": [pd.Timestamp("2025-07-01 10:00")],
        }
    )
    opps = pd.DataFrame(
        {
            "opportunity_id": ["O1"],
            "lead_id": ["L1"],
            "created_at": [pd.Timestamp("2025-07-02")],
            "status": ["won"],
            "loss_reason": [None],
        }
    )
    sh = pd.DataFrame(
        {
            "opportunity_id": ["O1"] * 4,
            "stage": ["needs_confirmed", "proposal", "negotiation", "won"],
            "entered_at": pd.to_datetime(["2025-07-02", "2025-07-10", "2025-07-20", "2025-08-01"]),
            "exited_at": pd.to_datetime(["2025-07-10", "2025-07-20", "2025-08-01", None]),
        }
    )

    def alerts(case):
        f = funnel(leads, opps, sh, case.thresholds.funnel_stages, case.thresholds.dwell_benchmark_days)
        return set(f.loc[f["dwell_alert"], "stage"])

    assert alerts(_case()) == set()  # 8, 10 and 12 days are within 10, 12 and 15
    assert alerts(_case(dwell_benchmark_days={"proposal": 9})) == {"proposal"}


def test_cpa_tolerance_from_the_case_file_changes_the_alerts():
    perf = pd.DataFrame(
        {"campaign_id": ["A"], "spend": [125.0], "customers": [1], "cac": [125.0], "cpa_benchmark": [100.0]}
    )
    assert cpa_alerts(perf, _case().thresholds.cpa_overrun_max).empty
    assert len(cpa_alerts(perf, _case(cpa_overrun_max=0.2).thresholds.cpa_overrun_max)) == 1


def test_unknown_threshold_is_refused_with_its_key():
    from crmnb.errors import CaseFileError

    with pytest.raises(
        CaseFileError, match=r"thresholds\.tiers\.high_spnd': unknown key \(did you mean 'high_spend'\?\)"
    ):
        _case(tiers={"high_spnd": 1})
