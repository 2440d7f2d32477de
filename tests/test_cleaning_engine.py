"""crmnb.intake.clean_tables: cleaning by side tables gives what a plain recomputation gives, from frames or
from Parquet hand-offs, batch by batch, and holds a small multiple of one table while it builds them."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_cleaning import AS_OF, Data, activities, customer, order

from crmnb.errors import DataError, HandoffMissing
from crmnb.handoffs import Workspace, save_cleaned
from crmnb.intake import clean_tables
from crmnb.intake.cleaning import clean
from crmnb.intake.duplicates import normalise_phone
from crmnb.intake.schema import ROW, TABLES


def small_crm() -> Data:
    """Return a tiny CRM with a duplicate key, a merge chain, an unknown customer and two kinds of outliers."""
    d = Data()
    d.add(
        "customers",
        [
            customer("C1", "2025-01-01", phone="+86 138-0000-0001"),
            customer("C2", "2025-01-02", phone="13800000001", email="two@x.cn"),  # C1's phone
            customer("C3", "2025-01-03", phone="13900000003", email="TWO@x.cn"),  # C2's e-mail: a chain to C1
            customer("C4", "2025-01-04", phone="13900000004"),
        ],
    )
    d.add(
        "orders",
        [
            order("O1", "C2", amount="10"),
            order("O2", "C3", amount="20"),
            order("O1", "C4", amount="30"),  # the key again
            order("O3", "C9", amount="40"),  # nobody's
            order("O4", "C4", amount="-5"),  # a negative amount
            order("O5", "C4", amount="50"),
        ],
    )
    d.add(
        "tickets",
        [
            {"ticket_id": "T1", "customer_id": "C3", "type": "request", "created_at": "2025-03-01", "csat": "7"},
            {"ticket_id": "T2", "customer_id": "C4", "type": "complaint", "created_at": "2025-03-02", "csat": "4"},
        ],
    )
    d.add("activities", activities("C4", 3, "A") + activities("C2", 1, "B") + activities("C3", 1, "C"))
    return d


def test_side_tables_give_what_a_plain_recomputation_gives():
    d = small_crm()
    c = d.clean(max_followups_per_customer=2)
    to = {"C2": "C1", "C3": "C1"}

    want = d.tables["orders"]
    want = want[want["amount"] >= 0]
    want = want[~want["order_id"].duplicated()]
    want = want.assign(customer_id=want["customer_id"].replace(to))
    want = want[want["customer_id"].isin(["C1", "C4"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(c.tables["orders"], want)

    some = c.tables.frame("orders", ["order_date", "amount"])  # what the period check reads
    pd.testing.assert_frame_equal(some, want[["order_date", "amount"]])

    want = d.tables["tickets"].assign(customer_id=["C1", "C4"], csat=[np.nan, 4.0])
    pd.testing.assert_frame_equal(c.tables["tickets"], want)

    act = d.tables["activities"]
    want = act[act["customer_id"] != "C4"].reset_index(drop=True)
    pd.testing.assert_frame_equal(c.tables["activities"], want.assign(customer_id="C1"))

    cust = d.tables["customers"]
    want = cust[cust["customer_id"].isin(["C1", "C4"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(c.tables["customers"], want.assign(phone=normalise_phone(want["phone"])))
    assert dict(zip(c.merges["duplicate_id"], c.merges["kept_id"])) == to
    assert c.reconciliation.set_index("table").loc["orders", ["rows_in", "rows_kept", "rows_quarantined"]].tolist() == [
        6,
        3,
        3,
    ]


def parquet_copy(d: Data, folder) -> dict:
    """Write each intake table as step 2 writes its hand-off; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, df in d.tables.items():
        paths[name] = folder / f"{name}.parquet"
        df.to_parquet(paths[name], index=False)
    return paths


def test_parquet_hand_offs_clean_as_frames_do_in_batches_of_two(tmp_path, monkeypatch):
    monkeypatch.setattr(clean_tables, "BATCH_ROWS", 2)  # every table of more than two rows in several batches
    d = small_crm()
    want = d.clean(max_followups_per_customer=2)
    issues = pd.concat(d.issues, ignore_index=True)
    formats = pd.concat(d.formats, ignore_index=True)
    got = clean(parquet_copy(d, tmp_path / "intake"), issues, formats, as_of=AS_OF, max_followups_per_customer=2)
    for part in ("log", "quarantine", "merges", "reconciliation"):
        pd.testing.assert_frame_equal(getattr(got, part), getattr(want, part))
    ws = Workspace(tmp_path / "out", "case")
    save_cleaned(ws, got)
    for name in TABLES:
        want.tables[name].to_parquet(tmp_path / "want.parquet", index=False)  # as the frame would be written
        written = pd.read_parquet(ws.data / f"clean/{name}.parquet")
        pd.testing.assert_frame_equal(written, pd.read_parquet(tmp_path / "want.parquet"))
        pd.testing.assert_frame_equal(got.tables[name], written)
    assert not list((ws.data / "clean").glob("*.part"))


def test_the_quarantine_keeps_the_values_as_taken_in_from_the_hand_offs(tmp_path):
    d = small_crm()
    got = clean(parquet_copy(d, tmp_path), as_of=AS_OF, max_followups_per_customer=2)
    q = got.quarantine.set_index(["table", "key"])
    assert '"customer_id": "C4"' in q.loc[("orders", "O1"), "record"]  # before any re-pointing
    assert '"amount": -5.0' in q.loc[("orders", "O4"), "record"]
    assert sorted(q.loc["activities"].index) == ["A0", "A1", "A2"]


def test_a_cleaned_table_off_its_schema_is_named_and_not_written(tmp_path):
    d = Data()
    d.add("customers", [customer("C1")])
    d.add("orders", [order("O1", "C1")])
    d.tables["orders"] = d.tables["orders"].astype({"department": object}).assign(department=[7])  # not text
    c = clean(parquet_copy(d, tmp_path / "intake") | {"orders": d.tables["orders"]}, as_of=AS_OF)
    ws = Workspace(tmp_path / "out", "case")
    with pytest.raises(DataError, match=r"(?s)cleaned table 'orders'.*column 'department': expected text"):
        save_cleaned(ws, c)
    assert not (ws.data / "clean/orders.parquet").exists()
    assert not list((ws.data / "clean").glob("*.part"))


def test_step_4_without_the_intake_hand_offs_says_to_run_step_2(tmp_path):
    with pytest.raises(HandoffMissing, match=r"hand-off 'intake/customers' not found .*run step 2"):
        clean_tables.intake_files(Workspace(tmp_path, "case"))


# --------------------------------------------------------------------------- memory
def generated(n: int) -> dict[str, pd.DataFrame]:
    """Return every canonical table, empty but for customers and ``n`` activities with repeats and orphans."""
    rng = np.random.default_rng(5)
    ids = np.array([f"C{i:06d}" for i in range(n // 50)], dtype=object)
    tables = Data().tables
    tables["customers"] = (
        tables["customers"]
        .reindex(range(len(ids)))
        .assign(
            **{ROW: np.arange(1, len(ids) + 1), "customer_id": ids, "department": "销售一部"},
            created_at=pd.Timestamp("2025-01-01"),
        )
    )
    who = ids[rng.integers(0, len(ids), n)]
    who[:: n // 100] = "C-nobody"  # 1 % orphans
    key = np.arange(n)
    key[1 :: n // 100] = 0  # 1 % repeats
    acts = pd.DataFrame(
        {
            ROW: np.arange(1, n + 1),
            "activity_id": pd.Series(key).map("A{:08d}".format),
            "customer_id": who,
            "department": "销售一部",
            "type": rng.choice(["call", "visit", "email"], n),
            "due_at": pd.Timestamp("2025-03-01") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            "completed_at": pd.Timestamp("2025-03-02") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            "note": "called back",
        }
    )
    tables["activities"] = acts.reindex(columns=tables["activities"].columns).astype(
        dict.fromkeys(("activity_id", "customer_id", "department", "type", "note", "lead_id", "owner_rep"), "str")
    )
    return tables


_POOLS: list = []  # each measuring pool outlives the arrays allocated from it


def peak_bytes(fn) -> int:
    """Return the most memory ``fn`` held at once: Python and NumPy (tracemalloc) plus Arrow's pool."""
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    _POOLS.append(pool)
    before = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] + pool.max_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(before)


def test_peak_memory_of_cleaning_a_table_is_a_small_multiple_of_it(tmp_path, monkeypatch):
    monkeypatch.setattr(clean_tables, "BATCH_ROWS", 20_000)
    n = 200_000
    clean(parquet_copy(_as_data(generated(2_000)), tmp_path / "small"), as_of=AS_OF)  # imports, catalogue
    paths = parquet_copy(_as_data(generated(n)), tmp_path / "intake")
    size = pd.read_parquet(paths["activities"]).memory_usage(deep=True).sum()
    ws = Workspace(tmp_path / "out", "case")
    held: list = []

    def run():
        held.append(clean(paths, as_of=AS_OF))
        save_cleaned(ws, held[-1])

    peak = peak_bytes(run)
    c = held[-1]
    assert len(c.quarantine) > 0 and c.reconciliation["balanced"].all()
    assert len(pd.read_parquet(ws.data / "clean/activities.parquet")) < n
    # the whole intake table in pandas, a cleaned copy and a checked one would be 3 or more times it
    assert peak < 2.5 * size, f"cleaning a table of {size / 1e6:.0f} MB held {peak / 1e6:.0f} MB at once"


def _as_data(tables: dict[str, pd.DataFrame]) -> Data:
    d = Data()
    d.tables = tables
    return d


def test_the_receipts_check_needs_only_its_columns_of_the_opportunities():
    """Step 4 passes only OPPORTUNITY_COLUMNS of the cleaned opportunities: the check is the same as on the whole."""
    from crmnb.analysis.receipts import OPPORTUNITY_COLUMNS, reconcile_receipts

    opp = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3"],
            "lead_id": ["L1", "L2", "L3"],
            "status": ["won", "won", "lost"],
            "amount": [100.0, 50.0, 70.0],
            "customer_id": ["C1", "C2", "C3"],
            "owner_rep": ["r", "r", "s"],
            "closed_at": pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-04"]),
        }
    )
    rec = pd.DataFrame({"opportunity_id": ["O1", "O9"], "amount": [101.5, 5.0]})
    whole = reconcile_receipts(opp, rec)
    some = reconcile_receipts(opp[list(OPPORTUNITY_COLUMNS)], rec)
    pd.testing.assert_frame_equal(some.detail, whole.detail)
    assert some.summary == whole.summary
    assert (
        whole.summary["mismatched"] == 1 and whole.summary["no_receipt"] == 1 and whole.summary["stray_receipts"] == 1
    )


def test_a_table_cleaning_leaves_as_taken_in_is_checked_and_its_file_copied(tmp_path):
    """An unchanged table is the intake file itself, byte for byte, once every batch passed its check."""
    src = tmp_path / "intake" / "campaigns.parquet"
    src.parent.mkdir()
    frame = pd.DataFrame({"campaign_id": pd.Series(["K1", "K2"], dtype="str"), "spend": [1.0, None]})
    pa_table = pa.Table.from_pandas(frame, preserve_index=False)
    import pyarrow.parquet as pq

    pq.write_table(pa_table, src)
    tables = clean_tables.CleanTables(clean_tables.Source({"campaigns": src}), {"campaigns": clean_tables.Plan()})
    out = tmp_path / "clean" / "campaigns.parquet"
    seen = []

    class Seen:
        found: list = []

        def __call__(self, batch):
            seen.append(len(batch))

        def raise_found(self):
            pass

    assert clean_tables.copy_checked(tables.batches("campaigns"), src, out, Seen()) == 2
    assert seen == [2], "every batch is checked"
    assert out.read_bytes() == src.read_bytes()

    class Fails(Seen):
        def raise_found(self):
            raise DataError("cleaned table 'campaigns' fails its check")

    bad = tmp_path / "clean" / "bad.parquet"
    with pytest.raises(DataError, match="campaigns"):
        clean_tables.copy_checked(tables.batches("campaigns"), src, bad, Fails())
    assert not bad.exists() and not bad.with_name(bad.name + ".part").exists()
    assert clean_tables.Plan().unchanged and not clean_tables.Plan(drop=["x"]).unchanged


def test_rules_on_hand_offs_read_no_table_into_pandas(tmp_path, monkeypatch):
    """From Parquet hand-offs every rule finds its rows by DuckDB on the files: no table is read whole into
    pandas (at 1000x the demo the activities alone would take several GB), and the account is the same."""
    from crmnb.intake import ledger

    d = small_crm()
    d.add(  # beside small_crm's orders: values intake could not read, one row with two of them
        "orders",
        [
            order("O1", "C2", amount="10"),
            order("O2", "C3", amount="twenty"),
            order("O6", "C4", date="someday", amount="x"),
            order("O4", "C4", amount="-5"),
            order("O7", "C9", amount="40"),
        ],
    )
    d.add(
        "tickets",
        [
            {"ticket_id": "T1", "customer_id": "C3", "type": "request", "created_at": "2025-03-01", "csat": "7"},
            {"ticket_id": "T2", "customer_id": "C4", "type": "complaint", "created_at": "2025-03-02", "csat": "ok"},
            {"ticket_id": "T3", "customer_id": "C4", "type": "request", "created_at": "soon", "csat": "9"},
        ],
    )
    assert sum(len(i) for i in d.issues) >= 4, "the data exercise the unreadable-value rule"
    want = d.clean(max_followups_per_customer=2)

    def refuse(self, table):
        raise AssertionError(f"a rule read table {table!r} into pandas")

    monkeypatch.setattr(ledger.Working, "__missing__", refuse)
    issues = pd.concat(d.issues, ignore_index=True)
    formats = pd.concat(d.formats, ignore_index=True)
    got = clean(parquet_copy(d, tmp_path / "intake"), issues, formats, as_of=AS_OF, max_followups_per_customer=2)
    for part in ("log", "quarantine", "merges", "reconciliation"):
        pd.testing.assert_frame_equal(getattr(got, part), getattr(want, part))
    assert {"negative amount", "out of range", "unknown customer"} <= set(got.log["rule"])
    assert got.quarantine["row"].groupby([got.quarantine["table"], got.quarantine["row"]]).size().max() == 1


def test_some_rows_of_a_cleaned_table_are_those_pandas_would_keep(tmp_path):
    """frame(..., where=...) gives the rows whose values are among those named, in order, with a fresh index:
    before the table is written (filtered after the build) and after (filtered while read from its file)."""
    d = small_crm()
    issues = pd.concat(d.issues, ignore_index=True)
    formats = pd.concat(d.formats, ignore_index=True)
    got = clean(parquet_copy(d, tmp_path / "intake"), issues, formats, as_of=AS_OF, max_followups_per_customer=2)
    whole = got.tables.frame("orders", ["order_id", "customer_id", "amount"])
    want = whole[whole["customer_id"].isin(["C4", "C9"])].reset_index(drop=True)
    assert len(want) and len(want) < len(whole)
    before = got.tables.frame("orders", ["order_id", "customer_id", "amount"], where={"customer_id": ["C4", "C9"]})
    pd.testing.assert_frame_equal(before, want)
    ws = Workspace(tmp_path / "out", "case")
    save_cleaned(ws, got)
    after = got.tables.frame("orders", ["order_id", "customer_id", "amount"], where={"customer_id": ["C4", "C9"]})
    pd.testing.assert_frame_equal(after, want)
