"""BG/NBD and Gamma-Gamma CLV: the CDNOW reproduction, predictions, the RFM summary and failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import bgnbd, clv
from crmnb.errors import NotEnoughData

DATA = Path(__file__).resolve().parent / "data"
CALIBRATION_END = "1997-09-30"  # 39 weeks (272 days) after 1997-01-01: the CDNOW calibration period

# Published values and the number of decimals they were published to.
BGNBD_PUBLISHED = {"r": (0.243, 3), "alpha": (4.414, 3), "a": (0.793, 3), "b": (2.426, 3)}  # Fader, Hardie & Lee 2005
GG_PUBLISHED = {"p": (6.25, 2), "q": (3.74, 2), "gamma": (15.44, 2)}  # Fader & Hardie 2013


def _data(name: str) -> Path:
    path = DATA / name
    assert path.exists(), f"{path} is missing (the repository's .gitignore ignores data/: add it with git add -f)"
    return path


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return pd.read_csv(_data("cdnow_customers_summary.csv"))


@pytest.fixture(scope="module")
def cdnow_orders() -> pd.DataFrame:
    raw = pd.read_csv(
        _data("CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        dtype={2: str},
        names=["master_id", "customer_id", "date", "cds", "amount"],
    )
    return pd.DataFrame(
        {
            "order_id": np.arange(len(raw)),
            "customer_id": raw["customer_id"],
            "order_date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"],
        }
    )


@pytest.fixture(scope="module")
def cdnow_rfm(cdnow_orders) -> pd.DataFrame:
    # Distinct purchase days, time in weeks: how Fader & Hardie built their summary.
    return bgnbd.rfm_summary(cdnow_orders, CALIBRATION_END, freq="D", freq_multiplier=7)


@pytest.fixture(scope="module")
def bg(summary) -> bgnbd.BGNBDParams:
    return bgnbd.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])


@pytest.fixture(scope="module")
def gg(cdnow_rfm) -> bgnbd.GammaGammaParams:
    return bgnbd.fit_gamma_gamma(cdnow_rfm["frequency"], cdnow_rfm["monetary_value"])


def _matches_published(value: float, published: float, decimals: int) -> None:
    assert f"{value:.3g}" == f"{published:.3g}", (value, published)
    assert abs(value - published) <= 0.51 * 10.0**-decimals, (value, published)


# --------------------------------------------------------------------------- CDNOW reproduction


def test_bgnbd_reproduces_fader_hardie_lee_2005(bg):
    assert bg.n == 2357
    for name, (published, decimals) in BGNBD_PUBLISHED.items():
        _matches_published(getattr(bg, name), published, decimals)
    assert bg.loglik == pytest.approx(-9582.4, abs=0.06)


def test_rfm_summary_reproduces_the_cdnow_summaries(cdnow_rfm, summary):
    with_spend = pd.read_csv(_data("cdnow_customers_summary_with_transactions.csv"))
    s = cdnow_rfm.set_index("customer_id").loc[summary["ID"]]
    assert len(cdnow_rfm) == 2357
    np.testing.assert_array_equal(s["frequency"].to_numpy(), summary["frequency"].to_numpy())
    np.testing.assert_allclose(s["recency"].to_numpy(), summary["recency"].to_numpy(), atol=0.005 + 1e-9)
    np.testing.assert_allclose(s["T"].to_numpy(), summary["T"].to_numpy(), atol=0.005 + 1e-9)
    np.testing.assert_allclose(s["monetary_value"].to_numpy(), with_spend["zbar"].to_numpy(), atol=0.005 + 1e-9)


def test_gamma_gamma_reproduces_fader_hardie_2013(gg):
    assert gg.n == 946
    for name, (published, decimals) in GG_PUBLISHED.items():
        _matches_published(getattr(gg, name), published, decimals)
    # The independence assumption holds roughly on CDNOW: a weak correlation, reported.
    assert abs(gg.corr_frequency_monetary) < 0.2


def test_gamma_gamma_fit_on_bgnbd_input_columns(cdnow_rfm, gg):
    # Customers with x = 0 are ignored: fitting on the repeat buyers alone gives the same.
    rep = cdnow_rfm[cdnow_rfm["frequency"] > 0]
    again = bgnbd.fit_gamma_gamma(rep["frequency"], rep["monetary_value"])
    assert again.p == pytest.approx(gg.p, rel=1e-6) and again.gamma == pytest.approx(gg.gamma, rel=1e-6)


# --------------------------------------------------------------------------- predictions


def test_conditional_expectation_matches_the_paper(bg):
    published = bgnbd.BGNBDParams(0.243, 4.414, 0.793, 2.426, float("nan"))
    for params in (published, bg):
        assert float(bgnbd.expected_purchases(params, 39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=5e-4)


def test_expected_purchases_grow_with_horizon_and_frequency(bg):
    horizons = np.array([0.0, 1, 10, 39, 52, 520])
    e = bgnbd.expected_purchases(bg, horizons, 2, 30.43, 38.86)
    assert e[0] == 0 and np.all(np.diff(e) > 0)
    by_x = bgnbd.expected_purchases(bg, 39, np.array([0, 1, 5, 20]), 38.0, 38.86)
    assert np.all(np.diff(by_x) > 0)
    # A customer seen at their first purchase (x = t_x = T = 0) expects the unconditional E[X(t)].
    np.testing.assert_allclose(
        bgnbd.expected_purchases(bg, horizons, 0, 0.0, 0.0),
        bgnbd.unconditional_expected_purchases(bg, horizons),
        rtol=1e-10,
    )
    # Heavy buyers stay finite (the Euler-transformed 2F1 takes over where the published form overflows).
    assert np.all(np.isfinite(bgnbd.expected_purchases(bg, 52, np.arange(200), 38.0, 38.86)))


@pytest.mark.parametrize(
    "params", [bgnbd.BGNBDParams(0.243, 4.414, 0.793, 2.426, 0.0), bgnbd.BGNBDParams(1.19, 25.4, 4.2e5, 1.1e7, 0.0)]
)  # near-constant dropout
def test_expected_purchases_agree_with_quadrature(params):
    # (t, x, t_x, T): the paper's customer, a non-buyer, a heavy buyer over a long horizon.
    for t, x, t_x, T in [(39, 2, 30.43, 38.86), (39, 0, 0.0, 38.86), (5200, 600, 38.0, 38.86), (52, 13, 199, 273)]:
        by_quadrature = bgnbd._alive_mean_by_quadrature(*params[:4], t, x, T) * bgnbd.prob_alive(params, x, t_x, T)
        assert float(bgnbd.expected_purchases(params, t, x, t_x, T)) == pytest.approx(by_quadrature, rel=1e-7)


def test_prob_alive_is_a_probability_and_rises_with_recency(bg, summary):
    p = bgnbd.prob_alive(bg, summary["frequency"], summary["recency"], summary["T"])
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(p[summary["frequency"].to_numpy() == 0] == 1.0)
    recency = np.linspace(0.5, 38.86, 30)
    by_recency = bgnbd.prob_alive(bg, 3, recency, 38.86)
    assert np.all(np.diff(by_recency) > 0)
    # Bought just now: alive unless they dropped out right after that purchase, p = (b+x-1)/(a+b+x-1).
    assert by_recency[-1] == pytest.approx((bg.b + 2) / (bg.a + bg.b + 2))


def test_expected_spend_shrinks_towards_the_population_mean(gg):
    population = gg.p * gg.gamma / (gg.q - 1)
    assert float(bgnbd.expected_spend(gg, 0, 0.0)) == pytest.approx(population)
    for m in (5.0, 100.0):
        e = bgnbd.expected_spend(gg, np.array([1, 5, 50]), m)
        lo, hi = sorted((m, population))
        assert np.all((e > lo) & (e < hi))
        assert np.all(np.diff(np.abs(e - m)) < 0)  # more purchases: closer to the customer's own mean


def test_clv_and_discounting(bg, gg, cdnow_rfm):
    out = clv.clv(bg, gg, cdnow_rfm, 52.0)
    np.testing.assert_allclose(out["clv"], out["expected_purchases"] * out["expected_spend"])
    discounted = clv.clv(bg, gg, cdnow_rfm, 52.0, discount_rate_per_period=0.01)
    assert np.all(discounted["clv"] <= out["clv"] + 1e-12)
    assert discounted["clv"].sum() < out["clv"].sum()
    # A vanishing rate gives back the undiscounted value, also with a partial last period.
    tiny = clv.clv(bg, gg, cdnow_rfm, 52.18, discount_rate_per_period=1e-12)
    np.testing.assert_allclose(tiny["clv"], clv.clv(bg, gg, cdnow_rfm, 52.18)["clv"], rtol=1e-8)


def test_clv_table_end_to_end_on_cdnow(cdnow_orders, bg, summary):
    result = clv.clv_table(cdnow_orders, CALIBRATION_END, horizon_months=12, freq="W")
    t = result.table
    assert list(t.columns) == [
        "customer_id",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "expected_purchases",
        "prob_alive",
        "expected_spend",
        "clv",
    ]
    assert len(t) == 2357 and t["customer_id"].is_unique
    assert t[["expected_purchases", "expected_spend", "clv"]].ge(0).all().all()
    assert t["prob_alive"].between(0, 1).all()
    # Whole weeks (same-week orders merged) instead of days in fractional weeks: different
    # parameters, but nearly the same expected purchases over the next 12 months.
    horizon = 12 * 365.25 / 12 / 7
    published_fit = bgnbd.expected_purchases(bg, horizon, summary["frequency"], summary["recency"], summary["T"])
    assert t["expected_purchases"].sum() == pytest.approx(published_fit.sum(), rel=0.05)
    assert result.gamma_gamma.n == int((t["frequency"] > 0).sum())


# --------------------------------------------------------------------------- rfm_summary by hand


@pytest.fixture
def three_customers() -> pd.DataFrame:
    # 2024-01-01 is a Monday; pandas' "W" weeks run Monday to Sunday.
    rows = [
        ("A", "2024-01-01 09:00", 100.0),
        ("A", "2024-01-03 10:00", 50.0),  # week of 1 Jan: 150
        ("A", "2024-01-16 11:00", 30.0),
        ("A", "2024-01-20 12:00", 20.0),  # week of 15 Jan: 50
        ("A", "2024-01-30 13:00", 60.0),  # week of 29 Jan: 60
        ("B", "2024-01-10 14:00", 80.0),
        ("B", "2024-02-10 15:00", 999.0),  # the second is after as_of
        ("C", "2024-01-22 16:00", 10.0),
        ("C", "2024-01-22 17:00", 15.0),  # same day: one occasion of 25
        ("C", "2024-02-04 18:30", 40.0),  # on as_of's day: counted
        (None, "2024-01-05 00:00", 7.0),
        ("C", None, 7.0),  # no customer / no date: ignored
    ]
    return pd.DataFrame(
        {
            "order_id": range(len(rows)),
            "customer_id": [r[0] for r in rows],
            "order_date": pd.to_datetime([r[1] for r in rows]),
            "amount": [r[2] for r in rows],
        }
    )


def test_rfm_summary_weekly_by_hand(three_customers):
    s = bgnbd.rfm_summary(three_customers, "2024-02-04", freq="W").set_index("customer_id")
    # A: weeks 1 Jan, 15 Jan, 29 Jan -> x=2, t_x=4, T=4 (as_of's week starts 29 Jan), m=(50+60)/2.
    # B: week 8 Jan only -> x=0, T=3, m=0.   C: weeks 22 Jan, 29 Jan -> x=1, t_x=1, T=1, m=40.
    expected = pd.DataFrame(
        {"frequency": [2, 0, 1], "recency": [4.0, 0.0, 1.0], "T": [4.0, 3.0, 1.0], "monetary_value": [55.0, 0.0, 40.0]},
        index=pd.Index(["A", "B", "C"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(s, expected)


def test_rfm_summary_daily_by_hand(three_customers):
    s = bgnbd.rfm_summary(three_customers, "2024-02-04", freq="D").set_index("customer_id")
    # A: days 1, 3, 16, 20, 30 Jan -> x=4, t_x=29, T=34, m=(50+30+20+60)/4.
    # B: 10 Jan -> x=0, T=25.   C: 22 Jan (25), 4 Feb (40) -> x=1, t_x=13, T=13, m=40.
    assert s["frequency"].tolist() == [4, 0, 1]
    assert s["recency"].tolist() == [29.0, 0.0, 13.0]
    assert s["T"].tolist() == [34.0, 25.0, 13.0]
    assert s["monetary_value"].tolist() == [40.0, 0.0, 40.0]
    weeks = bgnbd.rfm_summary(three_customers, "2024-02-04", freq="D", freq_multiplier=7).set_index("customer_id")
    np.testing.assert_allclose(weeks["T"], [34 / 7, 25 / 7, 13 / 7])
    assert weeks["frequency"].tolist() == [4, 0, 1]


# --------------------------------------------------------------------------- failures


def test_too_few_repeat_buyers(three_customers):
    with pytest.raises(
        NotEnoughData,
        match=r"^Lifetime value not estimated: it needs at least 10 customers with "
        r"repeat purchases; this data has 2\.$",
    ) as err:
        clv.clv_table(three_customers, "2024-02-04")
    assert (err.value.needed, err.value.found) == (10, 2)
    assert err.value.zh == "未估算客户生命周期价值：至少需要10位有复购的客户，本数据只有2位。"
    with pytest.raises(ValueError, match=r"too few repeat customers .*: 2 with frequency > 0, need at least 10"):
        bgnbd.fit_gamma_gamma([4, 0, 1], [40.0, 0.0, 40.0])


def test_no_orders(three_customers):
    with pytest.raises(ValueError, match=r"no orders on or before as_of=2024-02-04 \(0 order rows"):
        bgnbd.rfm_summary(three_customers.iloc[:0], "2024-02-04")
    with pytest.raises(
        NotEnoughData, match=r"it needs at least 10 customers .*; this data has no orders up to 2023-12-31"
    ):
        clv.clv_table(three_customers, "2023-12-31")


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="none of the 3 customers made a repeat purchase"):
        bgnbd.fit_bgnbd([0, 0, 0], [0, 0, 0], [5, 5, 5])
    with pytest.raises(ValueError, match=r"recency must lie in \[0, T\]"):
        bgnbd.fit_bgnbd([1, 2], [3.0, 9.0], [5.0, 5.0])
    with pytest.raises(ValueError, match="monetary value ≤ 0"):
        bgnbd.fit_gamma_gamma(np.ones(12), np.r_[np.full(11, 10.0), -5.0])
    with pytest.raises(ValueError, match="freq must be one of"):
        bgnbd.rfm_summary(pd.DataFrame(columns=["customer_id", "order_date", "amount"]), "2024-01-01", freq="M")


def test_non_convergence_names_the_optimiser_message(monkeypatch, summary):
    real = bgnbd.optimize.minimize

    def starved(fun, x0, method=None, options=None, **kw):
        return real(fun, x0, method=method, options={**(options or {}), "maxiter": 5, "maxfev": 5}, **kw)

    monkeypatch.setattr(bgnbd.optimize, "minimize", starved)
    with pytest.raises(ValueError, match=r"BG/NBD fit did not converge: .*(ITERATIONS|[Mm]aximum number)"):
        bgnbd.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])


def test_observed_spend_uses_own_mean_and_the_typical_repeat_spend():
    got = clv.observed_spend([0, 2, 3, 1], [0.0, 100.0, 300.0, 50.0])
    assert got.tolist() == [100.0, 100.0, 300.0, 50.0]  # one-time buyer gets the repeat buyers' median


def test_heavy_tailed_spend_falls_back_to_observed_means(monkeypatch):
    summary = pd.read_csv(DATA / "cdnow_customers_summary.csv")
    rows = []
    for i, r in summary.head(300).iterrows():  # build orders whose summary has enough repeat buyers
        for k in range(int(r["frequency"]) + 1):
            rows.append(
                {
                    "customer_id": i,
                    "order_date": pd.Timestamp("1997-01-01") + pd.Timedelta(weeks=3 * k),
                    "amount": 20.0 + 10 * (i % 7),
                }
            )
    orders = pd.DataFrame(rows)
    heavy = bgnbd.GammaGammaParams(p=2.0, q=0.8, gamma=10.0, loglik=0.0, n=100)
    monkeypatch.setattr(clv, "fit_gamma_gamma", lambda x, m: heavy)
    res = clv.clv_table(orders, "1997-12-31")
    assert res.gamma_gamma is None and "q ≤ 1" in res.note and "own mean spend" in res.note
    s = bgnbd.rfm_summary(orders, "1997-12-31")
    assert np.allclose(res.table["expected_spend"], clv.observed_spend(s["frequency"], s["monetary_value"]))
    with pytest.raises(ValueError, match="q ≤ 1"):
        clv.clv_table(orders, "1997-12-31", spend_fallback=False)
