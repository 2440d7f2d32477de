"""The statistical repairs: each on a small hand-computed frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import compare, segments


def _rate(k: int, n: int) -> np.ndarray:
    return np.r_[np.ones(k), np.zeros(n - k)]


# --------------------------------------------------------------------------- Newcombe's score interval
def test_newcombe_matches_the_published_examples():
    # Newcombe (1998), Table II, method 10: 56/70 − 48/80 and 9/10 − 3/10
    assert compare.newcombe(48, 80, 56, 70) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert compare.newcombe(3, 10, 9, 10) == pytest.approx((0.1705, 0.8090), abs=1e-4)


def test_interval_agrees_with_its_test_on_2_of_20_to_7_of_20():
    d = compare.two_proportions(_rate(2, 20), _rate(7, 20))
    # by hand: Wilson 2/20 = [0.02787, 0.30103], 7/20 = [0.18119, 0.56715]
    # low = 0.25 − √((0.35 − 0.18119)² + (0.30103 − 0.10)²), high = 0.25 + √((0.56715 − 0.35)² + (0.10 − 0.02787)²)
    assert (d.ci_low, d.ci_high) == pytest.approx((-0.0125, 0.4788), abs=1e-4)
    assert d.p_value == pytest.approx(0.0583, abs=1e-4)
    assert not d.significant  # the interval includes 0, as p > 0.05 says


def test_no_events_on_either_side_does_not_give_a_point():
    d = compare.two_proportions(_rate(0, 40), _rate(0, 40))
    # the Wilson upper bound of 0/40 is z²/n / (1 + z²/n) = 0.0876
    assert (d.ci_low, d.ci_high) == pytest.approx((-0.0876, 0.0876), abs=1e-4)
    assert d.p_value == 1.0


# --------------------------------------------------------------------------- Holm on Table 2
def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 → 3 × 0.01, 2 × 0.03, max(0.06, 1 × 0.04)
    assert compare.holm([0.04, 0.01, 0.03]).tolist() == pytest.approx([0.06, 0.03, 0.06])
    assert compare.holm([0.5, 0.4]).tolist() == pytest.approx([0.8, 0.8])
    assert compare.holm([0.9, 0.8, 0.7]).tolist() == pytest.approx([1.0, 1.0, 1.0])
    out = compare.holm([np.nan, 0.02])
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.02)  # an untested metric is not counted


@pytest.mark.parametrize(
    "lang,word", [("en", "Holm-adjusted p = 0.060 (adjusted for the 3 metrics"), ("zh", "Holm校正后 p = 0.060")]
)
def test_table2_notes_carry_the_adjustment(lang, word):
    table = pd.DataFrame({"p_value": [0.04, 0.01, 0.03, np.nan], "notes": ["a", "b", "c", "not compared"]})
    out = compare._with_holm(table, lang)
    assert out["p_holm"].tolist()[:3] == pytest.approx([0.06, 0.03, 0.06])
    assert word in out.at[0, "notes"]
    assert out.at[3, "notes"] == "not compared"


# --------------------------------------------------------------------------- money at cent precision
def test_spend_of_exactly_300000_in_cents_is_high_value():
    orders = pd.DataFrame(
        {
            "customer_id": ["c1"] * 4 + ["c2"] * 4,
            "order_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"] * 2),
            "amount": [299_999.7, 0.1, 0.1, 0.1, 299_999.7, 0.1, 0.1, 0.09],
        }
    )
    assert sum([299_999.7, 0.1, 0.1, 0.1]) < 300_000  # what floating point makes of it
    value = segments.customer_value(orders, "2024-12-31")
    assert value["spend"].tolist() == [300_000.0, 299_999.99]
    assert segments.assign_tiers(value).tolist() == ["high_value", "potential"]
    # a spend already summed in floating point is still compared to the cent
    v = pd.DataFrame({"spend": [299_999.99999999994], "repeat_share": [0.75]})
    assert segments.assign_tiers(v).tolist() == ["high_value"]


# --------------------------------------------------------------------------- tie-aware RFM
def test_one_order_scores_f1_when_half_the_customers_have_one_order():
    orders = pd.Series([1, 1, 1, 1, 1, 2, 2, 3, 4, 7])
    # average-rank quintiles: the five one-order customers share rank 3 of 10 → ceil(0.3 × 5) = 2, F = 1 unreachable
    assert segments.quintile_score(orders).tolist() == [1, 1, 1, 1, 1, 2, 2, 3, 4, 5]
    # six tie groups of 5, 2, 1, 1, 1, 1: each band takes whole groups nearest an equal share of the rest
    six = pd.Series([1] * 5 + [2] * 2 + [3, 4, 5, 9])
    assert segments.quintile_score(six).tolist() == [1] * 5 + [2, 2, 3, 4, 4, 5]
    assert set(segments.quintile_score(six)) == {1, 2, 3, 4, 5}


def test_new_and_promising_can_be_assigned():
    value = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(10)],
            "recency_days": [1, 40, 3, 60, 90, 5, 120, 150, 200, 300],
            "orders": [1, 1, 1, 1, 1, 2, 2, 3, 4, 7],
            "spend": [100.0 * (i + 1) for i in range(10)],
        }
    )
    scored = segments.rfm(value).set_index("customer_id")
    # recency ranks (fewest days best): 1, 3 → R5; 5, 40 → R4; 60, 90 → R3; ...
    assert scored.loc["C0", ["r", "f"]].tolist() == [5, 1] and scored.at["C0", "segment"] == "new"
    assert scored.loc["C1", ["r", "f"]].tolist() == [4, 1] and scored.at["C1", "segment"] == "promising"
    assert scored.at["C9", "f"] == 5


# --------------------------------------------------------------------------- Gamma-Gamma and BG/NBD
def _orders_with_one_zero_spend_repeat_buyer() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):  # spend per purchase Gamma(6, ν), ν ~ Gamma(4, 15): what the spend model assumes
        nu = rng.gamma(4.0, 1 / 15.0)
        for _ in range(1 + rng.integers(1, 5)):
            day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 180)))
            rows.append((f"C{i:02d}", day, round(rng.gamma(6.0, 1 / nu), 2)))
    rows += [("Z", pd.Timestamp(d), a) for d, a in (("2024-01-05", 40.0), ("2024-03-05", 0.0), ("2024-05-05", 0.0))]
    return pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])


def test_one_zero_spend_repeat_buyer_does_not_switch_gamma_gamma_off():
    from crmnb.analysis import clv

    result = clv.clv_table(_orders_with_one_zero_spend_repeat_buyer(), "2024-06-30")
    gg = result.gamma_gamma
    assert gg is not None and result.note == ""  # before: "Gamma-Gamma spend model not used" for all 41
    assert gg.n == 40  # fitted on the repeat buyers with positive repeat spend only
    table = result.table.set_index("customer_id")
    assert table.at["Z", "frequency"] == 2 and table.at["Z", "monetary_value"] == 0
    # Z is flagged and given the model's mean spend per purchase, p·γ / (q − 1)
    assert table.at["Z", "expected_spend"] == pytest.approx(gg.p * gg.gamma / (gg.q - 1))
    assert clv.spend_outside_model(result.table).tolist() == ["Z"]
    assert "1 repeat buyer(s) with no positive repeat spend (Z) were left out" in clv.describe_fit(result)
    assert "1 位复购金额不为正的复购客户（Z）未参与拟合" in clv.describe_fit(result, "zh")


def _simulate(n: int, seed: int, dropout=None, weeks: float = 52.0):
    """Simulate BG/NBD customers; ``dropout(rng)`` draws each one's dropout probability (default: 0.05 for all,
    where a and b are not identified)."""
    rng = np.random.default_rng(seed)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        lam, t, p = rng.gamma(2.0, 1 / 4.0), 0.0, dropout(rng) if dropout else 0.05
        while (t := t + rng.exponential(1 / lam)) <= weeks:
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < p:
                break
    return x, t_x, np.full(n, weeks)


def test_bgnbd_on_a_flat_likelihood_says_so_even_short_of_the_bound():
    from crmnb.analysis import bgnbd, clv

    fit = bgnbd.fit_bgnbd(*_simulate(200, seed=4))
    assert fit.b < 0.5 * bgnbd.MAX_DROPOUT_CONCENTRATION  # stopped well short of the bound, at arbitrary a, b
    assert "the likelihood is nearly flat in a and b" in fit.note
    assert f"a/(a + b) = {fit.a / (fit.a + fit.b):.3g}" in fit.note
    table = clv.CLVTable(pd.DataFrame(columns=["customer_id", "frequency", "monetary_value"]), fit, None)
    assert "似然函数对 a 和 b 几乎是平的" in clv.describe_fit(table, "zh")


def test_bgnbd_with_dispersed_dropout_is_not_called_flat():
    from crmnb.analysis import bgnbd

    fit = bgnbd.fit_bgnbd(*_simulate(3000, seed=1, dropout=lambda rng: rng.beta(0.8, 2.5)))
    assert fit.note == "" and fit.a < 5 and fit.b < 20


# --------------------------------------------------------------------------- difference-in-differences pre-trend
def _tasks(dept: str, day: str, n: int, on_time: int) -> pd.DataFrame:
    due = pd.Timestamp(day) + pd.Timedelta(hours=12)
    done = [due - pd.Timedelta(hours=1)] * on_time + [due + pd.Timedelta(hours=5)] * (n - on_time)
    return pd.DataFrame({"department": dept, "owner_rep": "r", "due_at": due, "completed_at": done})


def _did_case(lang: str = "en"):
    from datetime import date
    from types import SimpleNamespace

    return SimpleNamespace(
        windows={"before": (date(2024, 1, 1), date(2024, 1, 20)), "after": (date(2024, 1, 21), date(2024, 2, 9))},
        thresholds=SimpleNamespace(conversion_window_days=30),
        department="A",
        control_department="B",
        language=lang,
    )


def _did_tables(a_first: int, a_second: int) -> dict:
    # the before window's halves: 1–10 and 11–20 January; 40 tasks each, on time out of 40
    parts = [
        _tasks("A", "2024-01-10", 40, a_first),  # the last day of the first half
        _tasks("A", "2024-01-11", 40, a_second),  # the first day of the second half
        _tasks("B", "2024-01-05", 40, 20),
        _tasks("B", "2024-01-15", 40, 20),
        _tasks("A", "2024-01-25", 40, 36),
        _tasks("B", "2024-01-25", 40, 20),
    ]
    return {"activities": pd.concat(parts, ignore_index=True)}


@pytest.mark.parametrize("lang,word", [("en", "pre-trend check failed"), ("zh", "平行趋势检验未通过")])
def test_did_says_when_the_departments_did_not_move_alike_before(lang, word):
    table = compare.kpi_table(_did_tables(8, 32), _did_case(lang), ["followup_ontime_rate"])
    row = table.iloc[0]
    # placebo: A 20% → 80% (+60 pp) between the halves, B 50% → 50%: +60 pp, its interval clear of 0
    assert row["pretrend_did"] == pytest.approx(0.60)
    assert row["pretrend_ci_low"] > 0
    assert word in row["notes"]
    assert "+60.0" in row["notes"]


def test_did_with_parallel_pre_trends_has_no_warning():
    table = compare.kpi_table(_did_tables(20, 20), _did_case(), ["followup_ontime_rate"])
    row = table.iloc[0]
    assert row["pretrend_did"] == pytest.approx(0.0)
    assert row["pretrend_ci_low"] < 0 < row["pretrend_ci_high"]
    assert "pre-trend" not in row["notes"]
    assert row["did"] == pytest.approx(0.40)  # A 50% → 90%, B 50% → 50%


def test_a_customer_counted_in_two_months_does_not_narrow_the_interval():
    """Each customer's two months agree: the rate rests on as many customers, not twice as many units."""
    from crmnb.analysis.compare import compare_units, two_proportions

    rng = np.random.default_rng(3)
    before, after = rng.random(300) < 0.30, rng.random(300) < 0.36
    once = two_proportions(before, after)

    def twice(x, window):
        ids = [f"{window}{i}" for i in range(len(x))]
        return pd.DataFrame({"value": np.repeat(x.astype(float), 2), "customer_id": np.repeat(ids, 2)})

    got = compare_units(twice(before, "b"), twice(after, "a"), "rate", clustered=True)
    assert (got.deff_before, got.deff_after) == pytest.approx((2.0, 2.0))
    assert (got.ci_low, got.ci_high, got.p_value) == pytest.approx((once.ci_low, once.ci_high, once.p_value))
    assert got.n_before == 600 and got.test == "two-proportion z, clustered"
    naive = compare_units(twice(before, "b"), twice(after, "a"), "rate")  # a metric of one unit per customer
    assert naive.test == "two-proportion z" and naive.deff_after == 1.0
    assert naive.ci_high - naive.ci_low < 0.8 * (got.ci_high - got.ci_low)  # what counting units alone claimed
