"""Step 2 in batches gives what step 2 on whole tables gives: the same Parquet hand-offs, the same unreadable
values (file, column, export row), the same date formats, notes, checks and inventory.

Each export is written by hand with its damage at known rows, some in a later batch than the first, and
read with batches of a few rows, so every table of a few dozen rows is taken in as several batches.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from crm_mini import MINI, mini_case, write_mini

from crmnb.errors import DataError
from crmnb.handoffs import Workspace, save_intake
from crmnb.intake import stream
from crmnb.intake.damage import CUT_PROBLEM
from crmnb.intake.inventory import inventory
from crmnb.intake.load import iter_tables, load_tables
from crmnb.intake.schema import TABLES

BATCH = 4
"""Rows per batch in these tests: the customers below are six batches, the orders five."""


def _customers() -> list[dict[str, str]]:
    """Return 22 customers: contacts written several ways, dates in three formats, damage at known rows."""
    rows = []
    for i in range(1, 23):
        rows.append(
            {
                "customer_id": f"C{i}",
                "name": f"客户{i}",
                "phone": f"138-0000-{i:04d}" if i % 3 else f"+86 1380000{i:04d}",
                "email": "" if i <= 5 else f"User{i}@X.cn",  # no e-mail in the whole first batch
                "department": "销售一部",
                "created_at": ("2025-01-02 09:00:00", "2025/1/3 9:05", "2025年1月4日")[i % 3],
            }
        )
    rows[6]["created_at"] = "2025-02-30 10:00:00"  # export row 7: no such day
    rows[17]["created_at"] = "yesterday"  # export row 18, in the fifth batch
    rows[18]["customer_id"] = "C2"  # export row 19 repeats row 2's key, three batches later
    rows[9]["phone"] = ""
    return rows


def _orders() -> list[dict[str, str]]:
    """Return 18 orders, amounts unreadable at export rows 3 and 14."""
    rows = [
        {
            "order_id": f"S{i}",
            "customer_id": "C1",
            "opportunity_id": "",
            "department": "销售一部",
            "order_date": f"2025-02-{i:02d} 10:00:00",
            "amount": f"{1000 + i}.50",
        }
        for i in range(1, 19)
    ]
    rows[2]["amount"] = "abc"
    rows[13]["amount"] = "12..5"
    return rows


def _write(folder: Path, cut: bool = False, **tables: list[dict[str, str]]) -> Path:
    """Write the mini export with some tables replaced; ``cut``: orders.csv ends in the middle of its last row."""
    write_mini(folder)
    for name, rows in tables.items():
        pd.DataFrame(rows, dtype=object).to_csv(folder / f"{name}.csv", index=False, encoding="utf-8")
    if cut:
        text = (folder / "orders.csv").read_bytes().rstrip(b"\r\n")
        (folder / "orders.csv").write_bytes(text[: text.rindex(b",")])  # the last row loses its amount
    return folder


def _both(tmp_path: Path, monkeypatch, **data) -> tuple[dict, dict, Workspace]:
    """Return every table taken in whole, and taken in and written in batches of :data:`BATCH` rows."""
    case = mini_case(tmp_path / "exports", **data)
    whole = load_tables(case)
    monkeypatch.setattr(stream, "BATCH_ROWS", BATCH)
    ws = Workspace(tmp_path / "out", case.case_id)
    return whole, save_intake(ws, iter_tables(case)), ws


def _as_written(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Return a whole table as its hand-off reads back (how intake wrote it before)."""
    df.to_parquet(path, index=False)
    return pd.read_parquet(path)


def test_a_table_of_several_batches_gives_the_hand_offs_of_one(tmp_path: Path, monkeypatch):
    _write(tmp_path / "exports", customers=_customers(), orders=_orders())
    whole, kept, ws = _both(tmp_path, monkeypatch)
    assert kept["customers"].batches == 6 and kept["orders"].batches == 5
    for name in TABLES:
        written = pd.read_parquet(ws.data / "intake" / f"{name}.parquet")
        pd.testing.assert_frame_equal(written, _as_written(whole[name].table, tmp_path / f"{name}.parquet"))
    # the contact keys were computed batch by batch, and a key repeats where the contact does
    cust = pd.read_parquet(ws.data / "intake" / "customers.parquet")
    assert cust["email_key"].iloc[:5].isna().all() and cust["email_key"].iloc[5:].notna().all()
    assert cust["phone_key"].nunique() == 21 and cust["phone"].iloc[0] == "138****0001"


def test_unreadable_values_name_the_same_rows_in_batches(tmp_path: Path, monkeypatch):
    _write(tmp_path / "exports", customers=_customers(), orders=_orders())
    whole, kept, ws = _both(tmp_path, monkeypatch)
    issues = pd.read_parquet(ws.data / "intake" / "issues.parquet")
    mine = issues[issues["table"].isin(["customers", "orders"])]
    assert mine[["table", "row", "column", "value"]].values.tolist() == [
        ["customers", 7, "created_at", "2025-02-30 10:00:00"],
        ["customers", 18, "created_at", "yesterday"],
        ["orders", 3, "amount", "abc"],
        ["orders", 14, "amount", "12..5"],
    ]
    for name in TABLES:
        pd.testing.assert_frame_equal(kept[name].issues, whole[name].issues, check_dtype=False)
        pd.testing.assert_frame_equal(kept[name].validation.problems, whole[name].validation.problems)
        assert kept[name].notes == whole[name].notes


def test_a_key_repeated_in_a_later_batch_is_found(tmp_path: Path, monkeypatch):
    _write(tmp_path / "exports", customers=_customers())
    _, kept, _ = _both(tmp_path, monkeypatch)
    found = kept["customers"].validation.row_level
    dup = found[found["kind"] == "duplicate key"]
    assert dup[["column", "kind", "value", "row"]].values.tolist() == [
        ["customer_id", "duplicate key", "C2", 2],
        ["customer_id", "duplicate key", "C2", 19],
    ]


def test_date_formats_and_inventory_are_those_of_the_whole_table(tmp_path: Path, monkeypatch):
    _write(tmp_path / "exports", customers=_customers(), orders=_orders())
    whole, kept, ws = _both(tmp_path, monkeypatch)
    formats = pd.read_parquet(ws.data / "intake" / "formats.parquet")
    got = formats[formats["table"] == "customers"][["format", "rows"]].values.tolist()
    # rows 1..22 by i % 3 (0: 7 rows, 1: 8, 2: 7), less row 7 (i % 3 == 1) and row 18 (i % 3 == 0) unreadable
    # the most used first; of two used as often, the one used first (row 1 before row 2)
    assert got == [["YYYY/M/D hh:mm", 7], ["YYYY年M月D日", 7], ["YYYY-MM-DD hh:mm:ss", 6]]
    for name in TABLES:
        pd.testing.assert_frame_equal(kept[name].formats, whole[name].formats)
    case = mini_case(tmp_path / "exports")
    pd.testing.assert_frame_equal(inventory(kept, case), inventory(whole, case))
    assert inventory(kept, case).set_index("table").loc["customers", "rows"] == 22


def test_a_file_cut_short_quarantines_its_last_row_in_batches(tmp_path: Path, monkeypatch):
    _write(tmp_path / "exports", cut=True, orders=_orders())
    whole, kept, _ = _both(tmp_path, monkeypatch)
    assert kept["orders"].batches == 5
    cut = kept["orders"].issues
    assert cut[cut["problem"] == CUT_PROBLEM]["row"].tolist() == [18]
    pd.testing.assert_frame_equal(kept["orders"].issues, whole["orders"].issues, check_dtype=False)
    assert kept["orders"].notes == whole["orders"].notes and any("truncated" in n for n in kept["orders"].notes)


def test_a_contact_column_empty_in_every_batch_is_written_as_a_whole_table_would(tmp_path: Path, monkeypatch):
    rows = [{**r, "email": ""} for r in _customers()]
    _write(tmp_path / "exports", customers=rows)
    whole, kept, ws = _both(tmp_path, monkeypatch)
    written = pd.read_parquet(ws.data / "intake" / "customers.parquet")
    pd.testing.assert_frame_equal(written, _as_written(whole["customers"].table, tmp_path / "c.parquet"))
    assert written["email_key"].isna().all()


def test_amounts_read_by_their_whole_column_take_the_table_in_whole(tmp_path: Path, monkeypatch):
    orders = [{**r, "amount": r["amount"].removesuffix(".50")} for r in _orders()]
    orders[1]["amount"] = "1,234"  # batch 1: a decimal comma or thousands? only batch 4 says
    orders[13]["amount"] = "1.234,50"
    _write(tmp_path / "exports", orders=orders)
    whole, kept, ws = _both(tmp_path, monkeypatch)
    assert kept["orders"].batches == 0  # taken in whole, as before
    written = pd.read_parquet(ws.data / "intake" / "orders.parquet")
    assert written["amount"].iloc[1] == pytest.approx(1.234) and written["amount"].iloc[13] == pytest.approx(1234.5)
    assert kept["orders"].notes == whole["orders"].notes


def test_an_error_in_a_later_batch_names_the_rows_of_the_whole_table(tmp_path: Path, monkeypatch):
    leads = [dict(MINI["leads"][0], lead_id=f"L{i}") for i in range(1, 15)]
    leads[9]["status"] = "gewonnen"  # export row 10, the third batch
    leads[12]["status"] = "gewonnen"
    _write(tmp_path / "exports", leads=leads)
    case = mini_case(tmp_path / "exports")
    with pytest.raises(DataError) as whole:
        load_tables(case)
    monkeypatch.setattr(stream, "BATCH_ROWS", BATCH)
    with pytest.raises(DataError) as batched:
        save_intake(Workspace(tmp_path / "out", case.case_id), iter_tables(case))
    assert str(batched.value) == str(whole.value)
    assert "'gewonnen' (2 rows)" in str(batched.value) and "export row(s) 10, 13" in str(batched.value)


def test_a_gb18030_export_is_read_in_batches_as_it_was_whole(tmp_path: Path, monkeypatch):
    folder = _write(tmp_path / "exports", customers=_customers())
    text = (folder / "customers.csv").read_text(encoding="utf-8")
    (folder / "customers.csv").write_bytes(text.encode("gb18030"))  # as Chinese Excel saves it
    whole, kept, ws = _both(tmp_path, monkeypatch)
    assert kept["customers"].batches == 6 and kept["customers"].read_as == {"encoding": "gb18030", "sep": ","}
    written = pd.read_parquet(ws.data / "intake" / "customers.parquet")
    pd.testing.assert_frame_equal(written, _as_written(whole["customers"].table, tmp_path / "c.parquet"))
    assert written["name"].iloc[0] == "客户1"


def test_a_row_local_step_is_applied_to_each_batch_as_to_the_whole_table(tmp_path: Path, monkeypatch):
    from crmnb.intake import load

    seen: list[int] = []

    def city_from_name(text: pd.DataFrame) -> pd.DataFrame:
        seen.append(len(text))
        return text.assign(city=text["name"].str.replace("客户", "城市", regex=False))

    monkeypatch.setitem(load.ROW_STEPS, "customers", city_from_name)
    _write(tmp_path / "exports", customers=_customers())
    whole, kept, ws = _both(tmp_path, monkeypatch)
    assert seen == [22, 4, 4, 4, 4, 4, 2]  # the whole table once, then each batch
    written = pd.read_parquet(ws.data / "intake" / "customers.parquet")
    pd.testing.assert_frame_equal(written, _as_written(whole["customers"].table, tmp_path / "c.parquet"))
    assert written["city"].tolist()[:2] == ["城市1", "城市2"]


_IN_KERNEL = """
import sys
sys.path.insert(0, {fixtures!r})
from pathlib import Path
from crm_mini import mini_case
from crmnb.handoffs import Workspace, save_intake
from crmnb.intake import stream
from crmnb.intake.load import iter_tables
stream.BATCH_ROWS = 4
kept = save_intake(Workspace(Path({out!r}), "mini"), iter_tables(mini_case(Path({exports!r}))))
print("BATCHES", kept["customers"].batches, kept["orders"].batches)
"""


def test_step_2_in_a_jupyter_kernel_takes_exports_in_batches(tmp_path: Path):
    """In a kernel, as the runner runs step 2, a CSV export is still taken in a batch at a time.

    Batches that fail for any reason fall back to the whole table, with the same results but all of it in
    memory: DuckDB 2 refused ``SET enable_progress_bar`` inside Jupyter without ipywidgets, so every export
    of a 100x case was read whole in a kernel (5.8 GB instead of 1.2 GB, twice the time) and in no test.
    """
    from jupyter_client.manager import start_new_kernel

    _write(tmp_path / "exports", customers=_customers(), orders=_orders())
    code = _IN_KERNEL.format(
        fixtures=str(Path(__file__).parent / "fixtures"), out=str(tmp_path / "out"), exports=str(tmp_path / "exports")
    )
    printed: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            printed.append("\n".join(msg["content"]["traceback"]))

    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120, cwd=str(tmp_path))
    try:
        reply = kc.execute_interactive(code, timeout=300, output_hook=hook)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    out = "".join(printed)
    assert reply["content"]["status"] == "ok", out
    assert "BATCHES 6 5" in out, out


def test_a_fault_that_makes_a_table_be_taken_in_whole_is_said(tmp_path: Path, monkeypatch):
    """A batch path that fails for no reason in the export falls back to the whole table, with the same hand-off
    and a warning naming the file and table: the fallback costs the whole table's memory, which nothing else shows."""
    _write(tmp_path / "exports", customers=_customers(), orders=_orders())
    case = mini_case(tmp_path / "exports")
    whole = load_tables(case)
    monkeypatch.setattr(stream, "BATCH_ROWS", BATCH)

    def broken(*args, **kwargs):
        raise RuntimeError("engine fault, C8 138-0000-0008")

    monkeypatch.setattr(stream, "duplicate_keys", broken)
    ws = Workspace(tmp_path / "out", case.case_id)
    with pytest.warns(RuntimeWarning, match=r"customers\.csv \(table 'customers'\): taken in whole") as said:
        kept = save_intake(ws, iter_tables(case))
    assert kept["customers"].batches == 0  # taken in whole, as before
    assert not any("138-0000" in str(w.message) for w in said)  # the exception's text (export values) is not said
    written = pd.read_parquet(ws.data / "intake" / "customers.parquet")
    pd.testing.assert_frame_equal(written, _as_written(whole["customers"].table, tmp_path / "customers.parquet"))
