"""Typical cases: one success and one failure, chosen by rule, each with its timeline."""

from __future__ import annotations

import pandas as pd

from crmnb.analysis.funnel import loss_stage
from crmnb.analysis.metrics import in_period
from crmnb.frames import isin, rows_where
from crmnb.present.masking import mask_frame, show_text
from crmnb.present.words import category, has, t


def pick_cases(
    opportunities: pd.DataFrame,
    leads: pd.DataFrame,
    start,
    end,
    department: str | None = None,
    response_target_hours: float = 24.0,
    stage_history: pd.DataFrame | None = None,
) -> dict[str, str | None]:
    """Return the ids of a typical success and a typical failure among deals closed in the period.

    Success: the largest won deal whose lead was first contacted within the response
    target. Failure: the largest deal lost at the latest stage (negotiation first), the
    stage read from ``stage_history``.
    """
    o = in_period(opportunities, "closed_at", start, end)
    if department:
        o = o[o["department"] == department]
    resp = leads[isin(leads["lead_id"], o["lead_id"])].set_index("lead_id")  # the period's deals' leads alone
    hours = (resp["first_contact_at"] - resp["created_at"]).dt.total_seconds() / 3600
    o = o.assign(response_hours=o["lead_id"].map(hours))
    won = o[(o["status"] == "won") & (o["response_hours"] <= response_target_hours)]
    if won.empty:
        won = o[o["status"] == "won"]
    lost = o[o["status"] == "lost"].copy()
    order = {"negotiation": 0, "proposal": 1, "needs_confirmed": 2}
    if stage_history is not None:
        at = loss_stage(lost, stage_history).set_index("opportunity_id")["lost_at_stage"]
        lost["late"] = lost["opportunity_id"].map(at).map(order).fillna(3)
    else:
        lost["late"] = 3
    success = won.sort_values(["amount", "opportunity_id"], ascending=[False, True])["opportunity_id"].head(1)
    failure = lost.sort_values(["late", "amount", "opportunity_id"], ascending=[True, False, True])[
        "opportunity_id"
    ].head(1)
    return {"success": success.iloc[0] if len(success) else None, "failure": failure.iloc[0] if len(failure) else None}


def case_profile(opportunity_id: str, t: dict[str, pd.DataFrame], mask: bool = True) -> pd.DataFrame:
    """Return a one-row profile of a deal: customer (masked), department, rep, amount, outcome, loss reason."""
    opp = (
        rows_where(t, "opportunities", "opportunity_id", [opportunity_id])
        .set_index("opportunity_id")
        .loc[opportunity_id]
    )
    # only the deal's own customer and lead: a copy of the whole table per deal is a gigabyte at scale
    cust = rows_where(t, "customers", "customer_id", [opp["customer_id"]]).set_index("customer_id")
    c = cust.loc[opp["customer_id"]] if opp["customer_id"] in cust.index else pd.Series(dtype=object)
    lead = rows_where(t, "leads", "lead_id", [opp["lead_id"]]).set_index("lead_id")
    ld = lead.loc[opp["lead_id"]] if opp["lead_id"] in lead.index else pd.Series(dtype=object)
    row = pd.DataFrame(
        [
            {
                "opportunity_id": opportunity_id,
                "customer_id": opp["customer_id"],
                "company": c.get("company"),
                "name": c.get("name"),
                "industry": c.get("industry"),
                "department": opp["department"],
                "owner_rep": opp["owner_rep"],
                "channel": ld.get("channel"),
                "amount": opp["amount"],
                "status": opp["status"],
                "loss_reason": opp.get("loss_reason") if opp["status"] == "lost" else None,
                "response_hours": (
                    (ld.get("first_contact_at") - ld.get("created_at")).total_seconds() / 3600
                    if pd.notna(ld.get("first_contact_at", pd.NaT))
                    else None
                ),
                "cycle_days": (
                    (opp["closed_at"] - ld.get("created_at", opp["created_at"])).total_seconds() / 86400
                    if pd.notna(opp["closed_at"])
                    else None
                ),
            }
        ]
    )
    return mask_frame(row) if mask else row


def activity(kind: object, lang: str) -> str:
    """Return a follow-up's type (call, e-mail, visit…) in ``lang``; a type the catalogue lacks stays as it is."""
    key = f"words.activity.{kind}"
    return t(key, lang) if has(key) else str(kind)


def case_timeline(opportunity_id: str, tables: dict[str, pd.DataFrame], lang: str, mask: bool = True) -> pd.DataFrame:
    """Return the key touches of a deal in time order, worded in ``lang``: lead, first contact, follow-ups,
    stages, close.

    A follow-up's note is shown cut to 200 characters, with the resident IDs, bank cards, phones and
    e-mails written in it masked unless ``mask`` is False (:func:`crmnb.present.masking.show_text`)."""

    def w(event: str) -> str:
        return t(f"cases.event.{event}", lang)

    opp = (
        rows_where(tables, "opportunities", "opportunity_id", [opportunity_id])
        .set_index("opportunity_id")
        .loc[opportunity_id]
    )
    events = []
    leads = rows_where(tables, "leads", "lead_id", [opp["lead_id"]]).set_index("lead_id")
    if opp["lead_id"] in leads.index:
        ld = leads.loc[opp["lead_id"]]
        events.append((ld["created_at"], w("lead_created"), f"{w('channel')} {category(ld['channel'], lang)}"))
        if pd.notna(ld["first_contact_at"]):
            events.append((ld["first_contact_at"], w("first_contact"), ""))
        # the deal's follow-ups alone, read as such: the activities are the largest table
        act = rows_where(tables, "activities", "lead_id", [opp["lead_id"]], ["lead_id", "type", "completed_at", "note"])
        act = act[(act["lead_id"] == opp["lead_id"]) & act["completed_at"].notna()]
        for _, a in act.iterrows():
            note = show_text(a["note"], mask) if isinstance(a["note"], str) else ""
            events.append((a["completed_at"], f"{w('follow_up')}: {activity(a['type'], lang)}", note))
    sh = rows_where(tables, "stage_history", "opportunity_id", [opportunity_id])  # the deal's own stages alone
    mine = sh[sh["opportunity_id"] == opportunity_id]
    for _, s in mine.iterrows():
        lost = s["stage"] == "lost" and isinstance(opp["loss_reason"], str)
        detail = category(opp["loss_reason"], lang) if lost else ""
        events.append((s["entered_at"], f"{w('stage')}: {category(s['stage'], lang)}", detail))
    if mine.empty:  # no stage history exported: the deal's own creation and close still tell the story
        events.append((opp["created_at"], w("deal_created"), ""))
        if pd.notna(opp["closed_at"]) and opp["status"] in ("won", "lost"):
            detail = (
                category(opp["loss_reason"], lang)
                if opp["status"] == "lost" and isinstance(opp["loss_reason"], str)
                else ""
            )
            events.append((opp["closed_at"], f"{w('stage')}: {category(opp['status'], lang)}", detail))
    out = pd.DataFrame(events, columns=["when", "event", "detail"]).sort_values("when", kind="stable")
    return out.reset_index(drop=True)


def missing_case(kind: str, lang: str) -> str:
    """Return the note shown when there is no typical ``success`` or ``failure`` case to show, in ``lang``.

    >>> missing_case("failure", "en")
    'No failure case: it needs a deal of the department lost in the period; this data has none.'
    """
    return t(f"cases.missing.{kind}", lang)
