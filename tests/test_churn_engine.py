"""crmnb.analysis.churn_engine: the follow-up features DuckDB counts over the activities' hand-off are the ones
build_features counts from a frame, on hand-made tasks at the edges of the 90-day window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import churn_engine
from crmnb.analysis.churn import _followup_features
from crmnb.analysis.events import DAY_NS
from crmnb.handoffs import Workspace

CUTOFF = pd.Timestamp("2025-06-30")


def activities() -> pd.DataFrame:
    """Return tasks of customers a, b and c (and of one unknown and one missing customer) around the window."""
    rows = [
        # customer, due, completed
        ("a", "2025-06-01", "2025-06-02"),  # done in the window
        ("a", "2025-06-20", None),  # overdue: due in the window, never done
        ("a", "2025-06-20", "2025-06-30 00:00:00"),  # overdue: done at the cutoff, not before it
        ("a", "2025-04-01 00:00:00", "2025-04-01 00:00:00"),  # on the window's first instant: done and counted
        ("b", "2025-03-31 23:59:59", "2025-03-31 23:59:59"),  # the second before the window: neither
        ("b", "2025-06-29 23:59:59", "2025-06-29 23:59:59"),  # done in the window's last second
        ("b", None, "2025-06-10"),  # no due date: done only
        ("c", "2025-07-01", "2025-07-02"),  # after the cutoff: neither
        ("zz", "2025-06-01", None),  # a customer not among the buyers
        (None, "2025-06-01", None),  # no customer
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "due_at", "completed_at"])
    df["customer_id"] = df["customer_id"].astype("str")
    for c in ("due_at", "completed_at"):
        df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[ns]")
    return df


def test_the_engine_counts_what_the_frame_counts(tmp_path):
    act = activities()
    ws = Workspace(tmp_path, "case")
    ws.write("clean/activities", act)
    step = ws.tables("clean")
    source = churn_engine.follow_ups(step)
    assert isinstance(source, churn_engine.FollowupFile), "an unread hand-off is counted by the engine"
    idx = pd.Index(["a", "b", "c", "d"], name="customer_id")
    d = {90: CUTOFF.value - 90 * DAY_NS}
    got = _followup_features(source, idx, CUTOFF, d)
    want = _followup_features(act, idx, CUTOFF, d)
    for name in ("followups_90", "overdue_followups_90"):
        np.testing.assert_array_equal(got[name], want[name])
        assert got[name].dtype == want[name].dtype
    # by hand: a did 06-02 and 04-01 (done at the cutoff is not before it), b 06-29 and 06-10; a has two open
    assert got["followups_90"].tolist() == [2.0, 2.0, 0.0, 0.0]
    assert got["overdue_followups_90"].tolist() == [2.0, 0.0, 0.0, 0.0]
    assert "activities" not in step._got, "the step never holds the activities"


@pytest.mark.parametrize("read_first", [True, False])
def test_a_frame_or_a_read_table_is_counted_from_its_columns(tmp_path, read_first):
    act = activities()
    ws = Workspace(tmp_path, "case")
    ws.write("clean/activities", act)
    step = ws.tables("clean")
    if read_first:
        step["activities"]  # read whole already: its columns are taken
        got = churn_engine.follow_ups(step)
    else:
        got = churn_engine.follow_ups({"activities": act.assign(note="x")})
    assert isinstance(got, pd.DataFrame)
    assert list(got.columns) == list(churn_engine.FOLLOWUP_COLUMNS)


def visits() -> pd.DataFrame:
    """Return visits of customers a, b and c (and of one unknown and one missing customer) around the windows."""
    rows = [
        ("a", "2025-06-29 23:59:59"),  # in both windows, the last second before the cutoff
        ("a", "2025-05-31 00:00:00"),  # on the 30-day window's first instant
        ("a", "2025-05-30 23:59:59"),  # the second before it: 90 days only
        ("b", "2025-04-01 00:00:00"),  # on the 90-day window's first instant
        ("b", "2024-01-01"),  # long before: only the last visit's time (b's last is 04-01)
        ("b", "2025-06-30 00:00:00"),  # at the cutoff: not before it
        ("c", "2024-02-01"),  # c's only visit, long before
        ("c", None),  # no time
        ("zz", "2025-06-01"),  # a customer not among the buyers
        (None, "2025-06-01"),  # no customer
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "visited_at"])
    df["customer_id"] = df["customer_id"].astype("str")
    df["visited_at"] = pd.to_datetime(df["visited_at"], format="ISO8601").astype("datetime64[ns]")
    return df


def test_the_engine_counts_the_visits_the_frame_counts(tmp_path):
    from crmnb.analysis.churn import _visit_features

    vis = visits()
    ws = Workspace(tmp_path, "case")
    ws.write("clean/visits", vis)
    step = ws.tables("clean")
    source = churn_engine.visits_of(step)
    assert isinstance(source, churn_engine.VisitFile), "an unread hand-off is counted by the engine"
    idx = pd.Index(["a", "b", "c", "d"], name="customer_id")
    d = {k: CUTOFF.value - k * DAY_NS for k in (30, 90)}
    got = _visit_features(source, idx, CUTOFF, d)
    want = _visit_features(vis, idx, CUTOFF, d)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
        assert got[name].dtype == want[name].dtype
    assert got["visits_30"].tolist() == [2.0, 0.0, 0.0, 0.0]
    assert got["visits_90"].tolist() == [3.0, 1.0, 0.0, 0.0]
    assert "visits" not in step._got, "the step never holds the visits"
    assert isinstance(churn_engine.visits_of({"visits": vis.assign(channel="x")}), pd.DataFrame)


def test_the_event_tables_are_the_rows_of_the_customers(tmp_path):
    ws = Workspace(tmp_path, "case")
    orders = pd.DataFrame(
        {
            "customer_id": pd.Series(["a", "zz", None, "b", "a"], dtype="str"),
            "order_date": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04", "2025-01-05"]),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
            "order_id": ["o1", "o2", "o3", "o4", "o5"],
        }
    )
    ws.write("clean/orders", orders)
    ws.write("clean/tickets", pd.DataFrame({"customer_id": pd.Series(["b"], dtype="str"), "created_at": pd.to_datetime(["2025-01-01"]), "type": ["complaint"], "resolved_at": pd.to_datetime([None]), "csat": [4.0]}))  # fmt: skip
    ws.write("clean/visits", visits())
    ws.write("clean/activities", activities())
    customers = pd.DataFrame({"customer_id": pd.Series(["a", "b", None], dtype="str")})
    for tables in (
        ws.tables("clean"),
        {n: ws.read(f"clean/{n}") for n in ("orders", "tickets", "visits", "activities")},
    ):
        got_orders, _, got_tickets, _ = churn_engine.event_tables(tables, customers)
        assert got_orders["amount"].tolist() == [1.0, 4.0, 5.0]
        assert list(got_orders.columns) == ["customer_id", "order_date", "amount"]
        assert got_orders.index.tolist() == [0, 1, 2]
        assert len(got_tickets) == 1
