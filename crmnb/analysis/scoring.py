"""Lead and deal scoring: the probability that an open lead or deal is won within the window, with reasons.

Logistic regression and a decision tree, class-balanced and calibrated, are trained on the records
open two windows before the scoring date (and at three earlier snapshots, a third of a window apart)
and judged on those open one window before it (labels end
at the scoring date), against two simple baselines: the training win rate of the record's stage, and
of its channel. The chosen model (best holdout PR-AUC) is refitted one window before and scores the
records open at the scoring date; each record gets its three main reasons from the logistic model.

>>> res = train_and_evaluate(tables, "2026-03-31", window_days=90)  # doctest: +SKIP
>>> scored = score_open(res, tables, "en")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from crmnb.analysis.churn_model import lift_table
from crmnb.analysis.scoring_features import CATEGORICAL, NUMERIC, STAGES, features_at, won_within
from crmnb.analysis.scoring_words import worded
from crmnb.errors import NotEnoughData
from crmnb.present.words import category, t

LOGGED = ("age_days", "days_in_stage", "response_hours", "touches", "days_past_expected")
"""Numeric features taken as log(1 + x): long tails, where a day more matters less after a month."""
MODELS = ("logistic", "tree")
SNAPSHOTS = 4
"""Training stacks the records open at this many dates, a third of a window apart, up to the training cut-off."""
BASELINES = ("stage_rate", "channel_rate")
FIT_ROWS = 60_000
"""The most records the models are fitted on: a training set larger than this (past about ten times the demo
data) is fitted on a sample of it stratified by outcome, the same share of every snapshot's wins and of its
other records; a logistic model or a depth-5 tree gains little from more, and the fit's time grows with them."""


@dataclass
class Design:
    """How features become the model's columns: the categories seen in training and the fill values."""

    categories: dict[str, list[str]]
    fill: dict[str, float]

    @classmethod
    def learn(cls, x: pd.DataFrame) -> Design:
        """Return the design of a training set."""
        cats = {c: sorted(x[c].astype(str).unique()) for c in CATEGORICAL if c != "stage"}
        cats["stage"] = list(STAGES)
        fill = {c: float(np.nanmedian(x[c])) if x[c].notna().any() else 0.0 for c in NUMERIC}
        return cls(cats, fill)

    @property
    def columns(self) -> list[str]:
        """Return the model's column names, ``group=value`` for the categories."""
        return list(NUMERIC) + [f"{c}={v}" for c in CATEGORICAL for v in self.categories[c]]

    def matrix(self, x: pd.DataFrame) -> np.ndarray:
        """Return the model matrix of some records."""
        num = np.column_stack(
            [
                np.log1p(x[c].fillna(self.fill[c]).clip(lower=0)) if c in LOGGED else x[c].fillna(self.fill[c])
                for c in NUMERIC
            ]
        )
        return np.hstack([num.astype(float)] + [one_hot(x[c], self.categories[c]) for c in CATEGORICAL])

    def group(self, column: str) -> str:
        """Return the feature a model column belongs to."""
        return column.split("=", 1)[0]


def one_hot(values: pd.Series, categories: list[str]) -> np.ndarray:
    """Return 1.0 where a record's value (as text) is the category of the column, else 0.0; a value of no
    category is all zeros. Each value is looked up once in a hash of the categories, not compared with each."""
    at = pd.Index(categories, dtype=object).get_indexer(values.astype(str).to_numpy(dtype=object))
    return (at[:, None] == np.arange(len(categories))[None, :]).astype(float)


@dataclass
class ScoringResult:
    """Both models and both baselines on the later holdout, the chosen model and what it scores with."""

    as_of: pd.Timestamp
    train_cut: pd.Timestamp
    hold_cut: pd.Timestamp
    window_days: int
    metrics: pd.DataFrame
    lift: pd.DataFrame
    calibration: pd.DataFrame
    chosen: str
    design: Design
    model: Any
    explainer: Pipeline
    holdout: pd.DataFrame = field(repr=False)
    reference: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    """The average contribution per feature of the final training records of each kind (lead, opportunity)."""
    records_seen: int = 0
    """The training records open at the snapshots; more than ``records_trained``: fitted on a stratified sample."""
    final_fit: tuple[int, int] = (0, 0)
    """The records the final model is fitted on, and those open at its dates (more: a stratified sample)."""


def _logistic() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(class_weight="balanced", max_iter=2000))])


def _tree(min_leaf: int) -> Pipeline:
    return Pipeline(
        [
            (
                "clf",
                DecisionTreeClassifier(max_depth=5, min_samples_leaf=min_leaf, class_weight="balanced", random_state=0),
            )
        ]
    )


def stratified(x: pd.DataFrame, y: pd.Series, rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Return about ``rows`` of the records, the same share of each outcome, in their order (a fixed seed)."""
    rng = np.random.default_rng(seed)
    share = rows / len(x)
    keep = np.zeros(len(x), dtype=bool)
    for label in (0, 1):
        where = np.flatnonzero(y.to_numpy() == label)
        keep[rng.choice(where, size=min(len(where), max(1, round(share * len(where)))), replace=False)] = True
    return x[keep].reset_index(drop=True), y[keep].reset_index(drop=True)


def _at(tables, cut: pd.Timestamp, window: int, strength) -> tuple[pd.DataFrame, pd.Series]:
    """Return the records open at ``cut`` and their labels."""
    x = features_at(tables, cut, window, strength)
    return x, won_within(tables, x, cut, window).astype(int)


def _snapshots(cut: pd.Timestamp, window: int, snapshots: int) -> list[pd.Timestamp]:
    """Return the dates a training at ``cut`` stacks."""
    step = pd.Timedelta(days=max(7, window // 3))
    return [cut - k * step for k in range(snapshots)]


def _labelled(
    tables,
    cut: pd.Timestamp,
    window: int,
    strength,
    what: str,
    as_of,
    snapshots: int = 1,
    fit_rows: int | None = None,
    memo: dict | None = None,
    keep: frozenset = frozenset(),
) -> tuple[pd.DataFrame, pd.Series]:
    """Return the records open at ``cut`` (and at earlier snapshots) and their labels, at most about ``fit_rows``
    of them (a stratified sample of each snapshot past that); NotEnoughData when either class is too small.
    ``memo`` holds the records of the dates in ``keep`` that another call reads too."""
    step = pd.Timedelta(days=max(7, window // 3))
    memo = {} if memo is None else memo
    xs, ys, seen = [], [], 0
    for k in range(snapshots):
        at = cut - k * step
        x, y = memo[at] if at in memo else _at(tables, at, window, strength)
        if at in keep:  # another call of this training reads the same date
            memo[at] = (x, y)
        seen += len(x)
        if fit_rows is not None and len(x) > fit_rows // snapshots:
            x, y = stratified(x, y, fit_rows // snapshots, seed=k)
        xs.append(x)
        ys.append(y)
    x, y = pd.concat(xs, ignore_index=True), pd.concat(ys, ignore_index=True)
    x.attrs["records_seen"] = seen
    wins = int(y.sum())
    if min(wins, len(y) - wins) < 5:
        raise NotEnoughData(
            f"predict.too_few.{what}",
            5,
            min(wins, len(y) - wins),
            cut=f"{cut:%Y-%m-%d}",
            n=len(y),
            wins=wins,
            window=window,
            as_of=f"{as_of:%Y-%m-%d}",
        )
    return x, y


def calibration_table(won: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Return per probability decile (1 = highest): records, mean predicted probability, observed win rate."""
    order = np.argsort(-p, kind="stable")
    group = np.empty(len(p), dtype=np.int64)
    group[order] = np.arange(len(p)) * bins // max(len(p), 1)
    d = pd.DataFrame({"decile": group + 1, "p": p, "won": won})
    out = d.groupby("decile").agg(records=("p", "size"), mean_probability=("p", "mean"), win_rate=("won", "mean"))
    return out.reset_index()


def win_lift(won: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Return lift by probability decile (1 = highest): records, wins, win rate, lift, cumulative share of wins."""
    lift = lift_table(won, p)
    names = {"customers": "records", "churners": "wins", "churn_rate": "win_rate", "cumulative_capture": "win_capture"}
    return lift.rename(columns=names)


def _scores(name: str, y: np.ndarray, p: np.ndarray, n_train: int) -> dict:
    """Return one row of the comparison: model ``name``'s holdout scores."""
    cal = calibration_table(y, p)
    return {
        "model": name,
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "brier": brier_score_loss(y, p),
        "calibration_error": float(
            np.average((cal["mean_probability"] - cal["win_rate"]).abs(), weights=cal["records"])
        ),
        "lift_top_decile": float(lift_table(y, p)["lift"].iloc[0]),
        "holdout_win_rate": float(y.mean()),
        "records_trained": n_train,
        "records_held_out": len(y),
    }


def _rate_of(x_train: pd.DataFrame, y_train: pd.Series, by: str, x: pd.DataFrame) -> np.ndarray:
    """Return the training win rate of each record's ``by`` value (the overall rate for a value not seen)."""
    rate = y_train.groupby(x_train[by].to_numpy()).mean()
    return x[by].map(rate).fillna(float(y_train.mean())).to_numpy(dtype=float)


def _fit(name: str, m: np.ndarray, y: pd.Series) -> CalibratedClassifierCV:
    """Return model ``name`` fitted on the model matrix ``m``, calibrated (sigmoid) on out-of-fold predictions."""
    base = _logistic() if name == "logistic" else _tree(max(20, len(m) // 100))
    return CalibratedClassifierCV(base, method="sigmoid", cv=3).fit(m, y.to_numpy())


def one_thread(f):
    """Return ``f`` run with one BLAS thread: the models' matrices are narrow (some thirty columns), and on a
    machine of few cores, busy with the engine's threads, the threads' hand-offs cost many times the sums."""

    @functools.wraps(f)
    def run(*args, **kwargs):
        with threadpool_limits(limits=1):
            return f(*args, **kwargs)

    return run


@one_thread
def train_and_evaluate(
    tables: dict[str, pd.DataFrame], as_of: Any, window_days: int = 90, strength=None
) -> ScoringResult:
    """Train both models two windows before ``as_of``, judge them and the baselines one window before it."""
    as_of = pd.Timestamp(as_of)
    w = pd.Timedelta(days=window_days)
    train_cut, hold_cut = as_of - 2 * w, as_of - w
    # the final fit's dates include the holdout's, and the training's first when a window is three steps
    again = set(_snapshots(train_cut, window_days, SNAPSHOTS)) & set(_snapshots(hold_cut, window_days, SNAPSHOTS))
    memo, keep = {}, frozenset(again | {hold_cut})
    x_tr, y_tr = _labelled(tables, train_cut, window_days, strength, "training", as_of, SNAPSHOTS, FIT_ROWS, memo, keep)
    x_ho, y_ho = _labelled(tables, hold_cut, window_days, strength, "holdout", as_of, memo=memo, keep=keep)
    design = Design.learn(x_tr)
    # each record set's matrix is built once: both models are fitted on the one and judged on the other
    m_tr, m_ho = design.matrix(x_tr), design.matrix(x_ho)
    probs = {m: _fit(m, m_tr, y_tr).predict_proba(m_ho)[:, 1] for m in MODELS}
    del m_tr, m_ho
    probs["stage_rate"] = _rate_of(x_tr, y_tr, "stage", x_ho)
    probs["channel_rate"] = _rate_of(x_tr, y_tr, "channel", x_ho)
    metrics = pd.DataFrame([_scores(m, y_ho.to_numpy(), p, len(y_tr)) for m, p in probs.items()])
    models = metrics[metrics["model"].isin(MODELS)]
    chosen = str(models.loc[models["pr_auc"].idxmax(), "model"])
    metrics["kind"] = np.where(metrics["model"].isin(MODELS), "candidate", "baseline")
    metrics["chosen"] = metrics["model"] == chosen
    x_fin, y_fin = _labelled(tables, hold_cut, window_days, strength, "holdout", as_of, SNAPSHOTS, FIT_ROWS, memo)
    memo.clear()
    final_design = Design.learn(x_fin)
    m_fin = final_design.matrix(x_fin)
    final = _fit(chosen, m_fin, y_fin)
    explainer = _logistic().fit(m_fin, y_fin.to_numpy())
    holdout = x_ho[["record_id", "kind", "stage", "channel"]].assign(won=y_ho.to_numpy(), **probs)
    res = ScoringResult(
        as_of,
        train_cut,
        hold_cut,
        window_days,
        metrics,
        win_lift(y_ho.to_numpy(), probs[chosen]),
        calibration_table(y_ho.to_numpy(), probs[chosen]),
        chosen,
        final_design,
        final,
        explainer,
        holdout,
    )
    res.reference = contributions(res, x_fin, m_fin).groupby(x_fin["kind"].to_numpy()).mean()
    res.records_seen = int(x_tr.attrs["records_seen"])
    res.final_fit = (len(x_fin), int(x_fin.attrs["records_seen"]))
    return res


def contributions(res: ScoringResult, x: pd.DataFrame, m: np.ndarray | None = None) -> pd.DataFrame:
    """Return each feature's push on each record's log-odds in the logistic model (standardised, summed per feature);
    ``m``: the records' model matrix, when built already."""
    z = res.explainer[:-1].transform(res.design.matrix(x) if m is None else m)
    c = z * res.explainer.named_steps["clf"].coef_[0]
    cols = pd.DataFrame(c, index=x.index, columns=res.design.columns)
    return cols.T.groupby([res.design.group(k) for k in cols.columns], sort=False).sum().T


def beats_baselines(metrics: pd.DataFrame) -> bool:
    """Return whether the chosen model beats every baseline on both ROC-AUC and PR-AUC."""
    best = metrics[metrics["chosen"]].iloc[0]
    base = metrics[metrics["kind"] == "baseline"]
    return bool((best["roc_auc"] > base["roc_auc"]).all() and (best["pr_auc"] > base["pr_auc"]).all())


def reasons(res: ScoringResult, x: pd.DataFrame, lang: str, top: int = 3, m: np.ndarray | None = None) -> pd.Series:
    """Return each record's ``top`` main reasons in words: the features pushing its odds most, up or down,
    against the average open record of its kind (a lead against leads, a deal against deals); ``m``: the
    records' model matrix, when built already."""
    c = contributions(res, x, m)
    ref = res.reference.reindex(x["kind"].to_numpy()).fillna(0.0)
    c = c - ref[c.columns].to_numpy()
    skip = {"log_amount"} if (x["kind"] == "lead").all() else set()
    names = [f for f in c.columns if f not in skip]
    vals = c[names].to_numpy()
    order = np.argsort(-np.abs(vals), axis=1, kind="stable")[:, :top]
    return pd.Series(worded(x, names, vals, order, lang), index=x.index, name="reasons", dtype=object)


SCORED_COLUMNS = [
    "record_id", "kind", "lead_id", "opportunity_id", "department", "owner_rep", "channel", "amount", "stage",
    "days_in_stage", "age_days", "response_hours", "touches", "log_amount", "days_past_expected", "industry",
    "rep_rate", "rep_industry_rate", "scored_at", "probability", "reasons",
]  # fmt: skip


def empty_scored() -> pd.DataFrame:
    """Return a scored table with no rows (no model could be trained)."""
    return pd.DataFrame(columns=SCORED_COLUMNS).astype({"probability": float, "amount": float})


@one_thread
def score_open(res: ScoringResult | None, tables: dict[str, pd.DataFrame], lang: str, strength=None) -> pd.DataFrame:
    """Return the records open at the scoring date with their probability of a win within the window and reasons
    (no rows without a model)."""
    if res is None:
        return empty_scored()
    x = features_at(tables, res.as_of, res.window_days, strength)
    if x.empty:
        return empty_scored()
    m = res.design.matrix(x)
    p = res.model.predict_proba(m)[:, 1]
    out = x.assign(probability=p, reasons=reasons(res, x, lang, m=m))
    return out.sort_values("probability", ascending=False, kind="stable").reset_index(drop=True)


def describe(res: ScoringResult, lang: str) -> str:
    """State how the chosen model did on the holdout against both baselines, in ``lang``."""
    m = res.metrics.set_index("model")
    best = m.loc[res.chosen]
    verdict = t("predict.scoring.beats" if beats_baselines(res.metrics) else "predict.scoring.not_beats", lang)
    fitted, seen = int(best["records_trained"]), res.records_seen
    if res.final_fit[1] > res.final_fit[0]:  # the model that scores was fitted on a sample: say its numbers
        fitted, seen = res.final_fit
    sample = " " + t("scoring.sampled", lang, n=fitted, of=seen) if seen > fitted else ""
    return t(
        "predict.scoring.summary",
        lang,
        model=category(res.chosen, lang),
        train=f"{res.train_cut:%Y-%m-%d}",
        hold=f"{res.hold_cut:%Y-%m-%d}",
        auc=best["roc_auc"],
        pr=best["pr_auc"],
        stage_auc=m.loc["stage_rate", "roc_auc"],
        stage_pr=m.loc["stage_rate", "pr_auc"],
        channel_auc=m.loc["channel_rate", "roc_auc"],
        channel_pr=m.loc["channel_rate", "pr_auc"],
        verdict=verdict,
        cal=best["calibration_error"],
    ) + (sample if lang == "en" else sample.strip())


METRIC_COLUMNS = [
    "model",
    "kind",
    "roc_auc",
    "pr_auc",
    "brier",
    "calibration_error",
    "lift_top_decile",
    "holdout_win_rate",
    "records_trained",
    "records_held_out",
    "chosen",
]


def empty_metrics() -> pd.DataFrame:
    """Return a scoring comparison with no rows (when the data cannot train a model)."""
    return pd.DataFrame(columns=METRIC_COLUMNS)


def empty_calibration() -> pd.DataFrame:
    """Return a calibration table with no rows."""
    return pd.DataFrame(columns=["decile", "records", "mean_probability", "win_rate"])
