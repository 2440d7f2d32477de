"""Each mapping preset's fixture, as a case, runs end to end: seven notebooks, report and workbook.

The fixtures are small real-shaped exports (tests/fixtures/README.md); they are read
where they are, never copied or written. What a CRM export of deals does not hold, a
case still needs: the customers (accounts, companies) the deals name, and at least
one lead, one order and one campaign (``TABLES[...].may_be_empty``). The test writes
those beside the case file, as small canonical files, and leaves every other table
empty (a header only). On so little data several analyses cannot be done; the
report must say so in plain words rather than fail or show nonsense.

Figures are recomputed from the fixture CSVs with pandas, sharing no code with crmnb.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sheets import read_sheet

from crmnb.run.steps import run_case

FIX = Path(__file__).parent / "fixtures"
DEPT = "Inside sales"
PERIOD = ("2025-01-01", "2025-06-30")
pytestmark = pytest.mark.e2e

# preset -> the deals file, its columns (id, customer, stage, amount, close date), and what a won/lost
# deal's stage reads as in the export
PRESETS = {
    "salesforce": dict(
        deals="salesforce/Opportunity.csv",
        mapping="salesforce_opportunity",
        cols=("Id", "AccountId", "StageName", "Amount", "CloseDate"),
        won="Closed Won",
        lost="Closed Lost",
    ),
    "hubspot_internal": dict(
        deals="hubspot/deals_internal_names.csv",
        mapping="hubspot_deal",
        cols=("hs_object_id", "associatedcompanyid", "dealstage", "amount", "closedate"),
        won="closedwon",
        lost="closedlost",
    ),
    "hubspot_labels": dict(
        deals="hubspot/deals_export_labels.csv",
        mapping="hubspot_deal",
        cols=("Record ID", "Associated Company IDs", "Deal Stage", "Amount", "Close Date"),
        won="Closed Won (Sales Pipeline)",
        lost="Closed Lost (Sales Pipeline)",
    ),
    "zoho": dict(
        deals="zoho/Deals.csv",
        mapping="zoho_deal",
        cols=("id", "Account_Name", "Stage", "Amount", "Closing_Date"),
        won="Closed Won",
        lost="Closed Lost to Competition",
    ),
}

EMPTY = {  # tables an export of deals does not hold: a header only
    "stage_history": ["opportunity_id", "stage", "entered_at"],
    "activities": ["activity_id", "due_at"],
    "tickets": ["ticket_id", "customer_id", "type", "created_at"],
    "touches": ["touch_id", "lead_id", "channel", "touched_at"],
    "visits": ["visit_id", "customer_id", "visited_at"],
    "receipts": ["receipt_id", "opportunity_id", "received_at", "amount"],
}


def _deals(p: dict) -> pd.DataFrame:
    """Return the fixture's deals as id, customer, stage, amount and close date, read with pandas alone."""
    raw = pd.read_csv(FIX / p["deals"], dtype=str, keep_default_na=False)
    d = raw[list(p["cols"])].copy()
    d.columns = ["id", "customer", "stage", "amount", "closed"]
    d["amount"] = d["amount"].str.replace(",", "").astype(float)
    d["closed"] = pd.to_datetime(d["closed"].str[:10])
    return d


def expected_win_rate(p: dict) -> tuple[float, int]:
    """Return won / (won + lost) among deals closed in the period, and how many closed."""
    d = _deals(p)
    closed = d[d["stage"].isin([p["won"], p["lost"]]) & d["closed"].between(*PERIOD)]
    return float((closed["stage"] == p["won"]).mean()), len(closed)


def expected_salesforce_conversion() -> tuple[float, int]:
    """Return the share of leads created in the period whose converted opportunity was won within 90 days."""
    leads = pd.read_csv(FIX / "salesforce" / "Lead.csv", dtype=str, keep_default_na=False)
    opps = pd.read_csv(FIX / "salesforce" / "Opportunity.csv", dtype=str, keep_default_na=False)
    leads["created"] = pd.to_datetime(leads["CreatedDate"].str[:10])
    mine = leads[leads["created"].between(*PERIOD)]
    won = opps[opps["IsWon"] == "true"].set_index("Id")["CloseDate"]
    closed = pd.to_datetime(mine["ConvertedOpportunityId"].map(won))
    converted = closed.notna() & (closed <= mine["created"] + pd.Timedelta(days=90))
    return float(converted.mean()), len(mine)


def _owner(p: dict) -> str:
    """Return the owner of the export's first deal, as the export writes it."""
    raw = pd.read_csv(FIX / p["deals"], dtype=str, keep_default_na=False)
    return raw[[c for c in raw.columns if "owner" in c.lower()][0]].iloc[0]


def write_case(tmp: Path, name: str) -> Path:
    """Write the case file and the companion tables for one preset; return the case file."""
    p = PRESETS[name]
    data = tmp / "data"
    data.mkdir()
    deals = _deals(p)
    pd.DataFrame(
        {"customer_id": sorted(deals["customer"].unique()), "department": DEPT, "created_at": "2024-12-01"}
    ).to_csv(data / "customers.csv", index=False)
    won = deals[deals["stage"] == p["won"]]
    pd.DataFrame(
        {
            "order_id": "S" + won["id"],
            "customer_id": won["customer"],
            "opportunity_id": won["id"],
            "department": DEPT,
            "order_date": won["closed"].dt.strftime("%Y-%m-%d"),
            "amount": won["amount"],
        }
    ).to_csv(data / "orders.csv", index=False)
    pd.DataFrame(
        {
            "campaign_id": ["K1"],
            "name": ["Web leads"],
            "channel": ["Web"],
            "start_date": ["2025-01-01"],
            "end_date": ["2025-06-30"],
            "spend": [2000],
        }
    ).to_csv(data / "campaigns.csv", index=False)
    for table, cols in EMPTY.items():
        (data / f"{table}.csv").write_text(",".join(cols) + "\n", encoding="utf-8")
    dept = {"constants": {"department": DEPT}}
    tables = {
        "opportunities": {"file": str(FIX / p["deals"]), "mapping": {"preset": p["mapping"], **dept}},
        "campaigns": "campaigns.csv",
    }
    if name == "salesforce":
        tables["leads"] = {
            "file": str(FIX / "salesforce" / "Lead.csv"),
            "mapping": {"preset": "salesforce_lead", **dept},
        }
        tables["stage_history"] = {
            "file": str(FIX / "salesforce" / "OpportunityHistory.csv"),
            "mapping": "salesforce_opportunity_history",
        }
    else:  # the deals' CRM export has no leads; a case needs at least one (an open one, owned by a deal's owner)
        pd.DataFrame(
            {
                "lead_id": ["L1"],
                "created_at": ["2025-01-02 09:00"],
                "department": [DEPT],
                "owner_rep": [_owner(p)],
                "channel": ["Web"],
                "campaign_id": ["K1"],
                "status": ["open"],
            }
        ).to_csv(data / "leads.csv", index=False)
    case = {
        "case_id": f"preset_{name}",
        "title": f"{name} export",
        "department": DEPT,
        "owner": "Sales operations",
        "period": {"start": PERIOD[0], "end": PERIOD[1]},
        "intervention_date": PERIOD[0],
        "goal": {"metric": "opportunity_win_rate", "baseline": 0.4, "target": 0.6, "deadline": "2025-12-31"},
        "data": {"dir": "data", "tables": tables},
    }
    file = tmp / "case.yaml"
    file.write_text(yaml.safe_dump(case, allow_unicode=True), encoding="utf-8")
    return file


def _hashes() -> dict[str, str]:
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(FIX.rglob("*.csv"))}


def _text(html: str) -> str:
    """Return the report's visible text, tags dropped and whitespace collapsed."""
    html = re.sub(r"(?is)<(style|svg)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", html)))


def _table2_after(html: str, name: str) -> str:
    """Return the 'after' cell of a metric's row in the report's Table 2."""
    part = html[html.index("Table 2") :]
    row = re.search(r"<tr>\s*<td>" + re.escape(name) + r"</td>(.*?)</tr>", part, re.S)
    assert row, f"no row {name!r} in Table 2"
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    return htmllib.unescape(cells[1]).strip()


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_export_runs_as_a_case(name: str, tmp_path: Path):
    before = _hashes()
    result = run_case(write_case(tmp_path, name), tmp_path / "outputs", progress=None, index=False)

    assert result.status == "ok"
    assert result.report.is_file() and result.workbook.is_file()
    assert [p.name[:2] for p in result.notebooks] == ["01", "02", "03", "04", "05", "06", "07"]
    assert _hashes() == before, "a fixture was written to"
    html = result.report.read_text(encoding="utf-8")
    text = _text(html)
    assert "Traceback" not in html and "Error" not in text

    # the figures a user relies on, recomputed from the export with pandas
    win, n = expected_win_rate(PRESETS[name])
    assert n == 2
    assert _table2_after(html, "Opportunity win rate") == f"{win:.1%}"
    table2 = read_sheet(result.workbook, "Table 2 KPI before-after").set_index("metric")
    assert table2.loc["opportunity_win_rate", "after"] == pytest.approx(win)
    assert int(table2.loc["opportunity_win_rate", "n_after"]) == n
    if name == "salesforce":
        conv, n_leads = expected_salesforce_conversion()
        assert n_leads == 5
        assert _table2_after(html, "Lead conversion rate") == f"{conv:.1%}"
        assert table2.loc["lead_conversion_rate", "after"] == pytest.approx(conv)

    # what could not be computed on a few deals is said, in plain words, with what it needs
    for needs in (
        "Lifetime value not estimated: it needs at least 10 customers with repeat purchases; this data has 0.",
        "Churn model not trained: it needs customers who bought before the training cutoff",
        "Forecast not made: it needs at least 27 weeks of won-deal history",
        "Response-time effect not estimated",
        "Won deals not checked against finance: the check needs the finance receipts",
    ):
        assert needs in text, needs
    if name != "salesforce":  # deals without leads or stage history
        assert "Funnel traced only to the lead stage" in text
        assert "Deal-stage dwell times not measured" in text
        assert "Attribution not done" in text
    # a check that could not be made is not reported as a problem to fix
    assert "CRM won amounts disagree with finance receipts" not in text
