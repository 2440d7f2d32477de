"""Mapping presets: how Salesforce, HubSpot and Zoho exports map onto the canonical tables."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from crmnb.intake.presets_base import HELPER, Preset
from crmnb.intake.service_presets import SERVICE_DERIVATIONS, SERVICE_PRESETS

# --------------------------------------------------------------------------- presets


def _truthy(s: pd.Series) -> pd.Series:
    """Return True where an export's flag reads as yes (true, 1, yes, y, t, 是)."""
    t = s.astype("string").str.strip().str.casefold()
    return t.isin(["true", "1", "yes", "y", "t", "是", "1.0"]).fillna(False).astype(bool)


def _derive_status_from_stage(df: pd.DataFrame, mapped: set[str]) -> None:
    """Set a deal's status: won/lost from ``IsWon``/``IsClosed`` when exported, else from its stage."""
    if "status" in mapped:
        return
    stage = df["stage"].astype("string").str.strip() if "stage" in df else pd.Series(pd.NA, index=df.index)
    status = pd.Series("open", index=df.index, dtype=object)
    if f"{HELPER}is_closed" in df or f"{HELPER}is_won" in df:
        won = _truthy(df[f"{HELPER}is_won"]) if f"{HELPER}is_won" in df else stage.eq("won").fillna(False)
        closed = _truthy(df[f"{HELPER}is_closed"]) if f"{HELPER}is_closed" in df else stage.isin(["won", "lost"])
        status[closed.to_numpy()] = "lost"
        status[won.to_numpy()] = "won"
    else:
        status[stage.eq("won").fillna(False).to_numpy()] = "won"
        status[stage.eq("lost").fillna(False).to_numpy()] = "lost"
    status[stage.isna().to_numpy()] = None  # no stage, no status: cleaning quarantines the row
    df["status"] = status


def _derive_closed_at(df: pd.DataFrame, mapped: set[str]) -> None:
    """Keep the close date only for closed deals: for open ones a CRM's close date is the expected one."""
    if "closed_at" in df and "status" in df:
        df["closed_at"] = df["closed_at"].where(df["status"].isin(["won", "lost"]), None)


def _derive_lead_status(df: pd.DataFrame, mapped: set[str]) -> None:
    """Mark converted leads (``IsConverted``) as converted, whatever their status text says."""
    if f"{HELPER}is_converted" in df:
        conv = _truthy(df[f"{HELPER}is_converted"])
        if "status" not in df:
            df["status"] = "open"
        df.loc[conv.to_numpy(), "status"] = "converted"


def _derive_exited_at(df: pd.DataFrame, mapped: set[str]) -> None:
    """Set when a deal left a stage: the time its next history row was entered (the last row stays open)."""
    if "exited_at" in mapped or not {"opportunity_id", "entered_at"} <= set(df.columns):
        return
    from crmnb.intake.parse import parse_dates

    when, _ = parse_dates(df["entered_at"])
    order = pd.DataFrame({"opp": df["opportunity_id"], "when": when, "pos": range(len(df))})
    order = order.sort_values(["opp", "when", "pos"], kind="stable")
    nxt = order.groupby("opp", sort=False)["pos"].shift(-1)
    text = df["entered_at"].to_numpy()
    exited = pd.Series([None] * len(df), index=df.index, dtype=object)
    has = nxt.notna().to_numpy()
    exited.iloc[order["pos"].to_numpy()[has]] = text[nxt[has].astype(int).to_numpy()]
    df["exited_at"] = exited


# --------------------------------------------------------------------------- e-mail events (campaigns)
def _derive_occurred_from_response(df: pd.DataFrame, mapped: set[str]) -> None:
    """Date a campaign member's status by its first response when it has one, else by when it was added."""
    if f"{HELPER}responded_at" in df:
        first = df[f"{HELPER}responded_at"].astype(object)
        first = first.where(first.notna() & (first.astype(str).str.strip() != ""), None)
        had = df["occurred_at"] if "occurred_at" in df else pd.Series(None, index=df.index, dtype=object)
        df["occurred_at"] = first.where(first.notna(), had)


def _derive_recipient_from_email(df: pd.DataFrame, mapped: set[str]) -> None:
    """Name each recipient by a digest of its normalised e-mail address when the export has no contact id,
    so that the address itself need not be kept as an id (intake keys and masks the ``email`` column)."""
    import hashlib

    if "recipient_id" in mapped or "email" not in df:
        return
    norm = df["email"].astype("string").str.strip().str.casefold()
    df["recipient_id"] = [None if pd.isna(e) else "R" + hashlib.sha256(str(e).encode()).hexdigest()[:16] for e in norm]


def _derive_variant_from_mailing(df: pd.DataFrame, mapped: set[str]) -> None:
    """Treat the mailings of one e-mail (HubSpot's emailCampaignIds of one campaign group) as its A/B
    variants when the export names no variant: a group holds its variants and their resends."""
    if "variant" in mapped or "email_id" not in df or "campaign_id" not in df:
        return
    n = df.groupby("campaign_id")["email_id"].transform("nunique")
    df["variant"] = df["email_id"].where(n >= 2, None)


DERIVATIONS: dict[str, Callable[[pd.DataFrame, set[str]], None]] = {
    "status_from_stage": _derive_status_from_stage,
    "closed_at_when_closed": _derive_closed_at,
    "lead_status": _derive_lead_status,
    "exited_at_from_next": _derive_exited_at,
    "occurred_at_from_response": _derive_occurred_from_response,
    "recipient_from_email": _derive_recipient_from_email,
    "variant_from_mailing": _derive_variant_from_mailing,
}
"""Derived columns a preset may ask for, by name, applied in the preset's order."""


SALESFORCE_STAGES = {
    "Prospecting": "needs_confirmed",
    "Qualification": "needs_confirmed",
    "Needs Analysis": "needs_confirmed",
    "Value Proposition": "proposal",
    "Id. Decision Makers": "proposal",
    "Perception Analysis": "proposal",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiation",
    "Closed Won": "won",
    "Closed Lost": "lost",
}
"""Salesforce's default opportunity stages onto the canonical ones."""

HUBSPOT_STAGES = {
    "appointmentscheduled": "needs_confirmed",  # label "Appointment Scheduled"
    "qualifiedtobuy": "needs_confirmed",  # "Qualified To Buy"
    "presentationscheduled": "proposal",  # "Presentation Scheduled"
    "decisionmakerboughtin": "negotiation",  # "Decision Maker Bought-In"
    "contractsent": "negotiation",  # "Contract Sent"
    "closedwon": "won",  # "Closed Won"
    "closedlost": "lost",  # "Closed Lost"
}
"""HubSpot's default sales-pipeline deal stages (internal names; labels match once normalised)."""

ZOHO_STAGES = {
    "Qualification": "needs_confirmed",
    "Needs Analysis": "needs_confirmed",
    "Value Proposition": "proposal",
    "Identify Decision Makers": "proposal",
    "Id. Decision Makers": "proposal",
    "Perception Analysis": "proposal",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiation",
    "Closed Won": "won",
    "Closed Lost": "lost",
    "Closed Lost to Competition": "lost",
}
"""Zoho CRM's default deal stages onto the canonical ones."""

SALESFORCE_LEAD_STATUSES = {
    "Open - Not Contacted": "open",
    "Working - Contacted": "open",
    "Closed - Converted": "converted",
    "Closed - Not Converted": "lost",
}
"""Salesforce's default lead statuses."""

ZOHO_LEAD_STATUSES = {
    "Not Contacted": "open",
    "Attempted to Contact": "open",
    "Contact in Future": "open",
    "Contacted": "open",
    "Pre-Qualified": "open",
    "Not Qualified": "lost",
    "Lost Lead": "lost",
    "Junk Lead": "lost",
    "Converted": "converted",
}
"""Zoho CRM's default lead statuses."""

SALESFORCE_MEMBER_STATUSES = {
    "Sent": "sent",
    "Received": "sent",
    "Opened": "open",
    "Clicked": "click",
    "Responded": "click",  # Salesforce's default responded status: the member acted on the mail
    "Bounced": "bounce",
    "Unsubscribed": "unsubscribe",
}
"""Campaign member statuses of a Salesforce e-mail campaign (each member keeps its furthest status)."""

HUBSPOT_EMAIL_EVENT_TYPES = {
    "SENT": "sent",
    "PROCESSED": "sent",
    "DELIVERED": "sent",
    "DEFERRED": "sent",
    "OPEN": "open",
    "CLICK": "click",
    "BOUNCE": "bounce",
    "DROPPED": "bounce",  # never delivered
    "STATUSCHANGE": "unsubscribe",  # a subscription change from the mail: the recipient opted out
    "SPAMREPORT": "unsubscribe",
}
"""HubSpot marketing e-mail event types onto the canonical events."""

SALESFORCE_CAMPAIGN_MEMBER = Preset(
    "salesforce_campaign_member",
    "email_events",
    "Salesforce",
    "CampaignMember object of e-mail campaigns: one row per member with its furthest status, dated by "
    "FirstRespondedDate (else CreatedDate)",
    columns={
        "event_id": ("Id", "Campaign Member ID"),
        "campaign_id": ("CampaignId", "Campaign ID"),
        "recipient_id": ("LeadOrContactId", "ContactId", "LeadId", "Contact ID", "Lead ID"),
        "lead_id": ("LeadId", "Lead ID"),
        "event": ("Status", "Member Status"),
        "occurred_at": ("CreatedDate", "Created Date"),
        "variant": ("Variant__c", "Variant"),
        "subject": ("Subject__c", "Subject"),
        "email": ("Email",),
    },
    values={"event": SALESFORCE_MEMBER_STATUSES},
    helpers={"responded_at": ("FirstRespondedDate", "First Responded Date")},
    derive=("occurred_at_from_response",),
)

HUBSPOT_EMAIL_EVENTS = Preset(
    "hubspot_email_events",
    "email_events",
    "HubSpot",
    "Marketing e-mail events (Email Events API or export): one row per event; the campaign group is the "
    "campaign, its emailCampaignIds the mailings, compared as A/B variants when a group has several",
    columns={
        "event_id": ("id", "Event ID"),
        "campaign_id": ("emailCampaignGroupId", "Email campaign group ID", "emailCampaignId"),
        "email_id": ("emailCampaignId", "Email campaign ID"),
        "recipient_id": ("recipientId", "Contact ID"),
        "event": ("type", "Event type"),
        "occurred_at": ("created", "Created", "Event date"),
        "url": ("url", "URL"),
        "subject": ("subject", "Subject"),
        "email": ("recipient", "Recipient"),
    },
    values={"event": HUBSPOT_EMAIL_EVENT_TYPES},
    derive=("recipient_from_email", "variant_from_mailing"),
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "salesforce_opportunity",
            "opportunities",
            "Salesforce",
            "Opportunity object (Data Loader / report export); status from IsWon and IsClosed",
            columns={
                "opportunity_id": ("Id", "Opportunity ID", "Opportunity Id"),
                "customer_id": ("AccountId", "Account ID", "Account Id"),
                "created_at": ("CreatedDate", "Created Date"),
                "stage": ("StageName", "Stage"),
                "amount": ("Amount",),
                "closed_at": ("CloseDate", "Close Date"),
                "owner_rep": ("Owner.Name", "Opportunity Owner", "OwnerId", "Owner ID"),
                "loss_reason": ("Loss_Reason__c", "Loss Reason"),
                "note": ("Description",),
                "lead_id": ("LeadId__c",),
            },
            values={"stage": SALESFORCE_STAGES},
            helpers={"is_won": ("IsWon", "Won"), "is_closed": ("IsClosed", "Closed")},
            derive=("status_from_stage", "closed_at_when_closed"),
        ),
        Preset(
            "salesforce_opportunity_history",
            "stage_history",
            "Salesforce",
            "OpportunityHistory object: one row per stage change; a stage is left when the next row is entered",
            columns={
                "opportunity_id": ("OpportunityId", "Opportunity ID"),
                "stage": ("StageName", "Stage"),
                "entered_at": ("CreatedDate", "Created Date", "Last Modified"),
            },
            values={"stage": SALESFORCE_STAGES},
            derive=("exited_at_from_next",),
        ),
        Preset(
            "salesforce_lead",
            "leads",
            "Salesforce",
            "Lead object; converted from IsConverted; links to opportunities through ConvertedOpportunityId",
            columns={
                "lead_id": ("Id", "Lead ID", "Lead Id"),
                "created_at": ("CreatedDate", "Created Date"),
                "channel": ("LeadSource", "Lead Source"),
                "status": ("Status", "Lead Status"),
                "customer_id": ("ConvertedAccountId", "Converted Account ID"),
                "owner_rep": ("Owner.Name", "Lead Owner", "OwnerId", "Owner ID"),
                "contact_name": ("Name", "Full Name"),
                "phone": ("MobilePhone", "Phone", "Mobile"),
                "email": ("Email",),
                "first_contact_at": ("FirstCallDateTime", "First Call Date"),
            },
            values={"status": SALESFORCE_LEAD_STATUSES},
            helpers={
                "is_converted": ("IsConverted", "Converted"),
                "converted_opportunity_id": ("ConvertedOpportunityId", "Converted Opportunity ID"),
            },
            derive=("lead_status",),
        ),
        Preset(
            "hubspot_deal",
            "opportunities",
            "HubSpot",
            "Deals: property internal names (API, exports with internal names) or the CSV labels",
            columns={
                "opportunity_id": ("hs_object_id", "Record ID", "Deal ID", "dealId"),
                "customer_id": (
                    "associatedcompanyid",
                    "Associated Company IDs (Primary)",
                    "Associated Company IDs",
                    "Associated Company ID",
                ),
                "created_at": ("createdate", "Create Date"),
                "stage": ("dealstage", "Deal Stage"),
                "amount": ("amount", "Amount"),
                "closed_at": ("closedate", "Close Date"),
                "owner_rep": ("hubspot_owner_id", "Deal owner", "Deal Owner"),
                "loss_reason": ("closed_lost_reason", "Closed Lost Reason"),
                "note": ("description", "Deal Description"),
            },
            values={"stage": HUBSPOT_STAGES},
            derive=("status_from_stage", "closed_at_when_closed"),
        ),
        Preset(
            "zoho_deal",
            "opportunities",
            "Zoho CRM",
            "Deals module: API names or export labels",
            columns={
                "opportunity_id": ("id", "Record Id", "Id", "Deal Id"),
                "customer_id": ("Account_Name.id", "Account Id", "Account_Name", "Account Name"),
                "created_at": ("Created_Time", "Created Time"),
                "stage": ("Stage",),
                "amount": ("Amount",),
                "closed_at": ("Closing_Date", "Closing Date"),
                "owner_rep": ("Owner", "Deal Owner", "Owner.name"),
                "loss_reason": ("Reason_For_Loss__s", "Reason For Loss"),
                "note": ("Description",),
            },
            values={"stage": ZOHO_STAGES},
            derive=("status_from_stage", "closed_at_when_closed"),
        ),
        Preset(
            "zoho_lead",
            "leads",
            "Zoho CRM",
            "Leads module: API names or export labels",
            columns={
                "lead_id": ("id", "Record Id", "Id", "Lead Id"),
                "created_at": ("Created_Time", "Created Time"),
                "channel": ("Lead_Source", "Lead Source"),
                "status": ("Lead_Status", "Lead Status"),
                "owner_rep": ("Owner", "Lead Owner", "Owner.name"),
                "contact_name": ("Full_Name", "Full Name", "Last_Name", "Last Name"),
                "phone": ("Mobile", "Phone"),
                "email": ("Email",),
            },
            values={"status": ZOHO_LEAD_STATUSES},
            helpers={"is_converted": ("Converted__s", "Converted")},
            derive=("lead_status",),
        ),
        *[SALESFORCE_CAMPAIGN_MEMBER, HUBSPOT_EMAIL_EVENTS],
    ]
}
"""Named mappings a case file can use by name."""

# the service desk's cases and tickets (Salesforce Case, HubSpot tickets, Zoho Cases)
DERIVATIONS.update(SERVICE_DERIVATIONS)
PRESETS.update(SERVICE_PRESETS)
