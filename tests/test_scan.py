"""crmnb.analysis.scan: every subgroup against the rest, Holm-adjusted over all subgroups tested, and its chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crmnb.analysis.scan import driver_scan, scan_sentences, strongest
from crmnb.present.scan_chart import scan_chart

GOAL = {"name": "Repeat-purchase rate", "unit": "rate", "now": 0.5, "target": 0.6, "higher_is_better": True}


def _units() -> pd.DataFrame:
    # rep a: 2 of 20 repeat; rep b: 12 of 20; rep c: 16 of 20.  channel x: 15 of 30; y: 15 of 30
    value = [1.0] * 2 + [0.0] * 18 + [1.0] * 12 + [0.0] * 8 + [1.0] * 16 + [0.0] * 4
    rep = ["a"] * 20 + ["b"] * 20 + ["c"] * 20
    channel = (["x", "y"] * 30)[:60]
    return pd.DataFrame({"value": value, "rep": rep, "channel": channel})


def _pooled_p(k1, n1, k2, n2) -> float:
    p = (k1 + k2) / (n1 + n2)
    z = (k1 / n1 - k2 / n2) / np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(z)))


def test_each_subgroup_against_the_rest_with_holm_over_all_subgroups():
    u = _units()
    s = driver_scan(u, GOAL, "rate").set_index(["dimension", "subgroup"])
    k = {"a": 2, "b": 12, "c": 16}
    raw = {("rep", r): _pooled_p(k[r], 20, 30 - k[r], 40) for r in k}
    kx = int(u.loc[u["channel"] == "x", "value"].sum())
    raw[("channel", "x")] = _pooled_p(kx, 30, 30 - kx, 30)
    raw[("channel", "y")] = _pooled_p(30 - kx, 30, kx, 30)
    for key, p in raw.items():
        assert s.loc[key, "p_value"] == pytest.approx(p, rel=1e-9)
    # Holm by hand over the five p-values: sort, multiply by 5, 4, 3…, keep it rising, cap at 1
    order = sorted(raw, key=raw.get)
    running, holm = 0.0, {}
    for i, key in enumerate(order):
        running = max(running, min(1.0, (5 - i) * raw[key]))
        holm[key] = running
    for key, p in holm.items():
        assert s.loc[key, "p_holm"] == pytest.approx(p, rel=1e-9)
    # rep a repeats 10% against 70% for the rest: catching up closes 20/60 × 0.6 = 0.2, twice the 0.1 gap
    assert s.loc[("rep", "a"), "gain"] == pytest.approx(0.2)
    assert s.loc[("rep", "a"), "share_of_gap"] == pytest.approx(2.0)
    lo, hi = s.loc[("rep", "a"), ["ci_low", "ci_high"]]
    assert lo < 0.1 < hi and lo > 0  # Wilson: never below 0
    assert s.index[0] == ("rep", "a") and bool(s.loc[("rep", "a"), "significant"])
    assert strongest(driver_scan(u, GOAL, "rate"))["subgroup"].tolist() == ["a"]


def test_a_mean_is_compared_by_welch_and_nothing_is_shrunk():
    u = pd.DataFrame({"value": [10.0, 12, 11, 30, 31, 29, 30], "rep": list("aaabbbb")})
    goal = {**GOAL, "unit": "hours", "now": 21.9, "target": 20.0, "higher_is_better": False}
    s = driver_scan(u, goal, "hours").set_index("subgroup")
    assert s.loc["b", "p_value"] == pytest.approx(
        stats.ttest_ind([30, 31, 29, 30], [10, 12, 11], equal_var=False).pvalue
    )
    assert s.loc["b", "value"] == 30.0  # its own mean, not pulled towards the average
    assert s.loc["b", "gain"] == pytest.approx(4 / 7 * (30 - 11))


def test_the_scan_speaks_of_association_in_both_languages():
    s = driver_scan(_units(), GOAL, "rate")
    en = scan_sentences(s, GOAL, "en")
    zh = scan_sentences(s, GOAL, "zh")
    assert "5 subgroups across 2 dimensions" in en[0] and "associations, not causes" in en[0]
    assert "rep a (20)" in en[1] and "goes with 20.0 pp" in en[1] and "200% of the gap" in en[1]
    assert "相关" in zh[1] and "影响" not in " ".join(zh)
    chart = scan_chart(s, GOAL, lang="zh")
    assert chart.png.startswith(b"\x89PNG") and "销售代表 a" in chart.alt


def test_small_counts_are_tested_exactly():
    # 1 of 3 against 40 of 42: a cell expects fewer than 5, so Fisher's exact test, not the z-test
    u = pd.DataFrame({"value": [1.0, 0, 0] + [1.0] * 40 + [0.0] * 2, "rep": ["a"] * 3 + ["b"] * 42})
    s = driver_scan(u, GOAL, "rate").set_index("subgroup")
    assert s.loc["a", "p_value"] == pytest.approx(stats.fisher_exact([[1, 2], [40, 2]]).pvalue)
