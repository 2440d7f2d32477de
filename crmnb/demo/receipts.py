"""Receipts: the finance system's record of payments, one per won deal, 3-42 days after the win.

A few won deals have no receipt and a few receipts differ slightly from the deal's amount
(planted, see :mod:`crmnb.demo.faults`): reconciling CRM against finance should find them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.clock import DAY, EXPORT_END
from crmnb.demo.context import Context
from crmnb.demo.faults import drop_receipts, mismatch_receipts
from crmnb.demo.sales import Opportunities


@dataclass(frozen=True)
class Receipts:
    """The receipts by time, and the planted differences from the CRM."""

    opp: np.ndarray
    time: np.ndarray
    amount: np.ndarray
    missing_opps: np.ndarray
    """Won deals without a receipt, sorted."""
    mismatch_opps: np.ndarray
    """Won deals whose receipt amount differs."""


def draw_receipts(ctx: Context, opps: Opportunities) -> Receipts:
    """Return one receipt per won deal, with a few planted mismatches and gaps."""
    rng = ctx.rng
    won = np.flatnonzero(opps.status == 1)
    closed = opps.closed[won]
    lag = (rng.uniform(3, 42, len(won)) * DAY).astype(np.int64)
    late = closed + lag > EXPORT_END
    room = np.maximum(EXPORT_END - closed, 0)
    received = np.where(late, closed + (room * rng.uniform(0.3, 1.0, len(won))).astype(np.int64), closed + lag)
    amount = opps.amount[won].copy()
    missing = drop_receipts(ctx, closed)
    keep = np.ones(len(won), bool)
    keep[missing] = False
    mis = mismatch_receipts(ctx, amount, keep)
    sel = np.flatnonzero(keep)
    order = sel[np.argsort(received[sel], kind="stable")]
    return Receipts(won[order], received[order], amount[order], np.sort(won[missing]), won[mis])
