"""Open leads and deals at a scoring date, with features known by that date only, and their later outcome.

A record is a deal open at the date (created by then, not closed by then) or a lead of the last
``window_days`` without a deal yet. Every feature reads only what happened up to the date: the
stage entered by then, the first contact if it came by then (else the hours waited so far), the
marketing touches by then, the rep's and the rep × industry win rates of deals closed by then.
The label, used to train and judge only, is a win within ``window_days`` after the date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmnb.analysis.win_rates import lookup, shrunk_rates

STAGES: tuple[str, ...] = ("uncontacted", "contacted", "needs_confirmed", "proposal", "negotiation")
"""Where a record stands at the scoring date: a lead not yet contacted, contacted, or a deal's stage."""
DEAL_STAGES = STAGES[2:]
NUMERIC: tuple[str, ...] = (
    "age_days",
    "days_in_stage",
    "response_hours",
    "touches",
    "log_amount",
    "days_past_expected",
    "rep_rate",
    "rep_industry_rate",
)
"""The numeric features; with the stage, channel and industry they make the model's inputs."""
CATEGORICAL: tuple[str, ...] = ("stage", "channel", "industry")
UNKNOWN = "unknown"

COLUMNS = {
    "leads": ["lead_id", "created_at", "first_contact_at", "department", "owner_rep", "channel", "customer_id"],
    "opportunities": [
        "opportunity_id",
        "lead_id",
        "customer_id",
        "department",
        "owner_rep",
        "created_at",
        "status",
        "amount",
        "closed_at",
        "expected_close_date",
    ],
    "stage_history": ["opportunity_id", "stage", "entered_at"],
    "customers": ["customer_id", "industry"],
    "touches": ["lead_id", "touched_at"],
}
"""The columns each table gives the features (a missing optional column is treated as empty)."""


def _cols(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return the table's feature columns, an absent one as empty."""
    out = df.reindex(columns=COLUMNS[table]).copy()
    for c in out.columns:
        if c.endswith("_at") or c.endswith("_date"):
            out[c] = pd.to_datetime(out[c], errors="coerce")
    return out


def closed_by(opps: pd.DataFrame, cut: pd.Timestamp) -> pd.Series:
    """Return whether each deal was won or lost on or before ``cut``."""
    return opps["closed_at"].notna() & (opps["closed_at"] <= cut) & opps["status"].isin(["won", "lost"])


def deal_stage_at(opps: pd.DataFrame, stages: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    """Return each deal's stage at ``cut`` and when it entered it (a deal without history: its first stage)."""
    sh = stages[(stages["entered_at"] <= cut) & stages["stage"].isin(DEAL_STAGES)]
    sh = sh.assign(order=sh["stage"].map({s: i for i, s in enumerate(DEAL_STAGES)}))
    last = sh.sort_values(["entered_at", "order"]).drop_duplicates("opportunity_id", keep="last")
    last = last.set_index("opportunity_id")
    ids = opps["opportunity_id"].astype(object)
    stage = ids.map(dict(zip(last.index, last["stage"]))).astype(object).fillna(DEAL_STAGES[0])
    entered = pd.to_datetime(ids.map(dict(zip(last.index, last["entered_at"]))), errors="coerce")
    entered = entered.fillna(pd.to_datetime(opps["created_at"]))
    return pd.DataFrame({"stage": stage.to_numpy(), "entered": entered.to_numpy()}, index=opps.index)


def _records(leads: pd.DataFrame, opps: pd.DataFrame, cut: pd.Timestamp, window_days: int) -> pd.DataFrame:
    """Return the records open at ``cut``: deals open then, and recent leads without a deal by then."""
    made = opps[opps["created_at"] <= cut]
    still_open = (made["closed_at"] > cut) | (made["closed_at"].isna() & (made["status"] == "open"))
    deals = made[still_open]
    has_deal = leads["lead_id"].isin(made["lead_id"].dropna())
    recent = (leads["created_at"] <= cut) & (leads["created_at"] > cut - pd.Timedelta(days=window_days))
    fresh = leads[recent & ~has_deal]
    lead_of = leads.drop_duplicates("lead_id").set_index("lead_id")
    of_lead = {c: deals["lead_id"].map(lead_of[c]) for c in ("channel", "created_at", "first_contact_at")}
    return assemble(deals.assign(**{f"lead_{c}": v for c, v in of_lead.items()}), fresh)


def assemble(deals: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """Return the records' frame: the open ``deals`` (with their lead's ``lead_channel``, ``lead_created_at`` and
    ``lead_first_contact_at``), then the ``fresh`` leads, in that order."""
    d = pd.DataFrame(
        {
            "record_id": deals["opportunity_id"].to_numpy(),
            "kind": "opportunity",
            "lead_id": deals["lead_id"].to_numpy(),
            "opportunity_id": deals["opportunity_id"].to_numpy(),
            "department": deals["department"].to_numpy(),
            "owner_rep": deals["owner_rep"].to_numpy(),
            "customer_id": deals["customer_id"].to_numpy(),
            "channel": deals["lead_channel"].to_numpy(),
            "lead_created": deals["lead_created_at"].fillna(deals["created_at"]).to_numpy(),
            "opp_created": deals["created_at"].to_numpy(),
            "first_contact": deals["lead_first_contact_at"].to_numpy(),
            "amount": deals["amount"].to_numpy(dtype=float),
            "expected_close": deals["expected_close_date"].to_numpy(),
        }
    )
    f = pd.DataFrame(
        {
            "record_id": fresh["lead_id"].to_numpy(),
            "kind": "lead",
            "lead_id": fresh["lead_id"].to_numpy(),
            "opportunity_id": None,
            "department": fresh["department"].to_numpy(),
            "owner_rep": fresh["owner_rep"].to_numpy(),
            "customer_id": fresh["customer_id"].to_numpy(),
            "channel": fresh["channel"].to_numpy(),
            "lead_created": fresh["created_at"].to_numpy(),
            "opp_created": pd.NaT,
            "first_contact": fresh["first_contact_at"].to_numpy(),
            "amount": np.nan,
            "expected_close": pd.NaT,
        }
    )
    return pd.concat([d, f], ignore_index=True) if len(f) else d.reset_index(drop=True)


def _industry(rec: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """Return each record's industry: a deal's from the company it names; a lead's is unknown, as a lead's
    customer_id may be filled in only when it converts (reading it would leak the outcome)."""
    ind = customers.drop_duplicates("customer_id").set_index("customer_id")["industry"]
    deal = rec["kind"] == "opportunity" if "kind" in rec else pd.Series(True, index=rec.index)
    return rec["customer_id"].map(ind).where(deal).fillna(UNKNOWN).astype(str)


def _rep_rates(opps: pd.DataFrame, customers: pd.DataFrame, rec: pd.DataFrame, cut, strength) -> pd.DataFrame:
    """Return each record's rep win rate and rep × industry win rate from deals closed by ``cut`` (shrunk)."""
    closed = opps[closed_by(opps, cut)]
    out = pd.DataFrame({"rep_rate": np.nan, "rep_industry_rate": np.nan}, index=rec.index)
    if closed.empty or closed["owner_rep"].isna().all():
        return out
    seg = _industry(closed, customers)
    cells = shrunk_rates(
        closed.assign(industry=seg.to_numpy(), won=closed["status"].eq("won")), "owner_rep", "industry", strength
    )
    rep_rate = cells.drop_duplicates("owner_rep").set_index("owner_rep")["rep_rate"]
    out["rep_rate"] = rec["owner_rep"].map(rep_rate).to_numpy(dtype=float)
    out["rep_industry_rate"] = lookup(cells, "owner_rep", "industry", rec["owner_rep"], rec["industry"])
    return out


def features_at(tables: dict[str, pd.DataFrame], cut, window_days: int, strength: float | None = None) -> pd.DataFrame:
    """Return the records open at ``cut`` with their features (one row each, by ``record_id``); ``tables`` may
    also be a source that builds them in the engine (:mod:`crmnb.analysis.scoring_engine`)."""
    cut = pd.Timestamp(cut)
    engine = getattr(tables, "features_at", None)
    if engine is not None:
        return engine(cut, window_days, strength)
    leads, opps = _cols(tables["leads"], "leads"), _cols(tables["opportunities"], "opportunities")
    stages = _cols(tables.get("stage_history", pd.DataFrame()), "stage_history")
    customers = _cols(tables.get("customers", pd.DataFrame()), "customers")
    touches = _cols(tables.get("touches", pd.DataFrame()), "touches")
    rec = _records(leads, opps, cut, window_days)
    st = deal_stage_at(rec.assign(created_at=rec["opp_created"]), stages, cut)
    early = touches[touches["touched_at"] <= cut]
    counts = rec["lead_id"].map(early.groupby("lead_id").size()).fillna(0).to_numpy(dtype=float)
    return finish(
        rec, cut, st, counts, _industry(rec, customers), lambda r: _rep_rates(opps, customers, r, cut, strength)
    )


def finish(rec: pd.DataFrame, cut: pd.Timestamp, st: pd.DataFrame, touches: np.ndarray, industry: pd.Series, rates):
    """Return the records with their features from their stage at ``cut`` (``st``: a deal's stage and when it was
    entered), touches and industry; ``rates(records)`` gives the rep and rep × industry win rates."""
    contacted = rec["first_contact"].notna() & (rec["first_contact"] <= cut)
    deal = rec["kind"] == "opportunity"
    rec["stage"] = np.where(deal, st["stage"], np.where(contacted, "contacted", "uncontacted"))
    since = np.where(deal, st["entered"], np.where(contacted, rec["first_contact"], rec["lead_created"]))
    rec["days_in_stage"] = (cut - pd.Series(pd.to_datetime(since), index=rec.index)).dt.total_seconds() / 86_400
    rec["age_days"] = (cut - rec["lead_created"]).dt.total_seconds() / 86_400
    waited = np.where(contacted, rec["first_contact"], cut)
    waited = pd.Series(pd.to_datetime(waited), index=rec.index)
    rec["response_hours"] = (waited - rec["lead_created"]).dt.total_seconds() / 3_600
    rec["touches"] = touches
    rec["log_amount"] = np.log1p(rec["amount"].fillna(0.0).clip(lower=0))
    late = (cut - rec["expected_close"]).dt.total_seconds() / 86_400
    rec["days_past_expected"] = late.clip(lower=0).fillna(0.0)
    rec["industry"] = industry
    rec["channel"] = rec["channel"].fillna(UNKNOWN).astype(str)
    rec[["rep_rate", "rep_industry_rate"]] = rates(rec)
    rec["scored_at"] = cut
    return rec.drop(columns=["first_contact", "lead_created", "opp_created", "expected_close", "customer_id"])


def won_within(tables: dict[str, pd.DataFrame], records: pd.DataFrame, cut, window_days: int) -> pd.Series:
    """Return whether each record's deal was won within ``window_days`` after ``cut`` (the label)."""
    cut = pd.Timestamp(cut)
    engine = getattr(tables, "won_within", None)
    if engine is not None:
        return engine(records, cut, window_days)
    opps = _cols(tables["opportunities"], "opportunities")
    won = opps[(opps["status"] == "won") & (opps["closed_at"] > cut)]
    won = won[won["closed_at"] <= cut + pd.Timedelta(days=window_days)]
    by_deal = records["opportunity_id"].isin(won["opportunity_id"])
    by_lead = (records["kind"] == "lead") & records["lead_id"].isin(won["lead_id"].dropna())
    return (by_deal | by_lead).rename("won")


def feature_tables(tables) -> dict[str, pd.DataFrame]:
    """Return the columns the features read of each table a step has (``tables``: its Tables); a table it
    lacks is empty."""
    out = {}
    for name, cols in COLUMNS.items():
        try:
            out[name] = tables.columns(name, cols)
        except KeyError:  # a case without this table: its features are empty
            out[name] = pd.DataFrame(columns=cols)
    return out
