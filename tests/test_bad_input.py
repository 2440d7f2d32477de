"""Bad input: each gives a clear message naming the file and column, or quarantine plus a log line.

Decision for header-only exports: customers, leads, opportunities, orders and
campaigns are needed by the analyses, so a header-only export of one of them is
an error; any other table may be empty and is then kept as a zero-row table,
with a note at intake and an 'empty table' line in the cleaning log.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from crm_mini import CASE, frame, mini_case, take_in_and_clean, write_mini

from crmnb.cli import main
from crmnb.errors import DataError
from crmnb.intake.load import load_tables
from crmnb.intake.schema import TABLES


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    return write_mini(tmp_path / "exports")


run = take_in_and_clean


def spoil(folder: Path, table: str, **changes) -> Path:
    """Rewrite one mini export with some cells changed: changes = {column: {row index: value}}."""
    df = frame(table)
    for col, cells in changes.items():
        for i, v in cells.items():
            df.loc[i, col] = v
    path = folder / f"{table}.csv"
    df.to_csv(path, index=False, encoding="utf-8")
    return path


def error(folder: Path, **data) -> str:
    with pytest.raises(DataError) as exc:
        load_tables(mini_case(folder, **data))
    return str(exc.value)


def test_the_mini_export_is_clean(mini: Path):
    intakes, cleaned = run(mini)
    assert cleaned.quarantine.empty
    assert all(g.issues.empty for g in intakes.values())


# --------------------------------------------------------------------------- clear messages
def test_empty_file(mini: Path):
    (mini / "orders.csv").write_bytes(b"")
    msg = error(mini)
    assert "table 'orders'" in msg and "file is empty" in msg and str(mini / "orders.csv") in msg


def test_header_only_required_table_is_an_error(mini: Path):
    (mini / "orders.csv").write_text("order_id,customer_id,order_date,amount\n", encoding="utf-8")
    msg = error(mini)
    assert str(mini / "orders.csv") in msg and "table 'orders'" in msg and "header but no rows" in msg


def test_header_only_optional_table_is_an_empty_table_with_a_log_line(mini: Path):
    (mini / "tickets.csv").write_text("ticket_id,customer_id,type,created_at\n", encoding="utf-8")
    intakes, cleaned = run(mini)
    assert len(intakes["tickets"].table) == 0
    assert list(intakes["tickets"].table.columns)[1:] == list(TABLES["tickets"].columns)
    assert "header but no rows" in intakes["tickets"].notes[0]
    line = cleaned.log[cleaned.log["rule"] == "empty table"]
    assert line[["table", "rows", "action"]].to_dict("records") == [
        {"table": "tickets", "rows": 0, "action": "kept as an empty table"},
        {"table": "email_events", "rows": 0, "action": "kept as an empty table"},  # no export of it at all
    ]


def test_which_tables_may_be_empty():
    assert sorted(t for t, s in TABLES.items() if not s.may_be_empty) == [
        "campaigns",
        "customers",
        "leads",
        "opportunities",
        "orders",
    ]


def test_semicolon_file_is_detected_and_read(mini: Path):
    (mini / "orders.csv").write_text(frame("orders").to_csv(index=False, sep=";"), encoding="utf-8")
    intakes, _ = run(mini)
    assert intakes["orders"].read_as["sep"] == ";"
    assert intakes["orders"].table["amount"].tolist() == [1000.0, 250.0, 80.0]


def test_semicolon_file_declared_as_comma_names_the_delimiter_found(mini: Path):
    (mini / "orders.csv").write_text(frame("orders").to_csv(index=False, sep=";"), encoding="utf-8")
    msg = error(mini, tables={"orders": {"sep": ","}})
    assert str(mini / "orders.csv") in msg and "required column(s) missing" in msg
    assert "semicolon-separated (';')" in msg and "sep: ';'" in msg


def test_required_column_missing(mini: Path):
    frame("orders").drop(columns=["amount"]).to_csv(mini / "orders.csv", index=False)
    msg = error(mini)
    assert str(mini / "orders.csv") in msg and "table 'orders'" in msg
    assert "required column(s) missing: amount" in msg and "found: order_id, customer_id" in msg


def test_file_not_where_the_case_file_says(mini: Path):
    msg = error(mini, tables={"orders": {"file": "exports_2025/orders.csv"}})
    assert "table 'orders'" in msg and "file not found" in msg
    assert str(mini / "exports_2025" / "orders.csv") in msg and "data.tables.orders" in msg
    msg = error(mini, files={"orders": "order.csv"})
    assert "data.files.orders" in msg and "files there: " in msg and "orders.csv" in msg


def test_excel_sheet_that_does_not_exist(mini: Path):
    msg = error(mini, tables={"campaigns": {"file": "campaigns.xlsx", "sheet": "活动"}})
    assert "table 'campaigns'" in msg and "sheet '活动' not in campaigns.xlsx" in msg
    assert "(sheets: campaigns)" in msg


def test_unknown_status_value_names_column_value_and_row(mini: Path):
    spoil(mini, "leads", status={1: "closed"})
    msg = error(mini)
    assert str(mini / "leads.csv") in msg and "column 'status'" in msg
    assert "expected one of open, converted, lost" in msg and "'closed' (1 rows)" in msg and "row(s) 2" in msg
    # and the fix the message names works: translate the value in the case file
    intakes, _ = run(mini, tables={"leads": {"mapping": {"values": {"status": {"closed": "lost"}}}}})
    assert intakes["leads"].table["status"].tolist() == ["converted", "lost", "open"]


# --------------------------------------------------------------------------- quarantine and log
def quarantined(cleaned, table: str, rule: str) -> pd.DataFrame:
    q = cleaned.quarantine
    return q[(q["table"] == table) & (q["rule"] == rule)]


def logged(cleaned, table: str, rule: str) -> pd.DataFrame:
    log = cleaned.log
    return log[(log["table"] == table) & (log["rule"] == rule)]


def test_amount_that_is_not_a_number(mini: Path):
    spoil(mini, "orders", amount={1: "about 250"})
    intakes, cleaned = run(mini)
    issue = intakes["orders"].issues.iloc[0]
    assert (issue["row"], issue["column"], issue["value"]) == (2, "amount", "about 250")
    q = quarantined(cleaned, "orders", "not a number")
    assert q["row"].tolist() == [2] and q["key"].tolist() == ["S2"]
    assert q["reason"].iloc[0] == "not a number in amount: 'about 250'"
    assert '"order_id": "S2"' in q["record"].iloc[0]
    assert logged(cleaned, "orders", "not a number")["rows"].tolist() == [1]


def test_negative_amount_is_quarantined_with_its_value(mini: Path):
    spoil(mini, "orders", amount={2: "-80.00"})
    _, cleaned = run(mini)
    q = quarantined(cleaned, "orders", "negative amount")
    assert q["row"].tolist() == [3] and "amount is -80.0" in q["reason"].iloc[0]
    assert logged(cleaned, "orders", "negative amount")["column"].tolist() == ["amount"]


def test_score_out_of_range_is_set_missing_and_logged(mini: Path):
    spoil(mini, "tickets", csat={0: "9"})
    _, cleaned = run(mini)
    assert pd.isna(cleaned.tables["tickets"]["csat"].iloc[0])
    line = logged(cleaned, "tickets", "out of range")
    assert line["action"].tolist() == ["set to missing, row kept"] and "9.0" in line["detail"].iloc[0]


def test_dates_that_cannot_be_read(mini: Path):
    spoil(mini, "orders", order_date={0: "next Tuesday"})
    spoil(mini, "activities", completed_at={0: "soon"})
    _, cleaned = run(mini)
    q = quarantined(cleaned, "orders", "unreadable date")
    assert q["row"].tolist() == [1] and q["reason"].iloc[0] == "unreadable date in order_date: 'next Tuesday'"
    # an optional date: the row stays, the value is missing and the log says so
    assert pd.isna(cleaned.tables["activities"].loc[0, "completed_at"])
    line = logged(cleaned, "activities", "unreadable date")
    assert line[["column", "rows", "action"]].to_dict("records") == [
        {"column": "completed_at", "rows": 1, "action": "set to missing, row kept"}
    ]


def test_dates_in_the_future(mini: Path):
    spoil(mini, "orders", order_date={2: "2031-01-01 10:00:00"})
    _, cleaned = run(mini)
    q = quarantined(cleaned, "orders", "date in the future")
    assert q["row"].tolist() == [3]
    assert q["reason"].iloc[0] == "order_date 2031-01-01 is after 2025-06-30"
    assert logged(cleaned, "orders", "date in the future")["rows"].tolist() == [1]


def test_ids_pointing_at_customers_that_do_not_exist(mini: Path):
    spoil(mini, "orders", customer_id={1: "C404"})
    spoil(mini, "tickets", customer_id={0: "C999"})
    _, cleaned = run(mini)
    q = quarantined(cleaned, "orders", "unknown customer")
    assert q["row"].tolist() == [2] and q["reason"].iloc[0] == "customer_id C404 is not in customers"
    assert quarantined(cleaned, "tickets", "unknown customer")["row"].tolist() == [1]
    assert set(logged(cleaned, "orders", "unknown customer")["column"]) == {"customer_id"}


# --------------------------------------------------------------------------- crmnb validate
def test_validate_command_names_each_bad_table_and_exits_1(mini: Path, capsys):
    (mini / "orders.csv").write_bytes(b"")
    spoil(mini, "leads", status={1: "closed"})
    spoil(mini, "activities", due_at={0: "someday"})
    case = mini.parent / "case.yaml"
    import yaml

    case.write_text(yaml.safe_dump({**CASE, "data": {"dir": "exports"}}, allow_unicode=True), encoding="utf-8")
    assert main(["validate", str(case)]) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ") and ln.split()}
    assert "ERROR" in lines["orders"] and "file is empty" in lines["orders"]
    assert "ERROR" in lines["leads"] and "'closed'" in out
    assert "ok" in lines["customers"] and "3 rows" in lines["customers"]
    assert "unreadable date in column 'due_at'" in out and "'someday'" in out
    assert f"{len(TABLES) - 2} of {len(TABLES)} tables usable; 2 with errors" in out


def test_validate_command_on_good_data_previews_the_quarantine(mini: Path, capsys):
    spoil(mini, "orders", customer_id={1: "C404"})
    case = mini.parent / "case.yaml"
    import yaml

    case.write_text(yaml.safe_dump({**CASE, "data": {"dir": "exports"}}, allow_unicode=True), encoding="utf-8")
    assert main(["validate", str(case)]) == 0
    out = capsys.readouterr().out
    assert "unknown customer" in out and "export rows 2" in out
    assert f"{len(TABLES)} of {len(TABLES)} tables usable" in out


def test_validate_command_with_a_bad_case_file_exits_1(tmp_path: Path, capsys):
    case = tmp_path / "case.yaml"
    case.write_text("case_id: x\n", encoding="utf-8")
    assert main(["validate", str(case)]) == 1
    out = capsys.readouterr().out
    assert "invalid case file" in out and "Traceback" not in out
