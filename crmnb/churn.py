"""Churn early warning (客户流失预警): rule-based risk levels, a leak-free model and a watch list.

Three parts, all DataFrame in, DataFrame out:

* :func:`rule_risk` grades every active buyer high / medium / low from visits, orders
  and complaints over the months before the as-of date (:class:`ChurnRules`).
* :func:`build_features` and :func:`label_churn` make a model table at a cutoff:
  features only from events dated *before* the cutoff, the label from the orders in
  ``[cutoff, cutoff + horizon)``. :func:`train_and_evaluate` trains at
  ``as_of − 2 × horizon`` and evaluates on the later cutoff ``as_of − horizon``, whose
  labels are fully observed by ``as_of``; :func:`score` gives probabilities at ``as_of``.
* :func:`watch_list` puts both together, with masked contact data and an action.

>>> result = train_and_evaluate(customers, orders, visits, tickets, activities, "2026-04-01")  # doctest: +SKIP
>>> features = build_features(customers, orders, visits, tickets, activities, "2026-04-01")  # doctest: +SKIP
>>> rules = rule_risk(customers, orders, visits, tickets, "2026-04-01")  # doctest: +SKIP
>>> watch_list(customers, rules, score(result, features), drivers=drivers(result, features))  # doctest: +SKIP

Dates are instants: ``"2026-04-01"`` means 2026-04-01 00:00, so everything on
2026-03-31 is before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from .errors import NotEnoughData
from .pii import mask_frame

RISK_LEVELS: tuple[str, ...] = ("high", "medium", "low")
"""Risk levels, most urgent first; rules are evaluated in this order."""

COMPLAINT_TYPES: frozenset[str] = frozenset({"complaint", "投诉"})
"""Ticket types that count as a complaint (compared trimmed and lower-cased)."""

DAY_NS = 86_400 * 10**9


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class ChurnRules:
    """Thresholds of the rule-based risk levels.

    high: visits/month below ``min_visits_per_month`` and at most ``max_orders`` orders
    and at least ``min_complaints`` complaints, all in the ``lookback_months`` before
    the as-of date; medium: low visits and no orders, or low visits and a complaint;
    low: everything else. Only buyers whose last order is at most
    ``active_within_days`` before the as-of date are graded (None: every buyer).
    """

    lookback_months: int = 3
    min_visits_per_month: float = 3.0
    max_orders: int = 0
    min_complaints: int = 1
    active_within_days: int | None = 365


def as_rules(rules: ChurnRules | Mapping[str, Any] | None) -> ChurnRules:
    """Return ``rules`` as :class:`ChurnRules`; a dict may set any of its fields.

    >>> as_rules({"min_visits_per_month": 2}).min_visits_per_month
    2
    """
    if rules is None:
        return ChurnRules()
    if isinstance(rules, ChurnRules):
        return rules
    if isinstance(rules, Mapping):
        known = {f.name for f in fields(ChurnRules)}
        unknown = sorted(set(rules) - known)
        if unknown:
            raise ValueError(f"unknown churn rule(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return ChurnRules(**rules)
    raise TypeError(f"rules must be ChurnRules, a dict or None, not {type(rules).__name__}")


def _ts(when: Any) -> pd.Timestamp:
    t = pd.Timestamp(when)
    if t.tzinfo is not None:
        t = t.tz_localize(None)
    return t


def _ns(s: pd.Series) -> np.ndarray:
    """Return a datetime column as int64 nanoseconds; NaT becomes the smallest int64."""
    return s.to_numpy(dtype="datetime64[ns]").view("int64")


NAT_NS = np.iinfo(np.int64).min


def _codes(ids: pd.Series | pd.Index, index: pd.Index) -> np.ndarray:
    """Return the position of each id in ``index`` (unique), −1 when absent or missing; hashed in Arrow."""
    try:
        a = pa.array(ids, from_pandas=True)
        v = pa.array(index, from_pandas=True)
        if a.type != v.type:
            v = v.cast(a.type)
        return pc.index_in(a, value_set=v).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    except (pa.ArrowException, TypeError, ValueError):
        return index.get_indexer(pd.Index(ids)).astype(np.intp)


def _buyers(customers: pd.DataFrame, orders: pd.DataFrame, cutoff: pd.Timestamp,
            max_lapse_days: int | None) -> pd.DataFrame:
    """Return first_order, last_order, orders and spend per customer who bought before ``cutoff``.

    Only customers of the customers table count; those whose last order is more than
    ``max_lapse_days`` before the cutoff are left out (already lost, not at risk).
    Sorted by customer_id.
    """
    ids = pd.Index(customers["customer_id"].dropna().unique()).sort_values()
    code = _codes(orders["customer_id"], ids)
    t = _ns(orders["order_date"])
    c = cutoff.value
    ok = (t != NAT_NS) & (t < c) & (code >= 0)
    code, t = code[ok], t[ok]
    amount = np.nan_to_num(orders["amount"].to_numpy(dtype=float, na_value=np.nan)[ok])
    n = np.bincount(code, minlength=len(ids))
    first = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(first, code, t)
    last = np.full(len(ids), NAT_NS)
    np.maximum.at(last, code, t)
    keep = n > 0
    if max_lapse_days is not None:
        keep &= last >= c - int(max_lapse_days) * DAY_NS
    out = pd.DataFrame({"first_order": first[keep], "last_order": last[keep], "orders_total": n[keep],
                        "spend_total": np.bincount(code, weights=amount, minlength=len(ids))[keep]},
                       index=ids[keep])
    out.index.name = "customer_id"
    return out


@dataclass
class _Events:
    """The rows of one event table dated before a cutoff, for the customers of an index."""

    pos: np.ndarray  # row positions in the table
    code: np.ndarray  # position of the customer in the index
    t: np.ndarray  # int64 ns
    n: int  # customers in the index

    def count(self, since: int | None = None, weights: np.ndarray | None = None,
              mask: np.ndarray | None = None) -> np.ndarray:
        """Return per customer the number (or sum of ``weights``) of events at or after ``since`` (ns; None: all)."""
        m = np.ones(len(self.t), bool) if since is None else self.t >= since
        if mask is not None:
            m &= mask
        w = None if weights is None else weights[m]
        return np.bincount(self.code[m], weights=w, minlength=self.n).astype(float)

    def last(self) -> np.ndarray:
        """Return per customer the time of the latest event (ns), NAT_NS when none."""
        out = np.full(self.n, NAT_NS, dtype=np.int64)
        np.maximum.at(out, self.code, self.t)
        return out


def _events(df: pd.DataFrame, when: str, index: pd.Index, cutoff: pd.Timestamp) -> _Events:
    """Return the rows of ``df`` dated before ``cutoff`` that belong to customers in ``index``."""
    t = _ns(df[when])
    code = _codes(df["customer_id"], index)
    pos = np.flatnonzero((t != NAT_NS) & (t < cutoff.value) & (code >= 0))
    return _Events(pos, code[pos], t[pos], len(index))


def _is_complaint(types: pd.Series) -> np.ndarray:
    return types.astype("string").str.strip().str.lower().isin(COMPLAINT_TYPES).fillna(False).to_numpy(dtype=bool)


def _plural(n: np.ndarray, one: str, many: str) -> np.ndarray:
    return np.where(n == 1, one, many)


def _fmt(values: np.ndarray, spec: str) -> pd.Series:
    return pd.Series(values).map(spec.format)


def rule_risk(customers: pd.DataFrame, orders: pd.DataFrame, visits: pd.DataFrame, tickets: pd.DataFrame,
              as_of: Any, rules: ChurnRules | Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Grade each active buyer's churn risk by the rules, evaluated high → medium → low.

    Returns one row per buyer (last order at most ``active_within_days`` before
    ``as_of``), sorted by customer_id: visits and visits_per_month (visits in the
    lookback / lookback months), orders and complaints in the lookback, last_order,
    spend_12m, the flags low_visits / no_orders / complained, risk_level and reasons.
    The lookback is ``[as_of − lookback_months, as_of)``.
    """
    r = as_rules(rules)
    as_of = _ts(as_of)
    start = (as_of - pd.DateOffset(months=int(r.lookback_months))).value
    year = (as_of - pd.DateOffset(years=1)).value
    buyers = _buyers(customers, orders, as_of, r.active_within_days)
    idx = buyers.index

    ov = _events(orders, "order_date", idx, as_of)
    amount = orders["amount"].to_numpy(dtype=float, na_value=np.nan)[ov.pos]
    vv = _events(visits, "visited_at", idx, as_of)
    tv = _events(tickets, "created_at", idx, as_of)
    complaint = _is_complaint(tickets["type"].iloc[tv.pos])

    n_visits = vv.count(start)
    per_month = n_visits / float(r.lookback_months)
    n_orders = ov.count(start)
    n_complaints = tv.count(start, mask=complaint)
    spend = ov.count(year, weights=np.nan_to_num(amount))

    low_visits = per_month < r.min_visits_per_month
    no_orders = n_orders <= r.max_orders
    complained = n_complaints >= r.min_complaints
    high = low_visits & no_orders & complained
    medium = (low_visits & no_orders) | (complained & low_visits)
    level = np.select([high, medium], ["high", "medium"], "low")

    months = f"{r.lookback_months:g} month" + ("" if r.lookback_months == 1 else "s")
    thr = f"{r.min_visits_per_month:g}"
    v_txt = _fmt(per_month, "{:.1f}") + " visits/month" + pd.Series(np.where(low_visits, f" < {thr}", ""))
    o_int = n_orders.astype(int)
    o_txt = pd.Series(np.where(
        o_int == 0, f"no order in {months}",
        pd.Series(o_int).astype(str).to_numpy() + _plural(o_int, " order", " orders") + f" in {months}"
        + np.where(no_orders, f" ≤ {r.max_orders}", "")))
    c_int = n_complaints.astype(int)
    c_txt = pd.Series(np.where(c_int == 0, "no complaint",
                               pd.Series(c_int).astype(str).to_numpy() + _plural(c_int, " complaint", " complaints")))
    reasons = v_txt + "; " + o_txt + "; " + c_txt

    return pd.DataFrame({
        "customer_id": idx.to_numpy(),
        "visits": n_visits.astype(int),
        "visits_per_month": per_month,
        "orders": o_int,
        "complaints": c_int,
        "last_order": pd.to_datetime(buyers["last_order"].to_numpy()),
        "spend_12m": spend,
        "low_visits": low_visits,
        "no_orders": no_orders,
        "complained": complained,
        "risk_level": level,
        "reasons": reasons.to_numpy(),
    })


# --------------------------------------------------------------------------- features and labels
FEATURES: tuple[str, ...] = (
    "recency_days", "tenure_days", "orders_total", "mean_gap_days", "recency_gap_ratio",
    "orders_90", "orders_180", "orders_365", "spend_90", "spend_180", "spend_365",
    "visits_30", "visits_90", "visits_trend", "days_since_visit",
    "tickets_90", "complaints_90", "complaints_365", "csat_mean", "csat_answers",
    "followups_90", "overdue_followups_90",
)
"""Model features, in column order."""

FEATURE_LABELS: dict[str, str] = {
    "recency_days": "days since last order",
    "tenure_days": "days as customer",
    "orders_total": "orders ever",
    "mean_gap_days": "mean days between orders",
    "recency_gap_ratio": "days since last order / usual gap",
    "orders_90": "orders in 90 days",
    "orders_180": "orders in 180 days",
    "orders_365": "orders in 365 days",
    "spend_90": "spend in 90 days",
    "spend_180": "spend in 180 days",
    "spend_365": "spend in 365 days",
    "visits_30": "visits in 30 days",
    "visits_90": "visits in 90 days",
    "visits_trend": "visit trend per month",
    "days_since_visit": "days since last visit",
    "tickets_90": "tickets in 90 days",
    "complaints_90": "complaints in 90 days",
    "complaints_365": "complaints in 365 days",
    "csat_mean": "mean CSAT",
    "csat_answers": "CSAT answers",
    "followups_90": "follow-ups done in 90 days",
    "overdue_followups_90": "overdue follow-ups in 90 days",
}
"""Plain-English name of each feature, for the reasons of the watch list."""

RISKY_SIDE: dict[str, int] = {
    "recency_days": 1, "tenure_days": -1, "orders_total": -1, "mean_gap_days": 1, "recency_gap_ratio": 1,
    "orders_90": -1, "orders_180": -1, "orders_365": -1, "spend_90": -1, "spend_180": -1, "spend_365": -1,
    "visits_30": -1, "visits_90": -1, "visits_trend": -1, "days_since_visit": 1,
    "tickets_90": 0, "complaints_90": 1, "complaints_365": 1, "csat_mean": -1, "csat_answers": 0,
    "followups_90": -1, "overdue_followups_90": 1,
}
"""Which side of the average reads as a churn signal: 1 above, −1 below, 0 either."""

CSAT_NEUTRAL = 3.0
"""CSAT given to customers never surveyed (the middle of the 1–5 scale)."""

VISIT_GAP_CAP = 365.0
"""Days since last visit are capped here; customers never seen get the cap."""


def build_features(customers: pd.DataFrame, orders: pd.DataFrame, visits: pd.DataFrame, tickets: pd.DataFrame,
                   activities: pd.DataFrame, cutoff: Any, max_lapse_days: int | None = 365) -> pd.DataFrame:
    """Build the model features at ``cutoff`` from events dated before it only.

    One row per customer with an order before the cutoff whose last order is at most
    ``max_lapse_days`` before it, indexed by customer_id (sorted), columns
    :data:`FEATURES`. CSAT counts only tickets resolved before the cutoff; a
    follow-up counts as overdue when it was due in the 90 days before the cutoff and
    not completed by then. Raises ValueError when no customer qualifies.
    """
    cutoff = _ts(cutoff)
    c = cutoff.value
    buyers = _buyers(customers, orders, cutoff, max_lapse_days)
    if buyers.empty:
        lapse = f" within the {max_lapse_days} days" if max_lapse_days is not None else ""
        raise NotEnoughData(
            f"no customers with an order before the cutoff {cutoff:%Y-%m-%d %H:%M}{lapse}: churn features need "
            f"customers who have bought; check the cutoff (orders table has {len(orders):,} rows"
            + (f", dated {orders['order_date'].min():%Y-%m-%d} to {orders['order_date'].max():%Y-%m-%d})"
               if orders["order_date"].notna().any() else ", none with a date)"),
            f"截至{cutoff:%Y-%m-%d %H:%M}没有{('近' + str(max_lapse_days) + '天内') if max_lapse_days is not None else ''}"
            f"有购买的客户：流失特征需要已购买的客户（订单表共 {len(orders):,} 行）",
            1, 0,
        )
    idx = buyers.index
    d = {k: c - k * DAY_NS for k in (30, 90, 180, 365)}

    ov = _events(orders, "order_date", idx, cutoff)
    amount = np.nan_to_num(orders["amount"].to_numpy(dtype=float, na_value=np.nan)[ov.pos])
    first, last, n_total = buyers["first_order"].to_numpy(), buyers["last_order"].to_numpy(), buyers["orders_total"].to_numpy()
    recency = (c - last) / DAY_NS
    began = first.copy()  # the earlier of created_at and the first order
    cc, created = _codes(customers["customer_id"], idx), _ns(customers["created_at"])
    has = (cc >= 0) & (created != NAT_NS)
    np.minimum.at(began, cc[has], created[has])
    tenure = (c - began) / DAY_NS
    since_first = (c - first) / DAY_NS
    mean_gap = np.where(n_total >= 2, (last - first) / DAY_NS / np.maximum(n_total - 1, 1), since_first)
    mean_gap = np.maximum(mean_gap, 1.0)

    vv = _events(visits, "visited_at", idx, cutoff)
    v30, v90 = vv.count(d[30]), vv.count(d[90])
    v_last = vv.last()
    since_visit = np.where(v_last == NAT_NS, VISIT_GAP_CAP, np.minimum((c - v_last) / DAY_NS, VISIT_GAP_CAP))

    tv = _events(tickets, "created_at", idx, cutoff)
    complaint = _is_complaint(tickets["type"].iloc[tv.pos])
    resolved = _ns(tickets["resolved_at"])[tv.pos]
    csat = tickets["csat"].to_numpy(dtype=float, na_value=np.nan)[tv.pos]
    answered = (resolved != NAT_NS) & (resolved < c) & ~np.isnan(csat)
    csat_n = tv.count(mask=answered)
    csat_sum = tv.count(weights=np.nan_to_num(csat), mask=answered)

    done = _events(activities, "completed_at", idx, cutoff)
    due = _events(activities, "due_at", idx, cutoff)
    completed = _ns(activities["completed_at"])[due.pos]
    open_at_cutoff = (completed == NAT_NS) | (completed >= c)

    out = pd.DataFrame({
        "recency_days": recency,
        "tenure_days": tenure,
        "orders_total": n_total.astype(float),
        "mean_gap_days": mean_gap,
        "recency_gap_ratio": recency / mean_gap,
        "orders_90": ov.count(d[90]),
        "orders_180": ov.count(d[180]),
        "orders_365": ov.count(d[365]),
        "spend_90": ov.count(d[90], weights=amount),
        "spend_180": ov.count(d[180], weights=amount),
        "spend_365": ov.count(d[365], weights=amount),
        "visits_30": v30,
        "visits_90": v90,
        "visits_trend": v30 - (v90 - v30) / 2.0,
        "days_since_visit": since_visit,
        "tickets_90": tv.count(d[90]),
        "complaints_90": tv.count(d[90], mask=complaint),
        "complaints_365": tv.count(d[365], mask=complaint),
        "csat_mean": np.where(csat_n > 0, csat_sum / np.maximum(csat_n, 1), CSAT_NEUTRAL),
        "csat_answers": csat_n,
        "followups_90": done.count(d[90]),
        "overdue_followups_90": due.count(d[90], mask=open_at_cutoff),
    }, index=idx)
    return out[list(FEATURES)]


def label_churn(orders: pd.DataFrame, customers_index: pd.Index | pd.DataFrame | pd.Series, cutoff: Any,
                horizon_days: int = 90) -> pd.Series:
    """Label each customer churned (1) when they placed no order in ``[cutoff, cutoff + horizon_days)``.

    Only that window is read, so the label never sees the features' past. The
    orders must cover the whole window, else late buyers look churned.
    """
    if isinstance(customers_index, (pd.DataFrame, pd.Series)):
        customers_index = customers_index.index
    lo = _ts(cutoff)
    hi = lo + pd.Timedelta(days=horizon_days)
    t = _ns(orders["order_date"])
    inside = (t != NAT_NS) & (t >= lo.value) & (t < hi.value)
    index = pd.Index(customers_index)
    code = _codes(orders["customer_id"], index)
    bought = np.bincount(code[inside & (code >= 0)], minlength=len(index)) > 0
    return pd.Series((~bought).astype(np.int8), index=customers_index, name="churned")


# --------------------------------------------------------------------------- models
def _signed_log1p(x: np.ndarray) -> np.ndarray:
    """Return sign(x)·log(1 + |x|), taming heavy tails (spend, days) before scaling."""
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.log1p(np.abs(x))


def _logistic(random_state: int) -> Pipeline:
    return Pipeline([
        ("log", FunctionTransformer(_signed_log1p)),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(class_weight="balanced", solver="newton-cholesky", max_iter=200,
                                   random_state=random_state)),
    ])


def _tree(random_state: int, depth: int, min_leaf: int) -> Pipeline:
    return Pipeline([
        ("clf", DecisionTreeClassifier(max_depth=depth, min_samples_leaf=min_leaf, class_weight="balanced",
                                       random_state=random_state)),
    ])


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
    return pd.DataFrame({
        "decile": np.arange(1, bins + 1),
        "customers": n,
        "churners": k.astype(int),
        "churn_rate": rate,
        "lift": rate / base if base else np.nan,
        "cumulative_capture": np.cumsum(k) / total if total else np.nan,
    })


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


def train_and_evaluate(customers: pd.DataFrame, orders: pd.DataFrame, visits: pd.DataFrame, tickets: pd.DataFrame,
                       activities: pd.DataFrame, as_of: Any, horizon_days: int = 90, max_lapse_days: int | None = 365,
                       tree_depth: int = 4, calibration: str = "sigmoid", folds: int = 3, random_state: int = 0,
                       refit: bool = True) -> ChurnModelResult:
    """Train logistic regression and a decision tree at one cutoff and evaluate them on a later one.

    Train cutoff ``as_of − 2·horizon``, holdout cutoff ``as_of − horizon``: the
    training labels end where the holdout begins and the holdout labels end at
    ``as_of``. Both models are class-balanced and calibrated on out-of-fold
    predictions of the training set. The chosen model has the best holdout PR-AUC;
    with ``refit`` its spec is refitted on the holdout cutoff to score at ``as_of``.
    """
    as_of = _ts(as_of)
    h = pd.Timedelta(days=horizon_days)
    train_cut, hold_cut = as_of - 2 * h, as_of - h
    tables = (customers, orders, visits, tickets, activities)
    sets = []
    for what, cut in (("training", train_cut), ("holdout", hold_cut)):
        try:
            x = build_features(*tables, cut, max_lapse_days)
        except NotEnoughData:
            x = pd.DataFrame(columns=list(FEATURES), index=pd.Index([], name="customer_id"), dtype=float)
        y = label_churn(orders, x.index, cut, horizon_days)
        churners = int(y.sum())
        if y.nunique() < 2 or y.value_counts().min() < folds:
            raise NotEnoughData(
                f"Churn model not trained: it needs customers who bought before the {what} cutoff {cut:%Y-%m-%d} "
                f"({'two horizons' if what == 'training' else 'one horizon'} of {horizon_days} days before "
                f"{as_of:%Y-%m-%d}), at least {folds} who then stopped buying and {folds} who went on; this data has "
                f"{len(y)} such customer{'s' if len(y) != 1 else ''}, {churners} of whom stopped.",
                f"未训练流失预测模型：需要在{'训练' if what == 'training' else '检验'}截止日{cut:%Y-%m-%d}"
                f"（{as_of:%Y-%m-%d}之前{2 if what == 'training' else 1}个{horizon_days}天的预测期）之前有购买的客户，"
                f"其中至少{folds}位随后停止购买、{folds}位继续购买；本数据有{len(y)}位这样的客户，其中{churners}位停止购买。",
                folds, min(churners, len(y) - churners))
        sets.append((x, y))
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
        rows.append({"model": name, "roc_auc": roc_auc_score(y_hold, p), "pr_auc": average_precision_score(y_hold, p),
                     "base_rate": float(y_hold.mean()), "brier": brier_score_loss(y_hold, p),
                     "top_decile_lift": float(lift[name]["lift"].iloc[0]),
                     "n_train": len(y_train), "train_base_rate": float(y_train.mean()), "n_holdout": len(y_hold)})
    metrics = pd.DataFrame(rows)
    chosen = str(metrics.loc[metrics["pr_auc"].idxmax(), "model"])
    metrics["chosen"] = metrics["model"] == chosen
    final = None
    if refit:
        final = _calibrated(specs[chosen], calibration, folds, random_state).fit(x_hold.to_numpy(), y_hold.to_numpy())
    return ChurnModelResult(as_of, train_cut, hold_cut, horizon_days, metrics, lift, importance, models, chosen,
                            holdout, final)


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
        delta = sp.csr_matrix((share[child] - share[parent[child]], (child, tree.feature[parent[child]])),
                              shape=(tree.node_count, len(FEATURES)))
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
        part = pd.Series(names[col], index=features.index) + " " + pd.Series(np.round(val, 1), index=features.index).map("{:g}".format)
        part = part.where(push, "")
        sep = np.where((text != "") & (part != ""), ", ", "")
        text = text + sep + part
    return text.rename("drivers")


def score_at(model: ChurnModelResult | None, customers: pd.DataFrame, orders: pd.DataFrame, visits: pd.DataFrame,
             tickets: pd.DataFrame, activities: pd.DataFrame, as_of: Any,
             max_lapse_days: int | None = 365) -> tuple[pd.Series | None, pd.Series | None]:
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
        return (pd.Series([], index=none, dtype=float, name="churn_probability"),
                pd.Series([], index=none, dtype=object, name="drivers"))
    return score(model, features), drivers(model, features)


METRIC_COLUMNS = ["model", "roc_auc", "pr_auc", "base_rate", "brier", "top_decile_lift", "n_train", "train_base_rate",
                  "n_holdout", "chosen"]
"""Columns of :attr:`ChurnModelResult.metrics`."""


def empty_metrics() -> pd.DataFrame:
    """Return the model comparison table with no rows, for a case where no churn model could be trained."""
    return pd.DataFrame({c: pd.Series(dtype=object if c == "model" else bool if c == "chosen" else float)
                         for c in METRIC_COLUMNS})


def empty_lift() -> pd.DataFrame:
    """Return a decile lift table with no rows (the columns of :func:`lift_table`)."""
    return lift_table(np.zeros(0), np.zeros(0)).iloc[:0]


# --------------------------------------------------------------------------- watch list
ACTIONS: dict[str, tuple[str, str]] = {
    "manager_review": ("account review by the manager", "主管牵头大客户复盘"),
    "service_recovery": ("service recovery call by the account owner within 48 h", "客户负责人48小时内致电修复服务"),
    "re_engage": ("re-engagement offer", "发送召回/复购优惠"),
    "check_in": ("check-in call by the account owner", "客户负责人电话回访"),
    "routine": ("keep the regular contact plan", "保持常规联系"),
}
"""Suggested actions (干预建议): key → (English, Chinese)."""

WATCH_COLUMNS = ["customer_id", "name", "company", "phone", "department", "owner_rep", "risk_level",
                 "churn_probability", "reasons", "action"]


def suggest_actions(risk_level: pd.Series, complained: pd.Series, low_activity: pd.Series, high_value: pd.Series,
                    probability: pd.Series | None = None, language: str = "en",
                    check_in_probability: float = 0.8) -> pd.Series:
    """Return the suggested actions per customer, most important first, joined by '; '.

    High or medium risk: a high-value account gets a manager review, a complaint a
    service-recovery call, low visits or no orders a re-engagement offer. Low risk
    gets a check-in when the model's probability reaches ``check_in_probability``,
    else the regular plan.
    """
    lang = 1 if language == "zh" else 0
    at_risk = risk_level.isin(["high", "medium"]).to_numpy()
    prob = np.zeros(len(risk_level)) if probability is None else np.nan_to_num(np.asarray(probability, float))
    steps = [
        ("manager_review", at_risk & np.asarray(high_value, bool)),
        ("service_recovery", np.asarray(complained, bool)),
        ("re_engage", at_risk & np.asarray(low_activity, bool)),
        ("check_in", ~at_risk & (prob >= check_in_probability)),
    ]
    text = pd.Series([""] * len(risk_level), index=risk_level.index, dtype=object)
    for key, on in steps:
        word = ACTIONS[key][lang]
        text = text + np.where(on & (text != ""), "; ", "") + np.where(on, word, "")
    return text.where(text != "", ACTIONS["routine"][lang]).rename("action")


def watch_list(customers: pd.DataFrame, rule_table: pd.DataFrame, probabilities: pd.Series | None = None,
               top_n: int | None = 50, mask: bool = True, drivers: pd.Series | None = None,
               high_value_quantile: float = 0.8, check_in_probability: float = 0.8,
               language: str = "en") -> pd.DataFrame:
    """Return the churn watch list: who, owner, risk level, probability, reasons and action.

    One row per customer of ``rule_table`` (with probabilities: those scored too),
    sorted by risk level, then probability (highest first), then customer_id, cut to
    ``top_n``. Names, companies and phones are masked unless ``mask`` is False;
    e-mails are left out. High value: spend in the last 12 months at or above the
    ``high_value_quantile`` of the graded customers. Actions: :func:`suggest_actions`.
    """
    rt = rule_table.reset_index(drop=True)
    if probabilities is not None:
        at = _codes(rt["customer_id"], pd.Index(probabilities.index))
        rt = rt[at >= 0].reset_index(drop=True)
        prob = probabilities.to_numpy(dtype=float)[at[at >= 0]]
    else:
        prob = np.full(len(rt), np.nan)
    spend = rt["spend_12m"].astype(float)
    high_value = ((spend >= spend.quantile(high_value_quantile)) & (spend > 0)).to_numpy() if len(rt) else np.zeros(0, bool)
    rank = pd.Categorical(rt["risk_level"], categories=list(RISK_LEVELS), ordered=True).codes
    order = np.lexsort((rt["customer_id"].astype(str).to_numpy(), -np.nan_to_num(prob, nan=-1.0), rank))
    if top_n is not None:
        order = order[:top_n]
    rt, prob, high_value = rt.iloc[order].reset_index(drop=True), prob[order], high_value[order]

    who = ["name", "company", "phone", "department", "owner_rep"]
    row = _first(customers["customer_id"], rt["customer_id"])
    people = customers.iloc[np.maximum(row, 0)][who].reset_index(drop=True)
    people.loc[row < 0, :] = None  # customers missing from the customers table
    if mask:
        people = mask_frame(people)
    reasons = rt["reasons"].astype(object)
    if drivers is not None:
        d = rt["customer_id"].map(drivers).fillna("").astype(object)
        reasons = reasons + np.where(d != "", "; model: ", "") + d
    action = suggest_actions(rt["risk_level"], rt["complained"], rt["low_visits"] | rt["no_orders"],
                             pd.Series(high_value), pd.Series(prob), language, check_in_probability)
    out = pd.DataFrame({
        "customer_id": rt["customer_id"].to_numpy(),
        **{c: people[c].to_numpy() for c in who},
        "risk_level": rt["risk_level"].to_numpy(),
        "churn_probability": prob,
        "reasons": reasons.to_numpy(),
        "action": action.to_numpy(),
    })
    return out[WATCH_COLUMNS]


def _first(ids: pd.Series, wanted: pd.Series) -> np.ndarray:
    """Return the row position of the first occurrence of each wanted id in ``ids`` (−1 when absent)."""
    rows = np.flatnonzero(~ids.duplicated().to_numpy() & ids.notna().to_numpy())
    pos = _codes(wanted, pd.Index(ids.iloc[rows]))
    return np.where(pos >= 0, rows[np.maximum(pos, 0)], -1)
