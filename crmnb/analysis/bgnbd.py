"""Customer lifetime value: the BG/NBD purchase model and the Gamma-Gamma spend model.

Two probability models replace "average order value × average orders":

* BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):
  while alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each
  purchase they drop out with probability p ~ Beta(a, b). It needs only each
  customer's frequency ``x`` (repeat purchases), recency ``t_x`` (time of the
  last purchase since the first) and age ``T`` (time since the first purchase).
* Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie 2013,
  "The Gamma-Gamma model of monetary value"): a customer's spend per purchase is
  Gamma(p, ν) with ν ~ Gamma(q, γ) across customers. It is fitted on repeat
  buyers' mean repeat spend ``m`` and assumes spend is independent of purchase
  frequency: :func:`fit_gamma_gamma` reports their correlation so it can be checked.

Both are fitted by maximum likelihood over log-parameters with scipy. Time is
counted in periods (weeks or days, see :func:`rfm_summary`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, special

from crmnb.analysis.lifetime_terms import BGNBDTerms, GammaGammaTerms, customer_codes
from crmnb.present.words import t

PERIOD_DAYS = {"D": 1.0, "W": 7.0}
"""Length of each supported period, in days."""

MIN_REPEAT_CUSTOMERS = 10
"""Fewest repeat buyers the Gamma-Gamma fit accepts."""

DAYS_PER_MONTH = 365.25 / 12


class BGNBDParams(NamedTuple):
    """Fitted BG/NBD parameters: purchase rate Gamma(r, α), dropout Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    loglik: float
    n: int = 0
    note: str = ""


MAX_DROPOUT_CONCENTRATION = 1e4
"""Cap on a + b when the data show near-constant dropout, where the likelihood keeps rising as a, b grow."""


class GammaGammaParams(NamedTuple):
    """Fitted Gamma-Gamma parameters, with the frequency-spend correlation of the repeat buyers."""

    p: float
    q: float
    gamma: float
    loglik: float
    n: int = 0
    corr_frequency_monetary: float = float("nan")


class CLVTable(NamedTuple):
    """Per-customer CLV table and the two fitted models."""

    table: pd.DataFrame
    bgnbd: BGNBDParams
    gamma_gamma: GammaGammaParams | None
    note: str = ""  # why the spend model was not used, when it was not


# --------------------------------------------------------------------------- summary


def _check_summary_inputs(
    orders: pd.DataFrame, freq: str, freq_multiplier: float, columns: tuple[str | None, ...]
) -> None:
    """Raise ValueError when ``freq`` is unknown, ``freq_multiplier`` not positive or ``orders`` lacks a column."""
    if freq not in PERIOD_DAYS:
        raise ValueError(f"freq must be one of {sorted(PERIOD_DAYS)}, not {freq!r}")
    if not freq_multiplier > 0:
        raise ValueError(f"freq_multiplier must be positive, not {freq_multiplier!r}")
    missing = [c for c in columns if c is not None and c not in orders.columns]
    if missing:
        raise ValueError(f"orders lacks column(s) {missing}; it has {list(orders.columns)}")


def _on_or_before(customers: pd.Series, dates: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Return True for orders with a customer dated on or before ``as_of``'s day; raise ValueError when none is."""
    keep = customers.notna() & dates.notna() & (dates < as_of.normalize() + pd.Timedelta(days=1))
    if not keep.any():
        first = f", the earliest on {dates.min().date()}" if dates.notna().any() else ""
        raise ValueError(
            f"no orders on or before as_of={as_of.date()} "
            f"({len(dates)} order rows, {int(dates.notna().sum())} with a date{first})"
        )
    return keep


def rfm_summary(
    orders: pd.DataFrame,
    as_of,
    freq: str = "W",
    freq_multiplier: float = 1.0,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str | None = "amount",
) -> pd.DataFrame:
    """Return per customer: frequency, recency, T and monetary value, from orders on or before ``as_of``.

    Dates are floored to ``freq`` periods ("D": days; "W": weeks ending Sunday), as
    the ``lifetimes`` package does. A customer's purchase occasions are their
    distinct periods with an order; an occasion's value is the sum of its orders.

    * ``frequency`` x: purchase occasions minus one (repeat purchases);
    * ``recency`` t_x: last occasion minus first, in periods;
    * ``T``: ``as_of``'s period minus the first occasion, in periods;
    * ``monetary_value``: mean value of the repeat occasions, 0 when x = 0.

    Times are divided by ``freq_multiplier``: ``freq="D", freq_multiplier=7``
    counts distinct days but measures time in (fractional) weeks, the way the
    CDNOW summary in the literature was built. Rows with no customer or date are
    ignored; a missing amount counts as 0.

    >>> o = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "amount": [10.0, 20.0, 40.0, 5.0],
    ...                   "order_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-11", "2024-01-05"])})
    >>> rfm_summary(o, "2024-01-21", freq="D").to_dict("records")[0]
    {'customer_id': 'a', 'frequency': 1, 'recency': 10.0, 'T': 20.0, 'monetary_value': 40.0}
    """
    _check_summary_inputs(orders, freq, freq_multiplier, (customer_col, date_col, amount_col))
    as_of = pd.Timestamp(as_of)
    dates = pd.to_datetime(orders[date_col])
    end = _period_start(pd.Series([as_of]), freq).iloc[0]
    keep = _on_or_before(orders[customer_col], dates, as_of)
    code, ids = customer_codes(orders.loc[keep, customer_col])  # they sort as the ids: the same groups, in order
    amount = pd.to_numeric(orders.loc[keep, amount_col]).fillna(0.0).to_numpy() if amount_col is not None else 0.0
    o = pd.DataFrame({"customer_id": code, "period": _period_start(dates[keep], freq).to_numpy(), "amount": amount})
    occ = o.groupby(["customer_id", "period"], sort=True)["amount"].sum().reset_index()
    g = occ.groupby("customer_id", sort=True)
    first, last = g["period"].min(), g["period"].max()
    unit = pd.Timedelta(days=PERIOD_DAYS[freq] * freq_multiplier)
    x = g.size() - 1
    repeat_total = g["amount"].sum() - g["amount"].first()  # occasions are sorted: first() is the first occasion
    out = pd.DataFrame(
        {
            "frequency": x.astype(int),
            "recency": (last - first) / unit,
            "T": (end - first) / unit,
            "monetary_value": (repeat_total / x.where(x > 0)).fillna(0.0),
        }
    )
    out.index = ids[out.index.to_numpy()].rename("customer_id")
    return out.reset_index()


def _period_start(dates: pd.Series, freq: str) -> pd.Series:
    """Return each date floored to the start of its period."""
    if freq == "D":
        return dates.dt.normalize()
    return dates.dt.to_period(freq).dt.start_time


# --------------------------------------------------------------------------- BG/NBD


def _arrays(*cols) -> list[np.ndarray]:
    """Return the columns as float arrays of one shape."""
    arrs = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in cols])
    return [np.array(a, dtype=float) for a in arrs]


def _check_rft(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    """Raise ValueError unless x ≥ 0, 0 ≤ t_x ≤ T, all finite."""
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(T).all()):
        raise ValueError("frequency, recency and T must be finite (no NaN)")
    if (x < 0).any():
        raise ValueError(f"frequency must be ≥ 0; {int((x < 0).sum())} value(s) are negative")
    if ((t_x < 0) | (t_x > T + 1e-9)).any():
        raise ValueError(f"recency must lie in [0, T]; {int(((t_x < 0) | (t_x > T + 1e-9)).sum())} value(s) do not")
    if ((x > 0) & (t_x <= 0)).any():
        raise ValueError("a customer with repeat purchases (frequency > 0) must have recency > 0")


def _bgnbd_loglik(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    distinct: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Return each customer's BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6).

    ``distinct`` is ``np.unique(x, return_inverse=True)``: the terms in x alone (the costly gamma
    and beta functions) are then evaluated once per distinct frequency, a few dozen values, and
    spread by position: the same numbers, elementwise, as evaluating them for every customer.
    """
    xs, at = (x, slice(None)) if distinct is None else distinct
    a1 = (special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha))[at]
    a2 = (special.betaln(a, b + xs) - special.betaln(a, b))[at]
    a3 = -(r + x) * np.log(alpha + T)
    rep = x > 0
    a4 = np.full_like(x, -np.inf)
    a4[rep] = np.log(a) - np.log(b + x[rep] - 1) - (r + x[rep]) * np.log(alpha + t_x[rep])
    return a1 + a2 + np.logaddexp(a3, a4)


def _objective(value: Callable[..., float]) -> Callable[[np.ndarray], float]:
    """Return the objective the optimisers minimise over log-parameters θ: ``value(*exp(θ))``, 1e300 where it is
    not finite, each point computed once (the optimisers come back to points already seen: over half the calls)."""

    @functools.cache
    def at(params: tuple[float, ...]) -> float:
        v = value(*params)
        return v if np.isfinite(v) else 1e300

    return lambda theta: at(tuple(np.exp(theta)))


def fit_bgnbd(x, t_x, T) -> BGNBDParams:
    """Return the maximum-likelihood BG/NBD parameters for frequency ``x``, recency ``t_x`` and age ``T``."""
    x, t_x, T = _arrays(x, t_x, T)
    x, t_x, T = x.ravel(), t_x.ravel(), T.ravel()
    if x.size == 0:
        raise ValueError("no customers to fit the BG/NBD model on")
    _check_rft(x, t_x, T)
    if not (x > 0).any():
        raise ValueError(f"none of the {x.size} customers made a repeat purchase: the BG/NBD model cannot be fitted")
    # Start at r = 1 with α matching the mean purchase rate, so the time unit does not matter.
    rate = max(x.sum() / max(T.sum(), 1e-12), 1e-6)
    start = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    # Customers with the same (x, t_x, T) have the same likelihood: each distinct triple is
    # evaluated once, weighted by how many customers share it (at 100x the demo, 660,000
    # customers are about a tenth as many triples).
    triples, count = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    ux, ut, uT = triples[:, 0].copy(), triples[:, 1].copy(), triples[:, 2].copy()
    weight = count / x.size
    terms = BGNBDTerms(ux, ut, uT)  # _bgnbd_loglik's numbers, each term on its distinct inputs

    nll = _objective(lambda *params: -terms.weighted_sum(weight, *params))  # pairwise, as mean()
    with terms.parallel():
        return _fit_bgnbd(nll, start, x.size)


def _fit_bgnbd(nll, start: np.ndarray, n: int) -> BGNBDParams:
    """Return the BG/NBD parameters minimising ``nll`` from ``start``, for ``n`` customers."""
    # Bounded quasi-Newton on log-parameters, then a short simplex polish. a + b is bounded: with
    # near-constant dropout the likelihood keeps rising as a and b grow with a/(a+b) fixed, and the
    # bound stands in for that limit (reported in ``note``).
    lim = np.log(MAX_DROPOUT_CONCENTRATION)
    bounds = [(-15.0, 15.0), (-25.0, 25.0), (-15.0, lim), (-15.0, lim)]
    res = optimize.minimize(
        nll, start, method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-13, "gtol": 1e-10, "maxiter": 5_000}
    )
    # L-BFGS-B stops "abnormally" when its line search can no longer lower the objective: with
    # finite-difference gradients that happens at the optimum when the likelihood is flat along
    # a/(a+b) fixed (large a and b). The simplex polish below then has the last word.
    stalled = not res.success and "ABNORMAL" in str(res.message).upper()
    if (not res.success and not stalled) or not np.isfinite(res.fun):
        raise ValueError(
            f"BG/NBD fit did not converge: {res.message} "
            f"(log-parameters {np.round(res.x, 3).tolist()}, objective {res.fun:.6g})"
        )
    polish = optimize.minimize(
        nll, res.x, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12, "maxfev": 2_000}
    )
    if np.isfinite(polish.fun) and polish.fun <= res.fun and np.all(polish.x[2:] <= lim):
        res = polish
    r, alpha, a, b = np.exp(res.x)
    note = t("bgnbd.flat", "en", mean=f"{a / (a + b):.3g}") if _flat_in_a_b(nll, res, n, lim) else ""
    return BGNBDParams(float(r), float(alpha), float(a), float(b), float(-res.fun * n), int(n), note)


FLAT_LOGLIK = 1.92
"""Half the 95% point of chi-square(1): a and b scaled tenfold (a/(a+b) kept) within this much of the best
total log-likelihood means the data cannot tell them from ten times larger or smaller ones."""


def _flat_in_a_b(nll, res: optimize.OptimizeResult, n: int, lim: float) -> bool:
    """Return True when the fit stopped on a likelihood flat in a and b: at their bound, or where scaling both
    tenfold up or down (the mean dropout a/(a+b) kept) moves the total log-likelihood by under FLAT_LOGLIK
    (the 95% likelihood interval of a + b spans a factor of ten). Then a and b themselves are arbitrary and
    only a/(a+b) is identified."""
    if np.any(res.x[2:] >= lim - 1e-6):
        return True
    for step in (np.log(10.0), -np.log(10.0)):
        moved = res.x + np.array([0.0, 0.0, step, step])
        if np.all(moved[2:] <= lim) and abs(nll(moved) - res.fun) * n < FLAT_LOGLIK:
            return True
    return False


def _minimize(f, start: np.ndarray, what: str) -> optimize.OptimizeResult:
    """Return the minimum of ``f`` over log-parameters, or raise ValueError naming the optimiser's message."""
    res = optimize.minimize(
        f, start, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-11, "maxiter": 20_000, "maxfev": 40_000}
    )
    if res.success:
        # Polish from the simplex's best point; keep it only if it is no worse.
        res2 = optimize.minimize(f, res.x, method="BFGS", options={"gtol": 1e-9})
        if np.isfinite(res2.fun) and res2.fun <= res.fun:
            res2.success = True
            res = res2
    if not res.success or not np.isfinite(res.fun) or not np.all(np.isfinite(res.x)):
        raise ValueError(
            f"{what} fit did not converge: {res.message} "
            f"(log-parameters {np.round(res.x, 3).tolist()}, objective {res.fun:.6g})"
        )
    if np.any(np.abs(res.x) > 30):
        raise ValueError(
            f"{what} fit did not converge: parameters ran off to a boundary "
            f"(log-parameters {np.round(res.x, 3).tolist()}); the data do not identify the model"
        )
    return res


def prob_alive(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """Return each customer's probability of being alive at T (Fader, Hardie & Lee 2005, eq. 13).

    >>> float(prob_alive(BGNBDParams(0.243, 4.414, 0.793, 2.426, 0.0), 0, 0, 38.86))
    1.0
    """
    r, alpha, a, b = params[:4]
    x, t_x, T = _arrays(x, t_x, T)
    rep = x > 0
    log_odds = np.full_like(x, -np.inf)
    log_odds[rep] = (
        np.log(a) - np.log(b + x[rep] - 1) + (r + x[rep]) * (np.log(alpha + T[rep]) - np.log(alpha + t_x[rep]))
    )
    return special.expit(-log_odds)


def expected_purchases(params: BGNBDParams, t, x, t_x, T) -> np.ndarray:
    """Return each customer's expected purchases in the next ``t`` periods (Fader, Hardie & Lee 2005, eq. 10).

    Evaluates (1−z)^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z), z = t/(α+T+t), as published;
    where that overflows (many purchases and a long horizon) it uses the Euler
    transform (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z), and where both fail
    (also very large a and b, i.e. near-constant dropout) a quadrature over the
    posterior dropout probability. Needs a ≠ 1.
    """
    r, alpha, a, b = params[:4]
    if abs(a - 1.0) < 1e-9:
        raise ValueError("the conditional expectation is undefined at a = 1 (division by a − 1)")
    t, x, t_x, T = _arrays(t, x, t_x, T)
    if (t < 0).any():
        raise ValueError("the horizon t must be ≥ 0")
    shape = t.shape
    t, x, t_x, T = (v.ravel() for v in (t, x, t_x, T))
    c = a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(all="ignore"):
        hyp = np.exp((r + x) * np.log1p(-z)) * special.hyp2f1(r + x, b + x, c, z)
        bad = ~np.isfinite(hyp)
        if bad.any():
            hyp[bad] = np.exp((a - 1) * np.log1p(-z[bad])) * special.hyp2f1(a + b - 1 - r, a - 1, c[bad], z[bad])
        alive_mean = (c / (a - 1)) * (1.0 - hyp)
    for i in np.flatnonzero(~np.isfinite(alive_mean)):
        alive_mean[i] = _alive_mean_by_quadrature(r, alpha, a, b, t[i], x[i], T[i])
    return (alive_mean * prob_alive(params, x, t_x, T)).reshape(shape)


def _alive_mean_by_quadrature(r: float, alpha: float, a: float, b: float, t: float, x: float, T: float) -> float:
    """Return E[purchases in (T, T+t] | alive at T] by integrating over the dropout probability p.

    Given alive, λ ~ Gamma(r+x, α+T) and p ~ Beta(a, b+x); a customer with λ, p
    makes (1 − e^(−λpt))/p purchases on average, and averaging over λ gives
    (1 − ((α+T)/(α+T+pt))^(r+x))/p.
    """
    from scipy import integrate

    bx = b + x
    log_norm = special.betaln(a, bx)

    def f(p: float) -> float:
        if p <= 0:
            return (r + x) * t / (alpha + T)
        density = math.exp((a - 1) * math.log(p) + (bx - 1) * math.log1p(-p) - log_norm)
        return -math.expm1(-(r + x) * math.log1p(p * t / (alpha + T))) / p * density

    lo, hi = special.betaincinv(a, bx, [1e-12, 1 - 1e-12])
    value, _ = integrate.quad(f, lo, hi, points=[a / (a + bx)], limit=200)
    return float(value)


def unconditional_expected_purchases(params: BGNBDParams, t) -> np.ndarray:
    """Return E[X(t)], the expected purchases of a new customer in their first ``t`` periods (eq. 9)."""
    r, alpha, a, b = params[:4]
    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))


# --------------------------------------------------------------------------- Gamma-Gamma


def _gg_loglik(p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Return each repeat buyer's Gamma-Gamma log-likelihood of mean spend ``m`` over ``x`` purchases."""
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )


def fit_gamma_gamma(x, m) -> GammaGammaParams:
    """Return the maximum-likelihood Gamma-Gamma parameters, fitted on the customers with x > 0.

    ``x`` is each customer's repeat purchases and ``m`` their mean repeat spend.
    The model assumes spend per purchase is independent of purchase frequency;
    the returned ``corr_frequency_monetary`` (Pearson, repeat buyers) lets a
    caller check it: near 0 is fine, a strong correlation means the model does not fit.
    """
    x, m = _arrays(x, m)
    x, m = x.ravel(), m.ravel()
    if not (np.isfinite(x).all() and np.isfinite(m).all()):
        raise ValueError("frequency and monetary value must be finite (no NaN)")
    rep = x > 0
    x, m = x[rep], m[rep]
    if x.size < MIN_REPEAT_CUSTOMERS:
        raise ValueError(
            f"too few repeat customers to fit the Gamma-Gamma spend model: {x.size} "
            f"with frequency > 0, need at least {MIN_REPEAT_CUSTOMERS}"
        )
    if (m <= 0).any():
        raise ValueError(
            f"{int((m <= 0).sum())} repeat customer(s) have monetary value ≤ 0; "
            "the Gamma-Gamma model needs positive spend (drop refunds or zero-value orders first)"
        )
    corr = float(np.corrcoef(x, m)[0, 1]) if x.std() > 0 and m.std() > 0 else float("nan")
    # Start at p = 1, q = 2 with γ matching the mean spend p·γ/(q−1), so the currency unit does not matter.
    start = np.log([1.0, 2.0, float(m.mean())])

    terms = GammaGammaTerms(x, m)  # _gg_loglik's numbers, each term on its distinct inputs

    nll = _objective(lambda *params: -terms.loglik(*params).mean())
    res = _minimize(nll, start, "Gamma-Gamma")
    p, q, gamma = np.exp(res.x)
    return GammaGammaParams(float(p), float(q), float(gamma), float(-res.fun * x.size), int(x.size), corr)


def expected_spend(gg: GammaGammaParams, x, m) -> np.ndarray:
    """Return each customer's expected spend per purchase, E[Z | x, m] (Fader & Hardie 2013, eq. 5).

    A weighted mean of the population mean p·γ/(q−1) and the customer's own
    mean ``m``, the weight on ``m`` growing with x; customers with x = 0 get the
    population mean. Needs q > 1.

    >>> float(expected_spend(GammaGammaParams(6.25, 3.74, 15.44, 0.0), 0, 0.0))  # doctest: +ELLIPSIS
    35.21...
    """
    p, q, gamma = gg[:3]
    if q <= 1:
        raise ValueError(
            f"expected spend is undefined for q ≤ 1 (q = {q:.4g}): the fitted population mean spend "
            "is infinite; spend per purchase is too heavy-tailed for the Gamma-Gamma model "
            "(look for outlying orders or mixed order types)"
        )
    x, m = _arrays(x, m)
    m = np.where(x > 0, m, 0.0)
    return p * (gamma + m * x) / (p * x + q - 1)
