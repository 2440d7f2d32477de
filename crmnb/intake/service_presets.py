"""Mapping presets of the service desk: Salesforce Case, HubSpot tickets and Zoho Cases onto the tickets."""

from __future__ import annotations

import pandas as pd

from crmnb.intake.presets_base import HELPER, Preset


def _derive_note_with_subject(df: pd.DataFrame, mapped: set[str]) -> None:
    """Write a ticket's subject before its description in the note, so that complaint themes read both."""
    subject = f"{HELPER}subject"
    if subject not in df:
        return
    head = df[subject].astype("string").str.strip()
    body = df["note"].astype("string").str.strip() if "note" in df else pd.Series(pd.NA, index=df.index, dtype="string")
    both = (head + "：" + body).where(head.notna() & body.notna() & (head != "") & (body != ""))
    df["note"] = both.fillna(head.where(head != "")).fillna(body).astype(object).where(lambda s: s.notna(), None)


SERVICE_DERIVATIONS = {"note_with_subject": _derive_note_with_subject}
"""The derivations the service-desk presets ask for, by name."""

TICKET_CHANNEL_VALUES = {
    "Phone": "phone",
    "Email": "e-mail",
    "E-mail": "e-mail",
    "Web": "web",
    "Form": "web",
    "Chat": "chat",
    "Live Chat": "chat",
    "Social": "social",
    "Facebook": "social",
    "Twitter": "social",
    "WeChat": "social",
    "微信": "social",
    "电话": "phone",
    "邮件": "e-mail",
}
"""Case origins and ticket sources (Salesforce, HubSpot, Zoho) onto the ticket channels."""

TICKET_PRIORITY_VALUES = {"Critical": "urgent", "Urgent": "urgent", "High": "high", "Medium": "normal", "Low": "low"}
"""Case and ticket priorities onto the canonical ones (HubSpot writes them in capitals; matched ignoring case)."""

CASE_TYPES = {"Problem": "complaint", "Complaint": "complaint", "Question": "request", "Feature Request": "request"}
"""Salesforce and Zoho case types onto request / complaint."""

HUBSPOT_CATEGORY_TYPES = {
    "PRODUCT_ISSUE": "complaint",
    "BILLING_ISSUE": "complaint",
    "FEATURE_REQUEST": "request",
    "GENERAL_INQUIRY": "request",
}
"""HubSpot's default ticket categories onto request / complaint (the category itself is kept as the product)."""

SERVICE_PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "salesforce_case",
            "tickets",
            "Salesforce",
            "Case object: origin as the channel, type Problem as a complaint; subject and description as the text",
            columns={
                "ticket_id": ("Id", "Case ID", "CaseNumber", "Case Number"),
                "customer_id": ("AccountId", "Account ID"),
                "type": ("Type", "Case Type"),
                "created_at": ("CreatedDate", "Date/Time Opened", "Created Date"),
                "resolved_at": ("ClosedDate", "Date/Time Closed", "Closed Date"),
                "channel": ("Origin", "Case Origin"),
                "priority": ("Priority",),
                "first_response_at": ("First_Response__c", "First Response"),
                "reopened": ("Reopened_Count__c", "Reopened__c", "Reopened"),
                "product": ("Product__c", "Product", "Reason", "Case Reason"),
                "csat": ("CSAT__c", "CSAT"),
                "note": ("Description",),
            },
            values={"type": CASE_TYPES, "channel": TICKET_CHANNEL_VALUES, "priority": TICKET_PRIORITY_VALUES},
            helpers={"subject": ("Subject",)},
            derive=("note_with_subject",),
        ),
        Preset(
            "hubspot_ticket",
            "tickets",
            "HubSpot",
            "Tickets: internal names or CSV labels; the category says complaint or request and is kept as the product",
            columns={
                "ticket_id": ("hs_object_id", "Ticket ID", "Record ID"),
                "customer_id": (
                    "associatedcompanyid",
                    "Associated Company IDs (Primary)",
                    "Associated Company IDs",
                ),
                "type": ("hs_ticket_category", "Category"),
                "created_at": ("createdate", "Create date", "Create Date"),
                "resolved_at": ("closed_date", "Close date", "Close Date"),
                "channel": ("source_type", "Source"),
                "priority": ("hs_ticket_priority", "Priority"),
                "first_response_at": ("first_agent_reply_date", "First agent reply date"),
                "product": ("hs_ticket_category", "Category"),
                "note": ("content", "Ticket description"),
            },
            values={
                "type": HUBSPOT_CATEGORY_TYPES,
                "channel": TICKET_CHANNEL_VALUES,
                "priority": TICKET_PRIORITY_VALUES,
            },
            helpers={"subject": ("subject", "Ticket name")},
            derive=("note_with_subject",),
        ),
        Preset(
            "zoho_case",
            "tickets",
            "Zoho CRM",
            "Cases module: API names or export labels; case origin as the channel, type Problem as a complaint",
            columns={
                "ticket_id": ("id", "Record Id", "Case_Number", "Case Number"),
                "customer_id": ("Account_Name.id", "Account Id", "Account_Name", "Account Name"),
                "type": ("Type",),
                "created_at": ("Created_Time", "Created Time"),
                "resolved_at": ("Closed_Time", "Closed Time"),
                "channel": ("Case_Origin", "Case Origin"),
                "priority": ("Priority",),
                "product": ("Product_Name", "Product Name", "Case_Reason", "Case Reason"),
                "note": ("Description",),
            },
            values={"type": CASE_TYPES, "channel": TICKET_CHANNEL_VALUES, "priority": TICKET_PRIORITY_VALUES},
            helpers={"subject": ("Subject",)},
            derive=("note_with_subject",),
        ),
    ]
}
"""The service-desk presets: Salesforce Case, HubSpot tickets, Zoho Cases."""
