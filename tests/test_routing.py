"""Routing advice: shrunk rep x segment win rates, moves to credibly better reps, the gain and the workload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import routing, scoring
from crmnb.analysis.scoring_features import COLUMNS
from crmnb.analysis.win_rates import estimate_strength, shrunk_rates
from crmnb.params.predict import PredictSettings

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def test_shrunk_rates_by_hand() -> None:
    closed = pd.DataFrame({"rep": list("aaabbbb"), "seg": list("xxyxxyy"), "won": [1, 1, 0, 1, 0, 0, 0]})
    cells = shrunk_rates(closed, "rep", "seg", strength=4.0).set_index(["rep", "seg"])
    overall = 3 / 7
    rep_a = (2 + 4 * overall) / (3 + 4)
    seg_x = (3 + 4 * overall) / (4 + 4)
    prior = rep_a * seg_x / overall
    assert cells.loc[("a", "x"), "rate"] == pytest.approx((2 + 4 * prior) / (2 + 4))
    assert cells.loc[("a", "x"), "low"] < cells.loc[("a", "x"), "rate"] < cells.loc[("a", "x"), "high"]
    # a small cell moves to its prior; the raw rate of 1.0 on two deals does not stand
    assert cells.loc[("a", "x"), "raw_rate"] == 1.0 and cells.loc[("a", "x"), "rate"] < 0.85


def test_strength_is_large_when_cells_vary_no_more_than_noise() -> None:
    n = np.full(20, 50)
    assert estimate_strength(np.full(20, 25), n, np.full(20, 0.5)) == 200.0
    wins = np.array([10, 40] * 10)  # 20% and 80%: far more spread than binomial noise
    assert estimate_strength(wins, n, np.full(20, 0.5)) < 5


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="missing column"):
        shrunk_rates(pd.DataFrame({"rep": ["a"]}), "rep", "seg")


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The demo's closed deals, scored open records and routing advice for Sales 1 at the export date."""
    tables = {t: pd.read_csv(DEMO / f"{t}.csv", usecols=c) for t, c in COLUMNS.items()}
    res = scoring.train_and_evaluate(tables, "2026-03-31", window_days=90)
    scored = scoring.score_open(res, tables, "en")
    closed = routing.closed_deals(tables, "2026-03-31")
    return closed, scored, routing.advise(scored, closed, "销售一部", PredictSettings())


def test_routing_recovers_the_planted_rep_industry_strengths(demo) -> None:
    closed, _, _ = demo
    rates = routing.rate_table(closed)
    ind = rates[rates["dimension"] == "industry"]
    top = ind.sort_values("shrunk_win_rate", ascending=False).groupby(["department", "win_segment"]).head(1)
    best = {(r.department, r.win_segment): r.owner_rep for r in top.itertuples()}
    planted = json.loads((DEMO / "planted.json").read_text())["pipeline"]["rep_industry_strengths"]
    for p in planted:
        assert best[(p["department"], p["industry"])] == p["owner_rep"], p
    assert set(rates["dimension"]) == {"industry", "size", "channel"}


def test_advice_moves_deals_to_planted_reps_within_capacity(demo) -> None:
    closed, scored, advice = demo
    moved = advice[advice["suggested_rep"] != advice["owner_rep"]]
    planted = json.loads((DEMO / "planted.json").read_text())["pipeline"]["rep_industry_strengths"]
    strong = {(p["owner_rep"], p["industry"]) for p in planted if p["department"] == "销售一部"}
    assert len(moved) >= 3
    assert np.mean([(r.suggested_rep, r.industry) in strong for r in moved.itertuples()]) >= 0.6
    assert (moved["win_gain"] > 0).all() and (moved["gain_low"] > 0).mean() >= 0.8
    assert (moved["suggested_rate"] - moved["current_rate"]).round(9).eq(moved["win_gain"].round(9)).all()
    load = routing.workload(advice, scored, "销售一部")
    assert load["deals_taken"].sum() == load["deals_given"].sum() == len(moved)
    assert (load["open_deals_after"] == load["open_deals"] - load["deals_given"] + load["deals_taken"]).all()
    cap = np.maximum(2, np.ceil(0.5 * load["open_deals"]))
    assert (load["deals_taken"] <= cap).all()


def test_advice_sentence_has_the_gain_interval_and_the_caveat(demo) -> None:
    _, _, advice = demo
    en = routing.describe(advice, "销售一部", "en")
    zh = routing.describe(advice, "销售一部", "zh")
    draws = advice.attrs["gain_draws"]
    lo, hi = np.quantile(draws, [0.05, 0.95])
    assert f"{lo:.1f} to {hi:.1f}" in en and "observational" in en
    assert "观察数据" in zh and "Sales 1" in en


def test_no_closed_deals_gives_empty_advice() -> None:
    empty = pd.DataFrame(columns=["owner_rep", "industry", "won", "department"])
    assert routing.advise(scoring.empty_scored(), empty, "D", PredictSettings()).empty
    assert routing.rate_table(empty).empty
