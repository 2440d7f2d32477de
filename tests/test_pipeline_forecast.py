"""The pipeline forecast: its parts on a hand-made pipeline, the backtest against the old model, the miss breakdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import forecast as baseline
from crmnb.analysis import pipeline_case, pipeline_forecast, pipeline_state
from crmnb.analysis.forecast_miss import miss_breakdown

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def _history(weeks: int = 60, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a steady business: two deals a week, 60% won, closing 3 weeks after opening, 2 days past the expected date."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    rows, stages = [], []
    for i in range(weeks * 2):
        created = start + pd.Timedelta(days=int(i * 3.5))
        won = rng.random() < 0.6
        closed = created + pd.Timedelta(days=21)
        rows.append(
            ("O%d" % i, "D", created, "won" if won else "lost", 10_000.0, closed, created + pd.Timedelta(days=19))
        )
        stages.append(("O%d" % i, "needs_confirmed", created))
    opp = pd.DataFrame(rows, columns=pipeline_case.COLUMNS["opportunities"])
    sh = pd.DataFrame(stages, columns=pipeline_case.COLUMNS["stage_history"])
    return opp, sh


def test_open_deals_weighted_by_stage_rate_and_timed_by_slippage() -> None:
    opp, sh = _history()
    opp, sh = pipeline_state.prepared(opp, sh, "D")
    origin = pd.Timestamp("2025-01-05 23:59:59")
    deals = pipeline_state.open_deals(opp, sh, origin)
    closed = opp[(opp["closed_at"] <= origin)]
    assert deals["p_win"].iloc[0] == pytest.approx((closed["status"] == "won").mean())
    made = opp[opp["created_at"] <= origin]
    assert len(deals) == int((made["closed_at"] > origin).sum())
    odds = pipeline_state.close_week_odds(deals, opp, sh, origin, 12)
    # every won deal closed exactly 2 days after its expected date: each open deal closes in one known week
    expect = ((deals["expected_close_date"] + pd.Timedelta(days=2) - origin) / pd.Timedelta(days=1)).to_numpy()
    week = np.floor((expect - 1e-9) / 7).astype(int)
    for i, w in enumerate(week):
        assert odds[i, w] == pytest.approx(1.0) and odds[i].sum() == pytest.approx(1.0)


def test_a_close_a_moment_after_the_origin_falls_in_the_first_week() -> None:
    opp, sh = pipeline_state.prepared(*_history(), "D")
    origin = pd.Timestamp("2025-01-05 23:59:59")
    deals = pipeline_state.open_deals(opp, sh, origin)
    # the first open deal would close (2 days after its expected date) one microsecond after the origin
    deals.loc[deals.index[0], "expected_close_date"] = origin - pd.Timedelta(days=2) + pd.Timedelta(microseconds=1)
    odds = pipeline_state.close_week_odds(deals, opp, sh, origin, 12)
    assert odds[0, 0] == pytest.approx(1.0) and odds[0].sum() == pytest.approx(1.0)


def test_new_deal_pace_by_hand() -> None:
    opp, sh = pipeline_state.prepared(*_history(), "D")
    origin = pd.Timestamp("2025-01-05 23:59:59")
    pace = pipeline_state.new_deal_pace(opp, sh, origin, 12)
    made = ((opp["created_at"] > origin - pd.Timedelta(weeks=8)) & (opp["created_at"] <= origin)).sum() / 8
    p = (opp.loc[opp["closed_at"] <= origin, "status"] == "won").mean()
    lam = made * p * 10_000
    # every win comes exactly 3 weeks after opening: nothing in weeks 1-3, then the full pace
    assert pace[:3] == pytest.approx([0, 0, 0]) and pace[3:] == pytest.approx([lam] * 9)


def test_seasonal_index_finds_a_quarter_end_push() -> None:
    weeks = pd.date_range("2023-01-02", periods=120, freq="W-MON")
    factor = np.array([0.8, 1.0, 1.2])[pipeline_forecast.month_of_quarter(weeks)]
    weekly = pd.DataFrame({"week": weeks, "revenue": 1000.0 * factor})
    idx = pipeline_forecast.seasonal_index(weekly, weeks[-1])
    assert idx[0] < 0.9 and idx[2] > 1.1 and idx.mean() == pytest.approx(1.0)
    assert pipeline_forecast.seasonal_index(weekly.head(30), weeks[29]).tolist() == [1.0, 1.0, 1.0]


@pytest.fixture(scope="module")
def demo() -> pipeline_case.PipelineForecast:
    """The pipeline forecast of Sales 1 on the demo data, period end 2025-12-31."""
    opp = pd.read_csv(DEMO / "opportunities.csv", usecols=pipeline_case.COLUMNS["opportunities"])
    sh = pd.read_csv(DEMO / "stage_history.csv", usecols=pipeline_case.COLUMNS["stage_history"])
    campaigns = pd.read_excel(DEMO / "campaigns.xlsx")
    leads = pd.read_csv(DEMO / "leads.csv", usecols=["created_at", "department"]).query("department == '销售一部'")
    created = pd.to_datetime(leads["created_at"])
    week = (created - pd.to_timedelta(created.dt.day_of_week, unit="D")).dt.normalize().value_counts().sort_index()
    weekly_leads = pd.DataFrame({"week": week.index, "leads": week.to_numpy(float)})
    return pipeline_case.run(opp, sh, "销售一部", "2025-12-31", "en", campaigns=campaigns, leads=weekly_leads)


def test_demo_pipeline_forecast_beats_the_old_model_and_meets_the_tolerance(demo) -> None:
    a = demo.accuracy.set_index("method")
    assert set(a.index) == set(pipeline_forecast.METHODS) and (a["origins"] == 20).all()
    chosen = a.index[a["chosen"]][0]
    assert chosen != "holt_damped"
    assert a.loc[chosen, "total_wape"] < a.loc["holt_damped", "total_wape"] - 0.1
    assert a.loc[chosen, "wape"] < a.loc["holt_damped", "wape"]
    assert a.loc[chosen, "total_wape"] <= 0.08
    # the old model's rows are its own backtest, recomputed on the same origins
    old = baseline.backtest(demo.weekly, horizon=12)
    same = old[old["origin"].isin(demo.backtest["origin"])]
    assert np.allclose(same["forecast"].sum(), demo.backtest.query("method == 'holt_damped'")["forecast"].sum())


def test_demo_miss_breakdown_adds_up_to_the_total_error(demo) -> None:
    m = demo.miss
    assert m["component"].tolist() == list(pipeline_forecast.COMPONENTS)
    assert m["error"].sum() == pytest.approx(m.attrs["total_error"])
    origin = m.attrs["origin"]
    weeks = pd.date_range(origin + pd.Timedelta(days=7), periods=12, freq="W-MON")
    actual = demo.weekly.set_index("week")["revenue"].reindex(weeks).sum()
    assert m["actual_revenue"].sum() == pytest.approx(actual)
    bt = demo.backtest[
        (demo.backtest["origin"] == origin) & (demo.backtest["method"] == demo.forecast["method"].iloc[0])
    ]
    assert m["forecast"].sum() == pytest.approx(bt["forecast"].sum())
    assert m["share_of_error"].sum() == pytest.approx(1.0)
    assert m["remedy"].str.len().gt(20).all()


def test_miss_breakdown_of_a_hand_made_window() -> None:
    """One open deal (weight 0.6 x 10,000) that is lost: the whole error is the lost deal plus new deals."""
    opp, sh = pipeline_state.prepared(*_history(), "D")
    weekly = baseline.weekly_revenue(opp, end="2025-02-28")
    m = miss_breakdown(opp, sh, weekly, pd.Timestamp("2024-12-30"), 4, False, "zh")
    assert m["error"].sum() == pytest.approx(m.attrs["total_error"])
    assert m.set_index("component").loc["slipped", "forecast"] == pytest.approx(0.0)  # every deal closes on time
    assert "商机" in m["remedy"].iloc[0]


def test_sentences_in_both_languages(demo) -> None:
    en = pipeline_case.describe(demo, 0.08, "en")
    zh = pipeline_case.describe(demo, 0.08, "zh")
    assert "backtest" in en and "within the 8% tolerance" in en
    assert "回测" in zh and "容许范围内" in zh
    assert "CNY" in pipeline_case.describe_coverage(demo, "销售一部", "en")
    assert "%" in pipeline_case.describe_miss(demo, 0.08, "zh")


def test_too_short_history_says_how_many_weeks() -> None:
    opp, sh = _history(weeks=20)
    with pytest.raises(pipeline_case.NotEnoughData) as e:
        pipeline_case.run(opp, sh, "D", "2024-05-31", "en")
    assert "39 weeks" in e.value.say("en")
