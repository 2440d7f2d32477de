"""Cleaning over the intake hand-offs at scale: repeated keys found by their hashes, duplicate customers found
over the records that share a contact only, a cleaned table's values checked while it is written: each gives
what the plain computation gives, and names what fails."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_cleaning import AS_OF, Data, customer, order
from test_cleaning_engine import parquet_copy

from crmnb.errors import DataError
from crmnb.handoffs import Workspace, save_cleaned
from crmnb.intake import clean_engine, clean_tables
from crmnb.intake.cleaning import clean
from crmnb.intake.schema import ROW


def test_later_repeats_on_a_file_are_what_pandas_duplicated_finds(tmp_path):
    """Repeats, missing keys (equal to each other) and unique keys: the rows after the first of each key."""
    rng = np.random.default_rng(3)
    keys = pd.Series([f"K{k}" if k < 40 else None for k in rng.integers(0, 45, 500)], dtype=object)
    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"_row": np.arange(1, 501), "k": pa.array(keys, type=pa.large_string())}), src)
    kept = np.sort(rng.choice(500, 400, replace=False))  # rows an earlier rule left
    got = clean_engine.kept_rows(src, 500, kept, {}, ["_row", "k"], clean_engine.later_repeats_sql("k"))
    want = keys.iloc[kept]
    want = want[want.duplicated(keep="first")]
    assert got.index.tolist() == want.index.tolist()
    assert got["k"].fillna("-").tolist() == want.fillna("-").tolist()
    assert got["k"].isna().sum() == want.isna().sum() > 0


def test_a_cleaned_table_written_by_the_engine_off_its_schema_is_named_and_not_written(tmp_path):
    """A value outside its allowed set in a table whose rows cleaning changed: found in the write's own pass."""
    d = Data()
    d.add("customers", [customer("C1")])
    d.add("orders", [order("O1", "C1"), order("O1", "C1"), order("O2", "C1")])  # a repeat: rows change
    d.add(
        "tickets",
        [
            {"ticket_id": "T1", "customer_id": "C1", "type": "request", "created_at": "2025-03-01", "csat": "7"},
            {"ticket_id": "T1", "customer_id": "C1", "type": "request", "created_at": "2025-03-01", "csat": "7"},
            {"ticket_id": "T2", "customer_id": "C1", "type": "request", "created_at": "2025-03-02", "csat": "4"},
        ],
    )
    d.tables["tickets"].loc[2, "type"] = "gossip"  # past intake's check, as a file edited by hand would be
    c = clean(parquet_copy(d, tmp_path / "intake"), as_of=AS_OF)
    assert c.reconciliation.set_index("table").loc["tickets", "rows_quarantined"] == 1
    ws = Workspace(tmp_path / "out", "case")
    with pytest.raises(DataError, match=r"(?s)cleaned table 'tickets'.*'type'.*gossip"):
        save_cleaned(ws, c)
    assert not (ws.data / "clean/tickets.parquet").exists()
    assert not list((ws.data / "clean").glob("*.part"))
    assert pd.read_parquet(ws.data / "clean/orders.parquet")["order_id"].tolist() == ["O1", "O2"]


def test_the_rows_failing_a_check_are_counted_while_the_table_is_written(tmp_path):
    """Rows of the kept ones with a value a check rules out (a type outside the set, a score past its
    bounds, a required id missing), counted in the write's pass; a dropped row's values do not count."""
    src = tmp_path / "tickets.parquet"
    frame = pd.DataFrame(
        {
            "_row": [1, 2, 3, 4],
            "ticket_id": ["T1", "T2", None, "T4"],
            "type": ["request", "gossip", "complaint", "request"],
            "csat": [4.0, 11.0, 3.0, 0.0],  # row 4 (dropped) out of bounds too
        }
    )
    frame.to_parquet(src, index=False)
    plan = clean_tables.Plan(kept=np.array([0, 1, 2]))
    rows, failing = clean_engine.write_table(src, plan, 4, frame.iloc[:0], tmp_path / "out.parquet", "tickets")
    assert rows == 3
    assert failing == 2  # T2 (type and score: one row), the row without an id
    assert clean_engine.failures(tmp_path / "out.parquet", "tickets") == 3  # values, over the file after


@pytest.mark.parametrize(
    ("keys", "repeats"),
    [(["K1", "K2", "K3"], False), (["K1", "K2", "K1"], True), (["K1", None, None], True), (["K1", None], False)],
)
def test_a_file_whose_keys_do_not_repeat_is_told_in_one_pass(tmp_path, keys, repeats):
    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"k": pa.array(keys, type=pa.large_string())}), src)
    assert clean_engine.may_repeat(src, "k") is repeats


def test_duplicate_customers_are_the_connected_records_merged_into_the_earliest():
    """Records linked by a phone or an e-mail, directly or through others: each merges into its group's
    earliest record (then smallest id); recomputed by a plain walk over the links."""
    from crmnb.intake.duplicates import find_duplicate_customers

    rng = np.random.default_rng(11)
    n = 300
    phones = [f"1380000{k:04d}" if k < 60 else None for k in rng.integers(0, 400, n)]
    emails = [f"u{k}@x.cn" if k < 50 else None for k in rng.integers(0, 400, n)]
    created = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 40, n), unit="D")
    ids = [f"C{i:03d}" for i in rng.permutation(n)]
    cust = pd.DataFrame({"customer_id": ids, "created_at": created, ROW: range(1, n + 1)})
    cust["phone"], cust["email"] = phones, emails
    links: dict[int, set[int]] = {i: set() for i in range(n)}
    for col in ("phone", "email"):
        for _, g in cust[cust[col].notna()].groupby(col):
            for i in g.index:
                links[i] |= set(g.index)
    want, seen = {}, set()
    for i in range(n):
        if i in seen:
            continue
        group, todo = set(), [i]
        while todo:
            j = todo.pop()
            if j not in group:
                group.add(j)
                todo.extend(links[j])
        seen |= group
        keep = min(group, key=lambda j: (cust.loc[j, "created_at"], cust.loc[j, "customer_id"]))
        want |= {cust.loc[j, "customer_id"]: cust.loc[keep, "customer_id"] for j in group if j != keep}
    got = find_duplicate_customers(cust)
    assert len(want) > 20
    assert dict(zip(got["duplicate_id"], got["kept_id"])) == want
    assert set(got["match_on"]) <= {"phone", "e-mail"}
    assert got["duplicate_row"].tolist() == [
        int(cust.set_index("customer_id").loc[c, ROW]) for c in got["duplicate_id"]
    ]
