"""Sources declared per table: CSV in any usual encoding and separator, Excel sheets, SQL read-only.

The same export gives the same canonical tables whichever way it arrives: CSV,
GBK/semicolon CSV, Excel, SQLite. One end-to-end run reads a case from SQLite and
checks that no file in its data folder was written.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from openpyxl import Workbook

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from crm_mini import CASE, frame, mini_case, write_mini
from raw_figures import lead_conversion
from sheets import read_sheet

from crmnb.cli import main
from crmnb.demo.generator import generate, to_sqlite
from crmnb.errors import CaseFileError, DataError
from crmnb.intake.load import load_tables
from crmnb.intake.read import detect_separator, read_sql_text, readonly_engine
from crmnb.intake.schema import DEFAULT_FILES, TABLES
from crmnb.params import parse_case

ROOT = Path(__file__).resolve().parents[1]
ORDERS = frame("orders")


def write_csv(path: Path, df: pd.DataFrame, encoding: str, sep: str) -> Path:
    path.write_bytes(df.to_csv(index=False, sep=sep, lineterminator="\r\n").encode(encoding))
    return path


# --------------------------------------------------------------------------- CSV
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
@pytest.mark.parametrize("sep", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_csv_encoding_and_separator_are_detected(tmp_path: Path, encoding: str, sep: str):
    df = frame("customers")  # Chinese names and departments: the encoding matters
    write_mini(tmp_path)
    write_csv(tmp_path / "customers.csv", df, encoding, sep)
    got = load_tables(mini_case(tmp_path))["customers"]
    assert got.table["name"].tolist() == ["张伟", "李娜", "王芳"]
    assert got.table["department"].tolist() == ["销售一部", "销售一部", "客户服务部"]
    assert got.read_as["sep"] == sep
    assert (
        got.read_as["encoding"]
        == {"utf-8": "utf-8", "utf-8-sig": "utf-8", "gbk": "gb18030", "gb18030": "gb18030"}[encoding]
    )


def test_declared_encoding_and_separator_win(tmp_path: Path):
    write_mini(tmp_path)
    write_csv(tmp_path / "orders_gbk.csv", ORDERS, "gbk", ";")
    case = mini_case(tmp_path, tables={"orders": {"file": "orders_gbk.csv", "encoding": "gbk", "sep": "semicolon"}})
    got = load_tables(case)["orders"]
    assert got.read_as == {"encoding": "gbk", "sep": ";"}
    assert got.table["department"].tolist() == ["销售一部", "销售一部", "客户服务部"]
    assert case.data_path("orders") == tmp_path / "orders_gbk.csv"  # data.files follows data.tables


def test_separator_detection_prefers_the_expected_columns():
    # commas inside the values, semicolons between them: the header decides
    sample = "order_id;amount;note\nS1;1,5;a,b,c\nS2;2,5;d,e,f\n"
    assert detect_separator(sample, ["order_id", "amount"]) == ";"
    assert detect_separator("a\tb\n1\t2\n") == "\t"
    assert detect_separator("single\nx\n") == ","


def test_csv_header_row_skips_title_lines(tmp_path: Path):
    write_mini(tmp_path)
    text = "订单导出 2025-06-30\n\n" + ORDERS.to_csv(index=False)
    (tmp_path / "orders.csv").write_text(text, encoding="utf-8")
    got = load_tables(mini_case(tmp_path, tables={"orders": {"header_row": 3}}))["orders"]
    assert got.table["order_id"].tolist() == ["S1", "S2", "S3"]


# --------------------------------------------------------------------------- Excel
def test_excel_named_sheet_and_header_row(tmp_path: Path):
    write_mini(tmp_path)
    f = tmp_path / "营销.xlsx"
    with pd.ExcelWriter(f) as w:
        pd.DataFrame({"说明": ["见活动表"]}).to_excel(w, sheet_name="说明", index=False)
        pd.DataFrame([["活动导出"], [""]]).to_excel(w, sheet_name="活动", index=False, header=False)
        frame("campaigns").to_excel(w, sheet_name="活动", index=False, startrow=2)
    case = mini_case(tmp_path, tables={"campaigns": {"file": "营销.xlsx", "sheet": "活动", "header_row": 3}})
    got = load_tables(case)["campaigns"]
    assert got.table[["campaign_id", "spend"]].to_dict("records") == [{"campaign_id": "K1", "spend": 5000.0}]


# --------------------------------------------------------------------------- SQL
@pytest.fixture
def crm_db(tmp_path: Path) -> Path:
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "create table leads (lead_id text, created_at text, first_contact_at text, department text, "
            "channel text, campaign_id text, status text, customer_id text, score real, hot integer)"
        )
        conn.executemany(
            "insert into leads values (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    r["lead_id"],
                    r["created_at"],
                    r["first_contact_at"] or None,
                    r["department"],
                    r["channel"],
                    r["campaign_id"] or None,
                    r["status"],
                    r["customer_id"] or None,
                    1.5,
                    1,
                )
                for r in frame("leads").to_dict("records")
            ],
        )
    conn.close()
    return db


def test_sqlite_table_query_and_order(crm_db: Path):
    url = f"sqlite:///{crm_db}"
    df = read_sql_text(url, table="leads")
    assert df["lead_id"].tolist() == ["L1", "L2", "L3"]
    assert df.loc[0, "score"] == "1.5" and df.loc[0, "hot"] == "1"  # typed values arrive as text
    assert df.loc[2, "first_contact_at"] is None
    q = read_sql_text(url, query="select lead_id, status from leads where status <> 'open'")
    assert q.to_dict("records") == [{"lead_id": "L1", "status": "converted"}, {"lead_id": "L2", "status": "lost"}]
    back = read_sql_text(url, table="leads", order_by="lead_id")
    assert back["lead_id"].tolist() == ["L1", "L2", "L3"]


def test_sqlite_is_opened_read_only(crm_db: Path):
    before = crm_db.read_bytes()
    engine = readonly_engine(f"sqlite:///{crm_db}")
    with engine.connect() as conn, pytest.raises(Exception, match="readonly|read-only"):
        conn.exec_driver_sql("insert into leads (lead_id) values ('X')")
    engine.dispose()
    assert crm_db.read_bytes() == before
    assert sorted(p.name for p in crm_db.parent.iterdir()) == ["crm.db"]  # no journal, no new file


def test_sqlite_missing_database_and_table_are_named(tmp_path: Path, crm_db: Path):
    with pytest.raises(DataError, match="SQLite database not found: .*nope.db"):
        read_sql_text(f"sqlite:///{tmp_path / 'nope.db'}", table="leads")
    assert not (tmp_path / "nope.db").exists()  # read-only: never created
    with pytest.raises(DataError, match="table 'leads'.*table lead_list.*no such table"):
        read_sql_text(f"sqlite:///{crm_db}", table="lead_list", label="table 'leads'")


def test_case_reads_a_table_from_sql_with_a_relative_url_and_env_var(tmp_path: Path, crm_db: Path, monkeypatch):
    write_mini(tmp_path)
    monkeypatch.setenv("CRM_DB", "crm.db")
    case = mini_case(tmp_path, tables={"leads": {"sql": {"url": "sqlite:///${CRM_DB}", "table": "leads"}}})
    got = load_tables(case)["leads"]
    assert got.table["lead_id"].tolist() == ["L1", "L2", "L3"]
    assert "crm.db (table leads)" in got.source


@pytest.mark.parametrize(
    "data,message",
    [
        ({"tables": {"order": {"file": "o.csv"}}}, "unknown table(s) order"),
        (
            {"tables": {"orders": {"file": "o.csv", "sql": {"url": "sqlite:///x.db", "table": "o"}}}},
            "either 'file' or 'sql'",
        ),
        ({"tables": {"orders": {"sql": {"url": "sqlite:///x.db", "query": "delete from orders"}}}}, "SELECT"),
        (
            {"tables": {"orders": {"sql": {"url": "sqlite:///x.db", "query": "select 1; drop table x"}}}},
            "single statement",
        ),
        ({"tables": {"orders": {"sql": {"table": "orders"}}}}, "needs a 'url'"),
        ({"tables": {"orders": {"sql": {"url": "sqlite:///x.db"}}}}, "exactly one of 'table' or 'query'"),
        ({"tables": {"orders": {"file": "o.csv", "sep": ":"}}}, "separator ':' not supported"),
        ({"tables": {"orders": {"file": "o.csv", "encoding": "klingon"}}}, "unknown encoding"),
        ({"tables": {"orders": {"file": "o.csv", "sheet": "x"}}}, "'sheet' is for Excel"),
        ({"tables": {"orders": {"file": "o.csv", "header_row": 0}}}, "header_row"),
        ({"tables": {"orders": {"file": "o.csv", "encodng": "gbk"}}}, "unknown key"),
        ({"files": {"orders": "a.csv"}, "tables": {"orders": {"file": "b.csv"}}}, "data.files says 'a.csv'"),
        (
            {"tables": {"orders": {"file": "o.csv", "mapping": "salesforce_opportunity"}}},
            "maps the table 'opportunities'",
        ),
        (
            {"tables": {"opportunities": {"file": "o.csv", "mapping": "salesforce"}}},
            "unknown mapping preset 'salesforce'",
        ),
    ],
)
def test_bad_source_declarations_are_refused_naming_the_key(tmp_path: Path, data: dict, message: str):
    with pytest.raises(CaseFileError) as exc:
        parse_case({**CASE, "data": {"dir": str(tmp_path), **data}}, tmp_path / "case.yaml")
    assert message in str(exc.value)
    assert "data" in str(exc.value)


# --------------------------------------------------------------------------- same tables, any source
@pytest.fixture(scope="module")
def demo_small(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo_small")
    generate(folder, scale=0.02, seed=11)
    return folder


def _case(folder: Path, **data):
    return parse_case({**CASE, "data": {"dir": str(folder), **data}}, folder / "case.yaml")


def test_csv_excel_sqlite_and_gbk_give_the_same_tables(demo_small: Path, tmp_path: Path):
    reference = load_tables(_case(demo_small))
    # the same exports as GBK with semicolons, as one Excel workbook, and as SQLite
    gbk = tmp_path / "gbk"
    gbk.mkdir()
    book = Workbook()
    book.remove(book.active)
    for name, file in DEFAULT_FILES.items():
        text = (
            pd.read_excel(demo_small / file, dtype=str, keep_default_na=False)
            if file.endswith("xlsx")
            else pd.read_csv(demo_small / file, dtype=str, encoding="utf-8-sig", keep_default_na=False)
        )
        write_csv(gbk / f"{name}.csv", text, "gb18030", ";")
        sheet = book.create_sheet(name)
        sheet.append(list(text.columns))
        for row in text.itertuples(index=False):
            sheet.append([v if v != "" else None for v in row])
        for cells in sheet.iter_rows(min_row=2):
            for c in cells:
                if isinstance(c.value, str):
                    c.data_type = "s"  # a note such as '=1+2' is text in an export, not a formula
    book.save(tmp_path / "crm.xlsx")
    to_sqlite(demo_small, tmp_path / "crm.db")
    variants = {
        "gbk;": _case(gbk, files={n: f"{n}.csv" for n in TABLES}),
        "excel": _case(tmp_path, files=dict.fromkeys(TABLES, "crm.xlsx"), tables={n: {"sheet": n} for n in TABLES}),
        "sqlite": _case(tmp_path, sql_url="sqlite:///crm.db"),
    }
    for label, case in variants.items():
        got = load_tables(case)
        for name in TABLES:
            pd.testing.assert_frame_equal(got[name].table, reference[name].table, obj=f"{label} {name}")
            pd.testing.assert_frame_equal(got[name].issues, reference[name].issues, obj=f"{label} {name} issues")


def test_demo_data_sqlite_flag_and_validate_from_sqlite(tmp_path: Path, capsys):
    out, db = tmp_path / "demo", tmp_path / "demo.db"
    assert main(["demo-data", "--out", str(out), "--scale", "0.05", "--seed", "3", "--sqlite", str(db)]) == 0
    assert "sqlite:///" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    conn.close()
    assert names == set(TABLES)
    case = tmp_path / "case.yaml"
    case.write_text(
        yaml.safe_dump({**CASE, "data": {"dir": "demo", "sql_url": "sqlite:///../demo.db"}}, allow_unicode=True),
        encoding="utf-8",
    )
    assert main(["validate", str(case)]) == 0
    printed = capsys.readouterr().out
    for name in TABLES:
        assert name in printed
    assert f"{len(TABLES)} of {len(TABLES)} tables usable" in printed


# --------------------------------------------------------------------------- one whole run
def _hashes(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.e2e
def test_a_case_runs_from_sqlite_and_excel_and_writes_no_raw_file(tmp_path: Path):
    """One case, run whole: most tables from SQLite, campaigns from Excel, orders from CSV; nothing raw written."""
    from crmnb.run.steps import run_case

    data = tmp_path / "exports"
    generate(data, scale=0.3, seed=7)
    to_sqlite(data, data / "crm.db")
    raw = yaml.safe_load((ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    raw["data"] = {
        "dir": str(data),
        "sql_url": "sqlite:///crm.db",
        "tables": {
            "orders": {"file": "orders.csv", "sep": ","},
            "campaigns": {"file": "campaigns.xlsx", "sheet": "campaigns"},
        },
    }
    raw["case_id"] = "from_sqlite"
    (tmp_path / "parameters").mkdir()
    case_file = tmp_path / "parameters" / "from_sqlite.yaml"
    case_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    before = _hashes(data)
    res = run_case(case_file, tmp_path / "outputs", progress=None)
    assert _hashes(data) == before, "a raw export or the database was written to"
    assert res.report.is_file() and res.workbook.is_file()
    # the headline figure equals the one computed from the CSV exports with pandas alone
    a0, a1 = res.case.windows["after"]
    expected, _ = lead_conversion(data, res.case.department, a0, a1, res.case.thresholds.conversion_window_days)
    table2 = read_sheet(res.workbook, "Table 2 KPI before-after").set_index("metric")
    assert table2.loc["lead_conversion_rate", "after"] == pytest.approx(expected, abs=1e-12)


def test_a_database_table_is_read_in_key_order_unless_order_by_says(tmp_path: Path):
    write_mini(tmp_path)
    db = tmp_path / "crm.db"
    shuffled = frame("orders").iloc[[2, 0, 1]]
    with sqlite3.connect(db) as conn:
        shuffled.to_sql("orders", conn, index=False)
    conn.close()
    got = load_tables(mini_case(tmp_path, tables={"orders": {"sql": {"url": "sqlite:///crm.db", "table": "orders"}}}))
    assert got["orders"].table["order_id"].tolist() == ["S3", "S1", "S2"]  # SQLite: the order rows were loaded in
    # other databases return rows in no set order: the key orders them
    from crmnb.intake.load import _in_key_order
    from crmnb.intake.mappings import resolve

    ordered, notes = _in_key_order(shuffled.reset_index(drop=True), "orders", None)
    assert ordered["order_id"].tolist() == ["S1", "S2", "S3"] and "order of order_id" in notes[0]
    sf = pd.DataFrame({"Id": ["b", "a"], "StageName": ["x", "y"]})
    assert _in_key_order(sf, "opportunities", resolve("salesforce_opportunity", "opportunities"))[0]["Id"].tolist() == [
        "a",
        "b",
    ]
    got = load_tables(
        mini_case(
            tmp_path,
            tables={
                "orders": {"sql": {"url": "sqlite:///crm.db", "table": "orders", "order_by": "department, order_id"}}
            },
        )
    )
    assert got["orders"].table["order_id"].tolist() == ["S3", "S1", "S2"]  # 客户服务部 sorts before 销售一部
    assert got["orders"].table["_row"].tolist() == [1, 2, 3]
