"""The churn watch list: who is at risk, by the rules and the model, with the reasons and a suggested action."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from crmnb.analysis.churn import FEATURE_LABELS, RISK_LEVELS
from crmnb.analysis.events import codes
from crmnb.frames import isin, rows_where
from crmnb.present.masking import mask_frame
from crmnb.present.words import t

ACTIONS: tuple[str, ...] = ("manager_review", "service_recovery", "re_engage", "check_in", "routine")
"""Suggested actions (干预建议), worded by the catalogue's ``watch.action.<key>``."""

WATCH_COLUMNS = [
    "customer_id",
    "name",
    "company",
    "phone",
    "department",
    "owner_rep",
    "risk_level",
    "churn_probability",
    "reasons",
    "action",
]

WHO = ["name", "company", "phone", "department", "owner_rep"]
"""The columns of the customers the watch list shows of each listed customer."""


def suggest_actions(
    risk_level: pd.Series,
    complained: pd.Series,
    low_activity: pd.Series,
    high_value: pd.Series,
    probability: pd.Series | None = None,
    *,
    language: str,
    check_in_probability: float = 0.8,
) -> pd.Series:
    """Return the suggested actions per customer, most important first, joined by '; '.

    High or medium risk: a high-value account gets a manager review, a complaint a
    service-recovery call, low visits or no orders a re-engagement offer. Low risk
    gets a check-in when the model's probability reaches ``check_in_probability``,
    else the regular plan.
    """
    at_risk = risk_level.isin(["high", "medium"]).to_numpy()
    prob = np.zeros(len(risk_level)) if probability is None else np.nan_to_num(np.asarray(probability, float))
    steps = [
        ("manager_review", at_risk & np.asarray(high_value, bool)),
        ("service_recovery", np.asarray(complained, bool)),
        ("re_engage", at_risk & np.asarray(low_activity, bool)),
        ("check_in", ~at_risk & (prob >= check_in_probability)),
    ]
    text = pd.Series([""] * len(risk_level), index=risk_level.index, dtype=object)
    sep = "；" if language == "zh" else "; "
    for key, on in steps:
        word = t(f"watch.action.{key}", language)
        text = text + np.where(on & (text != ""), sep, "") + np.where(on, word, "")
    return text.where(text != "", t("watch.action.routine", language)).rename("action")


def _ranked(
    rule_table: pd.DataFrame, probabilities: pd.Series | None, top_n: int | None, high_value_quantile: float
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Return the watch list's rule rows, probabilities and high-value flags, in watch-list order, cut to
    ``top_n``: risk level, then probability (highest first), then customer_id."""
    rt = rule_table.reset_index(drop=True)
    if probabilities is not None:
        at = codes(rt["customer_id"], pd.Index(probabilities.index))
        rt = rt[at >= 0].reset_index(drop=True)
        prob = probabilities.to_numpy(dtype=float)[at[at >= 0]]
    else:
        prob = np.full(len(rt), np.nan)
    spend = rt["spend_12m"].astype(float)
    high_value = (
        ((spend >= spend.quantile(high_value_quantile)) & (spend > 0)).to_numpy() if len(rt) else np.zeros(0, bool)
    )
    rank = pd.Categorical(rt["risk_level"], categories=list(RISK_LEVELS), ordered=True).codes
    order = np.lexsort((rt["customer_id"].astype(str).to_numpy(), -np.nan_to_num(prob, nan=-1.0), rank))
    if top_n is not None:
        order = order[:top_n]
    return rt.iloc[order].reset_index(drop=True), prob[order], high_value[order]


def watch_list(
    customers: pd.DataFrame,
    rule_table: pd.DataFrame,
    probabilities: pd.Series | None = None,
    top_n: int | None = 50,
    mask: bool = True,
    drivers: pd.Series | None = None,
    *,
    language: str,
    high_value_quantile: float = 0.8,
    check_in_probability: float = 0.8,
) -> pd.DataFrame:
    """Return the churn watch list: who, owner, risk level, probability, reasons and action.

    One row per customer of ``rule_table`` (with probabilities: those scored too),
    sorted by risk level, then probability (highest first), then customer_id, cut to
    ``top_n``. Names, companies and phones are masked unless ``mask`` is False;
    e-mails are left out. High value: spend in the last 12 months at or above the
    ``high_value_quantile`` of the graded customers. Actions: :func:`suggest_actions`.
    """
    rt, prob, high_value = _ranked(rule_table, probabilities, top_n, high_value_quantile)
    row = _first(customers["customer_id"], rt["customer_id"])
    people = customers.iloc[np.maximum(row, 0)][WHO].reset_index(drop=True)
    people.loc[row < 0, :] = None  # customers missing from the customers table
    if mask:
        people = mask_frame(people)
    reasons = rt["reasons"].astype(object)
    if drivers is not None:
        d = rt["customer_id"].map(drivers).fillna("").astype(object)
        reasons = reasons + np.where(d != "", "; model: ", "") + d
    reasons = reasons.map(lambda r: reasons_in(r, language) if isinstance(r, str) else r)
    action = suggest_actions(
        rt["risk_level"],
        rt["complained"],
        rt["low_visits"] | rt["no_orders"],
        pd.Series(high_value),
        pd.Series(prob),
        language=language,
        check_in_probability=check_in_probability,
    )
    out = pd.DataFrame(
        {
            "customer_id": rt["customer_id"].to_numpy(),
            **{c: people[c].to_numpy() for c in WHO},
            "risk_level": rt["risk_level"].to_numpy(),
            "churn_probability": prob,
            "reasons": reasons.to_numpy(),
            "action": action.to_numpy(),
        }
    )
    return out[WATCH_COLUMNS]


def listed_customers(
    tables, department: str, rule_table: pd.DataFrame, probabilities: pd.Series | None = None, top_n: int | None = 50
) -> pd.DataFrame:
    """Return the rows of the department's customers that :func:`watch_list` shows with the same arguments: those
    of the customers it lists, with their id and :data:`WHO`, in the table's order.

    The watch list takes each listed customer's first row among the department's; reading those rows alone
    (fifty, not the department's hundreds of thousands with their names and phones) gives it the same rows.
    When none of them is the department's, the department's rows are read (the list then shows their first
    row blanked, as it does from all of them).
    """
    ids = _ranked(rule_table, probabilities, top_n, 0.8)[0]["customer_id"].dropna().unique()  # any quantile: the
    # high-value flags do not change the order
    columns = ["customer_id", *WHO]
    rows = rows_where(tables, "customers", "customer_id", ids, columns)
    rows = rows[isin(rows["department"], [department])].reset_index(drop=True)
    return rows if len(rows) else rows_where(tables, "customers", "department", [department], columns)


REASON_PATTERNS = (
    (r"([\d.]+) visits/month < ([\d.]+)", "visits_below", ("v", "limit")),
    (r"([\d.]+) visits/month", "visits", ("v",)),
    (r"no order in (\d+) months?", "no_order", ("months",)),
    (r"(\d+) orders? in (\d+) months? ≤ (\d+)", "orders_at_most", ("n", "months", "limit")),
    (r"(\d+) orders? in (\d+) months?", "orders", ("n", "months")),
    (r"no complaint", "no_complaint", ()),
    (r"(\d+) complaints?", "complaints", ("n",)),
)
"""The churn rules' reasons as crmnb.analysis.churn words them (in English, in the rule table), by message."""


def reasons_in(text: str, lang: str) -> str:
    """Return a watch-list reason ("1.3 visits/month < 3; no order in 3 months; model: …") in ``lang``.

    The rule table keeps its reasons in English; a part this does not know stays as it is.

    >>> reasons_in("0.7 visits/month < 3; 1 order in 3 months; no complaint; model: mean CSAT 2", "zh")
    '月均到访 0.7 次（低于 3 次）；近 3 个月 1 笔订单；无投诉；模型：平均满意度评分 2'
    """
    if lang == "en":
        return text
    parts = []
    for part in text.split("; "):
        if part.startswith("model: "):
            parts.append(t("words.watch.model", lang) + _drivers_in(part[len("model: ") :], lang))
            continue
        for pattern, key, names in REASON_PATTERNS:
            m = re.fullmatch(pattern, part)
            if m:
                part = t(f"words.watch.{key}", lang, **dict(zip(names, m.groups())))
                break
        parts.append(part)
    return "；".join(parts)


def _drivers_in(text: str, lang: str) -> str:
    """Return the churn model's drivers ("complaints in 90 days 1, mean CSAT 2") in ``lang``."""
    labels = sorted(FEATURE_LABELS.items(), key=lambda kv: -len(kv[1]))  # the longest label first
    out = []
    for part in text.split(", "):
        for feature, label in labels:
            if part.startswith(label + " "):
                part = t(f"words.feature.{feature}", lang) + part[len(label) :]
                break
        out.append(part)
    return "，".join(out)


def _first(ids: pd.Series, wanted: pd.Series) -> np.ndarray:
    """Return the row position of the first occurrence of each wanted id in ``ids`` (−1 when absent)."""
    rows = np.flatnonzero(~ids.duplicated().to_numpy() & ids.notna().to_numpy())
    pos = codes(wanted, pd.Index(ids.iloc[rows]))
    return np.where(pos >= 0, rows[np.maximum(pos, 0)], -1)
