"""crmnb.analysis.compare: change rates, before/after differences with intervals, difference-in-differences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis.compare import (
    Difference,
    bootstrap_means,
    change_rate,
    compare_units,
    describe_change,
    diff_in_diff,
    nothing_measured,
    two_proportions,
)

Z = 1.959963984540054  # the 97.5% normal quantile


# --------------------------------------------------------------------------- change rate: the method's worked rows
def test_change_rate_response_time_48h_to_24h_is_minus_50_percent():
    assert change_rate(48, 24) == -0.5


def test_change_rate_satisfaction_7_2_to_8_5_is_plus_18_percent():
    r = change_rate(7.2, 8.5)
    assert r == pytest.approx(1.3 / 7.2)
    assert round(r, 4) == 0.1806
    assert round(r * 100) == 18


def test_change_rate_rate_75_to_90_percent_is_plus_20_percent():
    assert change_rate(0.75, 0.90) == pytest.approx(0.20)


def test_change_rate_from_a_negative_baseline_keeps_the_direction():
    assert change_rate(-20, -10) == pytest.approx(0.5)  # NPS −20 → −10 is an improvement


def test_change_rate_without_a_baseline_is_nan():
    assert math.isnan(change_rate(0, 5))
    assert math.isnan(change_rate(float("nan"), 5))
    assert math.isnan(change_rate(5, float("nan")))


# --------------------------------------------------------------------------- two proportions
def test_two_proportions_against_the_hand_formula():
    before = np.array([1] * 30 + [0] * 70)
    after = np.array([1] * 45 + [0] * 55)
    d = two_proportions(before, after)
    p1, p2 = 0.30, 0.45

    def wilson(p, n):  # the score interval of one proportion
        c, h = p + Z * Z / (2 * n), Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
        return (c - h) / (1 + Z * Z / n), (c + h) / (1 + Z * Z / n)

    (l1, u1), (l2, u2) = wilson(p1, 100), wilson(p2, 100)
    pooled = 75 / 200
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert (d.before, d.after, d.n_before, d.n_after) == (pytest.approx(0.30), pytest.approx(0.45), 100, 100)
    assert d.diff == pytest.approx(0.15)
    # Newcombe's hybrid score interval (1998, method 10)
    assert d.ci_low == pytest.approx(0.15 - math.hypot(p2 - l2, u1 - p1))
    assert d.ci_high == pytest.approx(0.15 + math.hypot(u2 - p2, p1 - l1))
    assert d.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))  # two-sided normal p
    assert d.significant
    assert d.test == "two-proportion z"


def test_two_proportions_no_difference_is_not_significant():
    x = np.array([1, 0] * 50)
    d = two_proportions(x, x)
    assert d.diff == 0 and d.p_value == pytest.approx(1.0) and not d.significant


def test_two_proportions_empty_side_gives_nan():
    d = two_proportions(np.array([]), np.array([1, 0]))
    assert math.isnan(d.diff) and math.isnan(d.p_value) and d.n_before == 0
    assert math.isnan(d.before) and d.after == 0.5  # the side that was measured keeps its figure


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_interval_contains_the_true_difference():
    rng = np.random.default_rng(1)
    before = rng.normal(10, 2, 200)
    after = before + 3  # the same sample shifted: the difference is exactly 3
    d = bootstrap_means(before, after, n_boot=1000, seed=7)
    assert d.diff == pytest.approx(3.0)
    assert d.ci_low < 3.0 < d.ci_high
    assert d.ci_high - d.ci_low < 2.0
    assert d.significant and d.p_value < 0.01
    assert d.test == "bootstrap"


def test_bootstrap_is_deterministic_for_a_seed():
    a = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    b = np.array([2.0, 3, 5, 5, 6, 8, 9, 9])
    assert bootstrap_means(a, b, n_boot=500, seed=3) == bootstrap_means(a, b, n_boot=500, seed=3)
    assert bootstrap_means(a, b, n_boot=500, seed=3) != bootstrap_means(a, b, n_boot=500, seed=4)


def test_bootstrap_ignores_missing_values():
    d = bootstrap_means(np.array([1.0, np.nan, 3.0]), np.array([5.0, 7.0]), n_boot=200)
    assert (d.before, d.after, d.n_before, d.n_after) == (2.0, 6.0, 2, 2)


def test_bootstrap_with_an_empty_side_gives_nan():
    d = bootstrap_means(np.array([np.nan]), np.array([1.0]))
    assert math.isnan(d.diff) and not d.significant
    assert math.isnan(d.before) and d.after == 1.0


def test_a_metric_measured_in_one_window_only_says_it_was_not_compared():
    row = pd.Series(
        {
            "name": "Opportunity win rate",
            "unit": "rate",
            "before": np.nan,
            "after": 0.5,
            "change_rate": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "n_before": 0,
            "n_after": 2,
        }
    )
    assert describe_change(row, "en") == (
        "Opportunity win rate: – → 50.0% (not compared: nothing to measure it on before the intervention)."
    )
    neither = pd.concat([row.drop(["n_after", "after"]), pd.Series({"n_after": 0, "after": np.nan})])
    assert describe_change(neither, "en").endswith("(not compared: nothing to measure it on before or after).")
    assert nothing_measured("lead_response_hours", "owner_rep", "zh").startswith("未按销售代表展示线索响应时长")


def test_compare_units_uses_a_proportion_test_for_rates_and_the_bootstrap_otherwise():
    b = pd.DataFrame({"value": [0.0, 1.0, 0.0, 1.0]})
    a = pd.DataFrame({"value": [1.0, 1.0, 1.0, 0.0]})
    assert compare_units(b, a, "rate").test == "two-proportion z"
    assert compare_units(b, a, "hours").test == "bootstrap"


# --------------------------------------------------------------------------- difference-in-differences
def diff(d: float, half_width: float) -> Difference:
    return Difference(0.0, d, d, d - half_width, d + half_width, 0.01, "test", 100, 100)


def test_diff_in_diff_by_hand():
    treated = diff(0.10, 0.04)
    control = diff(0.02, 0.03)
    did, lo, hi = diff_in_diff(treated, control)
    assert did == pytest.approx(0.08)
    half = math.sqrt(0.04**2 + 0.03**2)  # independent groups: half-widths add in quadrature
    assert lo == pytest.approx(0.08 - half)
    assert hi == pytest.approx(0.08 + half)


def test_diff_in_diff_of_equal_changes_is_zero():
    did, lo, hi = diff_in_diff(diff(0.05, 0.02), diff(0.05, 0.02))
    assert did == pytest.approx(0.0) and lo < 0 < hi
