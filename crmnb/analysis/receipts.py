"""Cross-validation of CRM data against finance records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmnb.frames import isin
from crmnb.present.words import t


@dataclass
class Reconciliation:
    """Won deals matched with finance receipts."""

    detail: pd.DataFrame  # one row per won deal or stray receipt, with its status
    summary: dict  # counts, amounts, difference rate and verdict


STATUS_ORDER = ["mismatch", "no receipt", "receipt without won deal", "matched"]

OPPORTUNITY_COLUMNS = ("opportunity_id", "status", "amount", "customer_id", "closed_at")
"""The columns of the opportunities the check reads: a step passes only these, not the whole table (and, for a
check over every period, only the won deals: the others take part only in a span's)."""
RECEIPT_COLUMNS = ("receipt_id", "opportunity_id", "amount")
"""The columns of the receipts the check reads."""


def _paid(receipts: pd.DataFrame, opportunities: pd.DataFrame, in_span: pd.Series | None) -> pd.DataFrame:
    """Return the receipts' total and count per opportunity; with ``in_span`` (the deals closed in the span), only
    the receipts of those deals (a lost deal's too) and of deals the CRM does not know."""
    paid = (
        receipts.groupby("opportunity_id")
        .agg(finance_amount=("amount", "sum"), receipts=("amount", "size"))
        .reset_index()
    )
    if in_span is None:
        return paid
    return paid[
        isin(paid["opportunity_id"], opportunities.loc[in_span, "opportunity_id"])
        | ~isin(paid["opportunity_id"], opportunities["opportunity_id"])
    ]


def _summary(won: pd.DataFrame, d: pd.DataFrame, max_diff_rate: float) -> dict:
    """Return the reconciliation's counts, totals and difference rate, and whether it passes ``max_diff_rate``."""
    crm_total = float(won["crm_amount"].sum())
    abs_diff = float(d["difference"].abs().sum())
    rate = abs_diff / crm_total if crm_total else float("nan")
    summary = {
        "won_deals": int(len(won)),
        "matched": int((d["status"] == "matched").sum()),
        "mismatched": int((d["status"] == "mismatch").sum()),
        "no_receipt": int((d["status"] == "no receipt").sum()),
        "stray_receipts": int((d["status"] == "receipt without won deal").sum()),
        "crm_amount": crm_total,
        "finance_amount": float(d["finance_amount"].sum()),
        "abs_difference": abs_diff,
        "difference_rate": rate,
        "max_diff_rate": max_diff_rate,
        "passes": bool(rate <= max_diff_rate) if crm_total else True,
    }
    return summary


def reconcile_receipts(
    opportunities: pd.DataFrame,
    receipts: pd.DataFrame,
    tolerance: float = 1.0,
    max_diff_rate: float = 0.01,
    start=None,
    end=None,
) -> Reconciliation:
    """Match won deals to receipts by opportunity and list every deal that does not agree.

    A deal matches when the receipts for it add up to the won amount within
    ``tolerance`` (CNY). The difference rate is the sum of absolute differences over
    the won amount; it passes when at most ``max_diff_rate``. ``start``/``end`` limit
    the deals, and the receipts for them, to those closed in that span (inclusive).

    >>> opp = pd.DataFrame({"opportunity_id": ["O1"], "status": ["won"], "amount": [100.0],
    ...                     "customer_id": ["C1"], "closed_at": [pd.Timestamp("2025-01-02")]})
    >>> rec = pd.DataFrame({"opportunity_id": ["O1"], "amount": [101.0]})
    >>> reconcile_receipts(opp, rec).summary["mismatched"]
    0
    """
    in_span = pd.Series(True, index=opportunities.index)
    if start is not None:
        in_span &= opportunities["closed_at"] >= pd.Timestamp(start)
    if end is not None:
        in_span &= opportunities["closed_at"] < pd.Timestamp(end) + pd.Timedelta(days=1)
    won = opportunities[in_span & (opportunities["status"] == "won")]
    won = won[["opportunity_id", "customer_id", "closed_at", "amount"]].rename(columns={"amount": "crm_amount"})
    paid = _paid(receipts, opportunities, in_span if start is not None or end is not None else None)
    d = won.merge(paid, on="opportunity_id", how="outer", indicator=True)
    d["difference"] = d["finance_amount"].fillna(0) - d["crm_amount"].fillna(0)
    d["difference_rate"] = d["difference"] / d["crm_amount"]
    status = np.select(
        [d["_merge"] == "left_only", d["_merge"] == "right_only", d["difference"].abs() > tolerance],
        ["no receipt", "receipt without won deal", "mismatch"],
        default="matched",
    )
    d["status"] = pd.Categorical(status, categories=STATUS_ORDER, ordered=True)
    d = d.drop(columns="_merge").sort_values(["status", "opportunity_id"]).reset_index(drop=True)
    summary = _summary(won, d, max_diff_rate)
    d["status"] = d["status"].astype(str)
    return Reconciliation(d, summary)


def describe(summary: dict, lang: str) -> str:
    """State the receipts check in one sentence, in ``lang``."""
    verdict = t("receipts.within" if summary["passes"] else "receipts.above", lang)
    return t("receipts.describe", lang, **{**summary, "verdict": verdict})
