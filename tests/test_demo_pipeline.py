"""The demo's planted pipeline: stage win rates, rep x industry strengths, close-date slippage, seasonality, lead lag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.demo import generate


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo at scale 0.5."""
    out = tmp_path_factory.mktemp("demo_pipeline")
    generate(out, scale=0.5)
    return out


def _opps(demo: Path) -> pd.DataFrame:
    op = pd.read_csv(demo / "opportunities.csv", dtype=str)
    for c in ("created_at", "closed_at", "expected_close_date"):
        op[c] = pd.to_datetime(op[c])
    op["amount"] = op["amount"].astype(float)
    return op


def test_win_rate_rises_with_the_stage_reached(demo: Path) -> None:
    op, sh = _opps(demo), pd.read_csv(demo / "stage_history.csv", dtype=str)
    closed = op[op["status"] != "open"].set_index("opportunity_id")["status"].eq("won")
    rates = [
        closed[closed.index.isin(sh.loc[sh["stage"] == s, "opportunity_id"])].mean()
        for s in ("needs_confirmed", "proposal", "negotiation")
    ]
    planted = json.loads((demo / "planted.json").read_text())["pipeline"]["stage_win_rates"]
    assert rates[0] + 0.1 < rates[1] < rates[2] - 0.1
    assert np.allclose(rates, list(planted.values()), atol=1e-4)


def test_most_won_deals_close_after_their_expected_date(demo: Path) -> None:
    op = _opps(demo)
    assert op["expected_close_date"].notna().all()
    won = op[op["status"] == "won"]
    late = (won["closed_at"].dt.normalize() > won["expected_close_date"]).mean()
    assert 0.75 <= late <= 0.97
    assert (op.loc[op["status"] == "open", "expected_close_date"] > "2026-03-31").any()  # planned dates lie ahead


def test_planted_rep_industry_pairs_win_more(demo: Path) -> None:
    op, cu = _opps(demo), pd.read_csv(demo / "customers.csv", dtype=str)
    op = op.merge(cu[["customer_id", "industry"]], on="customer_id")
    closed = op[op["status"] != "open"].assign(won=lambda d: d["status"] == "won")
    pairs = json.loads((demo / "planted.json").read_text())["pipeline"]["rep_industry_strengths"]
    assert len(pairs) == 6
    for p in pairs:
        same = closed[(closed["industry"] == p["industry"]) & (closed["department"] == p["department"])]
        mine = same["owner_rep"] == p["owner_rep"]
        assert same.loc[mine, "won"].mean() > same.loc[~mine, "won"].mean() + 0.15, p


def test_quarter_end_deals_are_larger(demo: Path) -> None:
    won = _opps(demo).query("status == 'won'")
    month = (won["closed_at"].dt.month - 1) % 3
    med = won.groupby(month)["amount"].median()
    assert med[0] < med[1] < med[2]


def test_leads_rise_weeks_after_a_trade_show(demo: Path) -> None:
    le = pd.read_csv(demo / "leads.csv", dtype=str)
    day = pd.to_datetime(le["created_at"]).dt.normalize()
    per_day = day.value_counts()
    lag = json.loads((demo / "planted.json").read_text())["pipeline"]["campaign_lead_lag"]
    camp = pd.read_excel(demo / "campaigns.xlsx", sheet_name="campaigns")
    ratios = []
    for end in pd.to_datetime(camp.loc[camp["campaign_id"].isin(lag["campaigns"]), "end_date"]):
        after = per_day[(per_day.index >= end + pd.Timedelta(days=14)) & (per_day.index < end + pd.Timedelta(days=42))]
        q0 = end.to_period("Q").start_time
        same_q = per_day[(per_day.index >= q0) & (per_day.index < q0 + pd.offsets.QuarterBegin(startingMonth=1))]
        ratios.append(after.mean() / same_q.mean())
    assert np.mean(ratios) > 1.15
