"""Lead and deal scoring: features from before the scoring date only, the models against the baselines, reasons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import scoring
from crmnb.analysis.pipeline_work import work_list
from crmnb.analysis.scoring_features import COLUMNS, features_at, won_within
from crmnb.params.predict import PredictSettings

CUT = pd.Timestamp("2025-06-30")
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def _small() -> dict[str, pd.DataFrame]:
    """Return a hand-made CRM: three leads, two deals, their stages, customers and touches."""
    ts = pd.Timestamp
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3"],
            "created_at": [ts("2025-06-01"), ts("2025-06-20"), ts("2025-06-29 12:00")],
            "first_contact_at": [ts("2025-06-01 05:00"), ts("2025-06-21"), ts("2025-07-02")],  # L3: after the cut
            "department": "D",
            "owner_rep": ["A", "B", "A"],
            "channel": ["search", "wechat", "search"],
            "customer_id": ["C1", None, "C3"],  # C3 is filled in when L3 converts, after the cut
        }
    )
    opps = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O0", "O3"],
            "lead_id": ["L1", None, "L3"],
            "customer_id": ["C1", "C0", "C3"],
            "department": "D",
            "owner_rep": ["A", "A", "A"],
            "created_at": [ts("2025-06-05"), ts("2025-03-01"), ts("2025-07-05")],
            "status": ["won", "lost", "won"],
            "amount": [50_000.0, 20_000.0, 9_000.0],
            "closed_at": [ts("2025-07-20"), ts("2025-04-01"), ts("2025-08-01")],
            "expected_close_date": [ts("2025-06-25"), ts("2025-03-20"), ts("2025-07-30")],
        }
    )
    stages = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O1", "O1", "O1", "O0", "O3"],
            "stage": ["needs_confirmed", "proposal", "negotiation", "won", "needs_confirmed", "needs_confirmed"],
            "entered_at": [
                ts("2025-06-05"),
                ts("2025-06-20"),
                ts("2025-07-10"),
                ts("2025-07-20"),
                ts("2025-03-01"),
                ts("2025-07-05"),
            ],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ["C0", "C1", "C3"],
            "industry": ["零售", "制造业", "物流"],
            "created_at": [ts("2025-03-01"), ts("2025-06-05"), ts("2025-08-01")],
        }
    )
    touches = pd.DataFrame(
        {
            "lead_id": ["L1", "L1", "L2", "L2"],
            "touched_at": [ts("2025-05-30"), ts("2025-07-01"), ts("2025-06-19"), ts("2025-06-19")],
        }
    )
    return {"leads": leads, "opportunities": opps, "stage_history": stages, "customers": customers, "touches": touches}


def test_features_recomputed_by_hand() -> None:
    x = features_at(_small(), CUT, 90).set_index("record_id")
    assert sorted(x.index) == ["L2", "L3", "O1"]  # O0 closed before the cut, O3 opened after it
    o1, l2, l3 = x.loc["O1"], x.loc["L2"], x.loc["L3"]
    assert o1["stage"] == "proposal" and o1["days_in_stage"] == pytest.approx(10.0)  # entered 06-20, cut 06-30
    assert o1["response_hours"] == pytest.approx(5.0) and o1["touches"] == 1  # the 07-01 touch comes later
    assert o1["days_past_expected"] == pytest.approx(5.0) and o1["industry"] == "制造业"
    assert o1["log_amount"] == pytest.approx(np.log1p(50_000))
    assert l2["stage"] == "contacted" and l2["touches"] == 2 and l2["response_hours"] == pytest.approx(24.0)
    assert l3["stage"] == "uncontacted" and l3["response_hours"] == pytest.approx(12.0)  # waited so far
    assert l3["industry"] == "unknown"  # a lead's customer is filled in when it converts: not read
    # the only deal closed by the cut (O0, rep A) was lost: no win to shrink toward
    assert o1["rep_rate"] == 0.0 and o1["rep_industry_rate"] < 0.05
    y = won_within(_small(), x.reset_index(), CUT, 90)
    assert y.tolist() == [True, False, True]  # O1 won 07-20; L2 never; L3's deal won 08-01


def test_no_feature_uses_anything_after_the_scoring_date() -> None:
    """Rewrite everything after the cut (later stages, closes, touches, contacts, customers): features stay equal."""
    before = features_at(_small(), CUT, 90)
    t = _small()
    t["stage_history"].loc[t["stage_history"]["entered_at"] > CUT, "entered_at"] = pd.Timestamp("2025-12-01")
    t["stage_history"].loc[len(t["stage_history"])] = ["O1", "lost", pd.Timestamp("2025-07-02")]
    t["opportunities"]["status"] = ["lost", "lost", "open"]
    t["opportunities"]["closed_at"] = [pd.Timestamp("2025-07-03"), pd.Timestamp("2025-04-01"), pd.NaT]
    t["touches"].loc[len(t["touches"])] = ["L2", pd.Timestamp("2025-07-04")]
    t["leads"].loc[2, "first_contact_at"] = pd.Timestamp("2025-09-09")
    t["leads"].loc[1, "customer_id"] = "C1"  # a lead converting later fills its customer in
    after = features_at(t, CUT, 90)
    pd.testing.assert_frame_equal(before, after)


def test_deals_without_stage_history_sit_in_the_first_stage() -> None:
    t = _small()
    t["stage_history"] = t["stage_history"].iloc[:0]
    x = features_at(t, CUT, 90).set_index("record_id")
    assert x.loc["O1", "stage"] == "needs_confirmed" and x.loc["O1", "days_in_stage"] == pytest.approx(25.0)


def test_model_columns_need_every_feature() -> None:
    x = features_at(_small(), CUT, 90)
    d = scoring.Design.learn(x)
    assert d.matrix(x).shape == (3, len(d.columns))
    assert set(COLUMNS) == {"leads", "opportunities", "stage_history", "customers", "touches"}


def test_too_few_wins_names_the_date_and_counts() -> None:
    with pytest.raises(scoring.NotEnoughData) as e:
        scoring.train_and_evaluate(_small(), "2025-12-31", window_days=90)
    assert "2025-07-04" in e.value.say("en") and "at least 5" in e.value.say("en")
    assert "至少5条" in e.value.say("zh")


@pytest.fixture(scope="module")
def demo() -> tuple[scoring.ScoringResult, pd.DataFrame]:
    """The scoring of the demo data at its export date."""
    tables = {t: pd.read_csv(DEMO / f"{t}.csv", usecols=c) for t, c in COLUMNS.items()}
    res = scoring.train_and_evaluate(tables, "2026-03-31", window_days=90)
    return res, scoring.score_open(res, tables, "en")


def test_demo_scoring_beats_both_baselines_and_is_calibrated(demo) -> None:
    res, _ = demo
    m = res.metrics.set_index("model")
    assert scoring.beats_baselines(res.metrics)
    assert m.loc[res.chosen, "pr_auc"] > m.loc["stage_rate", "pr_auc"] + 0.04
    assert m.loc[res.chosen, "roc_auc"] > m.loc["channel_rate", "roc_auc"] + 0.2
    assert m.loc[res.chosen, "calibration_error"] < 0.04
    cal = res.calibration
    assert abs(cal["mean_probability"].iloc[0] - cal["win_rate"].iloc[0]) < 0.12  # the top decile, where it counts
    assert res.lift["lift"].iloc[0] > 4


def test_reasons_in_both_languages(demo) -> None:
    res, scored = demo
    top = scored.head(5)
    assert top["reasons"].str.contains(r"\(raises the odds\)").all()
    zh = scoring.reasons(res, top, "zh")
    assert zh.str.contains("提高成交可能").all() and not zh.str.contains("raises").any()
    assert (top["reasons"].str.count("; ") >= 1).all()


def test_work_list_is_masked_stale_and_likely(demo) -> None:
    _, scored = demo
    leads = pd.read_csv(DEMO / "leads.csv", usecols=["lead_id", "contact_name"])
    settings = PredictSettings()
    w = work_list(scored, leads, settings, {"needs_confirmed": 10, "proposal": 12, "negotiation": 15}, "en", "销售一部")
    assert len(w) > 5 and (w["win_probability"] >= settings.high_probability).all()
    assert (w["stale_reason"] != "").all()
    names = set(leads["contact_name"].dropna())
    assert not w["contact_name"].isin(names).any() and w["contact_name"].dropna().str.contains(r"\*").all()
    unmasked = work_list(scored, leads, settings, {"proposal": 12}, "en", "销售一部", mask=False)
    assert unmasked["contact_name"].dropna().isin(names).all()


def test_planted_key_is_there() -> None:
    assert "pipeline" in json.loads((DEMO / "planted.json").read_text())
