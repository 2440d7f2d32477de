"""Accounts: the rows of the customers table.

Every opportunity needs a ``customer_id``, so the customers table holds *accounts*. An account is one of

* a pre-existing customer (``created_at`` in 2021-2023, orders from then on),
* a customer created by a won deal (``created_at`` = the won date), or
* a prospect: the account opened with the opportunity of a lead that has not converted (lost or
  still open; ``created_at`` = the opportunity's ``created_at``). Prospects never have orders,
  receipts, tickets or visits,
* a duplicate record of a buying customer (planted, see :mod:`crmnb.demo.faults`).

Buying customers are thus the accounts with at least one order. ``leads.customer_id`` is only set
for converted leads; leads of existing customers reuse that customer's account and contact details.
Customer ids follow the order of creation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from crmnb.demo.arrays import ranks, scaled
from crmnb.demo.clock import HISTORY_START, START, days, office_time
from crmnb.demo.context import Context
from crmnb.demo.faults import Duplicates, draw_contact_gaps, draw_duplicates
from crmnb.demo.leads import Leads
from crmnb.demo.marketing import Touches
from crmnb.demo.sales import Opportunities
from crmnb.demo.story import OPP_AMOUNT_SIGMA, PRE_EXISTING_CUSTOMERS, PRE_SIZE_MEDIAN
from crmnb.demo.vocab import CHANNELS, PRE_CHANNEL_WEIGHTS
from crmnb.intake.schema import DEPARTMENTS

PRE_EXISTING, WON, PROSPECT, DUPLICATE = 0, 1, 2, 3
"""Kinds of account."""


@dataclass(frozen=True)
class PreExisting:
    """Customers from before 2024, by creation time; their contact persons come first."""

    created: np.ndarray
    dept: np.ndarray
    rep: np.ndarray
    channel: np.ndarray

    @property
    def n(self) -> int:
        """Return the number of pre-existing customers."""
        return len(self.created)


def draw_pre_existing(ctx: Context) -> PreExisting:
    """Return the customers created 2021-2023."""
    rng = ctx.rng
    n_pre = scaled(PRE_EXISTING_CUSTOMERS, ctx.scale, 20)
    created = np.sort(days(rng, HISTORY_START, START, n_pre) + office_time(rng, n_pre))
    dept = rng.integers(0, len(DEPARTMENTS), n_pre)
    rep = ctx.pick_reps(dept)
    channel = rng.choice(len(CHANNELS), n_pre, p=PRE_CHANNEL_WEIGHTS)
    return PreExisting(created, dept, rep, channel)


@dataclass(frozen=True)
class Accounts:
    """The accounts, in the order they were opened here (ids follow :attr:`rank`)."""

    kind: np.ndarray
    created: np.ndarray
    dept: np.ndarray
    rep: np.ndarray
    channel: np.ndarray
    person: np.ndarray
    size: np.ndarray
    """The first deal's amount (for pre-existing customers a drawn first order)."""
    orig: np.ndarray
    """The real customer behind a record (itself, or the original of a duplicate)."""
    of_opp: np.ndarray
    """Per opportunity: its account."""
    of_lead: np.ndarray
    """Per lead: the customer it became, or -1."""
    rank: np.ndarray | None = None
    """Per account: its position by creation time (the customer id's number)."""
    order: np.ndarray | None = None
    """The accounts by creation time."""
    no_phone: np.ndarray | None = None
    no_email: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Return the number of accounts."""
        return len(self.kind)

    def cid(self, acc: np.ndarray) -> np.ndarray:
        """Return the customer-id numbers of account indices (-1 stays missing)."""
        assert self.rank is not None
        return np.where(acc >= 0, self.rank[np.maximum(acc, 0)], -1)


def open_accounts(ctx: Context, pre: PreExisting, leads: Leads, touches: Touches, opps: Opportunities) -> Accounts:
    """Return the pre-existing customers, then one account per opportunity of a new person."""
    o_lead = opps.lead
    new_acc = leads.existing[o_lead] < 0
    won = opps.status == 1
    opp_new = np.flatnonzero(new_acc)
    n_new = len(opp_new)
    of_opp = np.where(new_acc, -1, leads.existing[o_lead])
    of_opp[opp_new] = pre.n + np.arange(n_new)
    pre_size = np.exp(ctx.rng.normal(np.log(PRE_SIZE_MEDIAN), OPP_AMOUNT_SIGMA, pre.n))
    conv = opps.lead_opp >= 0
    conv &= np.where(conv, opps.status[np.maximum(opps.lead_opp, 0)] == 1, False)
    kind = np.concatenate([np.full(pre.n, PRE_EXISTING), np.where(won[opp_new], WON, PROSPECT)])
    return Accounts(
        kind=kind,
        created=np.concatenate([pre.created, np.where(won[opp_new], opps.closed[opp_new], opps.created[opp_new])]),
        dept=np.concatenate([pre.dept, opps.dept[opp_new]]),
        rep=np.concatenate([pre.rep, opps.rep[opp_new]]),
        channel=np.concatenate([pre.channel, touches.lead_channel[o_lead[opp_new]]]),
        person=np.concatenate([np.arange(pre.n), leads.person[o_lead[opp_new]]]),
        # won deal amount defines the size of a new customer
        size=np.concatenate([np.round(np.clip(pre_size, 3000, 1e6), -2), opps.amount[opp_new]]),
        orig=np.arange(len(kind)),
        of_opp=of_opp,
        of_lead=np.where(conv, of_opp[np.maximum(opps.lead_opp, 0)], -1),
    )


def add_duplicates(ctx: Context, acc: Accounts) -> tuple[Accounts, Duplicates]:
    """Return the accounts with the planted duplicate records, contact gaps and customer ids."""
    dup = draw_duplicates(ctx, acc.kind, acc.created, acc.dept)
    o = dup.orig
    acc = dataclasses.replace(
        acc,
        kind=np.concatenate([acc.kind, np.full(len(o), DUPLICATE)]),
        created=np.concatenate([acc.created, dup.created]),
        dept=np.concatenate([acc.dept, dup.dept]),
        rep=np.concatenate([acc.rep, dup.rep]),
        channel=np.concatenate([acc.channel, acc.channel[o]]),
        person=np.concatenate([acc.person, acc.person[o]]),
        size=np.concatenate([acc.size, acc.size[o]]),
        orig=np.concatenate([acc.orig, o]),
    )
    no_phone, no_email = draw_contact_gaps(ctx, acc.n, dup)
    order = np.argsort(acc.created, kind="stable")
    return dataclasses.replace(acc, rank=ranks(order), order=order, no_phone=no_phone, no_email=no_email), dup
