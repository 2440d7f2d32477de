"""crmnb.analysis.metric_engine: the units built once per table equal a plain pandas recomputation.

Each metric is recomputed here the straightforward way (filter the table to the period, then compute
per row) on a few hand-made rows with ties, missing values and dates on the window's edges, and
compared with what the engine gives, values, order and key columns alike; then the figures of one
period and of its breakdowns; then what is read from the hand-offs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import metric_engine, metric_units
from crmnb.analysis.metric_units import data_end
from crmnb.analysis.metrics import compute, units
from crmnb.analysis.repeat_units import previous_order, repeat_purchase_units
from crmnb.handoffs import Workspace
from crmnb.intake.schema import TABLES

START, END = "2025-03-01", "2025-03-31"
LO, HI = pd.Timestamp(START), pd.Timestamp("2025-04-01")  # the window: LO <= when < HI


def typed(df: pd.DataFrame, text: str = "str") -> pd.DataFrame:
    """Return the frame typed as the hand-offs are: datetimes in ns, floats, text as Arrow strings."""
    for c in df.columns:
        if c.endswith("_at") or c.endswith("_date"):
            df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[ns]")
        elif c in ("amount", "csat", "nps", "spend"):
            df[c] = df[c].astype(float)
        else:
            df[c] = df[c].astype(text)
    return df


def tables(text: str = "str") -> dict[str, pd.DataFrame]:
    """Return a few rows of each table a metric reads, with the cases a metric must get right."""
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8"],
            # the window's first instant, its last second, the instant after it, a missing date, before it
            "created_at": [
                "2025-03-01 00:00:00",
                "2025-03-31 23:59:59",
                "2025-04-01 00:00:00",
                None,
                "2025-02-28 23:59:59",
                "2025-03-10 09:00",
                "2025-03-10 09:00",
                "2025-03-15 12:00",
            ],
            # contacted, contacted, contacted, contacted, not, before its creation (left out), tie, not
            "first_contact_at": [
                "2025-03-01 02:00",
                "2025-04-01 01:59:59",
                "2025-04-01 03:00",
                "2025-03-05",
                None,
                "2025-03-10 08:00",
                "2025-03-10 10:30",
                None,
            ],
            "department": ["A", "A", "A", "B", "A", None, "B", "A"],
            "owner_rep": ["r1", "r2", "r1", None, "r1", "r2", "r2", "r1"],
            "customer_id": ["C1", None, "C2", "C3", "C1", "C2", "C3", "C4"],
            "campaign_id": ["K1", "K1", None, "K2", "K1", "K2", "K2", "K1"],
        }
    )
    opportunities = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3", "O4", "O5", "O6"],
            "lead_id": ["L1", "L1", "L6", None, "L8", "L2"],
            "customer_id": ["C1", "C1", "C2", "C5", "C4", None],
            "department": ["A", "A", None, "B", "A", "A"],
            "owner_rep": ["r1", "r1", "r2", "r3", None, "r2"],
            "created_at": ["2025-03-02", "2025-03-03", "2025-03-11", "2025-02-01", "2025-03-16", "2025-04-02"],
            "status": ["won", "won", "lost", "won", "open", "won"],
            # two wins of one lead (the first counts); a win exactly at the window's end and after it
            "closed_at": ["2025-03-20", "2025-03-05", "2025-03-31 23:59:59", "2025-03-31", None, "2025-04-01"],
            "amount": [100.0, 50.0, 0.0, 20.0, 10.0, 30.0],
        }
    )
    activities = pd.DataFrame(
        {
            "due_at": ["2025-03-01", "2025-03-31 23:00", "2025-04-01", None, "2025-03-05", "2025-03-05"],
            # on time to the second, late, missing, missing due, on time, early
            "completed_at": ["2025-03-01", "2025-04-01 01:00", None, "2025-03-02", "2025-03-04", "2025-03-01"],
            "department": ["A", "A", "B", None, "B", "A"],
            "owner_rep": ["r1", "r1", "r2", "r2", None, "r2"],
            "customer_id": ["C1", "C1", None, "C2", "C3", "C4"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": [f"R{i}" for i in range(1, 11)],
            "customer_id": ["C1", "C1", "C1", "C2", "C2", "C3", None, "C4", "C4", "C5"],
            "department": ["A", "A", "B", "A", None, "B", "A", "A", "A", "B"],
            # C1: an order in December, two on one March day (a tie); C2: one in January and one in March;
            # C4: two at one instant (a tie of first and previous); an order with no customer
            "order_date": [
                "2024-12-20",
                "2025-03-03 10:00",
                "2025-03-03 10:00",
                "2025-01-10",
                "2025-03-31 23:59:59",
                "2025-03-15",
                "2025-03-10",
                "2025-03-20 08:00",
                "2025-03-20 08:00",
                "2025-04-01",
            ],
            "amount": [10.0, 20.0, np.nan, 5.0, 7.5, 1.0, 3.0, 2.0, 2.0, 9.0],
        }
    )
    tickets = pd.DataFrame(
        {
            "created_at": ["2025-03-01", "2025-03-31 23:59:59", "2025-04-01", "2025-03-10", "2025-03-11", None],
            "resolved_at": ["2025-03-02", "2025-04-02", "2025-04-03", None, "2025-03-10", "2025-03-01"],
            "type": ["complaint", "complaint", "complaint", "complaint", "complaint", "request"],
            "csat": [5.0, np.nan, 3.0, 4.0, 1.0, 2.0],
            "nps": [9.0, 6.0, 7.0, np.nan, 10.0, 0.0],
            "department": ["A", "B", "A", "A", None, "A"],
            "customer_id": ["C1", "C2", "C3", "C1", "C4", "C5"],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3", "C4", "C5", "C1"],
            "department": ["A", "A", "B", "A", "B", "B"],
            "owner_rep": ["r1", "r2", None, "r1", "r3", "r9"],  # C1 twice: the first row counts
            # the latest date of the data: March's leads have had their 90 days to convert
            "created_at": ["2024-01-01", "2024-01-01", None, "2025-07-01 10:00", "2024-06-01", "2024-01-01"],
        }
    )
    campaigns = pd.DataFrame(
        {
            "campaign_id": ["K1", "K2"],
            "start_date": ["2025-02-15", None],
            "end_date": ["2025-03-15", "2025-03-31"],
            "spend": [300.0, 100.0],
        }
    )
    got = dict(
        leads=leads,
        opportunities=opportunities,
        activities=activities,
        orders=orders,
        tickets=tickets,
        customers=customers,
        campaigns=campaigns,
    )
    return {k: typed(v, text) for k, v in got.items()}


# --------------------------------------------------------------------------- the plain recomputation
def inside(df: pd.DataFrame, col: str) -> pd.DataFrame:
    return df[(df[col] >= LO) & (df[col] < HI)]


def plain(df: pd.DataFrame, when: str, value) -> pd.DataFrame:
    """Return units the way a reader would write them: one row per unit, its keys as the table holds them."""
    key = {c: (df[c].to_numpy() if c in df else None) for c in ("department", "owner_rep", "customer_id")}
    return pd.DataFrame({"when": df[when].to_numpy(), **key, "value": np.asarray(value, dtype=float)})


def hours(a: pd.Series, b: pd.Series) -> pd.Series:
    return (b - a).dt.total_seconds() / 3600


def by_hand(metric: str, t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return the units of ``metric`` in the window, recomputed straightforwardly."""
    if metric == "lead_response_hours":
        leads = inside(t["leads"], "created_at")
        h = hours(leads["created_at"], leads["first_contact_at"])
        keep = leads["first_contact_at"].notna() & (h >= 0)
        return plain(leads[keep], "created_at", h[keep])
    if metric == "followup_ontime_rate":
        act = inside(t["activities"], "due_at")
        return plain(act, "due_at", act["completed_at"].notna() & (act["completed_at"] <= act["due_at"]))
    if metric == "lead_conversion_rate":
        end = data_end(t)
        leads = inside(t["leads"], "created_at")
        leads = leads[leads["created_at"] + pd.Timedelta(days=90) < end]
        o = t["opportunities"]
        won = o[(o["status"] == "won") & o["lead_id"].notna() & o["closed_at"].notna()]
        first = leads["lead_id"].map(won.groupby("lead_id")["closed_at"].min())
        return plain(leads, "created_at", first.notna() & (first <= leads["created_at"] + pd.Timedelta(days=90)))
    if metric == "opportunity_win_rate":
        o = inside(t["opportunities"][t["opportunities"]["status"].isin(["won", "lost"])], "closed_at")
        return plain(o, "closed_at", o["status"] == "won")
    if metric == "sales_cycle_days":
        o = inside(t["opportunities"][t["opportunities"]["status"] == "won"], "closed_at")
        began = o["lead_id"].map(t["leads"].set_index("lead_id")["created_at"]).fillna(o["created_at"])
        return plain(o, "closed_at", (o["closed_at"] - began).dt.total_seconds() / 86400)
    if metric == "avg_order_value":
        o = inside(t["orders"], "order_date")
        return plain(o[o["amount"].notna()], "order_date", o["amount"].dropna())
    tk = inside(t["tickets"], "created_at")
    if metric == "csat":
        return plain(tk[tk["csat"].notna()], "created_at", tk["csat"].dropna())
    if metric == "nps":
        s = tk["nps"].dropna()
        return plain(tk[tk["nps"].notna()], "created_at", np.where(s >= 9, 100.0, np.where(s <= 6, -100.0, 0.0)))
    tk = tk[(tk["type"] == "complaint") & tk["resolved_at"].notna()]
    h = hours(tk["created_at"], tk["resolved_at"])
    return plain(tk[h >= 0], "created_at", h[h >= 0])


ROW_WISE = (
    "lead_response_hours",
    "followup_ontime_rate",
    "lead_conversion_rate",
    "opportunity_win_rate",
    "sales_cycle_days",
    "avg_order_value",
    "csat",
    "nps",
    "complaint_resolution_hours",
)


@pytest.mark.parametrize("text", ["str", "object"])
@pytest.mark.parametrize("metric", ROW_WISE)
def test_units_equal_the_plain_recomputation(metric, text):
    t = tables(text)
    want = by_hand(metric, t)
    got = units(metric, t, START, END)
    assert len(want), "the hand-made rows hold units of every metric"
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("metric", ROW_WISE)
def test_one_department_is_the_department_rows_of_all(metric):
    t = tables()
    every = by_hand(metric, t)
    want = every[every["department"] == "A"].reset_index(drop=True)
    pd.testing.assert_frame_equal(units(metric, t, START, END, "A"), want)
    assert units(metric, t, START, END, "no such department").empty


def test_hand_counted_edges():
    """The window holds its first instant and its last second, and not the instant after; a missing date is out."""
    t = tables()
    u = units("lead_response_hours", t, START, END)
    assert u["when"].tolist() == [
        pd.Timestamp("2025-03-01"),
        pd.Timestamp("2025-03-31 23:59:59"),
        pd.Timestamp("2025-03-10 09:00"),
    ]
    assert u["value"].tolist() == [2.0, 2.0, 1.5]  # L6 contacted before its creation is left out
    f = units("followup_ontime_rate", t, START, END)
    assert f["value"].tolist() == [1.0, 0.0, 1.0, 1.0]  # completed at its due time counts as on time


def test_figures_and_breakdowns_equal_the_plain_ones():
    t = tables()
    for metric in ROW_WISE:
        u = by_hand(metric, t)
        one = compute(metric, t, START, END)
        assert one["n"].iloc[0] == len(u)
        assert one["value"].iloc[0] == pytest.approx(u["value"].mean(), nan_ok=True)
        got = compute(metric, t, START, END, by="owner_rep")
        g = u.groupby("owner_rep", dropna=False)["value"]
        want = pd.DataFrame({"value": g.mean(), "n": g.size()}).reset_index()
        pd.testing.assert_frame_equal(got, want)


def test_a_new_table_is_measured_anew_and_the_same_table_once():
    t = tables()
    first = units("csat", t, START, END)
    assert units("csat", t, START, END).equals(first)
    t["tickets"] = t["tickets"].assign(csat=t["tickets"]["csat"] + 0)
    t["tickets"].loc[0, "csat"] = 1.0  # a new frame, as a cleaning makes: its own units
    assert units("csat", t, START, END)["value"].iloc[0] == 1.0


def test_repeat_purchase_previous_order_is_strictly_before_with_ties():
    """A 90-day window from before March 20 reaches before the first order (2024-12-20): C1 and C3 are left
    out; C2's January order is within 90 days of March 31; C4's two orders at one instant count as two.
    A 30-day window: C1's March tie counts as two orders, C2's January order is too far back."""
    t = tables()
    u = repeat_purchase_units(t, START, END, repeat_window_days=90)
    assert dict(zip(u["customer_id"], u["value"], strict=True)) == {"C2": 1.0, "C4": 1.0}
    u30 = repeat_purchase_units(t, START, END, repeat_window_days=30)
    assert dict(zip(u30["customer_id"], u30["value"], strict=True)) == {"C1": 1.0, "C2": 0.0, "C3": 0.0, "C4": 1.0}


def test_previous_order_equals_merge_asof():
    t = tables()
    per = pd.DataFrame(
        {
            "customer_id": pd.Series(["C1", "C1", "C2", "C4", "C3", "C9"], dtype="str"),
            "first": pd.to_datetime(
                [
                    "2025-03-03 10:00",
                    "2025-03-03 10:00:01",
                    "2025-01-10",
                    "2025-03-20 08:00",
                    "2026-01-01",
                    "2025-03-01",
                ],
                format="ISO8601",
            ).astype("datetime64[ns]"),
        }
    )
    o = t["orders"].dropna(subset=["customer_id", "order_date"])[["customer_id", "order_date"]]
    o = o.astype({"customer_id": object}).sort_values("order_date").assign(prev=lambda d: d["order_date"])
    a = per.astype({"customer_id": object}).assign(row=range(len(per))).sort_values("first")
    want = (
        pd.merge_asof(a, o, left_on="first", right_on="order_date", by="customer_id", allow_exact_matches=False)
        .set_index("row")["prev"]
        .sort_index()
    )
    got = previous_order(t, per["customer_id"], per["first"].to_numpy())
    assert [pd.Timestamp(x) if not pd.isna(x) else None for x in got] == [x if not pd.isna(x) else None for x in want]
    # an order at the very instant is not before it; one second later it is; an unknown customer has none
    assert got[0] == np.datetime64("2024-12-20") and got[1] == np.datetime64("2025-03-03T10:00")
    assert pd.isna(got[5])


def write_intake(tmp_path, t: dict[str, pd.DataFrame]) -> Workspace:
    ws = Workspace(tmp_path, "case")
    for name in TABLES:
        df = t.get(name)
        ws.write(
            f"intake/{name}", df if df is not None else pd.DataFrame({"x_at": pd.Series([], dtype="datetime64[ns]")})
        )
    return ws


def test_unread_hand_offs_give_the_same_units_reading_only_their_columns(tmp_path):
    t = tables()
    t["activities"] = t["activities"].assign(note=pd.Series(["long text"] * 6, dtype="str"))
    step = write_intake(tmp_path, t).tables("intake")
    for metric in ROW_WISE:
        pd.testing.assert_frame_equal(units(metric, step, START, END), units(metric, t, START, END))
    assert data_end(step) == data_end(t) == pd.Timestamp("2025-07-02")  # C4 created 07-01: that day's end
    read = metric_engine.columns(step, "activities", ("due_at", "department", "nothing_such"))
    assert list(read.columns) == ["due_at", "department"]
    assert "activities" not in step._got, "the step's own table is not read whole"


def test_data_end_reads_a_column_without_statistics(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    table = pa.table(
        {"a_at": pa.array([None, 5_000_000_000], pa.timestamp("ns")), "due_at": pa.array([9, 9], pa.timestamp("s"))}
    )
    pq.write_table(table, path, write_statistics=False)
    assert metric_engine._file_latest(path, ("due_at",)) == [pd.Timestamp("1970-01-01 00:00:05")]


def repeat_by_hand(t: dict[str, pd.DataFrame], start, end, days: int) -> pd.DataFrame:
    """Return the repeat purchase's units the plain way: group the period's orders by customer and month."""
    orders = t["orders"].dropna(subset=["customer_id", "order_date"])
    lo, hi = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
    inside = orders[(orders["order_date"] >= lo) & (orders["order_date"] < hi)].sort_values("order_date", kind="stable")
    g = inside.groupby([inside["customer_id"], inside["order_date"].dt.to_period("M")], sort=True)
    per = pd.DataFrame(
        {
            "first": g["order_date"].min(),
            "when": g["order_date"].max(),
            "n": g.size(),
            "department": g["department"].last(),
        }
    )
    per = per.reset_index(level=0).reset_index(drop=True)
    window = pd.Timedelta(days=days)
    per = per[per["when"] - window >= orders["order_date"].min().normalize()].reset_index(drop=True)
    before = [
        orders.loc[(orders["customer_id"] == c) & (orders["order_date"] < f), "order_date"].max()
        for c, f in zip(per["customer_id"], per["first"], strict=True)
    ]
    value = (per["n"] >= 2) | (pd.Series(before, dtype="datetime64[ns]") >= per["when"] - window)
    reps = t["customers"].drop_duplicates("customer_id").set_index("customer_id")["owner_rep"]
    return plain(per.assign(owner_rep=per["customer_id"].map(reps)), "when", value)


@pytest.mark.parametrize("text", ["str", "object"])
@pytest.mark.parametrize(
    "window",
    [(START, END, 90), (START, END, 30), ("2025-03-10", "2025-03-31", 30), ("2024-12-01", "2025-03-20", 400)],
)
def test_repeat_purchase_equals_the_plain_grouping(text, window):
    """Months cut by the period's edge, a month's department from its last order naming one, ties at one instant."""
    t = tables(text)
    t["orders"].loc[8, "department"] = None  # C4's last March order names no department: the one before counts
    t["orders"].loc[4, "department"] = None  # C2's only March order names none: the month has none
    start, end, days = window
    got = units("repeat_purchase_rate", t, start, end, repeat_window_days=days)
    pd.testing.assert_frame_equal(got, repeat_by_hand(t, start, end, days))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_table_2_names_the_test_of_large_windows(lang):
    """Above 20,000 units a window a mean is compared with Welch's test, and Table 2's note names it."""
    from crmnb.analysis.compare import bootstrap_means
    from crmnb.present.words import t

    rng = np.random.default_rng(0)
    d = bootstrap_means(rng.normal(10, 2, 20_001), rng.normal(10.1, 2, 20_001))
    assert d.test == "Welch"
    assert "Welch" in t(f"words.test.{d.test}", lang)


@pytest.mark.parametrize("department", [None, "D1", "nowhere"])
def test_follow_ups_of_an_unread_hand_off_come_from_the_engine_as_from_the_frame(tmp_path, department):
    """DuckDB filters the activities' file: the same units, order, types and missing values as the frame's,
    and the step never holds the whole table."""
    t = tables()
    act = t["activities"]
    # a task without a department, rep or customer; one due on the window's last second, done late
    extra = typed(
        pd.DataFrame(
            {
                "activity_id": ["A90", "A91"],
                "due_at": ["2025-03-31 23:59:59", "2025-03-05 10:00"],
                "completed_at": ["2025-04-01 00:00:00", "2025-03-05 10:00"],
            }
        )
    )
    t["activities"] = pd.concat([act, extra], ignore_index=True)
    step = write_intake(tmp_path, t).tables("intake")
    assert metric_units.engine_units(step, metric_units.FOLLOWUP_ONTIME, START, END, department) is not None
    got = units("followup_ontime_rate", step, START, END, department)
    want = units("followup_ontime_rate", t, START, END, department)
    pd.testing.assert_frame_equal(got, want)
    assert "activities" not in step._got, "the step's own table is not read whole"
    if department is None:
        late, on_time = got.set_index(got["when"].astype(str))["value"].loc[
            ["2025-03-31 23:59:59", "2025-03-05 10:00:00"]
        ]
        assert (late, on_time) == (0.0, 1.0)
        assert got["department"].isna().sum() == 2 + act.loc[inside(act, "due_at").index, "department"].isna().sum()


ENGINE_QUERIES = {
    "lead_response_hours": metric_units.LEAD_RESPONSE,
    "followup_ontime_rate": metric_units.FOLLOWUP_ONTIME,
    "opportunity_win_rate": metric_units.OPPORTUNITY_WIN,
    "avg_order_value": metric_units.ORDER_VALUE,
    "csat": metric_units.CSAT,
    "complaint_resolution_hours": metric_units.COMPLAINT_RESOLUTION,
}


@pytest.mark.parametrize("metric", sorted(ENGINE_QUERIES))
@pytest.mark.parametrize("department", [None, "D1"])
def test_engine_units_of_each_metric_equal_the_plain_recomputation(tmp_path, metric, department):
    """Each metric DuckDB measures over an unread hand-off gives the hand-computed units, never reading the table."""
    t = tables()
    step = write_intake(tmp_path, t).tables("intake")
    q = ENGINE_QUERIES[metric]
    got = metric_engine.engine_units(step, q, START, END, department)
    assert got is not None, f"{metric}: the hand-off has the types the SQL assumes"
    want = by_hand(metric, t)
    if department is not None:
        want = want[want["department"] == department]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(units(metric, step, START, END, department), units(metric, t, START, END, department))
    assert q.table not in step._got
