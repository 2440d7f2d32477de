"""What a company many times the demo's size meets that the demo never does: the tests chosen for large samples."""

import numpy as np
import pytest

from crmnb.analysis import compare
from crmnb.present.words import t


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_test_a_comparison_can_name_has_words(lang):
    """Above 20,000 units a mean is compared by Welch's test: its name must be in the catalogue in both languages
    (at 100 times the demo data, step 7 stopped on the missing name)."""
    rng = np.random.default_rng(1)
    big = compare.bootstrap_means(rng.normal(10, 2, 25_000), rng.normal(10.1, 2, 25_000))
    small = compare.bootstrap_means(rng.normal(10, 2, 50), rng.normal(10.1, 2, 50), n_boot=200)
    rates = compare.two_proportions(rng.random(500) < 0.2, rng.random(500) < 0.25)
    clustered = compare.two_proportions(rng.random(500) < 0.2, rng.random(500) < 0.25, deff=(1.4, 1.3))
    assert big.test == "Welch" and small.test == "bootstrap"
    for d in (big, small, rates, clustered):
        words = t(f"words.test.{d.test}", lang)
        assert words and "words.test" not in words


def test_welch_interval_is_the_normal_one_at_large_samples():
    """The large-sample interval is the difference ± 1.96 standard errors, recomputed here."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(5, 1, 30_000), rng.normal(5.05, 1, 30_000)
    d = compare.bootstrap_means(a, b)
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert d.diff == pytest.approx(b.mean() - a.mean())
    assert d.ci_low == pytest.approx(d.diff - 1.959964 * se, rel=1e-6)
    assert d.ci_high == pytest.approx(d.diff + 1.959964 * se, rel=1e-6)
