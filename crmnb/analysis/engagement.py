"""E-mail campaign engagement: each campaign's sent → opened → clicked → lead → won funnel, and A/B readouts.

The unit is a **send**: one mailing (``email_id``, or the campaign when the export has no mailing id)
to one recipient. A send is opened when it has an open or a click (a click implies an open: exports of
campaign membership keep only the furthest status), clicked when it has a click; it brought a lead
when one of its events names a lead of the leads table, and that lead is won when one of its
opportunities was won. Rates carry Wilson 95% intervals; A/B differences a two-proportion z-test and
Newcombe's interval.

>>> ev = pd.DataFrame({"campaign_id": ["C"] * 3, "recipient_id": ["r1", "r1", "r2"], "event": ["sent", "open", "sent"],
...                    "occurred_at": pd.to_datetime(["2025-01-01"] * 3)})
>>> sends(ev)[["recipient_id", "opened"]].values.tolist()
[['r1', True], ['r2', False]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmnb.analysis.compare import two_proportions
from crmnb.analysis.drivers import wilson
from crmnb.analysis.marketing import day_bounds, in_window
from crmnb.frames import isin

STAGES: tuple[str, ...] = ("sent", "opened", "clicked", "lead", "won")
"""The e-mail funnel, in order."""

SIDE: tuple[str, ...] = ("bounced", "unsubscribed")
"""Counted beside the funnel, as shares of the sent."""

NEEDED = ("campaign_id", "recipient_id", "event", "occurred_at")
"""Columns :func:`sends` cannot do without."""

MIN_PER_VARIANT = 30
"""Fewest sends a variant needs for its A/B readout."""


def lacks(events: pd.DataFrame | None) -> str | None:
    """Return why the e-mail analyses cannot run on ``events`` (``'no_table'``, ``'no_rows'``,
    ``'no_columns'``), or None when they can."""
    if events is None:
        return "no_table"
    if any(c not in events for c in NEEDED):
        return "no_columns"
    if events.empty:
        return "no_rows"
    return None


def sends(events: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Return one row per send first seen in the window: campaign, mailing, recipient, variant, subject,
    lead and whether it bounced, was opened, clicked and led to an unsubscribe."""
    ev = events
    key = ["campaign_id", "email_id", "recipient_id"]
    ev = ev.assign(email_id=ev["email_id"] if "email_id" in ev else None)
    ev = ev.assign(email_id=ev["email_id"].astype(object).where(ev["email_id"].notna(), ev["campaign_id"]))
    e = ev["event"].astype(str)
    flags = pd.DataFrame(
        {
            "bounced": e.eq("bounce"),
            "opened": e.isin(["open", "click"]),
            "clicked": e.eq("click"),
            "unsubscribed": e.eq("unsubscribe"),
        }
    )
    g = pd.concat([ev[key], flags], axis=1).groupby(key, sort=False)
    out = g.max()
    first = ev.groupby(key, sort=False)["occurred_at"].min()
    out["first_at"] = first
    for col in ("variant", "subject", "lead_id"):
        out[col] = ev.dropna(subset=[col]).groupby(key, sort=False)[col].first() if col in ev else None
    out = out.reset_index()
    lo, hi = day_bounds(start, end)
    return out[in_window(out["first_at"], lo, hi)].reset_index(drop=True)


def _won_leads(opportunities: pd.DataFrame) -> pd.Series:
    """Return the ids of leads with a won opportunity."""
    opp = opportunities
    if "lead_id" not in opp or "status" not in opp:
        return pd.Series([], dtype=object)
    return opp.loc[opp["status"] == "won", "lead_id"].dropna()


def _flags(s: pd.DataFrame, leads: pd.DataFrame, opportunities: pd.DataFrame) -> pd.DataFrame:
    """Return the sends with ``lead`` and ``won`` set from the leads and opportunities tables."""
    lead = s["lead_id"].notna() & isin(s["lead_id"], leads["lead_id"]) if "lead_id" in leads else False
    return s.assign(sent=True, lead=lead, won=lead & isin(s["lead_id"], _won_leads(opportunities)))


def email_funnel(
    events: pd.DataFrame,
    leads: pd.DataFrame,
    opportunities: pd.DataFrame,
    campaigns: pd.DataFrame,
    start=None,
    end=None,
) -> pd.DataFrame:
    """Return per campaign and stage: the sends reaching it, the rate from the stage before and from
    the sent, with Wilson 95% intervals; bounced and unsubscribed follow as shares of the sent.

    Columns: campaign_id, campaign, stage, count, rate, ci_low, ci_high, of_sent.
    """
    s = _flags(sends(events, start, end), leads, opportunities)
    return funnel_from_counts(s.groupby("campaign_id", sort=True)[list(STAGES + SIDE)].sum(), campaigns)


def funnel_from_counts(counts: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Return the funnel of :func:`email_funnel` from the sends per campaign (index, sorted) at each stage."""
    names = campaigns.set_index("campaign_id")["name"] if "name" in campaigns else pd.Series(dtype=object)
    rows = []
    for cid, c in counts.iterrows():
        prev = c["sent"]
        for stage in STAGES + SIDE:
            base = prev if stage in STAGES[1:] else c["sent"]
            rows.append((cid, names.get(cid, cid), stage, int(c[stage]), int(base)))
            if stage in STAGES:
                prev = c[stage]
    out = pd.DataFrame(rows, columns=["campaign_id", "campaign", "stage", "count", "base"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = np.where(out["base"] > 0, out["count"] / out["base"], np.nan)
        lo, hi = wilson(out["count"].to_numpy(), out["base"].to_numpy())
        sent = out.groupby("campaign_id")["count"].transform("first")
        out["of_sent"] = np.where(sent > 0, out["count"] / sent, np.nan)
    out["ci_low"], out["ci_high"] = np.where(out["base"] > 0, lo, np.nan), np.where(out["base"] > 0, hi, np.nan)
    out.loc[out["stage"] == "sent", ["rate", "ci_low", "ci_high"]] = np.nan
    return out[["campaign_id", "campaign", "stage", "count", "rate", "ci_low", "ci_high", "of_sent"]]


AB_METRICS: tuple[tuple[str, str, str], ...] = (("open_rate", "opened", "sent"), ("click_rate", "clicked", "sent"))
"""The A/B readout's metrics: name, numerator flag, denominator flag (every send)."""


def _test_name(cid: str, name: str, subjects: dict) -> str:
    """Return a test's name: the campaign and the variants with their subject lines."""
    parts = [f"{v} “{subjects[v]}”" if isinstance(subjects.get(v), str) else str(v) for v in sorted(subjects)]
    return f"{name} ({cid}): " + " / ".join(parts)


def ab_tests(
    events: pd.DataFrame, campaigns: pd.DataFrame, start=None, end=None, min_sends: int = MIN_PER_VARIANT
) -> pd.DataFrame:
    """Return the A/B readout: per campaign whose sends carry two or more variants, each later variant
    against the first, on open and click rate (of the sent): both rates, the difference, its Newcombe 95%
    interval and the two-proportion z-test's p-value. A variant with fewer than ``min_sends`` sends is
    left out."""
    s = sends(events, start, end)
    s = s[s["variant"].notna()]
    g = s.groupby(["campaign_id", "variant"], sort=False)
    counts = pd.DataFrame({"sends": g.size(), "opened": g["opened"].sum(), "clicked": g["clicked"].sum()})
    counts["subject"] = s.dropna(subset=["subject"]).groupby(["campaign_id", "variant"], sort=False)["subject"].first()
    return ab_from_counts(counts.reset_index(), campaigns, min_sends)


def ones(n: int, k: int) -> np.ndarray:
    """Return ``k`` ones and ``n - k`` zeros: a rate's units, as :func:`two_proportions` takes them."""
    return np.r_[np.ones(int(k)), np.zeros(int(n) - int(k))]


def ab_from_counts(counts: pd.DataFrame, campaigns: pd.DataFrame, min_sends: int = MIN_PER_VARIANT) -> pd.DataFrame:
    """Return the readout of :func:`ab_tests` from the sends, opens, clicks and first subject line per campaign
    and variant (columns campaign_id, variant, sends, opened, clicked, subject)."""
    names = campaigns.set_index("campaign_id")["name"] if "name" in campaigns else pd.Series(dtype=object)
    rows = []
    for cid, c in counts.groupby("campaign_id", sort=True):
        c = c[c["sends"] >= min_sends].set_index("variant")
        variants = sorted(c.index, key=str)
        if len(variants) < 2:
            continue
        subjects = c["subject"].dropna().reindex(variants).to_dict()
        test = _test_name(cid, names.get(cid, cid), subjects)
        a = c.loc[variants[0]]
        for v in variants[1:]:
            b = c.loc[v]
            for metric, flag, _ in AB_METRICS:
                d = two_proportions(ones(a["sends"], a[flag]), ones(b["sends"], b[flag]))
                rows.append(
                    {
                        "ab_test": test,
                        "campaign_id": cid,
                        "metric": metric,
                        "variant_a": variants[0],
                        "variant_b": v,
                        "sends_a": int(a["sends"]),
                        "sends_b": int(b["sends"]),
                        "rate_a": d.before,
                        "rate_b": d.after,
                        "difference": d.diff,
                        "ci_low": d.ci_low,
                        "ci_high": d.ci_high,
                        "p_value": d.p_value,
                        "method": d.test,
                    }
                )
    return pd.DataFrame(rows, columns=AB_COLUMNS)


AB_COLUMNS = [
    "ab_test",
    "campaign_id",
    "metric",
    "variant_a",
    "variant_b",
    "sends_a",
    "sends_b",
    "rate_a",
    "rate_b",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "method",
]


# --------------------------------------------------------------------------- UTM
def utm_leads(leads: pd.DataFrame, opportunities: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Return per UTM source and medium (parsed from the leads' landing URLs): leads created in the window,
    those won, and the conversion with its Wilson 95% interval; leads without UTM parameters come last as
    ``(none)``. Empty when no lead of the window has any."""
    cols = ["utm_source", "utm_medium"]
    out_cols = [*cols, "leads", "won", "conversion", "ci_low", "ci_high"]
    if any(c not in leads for c in cols) or not leads[cols].notna().any().any():
        return pd.DataFrame(columns=out_cols)
    lo, hi = day_bounds(start, end)
    ld = leads[in_window(leads["created_at"], lo, hi)]
    if not ld[cols].notna().any().any():
        return pd.DataFrame(columns=out_cols)
    keyed = ld[cols].astype(object).where(ld[cols].notna(), "(none)")
    won = isin(ld["lead_id"], _won_leads(opportunities))
    g = pd.DataFrame({**{c: keyed[c] for c in cols}, "won": won}).groupby(cols, sort=False)["won"]
    out = pd.DataFrame({"leads": g.size(), "won": g.sum()}).reset_index()
    out["won"] = out["won"].astype(int)
    out["conversion"] = out["won"] / out["leads"]
    out["ci_low"], out["ci_high"] = wilson(out["won"].to_numpy(), out["leads"].to_numpy())
    none = out["utm_source"].eq("(none)") & out["utm_medium"].eq("(none)")
    out = pd.concat([out[~none].sort_values("leads", ascending=False, kind="stable"), out[none]])
    return out.reset_index(drop=True)[out_cols]


FUNNEL_COLUMNS = ["campaign_id", "campaign", "stage", "count", "rate", "ci_low", "ci_high", "of_sent"]


def funnel_or_gap(
    events: pd.DataFrame | None,
    leads: pd.DataFrame,
    opportunities: pd.DataFrame,
    campaigns: pd.DataFrame,
    start=None,
    end=None,
) -> tuple[pd.DataFrame, str | None]:
    """Return the e-mail funnel (:func:`email_funnel`) and None, or an empty funnel and why it is missing
    (:func:`lacks`), so the rest of the case runs on an export without e-mail events."""
    reason = lacks(events)
    if reason:
        return pd.DataFrame(columns=FUNNEL_COLUMNS), reason
    return email_funnel(events, leads, opportunities, campaigns, start, end), None


def ab_or_empty(
    events: pd.DataFrame | None, campaigns: pd.DataFrame, start=None, end=None, min_sends: int = MIN_PER_VARIANT
) -> pd.DataFrame:
    """Return the A/B readout (:func:`ab_tests`), empty when the e-mail events are missing."""
    if lacks(events):
        return pd.DataFrame(columns=AB_COLUMNS)
    return ab_tests(events, campaigns, start, end, min_sends)
