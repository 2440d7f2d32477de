"""Scoring features built in the engine: DuckDB over the cleaned hand-offs, as of each scoring date.

At 100 times the demo the leads are 1.5 million rows, the touches 3 million, the stage history
1.8 million; the features read of them, per record open at a date, are a few columns. DuckDB picks
the records open at the date, each deal's last stage entered by then, the touches by then and the
closed deals' counts per rep and industry, over the hand-off files, so no step holds those tables in
pandas. What comes back goes through the same pandas code as the frames' path
(:func:`crmnb.analysis.scoring_features.assemble` and ``finish``), so the features are the same.
Every query reads only rows dated on or before the scoring date (the label's query alone looks after).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crmnb.analysis.scoring_features import (
    COLUMNS,
    DEAL_STAGES,
    UNKNOWN,
    assemble,
    finish,
)
from crmnb.analysis.scoring_features import (
    feature_tables as frame_tables,
)
from crmnb.analysis.win_rates import lookup, shrunk_rates
from crmnb.frames import isin

TIMES = {
    "leads": ("created_at", "first_contact_at"),
    "opportunities": ("created_at", "closed_at"),
    "stage_history": ("entered_at",),
    "touches": ("touched_at",),
}
"""The time columns the queries compare with the scoring date: they must be timestamps in the files."""

_ORDER = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(DEAL_STAGES))

RECORDS_SQL = f"""
WITH opps AS (
    SELECT *, file_row_number AS rn FROM read_parquet($opps, file_row_number = true)
    WHERE created_at <= $cut
), deals AS (
    SELECT * FROM opps WHERE closed_at > $cut OR (closed_at IS NULL AND status = 'open')
), lead_of AS (
    SELECT lead_id, channel, created_at, first_contact_at FROM read_parquet($leads, file_row_number = true)
    WHERE lead_id IN (SELECT lead_id FROM deals)
    QUALIFY row_number() OVER (PARTITION BY lead_id ORDER BY file_row_number) = 1
), stage AS (
    SELECT opportunity_id, stage, entered_at FROM (
        SELECT opportunity_id, stage, entered_at, file_row_number AS rn,
               CASE stage {_ORDER} END AS ord
        FROM read_parquet($stages, file_row_number = true)
        WHERE entered_at <= $cut
    ) WHERE ord IS NOT NULL AND opportunity_id IN (SELECT opportunity_id FROM deals)
    QUALIFY row_number() OVER (PARTITION BY opportunity_id ORDER BY entered_at DESC, ord DESC, rn DESC) = 1
), industry AS (
    SELECT customer_id, industry FROM (
        SELECT customer_id, industry, file_row_number AS rn FROM read_parquet($customers, file_row_number = true)
    ) WHERE customer_id IN (SELECT customer_id FROM deals)
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY rn) = 1
), fresh AS (
    -- the leads read twice, each scan with its own filter, rather than all 1.5 million held for both
    SELECT l.* FROM (
        SELECT lead_id, created_at, first_contact_at, department, owner_rep, channel, customer_id,
               file_row_number AS rn
        FROM read_parquet($leads, file_row_number = true)
        WHERE created_at <= $cut AND created_at > $since
    ) l ANTI JOIN (SELECT DISTINCT lead_id FROM opps WHERE lead_id IS NOT NULL) m
        ON l.lead_id = m.lead_id
    WHERE l.created_at <= $cut AND l.created_at > $since
), recs AS (
    SELECT 0 AS part, d.rn, d.opportunity_id, d.lead_id, d.department, d.owner_rep, d.customer_id,
           lo.channel AS lead_channel, lo.created_at AS lead_created_at, d.created_at,
           lo.first_contact_at AS lead_first_contact_at, d.amount::DOUBLE AS amount, d.expected_close_date,
           s.stage AS stage_at, s.entered_at, coalesce(i.industry, '{UNKNOWN}') AS industry_at
    FROM deals d
    LEFT JOIN lead_of lo ON d.lead_id = lo.lead_id
    LEFT JOIN stage s ON d.opportunity_id = s.opportunity_id
    LEFT JOIN industry i ON d.customer_id = i.customer_id
    UNION ALL
    SELECT 1, f.rn, NULL, f.lead_id, f.department, f.owner_rep, f.customer_id, f.channel, f.created_at, NULL,
           f.first_contact_at, NULL, NULL, NULL, NULL, '{UNKNOWN}'
    FROM fresh f
), touched AS (
    SELECT lead_id, count(*) AS touches FROM read_parquet($touches)
    WHERE touched_at <= $cut AND lead_id IN (SELECT lead_id FROM recs)
    GROUP BY lead_id
)
SELECT recs.*, coalesce(touched.touches, 0)::DOUBLE AS touches
FROM recs LEFT JOIN touched ON recs.lead_id = touched.lead_id
ORDER BY part, rn
"""
"""The records open at $cut (deals open then, in the file's order; then the leads of ($since, $cut] without a deal
by then), each with its lead's channel and times, its last deal stage entered by then, its company's industry and
its touches by then."""

CLOSED_SQL = f"""
WITH closed AS (
    SELECT o.*, o.file_row_number AS rn FROM read_parquet($opps, file_row_number = true) o
    WHERE closed_at IS NOT NULL AND closed_at <= $cut AND status IN ('won', 'lost')
), industry AS (
    SELECT customer_id, industry FROM (
        SELECT customer_id, industry, file_row_number AS rn FROM read_parquet($customers, file_row_number = true)
    ) WHERE customer_id IN (SELECT customer_id FROM closed)
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY rn) = 1
), channel AS (
    SELECT lead_id, channel FROM (
        SELECT lead_id, channel, file_row_number AS rn FROM read_parquet($leads, file_row_number = true)
    ) WHERE lead_id IN (SELECT lead_id FROM closed)
    QUALIFY row_number() OVER (PARTITION BY lead_id ORDER BY rn) = 1
)
SELECT c.owner_rep, c.department, coalesce(i.industry, '{UNKNOWN}') AS industry,
       CASE WHEN coalesce(c.amount, 0) >= $high THEN 'large_deal'
            WHEN coalesce(c.amount, 0) >= $low THEN 'medium_deal' ELSE 'small_deal' END AS size,
       coalesce(ch.channel, '{UNKNOWN}') AS channel,
       count(*) AS deals, count(*) FILTER (WHERE c.status = 'won') AS won, min(c.rn) AS first
FROM closed c
LEFT JOIN industry i ON c.customer_id = i.customer_id
LEFT JOIN channel ch ON c.lead_id = ch.lead_id
WHERE $with_rep = false OR c.owner_rep IS NOT NULL
GROUP BY ALL
ORDER BY first
"""
"""The deals won or lost by $cut, counted per rep, department, industry, size band (by the terciles $low and
$high) and channel, in the order of each group's first deal in the file."""


REP_SQL = f"""
WITH closed AS (
    SELECT owner_rep, customer_id, status FROM read_parquet($opps)
    WHERE closed_at IS NOT NULL AND closed_at <= $cut AND status IN ('won', 'lost')
), industry AS (
    SELECT customer_id, industry FROM (
        SELECT customer_id, industry, file_row_number AS rn FROM read_parquet($customers, file_row_number = true)
    ) WHERE customer_id IN (SELECT customer_id FROM closed)
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY rn) = 1
)
SELECT c.owner_rep, coalesce(i.industry, '{UNKNOWN}') AS industry, count(*) AS deals,
       count(*) FILTER (WHERE c.status = 'won') AS won
FROM closed c LEFT JOIN industry i ON c.customer_id = i.customer_id
GROUP BY ALL
"""
"""The deals won or lost by $cut, counted per rep and industry (a deal without a rep among them)."""


@dataclass(frozen=True)
class FeatureFiles:
    """The cleaned hand-off files the scoring features are counted over, by DuckDB, at each scoring date."""

    paths: dict[str, Path]

    def _sql(self, sql: str, **params) -> pd.DataFrame:
        from crmnb.analysis.metric_engine import run_sql

        files = {
            "opps": "opportunities",
            "leads": "leads",
            "stages": "stage_history",
            "customers": "customers",
            "touches": "touches",
        }
        named = {k: str(self.paths[v]) for k, v in files.items() if f"${k}" in sql}
        # on the shared database (25 queries a step, each a new database cost 50 ms), with the metrics' memory
        # limits: at 1000x the demo the records at a cut need more than 512 MB, where step 6 had stopped with
        # DuckDB's out-of-memory error under the limit the last query left
        return run_sql(sql, {**named, **params}, result=frame)

    def features_at(self, cut: pd.Timestamp, window_days: int, strength: float | None = None) -> pd.DataFrame:
        """Return the records open at ``cut`` with their features, as :func:`scoring_features.features_at` does."""
        since = cut - pd.Timedelta(days=window_days)
        got = self._sql(RECORDS_SQL, cut=cut, since=since)
        got["expected_close_date"] = pd.to_datetime(got["expected_close_date"], errors="coerce")
        deal = got["part"].to_numpy() == 0
        deals, fresh = got[deal].reset_index(drop=True), got[~deal].reset_index(drop=True)
        lead_names = {
            "lead_channel": "channel",
            "lead_created_at": "created_at",
            "lead_first_contact_at": "first_contact_at",
        }
        fresh = fresh.drop(columns=["created_at"]).rename(columns=lead_names)
        rec = assemble(deals, fresh)
        stage = pd.concat([deals["stage_at"], fresh["stage_at"]], ignore_index=True).astype(object)
        entered = pd.to_datetime(pd.concat([deals["entered_at"], fresh["entered_at"]], ignore_index=True))
        st = pd.DataFrame(
            {
                "stage": stage.fillna(DEAL_STAGES[0]).to_numpy(),
                "entered": entered.fillna(rec["opp_created"]).to_numpy(),
            },
            index=rec.index,
        )
        touches = np.concatenate([deals["touches"].to_numpy(float), fresh["touches"].to_numpy(float)])
        industry = pd.Series(
            np.concatenate([deals["industry_at"].to_numpy(object), fresh["industry_at"].to_numpy(object)]),
            index=rec.index,
        ).astype(str)
        return finish(rec, cut, st, touches, industry, lambda r: self._rep_rates(r, cut, strength))

    def _rep_rates(self, rec: pd.DataFrame, cut: pd.Timestamp, strength) -> pd.DataFrame:
        """Return each record's rep win rate and rep × industry win rate from deals closed by ``cut`` (shrunk)."""
        out = pd.DataFrame({"rep_rate": np.nan, "rep_industry_rate": np.nan}, index=rec.index)
        cells = self._sql(REP_SQL, cut=cut)
        if cells.empty or cells["owner_rep"].isna().all():
            return out
        rates = shrunk_rates(cells, "owner_rep", "industry", strength)
        rep_rate = rates.drop_duplicates("owner_rep").set_index("owner_rep")["rep_rate"]
        out["rep_rate"] = rec["owner_rep"].map(rep_rate).to_numpy(dtype=float)
        out["rep_industry_rate"] = lookup(rates, "owner_rep", "industry", rec["owner_rep"], rec["industry"])
        return out

    def won_within(self, records: pd.DataFrame, cut: pd.Timestamp, window_days: int) -> pd.Series:
        """Return whether each record's deal was won within ``window_days`` after ``cut`` (the label)."""
        won = self._sql(
            "SELECT opportunity_id, lead_id FROM read_parquet($opps) "
            "WHERE status = 'won' AND closed_at > $cut AND closed_at <= $end",
            cut=cut,
            end=cut + pd.Timedelta(days=window_days),
        )
        by_deal = isin(records["opportunity_id"], won["opportunity_id"])
        by_lead = (records["kind"] == "lead") & isin(records["lead_id"], won["lead_id"].dropna())
        return (by_deal | by_lead).rename("won")

    def closed_cells(self, as_of: pd.Timestamp) -> pd.DataFrame:
        """Return the deals closed by ``as_of`` with a rep, counted per rep, department, industry, size band and
        channel (``deals``, ``won``), the size bands' edges in ``attrs["size_edges"]``."""
        amounts = self._sql(
            "SELECT amount::DOUBLE AS amount FROM read_parquet($opps) WHERE closed_at IS NOT NULL "
            "AND closed_at <= $cut AND status IN ('won', 'lost') AND owner_rep IS NOT NULL",
            cut=as_of,
        )["amount"]
        edges = amounts.quantile([1 / 3, 2 / 3]).to_numpy() if len(amounts) else np.array([0.0, 0.0])
        cells = self._sql(CLOSED_SQL, cut=as_of, low=float(edges[0]), high=float(edges[1]), with_rep=True)
        cells = cells.drop(columns="first").astype({"deals": "int64", "won": "int64"})
        cells.attrs["size_edges"] = edges.tolist()
        return cells


def frame(relation) -> pd.DataFrame:
    """Return a query's result as a frame, through Arrow (a fifth faster than ``.df()`` at 100x) where that
    gives the very frame ``.df()`` gives: text with some value, floats, naive timestamps, whole numbers with
    no gap; else (a text column of no value, which ``.df()`` types as objects, no row, other types) by ``.df()``."""
    import pyarrow as pa

    got = relation.to_arrow_table()

    def same(column: str, kind) -> bool:
        gaps = got[column].null_count
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return gaps < got.num_rows
        if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            return gaps == 0
        return pa.types.is_floating(kind) or (pa.types.is_timestamp(kind) and kind.tz is None)

    if got.num_rows == 0 or not all(same(f.name, f.type) for f in got.schema):
        return relation.df()
    return got.to_pandas()


def typed(path: Path, table: str) -> bool:
    """Return True when the file has every feature column, its times as timestamps and its ids as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {f.name: f.type for f in pq.read_schema(path)}
    if any(c not in types for c in COLUMNS[table]):
        return False
    times = all(pa.types.is_timestamp(types[c]) and types[c].tz is None for c in TIMES.get(table, ()))
    ids = [c for c in COLUMNS[table] if c.endswith("_id")]
    return times and all(pa.types.is_string(types[c]) or pa.types.is_large_string(types[c]) for c in ids)


def feature_tables(tables):
    """Return what the scoring features read of a step's tables: their hand-off files while the step has not read
    them whole (counted by DuckDB at each date), else the columns they need as frames."""
    from crmnb.analysis.metric_engine import unread_file

    paths = {name: unread_file(tables, name) for name in COLUMNS}
    if all(p is not None and typed(Path(p), n) for n, p in paths.items()):
        return FeatureFiles({n: Path(p) for n, p in paths.items()})
    return frame_tables(tables)
