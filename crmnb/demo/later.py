"""The demo's second, later extract of the same company: three more months, a few restated deals, two actions.

:func:`extend` turns a written first extract (export date 2026-03-31) into the export of
2026-06-30, drawing from a random stream of its own, so the first extract stays exactly as it is:

* new data: the deals still open at the first export are closed (about half of them won), and the
  leads of October to December 2025 come again 26 weeks later (new ids, their deals and stage
  history with them, every date shifted by 182 days and a few minutes), so April to June 2026 read
  like a quarter after the reminder; a deal that would close after the export is open;
* restated history: :data:`RESTATED` won deals of 销售一部 on leads created in November 2025 were
  booked as won by mistake and are lost in the later export;
* two actions of the improvement plan, started on :data:`ACTION_START`: 销售一部 works every new
  lead (no lead left uncontacted: this action worked), while its first-contact times stay as they
  were (the 24-hour SLA had no measurable effect). The control department changes nothing.

``planted.json`` gains a ``later`` entry with these facts (tests only; the analysis never reads it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

EXPORT_DATE = "2026-06-30"
SHIFT_DAYS = 182
ACTION_START = "2026-04-01"
RESTATED = 40
RESTATED_MONTH = "2025-11"
DEPARTMENT = "销售一部"
FMT = "%Y-%m-%d %H:%M:%S"


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _write(df: pd.DataFrame, folder: Path, name: str, bom: bool = False) -> None:
    df.to_csv(folder / f"{name}.csv", index=False, encoding="utf-8-sig" if bom else "utf-8", lineterminator="\n")


def _shift(s: pd.Series, jitter: pd.Series) -> pd.Series:
    """Return datetime text moved by the shift and each row's jitter; empty cells stay empty."""
    t = pd.to_datetime(s.where(s != ""), format=FMT)
    moved = t + pd.Timedelta(days=SHIFT_DAYS) + pd.to_timedelta(jitter.to_numpy(), unit="m")
    return moved.dt.strftime(FMT).fillna("")


def _new_ids(old: pd.Series, prefix: str, start: int, width: int) -> dict[str, str]:
    return {o: f"{prefix}{start + i:0{width}d}" for i, o in enumerate(old)}


def _copy_quarter(leads, opps, stages, rng) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return the October-December 2025 leads, their deals and stage history, again 26 weeks later."""
    q = leads[(leads["created_at"] >= "2025-10-01") & (leads["created_at"] < "2026-01-01")].copy()
    jitter = pd.Series(rng.integers(-90, 90, len(q)), index=q.index)
    lead_ids = _new_ids(q["lead_id"], "L", int(leads["lead_id"].str[1:].astype(int).max()) + 1, 7)
    by_lead = dict(zip(q["lead_id"], jitter))
    for col in ("created_at", "first_contact_at"):
        q[col] = _shift(q[col], jitter)
    o = opps[opps["lead_id"].isin(lead_ids)].copy()
    oj = o["lead_id"].map(by_lead).astype(int)
    opp_ids = _new_ids(o["opportunity_id"], "OPP", int(opps["opportunity_id"].str[3:].astype(int).max()) + 1, 6)
    for col in ("created_at", "closed_at"):
        o[col] = _shift(o[col], oj)
    end = f"{EXPORT_DATE} 23:59:59"
    o = o[o["created_at"] <= end].copy()  # a deal opened after the export is not in it yet
    oj = oj[o.index]
    q.loc[q["first_contact_at"] > end, "first_contact_at"] = ""
    late = o["closed_at"] > end
    o.loc[late, ["stage", "status", "closed_at", "loss_reason"]] = ["negotiation", "open", "", ""]
    s = stages[stages["opportunity_id"].isin(o["opportunity_id"])].copy()
    sj = s["opportunity_id"].map(dict(zip(o["opportunity_id"], oj))).astype(int)
    for col in ("entered_at", "exited_at"):
        s[col] = _shift(s[col], sj)
    s = s[s["entered_at"] <= f"{EXPORT_DATE} 23:59:59"]
    s.loc[s["exited_at"] > f"{EXPORT_DATE} 23:59:59", "exited_at"] = ""
    q["status"] = np.where(q["lead_id"].isin(o.loc[late, "lead_id"]), "open", q["status"])
    q = q[q["created_at"] <= f"{EXPORT_DATE} 23:59:59"]
    q["lead_id"] = q["lead_id"].map(lead_ids)
    o["lead_id"], o["opportunity_id"] = o["lead_id"].map(lead_ids), o["opportunity_id"].map(opp_ids)
    s["opportunity_id"] = s["opportunity_id"].map(opp_ids)
    return q, o, s


def _close_open(leads, opps, stages, rng) -> tuple[int, pd.DataFrame]:
    """Close the deals open at the first export (about half won) and the leads still open; return the deals."""
    open_ = opps["status"] == "open"
    won = rng.random(int(open_.sum())) < 0.5
    created = pd.to_datetime(opps.loc[open_, "created_at"], format=FMT)
    close = created + pd.to_timedelta(rng.integers(7 * 24 * 60, 60 * 24 * 60, int(open_.sum())), unit="m")
    close = close.clip(lower=pd.Timestamp("2026-04-01 09:00"), upper=pd.Timestamp(f"{EXPORT_DATE} 18:00"))
    status = np.where(won, "won", "lost")
    ids = opps.loc[open_, "opportunity_id"].to_numpy()
    opps.loc[open_, ["stage", "status"]] = np.column_stack([status, status])
    opps.loc[open_, "closed_at"] = close.dt.strftime(FMT).to_numpy()
    opps.loc[open_, "loss_reason"] = np.where(won, "", "price")
    ended = dict(zip(ids, close.dt.strftime(FMT)))
    last = stages["opportunity_id"].isin(ids) & (stages["exited_at"] == "")
    stages.loc[last, "exited_at"] = stages.loc[last, "opportunity_id"].map(ended)
    final = pd.DataFrame(
        {"opportunity_id": ids, "stage": status, "entered_at": [ended[i] for i in ids], "exited_at": ""}
    )
    won_leads = set(opps.loc[open_ & (opps["status"] == "won"), "lead_id"])
    still = leads["status"] == "open"
    leads.loc[still, "status"] = np.where(leads.loc[still, "lead_id"].isin(won_leads), "converted", "lost")
    return len(ids), final


def _contact_all(q: pd.DataFrame, rng) -> int:
    """Give every new 销售一部 lead a first contact, as soon as its others get theirs (the action that worked)."""
    dept = q["department"] == DEPARTMENT
    gone = dept & (q["first_contact_at"] == "")
    created = pd.to_datetime(q["created_at"], format=FMT)
    seen = dept & ~gone
    delays = (pd.to_datetime(q.loc[seen, "first_contact_at"], format=FMT) - created[seen]).to_numpy()
    picked = rng.choice(delays, size=int(gone.sum())) if gone.any() else []
    contact = (created[gone] + pd.to_timedelta(picked)).clip(upper=pd.Timestamp(f"{EXPORT_DATE} 23:59:59"))
    q.loc[gone, "first_contact_at"] = contact.dt.strftime(FMT)
    return int(gone.sum())


def _restate(leads, opps, stages, rng) -> list[str]:
    """Turn :data:`RESTATED` won 销售一部 deals on November 2025 leads into lost ones; return their ids."""
    month = leads.loc[leads["created_at"].str.startswith(RESTATED_MONTH) & (leads["department"] == DEPARTMENT)]
    won = opps[opps["lead_id"].isin(month["lead_id"]) & (opps["status"] == "won")]
    ids = sorted(rng.choice(won["opportunity_id"].to_numpy(), size=min(RESTATED, len(won)), replace=False))
    hit = opps["opportunity_id"].isin(ids)
    opps.loc[hit, ["stage", "status", "loss_reason"]] = ["lost", "lost", "price"]
    leads.loc[leads["lead_id"].isin(opps.loc[hit, "lead_id"]), "status"] = "lost"
    last = stages["opportunity_id"].isin(ids) & (stages["stage"] == "won")
    stages.loc[last, "stage"] = "lost"
    return [str(i) for i in ids]


def extend(folder: str | Path, seed: int) -> dict:
    """Turn the first extract written in ``folder`` into the later one, in place; return its answer key."""
    folder = Path(folder)
    rng = np.random.default_rng([seed, 2])  # a stream of its own: the first extract's draws are untouched
    leads, opps, stages = (_read(folder, n) for n in ("leads", "opportunities", "stage_history"))
    restated = _restate(leads, opps, stages, rng)
    closed, final = _close_open(leads, opps, stages, rng)
    stages = pd.concat([stages, final], ignore_index=True)
    q, o, s = _copy_quarter(leads, opps, stages, rng)
    contacted = _contact_all(q, rng)
    _write(pd.concat([leads, q], ignore_index=True), folder, "leads")
    _write(pd.concat([opps, o], ignore_index=True), folder, "opportunities")
    _write(pd.concat([stages, s], ignore_index=True), folder, "stage_history")
    later = {
        "export_date": EXPORT_DATE,
        "new_leads": len(q),
        "deals_closed": closed,
        "new_since": "2026-04-01",
        "restated": {"opportunities": restated, "lead_month": RESTATED_MONTH, "department": DEPARTMENT},
        "actions": {
            "start": ACTION_START,
            "worked": {"kind": "uncontacted", "metric": "uncontacted_share", "newly_contacted": contacted},
            "no_effect": {"kind": "slow_response", "metric": "lead_response_hours"},
        },
    }
    key = folder / "planted.json"
    facts = json.loads(key.read_text(encoding="utf-8"))
    key.write_text(json.dumps({**facts, "later": later}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return later
