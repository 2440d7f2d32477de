"""Routing advice: which rep should take which open high-value deal, from shrunk rep × segment win rates.

Win rates by rep × industry, deal size and channel come from the deals closed by the scoring date,
each shrunk toward the rep's and the segment's overall rate (:mod:`crmnb.analysis.win_rates`) so
that a rep's two wins in a small industry do not read as a talent. For the department's open deals
in the top share by amount, the advice moves a deal to the rep of the same department with the
best shrunk rate in its industry, when that beats its current rep's, within each rep's capacity
(half their open deals again, at least two), and only where the better rate is credible (the gain
above 1.645 posterior standard deviations). The expected gain in wins and its 90% interval come
from drawing the cells' posterior rates. The rates are observational: reps may have been given
different deals; read the advice as a hypothesis to try, not a measured effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmnb.analysis.scoring_features import UNKNOWN, _industry, closed_by
from crmnb.analysis.win_rates import shrunk_rates
from crmnb.present.words import department, t

DIMENSIONS = ("industry", "size", "channel")
"""The segments a rep's win rate is broken down by."""
SIZE_BANDS = ("small_deal", "medium_deal", "large_deal")
CREDIBLE_Z = 1.645
"""A deal is moved only when the gain is this many posterior standard deviations above 0 (one-sided 95%)."""
DRAWS = 2000
"""Posterior draws behind the gain's interval."""


def closed_deals(tables: dict[str, pd.DataFrame], as_of) -> pd.DataFrame:
    """Return the deals closed by ``as_of`` with rep, department, industry, size band, channel and won (0/1); from
    a source that counts them in the engine, one row per group of such deals, ``deals`` and ``won`` its counts."""
    cut = pd.Timestamp(as_of)
    engine = getattr(tables, "closed_cells", None)
    if engine is not None:
        return engine(cut)
    opps = tables["opportunities"].copy()
    opps["closed_at"] = pd.to_datetime(opps["closed_at"], errors="coerce")
    closed = opps[closed_by(opps, cut) & opps["owner_rep"].notna()].copy()
    closed["industry"] = _industry(closed, tables["customers"]).to_numpy()
    edges = closed["amount"].quantile([1 / 3, 2 / 3]).to_numpy() if len(closed) else np.array([0.0, 0.0])
    closed["size"] = size_band(closed["amount"], edges)
    channel = tables["leads"].drop_duplicates("lead_id").set_index("lead_id")["channel"]
    closed["channel"] = closed["lead_id"].map(channel).fillna(UNKNOWN).astype(str)
    closed["won"] = closed["status"].eq("won").astype(int)
    closed.attrs["size_edges"] = edges.tolist()
    return closed


def size_band(amount: pd.Series, edges) -> np.ndarray:
    """Return each amount's size band (small, medium, large) by the closed deals' terciles ``edges``."""
    return np.asarray(SIZE_BANDS, dtype=object)[
        np.searchsorted(np.asarray(edges), amount.fillna(0).to_numpy(), side="right")
    ]


RATE_NAMES = {"segment": "win_segment", "wins": "wins", "raw_rate": "raw_win_rate", "rep_rate": "rep_win_rate",
              "segment_rate": "segment_win_rate", "rate": "shrunk_win_rate", "low": "rate_low", "high": "rate_high",
              "strength": "prior_deals"}  # fmt: skip
RATE_COLUMNS = ["dimension", "win_segment", "department", "owner_rep", "deals", "wins", "raw_win_rate", "rep_win_rate",
                "segment_win_rate", "shrunk_win_rate", "rate_low", "rate_high", "prior_deals"]  # fmt: skip
ADVICE_COLUMNS = ["record_id", "industry", "amount", "win_probability", "owner_rep", "current_rate", "suggested_rep",
                  "suggested_rate", "win_gain", "gain_low", "gain_high"]  # fmt: skip


def rate_table(closed: pd.DataFrame, strength: float | None = None) -> pd.DataFrame:
    """Return the shrunk win rate of every rep × segment cell, for each dimension (industry, size, channel)."""
    if closed.empty:
        return pd.DataFrame(columns=RATE_COLUMNS)
    parts = []
    for dim in DIMENSIONS:
        cells = shrunk_rates(closed, "owner_rep", dim, strength).rename(columns={dim: "segment"})
        dept = closed.drop_duplicates("owner_rep").set_index("owner_rep")["department"]
        parts.append(cells.assign(dimension=dim, department=cells["owner_rep"].map(dept)))
    out = pd.concat(parts, ignore_index=True).rename(columns=RATE_NAMES)
    out = out.sort_values(["dimension", "win_segment", "shrunk_win_rate"], ascending=[True, True, False], kind="stable")
    return out[RATE_COLUMNS].reset_index(drop=True)


def _capacity(open_deals: pd.Series) -> pd.Series:
    """Return how many more deals each rep may take: half their open deals again, at least two."""
    return np.maximum(2, np.ceil(0.5 * open_deals)).astype(int)


def _candidates(deals: pd.DataFrame, cells: pd.DataFrame, reps: list[str]) -> pd.DataFrame:
    """Return every (deal, rep of the department) pair with the rep's shrunk rate in the deal's industry."""
    pairs = deals[["record_id", "industry", "owner_rep"]].merge(pd.DataFrame({"to_rep": reps}), how="cross")
    key = cells.set_index(["owner_rep", "segment"])
    pairs["to_rate"] = key["rate"].reindex(pd.MultiIndex.from_frame(pairs[["to_rep", "industry"]])).to_numpy()
    rep_rate = cells.drop_duplicates("owner_rep").set_index("owner_rep")["rep_rate"]
    return pairs.assign(to_rate=pairs["to_rate"].fillna(pairs["to_rep"].map(rep_rate)))


def advise(scored: pd.DataFrame, closed: pd.DataFrame, dept: str, settings, seed: int = 0) -> pd.DataFrame:
    """Return the routing advice for the department's open high-value deals: current and suggested rep, rates, gain."""
    if closed.empty or scored.empty:
        empty = pd.DataFrame(columns=ADVICE_COLUMNS)
        empty.attrs["no_scores"] = scored.empty
        return empty
    cells = shrunk_rates(closed, "owner_rep", "industry", settings.prior_strength).rename(
        columns={"industry": "segment"}
    )
    deals = scored[(scored["kind"] == "opportunity") & (scored["department"] == dept)]
    deals = deals[deals["amount"] >= deals["amount"].quantile(1 - settings.high_value_share)] if len(deals) else deals
    reps = sorted(closed.loc[closed["department"] == dept, "owner_rep"].unique())
    if deals.empty or not reps:
        return pd.DataFrame(columns=ADVICE_COLUMNS)
    pairs = _candidates(deals, cells, reps)
    now = pairs[pairs["to_rep"] == pairs["owner_rep"]].set_index("record_id")["to_rate"]
    pairs["gain"] = pairs["to_rate"] - pairs["record_id"].map(now).fillna(cells["rate"].mean())
    var = _posterior(cells)["var"]
    spread = np.sqrt(
        var.reindex(pd.MultiIndex.from_frame(pairs[["to_rep", "industry"]])).fillna(var.max()).to_numpy()
        + var.reindex(pd.MultiIndex.from_frame(pairs[["owner_rep", "industry"]])).fillna(var.max()).to_numpy()
    )
    pairs = pairs[pairs["gain"] > CREDIBLE_Z * spread]  # a move only where the better rate is credible
    room = _capacity(scored[scored["kind"] == "opportunity"].groupby("owner_rep").size().reindex(reps, fill_value=0))
    moves = _greedy(pairs.sort_values("gain", ascending=False, kind="stable"), room.to_dict())
    out = deals.set_index("record_id")[["industry", "amount", "probability", "owner_rep"]]
    out = out.rename(columns={"probability": "win_probability"}).assign(current_rate=now)
    best = pd.DataFrame(moves).set_index("record_id") if moves else pd.DataFrame(columns=["to_rep", "to_rate", "gain"])
    out["suggested_rep"] = best["to_rep"].reindex(out.index).fillna(out["owner_rep"])
    out["suggested_rate"] = best["to_rate"].reindex(out.index).fillna(out["current_rate"])
    out["gain"] = best["gain"].reindex(out.index).fillna(0.0).astype(float)
    lo, hi = _gain_interval(out, cells, seed)
    out["gain_low"], out["gain_high"] = lo, hi
    res = out.reset_index().rename(columns={"gain": "win_gain"})[ADVICE_COLUMNS]
    res = res.sort_values(["win_gain", "amount"], ascending=False, kind="stable").reset_index(drop=True)
    res.attrs["gain_draws"] = out.attrs["gain_draws"]
    return res


def _greedy(pairs: pd.DataFrame, room: dict[str, int]) -> list[pd.Series]:
    """Return the moves taken from ``pairs`` in their order: each deal once, each rep within its ``room``."""
    taken: set = set()
    keep = []
    for i, (deal, rep) in enumerate(zip(pairs["record_id"].to_numpy(), pairs["to_rep"].to_numpy())):
        if deal in taken or room[rep] <= 0:
            continue
        room[rep] -= 1
        taken.add(deal)
        keep.append(i)
    return [pairs.iloc[i] for i in keep]  # rows as Series, as the table of moves is built from


def _posterior(cells: pd.DataFrame) -> pd.DataFrame:
    """Return each rep × industry cell's beta posterior (a, b), its mean and variance."""
    a = cells["strength"] * cells["prior"] + cells["wins"]
    b = cells["strength"] * (1 - cells["prior"]) + cells["deals"] - cells["wins"]
    post = pd.DataFrame(
        {"a": a.to_numpy(), "b": b.to_numpy()}, index=pd.MultiIndex.from_frame(cells[["owner_rep", "segment"]])
    )
    post["var"] = post["a"] * post["b"] / ((post["a"] + post["b"]) ** 2 * (post["a"] + post["b"] + 1))
    return post


def _gain_interval(out: pd.DataFrame, cells: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return per deal the 90% interval of its gain from draws of the cells' posterior rates (one draw per cell,
    shared by every deal of the cell, so the total's interval keeps their dependence)."""
    rng = np.random.default_rng(seed)
    post = _posterior(cells)
    draws = rng.beta(post["a"].to_numpy()[:, None], post["b"].to_numpy()[:, None], (len(post), DRAWS))

    def of(rep: pd.Series, industry: pd.Series, current: pd.Series) -> np.ndarray:
        pos = post.index.get_indexer(pd.MultiIndex.from_arrays([rep.to_numpy(), industry.to_numpy()]))
        return np.where(pos[:, None] >= 0, draws[np.maximum(pos, 0)], current.to_numpy()[:, None])

    # only the moved deals' draws: a deal kept has a gain of 0 in every draw (adding 0 changes no sum)
    moved = (out["suggested_rep"] != out["owner_rep"]).to_numpy()
    lo, hi = np.zeros(len(out)), np.zeros(len(out))
    g = of(out["suggested_rep"][moved], out["industry"][moved], out["current_rate"][moved])
    g = g - of(out["owner_rep"][moved], out["industry"][moved], out["current_rate"][moved])
    out.attrs["gain_draws"] = g.sum(axis=0) if len(g) else np.zeros(DRAWS)
    if len(g):
        lo[moved], hi[moved] = np.quantile(g, 0.05, axis=1), np.quantile(g, 0.95, axis=1)
    return lo, hi


def workload(advice: pd.DataFrame, scored: pd.DataFrame, dept: str) -> pd.DataFrame:
    """Return per rep of the department: open deals now, deals given and taken by the advice, open deals after."""
    deals = scored[(scored["kind"] == "opportunity") & (scored["department"] == dept)]
    now = deals.groupby("owner_rep").size()
    moved = advice[advice["suggested_rep"] != advice["owner_rep"]]
    reps = sorted(set(now.index) | set(moved["suggested_rep"]))
    out = pd.DataFrame({"owner_rep": reps})
    out["open_deals"] = out["owner_rep"].map(now).fillna(0).astype(int)
    out["deals_given"] = out["owner_rep"].map(moved.groupby("owner_rep").size()).fillna(0).astype(int)
    out["deals_taken"] = out["owner_rep"].map(moved.groupby("suggested_rep").size()).fillna(0).astype(int)
    out["open_deals_after"] = out["open_deals"] - out["deals_given"] + out["deals_taken"]
    return out


def describe(advice: pd.DataFrame, dept: str, lang: str) -> str:
    """State the advice: deals moved, the expected gain in wins with its 90% interval, and the caveat, in ``lang``."""
    moved = advice[advice["suggested_rep"] != advice["owner_rep"]]
    if advice.empty and advice.attrs.get("no_scores"):
        return t("predict.routing.no_scores", lang)
    if moved.empty:
        return t("predict.routing.none", lang, department=department(dept, lang), n=len(advice))
    draws = advice.attrs.get("gain_draws")
    lo, hi = np.quantile(draws, [0.05, 0.95]) if draws is not None else (np.nan, np.nan)
    return t(
        "predict.routing.summary",
        lang,
        department=department(dept, lang),
        n=len(advice),
        moved=len(moved),
        gain=float(moved["win_gain"].sum()),
        low=float(lo),
        high=float(hi),
    )
