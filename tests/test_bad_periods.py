"""No rows in the analysis period: an export cut short, dates moved out, Excel serial numbers as dates, or
cleaning that sets every row aside. ``crmnb validate`` says so naming the table, its date column and the
period, and ``crmnb run`` stops at the first step that needs the rows with the same message."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from crm_mini import AS_OF, CASE, frame, mini_case, write_mini

from crmnb.cli import main
from crmnb.errors import DataError, StepFailed
from crmnb.intake.cleaning import clean
from crmnb.intake.load import load_tables
from crmnb.intake.period import check_kept_in_period
from crmnb.intake.schema import TABLES

ROOT = Path(__file__).resolve().parents[1]
PERIOD = "2025-01-01 – 2025-06-30"


def _orders(folder: Path, dates: list[str] | None = None, amounts: list[str] | None = None) -> None:
    df = frame("orders")
    if dates is not None:
        df["order_date"] = dates
    if amounts is not None:
        df["amount"] = amounts
    df.to_csv(folder / "orders.csv", index=False, encoding="utf-8")


def _case_file(folder: Path) -> Path:
    path = folder / "case.yaml"
    path.write_text(yaml.safe_dump({**CASE, "data": {"dir": str(folder)}}, allow_unicode=True), encoding="utf-8")
    return path


def _validate(folder: Path, capsys) -> tuple[int, str]:
    code = main(["validate", str(_case_file(folder))])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    "dates,found",
    [
        # the export ends before the period starts (cut short)
        (["2024-11-01 10:00:00", "2024-12-01 10:00:00", "2024-12-31 23:59:59"], "runs from 2024-11-01 to 2024-12-31"),
        # the dates moved a year on
        (["2026-02-01", "2026-03-01", "2026-03-02"], "runs from 2026-02-01 to 2026-03-02"),
        # Excel serial numbers in a CSV's date column: no readable date at all
        (["45689", "45717", "45718"], "3 of 3 rows have no readable order_date, e.g. '45689'"),
    ],
)
def test_no_order_in_the_period_is_said_by_validate_and_by_intake(tmp_path, capsys, dates, found):
    folder = write_mini(tmp_path / "exports")
    _orders(folder, dates)
    code, out = _validate(folder, capsys)
    assert code == 1
    line = next(x for x in out.splitlines() if x.strip().startswith("orders"))
    assert "ERROR" in line and "orders.csv: table 'orders'" in line and "order_date" in line and PERIOD in line, line
    assert found in line
    assert f"{len(TABLES) - 1} of {len(TABLES)} tables usable; 1 with errors" in out
    with pytest.raises(
        DataError, match=r"table 'orders': none of its 3 rows is dated \(order_date\) in the analysis period"
    ):
        load_tables(mini_case(folder))


def test_one_order_in_the_period_is_enough(tmp_path, capsys):
    folder = write_mini(tmp_path / "exports")
    _orders(folder, ["2024-12-01", "2025-06-30 23:00:00", "2026-01-01"])
    assert load_tables(mini_case(folder))["orders"].table.shape[0] == 3


def test_cleaning_that_sets_every_order_aside_is_said_by_validate(tmp_path, capsys):
    folder = write_mini(tmp_path / "exports")
    _orders(folder, amounts=["-1000", "-250", "-80"])
    code, out = _validate(folder, capsys)
    assert code == 1
    assert "the run would stop in step 4: table 'orders': none of its" in out or "no row is kept" in out, out
    assert "orders" in out.splitlines()[-1] and PERIOD in out.splitlines()[-1]
    intakes = load_tables(mini_case(folder))
    issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
    cleaned = clean({k: v.table for k, v in intakes.items()}, issues, as_of=AS_OF)
    with pytest.raises(DataError, match=r"table 'orders': no row is kept in the analysis period .*quarantined 3"):
        check_kept_in_period(cleaned.tables, cleaned.quarantine, mini_case(folder))


@pytest.fixture(scope="module")
def demo_without_orders_in_period(tmp_path_factory) -> Path:
    """A copy of the demo data whose orders are dated six years earlier, and its case file."""
    from crmnb.demo.generator import generate

    tmp = tmp_path_factory.mktemp("no_orders")
    generate(tmp / "data", scale=0.05, seed=3)
    path = tmp / "data" / "orders.csv"
    df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    df["order_date"] = (pd.to_datetime(df["order_date"]) - pd.DateOffset(years=6)).dt.strftime("%Y-%m-%d %H:%M:%S")
    df.to_csv(path, index=False, encoding="utf-8-sig")
    raw = yaml.safe_load((ROOT / "parameters" / "repeat_purchase_optimisation.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(tmp / "data")}
    (tmp / "parameters").mkdir()
    case = tmp / "parameters" / "case.yaml"
    case.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return case


@pytest.mark.e2e
def test_a_run_without_orders_in_the_period_stops_in_step_2_saying_so(demo_without_orders_in_period, capsys):
    from crmnb.run.steps import run_case

    case = demo_without_orders_in_period
    assert main(["validate", str(case)]) == 1
    said = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("orders"))
    message = said.split("ERROR", 1)[1].strip()
    assert message.startswith(str(case.parent.parent / "data" / "orders.csv") + ": table 'orders': none of its")
    assert "order_date" in message and "2025-10-01 – 2025-12-31" in message
    with pytest.raises(StepFailed) as err:
        run_case(case, case.parent.parent / "out", progress=None, index=False)
    text = str(err.value)
    assert "02_data_collection" in text and "DataError" in text and message in text, text
    assert "got nan" not in text and "ValueError" not in text


@pytest.mark.parametrize("amount,stops", [("20", False), ("-20", True)])
def test_the_period_check_of_written_tables_asks_their_files_and_says_the_same(tmp_path, amount, stops):
    """Once the cleaned tables are written, whether a row is kept in the period is asked of each file; a table
    without one is judged and named as before."""
    from crmnb.handoffs import Workspace, save_cleaned
    from crmnb.intake.clean_tables import intake_files

    folder = write_mini(tmp_path / "exports")
    # the one order in the period (its first second) is kept, or quarantined for its negative amount
    _orders(folder, ["2024-11-01 10:00:00", "2025-01-01 00:00:00", "2024-12-31 23:59:59"], ["10", amount, "30"])
    intakes = load_tables(mini_case(folder))
    ws = Workspace(tmp_path / "out", "case")
    for name, got in intakes.items():
        ws.write(f"intake/{name}", got.table)
    issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
    cleaned = clean(intake_files(ws), issues, as_of=AS_OF)
    save_cleaned(ws, cleaned)
    assert cleaned.tables.file("orders") is not None
    from crmnb.intake.period import _some_kept_in_period

    assert _some_kept_in_period(cleaned.tables, "orders", mini_case(folder)) is not stops  # asked of the file
    if not stops:
        check_kept_in_period(cleaned.tables, cleaned.quarantine, mini_case(folder))
        return
    with pytest.raises(
        DataError,
        match=r"table 'orders': none of its 2 kept rows is dated \(order_date\).*"
        r"runs from 2024-11-01 to 2024-12-31",
    ):
        check_kept_in_period(cleaned.tables, cleaned.quarantine, mini_case(folder))
