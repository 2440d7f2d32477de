"""The Workspace as an engine over the hand-offs: projected and filtered reads, DuckDB queries, no memory kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import bgnbd, cases, churn
from crmnb.errors import HandoffMissing
from crmnb.frames import rows_where
from crmnb.handoffs import Workspace


@pytest.fixture
def orders() -> pd.DataFrame:
    """Six orders of three customers, one of them missing its customer, hand-made."""
    return pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
            "customer_id": pd.array(["c1", "c1", "c2", "c1", "c3", None], dtype="str"),
            "department": pd.array(["A", "A", "B", "A", "B", "A"], dtype="str"),
            "order_date": pd.to_datetime(
                ["2025-01-06", "2025-02-03", "2025-02-10", "2025-03-03", "2025-03-10", "2025-03-11"]
            ),
            "amount": [100.0, 50.0, 80.0, np.nan, 20.0, 5.0],
        }
    )


@pytest.fixture
def ws(tmp_path, orders) -> Workspace:
    ws = Workspace(tmp_path, "case")
    ws.write("clean/orders", orders)
    return ws


def test_a_projected_read_equals_the_full_reads_columns(ws):
    full = ws.read("clean/orders")
    got = ws.read("clean/orders", columns=["amount", "customer_id"])
    pd.testing.assert_frame_equal(got, full[["amount", "customer_id"]])
    assert ws.columns("clean/orders") == list(full.columns)


def test_a_projection_names_the_column_that_is_not_there(ws):
    with pytest.raises(KeyError, match=r"'clean/orders' has no column 'amonut'; it has .*amount"):
        ws.read("clean/orders", columns=["amonut"])


def test_a_filtered_read_keeps_the_rows_asked_for_in_the_files_order(ws, orders):
    got = ws.read("clean/orders", columns=["order_id"], where={"customer_id": ["c3", "c1"]})
    assert got["order_id"].tolist() == ["o1", "o2", "o4", "o5"]
    # a missing id matches a missing id, as Series.isin does
    got = ws.read("clean/orders", where={"customer_id": pd.Series(["c2", None], dtype="str")})
    pd.testing.assert_frame_equal(got, orders[orders["customer_id"].isin(["c2", None])].reset_index(drop=True))


def test_nothing_written_is_held_in_memory(ws, orders):
    first = ws.read("clean/orders")
    assert first is not orders and ws.read("clean/orders") is not first  # every read comes from the file
    assert not any(isinstance(v, pd.DataFrame) for v in vars(ws).values())
    pd.testing.assert_frame_equal(first, orders)


def test_a_hand_off_reads_back_as_written_with_arrow_text(ws, orders):
    back = ws.read("clean/orders")
    assert str(back["customer_id"].dtype) == "str" and back["order_date"].dtype == orders["order_date"].dtype
    pd.testing.assert_frame_equal(back, orders)


def test_a_query_over_hand_offs_equals_the_pandas_result(ws, orders):
    got = ws.sql(
        "SELECT customer_id, count(*) AS orders, sum(amount) AS spend FROM clean.orders"
        " WHERE customer_id IS NOT NULL GROUP BY customer_id ORDER BY customer_id"
    )
    want = (
        orders.dropna(subset=["customer_id"])
        .groupby("customer_id")
        .agg(orders=("order_id", "size"), spend=("amount", "sum"))
        .reset_index()
    )
    assert got["customer_id"].tolist() == want["customer_id"].tolist()
    assert got["orders"].tolist() == want["orders"].tolist()
    assert got["spend"].tolist() == want["spend"].tolist()


def test_a_query_takes_parameters_and_sees_a_hand_off_written_after_the_first_query(ws, orders):
    assert ws.sql("SELECT count(*) AS n FROM clean.orders WHERE department = ?", ["A"])["n"].iloc[0] == 4
    ws.write("clean/orders", orders.head(2))  # rewritten: the view reads the new file
    ws.write("deep_dive/tiers", pd.DataFrame({"tier": ["A"], "revenue": [1.5]}))
    assert ws.sql("SELECT count(*) AS n FROM clean.orders")["n"].iloc[0] == 2
    assert ws.query("SELECT revenue FROM deep_dive.tiers").fetchall() == [(1.5,)]
    ws.close()
    assert ws.sql("SELECT count(*) AS n FROM clean.orders")["n"].iloc[0] == 2  # a new connection after close


def test_a_missing_hand_off_still_names_the_step_to_run(ws):
    with pytest.raises(HandoffMissing, match=r"hand-off 'clean/visits' not found .*run step 4 \(04_cleaning"):
        ws.read("clean/visits", columns=["customer_id"])
    with pytest.raises(HandoffMissing, match=r"run step 5 \(05_case_deep_dive\.ipynb\) first"):
        ws.sql("SELECT * FROM deep_dive.rfm", needs=("deep_dive/rfm",))
    with pytest.raises(HandoffMissing, match=r"run step 4"):
        ws.tables("clean").columns("visits", ["customer_id"])


def test_tables_give_projections_and_let_go_of_what_they_read(ws, orders):
    t = ws.tables("clean")
    pd.testing.assert_frame_equal(t.columns("orders", ["customer_id", "amount"]), orders[["customer_id", "amount"]])
    assert "orders" not in repr(t).split("read so far:")[1]  # a projection is not kept
    whole = t["orders"]
    assert t["orders"] is whole
    pd.testing.assert_frame_equal(t.columns("orders", ["amount"]), orders[["amount"]])
    t.release("orders")
    assert t["orders"] is not whole
    mine = orders.head(1)
    t["orders"] = mine
    t.release("orders")  # a table a notebook set is its own: never re-read from the file
    assert t["orders"] is mine


def test_rows_where_is_the_same_from_a_file_and_from_a_frame(ws, orders):
    from_file = rows_where(ws.tables("clean"), "orders", "customer_id", ["c1"], ["order_id", "amount"])
    t = ws.tables("clean")
    t["orders"]  # read whole first: the rows come from the frame
    from_frame = rows_where(t, "orders", "customer_id", ["c1"], ["order_id", "amount"])
    plain = rows_where({"orders": orders}, "orders", "customer_id", ["c1"], ["order_id", "amount"])
    for got in (from_file, from_frame, plain):
        pd.testing.assert_frame_equal(got, orders.loc[[0, 1, 3], ["order_id", "amount"]].reset_index(drop=True))


def test_churn_features_from_projected_columns_equal_those_from_whole_tables(tmp_path):
    """The step reads only FEATURE_COLUMNS of the event tables: the features are the same as from whole tables."""
    cut = pd.Timestamp("2025-04-01")
    customers = pd.DataFrame(
        {"customer_id": ["c1", "c2"], "created_at": pd.to_datetime(["2024-12-01", "2025-01-15"]), "name": ["x", "y"]}
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "customer_id": ["c1", "c1", "c2"],
            "order_date": pd.to_datetime(["2025-01-10", "2025-03-20", "2025-02-01"]),
            "amount": [100.0, 40.0, 70.0],
            "department": ["A", "A", "A"],
        }
    )
    visits = pd.DataFrame(
        {
            "visit_id": ["v1", "v2", "v3"],
            "customer_id": ["c1", "c2", "c2"],
            "visited_at": pd.to_datetime(["2025-03-25", "2025-01-02", "2025-03-30"]),
            "channel": ["web", "app", "web"],
        }
    )
    tickets = pd.DataFrame(
        {
            "ticket_id": ["t1", "t2"],
            "customer_id": ["c2", "c2"],
            "type": ["complaint", "question"],
            "created_at": pd.to_datetime(["2025-03-01", "2025-03-15"]),
            "resolved_at": pd.to_datetime(["2025-03-02", None]),
            "csat": [2.0, np.nan],
            "note": ["slow", ""],
        }
    )
    activities = pd.DataFrame(
        {
            "activity_id": ["a1", "a2"],
            "customer_id": ["c1", "c2"],
            "due_at": pd.to_datetime(["2025-03-10", "2025-03-12"]),
            "completed_at": pd.to_datetime(["2025-03-11", None]),
            "note": ["called", "no answer"],
        }
    )
    ws = Workspace(tmp_path, "case")
    for name, df in [("orders", orders), ("visits", visits), ("tickets", tickets), ("activities", activities)]:
        ws.write(f"clean/{name}", df)
    t = ws.tables("clean")
    projected = [t.columns(n, churn.FEATURE_COLUMNS[n]) for n in ("orders", "visits", "tickets", "activities")]
    got = churn.build_features(customers, *projected, cut)
    want = churn.build_features(customers, orders, visits, tickets, activities, cut)
    pd.testing.assert_frame_equal(got, want)
    # recomputed by hand: c1 ordered 12 days before the cutoff, c2 complained once in 90 days, one overdue follow-up
    assert got.loc["c1", "recency_days"] == 12.0 and got.loc["c1", "orders_total"] == 2.0
    assert got.loc["c2", "complaints_90"] == 1.0 and got.loc["c2", "overdue_followups_90"] == 1.0
    assert got.loc["c2", "csat_mean"] == 2.0 and got.loc["c1", "followups_90"] == 1.0
    rules = churn.rule_risk(
        customers,
        orders,
        t.columns("visits", churn.RULE_COLUMNS["visits"]),
        t.columns("tickets", churn.RULE_COLUMNS["tickets"]),
        cut,
    )
    pd.testing.assert_frame_equal(rules, churn.rule_risk(customers, orders, visits, tickets, cut))


def test_the_bgnbd_likelihood_by_distinct_frequency_is_the_same_number():
    """Evaluating the gamma and beta terms once per distinct frequency changes no bit of the likelihood."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 12, 500).astype(float)
    T = rng.uniform(5, 52, 500)
    t_x = np.where(x > 0, rng.uniform(0.1, 1, 500) * T, 0.0)
    for params in [(0.24, 4.4, 0.79, 2.43), (1.1, 24.0, 332.6, 9994.0)]:
        plain = bgnbd._bgnbd_loglik(*params, x, t_x, T)
        grouped = bgnbd._bgnbd_loglik(*params, x, t_x, T, np.unique(x, return_inverse=True))
        assert np.array_equal(plain, grouped)


def test_a_case_timeline_reads_only_its_deals_follow_ups(ws):
    lead = pd.DataFrame(
        {
            "lead_id": ["L1", "L2"],
            "created_at": pd.to_datetime(["2025-01-01", "2025-01-02"]),
            "first_contact_at": pd.to_datetime(["2025-01-01 05:00", None]),
            "channel": ["web", "web"],
        }
    )
    opps = pd.DataFrame(
        {
            "opportunity_id": ["O1"],
            "lead_id": ["L1"],
            "created_at": pd.to_datetime(["2025-01-03"]),
            "closed_at": pd.to_datetime(["2025-02-01"]),
            "status": ["won"],
            "loss_reason": [None],
        }
    )
    acts = pd.DataFrame(
        {
            "lead_id": ["L2", "L1", "L1"],
            "type": ["call", "call", "email"],
            "completed_at": pd.to_datetime(["2025-01-04", "2025-01-05", None]),
            "note": ["other deal", "first call", "not done"],
            "activity_id": ["a1", "a2", "a3"],
        }
    )
    stages = pd.DataFrame({"opportunity_id": ["O1"], "stage": ["won"], "entered_at": pd.to_datetime(["2025-02-01"])})
    for name, df in [("leads", lead), ("opportunities", opps), ("activities", acts), ("stage_history", stages)]:
        ws.write(f"clean/{name}", df)
    from_files = cases.case_timeline("O1", ws.tables("clean"), "en", mask=False)
    from_frames = cases.case_timeline(
        "O1", {"leads": lead, "opportunities": opps, "activities": acts, "stage_history": stages}, "en", mask=False
    )
    pd.testing.assert_frame_equal(from_files, from_frames)
    assert from_files["detail"].tolist() == ["channel web", "", "first call", ""]  # the other deal's call is left out


def test_the_ltv_fits_its_model_once_per_distinct_data(monkeypatch):
    """Step 3 values the same orders twice: the second gets the first's fit, the same figures."""
    from crmnb.analysis import clv

    rng = np.random.default_rng(3)
    n = 400
    orders = pd.DataFrame(
        {
            "customer_id": [f"c{i % 120}" for i in range(n)],
            "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "amount": rng.uniform(10, 200, n),
        }
    )
    calls = []
    real = clv.fit_bgnbd
    monkeypatch.setattr(clv, "fit_bgnbd", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(clv, "_FITS", {})
    first = clv.new_customer_value(orders, "2025-12-31")
    again = clv.new_customer_value(orders.copy(), "2025-12-31")
    # the same figures, a missing one (this small fit's expected repeats on some CPUs' loops) as missing
    assert np.array_equal(np.array(again, dtype=float), np.array(first, dtype=float), equal_nan=True)
    assert len(calls) == 1
    clv.new_customer_value(orders.iloc[:-40], "2025-12-31")  # other data: fitted anew
    assert len(calls) == 2


def test_a_filtered_read_of_an_empty_or_other_typed_column_matches_as_isin(tmp_path):
    """A column exported without a single value is typed null in Parquet; numbers asked of text match nothing."""
    df = pd.DataFrame({"lead_id": [None, None], "n": [1, 2], "code": ["1", "2"]})
    ws = Workspace(tmp_path, "case")
    ws.write("clean/leads", df)
    assert ws.read("clean/leads", where={"lead_id": ["L1"]}).empty
    assert ws.read("clean/leads", columns=["n"], where={"lead_id": [None]})["n"].tolist() == [1, 2]
    got = ws.read("clean/leads", columns=["n"], where={"code": [1, "2"]})
    assert got["n"].tolist() == df.loc[df["code"].isin([1, "2"]), "n"].tolist()
