"""Numbers read right or not at all: decimal commas, thousands separators, currencies, infinities,
a file cut in its last row, duplicate headers, bytes that are not UTF-8, non-finite thresholds.

Every file is written to a temporary folder and read through the real intake path
(:func:`crmnb.intake.load.load_tables`), then cleaned, as step 2 and step 4 do.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from crm_mini import CASE, frame, mini_case, take_in_and_clean, write_mini

from crmnb.errors import CaseFileError, DataError
from crmnb.intake.load import CUT_PROBLEM, load_tables
from crmnb.params import load_case, parse_case


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    return write_mini(tmp_path / "exports")


def orders(folder: Path, amounts: list[str], sep: str = ",", end: str = "\n", **cells) -> Path:
    """Write orders.csv with one order per amount (customers C1-C3), as text exactly as given."""
    base = frame("orders").iloc[0]
    rows = []
    for i, a in enumerate(amounts):
        row = {**base.to_dict(), "order_id": f"S{i + 1}", "customer_id": f"C{i % 3 + 1}", "opportunity_id": ""}
        row["order_date"] = f"2025-03-{i % 28 + 1:02d} 10:00:00"
        row["amount"] = a
        rows.append(row)
    df = pd.DataFrame(rows, dtype=object)
    for col, values in cells.items():
        for i, v in values.items():
            df.loc[i, col] = v
    lines = [sep.join(df.columns)] + [sep.join(map(str, r)) for r in df.itertuples(index=False)]
    path = folder / "orders.csv"
    path.write_bytes((("\n".join(lines)) + end).encode("utf-8"))
    return path


run = take_in_and_clean


def error(folder: Path, **data) -> str:
    with pytest.raises(DataError) as exc:
        load_tables(mini_case(folder, **data))
    return str(exc.value)


def amounts(intakes) -> list[float]:
    return intakes["orders"].table["amount"].tolist()


# --------------------------------------------------------------------------- decimal comma, thousands
def test_decimal_commas_in_a_semicolon_file_are_read_as_decimals(mini: Path):
    orders(mini, ["7000,00", "250,50", "80,00"], sep=";")
    intakes, cleaned = run(mini)
    assert amounts(intakes) == [7000.0, 250.5, 80.0]
    assert intakes["orders"].read_as["sep"] == ";"
    assert any("decimal comma" in n and "amount" in n for n in intakes["orders"].notes)
    assert cleaned.quarantine.empty


def test_dots_between_thousands_with_a_decimal_comma(mini: Path):
    orders(mini, ["1.234,50", "250,00", "12.345.678,9"], sep=";")
    intakes, _ = run(mini)
    assert amounts(intakes) == [1234.5, 250.0, 12345678.9]


def test_commas_between_thousands_with_a_decimal_point(mini: Path):
    orders(mini, ['"1,234.50"', "250.00", '"1,000"'])
    intakes, _ = run(mini)
    assert amounts(intakes) == [1234.5, 250.0, 1000.0]  # 1,000 takes the column's decimal point
    assert any("between thousands" in n for n in intakes["orders"].notes)


def test_a_value_only_one_convention_reads_keeps_its_reading_among_others(mini: Path):
    orders(mini, ["1.234,50", "1234.50", "12"], sep=";")
    intakes, _ = run(mini)
    assert amounts(intakes) == [1234.5, 1234.5, 12.0]


def test_an_ambiguous_column_is_refused_naming_file_column_rows_and_the_setting(mini: Path):
    orders(mini, ["1,234", "500", "2,500"], sep=";")
    msg = error(mini)
    assert str(mini / "orders.csv") in msg and "column 'amount'" in msg
    assert "'1,234'" in msg and "export row(s) 1, 3" in msg
    assert 'data.tables.orders.decimal: ","' in msg


def test_the_declared_decimal_settles_an_ambiguous_column(mini: Path):
    orders(mini, ["1,234", "500", "2,500"], sep=";")
    intakes, _ = run(mini, tables={"orders": {"decimal": ","}})
    assert amounts(intakes) == [1.234, 500.0, 2.5]
    intakes, _ = run(mini, tables={"orders": {"decimal": "."}})
    assert amounts(intakes) == [1234.0, 500.0, 2500.0]


def test_a_value_written_against_the_declared_decimal_is_quarantined(mini: Path):
    orders(mini, ["1.234,50", "1234.50", "80"], sep=";")
    intakes, cleaned = run(mini, tables={"orders": {"decimal": ","}})
    assert amounts(intakes)[0] == 1234.5 and amounts(intakes)[2] == 80.0
    q = cleaned.quarantine
    assert q[q["table"] == "orders"]["row"].tolist() == [2]


def test_a_decimal_setting_other_than_point_or_comma_is_refused(mini: Path):
    with pytest.raises(CaseFileError) as exc:
        mini_case(mini, tables={"orders": {"decimal": ";"}})
    assert "decimal" in str(exc.value)


# --------------------------------------------------------------------------- currencies
@pytest.mark.parametrize(
    "written, code",
    [
        (["¥1,234.50", "¥250", "￥80.00"], "CNY"),
        (["CNY 1234.5", "CNY 250", "80 CNY"], "CNY"),
        (["$1,234.50", "$250", "$80"], "USD"),
    ],
)
def test_currency_symbols_and_codes_are_stripped_and_recorded(mini: Path, written, code):
    orders(mini, [f'"{w}"' for w in written])
    intakes, cleaned = run(mini)
    assert amounts(intakes) == [1234.5, 250.0, 80.0]
    assert any(f"currency {code}" in n and "3 value(s)" in n for n in intakes["orders"].notes)
    assert cleaned.quarantine.empty


def test_a_column_mixing_currencies_is_refused(mini: Path):
    orders(mini, ['"¥1,234.50"', '"$250"', "80"])
    msg = error(mini)
    assert "column 'amount' mixes currencies" in msg and "CNY" in msg and "USD" in msg and "export row(s) 2" in msg


# --------------------------------------------------------------------------- words that are not amounts
@pytest.mark.parametrize("word", ["inf", "Infinity", "-inf", "NaN", "nan", "1e999"])
def test_infinity_and_nan_are_quarantined_as_unreadable(mini: Path, word: str):
    orders(mini, ["1000.00", word, "80.00"])
    intakes, cleaned = run(mini)
    issue = intakes["orders"].issues.iloc[0]
    assert (issue["row"], issue["column"], issue["value"]) == (2, "amount", word)
    q = cleaned.quarantine
    assert q[q["table"] == "orders"]["row"].tolist() == [2]
    assert q["reason"].iloc[0] == f"not a number in amount: {word!r}"
    assert cleaned.tables["orders"]["amount"].notna().all()


# --------------------------------------------------------------------------- a file cut short
AMOUNTS = [f"{100 + i}.50" for i in range(10)]


def test_a_last_row_with_fewer_fields_is_quarantined_as_truncated(mini: Path):
    path = orders(mini, AMOUNTS, end="")
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.rindex(",")], encoding="utf-8")  # the amount is gone: 5 of 6 fields
    intakes, cleaned = run(mini)
    assert any("looks truncated" in n and "5 of 6 fields" in n for n in intakes["orders"].notes)
    q = cleaned.quarantine
    assert q[q["table"] == "orders"]["row"].tolist() == [10]
    assert (q["rule"] == CUT_PROBLEM).all()
    assert len(cleaned.tables["orders"]) == 9
    log = cleaned.log
    assert ((log["table"] == "orders") & (log["rule"] == CUT_PROBLEM) & (log["rows"] == 1)).any()


def test_a_last_value_cut_short_is_quarantined_as_truncated(mini: Path):
    path = orders(mini, AMOUNTS, end="")
    path.write_bytes(path.read_bytes()[:-1])  # 109.50 -> 109.5
    intakes, cleaned = run(mini)
    assert any("looks truncated" in n and "'109.5'" in n for n in intakes["orders"].notes)
    q = cleaned.quarantine
    assert q[q["table"] == "orders"]["row"].tolist() == [10]


def test_a_whole_file_without_a_final_line_end_is_read_whole(mini: Path):
    orders(mini, AMOUNTS, end="")
    intakes, cleaned = run(mini)
    assert len(cleaned.tables["orders"]) == 10 and cleaned.quarantine.empty
    assert not any("truncated" in n for n in intakes["orders"].notes)


# --------------------------------------------------------------------------- duplicate headers
def test_two_columns_with_the_same_header_are_refused_naming_both(mini: Path):
    df = frame("orders")
    df.insert(len(df.columns), "amount_net", ["900.00", "200.00", "70.00"])
    text = df.to_csv(index=False).replace("amount_net", "amount")
    (mini / "orders.csv").write_text(text, encoding="utf-8")
    msg = error(mini)
    assert str(mini / "orders.csv") in msg and "'amount' 2 times (columns 6, 7" in msg


def test_a_duplicated_column_the_table_does_not_read_is_noted(mini: Path):
    df = frame("orders")
    df["memo"], df["memo2"] = "a", "b"
    (mini / "orders.csv").write_text(df.to_csv(index=False).replace("memo2", "memo"), encoding="utf-8")
    intakes, _ = run(mini)
    assert amounts(intakes) == [1000.0, 250.0, 80.0]
    assert any("'memo' appears 2 times" in n for n in intakes["orders"].notes)


# --------------------------------------------------------------------------- bytes that are not UTF-8
def test_an_invalid_byte_is_named_by_its_line_row_and_offset_in_the_file(mini: Path):
    lines = ["customer_id,name,phone,email,department,created_at"]
    lines += [f"C{i},客户{i},1380000{i:04d},c{i}@x.cn,销售一部,2025-01-02 09:00:00" for i in range(1, 6001)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    at = data.index("客户5000".encode()) + len("客户".encode())  # line 5001, export row 5000
    data = data[:at] + b"\xa8" + data[at + 1 :]
    (mini / "customers.csv").write_bytes(data)
    msg = error(mini)
    assert f"byte offset {at:,}" in msg and "line 5,001, export row 5,000" in msg and "0xa8" in msg
    assert "gb18030" not in msg.lower().replace("utf-8 or gb18030", "")


def test_a_file_cut_in_the_middle_of_a_character(mini: Path):
    data = frame("customers").to_csv(index=False).encode("utf-8")
    data = data.rstrip(b"\n") + "张".encode()[:2]
    (mini / "customers.csv").write_bytes(data)
    msg = error(mini)
    assert "ends in the middle of a character" in msg and f"byte offset {len(data) - 2:,}" in msg
    assert "line 4, export row 3" in msg


# --------------------------------------------------------------------------- time zones
def leads_with_times(folder: Path, created: list[str], contacted: list[str]) -> None:
    df = frame("leads")
    df["created_at"], df["first_contact_at"] = created, contacted
    df.to_csv(folder / "leads.csv", index=False, encoding="utf-8")


def test_times_written_with_a_zone_are_converted_to_the_case_time_zone(mini: Path):
    leads_with_times(
        mini,
        ["2025-01-05T02:00:00Z", "2025-01-06T02:00:00+00:00", "2025-01-07 10:00:00"],
        ["2025-01-05T12:00:00+08:00", "2025-01-06T02:00:00.000+0000", ""],
    )
    intakes, cleaned = run(mini)
    leads = intakes["leads"].table
    assert leads["created_at"].astype(str).tolist() == [
        "2025-01-05 10:00:00",
        "2025-01-06 10:00:00",
        "2025-01-07 10:00:00",
    ]
    assert leads["first_contact_at"].iloc[:2].astype(str).tolist() == ["2025-01-05 12:00:00", "2025-01-06 10:00:00"]
    f = intakes["leads"].formats
    assert (f["format"] == "YYYY-MM-DDThh:mm:ss ±zone → Asia/Shanghai").any()
    log = cleaned.log
    line = log[(log["table"] == "leads") & (log["rule"] == "date format") & (log["column"] == "created_at")]
    assert (
        line["detail"]
        .str.contains("converted from the time zone written to the case's (Asia/Shanghai)", regex=False)
        .any()
    )
    assert not log["detail"].str.contains("time zone dropped").any()


def test_the_case_time_zone_is_a_setting(mini: Path):
    leads_with_times(mini, ["2025-01-05T02:00:00Z", "2025-01-06 10:00:00", "2025-01-07 10:00:00"], ["", "", ""])
    intakes = load_tables(mini_case(mini).model_copy(update={"timezone": "Europe/Berlin"}))
    assert str(intakes["leads"].table["created_at"].iloc[0]) == "2025-01-05 03:00:00"
    assert str(intakes["leads"].table["created_at"].iloc[1]) == "2025-01-06 10:00:00"  # naive: local, as written


@pytest.mark.parametrize("zone", ["Mars/Olympus", "CST", "../etc/passwd", "Asia"])
def test_an_unknown_time_zone_is_refused(tmp_path: Path, zone: str):
    with pytest.raises(CaseFileError) as exc:
        parse_case({**CASE, "data": {"dir": "."}, "timezone": zone}, tmp_path / "case.yaml")
    assert "timezone" in str(exc.value) and "IANA" in str(exc.value)


# --------------------------------------------------------------------------- thresholds
@pytest.mark.parametrize(
    "written, key",
    [
        ("dwell_benchmark_days: {proposal: .nan}", "thresholds.dwell_benchmark_days.proposal"),
        ("churn: {min_visits_per_month: .inf}", "thresholds.churn.min_visits_per_month"),
        ("response_time_target_hours: .NaN", "thresholds.response_time_target_hours"),
        ("receipt_amount_tolerance: .Inf", "thresholds.receipt_amount_tolerance"),
        ("cpa_overrun_max: -.inf", "thresholds.cpa_overrun_max"),
    ],
)
def test_non_finite_thresholds_are_refused_naming_the_file_and_key(tmp_path: Path, written: str, key: str):
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump({**CASE, "data": {"dir": "."}}) + f"thresholds:\n  {written}\n", encoding="utf-8")
    with pytest.raises(CaseFileError) as exc:
        load_case(path)
    msg = str(exc.value)
    assert str(path) in msg and f"key '{key}'" in msg and "finite" in msg
