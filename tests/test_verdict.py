"""The goal's verdict with its uncertainty, on small hand-computed examples, and its words in the summary."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis.verdict import Level, judge, mean_level, rate_level
from crmnb.params.files import load_case
from crmnb.present.summary import make_summary

ROOT = Path(__file__).resolve().parents[1]
Z = 1.959963984540054


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval written out from its formula, independently of crmnb."""
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def test_rate_level_is_wilsons_interval():
    lv = rate_level(201, 1000)
    lo, hi = _wilson_by_hand(201, 1000)
    assert lv.value == pytest.approx(0.201) and lv.n == 1000
    assert (lv.low, lv.high) == pytest.approx((lo, hi), abs=1e-9)
    assert (round(lo, 4), round(hi, 4)) == (0.1773, 0.227)


def test_mean_level_brackets_the_mean_like_a_t_interval():
    rng = np.random.default_rng(3)
    x = rng.normal(12.0, 4.0, 400)
    lv = mean_level(x)
    half = 1.966 * x.std(ddof=1) / math.sqrt(len(x))  # t(399) 97.5% quantile
    assert lv.value == pytest.approx(x.mean())
    assert lv.low == pytest.approx(x.mean() - half, abs=0.08) and lv.high == pytest.approx(x.mean() + half, abs=0.08)
    assert np.isnan(mean_level([]).value) and np.isnan(mean_level([5.0]).low)


def test_twenty_point_one_percent_of_a_thousand_against_twenty_is_within_the_margin():
    lv = rate_level(201, 1000)  # 17.7–22.7% includes 20%
    assert judge(lv, 0.20, True, 0.005, 0.07) == "on_track"


def test_an_interval_entirely_above_the_target_is_reached():
    lv = rate_level(260, 1000)  # 23.4–28.8%
    assert lv.low > 0.20
    assert judge(lv, 0.20, True, 0.05, 0.12) == "reached"


def test_an_interval_entirely_below_the_target_is_not_reached():
    lv = rate_level(160, 1000)  # 13.9–18.4%
    assert lv.high < 0.20
    assert judge(lv, 0.20, True, -0.01, 0.04) == "not_reached"


def test_a_significant_fall_is_the_wrong_way_even_near_the_target():
    lv = rate_level(195, 1000)  # 17.2–22.0% includes 20%, but the change from 25% is a clear fall
    assert judge(lv, 0.20, True, -0.09, -0.02) == "wrong_way"


def test_lower_is_better_goals_read_the_other_way():
    hours = Level(10.0, 9.0, 11.5, 300)  # response hours, target 12 h: the interval lies below it
    assert judge(hours, 12.0, False, -5.0, -2.0) == "reached"
    assert judge(Level(12.5, 11.0, 14.0, 300), 12.0, False, -3.0, -0.5) == "on_track"
    assert judge(Level(16.0, 15.0, 17.0, 300), 12.0, False, 1.0, 3.0) == "wrong_way"
    assert judge(Level(float("nan"), float("nan"), float("nan"), 0), 12.0, False, np.nan, np.nan) == "not_measured"


# ------------------------------------------------------------------ the summary's words
def _case(language: str = "en", **goal):
    case = load_case(ROOT / "parameters" / "lead_conversion_uplift.yaml")
    return case.model_copy(update={"language": language, "goal": case.goal.model_copy(update=goal)})


def _kpi(before_k: int, after_k: int, n: int = 1000) -> pd.DataFrame:
    from crmnb.analysis.compare import two_proportions

    d = two_proportions(
        np.r_[np.ones(before_k), np.zeros(n - before_k)], np.r_[np.ones(after_k), np.zeros(n - after_k)]
    )
    return pd.DataFrame(
        [
            {
                "metric": "lead_conversion_rate",
                "name": "Lead conversion rate",
                "unit": "rate",
                "before": d.before,
                "after": d.after,
                "change_rate": (d.after - d.before) / d.before,
                "difference": d.diff,
                "ci_low": d.ci_low,
                "ci_high": d.ci_high,
                "p_value": d.p_value,
                "n_before": n,
                "n_after": n,
                "did": np.nan,
            }
        ]
    )


PROBLEMS = pd.DataFrame(
    {
        "kind": ["goal_gap", "weak_stage", "cpa", "slow_response"],
        "problem": ["Goal not met", "Largest drop-off after 'first contact'", "Campaign over budget", "Slow response"],
        "evidence": ["gap 1 pp", "41.2% go on", "1 campaign", "36 h against 24 h"],
        "cause": ["", "", "", ""],
    }
)
PLAN = pd.DataFrame({"measure": ["Coach stage 2"], "owner": ["Li"], "deadline": ["2026-03-31"]})
MONTHLY = pd.DataFrame(
    {
        "month": pd.to_datetime(["2025-10-01", "2025-11-01", "2025-12-01"] * 2),
        "department": ["Sales 1"] * 3 + ["Customer service"] * 3,
        "value": [0.21, 0.22, 0.181, 0.12, 0.13, 0.14],
        "n": [540, 530, 530, 500, 500, 500],
    }
)


def test_summary_states_margin_interval_change_and_latest_month():
    s = make_summary(_case(), _kpi(152, 201), PROBLEMS, PLAN, monthly=MONTHLY)
    assert s["verdict"] == "on_track"
    assert s["headline"] == "within the margin of error: 20.1% vs target 20.0%"
    assert s["interval"] == pytest.approx(list(_wilson_by_hand(201, 1000)))
    assert s["verdict_text"].startswith(
        "Within the margin of error: 20.1%, 0.1 pp above the 20.0% target; the 95% interval 17.7–22.7% includes it. "
        "Up 4.9 pp from 15.2% in the before window (95% CI of the change "
    )
    assert s["verdict_text"].endswith("December alone: 18.1% (95% CI 15.1–21.6%).")
    assert s["latest_month"] == {"month": "2025-12", "value": 0.181, "n": 530}
    assert s["baseline_note"].startswith(
        "The case file's baseline (15.0%) differs from the before window measured here (15.2%"
    )


def test_a_baseline_equal_after_rounding_needs_no_note_and_no_full_month_gives_none():
    case = _case(baseline=0.1524)
    s = make_summary(case, _kpi(152, 270), PROBLEMS, PLAN)
    assert s["baseline_note"] is None and s["latest_month"] is None
    assert s["verdict"] == "reached" and s["headline"] == "target reached: 27.0% vs target 20.0%"
    assert "the 95% interval 24.3–29.8% lies entirely above it" in s["verdict_text"]


def test_chinese_summary_of_a_fall_says_wrong_way_in_chinese():
    s = make_summary(
        _case("zh"),
        _kpi(260, 190),
        PROBLEMS,
        PLAN,
        monthly=MONTHLY.replace({"Sales 1": "销售一部", "Customer service": "客户服务部"}),
    )
    assert s["verdict"] == "wrong_way"
    assert s["headline"] == "偏离目标方向：19.0%（目标 20.0%）"
    assert "比目标值 20.0% 低 1.0个百分点；95%置信区间 16.7–21.5% 包含目标值。" in s["verdict_text"]
    assert "较实施前的 26.0% 下降 7.0个百分点（变化的95%置信区间" in s["verdict_text"]
    assert s["verdict_text"].endswith("12月单月：18.1%（95%置信区间 15.1–21.6%）。")


def test_findings_keep_to_the_problems_bearing_on_the_goal_when_the_diagnosis_says_which():
    kpi = _kpi(152, 201)
    plain = make_summary(_case(), kpi, PROBLEMS, PLAN)["findings"]
    assert plain[0] == "Largest drop-off after 'first contact': 41.2% go on." and len(plain) == 3
    assert not any("Goal not met" in f for f in plain), "the goal's own gap is the verdict, not a finding"
    marked = PROBLEMS.assign(bears_on_goal=[True, True, False, True], share_of_gap=[1.0, 0.2, 0.0, 0.6])
    findings = make_summary(_case(), kpi, marked, PLAN)["findings"]
    assert findings == ["Slow response: 36 h against 24 h.", "Largest drop-off after 'first contact': 41.2% go on."]


def test_the_brief_lists_only_actions_that_bear_on_the_goal():
    from crmnb.present.summary import top_actions

    plan = pd.DataFrame(
        {
            "measure": ["case file's own", "off the goal", "on the goal", "also on it", "a fourth"],
            "owner": "o",
            "deadline": "2026-03-31",
            "bears_on_goal": [True, False, True, True, True],
        }
    )
    assert [a["measure"] for a in top_actions(plan)] == ["case file's own", "on the goal", "also on it"]
    assert len(top_actions(plan.drop(columns="bears_on_goal"))) == 3  # a plan from before the goal tree
