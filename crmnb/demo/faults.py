"""The faults real CRM exports have, planted where the answer key (planted.json) can name them.

* duplicate customer records: the same person entered again later, with an extra or full-width
  space in the name, the company without 有限公司, the phone dashed or with +86, the e-mail in
  upper or title case; about half of the original's later orders, tickets and visits go to the copy;
* missing phone and e-mail cells on customers (never on duplicated ones);
* notes that trip spreadsheets and HTML (``=HYPERLINK(...)``, ``<script>``) on a few opportunities;
* won deals without a receipt, and receipts whose amount differs slightly from the deal's;
* ``activities.csv`` with a mix of date formats ('2025/3/4 10:05', '2025年3月4日 10:05').

The customers export also starts with a byte-order mark (see :mod:`crmnb.demo.tables`), and one
customer gets far more follow-ups than anyone else (:func:`crmnb.demo.activities.draw_heavy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.clock import DAY, EXPORT_END, START, snap
from crmnb.demo.context import Context
from crmnb.demo.vocab import OPP_NOTES, TRICKY_NOTES

DUPLICATE_VARIANTS = ("extra_space", "full_width_space", "company_without_suffix")
PHONE_FORMATS = ("digits", "dashed", "plus86")


@dataclass(frozen=True)
class Duplicates:
    """Duplicate customer records: each one's original account and how its text differs."""

    orig: np.ndarray
    created: np.ndarray
    dept: np.ndarray
    rep: np.ndarray
    variant: np.ndarray
    """Index into :data:`DUPLICATE_VARIANTS`."""
    phone_fmt: np.ndarray
    """Index into :data:`PHONE_FORMATS`."""
    email_case: np.ndarray
    """0 upper case, 1 title case."""
    index: np.ndarray
    """The duplicates' own account numbers (after every real account)."""


def draw_duplicates(ctx: Context, kind: np.ndarray, created: np.ndarray, dept: np.ndarray) -> Duplicates:
    """Return about 1.5 % duplicate records of buying customers, entered 20+ days after the original."""
    rng = ctx.rng
    n_acc = len(kind)
    cands = np.flatnonzero((kind <= 1) & (created < EXPORT_END - 90 * DAY))
    n_dup = max(3, int(round(0.015 * n_acc)))
    orig = np.sort(rng.choice(cands, n_dup, replace=False))
    lo = np.maximum(created[orig] + 20 * DAY, START)
    hi = np.maximum(np.minimum(lo + 450 * DAY, EXPORT_END - 30 * DAY), lo + DAY)
    d_created = snap(rng, lo + ((hi - lo) * rng.random(n_dup)).astype(np.int64))
    other = rng.random(n_dup) < 0.5
    d_dept = np.where(other, 1 - dept[orig], dept[orig])
    d_rep = ctx.pick_reps(d_dept)
    variant = rng.integers(0, 3, n_dup)
    phone_fmt = rng.integers(0, 3, n_dup)
    email_case = rng.integers(0, 2, n_dup)
    return Duplicates(orig, d_created, d_dept, d_rep, variant, phone_fmt, email_case, n_acc + np.arange(n_dup))


def draw_contact_gaps(ctx: Context, n_acc: int, dup: Duplicates) -> tuple[np.ndarray, np.ndarray]:
    """Return which customers miss their phone and which their e-mail (never duplicated ones)."""
    protected = np.zeros(n_acc, bool)
    protected[dup.orig] = True
    protected[dup.index] = True
    no_phone = (ctx.rng.random(n_acc) < 0.03) & ~protected
    no_email = (ctx.rng.random(n_acc) < 0.05) & ~protected
    return no_phone, no_email


def move_to_duplicates(
    ctx: Context, dup: Duplicates, n_acc: int, acc: np.ndarray, when: np.ndarray, movable: np.ndarray
) -> np.ndarray:
    """Return the accounts with about half of a duplicated customer's later events on its duplicate."""
    out = acc.copy()
    pos = np.full(n_acc, -1)
    pos[dup.orig] = np.arange(len(dup.orig))
    j = pos[acc]
    m = movable & (j >= 0)
    m &= when >= np.where(j >= 0, dup.created[np.maximum(j, 0)], 0)
    m &= ctx.rng.random(len(acc)) < 0.5
    out[m] = dup.index[j[m]]
    return out


def plant_tricky_notes(ctx: Context, note: np.ndarray) -> np.ndarray:
    """Put each tricky note on one random opportunity; return those opportunities, sorted."""
    n_opp = len(note)
    tricky = ctx.rng.choice(n_opp, min(len(TRICKY_NOTES), n_opp), replace=False)
    note[tricky] = len(OPP_NOTES) + np.arange(len(tricky))
    return np.sort(tricky)


def drop_receipts(ctx: Context, closed: np.ndarray) -> np.ndarray:
    """Return the won deals (positions) that get no receipt: about 3 per scale, closed 60+ days ago."""
    n_missing = max(1, int(round(3 * ctx.scale)))
    old = np.flatnonzero(closed < EXPORT_END - 60 * DAY)
    return np.sort(ctx.rng.choice(old, n_missing, replace=False))


def mismatch_receipts(ctx: Context, amount: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Change 0.6-1.9 % of about 10 per scale receipt amounts in place; return their positions."""
    rng = ctx.rng
    n_mis = max(3, int(round(10 * ctx.scale)))
    cands = np.flatnonzero(keep & (amount >= 5000))
    mis = np.sort(rng.choice(cands, n_mis, replace=False))
    rel = rng.uniform(0.006, 0.019, n_mis) * np.where(rng.random(n_mis) < 0.5, -1, 1)
    amount[mis] = np.round(amount[mis] * (1 + rel), 2)
    return mis


def mixed_date_formats(ctx: Context, n: int) -> np.ndarray:
    """Return a format per activity: 0 ISO, 1 '2025/3/4 10:05' (10 %), 2 '2025年3月4日 10:05' (5 %)."""
    u = ctx.rng.random(n)
    return np.where(u < 0.10, 1, np.where(u < 0.15, 2, 0))
