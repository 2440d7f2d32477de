"""The demo's marketing exports beyond campaigns and touches: leads' landing URLs and the e-mail events."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from crmnb.demo.marketing import AB_SUBJECTS, CAMPAIGN_CHANNEL, EMAIL_EVENTS
from crmnb.demo.text import ColumnFn, Frame, col_cat, col_datetime, col_ids
from crmnb.demo.vocab import CAMPAIGNS, CHANNELS

UTM_OF_CHANNEL: dict[str, tuple[str, str, str]] = {
    # channel: landing page, utm_source, utm_medium; trade shows and referrals have no landing page
    "search": ("solutions", "baidu", "cpc"),
    "wechat": ("wx", "wechat", "social"),
    "email": ("offer", "newsletter", "email"),
    "content": ("whitepaper", "zhihu", "content"),
}
UNTRACKED_EVERY = 20
"""One lead in this many with a landing page came without one (a form without tracking)."""


def campaign_urls() -> list[str]:
    """Return each campaign's landing URL with its UTM parameters ('' where its channel has no landing page)."""
    out = []
    for i, c in enumerate(CAMPAIGNS):
        page, source, medium = UTM_OF_CHANNEL.get(c[0], ("", "", ""))
        out.append(
            f"https://www.example-saas.cn/{page}?utm_source={source}&utm_medium={medium}&utm_campaign=CMP{i + 1:03d}"
            if page
            else ""
        )
    return out


def landing_urls(w) -> ColumnFn:
    """Return the leads' landing URLs: their last-touch campaign's, none for trade shows, referrals and
    one lead in :data:`UNTRACKED_EVERY`."""
    camp = w.touches.lead_campaign
    has_page = np.isin(CAMPAIGN_CHANNEL[camp], [CHANNELS.index(c) for c in UTM_OF_CHANNEL])
    code = np.where(has_page & (np.arange(len(camp)) % UNTRACKED_EVERY != 0), camp, -1)
    return col_cat(campaign_urls(), code)


def email_events(w) -> Frame:
    """Return the e-mail events table."""
    e = w.email
    n = len(e.kind)
    months = e.mailing_month
    subjects = [f"{CAMPAIGNS[c][1]} · {months[m]}" for m, c in enumerate(e.mailing_campaign)] + list(AB_SUBJECTS)
    subject = np.where(e.variant > 0, len(e.mailing_campaign) + e.variant - 1, e.mailing)
    camp = e.mailing_campaign[e.mailing]
    url = np.where(e.kind == EMAIL_EVENTS.index("click"), camp, -1)
    cols = {
        "event_id": col_ids("EV", np.arange(n), 7, n),
        "campaign_id": col_ids("CMP", camp, 3, len(CAMPAIGNS)),
        "email_id": col_ids("M", e.mailing, 3, len(e.mailing_campaign)),
        "recipient_id": col_ids("R", e.recipient, 6, e.pool + w.leads.n),
        "lead_id": col_ids("L", e.lead, 7, w.leads.n),
        "variant": col_cat(["A", "B"], e.variant - 1),
        "subject": col_cat(subjects, subject),
        "event": col_cat(EMAIL_EVENTS, e.kind),
        "occurred_at": col_datetime(e.time),
        "url": col_cat(campaign_urls(), url),
        "email": lambda lo, hi: pa.nulls(hi - lo, pa.string()),
    }
    return Frame(n, cols)
