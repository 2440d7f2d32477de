"""The CLV model's calibration/holdout check: summaries worked out by hand, and a model that predicts its own data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import clv_holdout
from crmnb.errors import NotEnoughData

T = pd.Timestamp


def orders(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """Return an orders table of (customer, date) rows."""
    return pd.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "order_date": pd.to_datetime([d for _, d in rows], format="ISO8601"),
            "amount": 10.0,
        }
    )


def test_calibration_and_holdout_counts_occasions_either_side_of_the_calibration_end():
    o = orders(
        [
            ("A", "2025-01-01"),
            ("A", "2025-01-05"),
            ("A", "2025-01-05"),  # the same day: one purchase occasion
            ("A", "2025-01-20"),
            ("A", "2025-01-25"),  # two occasions in the holdout
            ("B", "2025-01-03"),  # one-time buyer, nothing after
            ("C", "2025-01-12"),  # first bought in the holdout: not in the check
            ("D", "2025-01-02"),
            ("D", "2025-01-08"),
            ("D", "2025-01-31 18:00"),  # on the observation end: counts
            ("D", "2025-02-01"),  # after it: does not
        ]
    )
    got = clv_holdout.calibration_and_holdout(o, "2025-01-10", "2025-01-31", freq="D").set_index("customer_id")
    assert got.index.tolist() == ["A", "B", "D"]
    assert got["frequency_cal"].tolist() == [1, 0, 1]
    assert got["recency_cal"].tolist() == [4.0, 0.0, 6.0]
    assert got["T_cal"].tolist() == [9.0, 7.0, 8.0]
    assert got["frequency_holdout"].tolist() == [2, 0, 1]
    assert (got["duration_holdout"] == 21.0).all()
    with pytest.raises(ValueError, match="must come after the calibration end"):
        clv_holdout.calibration_and_holdout(o, "2025-01-10", "2025-01-10")


def test_by_frequency_pools_seven_and_more_and_sums_by_group():
    table = pd.DataFrame(
        {
            "frequency_cal": [0, 0, 1, 7, 9],
            "frequency_holdout": [0, 1, 2, 5, 3],
            "predicted_holdout": [0.2, 0.4, 1.5, 4.0, 6.0],
        }
    )
    got = clv_holdout.by_frequency(table)
    assert got["frequency_group"].tolist() == ["0", "1", "7+"]
    assert got["customers"].tolist() == [2, 1, 2]
    assert got["actual"].tolist() == pytest.approx([0.5, 2.0, 4.0])
    assert got["predicted"].tolist() == pytest.approx([0.3, 1.5, 5.0])
    assert got["actual_total"].tolist() == [1.0, 2.0, 8.0] and got["predicted_total"].tolist() == pytest.approx(
        [0.6, 1.5, 10.0]
    )
    # the groups sort by number, not as text: 10 after 7 would be wrong, 7+ after 6 is right
    wide = clv_holdout.by_frequency(table.assign(frequency_cal=[0, 2, 10, 6, 1]), top=20)
    assert wide["frequency_group"].tolist() == ["0", "1", "2", "6", "10"]


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, days: int, seed: int) -> pd.DataFrame:
    """Return orders drawn from the BG/NBD process: Poisson purchases at a gamma rate, dropout after each repeat."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)  # purchases per day
    p = rng.beta(a, b, n)
    birth = rng.integers(0, 120, n)  # first purchases spread over four months
    rows = []
    for i in range(n):
        t = float(birth[i])
        rows.append((f"C{i}", t))
        while True:
            t += rng.exponential(1.0 / lam[i])
            if t >= days:
                break
            rows.append((f"C{i}", t))
            if rng.random() < p[i]:
                break
    start = T("2023-01-01")
    return pd.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "order_date": [start + pd.Timedelta(days=int(d)) for _, d in rows],
            "amount": 1.0,
        }
    )


def test_on_bgnbd_data_the_total_predicted_holdout_purchases_are_close_to_the_actual():
    o = simulate_bgnbd(4_000, r=0.8, alpha=40.0, a=0.9, b=6.0, days=730, seed=7)
    check = clv_holdout.holdout_check(o, "2024-12-31", horizon_months=12, freq="D")
    assert check.calibration_end == T("2024-01-01")  # 365.25 days back, to the day
    actual = check.table["frequency_holdout"].sum()
    assert actual > 1_000
    # the fitted parameters' own noise on 4,000 customers moves the total by about 3% either way
    assert abs(check.error) < 0.08, check.error
    # group by group too, where there are enough customers to tell
    big = check.by_frequency[check.by_frequency["customers"] >= 200]
    assert len(big) >= 3
    assert np.allclose(big["predicted"], big["actual"], rtol=0.2, atol=0.1)


def test_the_holdout_is_the_clv_horizon_or_half_the_history_whichever_is_shorter():
    o = simulate_bgnbd(400, r=0.8, alpha=10.0, a=0.9, b=6.0, days=300, seed=1)
    first = o["order_date"].min()
    check = clv_holdout.holdout_check(o, "2023-10-28", horizon_months=12)
    assert check.calibration_end == (T("2023-10-28") - pd.Timedelta(days=round((T("2023-10-28") - first).days / 2)))


def test_the_reading_gives_the_totals_and_error_in_both_languages():
    o = simulate_bgnbd(600, r=0.8, alpha=20.0, a=0.9, b=6.0, days=500, seed=3)
    check = clv_holdout.holdout_check(o, "2024-05-15", horizon_months=6)
    pred, act = check.table["predicted_holdout"].sum(), check.table["frequency_holdout"].sum()
    en, zh = clv_holdout.describe_holdout(check, "en"), clv_holdout.describe_holdout(check, "zh")
    assert f"predicted {pred:,.0f} repeat purchases" in en and f"they made {act:,.0f}" in en
    assert f"(total error {pred / act - 1:+.1%});" in en
    assert ("close enough" in en) == (abs(pred / act - 1) <= 0.10)
    assert f"复购{pred:,.0f}次，实际为{act:,.0f}次" in zh and "26周" in zh
    long = clv_holdout.chart_frame(check, "zh")
    assert set(long["series"]) == {"实际", "预测（BG/NBD）"}


def test_a_model_that_overpredicts_says_the_clv_is_likely_too_high():
    o = simulate_bgnbd(600, r=0.8, alpha=20.0, a=0.9, b=6.0, days=500, seed=3)
    check = clv_holdout.holdout_check(o, "2024-05-15", horizon_months=6)
    over = check._replace(table=check.table.assign(predicted_holdout=check.table["frequency_holdout"] * 1.3 + 0.0))
    assert over.error == pytest.approx(0.3)
    assert "likely too high by about as much" in clv_holdout.describe_holdout(over, "en")
    assert "偏低" in clv_holdout.describe_holdout(
        check._replace(table=check.table.assign(predicted_holdout=0.5 * check.table["frequency_holdout"])), "zh"
    )


def test_too_few_repeat_buyers_before_the_holdout_say_so():
    o = orders([("A", "2025-01-01"), ("A", "2025-03-01"), ("B", "2025-02-01"), ("B", "2025-12-01")])
    with pytest.raises(NotEnoughData) as got:
        clv_holdout.holdout_check(o, "2025-12-31", horizon_months=12)
    assert "needs at least 10 customers with repeat purchases by then; this data has 1" in str(got.value)


# --------------------------------------------------------------------------- the LTV of LTV/CAC and the CLV
def _ltv_orders() -> pd.DataFrame:
    """Return twelve customers won in 2025 (first order 1,000 + 100·i, repeats of 200 and 400) and two older ones."""
    rows = []
    for i in range(12):
        first = T("2025-01-06") + pd.Timedelta(weeks=i)
        rows += [(f"C{i}", first, 1000.0 + 100 * i), (f"C{i}", first + pd.Timedelta(weeks=10), 200.0)]
        if i < 4:
            rows.append((f"C{i}", first + pd.Timedelta(weeks=15), 400.0))
    rows += [("O1", T("2024-03-04"), 5000.0), ("O2", T("2024-03-05"), 5000.0)]
    return pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"]).assign(department="D1")


def test_ltv_is_a_new_customers_first_purchase_plus_the_models_repeat_purchases_over_the_clv_horizon():
    from crmnb.analysis import bgnbd, clv, metrics

    o = _ltv_orders()
    parts = clv.new_customer_value(o, "2025-12-31", horizon_months=12)
    assert parts.first_order == pytest.approx(1000 + 100 * 5.5)  # the customers won in the last year only
    assert parts.repeat_spend == pytest.approx((12 * 200 + 4 * 400) / 16)
    s = bgnbd.rfm_summary(o, "2025-12-31")
    bg = bgnbd.fit_bgnbd(s["frequency"], s["recency"], s["T"])
    weeks = 365.25 / 7
    assert parts.repeat_purchases == pytest.approx(float(bgnbd.unconditional_expected_purchases(bg, weeks)), rel=1e-6)
    assert parts.value == pytest.approx(1550 + parts.repeat_purchases * 250)
    # the catalogue's LTV is this figure, on the same horizon the case gives the CLV
    tables = {"orders": o}
    assert metrics.value("ltv", tables, "2025-10-01", "2025-12-31") == pytest.approx(parts.value)
    six = metrics.value("ltv", tables, "2025-10-01", "2025-12-31", clv_horizon_months=6)
    assert six == pytest.approx(clv.new_customer_value(o, "2025-12-31", horizon_months=6).value)
    assert six < parts.value
    assert "12 months" in metrics.CATALOGUE["ltv"].formula_in("en")
    assert "6个月" in metrics.CATALOGUE["ltv"].formula_in("zh", clv_horizon_months=6)


def test_too_few_repeat_buyers_give_no_ltv_rather_than_a_guess():
    from crmnb.analysis import metrics

    o = _ltv_orders()
    few = o[o["customer_id"].isin(["C0", "C1", "O1"])]
    v, n = metrics.CATALOGUE["ltv"].total({"orders": few}, "2025-10-01", "2025-12-31")
    assert np.isnan(v) and n == 0


def test_the_report_states_how_the_ltv_and_the_clv_relate():
    from crmnb.analysis import clv

    o = simulate_bgnbd(800, r=0.8, alpha=20.0, a=0.9, b=6.0, days=600, seed=5)
    o["amount"] = 100.0
    parts = clv.new_customer_value(o, "2024-08-20", horizon_months=12)
    existing = clv.clv_table(o, "2024-08-20", horizon_months=12)
    en = clv.ltv_relation(parts, existing, "en")
    assert f"over 12 months, {parts.value:,.0f} CNY" in en
    assert f"on average {existing.table['clv'].mean():,.0f} CNY per existing customer" in en
    zh = clv.ltv_relation(parts, existing, "zh")
    assert f"新获客户在12个月内的生命周期价值{parts.value:,.0f}元" in zh


def test_campaign_tables_get_a_blank_ltv_when_the_model_cannot_be_fitted():
    from crmnb.analysis import metrics

    o = _ltv_orders()
    assert metrics.ltv_or_blank({"orders": o}, "2025-10-01", "2025-12-31") == pytest.approx(
        metrics.value("ltv", {"orders": o}, "2025-10-01", "2025-12-31")
    )
    blank = metrics.ltv_or_blank({"orders": o[o["customer_id"].isin(["C0", "O1"])]}, "2025-10-01", "2025-12-31")
    assert isinstance(blank, pd.Series) and blank.empty
