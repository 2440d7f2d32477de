"""crmnb.analysis.metric_sql and the engine's counts per group: DuckDB over unread hand-offs gives the units and
the figures the frames give, to the last bit, and the step never reads the tables whole."""

from __future__ import annotations

import pandas as pd
import pytest
from test_metrics_engine import END, START, by_hand, repeat_by_hand, tables, write_intake

from crmnb.analysis import metric_units
from crmnb.analysis.metrics import aggregate, compute, units


@pytest.mark.parametrize("department", [None, "A", "nowhere"])
def test_lead_conversion_from_the_engine_equals_the_plain_recomputation(tmp_path, department):
    """A lead's first win (of two), a win after the window, a lead with no id among the deals: as by hand."""
    t = tables()
    step = write_intake(tmp_path, t).tables("intake")
    got = units("lead_conversion_rate", step, START, END, department)
    want = by_hand("lead_conversion_rate", t)
    if department is not None:
        want = want[want["department"] == department]
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(got, units("lead_conversion_rate", t, START, END, department))
    assert not {"leads", "opportunities"} & set(step._got), "the step reads neither table whole"
    assert metric_units.sales_cycle_sql(step, START, END, department) is not None, "measured by the engine"


@pytest.mark.parametrize("department", [None, "A", "B"])
@pytest.mark.parametrize("window", [(START, END, 365), ("2025-03-15", "2025-03-31", 60), ("2025-01-01", END, 30)])
def test_churn_from_the_engine_equals_the_frames(tmp_path, department, window):
    """Customers of the look-back in the order of their first order there, a customer listed twice (the first
    row's rep), an order without a customer: the same units as the frames give."""
    start, end, days = window
    t = tables()
    step = write_intake(tmp_path, t).tables("intake")
    got = units("churn_rate", step, start, end, department, lookback_days=days)
    want = units("churn_rate", t, start, end, department, lookback_days=days)
    pd.testing.assert_frame_equal(got, want)
    assert not {"orders", "customers"} & set(step._got)


def test_churn_units_by_hand(tmp_path):
    """March 2025 with a 365-day look-back: C1 and C2 bought before March (C4 first buys in it), both again in it."""
    step = write_intake(tmp_path, tables()).tables("intake")
    got = units("churn_rate", step, START, END)
    assert got["customer_id"].tolist() == ["C1", "C2"]
    assert got["value"].tolist() == [0.0, 0.0]
    assert got["owner_rep"].tolist() == ["r1", "r2"]  # C1's first customers row, not its second (r9)


@pytest.mark.parametrize("metric", ["lead_conversion_rate", "followup_ontime_rate", "opportunity_win_rate"])
@pytest.mark.parametrize("by", [["month", "department"], "owner_rep", "department", "month"])
@pytest.mark.parametrize("department", [None, "A"])
def test_counts_per_group_from_the_engine_equal_pandas_groupby(tmp_path, metric, by, department):
    """A rate per month, department or rep counted by DuckDB: the groupby's rows, order (missing keys last),
    values and types, exactly."""
    t = tables()
    step = write_intake(tmp_path, t).tables("intake")
    start = "2025-02-01"  # two months
    assert metric_units.rate_sql(metric, step, start, END, department) is not None
    got = compute(metric, step, start, END, department, by=by)
    want = aggregate(units(metric, t, start, END, department), by)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_counts_per_group_of_a_mean_stay_with_pandas(tmp_path):
    """Hours are not whole counts: their mean per group is pandas' own, not the engine's summing order."""
    step = write_intake(tmp_path, tables()).tables("intake")
    assert metric_units.rate_sql("lead_response_hours", step, START, END) is None
    got = compute("lead_response_hours", step, START, END, by="owner_rep")
    pd.testing.assert_frame_equal(got, aggregate(units("lead_response_hours", step, START, END), "owner_rep"))


@pytest.mark.parametrize(
    "window",
    [(START, END, 90), (START, END, 30), ("2025-03-10", "2025-03-31", 30), ("2024-12-01", "2025-03-20", 400)],
)
def test_repeat_purchase_from_the_engine_equals_the_plain_grouping(tmp_path, window):
    """Months cut by the period's edge, a month's department from its last order naming one, ties at one instant,
    a window reaching before the data: DuckDB's customer-months are the hand-computed ones."""
    t = tables()
    t["orders"].loc[8, "department"] = None  # C4's last March order names no department: the one before counts
    t["orders"].loc[4, "department"] = None  # C2's only March order names none: the month has none
    start, end, days = window
    step = write_intake(tmp_path, t).tables("intake")
    got = units("repeat_purchase_rate", step, start, end, repeat_window_days=days)
    pd.testing.assert_frame_equal(got, repeat_by_hand(t, start, end, days))
    assert not {"orders", "customers"} & set(step._got)


@pytest.mark.parametrize(
    "metric",
    [
        "lead_response_hours",
        "followup_ontime_rate",
        "lead_conversion_rate",
        "opportunity_win_rate",
        "avg_order_value",
        "csat",
        "nps",
        "complaint_resolution_hours",
    ],
)
@pytest.mark.parametrize("department", [None, "A", "nowhere"])
def test_a_periods_figure_from_the_engines_values_equals_the_frames(tmp_path, metric, department):
    """The figure of a period from the values alone of the units' query: the frames' mean and n, exactly."""
    t = tables()
    step = write_intake(tmp_path, t).tables("intake")
    assert metric_units.row_sql(metric, step, START, END, department) is not None
    got = compute(metric, step, START, END, department)
    pd.testing.assert_frame_equal(got, aggregate(units(metric, t, START, END, department)), check_exact=True)


@pytest.mark.parametrize("department", [None, "A", "B", "nowhere"])
@pytest.mark.parametrize("metric", ["cac", "ltv", "ltv_cac"])
def test_acquisition_cost_and_lifetime_value_from_the_engine_equal_the_frames(tmp_path, department, metric):
    """The leads won (a lead won twice counts once), each campaign's share of a department's leads, the orders
    the lifetime value is fitted on: the same figures as the frames give, exactly."""
    t = tables()
    step = write_intake(tmp_path, t).tables("intake")
    got = compute(metric, step, START, END, department)
    pd.testing.assert_frame_equal(got, compute(metric, t, START, END, department), check_exact=True)
    assert not {"leads", "opportunities", "orders"} & set(step._got)


def test_new_customers_and_shares_by_hand(tmp_path):
    """March: L1 won twice (once counted), L6's deal lost, O4 has no lead, L2's win falls in April: one lead.
    Campaign K1's leads: L1, L2, L5, L8, all of department A; K2's: L4 (B), L6 (none), L7 (B)."""
    from crmnb.analysis.metric_sql import department_share, new_customers

    step = write_intake(tmp_path, tables()).tables("intake")
    assert new_customers(step, START, END, None) == 1
    assert new_customers(step, START, END, "B") == 0
    share = department_share(step, "B")
    assert share["K1"] == 0.0 and share["K2"] == 2 / 3


@pytest.mark.parametrize("department", [None, "A", "nowhere"])
def test_sales_cycle_from_the_engine_equals_the_plain_recomputation(tmp_path, department):
    """Days from the lead's creation to the win, else from the deal's own creation (a won deal without a lead
    among the leads): as by hand and as the frames give, without reading either table whole."""
    t = tables()
    opp = t["opportunities"]
    extra = opp[opp["status"] == "won"].head(1).assign(opportunity_id="O-nolead", lead_id="L-nowhere")
    t["opportunities"] = pd.concat([opp, extra], ignore_index=True)
    step = write_intake(tmp_path, t).tables("intake")
    got = units("sales_cycle_days", step, START, END, department)
    want = by_hand("sales_cycle_days", t)
    if department is not None:
        want = want[want["department"] == department]
    assert department == "nowhere" or len(got) >= 2
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(got, units("sales_cycle_days", t, START, END, department))
    assert not {"leads", "opportunities"} & set(step._got), "the step reads neither table whole"
    assert metric_units.sales_cycle_sql(step, START, END, department) is not None, "measured by the engine"


def test_a_query_past_its_memory_runs_again_with_more(monkeypatch):
    """The metric queries run in bounded memory, spilling past it; one that cannot (1 MB is too little for a
    count of three million distinct values) runs again with the next limit and gives the whole answer."""
    import duckdb

    from crmnb.analysis import metric_engine

    sql = "SELECT count(DISTINCT i) AS n FROM range(3000000) t(i)"
    monkeypatch.setattr(metric_engine, "MEMORY_LIMITS", ("1MB",))
    with pytest.raises(duckdb.OutOfMemoryException):
        metric_engine.run_sql(sql, {})
    monkeypatch.setattr(metric_engine, "MEMORY_LIMITS", ("1MB", "1GB"))
    assert metric_engine.run_sql(sql, {}).to_pylist() == [{"n": 3_000_000}]
