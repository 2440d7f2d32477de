"""The driver scan: the goal metric by industry, channel, value tier, rep and region, each subgroup against
the rest, with its 95% interval, its share of the gap to target and p-values adjusted for every subgroup tested.

Each subgroup is compared with the other units of the same dimension: a pooled two-proportion z-test for a
rate (Fisher's exact test where a cell expects fewer than 5; Wilson interval), Welch's t-test for a mean
(t interval). Holm's step-down adjustment runs over all the
subgroups tested, across all dimensions, so testing forty subgroups does not find two by chance. Nothing is
shrunk: a small subgroup keeps its own figure and shows it through a wide interval. The comparisons are
cross-sectional, so they say which subgroups go with a lower figure, not what causes it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from crmnb.analysis.compare import holm, two_proportions, wilson
from crmnb.analysis.goal_tree import DIMENSIONS, gain_if_like_rest, gap_to_target, share_of_gap
from crmnb.present.words import category, fmt_value, t

SCAN_COLUMNS = [
    "dimension",
    "subgroup",
    "n",
    "value",
    "ci_low",
    "ci_high",
    "rest_value",
    "difference",
    "p_value",
    "p_holm",
    "gain",
    "share_of_gap",
    "significant",
]
ALPHA = 0.05


def _interval(x: np.ndarray, unit: str) -> tuple[float, float]:
    """Return the 95% interval of a subgroup's figure: Wilson for a rate, Student t for a mean."""
    if unit == "rate":
        return wilson(float(x.sum()), len(x))
    if len(x) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def _p_value(x: np.ndarray, rest: np.ndarray, unit: str) -> float:
    """Return the two-sided p-value of the subgroup against the rest (NaN when it cannot be tested)."""
    if len(x) < 2 or len(rest) < 2:
        return float("nan")
    if unit == "rate":
        table = np.array([[x.sum(), len(x) - x.sum()], [rest.sum(), len(rest) - rest.sum()]])
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
        if expected.min() < 5:  # the z-test's normal approximation fails on small counts: Fisher's exact test
            return float(stats.fisher_exact(table).pvalue)
        return float(two_proportions(rest, x).p_value)
    if x.std() == 0 and rest.std() == 0:
        return float("nan")
    return float(stats.ttest_ind(x, rest, equal_var=False).pvalue)


def driver_scan(u: pd.DataFrame, goal: Mapping, unit: str, dimensions: tuple[str, ...] = DIMENSIONS) -> pd.DataFrame:
    """Return every subgroup of every dimension ``u`` carries against the rest of the units, the ones that would
    close most of the gap first: n, value, 95% interval, rest value, difference, p, Holm p, gain, share of gap.

    ``u`` are the goal metric's units with a column per dimension (:func:`crmnb.analysis.goal_tree.traced_units`);
    ``goal`` holds now, target and higher_is_better.
    """
    rows = []
    higher, gap = goal["higher_is_better"], gap_to_target(goal)
    for dim in (d for d in dimensions if d in u):
        known = u[u[dim].notna()]
        if known[dim].nunique() < 2:
            continue
        values = known["value"].to_numpy(float)
        for name, idx in known.groupby(dim, observed=True).indices.items():
            inside = np.zeros(len(known), bool)
            inside[idx] = True
            x, rest = values[inside], values[~inside]
            lo, hi = _interval(x, unit)
            gain = gain_if_like_rest(len(x), x.mean(), rest.mean(), len(known), higher)
            rows.append(
                {
                    "dimension": dim,
                    "subgroup": str(name),
                    "n": len(x),
                    "value": float(x.mean()),
                    "ci_low": lo,
                    "ci_high": hi,
                    "rest_value": float(rest.mean()),
                    "difference": float(x.mean() - rest.mean()),
                    "p_value": _p_value(x, rest, unit),
                    "gain": gain,
                    "share_of_gap": share_of_gap(gain, gap),
                }
            )
    out = pd.DataFrame(rows, columns=[c for c in SCAN_COLUMNS if c not in ("p_holm", "significant")])
    out["p_holm"] = holm(out["p_value"]) if len(out) else pd.Series(dtype=float)
    out["significant"] = (out["p_holm"] < ALPHA).fillna(False).astype(bool)
    out = out.sort_values(["gain", "n"], ascending=[False, False], kind="stable").reset_index(drop=True)
    return out[SCAN_COLUMNS]


def strongest(scan: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Return the subgroups that fall short of the rest beyond chance (Holm p < 0.05), most of the gap first."""
    return scan[scan["significant"] & (scan["gain"] > 0)].head(top)


def subgroup_label(dimension: str, subgroup: str, lang: str) -> str:
    """Return a subgroup as a reader names it: its dimension and its value, in ``lang``.

    >>> subgroup_label("tier", "low_value", "en")
    'value tier low value'
    """
    value = str(category(subgroup, lang))
    return t(f"scan.dimension.{dimension}", lang) + " " + (value if lang == "zh" else value.replace("_", " "))


def readable(scan: pd.DataFrame, language: str) -> pd.DataFrame:
    """Return the scan as a reader sees it: each dimension and subgroup in words, in ``language``."""
    out = scan.copy()
    out["dimension"] = [t(f"scan.dimension.{d}", language) for d in scan["dimension"]]
    out["subgroup"] = [str(category(s, language)) for s in scan["subgroup"]]
    return out


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def scan_sentences(scan: pd.DataFrame, goal: Mapping, lang: str, top: int = 3) -> list[str]:
    """Return what the scan found, in ``lang``: how many subgroups were tested and, for the strongest, the
    figure with its interval against the rest and its share of the gap, worded as an association."""
    tested = scan[scan["p_value"].notna()]
    dims = scan["dimension"].nunique()
    lines = [t("scan.tested", lang, m=len(tested), dims=dims, name=goal["name"])]
    unit = goal["unit"]
    for _, r in strongest(scan, top).iterrows():
        share = "" if pd.isna(r["share_of_gap"]) else t("scan.share", lang, share=r["share_of_gap"])
        lines.append(
            t(
                "scan.finding",
                lang,
                group=subgroup_label(r["dimension"], r["subgroup"], lang),
                n=int(r["n"]),
                name=goal["name"],
                value=fmt_value(r["value"], unit),
                low=fmt_value(r["ci_low"], unit),
                high=fmt_value(r["ci_high"], unit),
                rest=fmt_value(r["rest_value"], unit),
                gain=_gain(r["gain"], unit, lang),
                share=share,
                p=_p(r["p_holm"]),
            )
        )
    if len(lines) == 1:
        lines.append(t("scan.none", lang))
    return lines


def _gain(gain: float, unit: str, lang: str) -> str:
    """Return a move of the goal metric in its unit: points for a rate, else the unit's own figure."""
    if unit == "rate":
        return t("scan.gain.rate", lang, pp=gain * 100)
    return t("scan.gain.other", lang, v=fmt_value(gain, unit))
