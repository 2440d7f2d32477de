"""Service analytics: tickets against their first-response and resolution targets, satisfaction by group with
intervals, and how a complaint goes with a customer's later purchases.

Every function works on whatever ticket fields an export holds: a field a service desk did not export
(channel, priority, first response, reopened) is named by :func:`missing_fields`, and the analyses that need
it say so rather than fail. The link between complaints and later purchases is an association: customers
who complain may differ in other ways.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from crmnb.analysis.compare import newcombe
from crmnb.intake.schema import SERVICE_COLUMNS, TICKET_CHANNELS, TICKET_PRIORITIES
from crmnb.present.words import t

TARGET_COLUMNS = [
    "channel",
    "priority",
    "tickets",
    "first_response_hours",
    "first_response_target",
    "first_response_within",
    "resolution_hours",
    "resolution_target",
    "resolution_within",
    "reopened_rate",
]
SATISFACTION_COLUMNS = [
    "dimension",
    "group",
    "csat_n",
    "csat",
    "csat_low",
    "csat_high",
    "nps_n",
    "nps",
    "nps_low",
    "nps_high",
]
OUTCOME_COLUMNS = [
    "outcome",
    "complainants",
    "complainant_rate",
    "requesters",
    "requester_rate",
    "rate_difference",
    "ci_low",
    "ci_high",
]
OUTCOMES = {"repeat_90d": 90, "lapsed_180d": 180}
"""The later outcomes of a customer's first ticket of the period: bought again within 90 days; no order in 180."""


def missing_fields(tickets: pd.DataFrame, fields=tuple(SERVICE_COLUMNS)) -> list[str]:
    """Return the service-desk fields the tickets lack: absent from the export or empty in every row.

    >>> missing_fields(pd.DataFrame({"channel": ["phone"], "priority": [None]}), ("channel", "priority", "product"))
    ['priority', 'product']
    """
    return [c for c in fields if c not in tickets or not tickets[c].notna().any()]


def lacks_sentence(missing: list[str], needed: tuple[str, ...], what: str, language: str) -> str | None:
    """Return the plain sentence that an analysis cannot be done because the export lacks its fields, or None."""
    gone = [c for c in needed if c in missing]
    if not gone:
        return None
    return t("service.lacks", language, what=t(f"service.what.{what}", language), fields=", ".join(gone))


def of_department(tickets: pd.DataFrame, department: str | None, start, end) -> pd.DataFrame:
    """Return the tickets created from ``start`` to ``end`` (both included), of ``department`` when tickets name one."""
    tk = tickets
    if department is not None and "department" in tk and tk["department"].notna().any():
        tk = tk[tk["department"] == department]
    when = pd.to_datetime(tk["created_at"])
    return tk[((when >= pd.Timestamp(start)) & (when < pd.Timestamp(end) + pd.Timedelta(days=1))).to_numpy()]


CHANNEL_SPELLINGS = {"email": "e-mail", "mail": "e-mail", "e_mail": "e-mail", "telephone": "phone", "call": "phone"}
"""Other spellings of the ticket channels, read as the canonical one."""


def ticket_channel(v: object) -> str:
    """Return a ticket channel as the analyses name it: lower case, other spellings read as the canonical one.

    >>> ticket_channel(" Email "), ticket_channel("Chat"), ticket_channel(None)
    ('e-mail', 'chat', '')
    """
    s = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().casefold()
    return CHANNEL_SPELLINGS.get(s, s)


def _hours(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (pd.to_datetime(later) - pd.to_datetime(earlier)).dt.total_seconds() / 3600


def _order(values: pd.Series, known: tuple[str, ...]) -> pd.Series:
    """Return a sort key: known values in their order, the rest after them."""
    pos = {v: i for i, v in enumerate(known)}
    return values.map(lambda v: pos.get(v, len(known)))


def against_targets(tickets: pd.DataFrame, settings) -> pd.DataFrame:
    """Return, per channel and priority, the tickets, median first-response and resolution hours, their targets,
    the share within each target (an unanswered or unresolved ticket is not within) and the reopened share."""
    tk = tickets.copy()
    tk["channel"] = tk["channel"].map(ticket_channel) if "channel" in tk else ""
    tk["priority"] = tk["priority"].fillna("").astype(str).str.strip().str.casefold() if "priority" in tk else ""
    fr = _hours(tk["first_response_at"], tk["created_at"]) if "first_response_at" in tk else pd.Series(np.nan, tk.index)
    res = _hours(tk["resolved_at"], tk["created_at"]) if "resolved_at" in tk else pd.Series(np.nan, tk.index)
    fr_t = (
        tk["channel"]
        .map(lambda c: settings.first_response_hours.get(c, settings.first_response_default_hours))
        .astype(float)
    )
    res_t = (
        tk["priority"].map(lambda p: settings.resolution_hours.get(p, settings.resolution_default_hours)).astype(float)
    )
    reopened = pd.to_numeric(tk["reopened"], errors="coerce") if "reopened" in tk else pd.Series(np.nan, tk.index)
    units = pd.DataFrame(
        {
            "channel": tk["channel"],
            "priority": tk["priority"],
            "fr": fr,
            "fr_t": fr_t,
            "fr_ok": (fr <= fr_t).astype(float).where(fr.notna() | tk["created_at"].notna(), np.nan),
            "res": res,
            "res_t": res_t,
            "res_ok": (res <= res_t).astype(float),
            "reopened": (reopened > 0).astype(float).where(reopened.notna(), np.nan),
        }
    )
    out = (
        units.groupby(["channel", "priority"], sort=False)
        .agg(
            tickets=("fr_t", "size"),
            first_response_hours=("fr", "median"),
            first_response_target=("fr_t", "first"),
            first_response_within=("fr_ok", "mean"),
            resolution_hours=("res", "median"),
            resolution_target=("res_t", "first"),
            resolution_within=("res_ok", "mean"),
            reopened_rate=("reopened", "mean"),
        )
        .reset_index()
    )
    if "first_response_at" not in tk or not tk["first_response_at"].notna().any():
        out["first_response_within"] = np.nan
    key = _order(out["channel"], TICKET_CHANNELS) * 10 + _order(out["priority"], TICKET_PRIORITIES)
    return out.iloc[np.argsort(key.to_numpy(), kind="stable")][TARGET_COLUMNS].reset_index(drop=True)


def _mean_interval(x: np.ndarray) -> tuple[float, float, float]:
    """Return the mean and its 95% t interval (NaN bounds below two values)."""
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, np.nan, np.nan
    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, m - half, m + half


def _clip(values: tuple[float, float, float], lo: float, hi: float) -> tuple[float, float, float]:
    """Return a value and its interval with the interval kept within the scale."""
    m, a, b = values
    return m, a if np.isnan(a) else max(lo, a), b if np.isnan(b) else min(hi, b)


def nps_interval(scores: np.ndarray) -> tuple[float, float, float]:
    """Return NPS (promoters 9-10 minus detractors 0-6, in points of 100) and its 95% normal interval.

    >>> [round(float(v), 1) for v in nps_interval(np.array([10, 9, 8, 7, 3, 10, 6, 9, 10, 2]))]
    [20.0, -37.0, 77.0]
    """
    if len(scores) == 0:
        return np.nan, np.nan, np.nan
    u = np.where(scores >= 9, 1.0, np.where(scores <= 6, -1.0, 0.0))
    m = float(u.mean())
    if len(u) < 2:
        return 100 * m, np.nan, np.nan
    half = 1.959964 * float(u.std(ddof=1)) / float(np.sqrt(len(u)))
    return 100 * m, 100 * (m - half), 100 * (m + half)


def satisfaction(tickets: pd.DataFrame, groups: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Return CSAT (mean 1-5) and NPS with their 95% intervals for each group of each dimension.

    ``groups`` maps a dimension (channel, segment, tier) to each ticket's group, aligned on the tickets' index;
    a ticket without a group is left out of that dimension."""
    rows = []
    csat = (
        pd.to_numeric(tickets.get("csat"), errors="coerce") if "csat" in tickets else pd.Series(np.nan, tickets.index)
    )
    nps = pd.to_numeric(tickets.get("nps"), errors="coerce") if "nps" in tickets else pd.Series(np.nan, tickets.index)
    for dim, g in groups.items():
        g = g.reindex(tickets.index)
        for value in sorted(g.dropna().unique(), key=str):
            m = (g == value).to_numpy()
            c, n = csat[m].dropna().to_numpy(), nps[m].dropna().to_numpy()
            rows.append(
                [dim, value, len(c), *_clip(_mean_interval(c), 1, 5), len(n), *_clip(nps_interval(n), -100, 100)]
            )
    return pd.DataFrame(rows, columns=SATISFACTION_COLUMNS)


def complaint_outcomes(tickets: pd.DataFrame, orders: pd.DataFrame, data_end) -> pd.DataFrame:
    """Return, for each outcome, the rate among customers whose first ticket of the period was a complaint and
    among those whose first was a request, and the difference (complaint − request) with Newcombe's 95% interval.

    A customer counts only when the data cover the outcome's whole horizon after that ticket (``data_end``)."""
    tk = tickets.dropna(subset=["customer_id"]).assign(when=lambda d: pd.to_datetime(d["created_at"]))
    first = tk.sort_values("when", kind="stable").drop_duplicates("customer_id")
    od = orders[["customer_id", "order_date"]].assign(when=lambda d: pd.to_datetime(d["order_date"]))
    pairs = first[["customer_id", "when", "type"]].merge(
        od[["customer_id", "when"]], on="customer_id", how="left", suffixes=("", "_o")
    )
    after = (pairs["when_o"] > pairs["when"]).fillna(False)
    rows = []
    for outcome, days in OUTCOMES.items():
        within = after & (pairs["when_o"] <= pairs["when"] + pd.Timedelta(days=days))
        bought = within.groupby(pairs["customer_id"]).any()
        f = first.set_index("customer_id")
        f = f[f["when"] + pd.Timedelta(days=days) <= pd.Timestamp(data_end)]
        y = bought.reindex(f.index).fillna(False).astype(bool)
        y = y if outcome.startswith("repeat") else ~y
        c, r = y[f["type"] == "complaint"], y[f["type"] == "request"]
        diff, (lo, hi) = (np.nan, (np.nan, np.nan))
        if len(c) and len(r):
            diff, (lo, hi) = c.mean() - r.mean(), newcombe(r.sum(), len(r), c.sum(), len(c))
        rows.append(
            [outcome, len(c), c.mean() if len(c) else np.nan, len(r), r.mean() if len(r) else np.nan, diff, lo, hi]
        )
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS)


def groups_of(tickets: pd.DataFrame, rfm: pd.DataFrame) -> dict[str, pd.Series]:
    """Return each ticket's ticket channel, and its customer's RFM segment and value tier (:func:`satisfaction`)."""
    by = rfm.drop_duplicates("customer_id").set_index("customer_id")
    channel = tickets["channel"].map(ticket_channel).replace("", np.nan) if "channel" in tickets else None
    out = {"channel": channel if channel is not None else pd.Series(np.nan, tickets.index)}
    for dim in ("segment", "tier"):
        out[dim] = tickets["customer_id"].map(by[dim]) if dim in by else pd.Series(np.nan, tickets.index)
    return out


def outcome_sentences(outcomes: pd.DataFrame, language: str) -> list[str]:
    """Return how the customers whose first ticket was a complaint bought later, against those with a request."""
    out = []
    for _, r in outcomes.iterrows():
        if pd.isna(r["rate_difference"]) or min(r["complainants"], r["requesters"]) < 10:
            continue
        out.append(
            t(
                "service.outcome",
                language,
                outcome=t(f"service.outcome.{r['outcome']}", language),
                rate_c=f"{r['complainant_rate']:.0%}",
                rate_r=f"{r['requester_rate']:.0%}",
                diff=100 * r["rate_difference"],
                low=100 * r["ci_low"],
                high=100 * r["ci_high"],
                n_c=int(r["complainants"]),
                n_r=int(r["requesters"]),
            )
        )
    return out or [t("service.outcome.too_few", language)]


def target_chart_frame(targets: pd.DataFrame) -> pd.DataFrame:
    """Return the share of tickets answered within target per channel, weighted by tickets, for a bar chart."""
    tk = targets.dropna(subset=["first_response_within"])
    tk = tk.assign(ok=tk["first_response_within"] * tk["tickets"])
    by = tk.groupby("channel", sort=False)[["ok", "tickets"]].sum()
    return by.assign(first_response_within=by["ok"] / by["tickets"]).reset_index()[["channel", "first_response_within"]]


NEEDS: dict[str, tuple[str, ...]] = {
    "targets": ("channel", "priority", "first_response_at"),
    "satisfaction": ("channel",),
    "themes": ("note",),
}
"""The ticket fields each service analysis needs beyond the basic ticket."""


def lacking(tickets: pd.DataFrame, language: str) -> list[str]:
    """Return, for each service analysis the tickets export lacks fields for, the plain sentence that says so."""
    missing = missing_fields(tickets, tuple(dict.fromkeys(c for cs in NEEDS.values() for c in cs)))
    return lacking_fields(missing, len(tickets), language)


def lacking_fields(missing: list[str], tickets: int, language: str) -> list[str]:
    """Return :func:`lacking`'s sentences from the fields the tickets lack and how many tickets there are
    (:func:`crmnb.analysis.window_rows.ticket_fields` counts both in the hand-off without reading it)."""
    if not tickets:
        return [t("service.none", language)]
    return [s for what, needed in NEEDS.items() if (s := lacks_sentence(missing, needed, what, language))]
