"""crmnb.analysis.goal_tree over a step's hand-offs: the tables swapped for tracing keep reading only what they
need from the files, and the customers followed up in a window come from DuckDB as from the frame."""

from __future__ import annotations

import pandas as pd
import pytest

from crmnb.analysis.goal_tree import _customers_with, _followed_up, _Swapped
from crmnb.handoffs import Workspace


def activities() -> pd.DataFrame:
    """Return tasks completed on the window's edges, without a customer, and never completed."""
    df = pd.DataFrame(
        {
            "activity_id": ["A1", "A2", "A3", "A4", "A5", "A6"],
            "customer_id": ["a", "b", "c", None, "d", "a"],
            "due_at": ["2025-03-01"] * 6,
            "completed_at": [
                "2025-03-01 00:00:00",  # the window's first instant: in
                "2025-03-31 23:59:59",  # its last second: in
                "2025-04-01 00:00:00",  # the instant after it: out
                "2025-03-10",  # no customer: not counted
                None,  # never completed
                "2025-03-15",  # a again: once
            ],
        }
    )
    df["customer_id"] = df["customer_id"].astype("str")
    df["activity_id"] = df["activity_id"].astype("str")
    for c in ("due_at", "completed_at"):
        df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[ns]")
    return df


@pytest.fixture
def step(tmp_path):
    ws = Workspace(tmp_path, "case")
    ws.write("clean/activities", activities())
    ws.write("clean/leads", pd.DataFrame({"lead_id": pd.Series(["L1"], dtype="str")}))
    return ws.tables("clean")


def test_customers_followed_up_come_from_the_file_as_from_the_frame(step):
    got = _followed_up(step, "2025-03-01", "2025-03-31")
    assert got == _customers_with(activities(), "completed_at", "2025-03-01", "2025-03-31") == {"a", "b"}
    assert "activities" not in step._got, "the step never holds the activities"
    assert _followed_up({"activities": activities()}, "2025-03-01", "2025-03-31") == {"a", "b"}


def test_the_swapped_tables_name_the_files_of_the_others_only(step):
    swapped = _Swapped(step, "leads", pd.DataFrame({"lead_id": ["L9"]}))
    assert swapped.unread_file("leads") is None, "the table swapped in is the frame given, not its file"
    assert swapped.unread_file("activities") == step.unread_file("activities") is not None
    assert _Swapped({"leads": pd.DataFrame()}, "leads", pd.DataFrame()).unread_file("activities") is None
