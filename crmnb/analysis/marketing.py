"""Marketing: what each campaign and channel cost, brought in and earned, and who gets the credit.

Acquisition is counted **last touch**, as the CRM records it: a lead belongs to its
``leads.campaign_id`` (and ``leads.channel``), and a lead is an acquired customer when
one of its opportunities was won. Multi-touch views of the same conversions come from
:func:`attribute`, which spreads each won lead over the touches before it.

>>> perf = campaign_performance(campaigns, leads, opportunities, orders)  # doctest: +SKIP
>>> cpa_alerts(perf)  # doctest: +SKIP
>>> attribute(touches, won_leads(leads, opportunities)).channel  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crmnb.analysis.funnel import stage_reach
from crmnb.analysis.metric_engine import once, unread_file
from crmnb.frames import isin
from crmnb.intake.schema import FUNNEL_STAGES

MODELS: tuple[str, ...] = ("first_touch", "last_touch", "linear", "position_based", "time_decay", "w_shaped")
"""The attribution models :func:`attribute` knows."""

NO_TOUCH = "(no touch)"
"""Channel and campaign credited with a conversion that has no touch before its cut-off."""

UNKNOWN = "(unknown)"
"""Label of a missing channel or campaign."""

ALL_CHANNELS = "all channels"
"""Label of the total row of :func:`channel_stage_matrix`."""


# --------------------------------------------------------------------------- checks
def check_table(df: pd.DataFrame, table: str, columns: Sequence[str], allow_empty: bool = False) -> None:
    """Raise ValueError naming the table when ``df`` lacks a column or (unless allowed) has no rows."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"table '{table}' must be a DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"table '{table}': missing column(s) {', '.join(missing)}; "
            f"found: {', '.join(map(str, df.columns)) or 'none'}"
        )
    if not allow_empty and df.empty:
        raise ValueError(f"table '{table}' is empty: nothing to analyse")


def day_bounds(start, end) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Return the window as [lo, hi) timestamps: ``end`` is a whole day, included."""
    lo = pd.Timestamp(start) if start is not None else None
    hi = pd.Timestamp(end).normalize() + pd.Timedelta(days=1) if end is not None else None
    if lo is not None and hi is not None and hi <= lo:
        raise ValueError(f"end ({end}) must not be before start ({start})")
    return lo, hi


def in_window(s: pd.Series, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> pd.Series:
    """Return True where ``s`` falls in [lo, hi); missing bounds are open."""
    ok = pd.Series(True, index=s.index)
    if lo is not None:
        ok &= s >= lo
    if hi is not None:
        ok &= s < hi
    return ok


def as_label(s: pd.Series, missing: str = UNKNOWN) -> pd.Series:
    """Return ``s`` as plain text with missing values replaced by ``missing``."""
    return s.astype(object).where(s.notna(), missing)


# --------------------------------------------------------------------------- outcomes per lead
def _check_outcome_tables(leads: pd.DataFrame, opportunities: pd.DataFrame, orders: pd.DataFrame) -> None:
    """Raise ValueError naming the table when one lacks a column :func:`lead_outcomes` reads, or a lead repeats."""
    check_table(leads, "leads", ["lead_id", "created_at", "channel", "campaign_id"])
    check_table(
        opportunities,
        "opportunities",
        ["opportunity_id", "lead_id", "customer_id", "status", "amount", "closed_at"],
        allow_empty=True,
    )
    check_table(orders, "orders", ["customer_id", "order_date", "amount"], allow_empty=True)
    if leads["lead_id"].duplicated().any():
        dup = leads.loc[leads["lead_id"].duplicated(), "lead_id"].iloc[0]
        raise ValueError(f"table 'leads': lead_id must be unique, {dup!r} appears more than once")


def _repeat_revenue(
    out: pd.DataFrame,
    orders: pd.DataFrame,
    won_all: pd.DataFrame,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
) -> pd.Series:
    """Return each lead's later orders in [lo, hi): orders of its customer after the first win, outside won deals,
    credited to the customer's first won lead only."""
    first = out[out["won"] & out["customer_id"].notna()].sort_values("won_at", kind="stable")
    first = first.drop_duplicates("customer_id")[["customer_id", "lead_id", "won_at"]]
    od = orders[orders["amount"].notna() & in_window(orders["order_date"], lo, hi)]
    if "opportunity_id" in od:
        od = od[~isin(od["opportunity_id"], won_all["opportunity_id"])]
    later = od[["customer_id", "order_date", "amount"]].merge(first, on="customer_id", how="inner")
    later = later[later["order_date"] > later["won_at"]]
    return out["lead_id"].map(later.groupby("lead_id")["amount"].sum()).fillna(0.0).astype(float)


OUTCOME_COLUMNS: dict[str, tuple[str, ...]] = {
    "leads": ("lead_id", "created_at", "channel", "campaign_id", "customer_id"),
    "opportunities": ("opportunity_id", "lead_id", "customer_id", "status", "amount", "closed_at"),
    "orders": ("customer_id", "opportunity_id", "order_date", "amount"),
}
"""The columns :func:`lead_outcomes` reads of each table."""


def outcome_tables(tables) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return the leads, opportunities and orders with only the columns :func:`lead_outcomes` reads: of a step's
    tables, from their files while unread (the rest of each row stays on disk); else the frames as they are."""
    import pyarrow.parquet as pq

    got = []
    for name, wanted in OUTCOME_COLUMNS.items():
        path = unread_file(tables, name)
        if path is None:
            got.append(tables[name])
            continue
        have = pq.read_schema(path).names
        got.append(tables.columns(name, [c for c in wanted if c in have]))
    return got[0], got[1], got[2]


def lead_outcomes(
    leads: pd.DataFrame, opportunities: pd.DataFrame, orders: pd.DataFrame, start=None, end=None
) -> pd.DataFrame:
    """Return one row per lead created in the window: won or not, its customer and the revenue it brought.

    A lead is *won* when one of its opportunities was won (closed by ``end``). Its
    revenue is the won deals' amounts plus the **later orders** of the customer it
    became: orders after the first win, inside the window, that do not belong to a
    won opportunity (those are counted as deal amounts already). A customer won by
    several leads credits its later orders to the first of them only.

    >>> leads = pd.DataFrame({"lead_id": ["L1", "L2"], "created_at": pd.to_datetime(["2025-01-02", "2025-01-03"]),
    ...                       "channel": ["search", "email"], "campaign_id": ["C1", "C2"]})
    >>> opps = pd.DataFrame({"opportunity_id": ["O1"], "lead_id": ["L1"], "customer_id": ["K1"], "status": ["won"],
    ...                      "amount": [100.0], "closed_at": pd.to_datetime(["2025-02-01"])})
    >>> orders = pd.DataFrame({"customer_id": ["K1", "K1"], "opportunity_id": ["O1", None],
    ...                        "order_date": pd.to_datetime(["2025-02-01", "2025-03-01"]), "amount": [100.0, 40.0]})
    >>> lead_outcomes(leads, opps, orders)[["lead_id", "won", "revenue"]].values.tolist()
    [['L1', True, 140.0], ['L2', False, 0.0]]
    """
    _check_outcome_tables(leads, opportunities, orders)
    lo, hi = day_bounds(start, end)
    cohort = leads[in_window(leads["created_at"], lo, hi)]
    opp = opportunities
    won_all = opp[(opp["status"] == "won") & opp["closed_at"].notna()]
    won = won_all[isin(won_all["lead_id"], cohort["lead_id"]) & in_window(won_all["closed_at"], None, hi)]
    won = won.sort_values(["closed_at", "opportunity_id"], kind="stable")
    g = won.groupby("lead_id", sort=False)
    per = pd.DataFrame(
        {
            "won_at": g["closed_at"].min(),
            "customer_id": g["customer_id"].first(),
            "deal_revenue": g["amount"].sum(min_count=1),
        }
    )
    out = pd.DataFrame(
        {
            "lead_id": cohort["lead_id"].to_numpy(),
            "created_at": cohort["created_at"].to_numpy(),
            "channel": cohort["channel"].to_numpy(),
            "campaign_id": cohort["campaign_id"].to_numpy(),
        }
    )
    out = out.join(per, on="lead_id")
    out["won"] = out["won_at"].notna()
    if "customer_id" in cohort:  # a won deal without a customer: fall back to the lead's customer
        lead_customer = pd.Series(cohort["customer_id"].to_numpy(), index=out.index)
        out["customer_id"] = out["customer_id"].fillna(lead_customer.where(out["won"]))
    out["deal_revenue"] = out["deal_revenue"].fillna(0.0).astype(float)

    out["repeat_revenue"] = _repeat_revenue(out, orders, won_all, lo, hi)
    out["revenue"] = out["deal_revenue"] + out["repeat_revenue"]
    return out


def _spend_share(campaigns: pd.DataFrame, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> np.ndarray:
    """Return the share of each campaign's run (start to end date, inclusive) inside [lo, hi).

    Spend is assumed even over the run; a campaign without both dates counts in full.
    """
    if lo is None and hi is None:
        return np.ones(len(campaigns))
    s = campaigns["start_date"] if "start_date" in campaigns else pd.Series(pd.NaT, index=campaigns.index)
    e = campaigns["end_date"] if "end_date" in campaigns else pd.Series(pd.NaT, index=campaigns.index)
    s = pd.to_datetime(s).dt.normalize()
    e = pd.to_datetime(e).dt.normalize() + pd.Timedelta(days=1)
    a = s.clip(lower=lo) if lo is not None else s
    b = e.clip(upper=hi) if hi is not None else e
    run = (e - s).dt.total_seconds()
    inside = (b - a).dt.total_seconds().clip(lower=0)
    share = (inside / run.where(run > 0)).clip(0, 1)
    return share.fillna(1.0).to_numpy(dtype=float)


def _metrics(out: pd.DataFrame, ltv: pd.Series | float | None, won: pd.DataFrame, key: str) -> pd.DataFrame:
    """Add conversion, CAC, ROI and (with an LTV) LTV and LTV/CAC to a table of spend, leads, customers, revenue."""
    out["leads"] = out["leads"].fillna(0).astype(int)
    out["customers"] = out["customers"].fillna(0).astype(int)
    for c in ("deal_revenue", "repeat_revenue", "revenue"):
        out[c] = out[c].fillna(0.0).astype(float)
    out["conversion"] = out["customers"] / out["leads"].where(out["leads"] > 0)
    out["cac"] = out["spend"] / out["customers"].where(out["customers"] > 0)
    out["roi"] = (out["revenue"] - out["spend"]) / out["spend"].where(out["spend"] > 0)
    if ltv is not None:
        if isinstance(ltv, pd.Series):
            per = won["customer_id"].map(ltv).astype(float)
            out["ltv"] = out[key].map(per.groupby(won[key]).mean())
        else:
            value = float(ltv)
            if not np.isfinite(value):
                raise ValueError(f"ltv_per_customer must be a finite number, got {ltv!r}")
            out["ltv"] = value
        out["ltv_cac"] = out["ltv"] / out["cac"].where(out["cac"] > 0)  # no spend: no ratio, not infinity
    return out


def _aggregate(outcomes: pd.DataFrame, key: str) -> pd.DataFrame:
    g = outcomes.groupby(key, sort=False, dropna=False)
    return pd.DataFrame(
        {
            "leads": g.size(),
            "customers": g["won"].sum(),
            "deal_revenue": g["deal_revenue"].sum(),
            "repeat_revenue": g["repeat_revenue"].sum(),
            "revenue": g["revenue"].sum(),
        }
    )


CAMPAIGN_COLUMNS = [
    "campaign_id",
    "name",
    "channel",
    "start_date",
    "end_date",
    "spend_total",
    "spend_share",
    "spend",
    "cpa_benchmark",
    "leads",
    "customers",
    "conversion",
    "cac",
    "deal_revenue",
    "repeat_revenue",
    "revenue",
    "roi",
    "ltv",
    "ltv_cac",
]
"""The columns of :func:`campaign_performance`, in order (those present)."""


def _campaign_spend(campaigns: pd.DataFrame, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> pd.DataFrame:
    """Return the campaigns' own columns with their total spend, the share of their run in [lo, hi) and its spend."""
    cols = [c for c in ("campaign_id", "name", "channel", "start_date", "end_date", "cpa_benchmark") if c in campaigns]
    base = campaigns[cols].copy()
    share = _spend_share(campaigns, lo, hi)
    base["spend_total"] = campaigns["spend"].to_numpy(dtype=float)
    base["spend_share"] = share
    base["spend"] = base["spend_total"] * share
    return base


def campaign_performance(
    campaigns: pd.DataFrame,
    leads: pd.DataFrame,
    opportunities: pd.DataFrame,
    orders: pd.DataFrame,
    start=None,
    end=None,
    ltv_per_customer: pd.Series | float | None = None,
) -> pd.DataFrame:
    """Return per campaign: spend, leads, customers, conversion, CAC, revenue, ROI (and LTV/CAC).

    * leads: leads created in the window whose ``campaign_id`` is the campaign (last touch);
    * customers: those leads with a won opportunity (closed by ``end``);
    * conversion = customers / leads; CAC = spend / customers, NaN (never inf) with no customer;
    * revenue: see :func:`lead_outcomes` (won deal amounts + the customers' later orders in the window);
    * ROI = (revenue − spend) / spend, NaN without spend;
    * with ``ltv_per_customer`` (a Series by customer_id, or one number for all):
      ltv (average over the campaign's customers; customers missing from the Series are
      left out of that average) and ltv_cac = ltv / CAC.

    With a window, spend is the campaign's spend times the share of its run (start to
    end date) inside the window (``spend_share``); without one, all of it. Every
    campaign of ``campaigns`` gets a row; leads naming a campaign the table lacks get a
    row with unknown spend; leads without a campaign only appear in
    :func:`channel_performance`. A lead created near ``end`` has had little time to be
    won, so a window that ends at the export date understates its last weeks.
    """
    check_table(campaigns, "campaigns", ["campaign_id", "channel", "spend"])
    if campaigns["campaign_id"].duplicated().any():
        dup = campaigns.loc[campaigns["campaign_id"].duplicated(), "campaign_id"].iloc[0]
        raise ValueError(f"table 'campaigns': campaign_id must be unique, {dup!r} appears more than once")
    lo, hi = day_bounds(start, end)
    base = _campaign_spend(campaigns, lo, hi)
    outcomes = once(lead_outcomes, (leads, opportunities, orders), start, end)  # campaigns and channels: once
    outcomes = outcomes[outcomes["campaign_id"].notna()]
    agg = _aggregate(outcomes, "campaign_id").rename_axis("campaign_id").reset_index()
    out = base.merge(agg, on="campaign_id", how="outer", sort=False, indicator=True)
    known = out.pop("_merge") != "right_only"
    out = pd.concat([out[known], out[~known]], ignore_index=True)  # the campaign table's order, then strays
    out["campaign_id"] = out["campaign_id"].astype(object)
    out = _metrics(out, ltv_per_customer, outcomes[outcomes["won"]], "campaign_id")
    return out[[c for c in CAMPAIGN_COLUMNS if c in out]]


def channel_performance(
    campaigns: pd.DataFrame,
    leads: pd.DataFrame,
    opportunities: pd.DataFrame,
    orders: pd.DataFrame,
    start=None,
    end=None,
    ltv_per_customer: pd.Series | float | None = None,
) -> pd.DataFrame:
    """Return :func:`campaign_performance`'s figures per channel (the lead's channel, spend of the channel's campaigns).

    ``cpa_benchmark`` of a channel is the CAC it would have had if each of its
    campaigns had met its own benchmark: Σ(benchmark × customers) / customers. A lead
    without a channel takes its campaign's; otherwise it is counted as ``(unknown)``.
    """
    check_table(campaigns, "campaigns", ["campaign_id", "channel", "spend"])
    lo, hi = day_bounds(start, end)
    outcomes = once(lead_outcomes, (leads, opportunities, orders), start, end)  # campaigns and channels: once
    camp_channel = campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["channel"]
    channel = outcomes["channel"].fillna(outcomes["campaign_id"].map(camp_channel))
    outcomes = outcomes.assign(channel=as_label(channel))
    spend = pd.DataFrame(
        {
            "channel": as_label(campaigns["channel"]).to_numpy(),
            "spend": campaigns["spend"].to_numpy(dtype=float) * _spend_share(campaigns, lo, hi),
            "campaigns": 1,
        }
    )
    agg_spend = spend.groupby("channel", sort=False).agg(spend=("spend", "sum"), campaigns=("campaigns", "sum"))
    agg = _aggregate(outcomes, "channel")
    out = agg_spend.join(agg, how="outer").rename_axis("channel").reset_index()
    out["campaigns"] = out["campaigns"].fillna(0).astype(int)
    out["spend"] = out["spend"].fillna(0.0)
    if "cpa_benchmark" in campaigns:
        bench = outcomes["campaign_id"].map(
            campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["cpa_benchmark"]
        )
        w = outcomes.assign(b=bench)[outcomes["won"] & bench.notna()]
        g = w.groupby("channel")["b"]
        out["cpa_benchmark"] = out["channel"].map(g.sum() / g.size())
    out = _metrics(out, ltv_per_customer, outcomes[outcomes["won"]], "channel")
    out = out.sort_values(["leads", "spend"], ascending=False, kind="stable").reset_index(drop=True)
    order = [
        "channel",
        "campaigns",
        "spend",
        "cpa_benchmark",
        "leads",
        "customers",
        "conversion",
        "cac",
        "deal_revenue",
        "repeat_revenue",
        "revenue",
        "roi",
        "ltv",
        "ltv_cac",
    ]
    return out[[c for c in order if c in out]]


def cpa_alerts(performance: pd.DataFrame, tolerance: float = 0.30) -> pd.DataFrame:
    """Return the campaigns (or channels) whose CAC is more than ``tolerance`` over benchmark, or that won nobody.

    ``alert`` is ``over_benchmark`` (CAC > benchmark × (1 + tolerance), strictly; the
    overrun is CAC / benchmark − 1, e.g. 0.31 for 31%) or ``no_customers`` (spend but
    no acquired customer: CAC is undefined, so it is flagged on its own).
    ``excess_spend`` is what was spent above the benchmark: spend − customers × benchmark.

    >>> perf = pd.DataFrame({"campaign_id": ["A", "B", "C"], "spend": [131.0, 129.0, 50.0],
    ...                      "customers": [1, 1, 0], "cac": [131.0, 129.0, np.nan], "cpa_benchmark": [100.0] * 3})
    >>> cpa_alerts(perf)[["campaign_id", "alert"]].values.tolist()
    [['A', 'over_benchmark'], ['C', 'no_customers']]
    """
    check_table(performance, "performance", ["spend", "customers", "cac", "cpa_benchmark"])
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a share ≥ 0 (write 30% as 0.30), got {tolerance!r}")
    key = next((k for k in ("campaign_id", "channel") if k in performance), None)
    if key is None:
        raise ValueError("table 'performance': needs a campaign_id or channel column")
    p = performance
    bench = p["cpa_benchmark"].astype(float)
    overrun = p["cac"].astype(float) / bench.where(bench > 0) - 1
    over = (p["customers"] > 0) & (overrun.round(9) > tolerance)
    none = (p["customers"] == 0) & (p["spend"].fillna(0) > 0)
    cols = list(dict.fromkeys(c for c in (key, "name", "channel") if c in p))
    out = p.loc[over | none, cols + ["spend", "customers", "cac", "cpa_benchmark"]].copy()
    out["overrun"] = overrun[over | none]
    out["excess_spend"] = out["spend"] - out["customers"] * out["cpa_benchmark"]
    out["alert"] = np.where(over[over | none], "over_benchmark", "no_customers")
    out = out.sort_values(["alert", "overrun", "spend"], ascending=[False, False, False], kind="stable")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- channel x stage
def channel_stage_matrix(
    leads: pd.DataFrame,
    opportunities: pd.DataFrame,
    stage_history: pd.DataFrame,
    stages: Sequence[str] = FUNNEL_STAGES,
    total: bool = True,
) -> pd.DataFrame:
    """Return per channel and funnel stage: leads reaching it, share of the channel's leads, stage-to-stage rate.

    Reach follows :func:`crmnb.analysis.funnel.stage_reach` (the furthest stage a lead got to
    counts for every stage before it). ``reach_rate`` = reached / the channel's leads;
    ``step_rate`` = reached / reached at the previous stage of ``stages`` (NaN for the
    first). One row per channel and stage, channels by number of leads, then (with
    ``total``) the row ``all channels``. :func:`stage_matrix` pivots it for :func:`heatmap`.
    """
    check_table(leads, "leads", ["lead_id", "channel", "first_contact_at"])
    check_table(opportunities, "opportunities", ["opportunity_id", "lead_id", "status"], allow_empty=True)
    check_table(stage_history, "stage_history", ["opportunity_id", "stage"], allow_empty=True)
    stages = list(stages)
    bad = [s for s in stages if s not in FUNNEL_STAGES]
    if bad or not stages:
        raise ValueError(
            f"unknown stage(s) {', '.join(bad) or '(none given)'}; expected some of {', '.join(FUNNEL_STAGES)}"
        )
    idx = np.array([FUNNEL_STAGES.index(s) for s in stages])
    if (np.diff(idx) <= 0).any():
        raise ValueError(f"stages must follow the funnel's order ({', '.join(FUNNEL_STAGES)}), got {stages}")
    if leads["lead_id"].duplicated().any():
        raise ValueError("table 'leads': lead_id must be unique")
    opp = opportunities[isin(opportunities["lead_id"], leads["lead_id"])]
    reach = stage_reach(leads, opp, stage_history)["reach"].to_numpy()
    hit = (reach[:, None] >= idx[None, :]).astype(int)
    channel = as_label(leads["channel"]).to_numpy()
    counts = pd.DataFrame(hit, columns=stages).groupby(channel, sort=False).sum()
    size = pd.Series(channel).value_counts(sort=False)
    counts.insert(0, "_leads", size.reindex(counts.index).to_numpy())
    counts = counts.sort_values("_leads", ascending=False, kind="stable")
    if total:
        counts.loc[ALL_CHANNELS] = counts.sum()
    n = counts.pop("_leads")
    reached = counts.to_numpy(dtype=float)
    prev = np.column_stack([np.full(len(reached), np.nan), reached[:, :-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(prev > 0, reached / prev, np.nan)
    k = len(stages)
    return pd.DataFrame(
        {
            "channel": np.repeat(counts.index.to_numpy(), k),
            "stage": np.tile(stages, len(counts)),
            "leads": np.repeat(n.to_numpy(), k).astype(int),
            "reached": reached.ravel().astype(int),
            "reach_rate": (reached / n.to_numpy()[:, None]).ravel(),
            "step_rate": step.ravel(),
        }
    )


def stage_matrix(table: pd.DataFrame, value: str = "reach_rate") -> pd.DataFrame:
    """Return :func:`channel_stage_matrix` as a channel × stage grid of ``value`` (reach_rate or step_rate).

    For ``step_rate`` the columns are the steps ``a → b`` (the first stage, without a
    step into it, is left out).

    >>> t = pd.DataFrame({"channel": ["x", "x"], "stage": ["lead", "won"], "reach_rate": [1.0, 0.25],
    ...                   "step_rate": [np.nan, 0.25]})
    >>> stage_matrix(t, "step_rate").columns.tolist()
    ['lead → won']
    """
    check_table(table, "channel_stage_matrix", ["channel", "stage", value])
    if value not in ("reach_rate", "step_rate"):
        raise ValueError(f"value must be 'reach_rate' or 'step_rate', got {value!r}")
    stages = list(dict.fromkeys(table["stage"]))
    channels = list(dict.fromkeys(table["channel"]))
    m = table.pivot(index="channel", columns="stage", values=value).reindex(index=channels, columns=stages)
    if value == "step_rate":
        m = m.iloc[:, 1:]
        m.columns = [f"{a} → {b}" for a, b in zip(stages[:-1], stages[1:])]
    m.columns.name = None
    return m
