"""One run of the demo company: every entity drawn in the one order the random generator allows.

All builders draw from the context's single generator, so :func:`build` is the only place that says
in which order they run; changing that order changes every file after the change.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmnb.demo.activities import Activities, draw_activities
from crmnb.demo.context import Context, new_context
from crmnb.demo.customers import Accounts, PreExisting, add_duplicates, draw_pre_existing, open_accounts
from crmnb.demo.faults import Duplicates
from crmnb.demo.leads import Leads, draw_arrivals, draw_leads
from crmnb.demo.marketing import EmailEvents, Spend, Touches, draw_email, draw_spend, draw_touches
from crmnb.demo.orders import Buyers, Orders, draw_orders, settle_orders
from crmnb.demo.people import People
from crmnb.demo.receipts import Receipts, draw_receipts
from crmnb.demo.sales import Opportunities, draw_opportunities
from crmnb.demo.service import Tickets, Visits, draw_tickets, draw_visits


@dataclass(frozen=True)
class World:
    """Everything one run drew, table by table."""

    ctx: Context
    pre: PreExisting
    leads: Leads
    people: People
    opps: Opportunities
    touches: Touches
    accounts: Accounts
    dup: Duplicates
    buyers: Buyers
    orders: Orders
    tickets: Tickets
    visits: Visits
    activities: Activities
    receipts: Receipts
    spend: Spend
    email: EmailEvents


def build(scale: float, seed: int) -> World:
    """Return the demo company drawn at ``scale`` from ``seed``."""
    ctx = new_context(scale, seed)  # draws the reps first
    arrivals = draw_arrivals(ctx)
    pre = draw_pre_existing(ctx)
    leads, people = draw_leads(ctx, arrivals, pre.dept, pre.rep)
    opps = draw_opportunities(ctx, leads)
    touches = draw_touches(ctx, leads)
    accounts = open_accounts(ctx, pre, leads, touches, opps)
    orders, buyers = draw_orders(ctx, accounts, opps)
    accounts, dup = add_duplicates(ctx, accounts)
    orders = settle_orders(ctx, orders, accounts, dup, buyers)
    tickets = draw_tickets(ctx, accounts, buyers, dup)
    visits = draw_visits(ctx, accounts, buyers, dup)
    activities = draw_activities(ctx, leads, opps, accounts, buyers, dup)
    receipts = draw_receipts(ctx, opps)
    spend = draw_spend(ctx, opps.lead_status, touches.lead_campaign)
    email = draw_email(ctx, leads, touches)  # drawn last, so the tables before it keep their draws
    return World(
        ctx=ctx,
        pre=pre,
        leads=leads,
        people=people,
        opps=opps,
        touches=touches,
        accounts=accounts,
        dup=dup,
        buyers=buyers,
        orders=orders,
        tickets=tickets,
        visits=visits,
        activities=activities,
        receipts=receipts,
        spend=spend,
        email=email,
    )
