"""Monthly series that mean what the headline means: fixed windows, nothing cut short by the data's ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import metrics
from crmnb.analysis.metric_units import data_end
from crmnb.params.model import GOAL_METRICS
from crmnb.present.words import t as words

ROOT = Path(__file__).resolve().parents[1]
T = pd.Timestamp
SALES, SERVICE = "销售一部", "客户服务部"
BEFORE, AFTER = ("2025-07-01", "2025-09-30"), ("2025-10-01", "2025-12-31")


def orders(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """Return an orders table of (customer, date) rows, all in department D1."""
    return pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(len(rows))],
            "customer_id": [c for c, _ in rows],
            "department": "D1",
            "order_date": pd.to_datetime([d for _, d in rows]).astype("datetime64[ns]"),
            "amount": 10.0,
        }
    )


def customers(ids) -> pd.DataFrame:
    """Return customers owned by rep r1 of D1."""
    return pd.DataFrame({"customer_id": list(ids), "department": "D1", "owner_rep": "r1"})


# --------------------------------------------------------------------------- repeat purchase, by hand
def test_repeat_purchase_trails_ninety_days_from_the_last_order_of_each_month():
    o = orders(
        [
            ("S", "2024-12-01"),  # only sets the data's first day: windows from 2024-12-01 + 90 days count
            ("A", "2025-03-10"),
            ("A", "2025-05-20"),  # May: 71 days after March -> repeating in May
            ("B", "2025-03-05"),
            ("B", "2025-06-10"),  # June: 97 days after March -> not repeating in June
            ("C", "2025-05-02"),
            ("C", "2025-05-28"),  # two orders in May -> repeating in May
            ("D", "2025-06-30"),  # first ever -> not repeating
            ("D", "2025-07-15"),  # July, outside the period: does not count for June
            ("E", "2025-02-26"),  # February: outside the period
            ("E", "2025-05-27"),  # exactly 90 days later -> repeating in May
        ]
    )
    tb = {"orders": o, "customers": customers("ABCDES")}
    got = metrics.compute("repeat_purchase_rate", tb, "2025-05-01", "2025-06-30", by="month")
    # May: A yes, C yes, E yes -> 3/3; June: B no, D no -> 0/2
    assert got["value"].tolist() == [1.0, 0.0] and got["n"].tolist() == [3, 2]
    whole = metrics.compute("repeat_purchase_rate", tb, "2025-05-01", "2025-06-30")
    assert (whole["value"].iloc[0], whole["n"].iloc[0]) == (pytest.approx(3 / 5), 5)
    # a 60-day window: A's May order is 71 days after March, E's 90 -> only C repeats in May
    short = metrics.compute("repeat_purchase_rate", tb, "2025-05-01", "2025-06-30", by="month", repeat_window_days=60)
    assert short["value"].tolist() == [pytest.approx(1 / 3), 0.0]


def test_repeat_purchase_leaves_out_months_whose_window_reaches_before_the_data_and_says_so():
    o = orders([("A", "2025-01-05"), ("A", "2025-01-20"), ("B", "2025-02-01"), ("A", "2025-05-01")])
    tb = {"orders": o, "customers": customers("AB")}
    got = metrics.compute("repeat_purchase_rate", tb, "2025-01-01", "2025-05-31", by="month")
    # the data start 2025-01-05: only months whose last order is on or after 2025-04-05 are measured
    assert got["month"].tolist() == [T("2025-05-01")] and got["value"].tolist() == [0.0]
    note = metrics.series_note("repeat_purchase_rate", tb, "2025-01-01", "2025-05-31", "en")
    assert "2 customer-months before 2025-04-05 are left out" in note
    assert "90 days up to their last order" in note
    zh = metrics.series_note("repeat_purchase_rate", tb, "2025-01-01", "2025-05-31", "zh")
    assert "2025-04-05之前的2个" in zh and "90天" in zh


# --------------------------------------------------------------------------- lead conversion, by hand
def test_lead_conversion_leaves_out_leads_whose_window_the_data_does_not_cover():
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3"],
            "created_at": pd.to_datetime(["2025-01-10", "2025-03-01", "2025-03-20"]).astype("datetime64[ns]"),
            "department": "D1",
            "owner_rep": "r1",
            "customer_id": None,
        }
    )
    opp = pd.DataFrame(
        {
            "opportunity_id": ["P1", "P2"],
            "lead_id": ["L1", "L2"],
            "status": ["won", "won"],
            "created_at": pd.to_datetime(["2025-01-11", "2025-03-02"]).astype("datetime64[ns]"),
            "closed_at": pd.to_datetime(["2025-02-01", "2025-04-10"]).astype("datetime64[ns]"),
            "department": "D1",
        }
    )
    tb = {"leads": leads, "opportunities": opp}
    assert data_end(tb) == T("2025-04-11")  # the last event is P2's win on 2025-04-10
    got = metrics.compute("lead_conversion_rate", tb, "2025-01-01", "2025-03-31", by="month", conversion_window_days=30)
    # L2 (2025-03-01) and L3 (2025-03-20): 30 days run past 2025-04-11 for L3 only; L2 won after 40 days
    assert got["value"].tolist() == [1.0, 0.0] and got["n"].tolist() == [1, 1]
    note = metrics.series_note("lead_conversion_rate", tb, "2025-01-01", "2025-03-31", "en", conversion_window_days=30)
    assert "1 leads created from 2025-03-12 on are left out" in note and "30-day conversion window" in note


def test_every_rate_formula_names_its_window():
    assert "90 days" in metrics.CATALOGUE["repeat_purchase_rate"].formula_in("en")
    assert "60天" in metrics.CATALOGUE["lead_conversion_rate"].formula_in("zh", conversion_window_days=60)
    for lang in ("en", "zh"):
        assert "{" not in metrics.catalogue_table("2025", lang).to_string()


# --------------------------------------------------------------------------- the demo data
PLANTED = {  # metric: (department, direction of the planted step at 2025-10-01); others planted flat
    "lead_response_hours": (SALES, -1),
    "followup_ontime_rate": (SALES, +1),
    "lead_conversion_rate": (SALES, +1),
    "opportunity_win_rate": (SALES, +1),  # more leads pass every stage under the reminder
    "repeat_purchase_rate": (SERVICE, +1),
    # more repeat orders (planted above), each far smaller than a won deal's first order, lower the mean order
    "avg_order_value": (SERVICE, -1),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Return the demo data's cleaned tables, as the repeat-purchase case's step 4 wrote them."""
    from crmnb.run.steps import run_case

    out = tmp_path_factory.mktemp("series")
    case = ROOT / "parameters" / "repeat_purchase_optimisation.yaml"
    folder = run_case(case, out, progress=None, index=False).report.parent / "data" / "clean"
    names = ["orders", "customers", "leads", "opportunities", "tickets", "activities"]
    return {n: pd.read_parquet(folder / f"{n}.parquet") for n in names}


def _se(u: pd.DataFrame) -> float:
    return float(u["value"].std(ddof=1) / np.sqrt(len(u)))


@pytest.mark.parametrize("metric", sorted(GOAL_METRICS))
def test_each_goal_metric_steps_the_planted_way_month_by_month(demo, metric):
    dept, direction = PLANTED.get(metric, (SERVICE, 0))
    months = metrics.compute(metric, demo, BEFORE[0], AFTER[1], department=dept, by="month")
    assert len(months) == 6 and (months["n"] > 0).all()
    before = metrics.units(metric, demo, *BEFORE, department=dept)
    after = metrics.units(metric, demo, *AFTER, department=dept)
    step, se = after["value"].mean() - before["value"].mean(), np.hypot(_se(before), _se(after))
    if direction:
        assert direction * step > 0, (metric, step)
        # no month after the step falls back beyond the before level by more than its noise
        after_months = months[months["month"] >= T(AFTER[0])]
        noise = 2.5 * np.sqrt(before["value"].var() / after_months["n"])
        assert (direction * (after_months["value"] - before["value"].mean()) > -noise).all(), after_months
    else:
        assert abs(step) < 3 * se, (metric, step, se)
    # the window's headline is the months' unit-weighted mean: one definition, no month cut short
    head = metrics.value(metric, demo, *AFTER, department=dept)
    after_months = months[months["month"] >= T(AFTER[0])]
    assert head == pytest.approx(np.average(after_months["value"], weights=after_months["n"]))


def _repeat_by_hand(tb: dict[str, pd.DataFrame], dept: str, lo: str, hi: str) -> float:
    """Return the share of (customer, month) buyers with another order in the 90 days to the month's last."""
    o = tb["orders"].dropna(subset=["customer_id", "order_date"]).sort_values("order_date", kind="stable")
    hits = []
    for _, mine in o.groupby("customer_id"):
        dates = mine["order_date"]
        inside = mine[(dates >= T(lo)) & (dates < T(hi) + pd.Timedelta(days=1))]
        for _, month in inside.groupby(inside["order_date"].dt.to_period("M")):
            if month["department"].iloc[-1] != dept:  # a month belongs to its last order's department
                continue
            last = month["order_date"].max()
            others = dates[(dates >= last - pd.Timedelta(days=90)) & (dates <= last)]
            hits.append(len(others) >= 2)
    return float(np.mean(hits))


def _conversion_by_hand(tb: dict[str, pd.DataFrame], dept: str, lo: str, hi: str) -> float:
    """Return the share of the department's leads won within 90 days of creation."""
    leads = tb["leads"][(tb["leads"]["department"] == dept)]
    leads = leads[(leads["created_at"] >= T(lo)) & (leads["created_at"] < T(hi) + pd.Timedelta(days=1))]
    opp = tb["opportunities"]
    won = opp[opp["status"] == "won"].groupby("lead_id")["closed_at"].min()
    win = leads["lead_id"].map(won)
    return float((win.notna() & (win <= leads["created_at"] + pd.Timedelta(days=90))).mean())


@pytest.mark.parametrize("window", [BEFORE, AFTER])
def test_the_windowed_headlines_equal_their_definition_computed_by_hand(demo, window):
    got = metrics.value("repeat_purchase_rate", demo, *window, department=SERVICE)
    assert got == pytest.approx(_repeat_by_hand(demo, SERVICE, *window))
    got = metrics.value("lead_conversion_rate", demo, *window, department=SALES)
    assert got == pytest.approx(_conversion_by_hand(demo, SALES, *window))


def test_the_repeat_purchase_step_is_the_planted_one(demo):
    before = metrics.value("repeat_purchase_rate", demo, *BEFORE, department=SERVICE)
    after = metrics.value("repeat_purchase_rate", demo, *AFTER, department=SERVICE)
    control = [metrics.value("repeat_purchase_rate", demo, *w, department=SALES) for w in (BEFORE, AFTER)]
    assert 0.03 <= after - before <= 0.08  # the care programme's planted rise, about 5 points
    assert abs(control[1] - control[0]) < 0.03  # no programme, no step


def test_the_caption_under_the_monthly_chart_comes_from_the_catalogue():
    assert words("series.note", "zh", formula="X").startswith("每月数值的口径：X")
    assert words("series.note", "en", formula="X").startswith("How each month's point is measured: X")
