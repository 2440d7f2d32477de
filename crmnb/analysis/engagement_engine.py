"""The e-mail funnel and A/B readout counted by DuckDB over the cleaned hand-offs.

The e-mail events are the largest export (ten million rows at 100 times the demo). DuckDB folds them
into one row per send and counts the sends per campaign (the funnel) and per campaign and variant (the
A/B readout) over the hand-off files, so pandas holds only those counts; a file of more than
:data:`EVENTS_PER_PART` events is counted in parts, each over a share of the recipients. The figures are those of
:func:`crmnb.analysis.engagement.email_funnel` and :func:`~crmnb.analysis.engagement.ab_tests`: the
same sends (grouped by campaign, mailing or campaign, and recipient; the first value of each field in
the file's order), the same window on a send's first event, the same tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from crmnb.analysis import engagement as en
from crmnb.analysis.marketing import day_bounds
from crmnb.analysis.metric_engine import unread_file

SENDS_SQL = """
WITH won AS (SELECT DISTINCT lead_id FROM {opportunities} WHERE status = 'won' AND lead_id IS NOT NULL),
known AS (SELECT DISTINCT lead_id FROM {leads} WHERE lead_id IS NOT NULL),
ev AS (
    SELECT campaign_id, {email} AS email_id, recipient_id, _row AS _r, {variant} AS variant,
           {subject} IS NOT NULL AS has_subject, lead_id IS NOT NULL AS has_lead,
           lead_id IN (SELECT lead_id FROM known) AS is_lead, lead_id IN (SELECT lead_id FROM won) AS is_won,
           CAST(event AS VARCHAR) AS event, occurred_at
    FROM read_parquet($events)
    WHERE campaign_id IS NOT NULL AND recipient_id IS NOT NULL{part}
), s AS (
    SELECT campaign_id, email_id, recipient_id, min(_r) AS first_row,
           bool_or(event = 'bounce') AS bounced, bool_or(event IN ('open', 'click')) AS opened,
           bool_or(event = 'click') AS clicked, bool_or(event = 'unsubscribe') AS unsubscribed,
           min(occurred_at) AS first_at,
           arg_min(variant, _r) FILTER (WHERE variant IS NOT NULL) AS variant,
           min(_r) FILTER (WHERE has_subject) AS subject_row,
           coalesce(arg_min(is_lead, _r) FILTER (WHERE has_lead), false) AS is_lead,
           coalesce(arg_min(is_won, _r) FILTER (WHERE has_lead), false) AS is_won
    FROM ev GROUP BY ALL
)
SELECT * FROM s
WHERE ($lo IS NULL OR first_at >= $lo) AND ($hi IS NULL OR first_at < $hi)
"""
"""One row per send first seen in [lo, hi), as :func:`crmnb.analysis.engagement.sends` makes it: its flags,
variant, the row of its first subject line, and whether its (first named) lead is known and won. The lead's
id is looked up per event, so the grouping carries flags rather than text."""

COUNTS_SQL = """
WITH s AS ({sends}),
c AS (
    SELECT campaign_id, variant, count(*) AS sent, count(*) FILTER (WHERE opened) AS opened,
           count(*) FILTER (WHERE clicked) AS clicked, count(*) FILTER (WHERE is_lead) AS lead,
           count(*) FILTER (WHERE is_lead AND is_won) AS won,
           count(*) FILTER (WHERE bounced) AS bounced, count(*) FILTER (WHERE unsubscribed) AS unsubscribed,
           arg_min(subject_row, first_row) FILTER (WHERE subject_row IS NOT NULL) AS subject_row,
           min(first_row) FILTER (WHERE subject_row IS NOT NULL) AS subject_first
    FROM s GROUP BY campaign_id, variant
)
SELECT c.*, e.subject
FROM c LEFT JOIN (SELECT _row, {subject} AS subject FROM read_parquet($events)) e ON e._row = c.subject_row
"""
"""Per campaign and variant (missing for sends without one): the sends reaching each stage of the funnel,
those bounced and unsubscribed, and the subject line of the variant's first send that has one."""

MEMORY_LIMITS = ("384MB", "1GB", "3GB")
"""DuckDB's memory for the counts: past it the grouping spills to disk rather than growing with the data.
The first limit holds at 100 times the demo (10 M events, 8 M sends; 256 MB does not: the lookups of the
leads' ids do not spill); a larger export that needs more runs again with the next."""

_LAST: dict[tuple, pd.DataFrame] = {}
"""The counts of the last events file and window, so the A/B readout reuses the funnel's single pass."""


def event_file(tables: Mapping[str, pd.DataFrame]) -> Path | None:
    """Return the e-mail events' hand-off file when DuckDB can count it (not read whole yet, every column
    the funnel needs present, rows in it), else None: the pandas functions then take the frame."""
    import pyarrow.parquet as pq

    path = unread_file(tables, "email_events")
    if path is None:
        return None
    meta = pq.read_metadata(path)
    names = meta.schema.to_arrow_schema().names
    if meta.num_rows == 0 or "_row" not in names or any(c not in names for c in en.NEEDED):
        return None
    return Path(path)


EVENTS_PER_PART = 15_000_000
"""Events counted in one pass: a larger file is counted in parts, each over the sends of a share of the
recipients (a send is one recipient's), and the parts' counts added. At 1000 times the demo the 106 M events
fold into 80 M sends, whose grouping in one pass spilled more than 18 GB to disk; a part's fits in memory."""


def _parts(path: Path) -> int:
    """Return how many parts the events' file is counted in (one up to :data:`EVENTS_PER_PART` rows)."""
    import pyarrow.parquet as pq

    return max(1, -(-pq.read_metadata(path).num_rows // EVENTS_PER_PART))


def _counts_sql(path: Path, part: int = 0, parts: int = 1) -> str:
    """Return the counts query for the columns the events' file has (the optional ones may be missing), over
    the sends of part ``part`` of ``parts`` of the recipients (all of them in one part)."""
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    subject = "subject" if "subject" in names else "NULL::VARCHAR"
    sends = SENDS_SQL.format(
        email="coalesce(email_id, campaign_id)" if "email_id" in names else "campaign_id",
        variant="variant" if "variant" in names else "NULL::VARCHAR",
        subject=subject,
        part=f" AND hash(recipient_id) % {parts} = {part}" if parts > 1 else "",
        leads="{leads}",
        opportunities="{opportunities}",
    )
    return COUNTS_SQL.replace("{sends}", sends).replace("{subject}", subject)


def _source(con, tables: Mapping[str, pd.DataFrame], name: str, columns: list[str]) -> str:
    """Return how the query names table ``name``: its hand-off file while unread, else its frame's columns."""
    path = tables.unread_file(name)
    if path is not None:
        return "read_parquet('" + str(path).replace("'", "''") + "')"
    frame = tables[name]
    con.register(f"frame_{name}", frame[[c for c in columns if c in frame]])
    return f"frame_{name}"


def _run(sql: str, params: dict[str, Any], tables: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Return the result of ``sql`` on a fresh connection as a pandas frame; ``{leads}`` and ``{opportunities}``
    in it name those tables of ``tables``."""
    from crmnb.frames import connect, with_memory

    def attempt(limit: str) -> pd.DataFrame:
        con = connect()
        try:
            con.execute(f"SET memory_limit = '{limit}'")
            con.execute("SET preserve_insertion_order = false")
            query = sql
            if tables is not None:
                query = query.replace("{leads}", _source(con, tables, "leads", ["lead_id"]))
                query = query.replace("{opportunities}", _source(con, tables, "opportunities", ["lead_id", "status"]))
            return con.sql(query, params=params).df()
        finally:
            con.close()

    return with_memory(MEMORY_LIMITS, attempt)


def send_counts(tables: Mapping[str, pd.DataFrame], path: Path, start=None, end=None) -> pd.DataFrame:
    """Return per campaign and variant the sends at each stage and side count and the first subject line,
    counted by DuckDB over the events, in one pass or a few (:func:`_parts`; kept for the A/B readout of the
    same file and window)."""
    lo, hi = day_bounds(start, end)
    key = (str(path), path.stat().st_mtime_ns, lo, hi)
    params, parts = {"events": str(path), "lo": lo, "hi": hi}, _parts(path)
    counts = _added([_run(_counts_sql(path, part, parts), params, tables) for part in range(parts)])
    _LAST.clear()
    _LAST[key] = counts
    return counts


def _added(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Return the counts of the parts added per campaign and variant, each with the subject line of its first
    send that has one over all parts (the one of least first row)."""
    if len(parts) == 1:
        return parts[0].drop(columns="subject_first")
    both = pd.concat(parts, ignore_index=True)
    keys, columns = ["campaign_id", "variant"], [c for c in parts[0] if c not in ("subject_first", "subject")]
    counted = [c for c in columns if c not in (*keys, "subject_row")]
    sums = both.groupby(keys, dropna=False, sort=False)[counted].sum().reset_index()
    first = both[both["subject_first"].notna()].sort_values("subject_first", kind="stable").drop_duplicates(keys)
    out = sums.merge(first[[*keys, "subject_row", "subject"]], on=keys, how="left")
    return out[[*columns, "subject"]]


def funnel_counts(tables: Mapping[str, pd.DataFrame], path: Path, start=None, end=None) -> pd.DataFrame:
    """Return per campaign (sorted by id) the sends at each stage and side count, counted by DuckDB."""
    counts = send_counts(tables, path, start, end)
    columns = list(en.STAGES + en.SIDE)
    return counts.groupby("campaign_id", sort=True)[columns].sum().astype(int)


def funnel_or_gap(tables: Mapping[str, pd.DataFrame], start=None, end=None) -> tuple[pd.DataFrame, str | None]:
    """Return the e-mail funnel and None, or an empty funnel and why it is missing, as
    :func:`crmnb.analysis.engagement.funnel_or_gap` over the step's tables; counted by DuckDB when it can."""
    path = event_file(tables)
    if path is None:
        events = tables["email_events"] if "email_events" in tables else None
        return en.funnel_or_gap(events, tables["leads"], tables["opportunities"], tables["campaigns"], start, end)
    return en.funnel_from_counts(funnel_counts(tables, path, start, end), tables["campaigns"]), None


def ab_counts(tables: Mapping[str, pd.DataFrame], path: Path, start=None, end=None) -> pd.DataFrame:
    """Return per campaign and variant the sends, opens, clicks and subject line (the funnel's pass when it
    counted the same file and window, else a new one)."""
    lo, hi = day_bounds(start, end)
    counts = _LAST.get((str(path), path.stat().st_mtime_ns, lo, hi))
    if counts is None:
        counts = send_counts(tables, path, start, end)
    counts = counts[counts["variant"].notna()].rename(columns={"sent": "sends"})
    return counts[["campaign_id", "variant", "sends", "opened", "clicked", "subject"]]


def ab_or_empty(
    tables: Mapping[str, pd.DataFrame], start=None, end=None, min_sends: int = en.MIN_PER_VARIANT
) -> pd.DataFrame:
    """Return the A/B readout as :func:`crmnb.analysis.engagement.ab_or_empty` over the step's tables."""
    path = event_file(tables)
    if path is None:
        events = tables["email_events"] if "email_events" in tables else None
        return en.ab_or_empty(events, tables["campaigns"], start, end, min_sends)
    return en.ab_from_counts(ab_counts(tables, path, start, end), tables["campaigns"], min_sends)
