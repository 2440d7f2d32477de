"""The demo's planted marketing structure is found: the e-mail A/B difference, the UTM parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from crmnb.analysis import engagement, engagement_text
from crmnb.demo.generator import generate
from crmnb.intake.utm import utm_of


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo at scale 0.2."""
    out = tmp_path_factory.mktemp("demo_campaigns")
    generate(out, scale=0.2)
    return out


def test_the_planted_ab_difference_is_found_with_its_interval(demo):
    key = json.loads((demo / "planted.json").read_text(encoding="utf-8"))["email_ab_test"]
    events = pd.read_csv(demo / "email_events.csv", parse_dates=["occurred_at"], dtype={"variant": str})
    campaigns = pd.read_excel(demo / "campaigns.xlsx")
    assert set(events.loc[events["variant"].notna(), "email_id"]) == set(key["email_ids"])
    ab = engagement.ab_tests(events, campaigns, "2025-10-01", "2025-12-31")
    opens = ab.set_index("metric").loc["open_rate"]
    assert opens["campaign_id"] == key["campaign_id"]
    assert key["subjects"]["A"] in opens["ab_test"] and key["subjects"]["B"] in opens["ab_test"]
    assert opens["ci_low"] > 0.03  # B is opened more, and the interval says so
    planted = key["planted_open_rate"]["B"] - key["planted_open_rate"]["A"]
    assert opens["ci_low"] < planted + 0.03 and opens["difference"] == pytest.approx(planted, abs=0.06)
    text = engagement_text.ab_sentences(ab, "en")[0]
    assert "95% interval" in text and key["campaign_id"] in text


def test_landing_urls_carry_the_campaign_in_their_utm_parameters(demo):
    key = json.loads((demo / "planted.json").read_text(encoding="utf-8"))["utm"]
    leads = pd.read_csv(demo / "leads.csv", dtype=str)
    parsed = leads["landing_url"].map(utm_of)
    tagged = leads[leads["landing_url"].notna()]
    assert (parsed[tagged.index].str[2] == tagged["campaign_id"]).all()
    assert leads.loc[leads["channel"].isin(key["without_landing_page"]), "landing_url"].isna().all()
    by_channel = tagged.assign(source=parsed[tagged.index].str[0]).groupby("channel")["source"].first()
    assert by_channel.to_dict() == {c: v["utm_source"] for c, v in key["channels"].items()}
