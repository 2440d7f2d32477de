"""Churn model: logistic regression and a decision tree, calibrated, judged on a later cutoff; the watch list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from crmnb.analysis.churn import (
    FEATURE_LABELS,
    FEATURES,
    RISKY_SIDE,
    build_features,
    label_churn,
)
from crmnb.analysis.events import timestamp
from crmnb.errors import NotEnoughData


# --------------------------------------------------------------------------- models
def _signed_log1p(x: np.ndarray) -> np.ndarray:
    """Return sign(x)·log(1 + |x|), taming heavy tails (spend, days) before scaling."""
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.log1p(np.abs(x))


def _logistic(random_state: int) -> Pipeline:
    return Pipeline(
        [
            ("log", FunctionTransformer(_signed_log1p)),
            ("scale", StandardScaler()),
            (
                "clf",
                LogisticRegression(
                    class_weight="balanced", solver="newton-cholesky", max_iter=200, random_state=random_state
                ),
            ),
        ]
    )


def _tree(random_state: int, depth: int, min_leaf: int) -> Pipeline:
    return Pipeline(
        [
            (
                "clf",
                DecisionTreeClassifier(
                    max_depth=depth, min_samples_leaf=min_leaf, class_weight="balanced", random_state=random_state
                ),
            ),
        ]
    )


def _calibrated(base: Pipeline, method: str, folds: int, random_state: int) -> CalibratedClassifierCV:
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    return CalibratedClassifierCV(base, method=method, cv=cv, ensemble=False)


def _base(model: Any) -> Pipeline:
    """Return the pipeline fitted on all training rows inside a calibrated model."""
    if isinstance(model, CalibratedClassifierCV):
        return model.calibrated_classifiers_[0].estimator
    return model


def lift_table(churned: pd.Series | np.ndarray, probability: pd.Series | np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Return lift by decile (1 = highest probability): customers, churners, churn_rate, lift, cumulative_capture.

    Customers are ranked by probability (ties in their given order) and cut into
    ``bins`` groups of equal size (± 1).

    >>> lift_table([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1], bins=2)["lift"].tolist()
    [1.0, 1.0]
    """
    y = np.asarray(churned, dtype=float)
    p = np.asarray(probability, dtype=float)
    order = np.argsort(-p, kind="stable")
    group = np.empty(len(y), dtype=np.int64)
    group[order] = np.arange(len(y)) * bins // max(len(y), 1)
    n = np.bincount(group, minlength=bins)
    k = np.bincount(group, weights=y, minlength=bins)
    base = y.mean() if len(y) else np.nan
    rate = np.divide(k, n, out=np.full(bins, np.nan), where=n > 0)
    total = k.sum()
    return pd.DataFrame(
        {
            "decile": np.arange(1, bins + 1),
            "customers": n,
            "churners": k.astype(int),
            "churn_rate": rate,
            "lift": rate / base if base else np.nan,
            "cumulative_capture": np.cumsum(k) / total if total else np.nan,
        }
    )


def _importance(name: str, model: Any) -> pd.DataFrame:
    clf = _base(model).named_steps["clf"]
    if isinstance(clf, LogisticRegression):
        coef = clf.coef_[0]
        out = pd.DataFrame({"feature": list(FEATURES), "coefficient": coef, "odds_ratio_per_sd": np.exp(coef)})
        key = np.abs(coef)
    else:
        out = pd.DataFrame({"feature": list(FEATURES), "importance": clf.feature_importances_})
        key = clf.feature_importances_
    out.insert(0, "model", name)
    return out.iloc[np.argsort(-key, kind="stable")].reset_index(drop=True)


@dataclass
class ChurnModelResult:
    """Both churn models, how they did on the later holdout cutoff, and the chosen one."""

    as_of: pd.Timestamp
    train_cutoff: pd.Timestamp
    holdout_cutoff: pd.Timestamp
    horizon_days: int
    metrics: pd.DataFrame  # model, roc_auc, pr_auc, base_rate, brier, n_train, train_base_rate, n_holdout, chosen
    lift: dict[str, pd.DataFrame]
    importance: dict[str, pd.DataFrame]
    models: dict[str, CalibratedClassifierCV]
    chosen: str
    holdout: pd.DataFrame  # churned and one probability column per model, by customer_id
    final: CalibratedClassifierCV | None = None  # chosen spec refitted at the holdout cutoff
    features: tuple[str, ...] = field(default=FEATURES)

    @property
    def model(self) -> CalibratedClassifierCV:
        """Return the model that scores: the refitted one if any, else the chosen evaluated one."""
        return self.final if self.final is not None else self.models[self.chosen]


def _labelled(
    tables: tuple[pd.DataFrame, ...],
    what: str,
    cut: pd.Timestamp,
    as_of: pd.Timestamp,
    horizon_days: int,
    max_lapse_days: int | None,
    folds: int,
) -> tuple[pd.DataFrame, pd.Series]:
    """Return the features and churn labels at the ``what`` (training or holdout) cutoff ``cut``.

    Raises :class:`NotEnoughData` when either class has fewer than ``folds`` customers.
    """
    orders = tables[1]
    try:
        x = build_features(*tables, cut, max_lapse_days)
    except NotEnoughData:
        x = pd.DataFrame(columns=list(FEATURES), index=pd.Index([], name="customer_id"), dtype=float)
    y = label_churn(orders, x.index, cut, horizon_days)
    churners = int(y.sum())
    if y.nunique() < 2 or y.value_counts().min() < folds:
        raise NotEnoughData(
            f"churn_model.too_few.{what}.{'one' if len(y) == 1 else 'many'}",
            folds,
            min(churners, len(y) - churners),
            cut=f"{cut:%Y-%m-%d}",
            horizon_days=horizon_days,
            as_of=f"{as_of:%Y-%m-%d}",
            folds=folds,
            n=len(y),
            churners=churners,
        )
    return x, y


def _scores(name: str, y_hold: pd.Series, p: np.ndarray, lift: pd.DataFrame, y_train: pd.Series) -> dict:
    """Return one row of the model comparison: the holdout scores of model ``name``'s probabilities ``p``."""
    return {
        "model": name,
        "roc_auc": roc_auc_score(y_hold, p),
        "pr_auc": average_precision_score(y_hold, p),
        "base_rate": float(y_hold.mean()),
        "brier": brier_score_loss(y_hold, p),
        "top_decile_lift": float(lift["lift"].iloc[0]),
        "n_train": len(y_train),
        "train_base_rate": float(y_train.mean()),
        "n_holdout": len(y_hold),
    }


def train_and_evaluate(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    visits: pd.DataFrame,
    tickets: pd.DataFrame,
    activities: pd.DataFrame,
    as_of: Any,
    horizon_days: int = 90,
    max_lapse_days: int | None = 365,
    tree_depth: int = 4,
    calibration: str = "sigmoid",
    folds: int = 3,
    random_state: int = 0,
    refit: bool = True,
) -> ChurnModelResult:
    """Train logistic regression and a decision tree at one cutoff and evaluate them on a later one.

    Train cutoff ``as_of − 2·horizon``, holdout cutoff ``as_of − horizon``: the
    training labels end where the holdout begins and the holdout labels end at
    ``as_of``. Both models are class-balanced and calibrated on out-of-fold
    predictions of the training set. The chosen model has the best holdout PR-AUC;
    with ``refit`` its spec is refitted on the holdout cutoff to score at ``as_of``.
    """
    as_of = timestamp(as_of)
    h = pd.Timedelta(days=horizon_days)
    train_cut, hold_cut = as_of - 2 * h, as_of - h
    tables = (customers, orders, visits, tickets, activities)
    sets = [
        _labelled(tables, what, cut, as_of, horizon_days, max_lapse_days, folds)
        for what, cut in (("training", train_cut), ("holdout", hold_cut))
    ]
    (x_train, y_train), (x_hold, y_hold) = sets

    min_leaf = max(20, len(x_train) // 100)
    specs = {"logistic": _logistic(random_state), "tree": _tree(random_state, tree_depth, min_leaf)}
    models, rows, lift, importance = {}, [], {}, {}
    holdout = pd.DataFrame({"churned": y_hold})
    for name, base in specs.items():
        m = _calibrated(base, calibration, folds, random_state).fit(x_train.to_numpy(), y_train.to_numpy())
        p = m.predict_proba(x_hold.to_numpy())[:, 1]
        models[name] = m
        holdout[name] = p
        lift[name] = lift_table(y_hold.to_numpy(), p)
        importance[name] = _importance(name, m)
        rows.append(_scores(name, y_hold, p, lift[name], y_train))
    metrics = pd.DataFrame(rows)
    chosen = str(metrics.loc[metrics["pr_auc"].idxmax(), "model"])
    metrics["chosen"] = metrics["model"] == chosen
    final = None
    if refit:
        final = _calibrated(specs[chosen], calibration, folds, random_state).fit(x_hold.to_numpy(), y_hold.to_numpy())
    return ChurnModelResult(
        as_of, train_cut, hold_cut, horizon_days, metrics, lift, importance, models, chosen, holdout, final
    )


def _matrix(features: pd.DataFrame) -> np.ndarray:
    missing = [f for f in FEATURES if f not in features.columns]
    if missing:
        raise ValueError(f"features lack column(s) {', '.join(missing)}: build them with build_features")
    return features[list(FEATURES)].to_numpy(dtype=float)


def score(model: ChurnModelResult | Any, features: pd.DataFrame) -> pd.Series:
    """Return each customer's churn probability within the horizon, by customer_id.

    ``model`` is a :class:`ChurnModelResult` (its scoring model) or a fitted classifier.
    """
    m = model.model if isinstance(model, ChurnModelResult) else model
    p = m.predict_proba(_matrix(features))[:, 1]
    return pd.Series(p, index=features.index, name="churn_probability")


def contributions(model: ChurnModelResult | Any, features: pd.DataFrame) -> pd.DataFrame:
    """Return each feature's push towards churn per customer.

    Logistic regression: coefficient × standardised (log) value; decision tree: the change
    in churn share at each split on the customer's path, summed per feature.
    """
    m = model.model if isinstance(model, ChurnModelResult) else model
    base = _base(m)
    x = _matrix(features)
    clf = base.named_steps["clf"]
    if isinstance(clf, LogisticRegression):
        z = base[:-1].transform(x)
        c = z * clf.coef_[0]
    else:
        tree = clf.tree_
        v = tree.value[:, 0, :]
        share = v[:, 1] / np.maximum(v.sum(axis=1), 1e-12)
        parent = np.full(tree.node_count, -1)
        for side in (tree.children_left, tree.children_right):
            has = side >= 0
            parent[side[has]] = np.flatnonzero(has)
        child = np.flatnonzero(parent >= 0)
        delta = sp.csr_matrix(
            (share[child] - share[parent[child]], (child, tree.feature[parent[child]])),
            shape=(tree.node_count, len(FEATURES)),
        )
        xt = base[:-1].transform(x) if len(base) > 1 else x
        c = (clf.decision_path(xt) @ delta).toarray()
    return pd.DataFrame(c, index=features.index, columns=list(FEATURES))


def drivers(model: ChurnModelResult | Any, features: pd.DataFrame, top: int = 2) -> pd.Series:
    """Return each customer's top model drivers as text, e.g. 'days since last visit 120, visits in 90 days 0'.

    A driver is a feature pushing towards churn whose value is on its risky side of
    the average (:data:`RISKY_SIDE`), so correlated features that offset each other
    in the model are not shown as reasons.
    """
    c = contributions(model, features).to_numpy()
    x = _matrix(features)
    side = np.array([RISKY_SIDE.get(f, 0) for f in FEATURES])
    off = (side != 0) & (side * (x - x.mean(axis=0)) <= 0)
    c = np.where(off, 0.0, c)
    k = min(top, c.shape[1])
    best = np.argsort(-c, axis=1, kind="stable")[:, :k]
    names = np.array([FEATURE_LABELS[f] for f in FEATURES], dtype=object)
    text = pd.Series([""] * len(features), index=features.index, dtype=object)
    for j in range(k):
        col = best[:, j]
        val = np.take_along_axis(x, col[:, None], axis=1)[:, 0]
        push = np.take_along_axis(c, col[:, None], axis=1)[:, 0] > 0
        part = (
            pd.Series(names[col], index=features.index)
            + " "
            + pd.Series(np.round(val, 1), index=features.index).map("{:g}".format)
        )
        part = part.where(push, "")
        sep = np.where((text != "") & (part != ""), ", ", "")
        text = text + sep + part
    return text.rename("drivers")


def score_at(
    model: ChurnModelResult | None,
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    visits: pd.DataFrame,
    tickets: pd.DataFrame,
    activities: pd.DataFrame,
    as_of: Any,
    max_lapse_days: int | None = 365,
) -> tuple[pd.Series | None, pd.Series | None]:
    """Return each buyer's churn probability at ``as_of`` and its model drivers, by customer_id.

    ``(None, None)`` without a model (it could not be trained); empty series when no
    customer has bought within ``max_lapse_days`` before ``as_of``.
    """
    if model is None:
        return None, None
    try:
        features = build_features(customers, orders, visits, tickets, activities, as_of, max_lapse_days)
    except NotEnoughData:
        none = pd.Index([], name="customer_id", dtype=object)
        return (
            pd.Series([], index=none, dtype=float, name="churn_probability"),
            pd.Series([], index=none, dtype=object, name="drivers"),
        )
    return score(model, features), drivers(model, features)


METRIC_COLUMNS = [
    "model",
    "roc_auc",
    "pr_auc",
    "base_rate",
    "brier",
    "top_decile_lift",
    "n_train",
    "train_base_rate",
    "n_holdout",
    "chosen",
]
"""Columns of :attr:`ChurnModelResult.metrics`."""


def empty_metrics() -> pd.DataFrame:
    """Return the model comparison table with no rows, for a case where no churn model could be trained."""
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c == "model" else bool if c == "chosen" else float) for c in METRIC_COLUMNS}
    )


def empty_lift() -> pd.DataFrame:
    """Return a decile lift table with no rows (the columns of :func:`lift_table`)."""
    return lift_table(np.zeros(0), np.zeros(0)).iloc[:0]
