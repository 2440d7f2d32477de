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
