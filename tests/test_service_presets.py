"""Each service-desk preset (Salesforce Case, HubSpot tickets, Zoho Cases) maps its small fixture into a case that
runs end to end; the service sections show what the export holds and say plainly what it lacks.

The case around the tickets is tests/test_presets_run.py's Salesforce one (the deals, leads and stage history of
its fixtures); only its tickets come from the service desk's export, read where it is. Figures are recomputed from
the fixture CSVs with pandas.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from sheets import read_sheet
from test_presets_run import DEPT, FIX, _hashes, _text, write_case

from crmnb.run.steps import run_case

pytestmark = pytest.mark.e2e

# preset -> the fixture, its created and first-reply columns (None: not exported), and its channel column
SERVICE_PRESETS = {
    "salesforce_case": ("salesforce/Case.csv", "CreatedDate", "First_Response__c", "Origin"),
    "hubspot_ticket": ("hubspot/tickets.csv", "Create date", "First agent reply date", "Source"),
    "zoho_case": ("zoho/Cases.csv", "Created_Time", None, "Case_Origin"),
}


def service_case(tmp: Path, preset: str) -> Path:
    """Write the Salesforce case with its tickets from ``preset``'s fixture; return the case file."""
    file = write_case(tmp, "salesforce")
    case = yaml.safe_load(file.read_text(encoding="utf-8"))
    case["case_id"] = f"service_{preset}"
    ticket_file = str(FIX / SERVICE_PRESETS[preset][0])
    case["data"]["tables"]["tickets"] = {
        "file": ticket_file,
        "mapping": {"preset": preset, "constants": {"department": DEPT}},
    }
    file.write_text(yaml.safe_dump(case, allow_unicode=True), encoding="utf-8")
    return file


TARGET_HOURS = {"phone": 1.0, "email": 8.0, "web": 8.0, "form": 8.0, "chat": 0.5}
"""The method's first-reply targets by channel, as the exports write the channel (case ignored)."""


def expected_first_reply(preset: str) -> int:
    """Return how many tickets the fixture says were first answered within their channel's target."""
    path, created, first, channel = SERVICE_PRESETS[preset]
    raw = pd.read_csv(FIX / path, dtype=str, keep_default_na=False)
    c = pd.to_datetime(raw[created].str[:19].str.replace("T", " "))
    f = pd.to_datetime(raw[first].str[:19].str.replace("T", " ").replace("", None))
    target = pd.to_timedelta(raw[channel].str.lower().map(TARGET_HOURS), unit="h")
    return int(((f - c) <= target).sum())


@pytest.mark.parametrize("preset", list(SERVICE_PRESETS))
def test_a_service_desk_export_runs_as_a_case(preset: str, tmp_path: Path):
    before = _hashes()
    result = run_case(service_case(tmp_path, preset), tmp_path / "outputs", progress=None, index=False)
    assert result.status == "ok"
    assert _hashes() == before, "a fixture was written to"
    html = result.report.read_text(encoding="utf-8")
    text = _text(html)
    assert "Traceback" not in html

    raw = pd.read_csv(FIX / SERVICE_PRESETS[preset][0], dtype=str, keep_default_na=False)
    targets = read_sheet(result.workbook, "Service targets")
    assert int(targets["tickets"].sum()) == len(raw)  # every ticket of the export is in the period
    channels = {
        "salesforce_case": {"phone", "e-mail", "web", "chat"},
        "hubspot_ticket": {"e-mail", "phone", "chat", "web"},
    }
    channels["zoho_case"] = {"phone", "e-mail", "web"}
    assert set(targets["channel"]) == channels[preset]
    themes = read_sheet(result.workbook, "Complaint themes")
    assert len(themes) and "Complaint themes" in text and "13812345678" not in html
    if SERVICE_PRESETS[preset][2] is None:  # Zoho's cases hold no first reply: said plainly, the rest still runs
        assert (
            "First response and resolution against targets: not done, because the tickets export has no first_response_at."
            in text
        )
    else:
        within = (targets["first_response_within"] * targets["tickets"]).sum()
        assert within == pytest.approx(expected_first_reply(preset))
        assert "the tickets export has no first_response_at" not in text
