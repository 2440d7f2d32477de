"""The e-mail event presets (Salesforce CampaignMember, HubSpot marketing e-mail events) map their fixtures
onto the canonical e-mail events, and each fixture, as a case, runs end to end with its e-mail funnel.

Figures are recomputed from the fixture CSVs by hand (counted in the docstrings), sharing no code with crmnb.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from sheets import read_sheet
from test_presets_run import FIX, write_case

from crmnb.intake.mappings import resolve
from crmnb.run.steps import run_case


def _mapped(preset: str, file: str) -> pd.DataFrame:
    """Return a fixture mapped by a preset, as text."""
    raw = pd.read_csv(FIX / file, dtype=str, keep_default_na=False, na_values=[""])
    return resolve(preset, "email_events").apply(raw, file)


def test_salesforce_campaign_members_become_events():
    df = _mapped("salesforce_campaign_member", "salesforce/CampaignMember.csv")
    assert df["event"].tolist()[:6] == ["click", "click", "open", "sent", "bounce", "unsubscribe"]
    assert df["recipient_id"].iloc[0] == "00Q5g00000LEAD001" and df["lead_id"].iloc[0] == "00Q5g00000LEAD001"
    # a responded member is dated by its first response, the others by when they were added
    assert df["occurred_at"].iloc[0] == "2025-01-05"
    assert df["occurred_at"].iloc[3] == "2025-01-03T01:00:00.000+0000"


def test_hubspot_events_key_recipients_and_read_mailings_as_variants():
    df = _mapped("hubspot_email_events", "hubspot/email_events.csv")
    assert set(df["event"]) == {"sent", "open", "click", "bounce", "unsubscribe"}
    assert df["campaign_id"].eq("90001").all() and set(df["variant"]) == {"31001", "31002"}
    # recipients are digests of the normalised address, never the address itself
    yan = df.loc[df["email"].str.casefold() == "yan.wu@example.com", "recipient_id"]
    assert yan.nunique() == 1 and "@" not in yan.iloc[0]


def _with_events(tmp: Path, base: str, file: str, preset: str, campaigns: list[str]) -> Path:
    """Write a preset case (tests/test_presets_run.py) with the fixture's e-mail events and their campaigns."""
    case_file = write_case(tmp, base)
    case = yaml.safe_load(case_file.read_text(encoding="utf-8"))
    case["data"]["tables"]["email_events"] = {"file": str(FIX / file), "mapping": preset}
    case_file.write_text(yaml.safe_dump(case, allow_unicode=True), encoding="utf-8")
    camp = pd.read_csv(tmp / "data" / "campaigns.csv", dtype=str)
    extra = pd.DataFrame({"campaign_id": campaigns, "name": [f"Mail {c}" for c in campaigns], "channel": "email"})
    pd.concat([camp, extra.assign(start_date="2025-01-01", end_date="2025-06-30", spend="500")]).to_csv(
        tmp / "data" / "campaigns.csv", index=False
    )
    return case_file


def _funnel(out: Path) -> pd.DataFrame:
    """Return the e-mail funnel sheet as the workbook shows it."""
    return read_sheet(out / "tables.xlsx", "E-mail funnel")


@pytest.mark.e2e
def test_salesforce_campaign_member_case_runs(tmp_path: Path):
    """CAMP001: six members; opened = Clicked, Responded, Opened (3); clicked = 2; the two clickers are
    leads LEAD001 and LEAD002, whose opportunities OPPT001 (won) and OPPT002 (lost): 1 won."""
    case = _with_events(
        tmp_path,
        "salesforce",
        "salesforce/CampaignMember.csv",
        "salesforce_campaign_member",
        ["7015g00000CAMP001", "7015g00000CAMP002"],
    )
    result = run_case(case, tmp_path / "out", progress=None, index=False)
    f = _funnel(result.report.parent)
    c1 = f[f["campaign"] == "Mail 7015g00000CAMP001"].set_index("stage")["count"]
    assert c1.to_dict() == {"sent": 6, "opened": 3, "clicked": 2, "lead": 2, "won": 1, "bounced": 1, "unsubscribed": 1}
    html = result.report.read_text(encoding="utf-8")
    assert "Mail 7015g00000CAMP001: 6 sends" in html


@pytest.mark.e2e
def test_hubspot_email_events_case_runs_with_its_ab_readout(tmp_path: Path):
    """Group 90001: mailing 31001 to 3 recipients (1 opened), 31002 to 3 (3 opened): A/B on open rate."""
    case = _with_events(tmp_path, "hubspot_internal", "hubspot/email_events.csv", "hubspot_email_events", ["90001"])
    result = run_case(case, tmp_path / "out", progress=None, index=False)
    f = _funnel(result.report.parent).set_index("stage")["count"]
    assert (f["sent"], f["opened"], f["clicked"], f["bounced"], f["unsubscribed"]) == (6, 4, 2, 1, 1)
    html = result.report.read_text(encoding="utf-8")
    assert "No A/B test" in html  # three sends a variant are too few for a readout, and the report says so


@pytest.mark.e2e
def test_an_export_without_email_events_or_utm_says_so_and_runs(tmp_path: Path):
    """The Salesforce fixture has no e-mail events file and no landing URLs: the report says both plainly."""
    result = run_case(write_case(tmp_path, "salesforce"), tmp_path / "out", progress=None, index=False)
    html = result.report.read_text(encoding="utf-8")
    assert "E-mail engagement not analysed: the export has no e-mail events" in html
    assert "UTM channels not analysed: the leads have no landing URL" in html
    sheet = read_sheet(result.report.parent / "tables.xlsx", "E-mail funnel")
    assert sheet.iloc[:, 0].tolist() == ["No rows for this case."]  # the sheet says so too
