"""Customer lifetime value for a case: BG/NBD and Gamma-Gamma per customer, by tier, described."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from crmnb.analysis.bgnbd import (
    DAYS_PER_MONTH,
    MIN_REPEAT_CUSTOMERS,
    PERIOD_DAYS,
    BGNBDParams,
    CLVTable,
    GammaGammaParams,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    prob_alive,
    rfm_summary,
    unconditional_expected_purchases,
)
from crmnb.analysis.lifetime_terms import customer_codes
from crmnb.errors import NotEnoughData
from crmnb.present.words import fmt_sig, retold, t


# --------------------------------------------------------------------------- CLV
class NewCustomerValue(NamedTuple):
    """The lifetime value of a newly won customer over a horizon, and its parts (for LTV/CAC)."""

    first_order: float  # mean value of a new customer's first purchase occasion
    repeat_purchases: float  # BG/NBD expected repeat purchases of a new customer over the horizon
    repeat_spend: float  # mean value of a repeat purchase occasion
    horizon_months: float
    n: int  # customers the model was fitted on

    @property
    def value(self) -> float:
        """Return first order + expected repeat purchases × repeat spend."""
        return self.first_order + self.repeat_purchases * self.repeat_spend


_FITS: dict[str, BGNBDParams] = {}
"""The BG/NBD fits of :func:`new_customer_value` by the digest of their data: step 3 values the LTV of the same
orders twice (the headline and unit economics), each fit a second of the optimiser per 15,000 customers."""


def _fit_once(summary: pd.DataFrame) -> BGNBDParams:
    """Return the BG/NBD fit of an RFM summary, fitted once per distinct data in this process (a pure function)."""
    import hashlib

    data = np.column_stack([summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")])
    key = hashlib.sha1(data.tobytes()).hexdigest() + str(data.shape)
    if key not in _FITS:
        if len(_FITS) >= 8:  # a few cases' worth; the parameters are four numbers each
            _FITS.pop(next(iter(_FITS)))
        _FITS[key] = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    return _FITS[key]


def new_customer_value(orders: pd.DataFrame, as_of, horizon_months: float = 12, freq: str = "W") -> NewCustomerValue:
    """Return what a newly won customer is worth over ``horizon_months``, from the model the CLV uses.

    The first purchase is the mean first occasion of the customers won in the 365 days up to
    ``as_of`` (of all customers when none was); the repeat purchases are the BG/NBD's
    unconditional expectation for a new customer over the horizon, fitted on the orders up to
    ``as_of``; a repeat purchase is worth the mean repeat occasion. Revenue, not margin.
    """
    summary = rfm_summary(orders, as_of, freq=freq)
    if int((summary["frequency"] > 0).sum()) < MIN_REPEAT_CUSTOMERS:
        raise NotEnoughData(
            "clv.too_few", MIN_REPEAT_CUSTOMERS, 0, need=MIN_REPEAT_CUSTOMERS, n=int((summary["frequency"] > 0).sum())
        )
    bg = _fit_once(summary)
    horizon = horizon_months * DAYS_PER_MONTH / PERIOD_DAYS[freq]
    repeat = float(unconditional_expected_purchases(bg, horizon))
    x, m = summary["frequency"].to_numpy(dtype=float), summary["monetary_value"].to_numpy(dtype=float)
    spend = float((x * m).sum() / x.sum())
    # only the columns it needs, the ids as integer codes that sort as they do: the same occasions, in order
    o = orders[["customer_id", "order_date", "amount"]].dropna(subset=["customer_id", "order_date"])
    o = o[o["order_date"] < pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)]
    period = pd.to_datetime(o["order_date"]).dt.to_period(freq)
    o = o.assign(customer_id=customer_codes(o["customer_id"])[0], p=period)
    occ = o.groupby(["customer_id", "p"])["amount"].sum(min_count=0).reset_index()
    first = occ.sort_values("p").drop_duplicates("customer_id")
    recent = first[first["p"].dt.end_time >= pd.Timestamp(as_of) - pd.Timedelta(days=364)]
    first_value = float((recent if len(recent) else first)["amount"].fillna(0.0).mean())
    return NewCustomerValue(first_value, repeat, spend, float(horizon_months), int(bg.n))


def ltv_relation(ltv: NewCustomerValue, clv_result: CLVTable, lang: str) -> str:
    """Return how the LTV of LTV/CAC and the CLV of existing customers relate, in one sentence."""
    return t(
        "series.ltv.relation",
        lang,
        h=f"{ltv.horizon_months:g}",
        ltv=f"{ltv.value:,.0f}",
        first=f"{ltv.first_order:,.0f}",
        k=f"{ltv.repeat_purchases:.2f}",
        spend=f"{ltv.repeat_spend:,.0f}",
        clv=f"{clv_result.table['clv'].mean():,.0f}",
        purchases=f"{clv_result.table['expected_purchases'].mean():.2f}",
    )


def observed_spend(x, m) -> np.ndarray:
    """Return each customer's own mean repeat spend, and the repeat buyers' median for one-time buyers.

    The fallback when the Gamma-Gamma model does not fit (spend too heavy-tailed).
    """
    x, m = (np.asarray(v, dtype=float) for v in (x, m))
    repeat = x > 0
    typical = float(np.median(m[repeat])) if repeat.any() else 0.0
    return np.where(repeat, m, typical)


def clv(
    bg: BGNBDParams,
    gg: GammaGammaParams | None,
    summary: pd.DataFrame,
    horizon_periods: float,
    discount_rate_per_period: float = 0.0,
) -> pd.DataFrame:
    """Return per customer: expected purchases over the horizon, probability alive, expected spend and CLV.

    ``summary`` has the columns of :func:`rfm_summary`. CLV is expected purchases
    × expected spend per purchase. With a discount rate d > 0 the horizon is cut
    into whole periods (plus a last partial one); the purchases expected in
    period k, E[Y(k)] − E[Y(k−1)], are discounted by (1 + d)^−k, i.e. as if made
    at the period's end — a slight under-statement against continuous
    discounting. With d = 0 it is the undiscounted E[Y(horizon)] × spend.
    """
    if not horizon_periods >= 0:
        raise ValueError(f"horizon_periods must be ≥ 0, not {horizon_periods!r}")
    if not discount_rate_per_period >= 0:
        raise ValueError(f"discount_rate_per_period must be ≥ 0, not {discount_rate_per_period!r}")
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    m = summary["monetary_value"].to_numpy(dtype=float)
    purchases = expected_purchases(bg, horizon_periods, x, t_x, T)
    # repeat buyers with no positive repeat spend are outside the spend model: they get its mean spend
    out_of_model = (x > 0) & ~(m > 0)
    x_spend, m_spend = np.where(out_of_model, 0.0, x), np.where(out_of_model, 0.0, m)
    spend = expected_spend(gg, x_spend, m_spend) if gg is not None else observed_spend(x, m)
    if discount_rate_per_period > 0 and horizon_periods > 0:
        ends = np.append(np.arange(1, math.ceil(horizon_periods)), horizon_periods)
        cum = np.vstack([np.zeros_like(x)] + [expected_purchases(bg, t, x, t_x, T) for t in ends])
        weights = (1.0 + discount_rate_per_period) ** -np.ceil(ends)
        discounted = (np.diff(cum, axis=0) * weights[:, None]).sum(axis=0)
    else:
        discounted = purchases
    out = summary.copy()
    out["expected_purchases"] = purchases
    out["prob_alive"] = prob_alive(bg, x, t_x, T)
    out["expected_spend"] = spend
    out["clv"] = discounted * spend
    return out


def clv_table(
    orders: pd.DataFrame,
    as_of,
    horizon_months: float = 12,
    freq: str = "W",
    discount_rate_per_period: float = 0.0,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str = "amount",
    spend_fallback: bool = True,
) -> CLVTable:
    """Return the per-customer CLV table over ``horizon_months`` and the fitted BG/NBD and Gamma-Gamma models.

    Summarises ``orders`` up to ``as_of`` with :func:`rfm_summary`, fits both
    models and applies :func:`clv`. A month is 365.25/12 days. When the spend
    model cannot be used (for example q ≤ 1: spend too heavy-tailed) and
    ``spend_fallback`` is set, each customer's own mean spend is used instead and
    ``note`` says why; otherwise the error is raised.
    """
    dates = pd.to_datetime(orders[date_col]) if date_col in orders.columns else None
    if (
        dates is not None
        and customer_col in orders.columns
        and not (orders[customer_col].notna() & (dates < pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1))).any()
    ):
        raise NotEnoughData(
            "clv.no_orders", MIN_REPEAT_CUSTOMERS, 0, need=MIN_REPEAT_CUSTOMERS, date=pd.Timestamp(as_of).date()
        )
    summary = rfm_summary(orders, as_of, freq=freq, customer_col=customer_col, date_col=date_col, amount_col=amount_col)
    repeat = int((summary["frequency"] > 0).sum())
    if repeat < MIN_REPEAT_CUSTOMERS:
        key = "clv.too_few" if repeat else "clv.too_few.zero"
        raise NotEnoughData(key, MIN_REPEAT_CUSTOMERS, repeat, need=MIN_REPEAT_CUSTOMERS, n=repeat)
    note = ""
    # fitted on the repeat buyers with positive repeat spend; the others are flagged, not fatal for everyone
    positive = summary[~((summary["frequency"] > 0) & ~(summary["monetary_value"] > 0))]
    try:
        gg = fit_gamma_gamma(positive["frequency"], positive["monetary_value"])  # first: it names too few repeat buyers
        if gg.q <= 1:
            expected_spend(gg, positive["frequency"], positive["monetary_value"])  # raises with the reason
    except ValueError as exc:
        if not spend_fallback or int((summary["frequency"] > 0).sum()) < MIN_REPEAT_CUSTOMERS:
            raise  # too few repeat buyers: no lifetime model is possible, not just no spend model
        gg, note = None, t("words.clv.gg_not_used", "en", why=exc)  # kept in English, said in the report's language
    bg = _fit_once(summary)
    horizon = horizon_months * DAYS_PER_MONTH / PERIOD_DAYS[freq]
    return CLVTable(clv(bg, gg, summary, horizon, discount_rate_per_period), bg, gg, note)


CLV_COLUMNS = [
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
"""Columns of :func:`clv_table`'s per-customer table (an empty one has them too)."""


def empty_clv() -> pd.DataFrame:
    """Return a per-customer CLV table with no rows, for a case where lifetime value could not be estimated."""
    return pd.DataFrame({c: pd.Series(dtype=object if c == "customer_id" else float) for c in CLV_COLUMNS})


def by_tier(table: pd.DataFrame, tiers: pd.DataFrame) -> pd.DataFrame:
    """Return CLV per value tier: customers, mean probability alive, mean expected purchases, mean and total CLV.

    ``table`` is :func:`clv_table`'s per-customer table, ``tiers`` has customer_id and tier.
    """
    return (
        table.merge(tiers[["customer_id", "tier"]], on="customer_id", how="left")
        .groupby("tier")
        .agg(
            customers=("customer_id", "size"),
            prob_alive=("prob_alive", "mean"),
            expected_purchases=("expected_purchases", "mean"),
            clv=("clv", "mean"),
            clv_total=("clv", "sum"),
        )
        .reset_index()
    )


def fitted_params(result: CLVTable | None) -> dict:
    """Return the fitted models' parameters as plain values (empty for a model not fitted)."""
    if result is None:
        return {"bgnbd": {}, "gamma_gamma": {}}
    gg = result.gamma_gamma
    return {"bgnbd": result.bgnbd._asdict(), "gamma_gamma": gg._asdict() if gg is not None else {}}


def spend_outside_model(table: pd.DataFrame) -> pd.Series:
    """Return the customer ids of the repeat buyers with no positive repeat spend: left out of the Gamma-Gamma
    fit and given its mean spend per purchase.

    >>> spend_outside_model(pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [2, 0, 1],
    ...                                   "monetary_value": [10.0, 0.0, 0.0]})).tolist()
    ['c']
    """
    out = (table["frequency"] > 0) & ~(table["monetary_value"] > 0)
    return table.loc[out, "customer_id"]


def describe_fit(result: CLVTable, lang: str = "en") -> str:
    """State the fitted models in one paragraph: parameters, and what was assumed or replaced."""
    bg, gg = result.bgnbd, result.gamma_gamma
    parts = [
        t(
            "words.clv.bgnbd",
            lang,
            r=fmt_sig(bg.r),
            alpha=fmt_sig(bg.alpha),
            a=fmt_sig(bg.a),
            b=fmt_sig(bg.b),
            n=f"{bg.n:,}",
        )
    ]
    if bg.note:
        parts.append(t("clv.bgnbd_note", lang, note=t("bgnbd.flat", lang, mean=f"{bg.a / (bg.a + bg.b):.3g}")))
    if gg is not None:
        parts.append(
            t(
                "words.clv.gamma_gamma",
                lang,
                p=fmt_sig(gg.p),
                q=fmt_sig(gg.q),
                gamma=fmt_sig(gg.gamma),
                n=f"{gg.n:,}",
                corr=f"{gg.corr_frequency_monetary:+.2f}",
            )
        )
    outside = spend_outside_model(result.table)
    if gg is not None and len(outside):
        ids = ", ".join(map(str, outside.head(5))) + (", …" if len(outside) > 5 else "")
        parts.append(t("clv.gg_excluded", lang, n=f"{gg.n:,}", k=f"{len(outside):,}", ids=ids) + t("compare.end", lang))
    if result.note:
        parts.append(retold(result.note, lang) + ".")
    return " ".join(parts)
