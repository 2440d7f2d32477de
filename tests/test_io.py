"""crmnb.intake.schema: exports are read as they are, every unreadable value is listed, hand-offs say what to run first."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.errors import DataError, HandoffMissing
from crmnb.handoffs import Workspace
from crmnb.intake.parse import DATE_FORMATS, intake, parse_dates
from crmnb.intake.read import read_export
from crmnb.intake.schema import ROW, TABLES


# --------------------------------------------------------------------------- parse_dates
@pytest.mark.parametrize("fmt,label", DATE_FORMATS, ids=[lab for _, lab in DATE_FORMATS])
def test_parse_dates_reads_each_format(fmt: str, label: str):
    moment = datetime(2025, 3, 4, 9, 5, 7)
    text = moment.strftime(fmt)
    parsed, labels = parse_dates(pd.Series([text]))
    expected = moment.replace(second=moment.second if "%S" in fmt else 0)
    if "%H" not in fmt:
        expected = expected.replace(hour=0, minute=0, second=0)
    assert parsed.iloc[0] == pd.Timestamp(expected)
    assert labels.iloc[0] == label


def test_parse_dates_reads_months_and_days_without_leading_zeros():
    parsed, labels = parse_dates(pd.Series(["2025/3/4 10:05", "2025年3月4日", " 2025-03-04 "]))
    assert parsed.tolist() == [pd.Timestamp("2025-03-04 10:05"), pd.Timestamp("2025-03-04"), pd.Timestamp("2025-03-04")]
    assert labels.tolist() == ["YYYY/M/D hh:mm", "YYYY年M月D日", "YYYY-MM-DD"]


def test_parse_dates_empty_is_nat_with_empty_label():
    parsed, labels = parse_dates(pd.Series(["", None, "   "], dtype=object))
    assert parsed.isna().all()
    assert labels.tolist() == ["", "", ""]


def test_parse_dates_unreadable_is_nat_with_none_label():
    parsed, labels = parse_dates(pd.Series(["2025-03-04", "yesterday", "2025-13-45", "04.03.2025"]))
    assert parsed.iloc[0] == pd.Timestamp("2025-03-04")
    assert parsed.iloc[1:].isna().all()
    assert labels.tolist() == ["YYYY-MM-DD", None, None, None]
    assert all(lab is None for lab in labels.iloc[1:])


@pytest.mark.parametrize(
    "value",
    [
        "2025-02-29",
        "2025-04-31 10:00",
        "2025/2/30",
        "2025年2月30日",
        "2025-4-31",
        "2025年02月30日 08:30",
        "2025/3/4 10:00:60",
        "2025-02-30T10:00:00Z",
        "2025-03-04 10:00:60",
        "2025-03-04 24:00:00",
        "2025-03-04 10:61",
    ],
)
def test_parse_dates_refuses_impossible_dates_and_times(value: str):
    """Dates are parsed by Arrow, which would roll 30 February into March: such values stay unreadable."""
    parsed, labels = parse_dates(pd.Series([value, "2024-02-29 23:59:59"]))
    assert pd.isna(parsed.iloc[0]) and labels.iloc[0] is None
    assert parsed.iloc[1] == pd.Timestamp("2024-02-29 23:59:59")


def test_a_date_as_wide_as_its_format_but_laid_out_otherwise_is_read_as_written():
    """A month of one digit and two spaces make '2024-1-02  10:05:01' as wide as YYYY-MM-DD hh:mm:ss: its day
    and second are not where that format puts them, and the value is still read (and checked) as written."""
    values = ["2024-1-02  10:05:01", "2024/1/03  10:05:00", "2024年1月02日 10:05:01", "2023-2-29  10:05:01"]
    parsed, labels = parse_dates(pd.Series(values))
    assert parsed.iloc[:3].tolist() == [
        pd.Timestamp("2024-01-02 10:05:01"),
        pd.Timestamp("2024-01-03 10:05:00"),
        pd.Timestamp("2024-01-02 10:05:01"),
    ]
    assert labels.tolist()[:3] == ["YYYY-MM-DD hh:mm:ss", "YYYY/M/D hh:mm:ss", "YYYY年M月D日 hh:mm:ss"]
    assert pd.isna(parsed.iloc[3]) and labels.iloc[3] is None  # 29 February 2023: refused, not rolled over
    got = intake(orders_raw(order_date=values[:3]), "orders", "orders.csv")
    assert got.issues.empty and got.table["order_date"].notna().all()


def test_parse_dates_keeps_the_index():
    s = pd.Series(["2025-01-02", "x"], index=[10, 20])
    parsed, labels = parse_dates(s)
    assert list(parsed.index) == [10, 20] and list(labels.index) == [10, 20]


# --------------------------------------------------------------------------- intake
def orders_raw(**cols) -> pd.DataFrame:
    base = {
        "order_id": ["O1", "O2", "O3"],
        "customer_id": ["C1", "C2", "C3"],
        "order_date": ["2025-01-05", "2025/1/6", "2025-01-07"],
        "amount": ["100", "1,250.50", "300"],
    }
    base.update(cols)
    return pd.DataFrame({k: v for k, v in base.items() if v is not None}, dtype=object)


def test_intake_types_a_clean_export():
    got = intake(orders_raw(), "orders", "orders.csv")
    t = got.table
    assert list(t.columns) == [ROW, *TABLES["orders"].columns]
    assert t[ROW].tolist() == [1, 2, 3]
    assert t["amount"].tolist() == [100.0, 1250.5, 300.0]
    assert t["order_date"].tolist() == [
        pd.Timestamp("2025-01-05"),
        pd.Timestamp("2025-01-06"),
        pd.Timestamp("2025-01-07"),
    ]
    assert got.issues.empty
    fm = got.formats.set_index("format")["rows"].to_dict()
    assert fm == {"YYYY-MM-DD": 2, "YYYY/M/D": 1}


def test_intake_missing_required_column_names_file_and_column():
    with pytest.raises(DataError) as exc:
        intake(orders_raw(amount=None), "orders", "exports/orders.csv")
    msg = str(exc.value)
    assert "exports/orders.csv" in msg
    assert "amount" in msg
    assert "orders" in msg


def test_intake_lists_non_numeric_amount_and_unreadable_date_with_row_and_value():
    raw = orders_raw(order_date=["2025-01-05", "next Tuesday", "2025-01-07"], amount=["100", "200", "about 300"])
    got = intake(raw, "orders", "orders.csv")
    issues = got.issues.sort_values("column").reset_index(drop=True)
    assert issues[["table", "row", "column", "value", "problem"]].to_dict("records") == [
        {"table": "orders", "row": 3, "column": "amount", "value": "about 300", "problem": "not a number"},
        {"table": "orders", "row": 2, "column": "order_date", "value": "next Tuesday", "problem": "unreadable date"},
    ]
    # the cell becomes missing, the row stays for cleaning to judge
    assert len(got.table) == 3
    assert pd.isna(got.table.loc[2, "amount"])
    assert pd.isna(got.table.loc[1, "order_date"])


def test_intake_empty_cells_are_missing_not_issues():
    got = intake(orders_raw(amount=["100", "", None]), "orders")
    assert got.issues.empty
    assert got.table["amount"].isna().tolist() == [False, True, True]


def test_intake_adds_absent_optional_columns_as_missing():
    got = intake(orders_raw(), "orders")
    t = got.table
    for col in ("opportunity_id", "department"):
        assert col in t.columns
        assert t[col].isna().all()
    leads = pd.DataFrame(
        {
            "lead_id": ["L1"],
            "created_at": ["2025-01-01 09:00"],
            "department": ["销售一部"],
            "channel": ["web"],
            "status": ["open"],
        }
    )
    lt = intake(leads, "leads").table
    assert lt["first_contact_at"].isna().all()
    assert pd.api.types.is_datetime64_any_dtype(lt["first_contact_at"])


def test_intake_strips_text_values():
    got = intake(orders_raw(customer_id=[" C1", "C2 ", "C3"]), "orders")
    assert got.table["customer_id"].tolist() == ["C1", "C2", "C3"]


# --------------------------------------------------------------------------- read_export
def test_read_export_missing_file(tmp_path: Path):
    with pytest.raises(DataError) as exc:
        read_export(tmp_path / "orders.csv", "orders")
    assert "file not found" in str(exc.value) and "orders.csv" in str(exc.value)


def test_read_export_empty_file(tmp_path: Path):
    f = tmp_path / "orders.csv"
    f.write_bytes(b"")
    with pytest.raises(DataError) as exc:
        read_export(f, "orders")
    assert "empty" in str(exc.value) and str(f) in str(exc.value)


def test_read_export_gb18030_csv(tmp_path: Path):
    f = tmp_path / "customers.csv"
    text = "customer_id,name,company,department,created_at\nC1,张伟,杭州云启科技有限公司,销售一部,2025年3月4日\n"
    f.write_bytes(text.encode("gb18030"))
    df = read_export(f, "customers")
    assert df.to_dict("records") == [
        {
            "customer_id": "C1",
            "name": "张伟",
            "company": "杭州云启科技有限公司",
            "department": "销售一部",
            "created_at": "2025年3月4日",
        }
    ]


def test_read_export_utf8_with_bom_and_text_kept_as_text(tmp_path: Path):
    f = tmp_path / "orders.csv"
    f.write_text("order_id,amount\nO1,0012\n", encoding="utf-8-sig")
    df = read_export(f, "orders")
    assert list(df.columns) == ["order_id", "amount"]  # no BOM glued to the first name
    assert df.loc[0, "amount"] == "0012"  # read as text, exactly as exported


def test_read_export_does_not_modify_the_file(tmp_path: Path):
    f = tmp_path / "orders.csv"
    f.write_text("order_id,amount\nO1,1\n", encoding="utf-8")
    before = (f.read_bytes(), f.stat().st_mtime_ns)
    read_export(f, "orders")
    assert (f.read_bytes(), f.stat().st_mtime_ns) == before


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    f = tmp_path / "campaigns.xlsx"
    with pd.ExcelWriter(f) as w:
        pd.DataFrame({"note": ["read me"]}).to_excel(w, sheet_name="README", index=False)
        pd.DataFrame({"campaign_id": ["K1"], "channel": ["web"], "spend": [1000]}).to_excel(
            w, sheet_name="campaigns", index=False
        )
        pd.DataFrame({"campaign_id": ["K9"], "channel": ["app"], "spend": [5]}).to_excel(
            w, sheet_name="2025Q4", index=False
        )
    return f


def test_read_export_xlsx_picks_the_sheet_named_after_the_table(workbook: Path):
    df = read_export(workbook, "campaigns")
    assert df.to_dict("records") == [{"campaign_id": "K1", "channel": "web", "spend": "1000"}]


def test_read_export_xlsx_with_a_named_sheet(workbook: Path):
    df = read_export(workbook, "campaigns", sheet="2025Q4")
    assert df["campaign_id"].tolist() == ["K9"]


def test_read_export_xlsx_unknown_sheet_names_it_and_lists_the_sheets(workbook: Path):
    with pytest.raises(DataError) as exc:
        read_export(workbook, "campaigns", sheet="Sheet1")
    msg = str(exc.value)
    assert "'Sheet1'" in msg
    assert "campaigns.xlsx" in msg
    for name in ("README", "campaigns", "2025Q4"):
        assert name in msg


def test_read_export_unreadable_file_names_it(tmp_path: Path):
    f = tmp_path / "campaigns.xlsx"
    f.write_bytes(b"this is not a workbook")
    with pytest.raises(DataError) as exc:
        read_export(f, "campaigns")
    assert str(f) in str(exc.value)


# --------------------------------------------------------------------------- workspace
def test_workspace_round_trip(tmp_path: Path):
    df = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", None],
            "amount": [1.5, np.nan, 3.0],
            "orders": [1, 2, 3],
            "when": pd.Series([pd.Timestamp("2025-01-01 10:00"), pd.NaT, pd.Timestamp("2025-03-04")]),
            "name": ["张伟", "李娜", "王芳"],
        }
    )
    path = Workspace(tmp_path, "case_a").write("clean/orders", df)
    assert path == tmp_path / "case_a" / "data" / "clean" / "orders.parquet"
    assert path.exists()
    back = Workspace(tmp_path, "case_a").read("clean/orders")  # a fresh workspace reads from disk
    assert list(back.columns) == list(df.columns)
    assert back["orders"].tolist() == [1, 2, 3]
    assert back["name"].tolist() == ["张伟", "李娜", "王芳"]
    assert back["customer_id"].iloc[:2].tolist() == ["C1", "C2"] and pd.isna(back["customer_id"].iloc[2])
    assert back["amount"].iloc[[0, 2]].tolist() == [1.5, 3.0] and pd.isna(back["amount"].iloc[1])
    assert pd.api.types.is_datetime64_any_dtype(back["when"])
    assert back["when"].iloc[0] == pd.Timestamp("2025-01-01 10:00") and pd.isna(back["when"].iloc[1])


def test_workspace_json_round_trip(tmp_path: Path):
    ws = Workspace(tmp_path, "case_a")
    ws.write_json("clean/receipts_summary", {"passes": True, "rate": 0.005, "名": "销售一部"})
    assert ws.exists("clean/receipts_summary")
    assert Workspace(tmp_path, "case_a").read_json("clean/receipts_summary") == {
        "passes": True,
        "rate": 0.005,
        "名": "销售一部",
    }


@pytest.mark.parametrize(
    "name,notebook",
    [
        ("intake/customers", "02_data_collection"),
        ("clean/orders", "04_cleaning_and_validation"),
        ("deep_dive/funnel", "05_case_deep_dive"),
    ],
)
def test_missing_handoff_names_the_step_to_run_first(tmp_path: Path, name: str, notebook: str):
    ws = Workspace(tmp_path, "case_a")
    assert not ws.exists(name)
    with pytest.raises(HandoffMissing) as exc:
        ws.read(name)
    msg = str(exc.value)
    assert f"{notebook}.ipynb" in msg
    assert name in msg


def test_missing_json_handoff_names_the_step_to_run_first(tmp_path: Path):
    with pytest.raises(HandoffMissing, match="03_metrics"):
        Workspace(tmp_path, "case_a").read_json("metrics/headline")


def test_handoff_name_must_be_step_slash_name(tmp_path: Path):
    with pytest.raises(ValueError):
        Workspace(tmp_path, "case_a").write("../escape", pd.DataFrame({"a": [1]}))


def test_an_undeclared_handoff_is_refused_naming_the_closest(tmp_path: Path):
    ws = Workspace(tmp_path, "case_a")
    for call in (lambda: ws.write("deep_dive/funel", pd.DataFrame({"a": [1]})), lambda: ws.read("deep_dive/funel")):
        with pytest.raises(ValueError, match="not declared") as exc:
            call()
        assert "deep_dive/funnel" in str(exc.value) and "handoff_catalogue.py" in str(exc.value)
    with pytest.raises(ValueError, match="declared a table"):
        ws.write_json("deep_dive/funnel", {})


def test_every_handoff_the_notebooks_and_code_name_is_declared():
    import re

    from crmnb.handoffs import HANDOFFS

    root = Path(__file__).resolve().parents[1]
    call = re.compile(r"ws\.(write_json|read_json|write|read|exists)\(\\?\"([a-z0-9_/]+)\\?\"")
    found = set()
    for path in [*root.glob("notebooks/*.ipynb"), *root.glob("crmnb/**/*.py")]:
        for method, name in call.findall(path.read_text(encoding="utf-8")):
            assert name in HANDOFFS, f"{path.name}: {name!r} is not in crmnb.handoffs.HANDOFFS"
            if method != "exists":
                want = "json" if method.endswith("json") else "table"
                assert HANDOFFS[name].kind == want, f"{path.name}: {name!r} is declared a {HANDOFFS[name].kind}"
            found.add(name)
    assert len(found) > 40


def test_the_catalogue_is_what_the_demo_cases_write():
    import json

    from crmnb.handoffs import EXTENSIONS, HANDOFFS

    golden = Path(__file__).with_name("golden")
    for case in golden.glob("*.json"):
        written = set(json.loads(case.read_text(encoding="utf-8"))["handoffs"])
        assert written == {f"{h.name}.{EXTENSIONS[h.kind]}" for h in HANDOFFS.values()}, case.name


def test_tables_of_a_step_without_canonical_tables_are_refused(tmp_path: Path):
    ws = Workspace(tmp_path, "case_a")
    assert "orders" in ws.tables("clean")
    with pytest.raises(ValueError, match="intake/"):
        ws.tables("intak")


def test_a_hand_off_with_in_memory_notes_is_written_without_a_warning(tmp_path: Path, recwarn):
    ws = Workspace(tmp_path, "case")
    df = pd.DataFrame({"deal": ["D1", "D2"], "gain": [0.1, 0.2]})
    df.attrs["gain_draws"] = np.zeros(3)  # the routing's simulated gains: not JSON
    ws.write("plan/routing", df)
    assert not [w for w in recwarn if "attrs" in str(w.message)]
    back = ws.read("plan/routing")
    assert back.values.tolist() == df.values.tolist() and back.attrs == {}
    assert "gain_draws" in df.attrs  # the frame the notebook holds keeps them
    df.attrs = {"size_edges": [0, 10]}  # notes that can be written are kept, as pyarrow keeps them
    ws.write("plan/routing", df)
    assert ws.read("plan/routing").attrs == {"size_edges": [0, 10]}


@pytest.mark.parametrize(
    "where",
    [
        {"id": ["k3", "k17"]},  # two rows, in two row groups
        {"id": ["k3", None]},  # a missing value keeps the rows missing one
        {"id": ["nobody"]},  # no row
        {"team": ["b"], "id": [f"k{i}" for i in range(0, 40, 3)]},  # two columns
        {"empty": [None]},  # a column without any value: only a missing value matches
        {"empty": ["x"]},
        {"id": [f"k{i}" for i in range(2000)]},  # many values: the scanner's path
    ],
)
@pytest.mark.parametrize("columns", [None, ["amount", "id"]])
def test_rows_read_by_row_group_are_those_arrows_filter_keeps(tmp_path: Path, where, columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from crmnb.frames import read_rows, row_filter

    ids = [None if i % 11 == 5 else f"k{i}" for i in range(40)]
    table = pa.table(
        {
            "id": ids,
            "team": ["a", "b"] * 20,
            "amount": [float(i) for i in range(40)],
            "empty": pa.nulls(40),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=7)
    want = pd.read_parquet(path, columns=columns, filters=row_filter(path, where))
    got = read_rows(path, where, columns)
    pd.testing.assert_frame_equal(got, want)
    if "id" in where and where["id"][0] == "k3":
        assert got["amount"].tolist() == ([3.0, 17.0] if where["id"][1] == "k17" else [3.0, 5.0, 16.0, 27.0, 38.0])
