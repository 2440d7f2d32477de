"""Tests of crmnb.present.charts: weekly revenue, backtest, WAPE, deviation flags, the forecast and its chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import forecast as analysis_forecast
from crmnb.demo.generator import generate
from crmnb.errors import NotEnoughData
from crmnb.intake import parse, read
from crmnb.intake.schema import DEFAULT_FILES
from crmnb.present import charts
from crmnb.present.charts import Chart

T = pd.Timestamp


def _weekly(values, start: str = "2025-01-06") -> pd.DataFrame:
    return pd.DataFrame(
        {"week": pd.date_range(start, periods=len(values), freq="W-MON"), "revenue": np.asarray(values, dtype=float)}
    )


# --------------------------------------------------------------------------- WAPE and flags
def test_wape_worked_example_with_zero_weeks():
    actual = [100.0, 0.0, 50.0, 50.0]
    forecast = [90.0, 10.0, 60.0, 50.0]
    # Σ|a − f| = 10 + 10 + 10 + 0 = 30; Σ|a| = 200
    assert analysis_forecast.wape(actual, forecast) == pytest.approx(30 / 200)
    with np.errstate(divide="ignore"):
        ape = np.abs(np.subtract(actual, forecast)) / np.abs(actual)
    assert np.isinf(ape[1])  # MAPE would divide by the zero week: undefined
    assert analysis_forecast.wape([0.0, 10.0, np.nan], [5.0, 10.0, 3.0]) == pytest.approx(
        5 / 10
    )  # the NaN pair is skipped


def test_wape_failures():
    with pytest.raises(ValueError, match="every actual is 0"):
        analysis_forecast.wape([0.0, 0.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="differ in length"):
        analysis_forecast.wape([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no pair"):
        analysis_forecast.wape([], [])


def test_deviation_flag_at_the_eight_percent_line():
    assert analysis_forecast.deviation_flag(0.079) is False
    assert analysis_forecast.deviation_flag(0.081) is True
    assert analysis_forecast.deviation_flag(0.08) is False  # "passes" the tolerance means more than it
    assert analysis_forecast.deviation_flag(-0.081) is True  # an under-forecast deviates as much as an over-forecast
    assert analysis_forecast.deviation_flag(np.array([0.05, 0.12]), tolerance=0.10).tolist() == [False, True]
    with pytest.raises(ValueError, match="NaN"):
        analysis_forecast.deviation_flag(np.nan)
    with pytest.raises(ValueError, match="tolerance"):
        analysis_forecast.deviation_flag(0.1, tolerance=-1)


# --------------------------------------------------------------------------- weekly revenue
def test_weekly_revenue_fills_empty_weeks_with_zero():
    opps = pd.DataFrame(
        {
            "status": ["won", "won", "won", "lost", "won"],
            "amount": [100.0, 20.0, 50.0, 999.0, 7.0],
            "closed_at": [
                T("2025-01-06 09:00"),
                T("2025-01-12 23:00"),  # Monday and Sunday: one week
                T("2025-01-29"),
                T("2025-01-14"),
                pd.NaT,
            ],  # a Wednesday two weeks on; lost; no date
            "department": ["A", "B", "A", "A", "A"],
        }
    )
    w = analysis_forecast.weekly_revenue(opps)
    assert w["week"].tolist() == [T("2025-01-06"), T("2025-01-13"), T("2025-01-20"), T("2025-01-27")]
    assert w["revenue"].tolist() == [120.0, 0.0, 0.0, 50.0]
    assert w["deals"].tolist() == [2, 0, 0, 1]
    assert (w["week"].dt.day_of_week == 0).all()
    assert analysis_forecast.weekly_revenue(opps, department="A")["revenue"].tolist() == [100.0, 0.0, 0.0, 50.0]
    # complete weeks only: an export on Tuesday 28 January drops that week, and a start mid-week its week
    cut = analysis_forecast.weekly_revenue(opps, start="2024-12-30", end="2025-01-28")
    assert cut["week"].tolist() == [T("2024-12-30"), T("2025-01-06"), T("2025-01-13"), T("2025-01-20")]
    assert cut["revenue"].tolist() == [0.0, 120.0, 0.0, 0.0]
    assert analysis_forecast.weekly_revenue(opps, start="2025-01-07", end="2025-02-02")["week"].iloc[0] == T(
        "2025-01-13"
    )


def test_weekly_revenue_failures():
    opps = pd.DataFrame({"status": ["lost"], "amount": [1.0], "closed_at": [T("2025-01-06")], "department": ["A"]})
    with pytest.raises(ValueError, match="no won deal"):
        analysis_forecast.weekly_revenue(opps)
    with pytest.raises(ValueError, match="opportunities.*closed_at"):
        analysis_forecast.weekly_revenue(opps.drop(columns="closed_at"))
    with pytest.raises(ValueError, match="no department 'Z'; known: A"):
        analysis_forecast.weekly_revenue(opps, department="Z")


# --------------------------------------------------------------------------- backtest and accuracy
@pytest.mark.parametrize("method", analysis_forecast.METHODS)
def test_backtest_on_a_constant_series_is_exact(method):
    weekly = _weekly([500.0] * 40)
    bt = analysis_forecast.backtest(weekly, horizon=12, min_train=26, method=method)
    # origins after 26..39 weeks; 12 steps while 12 weeks remain, then 11, 10, …, 1
    assert len(bt) == 3 * 12 + sum(range(1, 12))
    assert bt["step"].between(1, 12).all()
    assert ((bt["week"] - bt["origin"]) == pd.to_timedelta(7 * bt["step"], unit="D")).all()
    acc = analysis_forecast.forecast_accuracy(bt)
    assert acc.loc[0, "wape"] == pytest.approx(0.0, abs=1e-12)
    assert acc.loc[0, "bias"] == pytest.approx(0.0, abs=1e-12)
    assert acc.loc[0, "origins"] == 3  # origins with the full 12 weeks for the horizon total


def test_forecast_accuracy_by_hand():
    bt = pd.DataFrame(
        {
            "origin": [T("2025-01-06")] * 2 + [T("2025-01-13")] * 2,
            "step": [1, 2, 1, 2],
            "actual": [100.0, 0.0, 100.0, 100.0],
            "forecast": [80.0, 20.0, 110.0, 100.0],
        }
    )
    acc = analysis_forecast.forecast_accuracy(bt).iloc[0]
    assert acc["wape"] == pytest.approx((20 + 20 + 10 + 0) / 300)
    assert acc["bias"] == pytest.approx((-20 + 20 + 10 + 0) / 300)
    # horizon totals: (100 vs 100) and (200 vs 210)
    assert acc["total_wape"] == pytest.approx(10 / 300)
    by = analysis_forecast.forecast_accuracy(bt, by_step=True).set_index("step")
    assert by.loc[2, "wape"] == pytest.approx(20 / 100)
    with pytest.raises(ValueError, match="table 'backtest' is empty"):
        analysis_forecast.forecast_accuracy(bt.iloc[:0])


def test_backtest_failures():
    with pytest.raises(ValueError, match="table 'weekly' is empty"):
        analysis_forecast.backtest(_weekly([]))
    with pytest.raises(ValueError, match="more than min_train"):
        analysis_forecast.backtest(_weekly([1.0] * 20), min_train=26)
    gap = _weekly([1.0] * 40).drop(index=5)
    with pytest.raises(ValueError, match="consecutive"):
        analysis_forecast.backtest(gap)
    with pytest.raises(ValueError, match="unknown forecast method"):
        analysis_forecast.backtest(_weekly([1.0] * 40), method="prophet")
    with pytest.raises(ValueError, match="revenue has missing weeks"):
        analysis_forecast.backtest(_weekly([1.0] * 39 + [np.nan]))


# --------------------------------------------------------------------------- forecast
def test_rolling_forecast_constant_and_trend():
    f = analysis_forecast.rolling_forecast(_weekly([500.0] * 60))
    assert len(f) == 12 and f["step"].tolist() == list(range(1, 13))
    assert f["week"].iloc[0] == T("2025-01-06") + pd.Timedelta(weeks=60)
    assert (f["week"].dt.day_of_week == 0).all()
    assert f["forecast"].to_numpy() == pytest.approx(500.0)
    assert f[["lower", "upper"]].to_numpy() == pytest.approx(500.0)  # no past error, no spread
    rng = np.random.default_rng(1)
    noisy = _weekly(1000 + 20 * np.arange(60) + rng.normal(0, 50, 60))
    g = analysis_forecast.rolling_forecast(noisy, horizon=12, method="holt_damped", level=0.8)
    assert g["forecast"].is_monotonic_increasing  # the trend carries on, damped
    assert (g["lower"] <= g["upper"]).all()
    # a steady trend is under-forecast by the damped model, and the band, built from where the
    # actuals landed in the backtest, says so: it sits above the line rather than around it
    assert (g["upper"] > g["forecast"]).all() and (g["lower"] > 0.95 * g["forecast"]).all()
    short = analysis_forecast.rolling_forecast(_weekly([5.0] * 10))  # too short for a backtest: no band
    assert short["upper"].isna().all() and short["forecast"].notna().all()


def test_deviation_rate_of_an_earlier_forecast():
    weekly = _weekly([100.0] * 30 + [90.0, 0.0, 120.0])
    f = analysis_forecast.rolling_forecast(weekly, horizon=4, as_of=T("2025-01-06") + pd.Timedelta(weeks=29))
    assert f["forecast"].to_numpy() == pytest.approx(100.0)
    d = analysis_forecast.deviation_rate(f, weekly).set_index("step")
    assert list(d.index) == [1, 2, 3]  # the fourth week has no actual yet
    assert d.loc[1, "deviation_rate"] == pytest.approx((100 - 90) / 90)
    assert np.isnan(d.loc[2, "deviation_rate"]) and d.loc[2, "flag"]  # a miss on a zero week is flagged
    assert d.loc[3, "deviation_rate"] == pytest.approx((100 - 120) / 120)
    assert d["flag"].tolist() == [True, True, True]
    assert d.loc[3, "cumulative_wape"] == pytest.approx((10 + 100 + 20) / 210)
    with pytest.raises(ValueError, match="no forecast week has an actual"):
        analysis_forecast.deviation_rate(analysis_forecast.rolling_forecast(weekly, horizon=4), weekly)


def test_rolling_forecast_failures():
    with pytest.raises(ValueError, match="at least 8"):
        analysis_forecast.rolling_forecast(_weekly([1.0] * 5))
    with pytest.raises(ValueError, match="horizon"):
        analysis_forecast.rolling_forecast(_weekly([1.0] * 40), horizon=0)
    with pytest.raises(ValueError, match="level"):
        analysis_forecast.rolling_forecast(_weekly([1.0] * 40), level=80)


def test_forecast_chart():
    weekly = _weekly(1000 + 10 * np.arange(60))
    f = analysis_forecast.rolling_forecast(weekly)
    chart = charts.forecast_chart(weekly, f, accuracy=0.123, lang="en")
    assert isinstance(chart, Chart) and chart.png.startswith(b"\x89PNG")
    assert "CNY" in chart.alt and "12-week forecast" in chart.alt and "WAPE 12.3%" in chart.alt
    assert f"{f['forecast'].sum():,.0f} CNY" in chart.alt
    with pytest.raises(ValueError, match="forecast"):
        charts.forecast_chart(weekly, f.iloc[:0], lang="en")


# --------------------------------------------------------------------------- demo data
def test_demo_weekly_backtest(tmp_path: Path):
    generate(tmp_path, scale=0.3)
    opp = parse.intake(
        read.read_export(tmp_path / DEFAULT_FILES["opportunities"], "opportunities"), "opportunities"
    ).table
    weekly = analysis_forecast.weekly_revenue(opp, end="2026-03-31")
    assert weekly["week"].iloc[-1] == T("2026-03-23")  # the export's partial week is left out
    won = opp[(opp["status"] == "won") & (opp["closed_at"] < T("2026-03-30"))]
    assert weekly["revenue"].sum() == pytest.approx(won["amount"].sum())
    acc = analysis_forecast.compare_methods(weekly)
    assert set(acc["method"]) == set(analysis_forecast.METHODS)
    assert ((acc["wape"] > 0) & (acc["wape"] < 1)).all()
    assert analysis_forecast.deviation_flag(acc["wape"].iloc[0])  # weekly noise is far above 8%


# --------------------------------------------------------------------------- a case's forecast
def _deals(closed: list[str], amounts: list[float], department: str = "Sales") -> pd.DataFrame:
    return pd.DataFrame(
        {"status": "won", "amount": amounts, "closed_at": pd.to_datetime(closed), "department": department}
    )


def test_weekly_forecast_is_the_separate_steps_in_one_call():
    weeks = pd.date_range("2025-01-06", periods=40, freq="W-MON")
    opps = _deals(list(weeks + pd.Timedelta(days=2)), list(100.0 + np.arange(40) % 5 * 10))
    got = analysis_forecast.weekly_forecast(opps, "Sales", "2025-10-12", horizon=4)
    weekly = analysis_forecast.weekly_revenue(opps, "Sales", end="2025-10-12")
    pd.testing.assert_frame_equal(got.weekly, weekly)
    pd.testing.assert_frame_equal(
        got.accuracy, analysis_forecast.forecast_accuracy(analysis_forecast.backtest(weekly, horizon=4))
    )
    pd.testing.assert_frame_equal(got.forecast, analysis_forecast.rolling_forecast(weekly, horizon=4))
    assert list(got.forecast.columns) == list(
        analysis_forecast.FORECAST_COLUMNS
    )  # an empty forecast has the same columns
    assert list(got.accuracy.columns) == list(analysis_forecast.ACCURACY_COLUMNS)


def test_weekly_forecast_on_too_little_history_says_what_it_needs():
    opps = _deals(["2025-05-07", "2025-06-04"], [100.0, 50.0])
    with pytest.raises(NotEnoughData) as err:
        analysis_forecast.weekly_forecast(opps, "Sales", pd.Timestamp("2025-06-30").date())
    assert str(err.value) == (
        "Forecast not made: it needs at least 27 weeks of won-deal history (26 to fit the model "
        "on, then weeks to test it on); this data has 8 weeks from the first win to 2025-06-30."
    )
    assert (err.value.needed, err.value.found) == (27, 8)
    assert err.value.zh.startswith("未做收入预测：至少需要27周的成交历史")
    with pytest.raises(NotEnoughData, match="this data has 0 weeks"):  # no win at all, or none in the department
        analysis_forecast.weekly_forecast(opps, "Service", "2025-06-30")
    assert analysis_forecast.empty_forecast().empty and list(analysis_forecast.empty_forecast().columns) == list(
        analysis_forecast.FORECAST_COLUMNS
    )
    assert list(analysis_forecast.empty_accuracy().columns) == list(analysis_forecast.ACCURACY_COLUMNS)
