"""crmnb.analysis.goal_rows: the goal's units traced to their rows from DuckDB and from lookups of only the rows
they name are the ones the whole frames give."""

from __future__ import annotations

import pandas as pd
import pytest
from test_metrics_engine import END, START, tables, write_intake

from crmnb.analysis.goal_rows import first_rows
from crmnb.analysis.goal_tree import goal_drivers, lead_response_hours, traced_units


def with_channels(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return the tables with a lead channel and customer traits, and a lead listed twice (its first row counts)."""
    leads = t["leads"].assign(channel=pd.Series(["web", "fair", "web", None, "ads", "ads", "fair", "web"], dtype="str"))
    twice = leads.iloc[[5]].assign(channel=pd.Series(["other"], index=[5], dtype="str"))
    t["leads"] = pd.concat([leads, twice], ignore_index=True)
    t["customers"] = t["customers"].assign(
        industry=pd.Series(["retail", "tech", "tech", None, "retail", "food"], dtype="str"),
        city=pd.Series(["SH", "BJ", "SH", "GZ", None, "SZ"], dtype="str"),
        channel=pd.Series(["web", "ads", None, "web", "fair", "ads"], dtype="str"),
    )
    return t


@pytest.mark.parametrize(
    "metric", ["lead_conversion_rate", "lead_response_hours", "opportunity_win_rate", "avg_order_value"]
)
@pytest.mark.parametrize("department", [None, "A"])
def test_traced_units_of_unread_hand_offs_equal_the_frames(tmp_path, metric, department):
    t = with_channels(tables())
    step = write_intake(tmp_path, t).tables("intake")
    got = traced_units(metric, step, START, END, department)
    want = traced_units(metric, t, START, END, department)
    pd.testing.assert_frame_equal(got, want)
    assert not {"leads", "customers"} & set(step._got), "neither table is read whole"


def test_lead_drivers_of_unread_hand_offs_equal_the_frames(tmp_path):
    t = with_channels(tables())
    step = write_intake(tmp_path, t).tables("intake")
    goal = {"metric": "lead_conversion_rate", "now": 0.2, "target": 0.3, "unit": "rate", "higher_is_better": True}
    funnel = pd.DataFrame({"stage": ["lead"], "conversion_rate": [0.5], "entered": [8]})
    got, want = (
        goal_drivers(
            "lead_conversion_rate",
            traced_units("lead_conversion_rate", x, START, END, None),
            x,
            (START, END),
            goal,
            funnel,
            None,
            response_target_hours=1,
        )
        for x in (step, t)
    )
    pd.testing.assert_frame_equal(got, want)


def test_first_rows_reads_only_the_ids_asked_and_keeps_each_ids_first_row(tmp_path):
    t = with_channels(tables())
    step = write_intake(tmp_path, t).tables("intake")
    got = first_rows(step, "leads", "lead_id", pd.Series(["L6", "L1", "L6", None]), ("channel", "no_such"))
    assert got.index.tolist()[:2] == ["L1", "L6"]  # the table's order
    assert got.loc["L6", "channel"] == "ads", "the first of the two L6 rows"
    assert list(got.columns) == ["channel"], "a column the table lacks is left out"
    assert "leads" not in step._got


def test_deals_whose_leads_are_not_in_the_export_have_no_response_hours(tmp_path):
    """An export of deals without their leads (HubSpot, Zoho): the lead lookup finds nothing, and each deal's
    response time is unknown rather than an error."""
    t = with_channels(tables())
    t["opportunities"] = t["opportunities"].assign(lead_id="not-exported")
    step = write_intake(tmp_path, t).tables("intake")
    u = traced_units("opportunity_win_rate", step, START, END, None)
    hours = lead_response_hours(u, "opportunities", step)
    assert len(hours) == len(u) > 0 and hours.isna().all()
