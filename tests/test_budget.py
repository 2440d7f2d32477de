"""Tests of crmnb.analysis.budget: revenue per CNY by channel, its interval, and the suggested move."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import budget

T = pd.Timestamp


def _tables(n: int = 40):
    """Channel a: n leads, half won at 300 → revenue 150 n on spend 1,000; channel b: n leads, a tenth won at
    100 → revenue 10 n on spend 1,000."""
    ids_a = [f"A{i}" for i in range(n)]
    ids_b = [f"B{i}" for i in range(n)]
    leads = pd.DataFrame(
        {
            "lead_id": ids_a + ids_b,
            "created_at": T("2025-01-05"),
            "channel": ["a"] * n + ["b"] * n,
            "campaign_id": ["CA"] * n + ["CB"] * n,
        }
    )
    won_a, won_b = ids_a[: n // 2], ids_b[: n // 10]
    opps = pd.DataFrame(
        {
            "opportunity_id": [f"O{x}" for x in won_a + won_b],
            "lead_id": won_a + won_b,
            "customer_id": [f"K{x}" for x in won_a + won_b],
            "status": "won",
            "amount": [300.0] * len(won_a) + [100.0] * len(won_b),
            "closed_at": T("2025-02-01"),
        }
    )
    orders = pd.DataFrame({"customer_id": [], "order_date": pd.to_datetime([]), "amount": []})
    campaigns = pd.DataFrame({"campaign_id": ["CA", "CB"], "channel": ["a", "b"], "spend": [1000.0, 1000.0]})
    channels = pd.DataFrame({"channel": ["a", "b"], "spend": [1000.0, 1000.0]})
    return campaigns, channels, leads, opps, orders


def test_return_and_interval_by_hand():
    n = 40
    r = budget.channel_returns(*_tables(n)).set_index("channel")
    assert r.loc["a", "return_per_cny"] == pytest.approx(150 * n / 1000)
    assert r.loc["b", "return_per_cny"] == pytest.approx(10 * n / 1000)
    # the sum's standard error: sqrt(n × sample variance) / spend; a: 0/300 half and half
    var_a = np.var([300.0] * (n // 2) + [0.0] * (n // 2), ddof=1)
    se_a = np.sqrt(n * var_a) / 1000
    assert r.loc["a", "ci_low"] == pytest.approx(6.0 - 1.959964 * se_a)
    assert r.loc["a", "ci_high"] == pytest.approx(6.0 + 1.959964 * se_a)
    assert r["comparable"].all()


def test_move_goes_from_the_weakest_to_the_strongest_and_says_association():
    move = budget.suggest_move(budget.channel_returns(*_tables()), share=0.1)
    assert (move["from"], move["to"], move["amount"]) == ("b", "a", 100.0)
    assert move["gain"] == pytest.approx(100.0 * (6.0 - 0.4))
    assert move["clear"] and move["gain_low"] < move["gain"] < move["gain_high"]
    en = budget.move_sentence(move, "en")
    assert en.startswith("Move budget from b to a") and "association" in en and "560" in en
    assert "相关关系" in budget.move_sentence(move, "zh")


def test_too_few_leads_give_no_move():
    r = budget.channel_returns(*_tables(10))
    assert not r["comparable"].any()
    assert budget.suggest_move(r) is None
    assert budget.move_sentence(None, "en").startswith("No budget move suggested")


def test_campaign_settings_in_the_case_file_are_checked(tmp_path):
    import yaml

    from crmnb.errors import CaseFileError
    from crmnb.params import load_case

    src = yaml.safe_load(Path("parameters/lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    src["data"] = {"dir": "/work/main/data/demo"}
    src["campaigns"] = {"attribution_half_life_days": 14, "budget_move_share": 0.2}
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(src, allow_unicode=True), encoding="utf-8")
    case = load_case(good)
    assert (case.campaigns.attribution_half_life_days, case.campaigns.budget_move_share) == (14, 0.2)
    assert case.campaigns.ab_min_sends == 30  # the method's default
    src["campaigns"] = {"half_life": 14}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(src, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CaseFileError, match=r"bad.yaml.*campaigns.*half_life|campaigns\.half_life"):
        load_case(bad)
