"""One builder per canonical table: each returns the :class:`~crmnb.demo.text.Frame` to write.

The column names are the canonical ones (:data:`crmnb.intake.schema.TABLES`); the writer takes their
order from the schema and refuses a frame whose columns differ from it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmnb.demo.activities import NOTE_VOCAB
from crmnb.demo.clock import NAT
from crmnb.demo.customers import DUPLICATE
from crmnb.demo.faults import Duplicates
from crmnb.demo.marketing import CAMPAIGN_CHANNEL, CPA_BENCHMARK
from crmnb.demo.marketing_tables import email_events, landing_urls
from crmnb.demo.people import People
from crmnb.demo.sales import stage_history
from crmnb.demo.service import desk_columns
from crmnb.demo.text import (
    ColumnFn,
    Frame,
    col_cat,
    col_datetime,
    col_ids,
    col_int,
    col_money,
    col_text,
    col_values,
    fmt_datetime,
    fmt_ids,
    fmt_local,
    masked,
)
from crmnb.demo.vocab import (
    ACTIVITY_TYPES,
    CAMPAIGNS,
    CHANNELS,
    CITIES,
    INDUSTRIES,
    OPP_NOTES,
    TICKET_NOTES,
    TRICKY_NOTES,
    VISIT_CHANNELS,
)
from crmnb.demo.world import World
from crmnb.intake.schema import (
    DEPARTMENTS,
    LEAD_STATUSES,
    LOSS_REASONS,
    OPPORTUNITY_STAGES,
    OPPORTUNITY_STATUSES,
    TICKET_TYPES,
)


def duplicate_text(ppl: People, dup: Duplicates, person: np.ndarray, j: np.ndarray) -> list[pa.Array]:
    """Return name, company, phone and e-mail of duplicate records, each typed in a little differently."""
    variant, pfmt, ecase = dup.variant[j], dup.phone_fmt[j], dup.email_case[j]
    name = pc.if_else(
        pa.array(variant == 0),
        ppl.name(person, " "),
        pc.if_else(pa.array(variant == 1), ppl.name(person, "\u3000"), ppl.name(person)),
    )
    company = pc.if_else(pa.array(variant == 2), ppl.company(person, ""), ppl.company(person))
    digits = ppl.phone(person)
    dashed = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, 3),
        pc.utf8_slice_codeunits(digits, 3, 7),
        pc.utf8_slice_codeunits(digits, 7, 11),
        "-",
    )
    plus = pc.binary_join_element_wise("+86", digits, " ")
    phone = pc.if_else(pa.array(pfmt == 1), dashed, pc.if_else(pa.array(pfmt == 2), plus, digits))
    e = ppl.email(person)
    email = pc.if_else(pa.array(ecase == 0), pc.utf8_upper(e), pc.utf8_title(e))
    return [name, company, phone, email]


def contact_text(w: World) -> list[pa.Array]:
    """Return name, company, phone and e-mail of every customer row (by customer id)."""
    acc, ppl, order = w.accounts, w.people, w.accounts.order
    person = acc.person[order]
    text = [ppl.name(person), ppl.company(person), ppl.phone(person), ppl.email(person)]
    is_dup = acc.kind[order] == DUPLICATE
    if is_dup.any():
        pos = np.full(acc.n, -1)
        pos[w.dup.index] = np.arange(len(w.dup.index))
        dup_text = duplicate_text(ppl, w.dup, person[is_dup], pos[order[is_dup]])
        where = pa.array(is_dup)
        text = [pc.replace_with_mask(a, where, b) for a, b in zip(text, dup_text)]
    text[2] = masked(text[2], acc.no_phone[order])
    text[3] = masked(text[3], acc.no_email[order])
    return text


def customers(w: World) -> Frame:
    """Return the customers table (with a byte-order mark, as a spreadsheet export has)."""
    acc, order = w.accounts, w.accounts.order
    name, company, phone, email = contact_text(w)
    person = acc.person[order]
    cols = {
        "customer_id": col_ids("C", np.arange(acc.n), 6, acc.n),
        "name": col_text(name),
        "company": col_text(company),
        "phone": col_text(phone),
        "email": col_text(email),
        "city": col_cat(CITIES, w.people.city[person]),
        "industry": col_cat([i for i, _ in INDUSTRIES], w.people.industry[person]),
        "department": col_cat(DEPARTMENTS, acc.dept[order]),
        "owner_rep": col_cat(w.ctx.reps.name, acc.rep[order]),
        "channel": col_cat(CHANNELS, acc.channel[order]),
        "created_at": col_datetime(acc.created[order]),
    }
    return Frame(acc.n, cols, bom=True)


def customer_ids(w: World, acc: np.ndarray) -> ColumnFn:
    """Return a column of customer ids for account indices."""
    return col_ids("C", w.accounts.cid(acc), 6, w.accounts.n)


def leads(w: World) -> Frame:
    """Return the leads table."""
    ld, ppl, n = w.leads, w.people, w.leads.n
    cols = {
        "lead_id": col_ids("L", np.arange(n), 7, n),
        "created_at": col_datetime(ld.created),
        "first_contact_at": col_datetime(ld.first_contact),
        "department": col_cat(DEPARTMENTS, ld.dept),
        "owner_rep": col_cat(w.ctx.reps.name, ld.rep),
        "channel": col_cat(CHANNELS, w.touches.lead_channel),
        "campaign_id": col_ids("CMP", w.touches.lead_campaign, 3, len(CAMPAIGNS)),
        "contact_name": col_text(ppl.name(ld.person)),
        "phone": col_text(ppl.phone(ld.person)),
        "email": col_text(masked(ppl.email(ld.person), ld.email_missing)),
        "status": col_cat(LEAD_STATUSES, w.opps.lead_status),
        "customer_id": customer_ids(w, w.accounts.of_lead),
        "landing_url": landing_urls(w),
    }
    return Frame(n, cols)


def opportunities(w: World) -> Frame:
    """Return the opportunities table."""
    o = w.opps
    cols = {
        "opportunity_id": col_ids("OPP", np.arange(o.n), 6, o.n),
        "lead_id": col_ids("L", o.lead, 7, w.leads.n),
        "customer_id": customer_ids(w, w.accounts.of_opp),
        "department": col_cat(DEPARTMENTS, o.dept),
        "owner_rep": col_cat(w.ctx.reps.name, o.rep),
        "created_at": col_datetime(o.created),
        "stage": col_cat(OPPORTUNITY_STAGES, o.stage),
        "status": col_cat(OPPORTUNITY_STATUSES, o.status),
        "amount": col_money(o.amount),
        "closed_at": col_datetime(o.closed),
        "expected_close_date": col_text(pc.utf8_slice_codeunits(fmt_datetime(o.expected_close), 0, 10)),
        "loss_reason": col_cat(LOSS_REASONS, o.reason),
        "note": col_cat(list(OPP_NOTES) + list(TRICKY_NOTES), o.note),
    }
    return Frame(o.n, cols)


def stages(w: World) -> Frame:
    """Return the stage history table."""
    sh = stage_history(w.opps)
    cols = {
        "opportunity_id": col_ids("OPP", sh.opp, 6, w.opps.n),
        "stage": col_cat(OPPORTUNITY_STAGES, sh.stage),
        "entered_at": col_datetime(sh.entered),
        "exited_at": col_datetime(sh.exited),
    }
    return Frame(len(sh.opp), cols)


def col_mixed_datetime(sec: np.ndarray, fmt: np.ndarray) -> ColumnFn:
    """Return a column of datetimes, each row in its own format (0 ISO, 1 slash, 2 Chinese)."""

    def build(lo: int, hi: int) -> pa.Array:
        s, f = sec[lo:hi], fmt[lo:hi]
        arr = fmt_datetime(s)
        for code, style in ((1, "slash"), (2, "chinese")):
            m = (f == code) & (s != NAT)
            if m.any():
                arr = pc.replace_with_mask(arr, pa.array(m), fmt_local(s[m], style))
        return arr

    return build


def activities(w: World) -> Frame:
    """Return the activities table, its dates in a planted mix of formats."""
    a, fmt = w.activities.tasks, w.activities.fmt
    n = len(a.due)
    cols = {
        "activity_id": col_ids("A", np.arange(n), 7, n),
        "customer_id": customer_ids(w, a.acc),
        "lead_id": col_ids("L", a.lead, 7, w.leads.n),
        "department": col_cat(DEPARTMENTS, a.dept),
        "owner_rep": col_cat(w.ctx.reps.name, a.rep),
        "type": col_cat(ACTIVITY_TYPES, a.type),
        "due_at": col_mixed_datetime(a.due, fmt),
        "completed_at": col_mixed_datetime(a.done, fmt),
        "note": col_cat(NOTE_VOCAB, w.activities.note),
    }
    return Frame(n, cols)


def orders(w: World) -> Frame:
    """Return the orders table."""
    r = w.orders
    n = len(r.acc)
    cols = {
        "order_id": col_ids("SO", np.arange(n), 7, n),
        "customer_id": customer_ids(w, r.acc),
        "opportunity_id": col_ids("OPP", r.opp, 6, w.opps.n),
        "department": col_cat(DEPARTMENTS, w.accounts.dept[r.acc]),
        "order_date": col_datetime(r.time),
        "amount": col_money(r.amount),
    }
    return Frame(n, cols)


def tickets(w: World) -> Frame:
    """Return the tickets table."""
    k = w.tickets
    n = len(k.acc)
    cols = {
        "ticket_id": col_ids("T", np.arange(n), 6, n),
        "customer_id": customer_ids(w, k.acc),
        "department": col_cat(DEPARTMENTS, w.accounts.dept[k.acc]),
        "type": col_cat(TICKET_TYPES, k.type),
        "created_at": col_datetime(k.time),
        "resolved_at": col_datetime(k.resolved),
        "csat": col_int(k.csat),
        "nps": col_int(k.nps),
        "note": col_cat(list(TICKET_NOTES[0]) + list(TICKET_NOTES[1]), k.note),
        **desk_columns(k),  # the service desk's fields; a complaint's note is its written text
    }
    return Frame(n, cols)


def campaigns(w: World) -> Frame:
    """Return the campaigns table, as typed cells for the xlsx export (dates as text)."""
    n = len(CAMPAIGNS)
    cols = {
        "campaign_id": lambda lo, hi: fmt_ids("CMP", np.arange(lo, hi), 3),
        "name": col_values(pa.array([c[1] for c in CAMPAIGNS])),
        "channel": col_values(pa.array([c[0] for c in CAMPAIGNS])),
        "start_date": col_values(pa.array([c[2] for c in CAMPAIGNS])),
        "end_date": col_values(pa.array([c[3] for c in CAMPAIGNS])),
        "spend": col_values(pa.array(w.spend.spend, pa.float64())),
        "cpa_benchmark": col_values(pa.array(CPA_BENCHMARK, pa.float64())),
    }
    return Frame(n, cols)


def touches(w: World) -> Frame:
    """Return the marketing touches table."""
    t = w.touches
    n = len(t.lead)
    cols = {
        "touch_id": col_ids("TC", np.arange(n), 7, n),
        "lead_id": col_ids("L", t.lead, 7, w.leads.n),
        "campaign_id": col_ids("CMP", t.campaign, 3, len(CAMPAIGNS)),
        "channel": col_cat(CHANNELS, CAMPAIGN_CHANNEL[t.campaign]),
        "touched_at": col_datetime(t.time),
    }
    return Frame(n, cols)


def visits(w: World) -> Frame:
    """Return the visits table."""
    v = w.visits
    n = len(v.acc)
    cols = {
        "visit_id": col_ids("V", np.arange(n), 7, n),
        "customer_id": customer_ids(w, v.acc),
        "visited_at": col_datetime(v.time),
        "channel": col_cat(VISIT_CHANNELS, v.channel),
    }
    return Frame(n, cols)


def receipts(w: World) -> Frame:
    """Return the receipts table."""
    r = w.receipts
    n = len(r.opp)
    cols = {
        "receipt_id": col_ids("RC", np.arange(n), 6, n),
        "opportunity_id": col_ids("OPP", r.opp, 6, w.opps.n),
        "customer_id": customer_ids(w, w.accounts.of_opp[r.opp]),
        "received_at": col_datetime(r.time),
        "amount": col_money(r.amount),
    }
    return Frame(n, cols)


BUILDERS: dict[str, Callable[[World], Frame]] = {
    "customers": customers,
    "leads": leads,
    "opportunities": opportunities,
    "stage_history": stages,
    "activities": activities,
    "orders": orders,
    "tickets": tickets,
    "campaigns": campaigns,
    "touches": touches,
    "visits": visits,
    "receipts": receipts,
    "email_events": email_events,
}
"""The builder of each canonical table."""
