"""Before/after comparison with uncertainty, and difference-in-differences against a control."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crmnb.present.words import say


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

    @property
    def significant(self) -> bool:
        """Return True when the 95% interval excludes zero."""
        return bool(self.ci_low > 0 or self.ci_high < 0)


def two_proportions(x_before: np.ndarray, x_after: np.ndarray) -> Difference:
    """Compare two rates (arrays of 0/1) with a two-proportion z-test and a Wald 95% interval."""
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
    se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (a.sum() + b.sum()) / (n1 + n2)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p = 2 * stats.norm.sf(abs(d) / se0) if se0 > 0 else (0.0 if d else 1.0)
    z = stats.norm.ppf(0.975)
    return Difference(p1, p2, d, d - z * se, d + z * se, float(p), "two-proportion z", n1, n2)


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
    for i in range(n_boot):
        boots[i] = rng.choice(b, len(b)).mean() - rng.choice(a, len(a)).mean()
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean()))
    p = max(p, 1 / n_boot) if d != 0 else 1.0
    return Difference(a.mean(), b.mean(), d, float(lo), float(hi), float(p), "bootstrap", len(a), len(b))


def compare_units(before: pd.DataFrame, after: pd.DataFrame, unit: str) -> Difference:
    """Compare two sets of metric units: a proportion test for rates, a bootstrap for means."""
    if unit == "rate":
        return two_proportions(before["value"].to_numpy(), after["value"].to_numpy())
    return bootstrap_means(before["value"].to_numpy(), after["value"].to_numpy())


def diff_in_diff(treated: Difference, control: Difference) -> tuple[float, float, float]:
    """Return the difference-in-differences and its 95% interval, from the two groups' differences."""
    z = stats.norm.ppf(0.975)
    se_t = (treated.ci_high - treated.ci_low) / (2 * z)
    se_c = (control.ci_high - control.ci_low) / (2 * z)
    did = treated.diff - control.diff
    se = float(np.hypot(se_t, se_c))
    return did, did - z * se, did + z * se


def _fmt_diff(d: float, unit: str) -> str:
    from crmnb.present.words import language

    zh = language() == "zh"
    if unit == "rate":
        return f"{d * 100:+.1f}{'个百分点' if zh else ' pp'}"
    if unit in ("hours", "days"):
        return f"{d:+.1f} {('小时' if zh else 'h') if unit == 'hours' else ('天' if zh else 'd')}"
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
        d = compare_units(ub, ua, m.unit)
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
            "did": np.nan,
            "did_ci_low": np.nan,
            "did_ci_high": np.nan,
        }
        ci = f"{_fmt_diff(d.ci_low, m.unit)} ~ {_fmt_diff(d.ci_high, m.unit)}"
        notes = [
            say(f"95% CI of the difference {ci}", f"差值95%置信区间 {ci}"),
            f"p {'< 0.001' if d.p_value < 0.001 else f'= {d.p_value:.3f}'} ({d.test})",
        ]
        if not (d.n_before and d.n_after):
            notes = [_not_compared(d.n_before, d.n_after)]
        if case.control_department:
            cb = units(mid, tables, b0, b1, case.control_department, **opts)
            ca = units(mid, tables, a0, a1, case.control_department, **opts)
            c = compare_units(cb, ca, m.unit)
            if np.isfinite(c.diff) and np.isfinite(d.diff):
                did, lo, hi = diff_in_diff(d, c)
                row.update(did=did, did_ci_low=lo, did_ci_high=hi)
                ci = f"{_fmt_diff(lo, m.unit)} ~ {_fmt_diff(hi, m.unit)}"
                notes.append(
                    say(
                        f"vs control {_fmt_diff(did, m.unit)} (95% CI {ci})",
                        f"相对对照组 {_fmt_diff(did, m.unit)}（95%置信区间 {ci}）",
                    )
                )
        row["notes"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows)


def _not_compared(n_before: int, n_after: int) -> str:
    """Return the note of a metric that cannot be compared: which window has nothing to measure it on."""
    if not n_before and not n_after:
        return say("not compared: nothing to measure it on before or after", "未比较：实施前后均无可计算的数据")
    if not n_before:
        return say("not compared: nothing to measure it on before the intervention", "未比较：实施前无可计算的数据")
    return say("not compared: nothing to measure it on after the intervention", "未比较：实施后无可计算的数据")


def describe_change(row: pd.Series) -> str:
    """Return one sentence on a metric's change with its interval, for the summary."""
    from crmnb.present.words import fmt_change, fmt_value

    u = row["unit"]
    head = f"{row['name']}: {fmt_value(row['before'], u)} → {fmt_value(row['after'], u)}"
    if pd.isna(row["ci_low"]) or pd.isna(row["ci_high"]):
        n0, n1 = int(row.get("n_before", 0) or 0), int(row.get("n_after", 0) or 0)
        why = _not_compared(n0, n1) if not (n0 and n1) else say("no interval", "无法计算置信区间")
        return head + say(f" ({why}).", f"（{why}）。")
    ci = f"{_fmt_diff(row['ci_low'], u)} to {_fmt_diff(row['ci_high'], u)}"
    head += f" ({fmt_change(row['change_rate'])}"
    s = head + say(f"; 95% CI of the difference {ci})", f"；差值95%置信区间 {ci.replace(' to ', ' ~ ')}）")
    if pd.notna(row.get("did")):
        dci = f"{_fmt_diff(row['did_ci_low'], u)} to {_fmt_diff(row['did_ci_high'], u)}"
        s += say(
            f"; against the control department {_fmt_diff(row['did'], u)} (95% CI {dci})",
            f"；相对对照部门 {_fmt_diff(row['did'], u)}（95%置信区间 {dci.replace(' to ', ' ~ ')}）",
        )
    return s + say(".", "。")


BY_WORDS = {"owner_rep": ("rep", "销售代表"), "department": ("department", "部门"), "month": ("month", "月份")}
"""What a breakdown column is called in a sentence, in English and Chinese."""


def nothing_measured(metric: str, by: str, language: str = "en") -> str:
    """Return the note shown instead of a breakdown of ``metric`` by ``by`` when neither window has anything
    to measure it on, with what the metric needs.

    >>> nothing_measured("lead_response_hours", "owner_rep")
    'Lead response time (hours) by rep not shown: neither the before nor the after window has anything to measure it on (average hours from lead creation to first contact, contacted leads created in the period).'
    """
    from crmnb.analysis.metrics import CATALOGUE, FORMULA_ZH

    m = CATALOGUE[metric]
    en_by, zh_by = BY_WORDS.get(by, (by, by))
    if language == "zh":
        return (
            f"未按{zh_by}展示{m.name('zh')}：实施前后两个时段均无可计算的数据（{FORMULA_ZH.get(metric, m.formula)}）。"
        )
    return (
        f"{m.name('en')} by {en_by} not shown: neither the before nor the after window has anything to "
        f"measure it on ({m.formula})."
    )


def by_window(tables: dict[str, pd.DataFrame], case, metric: str, by: str) -> pd.DataFrame:
    """Return ``metric`` per ``by`` (e.g. owner_rep) in the before and the after window, with a ``window`` column."""
    from crmnb.analysis.metrics import compute

    opts = {"conversion_window_days": case.thresholds.conversion_window_days}
    parts = [
        compute(metric, tables, *case.windows[w], case.department, by=by, **opts).assign(window=w)
        for w in ("before", "after")
    ]
    return pd.concat(parts, ignore_index=True)
