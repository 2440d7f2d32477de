"""Before/after comparison with uncertainty, and difference-in-differences against a control."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crmnb.present.words import fmt_change, fmt_value, has, t


def change_rate(before: float, after: float) -> float:
    """Return the relative change from ``before`` to ``after``.

    >>> round(change_rate(48, 24), 3), round(change_rate(7.2, 8.5), 3), round(change_rate(0.75, 0.90), 3)
    (-0.5, 0.181, 0.2)
    """
    if before == 0 or np.isnan(before) or np.isnan(after):
        return float("nan")
    return (after - before) / abs(before)


@dataclass(frozen=True)
class Difference:
    """A difference after − before with its 95% interval and p-value."""

    before: float
    after: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n_before: int
    n_after: int
    deff_before: float = 1.0
    deff_after: float = 1.0

    @property
    def significant(self) -> bool:
        """Return True when the 95% interval excludes zero."""
        return bool(self.ci_low > 0 or self.ci_high < 0)


def wilson(k: float, n: int, z: float | None = None) -> tuple[float, float]:
    """Return the Wilson score 95% interval of a proportion ``k``/``n``.

    >>> [round(v, 4) for v in wilson(0, 40)]
    [0.0, 0.0876]
    """
    z = stats.norm.ppf(0.975) if z is None else z
    p, z2 = k / n, z * z
    centre = p + z2 / (2 * n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return float(max(0.0, (centre - half) / (1 + z2 / n))), float(min(1.0, (centre + half) / (1 + z2 / n)))


def newcombe(k1: float, n1: int, k2: float, n2: int) -> tuple[float, float]:
    """Return Newcombe's hybrid score 95% interval of p2 − p1 (Newcombe 1998, method 10), from the two
    Wilson intervals. Unlike the Wald interval it never collapses to a point and agrees with the score test.

    >>> [round(v, 4) for v in newcombe(48, 80, 56, 70)]  # Newcombe's example: 56/70 − 48/80
    [0.0524, 0.3339]
    """
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1), wilson(k2, n2)
    d = p2 - p1
    return float(d - np.hypot(p2 - l2, u1 - p1)), float(d + np.hypot(u2 - p2, p1 - l1))


def design_effect(values: np.ndarray, clusters: np.ndarray | None) -> float:
    """Return the design effect of a rate whose 0/1 ``values`` come in ``clusters`` (a customer's months):
    the cluster-robust variance of the mean over the binomial one, at least 1.

    Units of one customer move together, so they carry less information than as many customers;
    n / design effect is the sample size they are worth (Kish). A unit without a cluster is its own.

    >>> design_effect(np.array([1, 1, 0, 0]), np.array(["a", "a", "b", "b"]))  # pairs that always agree
    2.0
    >>> design_effect(np.array([1, 0, 1, 0]), np.array(["a", "b", "c", "d"]))
    1.0
    """
    y = np.asarray(values, float)
    n = len(y)
    if clusters is None or n < 2:
        return 1.0
    keys = pd.Series(clusters).astype(object)
    keys = keys.where(keys.notna(), pd.Series([f"\x00{i}" for i in range(n)], dtype=object))
    p = y.mean()
    binomial = p * (1 - p) / n
    sums = pd.Series(y - p).groupby(keys.to_numpy()).sum().to_numpy()
    c = len(sums)
    if binomial <= 0 or c < 2 or c == n:
        return 1.0
    robust = float((sums**2).sum()) / n**2  # the sandwich variance of the mean over customers
    return float(max(1.0, robust / binomial))


def two_proportions(x_before: np.ndarray, x_after: np.ndarray, deff: tuple[float, float] = (1.0, 1.0)) -> Difference:
    """Compare two rates (arrays of 0/1) with a pooled two-proportion z-test and Newcombe's score interval.

    ``deff`` are the windows' design effects (:func:`design_effect`): each window counts as n / deff
    units, so repeated units of one customer do not narrow the interval.
    """
    a, b = np.asarray(x_before, float), np.asarray(x_after, float)
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:  # one window has nothing: its figure is missing, the other stands
        return Difference(
            a.mean() if n1 else np.nan,
            b.mean() if n2 else np.nan,
            np.nan,
            np.nan,
            np.nan,
            np.nan,
            "two-proportion z",
            n1,
            n2,
        )
    p1, p2 = a.mean(), b.mean()
    d = p2 - p1
    e1, e2 = n1 / deff[0], n2 / deff[1]  # the sample sizes the units are worth
    pooled = (p1 * e1 + p2 * e2) / (e1 + e2)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / e1 + 1 / e2))
    p = 2 * stats.norm.sf(abs(d) / se0) if se0 > 0 else (0.0 if d else 1.0)
    lo, hi = newcombe(p1 * e1, e1, p2 * e2, e2)
    test = "two-proportion z" if deff == (1.0, 1.0) else "two-proportion z, clustered"
    return Difference(p1, p2, d, lo, hi, float(p), test, n1, n2, float(deff[0]), float(deff[1]))


def bootstrap_means(x_before: np.ndarray, x_after: np.ndarray, n_boot: int = 2000, seed: int = 0) -> Difference:
    """Compare two means with a percentile bootstrap 95% interval and a two-sided bootstrap p-value."""
    a, b = np.asarray(x_before, float), np.asarray(x_after, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:  # one window has nothing: its figure is missing, the other stands
        return Difference(
            a.mean() if len(a) else np.nan,
            b.mean() if len(b) else np.nan,
            np.nan,
            np.nan,
            np.nan,
            np.nan,
            "bootstrap",
            len(a),
            len(b),
        )
    d = b.mean() - a.mean()
    if min(len(a), len(b)) > 20_000:  # the bootstrap and Welch agree at this size; Welch is instant
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        z = stats.norm.ppf(0.975)
        p = 2 * stats.norm.sf(abs(d) / se) if se > 0 else 1.0
        return Difference(a.mean(), b.mean(), d, d - z * se, d + z * se, float(p), "Welch", len(a), len(b))
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    na, nb = len(a), len(b)
    for i in range(n_boot):  # rng.choice(b, nb) draws these very indices: the same numbers, half the time
        boots[i] = b[rng.integers(0, nb, nb)].mean() - a[rng.integers(0, na, na)].mean()
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean()))
    p = max(p, 1 / n_boot) if d != 0 else 1.0
    return Difference(a.mean(), b.mean(), d, float(lo), float(hi), float(p), "bootstrap", len(a), len(b))


def _clusters(units: pd.DataFrame, clustered: bool) -> np.ndarray | None:
    """Return the customer of each unit when the metric counts a customer once per month (repeat purchase)."""
    if not clustered or "customer_id" not in units or not units["customer_id"].dropna().duplicated().any():
        return None
    return units["customer_id"].to_numpy()


def compare_units(before: pd.DataFrame, after: pd.DataFrame, unit: str, clustered: bool = False) -> Difference:
    """Compare two sets of metric units: a proportion test for rates, a bootstrap for means.

    ``clustered``: the units come several per customer (:attr:`Metric.per_customer_month`), and the
    rate's interval counts customers rather than units.
    """
    if unit == "rate":
        deff = tuple(design_effect(u["value"].to_numpy(), _clusters(u, clustered)) for u in (before, after))
        return two_proportions(before["value"].to_numpy(), after["value"].to_numpy(), deff)
    return bootstrap_means(before["value"].to_numpy(), after["value"].to_numpy())


def diff_in_diff(treated: Difference, control: Difference) -> tuple[float, float, float]:
    """Return the difference-in-differences and its 95% interval, from the two groups' differences."""
    z = stats.norm.ppf(0.975)
    se_t = (treated.ci_high - treated.ci_low) / (2 * z)
    se_c = (control.ci_high - control.ci_low) / (2 * z)
    did = treated.diff - control.diff
    se = float(np.hypot(se_t, se_c))
    return did, did - z * se, did + z * se


def _fmt_diff(d: float, unit: str, lang: str) -> str:
    """Return a difference with its unit: percentage points for rates, hours or days, else the plain number."""
    if unit == "rate":
        return t("compare.diff.rate", lang, d=f"{d * 100:+.1f}")
    if unit in ("hours", "days"):
        return t(f"compare.diff.{unit}", lang, d=f"{d:+.1f}")
    if unit == "CNY":  # money is shown without decimals everywhere
        return f"{d:+,.0f}"
    return f"{d:+,.1f}"


def kpi_table(tables: dict[str, pd.DataFrame], case, metric_ids: list[str]) -> pd.DataFrame:
    """Return Table 2: per metric before, after, change rate, 95% interval of the difference, test and notes.

    Before and after are the case's windows, for its department. With a control
    department the difference-in-differences and its interval are added.
    """
    from crmnb.analysis.metrics import CATALOGUE, units

    opts = {"conversion_window_days": case.thresholds.conversion_window_days}
    (b0, b1), (a0, a1) = case.windows["before"], case.windows["after"]
    rows = []
    for mid in dict.fromkeys(metric_ids):
        m = CATALOGUE[mid]
        ub = units(mid, tables, b0, b1, case.department, **opts)
        ua = units(mid, tables, a0, a1, case.department, **opts)
        d = compare_units(ub, ua, m.unit, m.per_customer_month)
        row = {
            "metric": mid,
            "name": m.name(case.language),
            "unit": m.unit,
            "before": d.before,
            "after": d.after,
            "change_rate": change_rate(d.before, d.after),
            "difference": d.diff,
            "ci_low": d.ci_low,
            "ci_high": d.ci_high,
            "p_value": d.p_value,
            "test": d.test,
            "n_before": d.n_before,
            "n_after": d.n_after,
            "deff_after": d.deff_after,
            "did": np.nan,
            "did_ci_low": np.nan,
            "did_ci_high": np.nan,
            "pretrend_did": np.nan,
            "pretrend_ci_low": np.nan,
            "pretrend_ci_high": np.nan,
        }
        lang = case.language
        ci = f"{_fmt_diff(d.ci_low, m.unit, lang)} ~ {_fmt_diff(d.ci_high, m.unit, lang)}"
        notes = [
            t("compare.note.ci", lang, ci=ci),
            f"p {'< 0.001' if d.p_value < 0.001 else f'= {d.p_value:.3f}'} ({t(f'words.test.{d.test}', lang)})",
        ]
        if not (d.n_before and d.n_after):
            notes = [_not_compared(d.n_before, d.n_after, lang)]
        if case.control_department:
            c = _compare(mid, tables, case.windows["before"], case.windows["after"], case.control_department, opts)
            if np.isfinite(c.diff) and np.isfinite(d.diff):
                did, lo, hi = diff_in_diff(d, c)
                row.update(did=did, did_ci_low=lo, did_ci_high=hi)
                ci = f"{_fmt_diff(lo, m.unit, lang)} ~ {_fmt_diff(hi, m.unit, lang)}"
                notes.append(t("compare.note.control", lang, did=_fmt_diff(did, m.unit, lang), ci=ci))
                notes += _pre_trend_note(row, pre_trend(mid, tables, case, opts), m.unit, lang)
        row["notes"] = "; ".join(notes)
        rows.append(row)
    return _with_holm(pd.DataFrame(rows), case.language)


def holm(p_values) -> np.ndarray:
    """Return Holm's step-down adjusted p-values; a missing p-value stays missing and is not counted.

    >>> holm([0.01, 0.04, 0.03, np.nan]).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def _with_holm(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Add Holm-adjusted p-values over the metrics tested (``p_holm``) and say so in each tested row's notes."""
    if table.empty:
        return table.assign(p_holm=pd.Series(dtype=float))
    table = table.assign(p_holm=holm(table["p_value"]))
    m = int(table["p_holm"].notna().sum())
    if m > 1:
        for i in table.index[table["p_holm"].notna()]:
            ph = table.at[i, "p_holm"]
            p = "< 0.001" if ph < 0.001 else f"= {ph:.3f}"
            table.at[i, "notes"] += "; " + t("compare.note.holm", lang, p=p, m=m)
    return table


def _compare(metric: str, tables, first: tuple, second: tuple, department: str, opts: dict) -> Difference:
    """Return the difference of ``metric`` from the ``first`` window to the ``second`` for one department."""
    from crmnb.analysis.metrics import CATALOGUE, units

    ua, ub = (units(metric, tables, *w, department, **opts) for w in (first, second))
    m = CATALOGUE[metric]
    return compare_units(ua, ub, m.unit, m.per_customer_month)


def halves(start, end) -> tuple[tuple, tuple]:
    """Return the two halves of an inclusive date window (the first half is the shorter one when odd).

    >>> from datetime import date
    >>> halves(date(2024, 1, 1), date(2024, 1, 10))
    ((datetime.date(2024, 1, 1), datetime.date(2024, 1, 5)), (datetime.date(2024, 1, 6), datetime.date(2024, 1, 10)))
    """
    from datetime import timedelta

    h = ((end - start).days + 1) // 2
    return (start, start + timedelta(days=h - 1)), (start + timedelta(days=h), end)


def pre_trend(metric: str, tables, case, opts: dict) -> tuple[float, float, float] | None:
    """Return the placebo difference-in-differences of ``metric`` with its 95% interval: the same comparison of
    the case's department against the control, on the two halves of the before window (no intervention
    between them). An interval that excludes 0 says the two departments did not move alike before the
    intervention. None when either department has nothing to compare in a half."""
    first, second = halves(*case.windows["before"])
    d = _compare(metric, tables, first, second, case.department, opts)
    c = _compare(metric, tables, first, second, case.control_department, opts)
    if not (np.isfinite(d.diff) and np.isfinite(c.diff) and np.isfinite(d.ci_low) and np.isfinite(c.ci_low)):
        return None
    return diff_in_diff(d, c)


def _pre_trend_note(row: dict, placebo: tuple[float, float, float] | None, unit: str, lang: str) -> list[str]:
    """Put the placebo check in ``row`` and return the note when it fails (its interval excludes 0)."""
    if placebo is None:
        return []
    did, lo, hi = placebo
    row.update(pretrend_did=did, pretrend_ci_low=lo, pretrend_ci_high=hi)
    if lo <= 0 <= hi:
        return []
    ci = f"{_fmt_diff(lo, unit, lang)} ~ {_fmt_diff(hi, unit, lang)}"
    return [t("compare.note.pretrend", lang, did=_fmt_diff(did, unit, lang), ci=ci)]


def _not_compared(n_before: int, n_after: int, lang: str) -> str:
    """Return the note of a metric that cannot be compared: which window has nothing to measure it on."""
    if not n_before and not n_after:
        return t("compare.not_compared.both", lang)
    return t("compare.not_compared.before" if not n_before else "compare.not_compared.after", lang)


def describe_change(row: pd.Series, lang: str) -> str:
    """Return one sentence on a metric's change with its interval, for the summary, in ``lang``."""
    u = row["unit"]
    head = f"{row['name']}: {fmt_value(row['before'], u)} → {fmt_value(row['after'], u)}"
    if pd.isna(row["ci_low"]) or pd.isna(row["ci_high"]):
        n0, n1 = int(row.get("n_before", 0) or 0), int(row.get("n_after", 0) or 0)
        why = _not_compared(n0, n1, lang) if not (n0 and n1) else t("compare.no_interval", lang)
        return head + t("compare.why", lang, why=why)

    def span(low: float, high: float) -> str:
        return t("compare.range", lang, low=_fmt_diff(low, u, lang), high=_fmt_diff(high, u, lang))

    head += f" ({fmt_change(row['change_rate'])}"
    s = head + t("compare.change_ci", lang, ci=span(row["ci_low"], row["ci_high"]))
    if pd.notna(row.get("did")):
        dci = span(row["did_ci_low"], row["did_ci_high"])
        s += t("compare.against_control", lang, did=_fmt_diff(row["did"], u, lang), ci=dci)
    return s + t("compare.end", lang)


def nothing_measured(metric: str, by: str, language: str) -> str:
    """Return the note shown instead of a breakdown of ``metric`` by ``by`` when neither window has anything
    to measure it on, with what the metric needs.

    >>> nothing_measured("lead_response_hours", "owner_rep", "en")
    'Lead response time (hours) by rep not shown: neither the before nor the after window has anything to measure it on (average hours from lead creation to first contact, contacted leads created in the period).'
    """
    from crmnb.analysis.metrics import CATALOGUE

    m = CATALOGUE[metric]
    key = f"compare.by.{by}"
    by_word = t(key, language) if has(key) else by
    return t("compare.nothing_measured", language, name=m.name(language), by=by_word, formula=m.formula_in(language))


def by_window(tables: dict[str, pd.DataFrame], case, metric: str, by: str) -> pd.DataFrame:
    """Return ``metric`` per ``by`` (e.g. owner_rep) in the before and the after window, with a ``window`` column."""
    from crmnb.analysis.metrics import compute

    opts = {"conversion_window_days": case.thresholds.conversion_window_days}
    parts = [
        compute(metric, tables, *case.windows[w], case.department, by=by, **opts).assign(window=w)
        for w in ("before", "after")
    ]
    return pd.concat(parts, ignore_index=True)
