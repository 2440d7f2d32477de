"""crmnb.analysis.outcome_rows: the rows read for one window give the leads' outcomes of the whole tables."""

from __future__ import annotations

import pandas as pd
import pytest

from crmnb.analysis import marketing, outcome_rows
from crmnb.handoffs import Workspace

START, END = "2025-07-01", "2025-12-31"


def tables() -> dict[str, pd.DataFrame]:
    """Return leads at the window's edges, deals won, lost and won without a close date, orders with and without
    an amount, in and out of the window."""
    leads = pd.DataFrame(
        {
            "lead_id": ["L0", "L1", "L2", "L3", "L4"],
            "created_at": ["2025-06-30 23:59:59", "2025-07-01", "2025-12-31 23:59:59", "2026-01-01", None],
            "channel": ["search", "search", None, "email", "email"],
            "campaign_id": ["C1", "C1", "C2", "C2", None],
            "customer_id": ["K0", "K1", "K2", "K3", "K4"],
            "phone": ["x"] * 5,
        }
    )
    opportunities = pd.DataFrame(
        {
            "opportunity_id": ["O0", "O1", "O2", "O3", "O4"],
            "lead_id": ["L0", "L1", "L2", "L2", "L1"],
            "customer_id": ["K0", "K1", None, "K2", "K1"],
            "status": ["won", "won", "won", "lost", "won"],
            "amount": [10.0, 20.5, 30.25, 40.0, 1.0],
            "closed_at": ["2025-07-05", "2025-08-01", "2025-09-01", "2025-09-02", None],
        }
    )
    orders = pd.DataFrame(
        {
            "customer_id": ["K1", "K1", "K1", "K2", "K1", "K0"],
            "opportunity_id": ["O1", None, None, None, None, None],
            "order_date": ["2025-08-01", "2025-09-01", "2026-01-01", "2025-10-01", "2025-10-02", "2025-08-01"],
            "amount": [20.5, 0.1, 5.0, 0.2, None, 3.0],
        }
    )
    for df, columns in ((leads, ["created_at"]), (opportunities, ["closed_at"]), (orders, ["order_date"])):
        for c in columns:
            df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[ns]")
    return {"leads": leads, "opportunities": opportunities, "orders": orders}


def test_the_window_rows_give_the_outcomes_of_the_whole_tables(tmp_path):
    ws = Workspace(tmp_path, "case")
    for name, df in tables().items():
        ws.write(f"clean/{name}", df)
    step = ws.tables("clean")
    got = outcome_rows.window_outcome_tables(step, START, END)
    whole = marketing.outcome_tables(ws.tables("clean"))
    assert [len(df) for df in got] == [2, 3, 4], "the window's leads, the closed won deals, the priced orders"
    for part, full in zip(got, whole):
        assert part.dtypes.equals(full.dtypes)
    want = marketing.lead_outcomes(*whole, START, END)
    pd.testing.assert_frame_equal(marketing.lead_outcomes(*got, START, END), want, check_exact=True)
    assert want["revenue"].tolist() == [20.5 + 0.1, 30.25 + 0.2]
    assert not any(name in step._got for name in marketing.OUTCOME_COLUMNS), "no table is read whole"


@pytest.mark.parametrize("change", ["repeat", "no_lead_in_window"])
def test_the_whole_tables_are_read_when_a_check_needs_them(tmp_path, change):
    t = tables()
    if change == "repeat":  # a repeated id outside the window: lead_outcomes says so, as of the whole table
        t["leads"].loc[4, "lead_id"] = "L3"
    else:
        t["leads"]["created_at"] = pd.Timestamp("2024-01-01")
    ws = Workspace(tmp_path, "case")
    for name, df in t.items():
        ws.write(f"clean/{name}", df)
    got = outcome_rows.window_outcome_tables(ws.tables("clean"), START, END)
    assert len(got[0]) == 5
    if change == "repeat":
        with pytest.raises(ValueError, match="'L3' appears more than once"):
            marketing.lead_outcomes(*got, START, END)


def test_frames_are_taken_as_they_are():
    t = tables()
    got = outcome_rows.window_outcome_tables(t, START, END)
    assert all(a is b for a, b in zip(got, t.values()))
