"""The rows of the case's department, read from the cleaned hand-offs without reading whole tables.

At 100 times the demo data the leads are 1.5 million rows and the stage history 1.8 million; the deep
dive needs the department's leads of the period, their deals and those deals' stages. Each is read
with a filter pushed into the Parquet read (:meth:`crmnb.handoffs.Tables.where`), so the rest of the
table is never converted to pandas. The rows are those the whole-table filters keep, in the file's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import pandas as pd

from crmnb.analysis.metrics import in_period
from crmnb.frames import rows_where
from crmnb.params.model import CaseParams

LEAD_COLUMNS = (
    "lead_id",
    "created_at",
    "first_contact_at",
    "department",
    "owner_rep",
    "channel",
    "campaign_id",
    "status",
    "customer_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)
"""The columns of the leads the analyses read: the contact's name, phone, e-mail and landing page stay on disk."""

COMPANY_LEAD_COLUMNS = tuple(c for c in LEAD_COLUMNS if c not in ("department", "owner_rep", "status"))
"""The columns of all the company's leads the deep dive reads (campaigns and channels, attribution, UTM,
the typical cases): a department's leads, read by their rows, keep :data:`LEAD_COLUMNS`."""

DEAL_COLUMNS = (
    "opportunity_id",
    "lead_id",
    "customer_id",
    "department",
    "owner_rep",
    "created_at",
    "stage",
    "status",
    "amount",
    "closed_at",
    "expected_close_date",
    "loss_reason",
)
"""The columns of the opportunities the analyses read: the free-text note stays on disk."""


ORDER_COLUMNS = ("customer_id", "opportunity_id", "order_date", "amount")
"""The columns of the company's orders the deep dive reads whole (revenue of the campaigns and channels,
the churn rules, the complaints' outcomes): the order ids and departments stay on disk."""


TICKET_COLUMNS = (
    "customer_id",
    "department",
    "type",
    "created_at",
    "first_response_at",
    "resolved_at",
    "reopened",
    "csat",
    "nps",
    "channel",
    "priority",
    "note",
)
"""The columns of the tickets the service analyses and the churn rules read: the ticket ids and products stay
on disk."""


def narrow(tables: Mapping[str, pd.DataFrame]) -> Mapping[str, pd.DataFrame]:
    """Return ``tables`` set to read only the columns the analyses read of the leads, opportunities, orders
    and tickets, when a step's tables are still unread (a plain dict of frames is returned as it is).

    At 100 times the demo data the four tables read whole are 640 MB in pandas, 390 MB of it columns
    no analysis of the deep dive reads of the whole company (the rows' places in the raw files among them). A query for another column reads it from the file.
    """
    if getattr(tables, "narrow", None) is None:
        return tables
    tables.narrow("leads", COMPANY_LEAD_COLUMNS, rows=LEAD_COLUMNS)
    for name, wanted in (("opportunities", DEAL_COLUMNS), ("orders", ORDER_COLUMNS), ("tickets", TICKET_COLUMNS)):
        tables.narrow(name, wanted)
    return tables


def case_leads(
    tables: Mapping[str, pd.DataFrame], case: CaseParams, window: str = "period", department_name: str | None = None
) -> pd.DataFrame:
    """Return the leads of the case's department created in the period (or the 'before'/'after' window),
    as :func:`crmnb.analysis.scope.leads_in`, reading only the department's rows."""
    start, end = (case.period.start, case.period.end) if window == "period" else case.windows[window]
    leads = rows_where(tables, "leads", "department", [department_name or case.department])
    return in_period(leads, "created_at", start, end)


def deals_of(tables: Mapping[str, pd.DataFrame], leads: pd.DataFrame) -> pd.DataFrame:
    """Return the opportunities of ``leads``, reading only their rows."""
    return rows_where(tables, "opportunities", "lead_id", leads["lead_id"])


def stages_of(tables: Mapping[str, pd.DataFrame], opportunities: pd.DataFrame) -> pd.DataFrame:
    """Return the stage history of ``opportunities``, reading only their rows."""
    return rows_where(tables, "stage_history", "opportunity_id", opportunities["opportunity_id"])


def department_rows(
    tables: Mapping[str, pd.DataFrame], name: str, department: str, columns: list[str] | None = None
) -> pd.DataFrame:
    """Return the rows of table ``name`` whose department is ``department`` (only ``columns`` when given),
    reading only those."""
    return rows_where(tables, name, "department", [department], columns)


def case_deals(tables: Mapping[str, pd.DataFrame], leads: pd.DataFrame, department: str) -> CaseDeals:
    """Return the deals of ``leads`` (the case's leads: the funnel, the response buckets, the channel stages) and
    the department's deals (the funnel's gaps, the typical cases), reading only their rows."""
    return CaseDeals(deals_of(tables, leads), department_rows(tables, "opportunities", department))


class CaseDeals(NamedTuple):
    """The deals the deep dive reads: those of the case's leads, and the department's."""

    of_leads: pd.DataFrame
    of_department: pd.DataFrame


def case_stages(
    tables: Mapping[str, pd.DataFrame], leads: pd.DataFrame, department: str, deals: CaseDeals | None = None
) -> pd.DataFrame:
    """Return the stage history of the department's deals and of the deals of ``leads``: every stage row the
    funnel, its gaps, the channel stages and the typical cases read, and no other."""
    deals = deals if deals is not None else case_deals(tables, leads, department)
    ids = pd.concat([deals.of_department["opportunity_id"], deals.of_leads["opportunity_id"]])
    return rows_where(tables, "stage_history", "opportunity_id", ids.drop_duplicates())
