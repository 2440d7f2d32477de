"""The campaign driver of the pipeline forecast: the lag and lift it finds on hand-made weeks, that it uses only
what was known at the origin, why it does not run, and its part in the miss breakdown; the codes of prepared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import forecast as baseline
from crmnb.analysis import pipeline_case, pipeline_drivers, pipeline_forecast, pipeline_read, pipeline_state
from crmnb.analysis.forecast_miss import miss_breakdown
from crmnb.analysis.scoring_features import deal_stage_at
from crmnb.handoffs import Workspace

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
WEEKS = pd.date_range("2023-01-02", periods=130, freq="W-MON")
SHOWS = ["2023-03-10", "2023-07-14", "2023-11-10", "2024-03-08", "2024-07-12"]


def _campaigns(ends=SHOWS, days: int = 2) -> pd.DataFrame:
    """Return short campaigns ending on ``ends`` and one that runs all year."""
    end = pd.to_datetime(list(ends))
    short = pd.DataFrame({"campaign_id": [f"S{i}" for i in range(len(end))], "channel": "trade_show",
                          "start_date": end - pd.Timedelta(days=days), "end_date": end, "spend": 100_000.0})  # fmt: skip
    year = pd.DataFrame({"campaign_id": ["Y"], "channel": ["search"], "start_date": [pd.Timestamp("2023-01-01")],
                         "end_date": [pd.Timestamp("2024-12-31")], "spend": [1e6]})  # fmt: skip
    return pd.concat([short, year], ignore_index=True)


def _counts(lift: float, seed: int = 3) -> np.ndarray:
    """Return weekly counts around 80, ``lift`` times that from 2 to 4 whole weeks after each show's end."""
    rng = np.random.default_rng(seed)
    x = pipeline_drivers.lag_matrix(WEEKS, pipeline_drivers.pulse_ends(_campaigns(), WEEKS[-1]))
    mean = 80.0 * lift ** x[:, 2:5].sum(axis=1)
    return rng.poisson(mean).astype(float)


def test_fit_finds_the_planted_lag_and_lift() -> None:
    leads, deals = _counts(1.6), _counts(1.5, seed=4)
    d = pipeline_drivers.fit(WEEKS, deals, leads, _campaigns(), WEEKS[-1] + pd.Timedelta(days=7))
    assert d.used and (d.first, d.last) == (2, 4) and d.pulses == 5
    assert d.lead_low < 1.6 < d.lead_high and d.low < 1.5 < d.high and d.low > 1
    # the distributed lag shows the rise in the window weeks and none in the others
    prof = d.profile.set_index("lag_weeks")
    assert (prof.loc[2:4, "lift_low"] > 1).all() and (prof.loc[[0, 1, 6, 7], "lift"] < 1.25).all()
    # the reader gets the window in days after the show: lag weeks 2-4 are days 14 to 34
    pf = pipeline_case.PipelineForecast(*[None] * 6, driver=d._replace(reason="unclear"))
    assert "from 14 to 34 days after it ended" in pipeline_case.describe_driver(pf, "D", "en")
    assert "结束后14至34天" in pipeline_case.describe_driver(pf, "D", "zh")


def test_fit_uses_only_what_was_known_at_the_origin() -> None:
    leads, deals = _counts(1.6), _counts(1.5, seed=4)
    origin = pd.Timestamp("2024-05-05 23:59:59")  # a Sunday's end: the last show started later
    d = pipeline_drivers.fit(WEEKS, deals, leads, _campaigns(), origin)
    assert len(d.ends) == 4 and d.pulses == 3  # the fourth show's ten after-weeks are not all known yet
    later = origin < WEEKS
    leads2, deals2 = leads.copy(), deals.copy()
    leads2[later], deals2[later] = 1e4, 0.0  # what happened after the origin changes nothing
    d2 = pipeline_drivers.fit(WEEKS, deals2, leads2, _campaigns(), origin)
    assert (d2.first, d2.last, d2.lift, d2.lead_lift) == (d.first, d.last, d.lift, d.lead_lift)


def test_why_the_driver_does_not_run() -> None:
    flat = np.full(len(WEEKS), 80.0)
    end = WEEKS[-1] + pd.Timedelta(days=7)
    assert pipeline_drivers.fit(WEEKS, flat, None, None, end).reason == "no_campaigns"
    assert pipeline_drivers.fit(WEEKS, flat, None, _campaigns([]), end).reason == "no_pulses"
    assert pipeline_drivers.fit(WEEKS, flat, None, _campaigns(SHOWS[-1:]), end).reason == "too_few_pulses"
    noise = np.random.default_rng(7).poisson(80, len(WEEKS)).astype(float)
    d = pipeline_drivers.fit(WEEKS, noise, None, _campaigns(), end)
    # the best of 45 windows on noise may look like a rise on its own interval; the search's bound stops it
    assert d.reason == "unclear" and np.log(d.lift) / ((np.log(d.high) - np.log(d.low)) / 2 / 1.96) < 3.26
    pf = pipeline_case.PipelineForecast(*[None] * 6, driver=d)
    assert "best of 45 tried" in pipeline_case.describe_driver(pf, "D", "en")
    assert "数据不支持" in pipeline_case.describe_driver(pf, "D", "zh")
    assert "did not run" in pipeline_case.describe_driver(None, "D", "en")
    assert pipeline_case.driver_table(None).empty


def test_campaign_adds_the_lift_of_the_weeks_ahead_by_hand() -> None:
    opp, sh = pipeline_state.prepared(*_steady(), "D")
    origin = pd.Timestamp("2025-01-05 23:59:59")
    lam, g = pipeline_state.new_deal_rate(opp, sh, origin, 12)
    base = pipeline_state.new_deal_pace(opp, sh, origin, 12)
    extra = pipeline_state.campaign_extra(lam, g, np.r_[1.0, 2.0, np.ones(10)])
    # every win comes 3 weeks after opening: the deals of week 2 ahead, twice the usual, win in week 5
    assert extra[4] == pytest.approx(base[-1]) and np.delete(extra, 4) == pytest.approx(np.zeros(11))


def _steady(weeks: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return two deals a week, 60% won, closing 3 weeks after opening and 2 days past the expected date."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(weeks * 2):
        c = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(i * 3.5))
        won = "won" if rng.random() < 0.6 else "lost"
        rows.append((f"O{i}", "D", c, won, 10_000.0, c + pd.Timedelta(days=21), c + pd.Timedelta(days=19)))
    opp = pd.DataFrame(rows, columns=pipeline_case.COLUMNS["opportunities"])
    sh = pd.DataFrame(
        {"opportunity_id": opp["opportunity_id"], "stage": "needs_confirmed", "entered_at": opp["created_at"]}
    )
    return opp, sh


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pipeline_drivers.Inflow]:
    """Sales 1's prepared deals, weekly revenue and the inflow of the demo, up to 2025-12-31."""
    opp = pd.read_csv(DEMO / "opportunities.csv", usecols=pipeline_case.COLUMNS["opportunities"])
    sh = pd.read_csv(DEMO / "stage_history.csv", usecols=pipeline_case.COLUMNS["stage_history"])
    opp, sh = pipeline_state.prepared(opp, sh, "销售一部")
    weekly = baseline.weekly_revenue(opp, end="2025-12-31")
    leads = pd.read_csv(DEMO / "leads.csv", usecols=["created_at", "department"]).query("department == '销售一部'")
    weeks = pd.date_range("2024-01-01", "2025-12-29", freq="W-MON")
    lead = pd.DataFrame({"week": weeks, "leads": pipeline_drivers.weekly_counts(leads["created_at"], weeks)})
    return opp, sh, weekly, pipeline_drivers.inflow(opp, lead, pd.read_excel(DEMO / "campaigns.xlsx"), weeks[-1])


def test_demo_driver_finds_the_trade_show_lag(demo) -> None:
    """planted.json: new leads rise 1.6x from 14 to 42 days after each trade show ends."""
    d = demo[3].at(pd.Timestamp("2025-12-28 23:59:59"))
    assert d.used and d.first >= 2 and d.last <= 5 and d.lead_low > 1.1 and d.low > 1


def test_demo_miss_breakdown_gives_the_campaign_its_part(demo) -> None:
    opp, sh, weekly, flow = demo
    origin = pd.Timestamp("2025-05-19")  # the Hangzhou show ended on 16 May: its after-weeks are ahead
    m = miss_breakdown(opp, sh, weekly, origin, 12, False, "en", flow).set_index("component")
    assert m.loc["campaign", "forecast"] > 0 and m.loc["campaign", "actual_revenue"] == 0
    weeks = pd.date_range(origin + pd.Timedelta(days=7), periods=12, freq="W-MON")
    actual = weekly.set_index("week")["revenue"].reindex(weeks).fillna(0).sum()
    plain = pipeline_forecast.forecast_parts(opp, sh, weekly, origin, 12, False)
    with_c = pipeline_forecast.forecast_parts(opp, sh, weekly, origin, 12, False, flow)
    assert m["error"].sum() == pytest.approx(with_c.total.sum() - actual)
    assert m.loc["campaign", "forecast"] == pytest.approx(with_c.total.sum() - plain.total.sum())
    assert m.loc["new_deals", "forecast"] == pytest.approx(plain.new_plain.sum())


def test_prepared_codes_give_the_stages_the_text_ids_give(demo) -> None:
    opp, sh = demo[0], demo[1]
    raw = pd.read_csv(DEMO / "stage_history.csv", usecols=pipeline_case.COLUMNS["stage_history"])
    raw["entered_at"] = pd.to_datetime(raw["entered_at"])
    by_id = opp.assign(opportunity_id=opp["key"])
    for cut in [pd.Timestamp("2024-06-30"), pd.Timestamp("2025-03-31 12:00"), pd.Timestamp("2025-12-31")]:
        want = deal_stage_at(by_id, raw, cut)
        order, entered = pipeline_state.stage_at(opp, sh, cut)
        assert (np.asarray(pipeline_state.DEAL_STAGES, dtype=object)[order] == want["stage"].to_numpy()).all()
        assert (pd.to_datetime(entered) == pd.to_datetime(want["entered"].to_numpy())).all()


def test_read_filters_the_department_in_the_engine(tmp_path) -> None:
    opp, sh = _steady(weeks=3)
    other = opp.assign(opportunity_id="X" + opp["opportunity_id"], department="E")
    ws = Workspace(tmp_path, "case")
    ws.write("clean/opportunities", pd.concat([opp, other], ignore_index=True))
    ws.write("clean/stage_history", pd.concat([sh, sh.assign(opportunity_id="X" + sh["opportunity_id"])]))
    got = pipeline_read.opportunities(ws, "D")
    assert got["opportunity_id"].tolist() == opp["opportunity_id"].tolist()
    assert sorted(pipeline_read.stage_history(ws, "D")["opportunity_id"]) == sorted(sh["opportunity_id"])
    assert len(pipeline_read.stage_history(ws, None)) == 2 * len(sh)


def test_an_unsupported_driver_is_no_candidate_and_the_report_says_why() -> None:
    opp, sh = _steady(weeks=70)  # two deals every week, whatever the campaigns
    shows = _campaigns(["2024-02-09", "2024-05-10", "2024-08-09", "2024-11-08"])
    pf = pipeline_case.run(opp, sh, "D", "2025-04-30", "en", campaigns=shows)
    assert pf.driver is not None and not pf.driver.used
    assert "pipeline_campaign" not in set(pf.accuracy["method"])
    assert pf.forecast["campaign_effect"].fillna(0).eq(0).all()
    said = pipeline_case.describe_driver(pf, "D", "en")
    assert said.startswith("Campaign driver not used") and "campaign effect" in said
    assert pipeline_case.describe_driver(pf._replace(driver=None), "D", "zh").startswith(
        "未使用活动驱动因素：本案例没有活动表"
    )
