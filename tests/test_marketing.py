"""Tests of crmnb.present.charts: campaign figures, CPA alerts, channel × stage matrix, attribution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import attribution as analysis_attribution
from crmnb.analysis import marketing
from crmnb.demo.generator import generate
from crmnb.errors import NotEnoughData
from crmnb.intake import parse, read
from crmnb.intake.schema import DEFAULT_FILES
from crmnb.present import charts
from crmnb.present.charts import Chart

T = pd.Timestamp


# --------------------------------------------------------------------------- hand-built tables
@pytest.fixture()
def tables() -> dict[str, pd.DataFrame]:
    """Two campaigns with customers and one with spend but no lead, in January 2025."""
    campaigns = pd.DataFrame(
        {
            "campaign_id": ["A", "B", "C"],
            "name": ["Search Q1", "Mail Q1", "Fair"],
            "channel": ["search", "email", "trade_show"],
            "start_date": [T("2025-01-01")] * 3,
            "end_date": [T("2025-01-10")] * 3,
            "spend": [1000.0, 600.0, 700.0],
            "cpa_benchmark": [400.0, 500.0, 300.0],
        }
    )
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4", "L5", "L6", "L7"],
            "created_at": [T("2025-01-02")] * 4 + [T("2025-01-03")] * 3,
            "channel": ["search"] * 4 + ["email"] * 3,
            "campaign_id": ["A"] * 4 + ["B"] * 3,
            "customer_id": ["K1", "K2", None, None, "K5", None, None],
        }
    )
    opportunities = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3", "O5", "O6"],
            "lead_id": ["L1", "L2", "L3", "L5", "L6"],
            "customer_id": ["K1", "K2", "K3", "K5", "K6"],
            "status": ["won", "won", "lost", "won", "open"],
            "amount": [1000.0, 500.0, 800.0, 2000.0, 900.0],
            "closed_at": [T("2025-01-20"), T("2025-01-25"), T("2025-01-22"), T("2025-01-21"), pd.NaT],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["S1", "S2", "S3", "S4", "S5", "S6"],
            "customer_id": ["K1", "K2", "K5", "K1", "K1", "K5"],
            "opportunity_id": ["O1", "O2", "O5", None, None, None],
            "order_date": [
                T("2025-01-20"),
                T("2025-01-25"),
                T("2025-01-21"),  # the deals' own orders
                T("2025-02-10"),  # K1 buys again: counts for A
                T("2025-01-05"),  # K1 before its win: not "later"
                T("2025-06-01"),
            ],  # K5 again, after a window ending in March
            "amount": [1000.0, 500.0, 2000.0, 300.0, 999.0, 400.0],
        }
    )
    return {"campaigns": campaigns, "leads": leads, "opportunities": opportunities, "orders": orders}


def _perf(t, **kw) -> pd.DataFrame:
    return marketing.campaign_performance(t["campaigns"], t["leads"], t["opportunities"], t["orders"], **kw).set_index(
        "campaign_id"
    )


def test_campaign_cac_conversion_roi_by_hand(tables):
    p = _perf(tables)
    # A: 1000 spend, 4 leads, 2 won (L1, L2); revenue 1000 + 500 deals + 300 later order of K1
    a = p.loc["A"]
    assert (a["leads"], a["customers"]) == (4, 2)
    assert a["conversion"] == pytest.approx(2 / 4)
    assert a["cac"] == pytest.approx(1000 / 2)
    assert a["revenue"] == pytest.approx(1000 + 500 + 300)
    assert a["roi"] == pytest.approx((1800 - 1000) / 1000)
    # B: 600 spend, 3 leads, 1 won (L5, 2000); K5's June order is later and counts without a window
    b = p.loc["B"]
    assert (b["leads"], b["customers"]) == (3, 1)
    assert b["conversion"] == pytest.approx(1 / 3)
    assert b["cac"] == pytest.approx(600.0)
    assert b["revenue"] == pytest.approx(2000 + 400)
    assert b["roi"] == pytest.approx((2400 - 600) / 600)
    assert list(p.index) == ["A", "B", "C"]


def test_window_drops_later_orders_and_prorates_spend(tables):
    p = _perf(tables, start="2025-01-01", end="2025-03-31")
    assert p.loc["B", "revenue"] == pytest.approx(2000.0)  # the June order is outside
    assert p.loc["A", "spend"] == pytest.approx(1000.0)  # the whole run is inside
    half = _perf(tables, start="2025-01-06", end="2025-03-31")  # 5 of the 10 campaign days
    assert half.loc["A", "spend_share"] == pytest.approx(0.5)
    assert half.loc["A", "spend"] == pytest.approx(500.0)
    assert half.loc["A", "leads"] == 0  # the leads came on 2 and 3 January


def test_no_customers_gives_nan_cac_never_inf(tables):
    c = _perf(tables).loc["C"]
    assert (c["leads"], c["customers"]) == (0, 0)
    assert np.isnan(c["cac"]) and np.isnan(c["conversion"])
    assert c["roi"] == pytest.approx(-1.0)
    assert not np.isinf(_perf(tables)[["cac", "roi", "conversion"]].to_numpy(float)).any()


def test_ltv_to_cac_scalar_and_series(tables):
    p = _perf(tables, ltv_per_customer=2000.0)
    assert p.loc["A", "ltv_cac"] == pytest.approx(2000 / 500)
    s = _perf(tables, ltv_per_customer=pd.Series({"K1": 1000.0, "K2": 3000.0, "K5": 1200.0}))
    assert s.loc["A", "ltv"] == pytest.approx(2000.0)
    assert s.loc["B", "ltv_cac"] == pytest.approx(1200 / 600)
    assert np.isnan(s.loc["C", "ltv_cac"])


def test_ltv_to_cac_of_a_channel_without_spend_is_nan_not_infinite(tables):
    free = {**tables, "campaigns": tables["campaigns"].assign(spend=0.0)}
    p = marketing.channel_performance(
        free["campaigns"], free["leads"], free["opportunities"], free["orders"], ltv_per_customer=2000.0
    )
    won = p[p["customers"] > 0]
    assert len(won) and (won["cac"] == 0).all() and won["ltv_cac"].isna().all()


def test_channel_performance(tables):
    c = marketing.channel_performance(
        tables["campaigns"], tables["leads"], tables["opportunities"], tables["orders"]
    ).set_index("channel")
    assert c.loc["search", "cac"] == pytest.approx(500.0)
    assert c.loc["search", "cpa_benchmark"] == pytest.approx(400.0)
    assert c.loc["trade_show", "customers"] == 0 and np.isnan(c.loc["trade_show", "cac"])
    assert c["spend"].sum() == pytest.approx(2300.0)


def test_campaign_and_channel_tables_share_one_reading_of_the_outcomes(tables, monkeypatch):
    """Step 5 builds the campaign and the channel table from the same frames: the leads' outcomes are worked out
    once for both (a large company's are a million leads), and again for other frames or another window."""
    args = (tables["campaigns"], tables["leads"], tables["opportunities"], tables["orders"], "2025-01-01", "2025-01-31")
    alone = (marketing.campaign_performance(*args), marketing.channel_performance(*args))
    calls = []
    real = marketing.lead_outcomes

    def counted(*a, **k):
        calls.append(a[3:])
        return real(*a, **k)

    monkeypatch.setattr(marketing, "lead_outcomes", counted)
    leads = tables["leads"].copy()  # frames the cache has not seen
    args = (tables["campaigns"], leads, tables["opportunities"], tables["orders"], "2025-01-01", "2025-01-31")
    campaigns, channels = marketing.campaign_performance(*args), marketing.channel_performance(*args)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(campaigns, alone[0])
    pd.testing.assert_frame_equal(channels, alone[1])
    marketing.channel_performance(*args[:-1], "2025-01-15")
    marketing.channel_performance(tables["campaigns"], leads.copy(), *args[2:])
    assert len(calls) == 3


def test_unknown_campaign_of_a_lead_is_kept_with_unknown_spend(tables):
    leads = pd.concat(
        [
            tables["leads"],
            pd.DataFrame(
                {"lead_id": ["L9"], "created_at": [T("2025-01-04")], "channel": ["search"], "campaign_id": ["Z"]}
            ),
        ]
    )
    p = marketing.campaign_performance(tables["campaigns"], leads, tables["opportunities"], tables["orders"])
    assert p["campaign_id"].tolist() == ["A", "B", "C", "Z"]
    assert np.isnan(p.set_index("campaign_id").loc["Z", "spend"])


def test_campaign_performance_failures(tables):
    with pytest.raises(ValueError, match="table 'leads' is empty"):
        marketing.campaign_performance(
            tables["campaigns"], tables["leads"].iloc[:0], tables["opportunities"], tables["orders"]
        )
    with pytest.raises(ValueError, match="campaigns.*spend"):
        marketing.campaign_performance(
            tables["campaigns"].drop(columns="spend"), tables["leads"], tables["opportunities"], tables["orders"]
        )
    with pytest.raises(ValueError, match="campaign_id must be unique"):
        marketing.campaign_performance(
            pd.concat([tables["campaigns"]] * 2), tables["leads"], tables["opportunities"], tables["orders"]
        )
    with pytest.raises(ValueError, match="opportunities.*closed_at"):
        marketing.channel_performance(
            tables["campaigns"], tables["leads"], tables["opportunities"].drop(columns="closed_at"), tables["orders"]
        )


# --------------------------------------------------------------------------- alerts
def _alert_frame() -> pd.DataFrame:
    bench = 1000.0
    return pd.DataFrame(
        {
            "campaign_id": ["over31", "over29", "exact30", "none", "idle"],
            "spend": [1310.0 * 2, 1290.0 * 2, 1300.0, 800.0, 0.0],
            "customers": [2, 2, 1, 0, 0],
            "cac": [1310.0, 1290.0, 1300.0, np.nan, np.nan],
            "cpa_benchmark": [bench] * 5,
        }
    )


def test_cpa_alerts_31_over_alerts_29_does_not():
    a = marketing.cpa_alerts(_alert_frame()).set_index("campaign_id")
    assert set(a.index) == {"over31", "none"}
    assert a.loc["over31", "alert"] == "over_benchmark"
    assert a.loc["over31", "overrun"] == pytest.approx(0.31)
    assert a.loc["over31", "excess_spend"] == pytest.approx(2620 - 2000)
    assert a.loc["none", "alert"] == "no_customers"  # spend, nobody won: flagged on its own
    assert "idle" not in a.index  # no spend, nothing to flag


def test_cpa_alerts_tolerance_is_configurable():
    a = marketing.cpa_alerts(_alert_frame(), tolerance=0.25)
    assert set(a.loc[a["alert"] == "over_benchmark", "campaign_id"]) == {"over31", "over29", "exact30"}


def test_cpa_alerts_failures():
    with pytest.raises(ValueError, match="table 'performance' is empty"):
        marketing.cpa_alerts(_alert_frame().iloc[:0])
    with pytest.raises(ValueError, match="cpa_benchmark"):
        marketing.cpa_alerts(_alert_frame().drop(columns="cpa_benchmark"))
    with pytest.raises(ValueError, match="tolerance"):
        marketing.cpa_alerts(_alert_frame(), tolerance=-0.1)


# --------------------------------------------------------------------------- attribution
def _touches(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Touches from (lead, channel, time) rows; campaign = channel upper-cased."""
    return pd.DataFrame(
        {
            "touch_id": [f"T{i:02d}" for i in range(len(rows))],
            "lead_id": [r[0] for r in rows],
            "channel": [r[1] for r in rows],
            "campaign_id": [r[1].upper() for r in rows],
            "touched_at": [T(r[2]) for r in rows],
        }
    )


@pytest.fixture()
def journey() -> tuple[pd.DataFrame, pd.DataFrame]:
    """L1: A, B, C, D then E after creation; L2: one touch; L3: two; L4: none before creation."""
    touches = _touches(
        [
            ("L1", "c", "2025-01-03"),
            ("L1", "a", "2025-01-01"),
            ("L1", "d", "2025-01-04"),  # out of order on purpose
            ("L1", "b", "2025-01-02"),
            ("L1", "e", "2025-01-20"),  # e: after the lead was created
            ("L2", "b", "2025-01-05"),
            ("L3", "a", "2025-01-01"),
            ("L3", "c", "2025-01-02"),
            ("L4", "d", "2025-02-01"),
            ("L9", "a", "2025-01-01"),  # not a conversion
        ]
    )
    conversions = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4"],
            "created_at": [T("2025-01-10"), T("2025-01-06"), T("2025-01-03"), T("2025-01-15")],
            "value": [1000.0, 200.0, 100.0, 50.0],
        }
    )
    return touches, conversions


def _credit(att: analysis_attribution.Attribution, lead: str) -> pd.DataFrame:
    return att.credits[att.credits["lead_id"] == lead].set_index("channel")[list(att.models)]


def test_four_touches_under_each_model(journey):
    att = analysis_attribution.attribute(*journey)
    c = _credit(att, "L1")
    assert list(c.index) == ["a", "b", "c", "d"]  # by time; e came after creation and is ignored
    assert c["first_touch"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert c["last_touch"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert c["linear"].tolist() == pytest.approx([0.25] * 4)
    assert c["position_based"].tolist() == pytest.approx([0.4, 0.1, 0.1, 0.4])


def test_one_and_two_touches(journey):
    att = analysis_attribution.attribute(*journey)
    one = _credit(att, "L2")
    assert one.loc["b"].tolist() == [1.0] * len(att.models)
    two = _credit(att, "L3")
    assert two["position_based"].tolist() == pytest.approx([0.5, 0.5])
    assert two["linear"].tolist() == pytest.approx([0.5, 0.5])
    assert two["first_touch"].tolist() == [1.0, 0.0]


def test_touches_after_cutoff_are_ignored_and_untouched_conversions_kept(journey):
    touches, conversions = journey
    att = analysis_attribution.attribute(touches, conversions)
    assert "e" not in set(att.credits["channel"])
    assert _credit(att, "L4").index.tolist() == [marketing.NO_TOUCH]  # its only touch came later
    later = analysis_attribution.attribute(
        touches, conversions.assign(converted_at=T("2025-03-01")), cutoff="converted_at"
    )
    assert _credit(later, "L1").index.tolist() == ["a", "b", "c", "d", "e"]
    assert _credit(later, "L4").index.tolist() == ["d"]


def test_credits_sum_to_one_per_conversion_and_to_the_totals(journey):
    touches, conversions = journey
    att = analysis_attribution.attribute(touches, conversions)
    per = att.credits.groupby("lead_id")[list(att.models)].sum()
    assert per.to_numpy() == pytest.approx(np.ones((4, len(att.models))))
    for m in att.models:
        assert att.channel[f"{m}_conversions"].sum() == pytest.approx(len(conversions))
        assert att.channel[f"{m}_revenue"].sum() == pytest.approx(conversions["value"].sum())
        assert att.campaign[f"{m}_conversions"].sum() == pytest.approx(len(conversions))
    ch = att.channel.set_index("channel")
    # a: L1 first (1000) + L3 first (100) under first touch
    assert ch.loc["a", "first_touch_revenue"] == pytest.approx(1100.0)
    # b: L1 position 0.1 × 1000 + L2 all of 200
    assert ch.loc["b", "position_based_revenue"] == pytest.approx(100.0 + 200.0)
    assert att.campaign.set_index("campaign_id").loc["A", "linear_conversions"] == pytest.approx(0.25 + 0.5)


def test_custom_position_weights(journey):
    att = analysis_attribution.attribute(*journey, models=("position_based",), position_weights=(0.3, 0.4, 0.3))
    assert _credit(att, "L1")["position_based"].tolist() == pytest.approx([0.3, 0.2, 0.2, 0.3])
    assert _credit(att, "L3")["position_based"].tolist() == pytest.approx([0.5, 0.5])
    assert list(att.channel.columns) == ["channel", "position_based_conversions", "position_based_revenue"]


def test_attribute_failures(journey):
    touches, conversions = journey
    with pytest.raises(NotEnoughData, match="^Attribution not done: it needs leads won in the period") as err:
        analysis_attribution.attribute(touches, conversions.iloc[:0])
    assert err.value.zh.startswith("未做归因分析")
    assert list(analysis_attribution.empty_attribution(("linear",)).columns) == [
        "channel",
        "linear_conversions",
        "linear_revenue",
    ]
    with pytest.raises(ValueError, match="conversions.*created_at"):
        analysis_attribution.attribute(touches, conversions.drop(columns="created_at"))
    with pytest.raises(ValueError, match="unknown attribution model"):
        analysis_attribution.attribute(touches, conversions, models=("markov",))
    with pytest.raises(ValueError, match="position_weights"):
        analysis_attribution.attribute(touches, conversions, position_weights=(0.5, 0.2, 0.4))
    with pytest.raises(ValueError, match="more than once"):
        analysis_attribution.attribute(touches, pd.concat([conversions, conversions]))
    with pytest.raises(ValueError, match="touches.*touched_at"):
        analysis_attribution.attribute(touches.drop(columns="touched_at"), conversions)


def test_won_leads(tables):
    w = analysis_attribution.won_leads(tables["leads"], tables["opportunities"])
    assert w.set_index("lead_id")["value"].to_dict() == {"L1": 1000.0, "L2": 500.0, "L5": 2000.0}
    with pytest.raises(ValueError, match="table 'leads' is empty"):
        analysis_attribution.won_leads(tables["leads"].iloc[:0], tables["opportunities"])


# --------------------------------------------------------------------------- channel x stage
@pytest.fixture()
def funnel_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Channel x: never contacted, contacted, proposal, won; channel y: needs confirmed then lost, contacted."""
    day = T("2025-01-02")
    leads = pd.DataFrame(
        {
            "lead_id": ["X1", "X2", "X3", "X4", "Y1", "Y2"],
            "channel": ["x", "x", "x", "x", "y", "y"],
            "created_at": [day] * 6,
            "first_contact_at": [pd.NaT, day, day, day, day, day],
        }
    )
    opps = pd.DataFrame(
        {"opportunity_id": ["O3", "O4", "O5"], "lead_id": ["X3", "X4", "Y1"], "status": ["open", "won", "lost"]}
    )
    sh = pd.DataFrame(
        {
            "opportunity_id": ["O3", "O3", "O4", "O4", "O4", "O4", "O5", "O5"],
            "stage": [
                "needs_confirmed",
                "proposal",
                "needs_confirmed",
                "proposal",
                "negotiation",
                "won",
                "needs_confirmed",
                "lost",
            ],
            "entered_at": [day] * 8,
        }
    )
    return leads, opps, sh


STAGES = ("lead", "first_contact", "needs_confirmed", "proposal", "won")


def test_channel_stage_matrix_by_hand(funnel_tables):
    m = marketing.channel_stage_matrix(*funnel_tables, stages=STAGES)
    reach = marketing.stage_matrix(m)
    assert reach.loc["x"].tolist() == pytest.approx([1.0, 0.75, 0.5, 0.5, 0.25])
    assert reach.loc["y"].tolist() == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])
    assert reach.loc[marketing.ALL_CHANNELS].tolist() == pytest.approx([1.0, 5 / 6, 3 / 6, 2 / 6, 1 / 6])
    step = marketing.stage_matrix(m, "step_rate")
    assert step.columns[0] == "lead → first_contact"
    assert step.loc["x"].tolist() == pytest.approx([0.75, 2 / 3, 1.0, 0.5])
    assert step.loc["y"].iloc[:3].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert np.isnan(step.loc["y"].iloc[3])  # nobody reached proposal: no rate, not 0
    x = m[m["channel"] == "x"].set_index("stage")
    assert x["reached"].tolist() == [4, 3, 2, 2, 1] and (x["leads"] == 4).all()


def test_channel_stage_matrix_failures(funnel_tables):
    leads, opps, sh = funnel_tables
    with pytest.raises(ValueError, match="table 'leads' is empty"):
        marketing.channel_stage_matrix(leads.iloc[:0], opps, sh)
    with pytest.raises(ValueError, match="unknown stage"):
        marketing.channel_stage_matrix(leads, opps, sh, stages=("lead", "signed"))
    with pytest.raises(ValueError, match="funnel's order"):
        marketing.channel_stage_matrix(leads, opps, sh, stages=("won", "lead"))
    with pytest.raises(ValueError, match="leads.*first_contact_at"):
        marketing.channel_stage_matrix(leads.drop(columns="first_contact_at"), opps, sh)


def test_heatmap_chart(funnel_tables):
    m = marketing.stage_matrix(marketing.channel_stage_matrix(*funnel_tables, stages=STAGES))
    chart = charts.heatmap(m, "Reach by channel", labels={"won": "赢单"}, lang="en")
    assert isinstance(chart, Chart) and chart.png.startswith(b"\x89PNG")
    assert chart.alt.startswith("Reach by channel. Heatmap")
    assert "x: lead 100%, first contact 75%, needs confirmed 50%, proposal/quote 50%, 赢单 25%" in chart.alt
    with pytest.raises(ValueError, match="empty"):
        charts.heatmap(m.iloc[:0], "nothing", lang="en")


# --------------------------------------------------------------------------- demo data
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, pd.DataFrame], dict]:
    out = tmp_path_factory.mktemp("mkt_demo")
    generate(out, scale=0.3)
    names = ("campaigns", "leads", "opportunities", "orders", "touches", "stage_history")
    t = {n: parse.intake(read.read_export(Path(out) / DEFAULT_FILES[n], n), n).table for n in names}
    return t, json.loads((out / "planted.json").read_text(encoding="utf-8"))


def test_demo_campaigns_and_planted_alerts(demo):
    t, planted = demo
    perf = marketing.campaign_performance(t["campaigns"], t["leads"], t["opportunities"], t["orders"])
    assert perf["campaign_id"].tolist() == t["campaigns"]["campaign_id"].tolist()
    alerts = marketing.cpa_alerts(perf)
    over = {c["campaign_id"] for c in planted["over_benchmark_campaigns"]}
    assert over and set(alerts.loc[alerts["alert"] == "over_benchmark", "campaign_id"]) == over
    assert set(alerts.loc[alerts["alert"] == "no_customers", "campaign_id"]) == set(
        planted["campaigns_without_acquisitions"]
    )
    p = perf.set_index("campaign_id")
    for c in planted["over_benchmark_campaigns"]:
        assert p.loc[c["campaign_id"], "customers"] == c["acquired_customers"]
        assert p.loc[c["campaign_id"], "cac"] == pytest.approx(c["cpa"], abs=0.01)


def test_demo_attribution_reconciles(demo):
    t, _ = demo
    conv = analysis_attribution.won_leads(t["leads"], t["opportunities"])
    att = analysis_attribution.attribute(t["touches"], conv)
    per = att.credits.groupby("lead_id")[list(att.models)].sum()
    assert len(per) == len(conv) and np.allclose(per.to_numpy(), 1.0)
    last = att.channel.set_index("channel")["last_touch_conversions"]
    # the demo's last touch is the lead's own channel
    assert last.to_dict() == pytest.approx(
        conv["lead_id"].map(t["leads"].set_index("lead_id")["channel"]).value_counts().astype(float).to_dict()
    )


def test_time_decay_halves_per_half_life(journey):
    """Half-life 1 day: touches 9, 8, 7 and 6 days before creation weigh 1:2:4:8."""
    att = analysis_attribution.attribute(*journey, models=("time_decay",), half_life_days=1.0)
    assert _credit(att, "L1")["time_decay"].tolist() == pytest.approx([1 / 15, 2 / 15, 4 / 15, 8 / 15])
    assert _credit(att, "L3")["time_decay"].tolist() == pytest.approx([1 / 3, 2 / 3])  # 2 and 1 days before
    assert _credit(att, "L2")["time_decay"].tolist() == [1.0]
    ch = att.channel.set_index("channel")["time_decay_conversions"]
    # a: L1 1/15 + L3 1/3; d: L1 8/15 + L4 (no touch before creation) goes to (no touch)
    assert ch["a"] == pytest.approx(1 / 15 + 1 / 3)
    assert ch.sum() == pytest.approx(4.0)  # the total conversions
    with pytest.raises(ValueError, match="half_life_days"):
        analysis_attribution.attribute(*journey, half_life_days=0)


def test_w_shaped_first_lead_and_opportunity_touches(journey):
    """30% first, 30% lead creation, 30% opportunity creation, 10% over the rest."""
    touches, conversions = journey
    att = analysis_attribution.attribute(touches, conversions, models=("w_shaped",))
    # no opportunity time: the lead-creation touch d takes both milestone shares
    assert _credit(att, "L1")["w_shaped"].tolist() == pytest.approx([0.3, 0.05, 0.05, 0.6])
    assert _credit(att, "L3")["w_shaped"].tolist() == pytest.approx([1 / 3, 2 / 3])  # 0.3 and 0.6, scaled to 1
    later = conversions.assign(converted_at=T("2025-03-01"), opportunity_at=T("2025-01-25"))
    att = analysis_attribution.attribute(touches, later, models=("w_shaped",), cutoff="converted_at")
    # a first, d the last before the lead (01-10), e the last before the opportunity (01-25)
    assert _credit(att, "L1")["w_shaped"].tolist() == pytest.approx([0.3, 0.05, 0.05, 0.3, 0.3])
    assert att.channel["w_shaped_conversions"].sum() == pytest.approx(4.0)
    assert att.channel["w_shaped_revenue"].sum() == pytest.approx(conversions["value"].sum())
    ch = att.channel.set_index("channel")["w_shaped_revenue"]
    assert ch["e"] == pytest.approx(0.3 * 1000)


def test_won_leads_carry_the_first_opportunity_time():
    leads = pd.DataFrame({"lead_id": ["L1"], "created_at": [T("2025-01-02")]})
    opps = pd.DataFrame(
        {
            "lead_id": ["L1", "L1"],
            "status": ["lost", "won"],
            "amount": [10.0, 100.0],
            "created_at": [T("2025-01-05"), T("2025-01-09")],
            "closed_at": [T("2025-01-20"), T("2025-02-01")],
        }
    )
    assert analysis_attribution.won_leads(leads, opps)["opportunity_at"].tolist() == [T("2025-01-05")]
