"""The canonical CRM tables: names, columns and their kinds.

Every reader maps an export onto these tables; every analysis reads them. A
column's kind is one of ``id``, ``str``, ``float``, ``int``, ``datetime``,
``bool``. ``required`` columns must be present in an export and filled in every row; the
others may be absent and are then filled with missing values.

Each table also says what its values may be (:attr:`Table.allowed`,
:attr:`Table.bounds`) and whether an export of it may hold no rows
(:attr:`Table.may_be_empty`); :mod:`crmnb.intake.checks` turns all of this into a
pandera schema that every table passes before analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

FUNNEL_STAGES: tuple[str, ...] = (
    "lead",
    "first_contact",
    "needs_confirmed",
    "proposal",
    "negotiation",
    "won",
)
"""The default funnel, in order: leads, first follow-up, needs confirmed,
proposal/quote, negotiation, won."""

OPPORTUNITY_STAGES: tuple[str, ...] = ("needs_confirmed", "proposal", "negotiation", "won", "lost")
"""Stages an opportunity's stage history can hold (``lost`` ends a lost deal)."""

LEAD_STATUSES: tuple[str, ...] = ("open", "converted", "lost")
"""Values of ``leads.status``."""

OPPORTUNITY_STATUSES: tuple[str, ...] = ("open", "won", "lost")
"""Values of ``opportunities.status``."""

TICKET_TYPES: tuple[str, ...] = ("request", "complaint")
"""Values of ``tickets.type``: a service request or a complaint."""

LOSS_REASONS: tuple[str, ...] = ("price", "unclear_needs", "competitor", "slow_response")
"""Loss reasons the demo CRM offers in its drop-down."""

DEPARTMENTS: tuple[str, ...] = ("销售一部", "客户服务部")
"""Departments of the demo company: Sales 1 and Customer service."""


@dataclass(frozen=True)
class Table:
    """One canonical table: its key and its columns with their kinds."""

    name: str
    key: str
    columns: dict[str, str]
    required: tuple[str, ...]
    pii: tuple[str, ...] = ()
    references: dict[str, str] = field(default_factory=dict)
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Columns whose values come from a fixed list (status, stage, type)."""
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    """Numeric columns with a lowest and/or highest sensible value (amounts are never negative)."""
    may_be_empty: bool = True
    """False when the analysis cannot do without rows: a header-only export is then an error."""

    @property
    def dates(self) -> list[str]:
        """Return the names of the datetime columns."""
        return [c for c, k in self.columns.items() if k == "datetime"]

    @property
    def numbers(self) -> list[str]:
        """Return the names of the numeric columns."""
        return [c for c, k in self.columns.items() if k in ("float", "int")]


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "customers",
            key="customer_id",
            columns={
                "customer_id": "id",
                "name": "str",  # contact person
                "company": "str",
                "phone": "str",  # mobile, 11 digits
                "email": "str",
                "city": "str",
                "industry": "str",
                "department": "str",  # owning department
                "owner_rep": "str",
                "channel": "str",  # acquisition channel
                "created_at": "datetime",
            },
            required=("customer_id", "department", "created_at"),
            pii=("name", "company", "phone", "email"),
            may_be_empty=False,
        ),
        Table(
            "leads",
            key="lead_id",
            columns={
                "lead_id": "id",
                "created_at": "datetime",
                "first_contact_at": "datetime",  # empty: never contacted
                "department": "str",
                "owner_rep": "str",
                "channel": "str",
                "campaign_id": "id",
                "contact_name": "str",
                "phone": "str",
                "email": "str",
                "status": "str",  # open / converted / lost
                "customer_id": "id",  # set when the lead became a customer
            },
            required=("lead_id", "created_at", "department", "channel", "status"),
            pii=("contact_name", "phone", "email"),
            references={"customer_id": "customers", "campaign_id": "campaigns"},
            allowed={"status": LEAD_STATUSES},
            may_be_empty=False,
        ),
        Table(
            "opportunities",
            key="opportunity_id",
            columns={
                "opportunity_id": "id",
                "lead_id": "id",
                "customer_id": "id",
                "department": "str",
                "owner_rep": "str",
                "created_at": "datetime",
                "stage": "str",  # current stage, one of OPPORTUNITY_STAGES
                "status": "str",  # open / won / lost
                "amount": "float",  # expected or won amount, CNY
                "closed_at": "datetime",
                "expected_close_date": "str",  # the rep's planned date, YYYY-MM-DD: text, as it may lie ahead
                "loss_reason": "str",  # one of LOSS_REASONS when lost
                "note": "str",  # free text from the rep
            },
            required=("opportunity_id", "customer_id", "created_at", "stage", "status", "amount"),
            references={"customer_id": "customers", "lead_id": "leads"},
            allowed={"stage": OPPORTUNITY_STAGES, "status": OPPORTUNITY_STATUSES},
            bounds={"amount": (0, None)},
            may_be_empty=False,
        ),
        Table(
            "stage_history",
            key="",
            columns={
                "opportunity_id": "id",
                "stage": "str",
                "entered_at": "datetime",
                "exited_at": "datetime",  # empty while the deal sits in the stage
            },
            required=("opportunity_id", "stage", "entered_at"),
            references={"opportunity_id": "opportunities"},
            allowed={"stage": OPPORTUNITY_STAGES},
        ),
        Table(
            "activities",
            key="activity_id",
            columns={
                "activity_id": "id",
                "customer_id": "id",
                "lead_id": "id",
                "department": "str",
                "owner_rep": "str",
                "type": "str",  # call / visit / email / wechat / meeting
                "due_at": "datetime",  # when the follow-up task was due
                "completed_at": "datetime",  # empty: not done
                "note": "str",
            },
            required=("activity_id", "due_at"),
            references={"customer_id": "customers", "lead_id": "leads"},
        ),
        Table(
            "orders",
            key="order_id",
            columns={
                "order_id": "id",
                "customer_id": "id",
                "opportunity_id": "id",  # empty for repeat orders outside a deal
                "department": "str",
                "order_date": "datetime",
                "amount": "float",
            },
            required=("order_id", "customer_id", "order_date", "amount"),
            references={"customer_id": "customers", "opportunity_id": "opportunities"},
            bounds={"amount": (0, None)},
            may_be_empty=False,
        ),
        Table(
            "tickets",
            key="ticket_id",
            columns={
                "ticket_id": "id",
                "customer_id": "id",
                "department": "str",
                "type": "str",  # request / complaint
                "created_at": "datetime",
                "resolved_at": "datetime",
                "csat": "float",  # 1..5, empty when not surveyed
                "nps": "float",  # 0..10, empty when not surveyed
                "note": "str",
            },
            required=("ticket_id", "customer_id", "type", "created_at"),
            references={"customer_id": "customers"},
            allowed={"type": TICKET_TYPES},
            bounds={"csat": (1, 5), "nps": (0, 10)},
        ),
        Table(
            "campaigns",
            key="campaign_id",
            columns={
                "campaign_id": "id",
                "name": "str",
                "channel": "str",
                "start_date": "datetime",
                "end_date": "datetime",
                "spend": "float",
                "cpa_benchmark": "float",  # target cost per acquired customer
            },
            required=("campaign_id", "channel", "spend"),
            bounds={"spend": (0, None), "cpa_benchmark": (0, None)},
            may_be_empty=False,  # the campaign analyses (CAC, ROI, attribution) need at least one
        ),
        Table(
            "touches",
            key="touch_id",
            columns={
                "touch_id": "id",
                "lead_id": "id",
                "campaign_id": "id",
                "channel": "str",
                "touched_at": "datetime",
            },
            required=("touch_id", "lead_id", "channel", "touched_at"),
            references={"lead_id": "leads", "campaign_id": "campaigns"},
        ),
        Table(
            "visits",
            key="visit_id",
            columns={
                "visit_id": "id",
                "customer_id": "id",
                "visited_at": "datetime",
                "channel": "str",  # web / app / store
            },
            required=("visit_id", "customer_id", "visited_at"),
            references={"customer_id": "customers"},
        ),
        Table(
            "receipts",
            key="receipt_id",
            columns={
                "receipt_id": "id",
                "opportunity_id": "id",
                "customer_id": "id",
                "received_at": "datetime",
                "amount": "float",
            },
            required=("receipt_id", "opportunity_id", "received_at", "amount"),
            references={"opportunity_id": "opportunities"},
            bounds={"amount": (0, None)},
        ),
    ]
}
"""All canonical tables, by name."""

DEFAULT_FILES: dict[str, str] = {
    "customers": "customers.csv",
    "leads": "leads.csv",
    "opportunities": "opportunities.csv",
    "stage_history": "stage_history.csv",
    "activities": "activities.csv",
    "orders": "orders.csv",
    "tickets": "tickets.csv",
    "campaigns": "campaigns.xlsx",
    "touches": "touches.csv",
    "visits": "visits.csv",
    "receipts": "receipts.csv",
}
"""Where each table lives in a data folder unless the case file says otherwise."""


# --------------------------------------------------------------------------- campaigns: UTM and e-mail events
UTM_COLUMNS: tuple[str, ...] = ("utm_source", "utm_medium", "utm_campaign")
"""UTM parameters parsed from a landing URL at intake (:mod:`crmnb.intake.utm`) unless the export has them."""

EMAIL_EVENTS: tuple[str, ...] = ("sent", "open", "click", "bounce", "unsubscribe")
"""Values of ``email_events.event``: a mail sent, opened, clicked, bounced, or the recipient unsubscribed."""

# a lead's landing page, as web forms record it; its UTM parameters name the source, medium and campaign
TABLES["leads"].columns.update({"landing_url": "str", **dict.fromkeys(UTM_COLUMNS, "str")})
TABLES["email_events"] = Table(
    "email_events",
    key="event_id",
    columns={
        "event_id": "id",
        "campaign_id": "id",
        "email_id": "id",  # the mailing (one send of a campaign); empty when the export has none
        "recipient_id": "id",  # the contact the mail went to
        "lead_id": "id",  # the lead the recipient is or became, when known
        "variant": "str",  # A/B variant of the mailing, empty when it tested none
        "subject": "str",  # subject line
        "event": "str",  # one of EMAIL_EVENTS
        "occurred_at": "datetime",
        "url": "str",  # the link clicked
        "email": "str",
    },
    required=("event_id", "campaign_id", "recipient_id", "event", "occurred_at"),
    pii=("email",),
    references={"campaign_id": "campaigns", "lead_id": "leads"},
    allowed={"event": EMAIL_EVENTS},
)
DEFAULT_FILES["email_events"] = "email_events.csv"
OPTIONAL_FILES: frozenset[str] = frozenset({"email_events"})
"""Tables whose export may be missing from a data folder: the table is then empty and its analyses say so."""


ROW = "_row"
"""Column holding each row's 1-based position in its export, kept through every step."""


# --------------------------------------------------------------------------- service desk: ticket fields
TICKET_CHANNELS: tuple[str, ...] = ("phone", "e-mail", "chat", "social", "web")
"""Where a ticket came in, as the service analyses order them (an export's other values are kept as written)."""

TICKET_PRIORITIES: tuple[str, ...] = ("urgent", "high", "normal", "low")
"""Ticket priorities, most pressing first (an export's other values are kept as written)."""

SERVICE_COLUMNS: dict[str, str] = {
    "channel": "str",  # phone / e-mail / chat / social / web
    "priority": "str",  # urgent / high / normal / low
    "first_response_at": "datetime",  # the service desk's first reply
    "reopened": "int",  # times the ticket was opened again after being resolved (0: never)
    "product": "str",  # the product or category the ticket is about
}
"""The fields a service desk exports beyond the basic ticket: all optional, so an export without them loads."""

TABLES["tickets"] = replace(
    TABLES["tickets"],
    columns={**TABLES["tickets"].columns, **SERVICE_COLUMNS},
    bounds={**TABLES["tickets"].bounds, "reopened": (0, None)},
)
