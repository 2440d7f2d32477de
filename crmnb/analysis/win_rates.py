"""Win rates of small cells shrunk toward larger ones: empirical-Bayes beta-binomial.

A rep's win rate in one industry rests on few deals; read alone it misleads. Each cell's rate is
the posterior mean of a beta-binomial whose prior is centred on what the rep's overall rate and
the segment's overall rate together suggest (``rep × segment / overall``), with a strength ``k``
(deals' worth of weight) estimated from how much the cells really vary (method of moments), or
given. A cell with many deals keeps close to its own rate; one with few moves to the prior.

>>> closed = pd.DataFrame({"rep": list("aaab"), "segment": list("xxyx"), "won": [1, 1, 0, 0]})
>>> shrunk_rates(closed, "rep", "segment", strength=2.0)["rate"].round(3).tolist()
[0.86, 0.267, 0.267]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import beta

STRENGTH_BOUNDS = (2.0, 200.0)
"""The fewest and most deals' worth of weight an estimated prior may carry."""


def _rate(won: pd.Series, n: pd.Series, key: pd.Series, overall: float, k: float) -> pd.Series:
    """Return each group's win rate shrunk toward ``overall`` with strength ``k`` (``n``: deals per row)."""
    g = pd.DataFrame({"won": won.to_numpy(), "n": n.to_numpy()}).groupby(key.to_numpy(), observed=True)
    return (g["won"].sum() + k * overall) / (g["n"].sum() + k)


def estimate_strength(wins: np.ndarray, n: np.ndarray, prior: np.ndarray) -> float:
    """Return the prior's strength k from the spread of cell rates beyond binomial noise (method of moments)."""
    ok = n > 0
    if ok.sum() < 3:
        return STRENGTH_BOUNDS[1]
    raw, m, w = wins[ok] / n[ok], prior[ok], n[ok]
    spread = np.average((raw - m) ** 2, weights=w)
    noise = np.average(m * (1 - m) / w, weights=w)
    tau2 = spread - noise
    if tau2 <= 0:
        return STRENGTH_BOUNDS[1]
    k = float(np.average(m * (1 - m), weights=w) / tau2 - 1)
    return float(np.clip(k, *STRENGTH_BOUNDS))


def shrunk_rates(
    closed: pd.DataFrame, rep: str, segment: str, strength: float | None = None, level: float = 0.9
) -> pd.DataFrame:
    """Return per rep and segment: deals, wins, raw rate, the rep's and segment's rates, prior, shrunk rate, interval.

    ``closed`` holds one closed deal per row with columns ``rep``, ``segment`` and ``won`` (0/1), or, with a
    column ``deals``, one group of closed deals per row and ``won`` its wins (counted in the engine: the
    same rates, as every sum is of whole numbers).
    The rep's and the segment's own rates are shrunk toward the overall rate with the same
    strength; ``low``/``high`` bound the posterior's central ``level`` interval.
    """
    missing = [c for c in (rep, segment, "won") if c not in closed]
    if missing:
        raise ValueError(f"table 'closed deals': missing column(s) {', '.join(missing)}")
    n = closed["deals"] if "deals" in closed else pd.Series(1, index=closed.index)
    d = closed[[rep, segment, "won"]].assign(n=n.astype("int64")).dropna(subset=[rep, segment])
    d = d.astype({"won": float})
    if d.empty or d["n"].sum() == 0:
        raise ValueError("table 'closed deals' has no closed deal with a rep and a segment")
    overall = float(d["won"].sum() / d["n"].sum())
    cells = d.groupby([rep, segment], observed=True).agg(deals=("n", "sum"), wins=("won", "sum")).reset_index()
    cells = cells[cells["deals"] > 0].reset_index(drop=True)
    k0 = STRENGTH_BOUNDS[0] * 5 if strength is None else strength
    rep_rate = _rate(d["won"], d["n"], d[rep], overall, k0)
    seg_rate = _rate(d["won"], d["n"], d[segment], overall, k0)
    cells["rep_rate"] = cells[rep].map(rep_rate).to_numpy(float)
    cells["segment_rate"] = cells[segment].map(seg_rate).to_numpy(float)
    prior = np.clip(cells["rep_rate"] * cells["segment_rate"] / max(overall, 1e-9), 0.01, 0.99)
    k = (
        strength
        if strength is not None
        else estimate_strength(cells["wins"].to_numpy(), cells["deals"].to_numpy(), prior.to_numpy())
    )
    a = k * prior + cells["wins"]
    b = k * (1 - prior) + cells["deals"] - cells["wins"]
    cells["raw_rate"] = cells["wins"] / cells["deals"]
    cells["prior"] = prior
    cells["rate"] = a / (a + b)
    cells["low"] = beta.ppf((1 - level) / 2, a, b)
    cells["high"] = beta.ppf((1 + level) / 2, a, b)
    cells["strength"] = k
    cells["wins"] = cells["wins"].astype(int)
    return cells


def lookup(cells: pd.DataFrame, rep: str, segment: str, reps: pd.Series, segments: pd.Series) -> np.ndarray:
    """Return the shrunk rate of each (rep, segment) pair; an unseen pair gets its prior, an unseen rep the segment's."""
    idx = pd.MultiIndex.from_frame(cells[[rep, segment]])
    rate = pd.Series(cells["rate"].to_numpy(), index=idx)
    pairs = pd.MultiIndex.from_arrays([reps.to_numpy(), segments.to_numpy()])
    got = rate.reindex(pairs).to_numpy(dtype=float)
    rep_rate = cells.drop_duplicates(rep).set_index(rep)["rep_rate"]
    seg_rate = cells.drop_duplicates(segment).set_index(segment)["segment_rate"]
    overall = float(cells["wins"].sum() / max(cells["deals"].sum(), 1))
    r = reps.map(rep_rate).to_numpy(dtype=float)
    s = segments.map(seg_rate).to_numpy(dtype=float)
    fallback = np.where(
        np.isnan(r), np.where(np.isnan(s), overall, s), np.where(np.isnan(s), r, r * s / max(overall, 1e-9))
    )
    return np.where(np.isnan(got), np.clip(fallback, 0.0, 1.0), got)
