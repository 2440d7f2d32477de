"""Step 2 at any size: what it keeps in memory is bounded, and its faster paths give what the plain ones give.

Keys repeated in every row are counted past a cap rather than listed; contacts are keyed and masked as
the plain HMAC and the masking functions do, value by value; batches are written with dictionaries only
where values repeat, and a column empty in the first batches is typed as writing the whole table types it.
"""

from __future__ import annotations

import hmac
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from crm_mini import mini_case, write_mini

from crmnb.handoffs import Workspace, save_intake
from crmnb.intake import checks, spill, stream
from crmnb.intake.damage import CUT_PROBLEM
from crmnb.intake.duplicates import normalise_email, normalise_phone
from crmnb.intake.inventory import inventory
from crmnb.intake.load import iter_tables, load_tables
from crmnb.intake.parse import all_issues
from crmnb.intake.protect import keyed, masked_contacts
from crmnb.intake.stream import _Found
from crmnb.intake.utm import add_utm
from crmnb.intake.write import BatchWriter, few_values
from crmnb.present.masking import mask_email, mask_phone


def _orders_file(tmp_path: Path, ids: list[str | None]) -> Path:
    """Return a Parquet file of order ids and their export rows."""
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"order_id": ids, "_row": list(range(1, len(ids) + 1))}), path)
    return path


def test_repeated_keys_past_the_cap_are_counted_not_kept(tmp_path: Path):
    ids = ["A", "B", "A", None, "C", "B", None, "A", "D"]  # A at rows 1, 3, 8; B at 2, 6
    found, more = checks.duplicate_keys(_orders_file(tmp_path, ids), "orders", keep=3)
    assert found["row"].tolist() == [1, 2, 3]
    assert found["value"].tolist() == ["A", "B", "A"]
    assert set(found["kind"]) == {"duplicate key"}
    assert more == 2  # rows 6 and 8


def test_repeated_keys_under_the_cap_are_all_listed(tmp_path: Path):
    ids = ["A", "B", "A", None, None, "C"]
    found, more = checks.duplicate_keys(_orders_file(tmp_path, ids), "orders")
    assert (found["row"].tolist(), more) == ([1, 3], 0)
    held = pd.DataFrame({"order_id": ids, "_row": range(1, 7)})
    in_memory, more = checks.duplicate_keys(tmp_path / "none.parquet", "orders", held, keep=1)
    assert (in_memory["row"].tolist(), more) == ([1], 1)


def test_batch_problems_keep_at_most_the_cap_per_column_and_kind(monkeypatch):
    monkeypatch.setattr("crmnb.intake.stream.KEEP_ROWS", 2)
    found = _Found("orders")

    def probs(col: str, rows: list[int]) -> pd.DataFrame:
        kind = "required value missing"
        return pd.DataFrame(
            {"table": "orders", "column": col, "kind": kind, "expected": "", "value": None, "row": rows}
        )

    kept = found._within(pd.concat([probs("amount", [1]), probs("order_id", [2, 3, 4])], ignore_index=True))
    assert kept["row"].tolist() == [1, 2, 3]
    kept = found._within(probs("amount", [7, 8, 9]))
    assert kept["row"].tolist() == [7]
    assert found.dropped == 3  # order_id row 4, amount rows 8 and 9


def test_contact_keys_are_the_hmac_of_each_value():
    values = pd.Series(["13812345678", None, "a@b.cn", "张伟", "13812345678", ""], dtype=object)
    for key in (b"k", b"x" * 32, b"y" * 64, b"z" * 100):  # shorter than, as long as and longer than a block
        want = [None if v is None else hmac.new(key, v.encode("utf-8"), "sha256").hexdigest()[:32] for v in values]
        assert keyed(values, key).tolist() == want


def test_contacts_are_masked_as_the_masking_functions_mask_each():
    phones = ["+86 138-1234-5678", None, "", "123", "１３８１２３４５６７８", "8613812345678", "12345678901234"]
    emails = ["Zhang@X.cn", " a@b.c ", "@x.cn", "noat", "张@例.cn", None, "a@b@c", "a\x1c@b.cn"]
    for col, raw, normalise, mask in (
        ("phone", phones, normalise_phone, mask_phone),
        ("email", emails, normalise_email, mask_email),
    ):
        new = normalise(pd.Series(raw, dtype="str"))
        pd.testing.assert_series_equal(masked_contacts(new, col, mask), new.map(mask).astype("str"))
    assert masked_contacts(normalise_phone(pd.Series(["138 1234 5678"])), "phone", mask_phone)[0] == "138****5678"


def test_landing_addresses_are_read_once_each_as_one_by_one():
    url = "https://x.cn/a?utm_source=Baidu&utm_medium=cpc&utm_campaign=CMP002"
    df = pd.DataFrame(
        {"landing_url": [url, None, url, "https://x.cn/?utm_source=zhihu"], "utm_source": [None, "x", None, "kept"]}
    )
    got = add_utm(df, "leads")
    assert got["utm_source"].tolist() == ["baidu", "x", "baidu", "kept"]
    assert got["utm_campaign"].iloc[[0, 2]].tolist() == ["CMP002", "CMP002"]
    assert got["utm_campaign"].iloc[[1, 3]].isna().all()


def test_only_text_columns_with_few_values_get_a_dictionary():
    table = pa.table({"dept": ["a", "b"] * 150, "id": [str(i) for i in range(300)], "n": list(range(300))})
    assert few_values(table) == ["dept"]


def test_a_column_empty_in_the_first_batches_is_typed_as_in_the_whole_table(tmp_path: Path):
    frames = [
        pd.DataFrame({"id": ["1", "2"], "key": pd.Series([None, None], dtype=object)}),
        pd.DataFrame({"id": ["3"], "key": pd.Series([None], dtype=object)}),
        pd.DataFrame({"id": ["4", "5"], "key": pd.Series(["k4", None], dtype=object)}),  # as contact keys are
    ]
    opts = {"compression": "lz4", "row_group_size": 2}
    with BatchWriter(tmp_path / "t.parquet", opts) as out:
        for f in frames:
            out.write(f)
    whole = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
    got = pq.read_table(tmp_path / "t.parquet")
    assert got.schema.field("key").type == whole.schema.field("key").type == pa.string()
    assert got.to_pydict() == whole.to_pydict()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]  # no file left from the retyping
    with BatchWriter(tmp_path / "n.parquet", opts) as out:
        for f in frames[:2]:
            out.write(f)
    assert pq.read_schema(tmp_path / "n.parquet").field("key").type == pa.null()


def _bad_orders() -> list[dict[str, str]]:
    """Return 18 orders, amounts unreadable in eight rows and dates in three: more than the cap of two."""
    rows = [
        {
            "order_id": f"S{i}",
            "customer_id": "C1",
            "opportunity_id": "",
            "department": "销售一部",
            "order_date": "someday" if i in (2, 9, 16) else f"2025-02-{i:02d} 10:00:00",
            "amount": f"x{i}" if i % 2 else f"{1000 + i}.50",
        }
        for i in range(1, 19)
    ]
    rows[-1]["amount"] = "?"  # the last row's amount, cut below: its issue becomes the cut row's
    return rows


@pytest.mark.parametrize("cut", [False, True])
def test_many_unreadable_values_keep_a_few_in_memory_and_all_in_the_hand_off(tmp_path: Path, monkeypatch, cut):
    folder = tmp_path / "exports"
    write_mini(folder)
    pd.DataFrame(_bad_orders(), dtype=object).to_csv(folder / "orders.csv", index=False, encoding="utf-8")
    if cut:
        text = (folder / "orders.csv").read_bytes().rstrip(b"\r\n")
        (folder / "orders.csv").write_bytes(text[: text.rindex(b",")])
    case = mini_case(folder)
    whole = load_tables(case)
    monkeypatch.setattr(stream, "BATCH_ROWS", 4)
    monkeypatch.setattr(spill, "ISSUE_ROWS", 2)
    ws = Workspace(tmp_path / "out", case.case_id)
    kept = save_intake(ws, iter_tables(case))
    orders = kept["orders"]
    assert orders.unreadable == whole["orders"].unreadable == len(whole["orders"].issues) == 13
    shown = orders.issues[orders.issues["problem"] != CUT_PROBLEM]
    assert shown.groupby("column").size().to_dict() == {"amount": 2, "order_date": 2}
    assert orders.issues_file is not None and not Path(orders.issues_file).exists()  # removed once written
    written = pd.read_parquet(ws.data / "intake" / "issues.parquet")
    pd.testing.assert_frame_equal(written, _as_written(all_issues(whole), tmp_path / "whole.parquet"))
    assert inventory(kept, case).set_index("table").loc["orders", "unreadable_values"] == 13


def _as_written(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Return a frame as its hand-off reads back, written whole."""
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return pd.read_parquet(path)
