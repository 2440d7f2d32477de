"""Scoring features counted by DuckDB over the hand-off files: the same as from frames, and nothing after the date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_scoring import CUT, _small

from crmnb.analysis import routing, scoring
from crmnb.analysis.pipeline_work import work_list
from crmnb.analysis.scoring_engine import FeatureFiles, feature_tables
from crmnb.analysis.scoring_features import COLUMNS, features_at, won_within
from crmnb.analysis.scoring_words import worded
from crmnb.handoffs import Workspace
from crmnb.params.predict import PredictSettings


def _workspace(tmp_path, tables: dict[str, pd.DataFrame]) -> Workspace:
    """Return a workspace whose cleaning step wrote ``tables``."""
    ws = Workspace(tmp_path, "case")
    for name, df in tables.items():
        ws.write(f"clean/{name}", df)
    return ws


def _both(tmp_path, tables) -> tuple[FeatureFiles, dict[str, pd.DataFrame]]:
    """Return the engine's source over the written tables and the frames read back from the same files."""
    ws = _workspace(tmp_path, tables)
    src = feature_tables(ws.tables("clean"))
    assert isinstance(src, FeatureFiles)
    return src, {n: ws.read(f"clean/{n}") for n in tables}


def test_engine_features_equal_the_frames(tmp_path) -> None:
    src, frames = _both(tmp_path, _small())
    for cut in (CUT, CUT - pd.Timedelta(days=60), CUT + pd.Timedelta(days=40)):
        a, b = features_at(src, cut, 90), features_at(frames, cut, 90)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        pd.testing.assert_series_equal(won_within(src, a, cut, 90), won_within(frames, b, cut, 90))
    x = features_at(src, CUT, 90).set_index("record_id")
    assert sorted(x.index) == ["L2", "L3", "O1"]
    assert x.loc["O1", "stage"] == "proposal" and x.loc["O1", "touches"] == 1 and x.loc["L2", "touches"] == 2


def test_engine_uses_nothing_after_the_scoring_date(tmp_path) -> None:
    """Rewrite everything after the cut in the files (later stages, closes, touches, contacts): features stay equal."""
    before = features_at(_both(tmp_path / "a", _small())[0], CUT, 90)
    t = _small()
    t["stage_history"].loc[t["stage_history"]["entered_at"] > CUT, "entered_at"] = pd.Timestamp("2025-12-01")
    t["stage_history"].loc[len(t["stage_history"])] = ["O1", "lost", pd.Timestamp("2025-07-02")]
    t["opportunities"]["status"] = ["lost", "lost", "open"]
    t["opportunities"]["closed_at"] = [pd.Timestamp("2025-07-03"), pd.Timestamp("2025-04-01"), pd.NaT]
    t["touches"].loc[len(t["touches"])] = ["L2", pd.Timestamp("2025-07-04")]
    t["leads"].loc[2, "first_contact_at"] = pd.Timestamp("2025-09-09")
    t["leads"].loc[1, "customer_id"] = "C1"
    after = features_at(_both(tmp_path / "b", t)[0], CUT, 90)
    pd.testing.assert_frame_equal(before, after)


def test_engine_closed_deals_give_the_same_rates(tmp_path) -> None:
    """Counted per rep and segment, the closed deals give every shrunk rate the per-deal frame gives."""
    t = _small()
    more = pd.DataFrame(
        {
            "opportunity_id": [f"X{i}" for i in range(12)],
            "lead_id": None,
            "customer_id": ["C0", "C1", "C3"] * 4,
            "department": "D",
            "owner_rep": ["A", "B", "B", None] * 3,
            "created_at": pd.Timestamp("2025-01-01"),
            "status": ["won", "lost", "won", "lost"] * 3,
            "amount": np.arange(12) * 1_000.0,
            "closed_at": pd.Timestamp("2025-02-01"),
            "expected_close_date": pd.Timestamp("2025-02-01"),
        }
    )
    t["opportunities"] = pd.concat([t["opportunities"], more], ignore_index=True)
    src, frames = _both(tmp_path, t)
    a, b = routing.closed_deals(src, CUT), routing.closed_deals(frames, CUT)
    assert a.attrs["size_edges"] == b.attrs["size_edges"] and int(a["deals"].sum()) == len(b) == 10
    pd.testing.assert_frame_equal(routing.rate_table(a), routing.rate_table(b), check_exact=True)
    pd.testing.assert_frame_equal(routing.rate_table(a, 5.0), routing.rate_table(b, 5.0), check_exact=True)


def test_an_empty_table_counts_nothing_and_text_times_fall_back_to_frames(tmp_path) -> None:
    """A mini export's empty touches count none; a file whose times are text is read by the frames' path."""
    t = _small()
    t["touches"] = t["touches"].iloc[:0]
    src, frames = _both(tmp_path / "a", t)
    x = features_at(src, CUT, 90)
    assert (x["touches"] == 0).all()
    pd.testing.assert_frame_equal(x, features_at(frames, CUT, 90), check_exact=True)
    t["touches"] = _small()["touches"].astype({"touched_at": str})
    got = feature_tables(_workspace(tmp_path / "b", t).tables("clean"))
    assert isinstance(got, dict) and list(got["touches"]) == COLUMNS["touches"]


def test_stratified_sample_keeps_each_outcome_share_and_order() -> None:
    y = pd.Series([1] * 100 + [0] * 900)
    x = pd.DataFrame({"i": np.arange(1000)})
    xs, ys = scoring.stratified(x, y, 100)
    assert len(xs) == 100 and int(ys.sum()) == 10  # 10% of each outcome
    assert xs["i"].is_monotonic_increasing and (y[xs["i"]].to_numpy() == ys.to_numpy()).all()


def test_a_large_training_set_is_fitted_on_a_sample_and_says_so(monkeypatch) -> None:
    """Past FIT_ROWS the models fit on a stratified sample; the comparison counts it and the sentence names it."""
    from test_scoring import DEMO

    tables = {n: pd.read_csv(DEMO / f"{n}.csv", usecols=c) for n, c in COLUMNS.items()}
    monkeypatch.setattr(scoring, "FIT_ROWS", 2_000)
    res = scoring.train_and_evaluate(tables, "2026-03-31", window_days=90)
    fitted = int(res.metrics["records_trained"].iloc[0])
    assert fitted <= 2_100 and res.records_seen > 3 * fitted
    assert res.final_fit[0] <= 2_100 and res.final_fit[1] > 3 * res.final_fit[0]
    assert scoring.beats_baselines(res.metrics)
    said = scoring.describe(res, "en")
    assert f"{res.final_fit[0]:,}" in said and f"{res.final_fit[1]:,}" in said and "stratified" in said
    assert "分层" in scoring.describe(res, "zh")


def test_work_list_reads_contact_names_from_the_step_tables(tmp_path) -> None:
    """Given the step's tables, the list reads the contact names of its own records only; the same as a frame."""
    leads = _small()["leads"].assign(contact_name=["张伟", "李娜", "王芳"])
    ws = _workspace(tmp_path, {**_small(), "leads": leads})
    scored = pd.DataFrame(
        {
            "record_id": ["L3"],
            "kind": "lead",
            "lead_id": ["L3"],
            "owner_rep": "A",
            "department": "D",
            "stage": "uncontacted",
            "probability": 0.9,
            "amount": np.nan,
            "days_in_stage": 3.0,
            "response_hours": 72.0,
            "days_past_expected": 0.0,
            "reasons": "r",
        }
    )
    s = PredictSettings()
    a = work_list(scored, ws.tables("clean"), s, {}, "en", "D", mask=False)
    b = work_list(scored, leads[["lead_id", "contact_name"]], s, {}, "en", "D", mask=False)
    pd.testing.assert_frame_equal(a, b)
    assert a["contact_name"].tolist() == ["王芳"]
    no_names = work_list(scored, _workspace(tmp_path / "n", _small()).tables("clean"), s, {}, "en", "D", mask=False)
    assert no_names["contact_name"].isna().all()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reasons_read_as_the_messages_say(lang) -> None:
    """The faster wording fills each message as the catalogue's ``t`` does."""
    from crmnb.present.words import category, t

    x = pd.DataFrame({"kind": ["opportunity", "lead"], "stage": ["proposal", "uncontacted"], "channel": ["search"] * 2})
    x = x.assign(touches=[3.0, np.nan], amount=[12_345.0, np.nan])
    vals = np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, 0.5]])
    order = np.array([[0, 1, 2], [0, 1, 2]])
    got = worded(x, ["stage", "touches", "channel"], vals, order, lang)
    sep = t("predict.reason.sep", lang)
    first = [
        t("predict.reason.up", lang, reason=t("predict.reason.stage", lang, value=category("proposal", lang))),
        t("predict.reason.down", lang, reason=t("predict.reason.touches", lang, value=3.0)),
        t("predict.reason.up", lang, reason=t("predict.reason.channel", lang, value=category("search", lang))),
    ]
    assert got[0] == sep.join(first)
    assert got[1].startswith(t("predict.reason.down", lang, reason=t("predict.stage.uncontacted", lang)))
    assert t("predict.reason.touches", lang, value=0.0) in got[1]  # a missing count reads as none


def _record_by_record(x: pd.DataFrame, names: list[str], vals: np.ndarray, order: np.ndarray, lang: str) -> list[str]:
    """Return the reasons as the messages say them, filled one record and one reason at a time with ``t``."""
    from crmnb.present.words import category, t

    out = []
    for i in range(len(x)):
        parts = []
        for j in order[i]:
            f = names[j]
            if f == "log_amount" and x["kind"].iloc[i] == "lead":
                continue
            if f == "stage" and x["stage"].iloc[i] in ("uncontacted", "contacted"):
                what = t(f"predict.stage.{x['stage'].iloc[i]}", lang)
            elif f in ("stage", "channel", "industry"):
                what = t(f"predict.reason.{f}", lang, value=category(x[f].iloc[i], lang))
            else:
                v = float(x["amount" if f == "log_amount" else f].iloc[i])
                what = t(f"predict.reason.{f}", lang, value=0.0 if np.isnan(v) else v)
            parts.append(t("predict.reason.up" if vals[i, j] > 0 else "predict.reason.down", lang, reason=what))
        out.append(t("predict.reason.sep", lang).join(parts))
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reasons_a_column_at_a_time_read_as_record_by_record(lang) -> None:
    """Every record's reasons, worded a slot at a time, are the text of filling each message in turn: leads'
    stages and no deal size, repeated and missing numbers, a negative zero, a push of exactly zero."""
    rng = np.random.default_rng(3)
    n = 400
    kind = rng.choice(["lead", "opportunity"], n)
    stage = np.where(
        kind == "lead", rng.choice(["uncontacted", "contacted"], n), rng.choice(["proposal", "negotiation"], n)
    )
    x = pd.DataFrame({"kind": kind, "stage": stage, "channel": rng.choice(["search", "wechat", "unknown"], n)})
    x["industry"] = pd.Series(rng.choice(["retail", "制造业", "unknown"], n), dtype="str")
    x["touches"] = rng.choice([0.0, 1.0, 2.0, np.nan, -0.0, 2.5, 3.5], n)
    x["amount"] = np.where(kind == "lead", np.nan, rng.choice([9_999.5, 12_345.0, 1e6], n))
    x["rep_rate"] = rng.random(n)
    names = ["stage", "channel", "industry", "touches", "log_amount", "rep_rate"]
    vals = rng.choice([-1.0, 0.0, 0.5, 2.0], (n, len(names)))
    order = np.argsort(-np.abs(vals), axis=1, kind="stable")[:, :3]
    assert worded(x, names, vals, order, lang) == _record_by_record(x, names, vals, order, lang)
    assert worded(x.iloc[:0], names, vals[:0], order[:0], lang) == []


def test_labels_hashed_in_arrow_say_what_isin_says() -> None:
    """Whether a record's deal or lead is among the won ones: text against text, a missing id, ids of other
    kinds and a pool with a missing id (pandas' rules then) agree with ``Series.isin``."""
    from crmnb.frames import isin

    pool = pd.Series(["O2", "L7", "O9"], dtype="str")
    for values in (
        pd.Series(["O1", None, "O2", "L7"], dtype=object),
        pd.Series(["O1", None, "O9"], dtype="str"),
        pd.Series([None, None], dtype=object),
        pd.Series([7, "O2"], dtype=object),
    ):
        assert isin(values, pool).tolist() == values.isin(pool).tolist()
    with_gap = pd.Series(["O2", None], dtype="str")
    assert isin(pd.Series(["O2", None], dtype="str"), with_gap).tolist() == [True, True]
    assert isin(pd.Series(["O1"], dtype="str"), pool.iloc[:0]).tolist() == [False]


def test_one_hot_columns_mark_each_records_category() -> None:
    """A record's category is 1 in its column and 0 elsewhere; a value of no category (or missing) is all 0."""
    got = scoring.one_hot(pd.Series(["b", None, "z", "a"], dtype="str"), ["a", "b"])
    assert got.tolist() == [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]
    assert scoring.one_hot(pd.Series([1, "a"], dtype=object), ["1", "a"]).tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM (VALUES ('x', 1.5, '2025-01-01 10:00:00.123456789'::TIMESTAMP_NS, 3::BIGINT, true),"
        " ('y', NULL, NULL, 4, false)) v(s, f, t, n, b)",
        "SELECT * FROM (VALUES (NULL::VARCHAR, 1.5), (NULL, 2.0)) v(s, f)",  # text of no value: objects
        "SELECT * FROM (VALUES ('x', 1::BIGINT), ('y', NULL)) v(s, n)",  # whole numbers with a gap: Int64
        "SELECT DATE '2025-01-01' AS d, 2.5::FLOAT AS f",
        "SELECT 'x' AS s, 1.0 AS f WHERE false",  # no row
    ],
)
def test_query_results_through_arrow_are_the_frames_df_gives(sql) -> None:
    """A result taken through Arrow is the frame DuckDB's ``.df()`` gives, column types included."""
    import duckdb

    from crmnb.analysis.scoring_engine import frame

    con = duckdb.connect()
    pd.testing.assert_frame_equal(frame(con.sql(sql)), con.sql(sql).df(), check_exact=True)


def test_engine_features_run_again_with_more_memory_when_duckdb_runs_out(tmp_path, monkeypatch) -> None:
    """A records query that does not fit the shared database's limit (the last query's) runs with the next."""
    import duckdb

    from crmnb.analysis import metric_engine

    src, frames = _both(tmp_path, _small())
    want = features_at(frames, CUT, 90)
    limits = []
    real = metric_engine.cursor

    def cursor():
        cur = real()
        execute = cur.execute

        class Cursor:
            def execute(self, sql, *a, **k):
                if sql.startswith("SET memory_limit"):
                    limits.append(sql.split("'")[1])
                return execute(sql, *a, **k)

            def sql(self, *a, **k):
                if len(limits) < 2:
                    raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 128.0 KiB")
                return cur.sql(*a, **k)

            def close(self):
                cur.close()

        return Cursor()

    monkeypatch.setattr(metric_engine, "cursor", cursor)
    pd.testing.assert_frame_equal(features_at(src, CUT, 90), want, check_exact=True)
    assert limits[:2] == list(metric_engine.MEMORY_LIMITS[:2])
