"""What an executed notebook records of its run: the output folder it ends up in (not the run's own
folder, gone once its files are moved), and no secret: a database URL's password is a ``${VAR}``
reference whose value only the case's kernel is given."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import nbformat
import openpyxl
import pandas as pd
import pytest
import yaml

from crmnb.errors import StepFailed
from crmnb.intake.read import resolve_url
from crmnb.run.records import SECRET_ENV, recorded_settings
from crmnb.run.staging import PREFIX

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "hunter2-Secret"


def test_recorded_settings_refer_to_secrets_they_do_not_hold(monkeypatch):
    settings = {
        "case_id": "c",
        "data": {
            "sql_url": "postgresql://analyst:p@ss/w0rd@db/crm?sslmode=require",
            "tables": {
                "orders": {"sql": {"url": "mysql+pymysql://bi@db/crm?password=hunter2&charset=utf8mb4"}},
                "leads": {"sql": {"url": "mysql://bi:${DB_PASSWORD}@db/crm"}},
            },
        },
        "notes": ["see https://wiki.example.com/crm"],
    }
    recorded, env = recorded_settings(settings)
    text = json.dumps(recorded)
    assert "p@ss/w0rd" not in text and "hunter2" not in text
    assert sorted(env.values()) == ["hunter2", "p@ss/w0rd"] and all(k.startswith(SECRET_ENV) for k in env)
    assert recorded["data"]["tables"]["leads"]["sql"]["url"] == "mysql://bi:${DB_PASSWORD}@db/crm"  # unexpanded
    assert recorded["notes"] == settings["notes"] and recorded["case_id"] == "c"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_url(recorded["data"]["sql_url"]) == settings["data"]["sql_url"]
    orders = recorded["data"]["tables"]["orders"]["sql"]["url"]
    assert resolve_url(orders) == settings["data"]["tables"]["orders"]["sql"]["url"]


def _case(tmp: Path, data: Path) -> Path:
    """The lead-conversion case reading the demo data, its receipts from a SQLite database whose URL holds a
    password (SQLite ignores it: the run shows the kernel is given it)."""
    raw = yaml.safe_load((ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    db = tmp / "finance.db"
    receipts = pd.read_csv(data / "receipts.csv", dtype=str, encoding="utf-8-sig", keep_default_na=False)
    with sqlite3.connect(db) as con:
        receipts.to_sql("receipts", con, index=False)
    url = f"sqlite:///{db}?password={PASSWORD}"
    raw["data"] = {"dir": str(data), "tables": {"receipts": {"sql": {"url": url, "table": "receipts"}}}}
    folder = tmp / "parameters"
    folder.mkdir(exist_ok=True)
    path = folder / "case.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run that ends well, then one that fails in step 2 (the orders moved out of the period)."""
    from crmnb.demo.generator import generate
    from crmnb.run.steps import run_case

    tmp = tmp_path_factory.mktemp("recorded")
    generate(tmp / "data", scale=0.05, seed=3)
    case, out = _case(tmp, tmp / "data"), tmp / "out"
    good = run_case(case, out, progress=None)
    shutil.copytree(out, tmp / "good")  # as the good run left it: the failed run replaces its notebooks
    path = tmp / "data" / "orders.csv"
    df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    df["order_date"] = "2001-01-01"
    df.to_csv(path, index=False, encoding="utf-8-sig")
    with pytest.raises(StepFailed) as failed:
        run_case(case, out, progress=None)
    return out, good, failed.value, tmp / "good"


def _texts(root: Path):
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".ipynb", ".json", ".html")):
        yield path, path.read_text(encoding="utf-8", errors="replace")


def test_notebooks_record_the_output_folder_they_end_up_in(runs):
    out, good, failed, kept = runs
    books = sorted((kept / "lead_conversion_uplift" / "notebooks").glob("*.ipynb"))
    assert len(books) == 7
    for book in books:
        nb = nbformat.read(book, as_version=4)
        params = nb.metadata["papermill"]["parameters"]
        assert params["output_root"] == str(out), book.name
        assert nb.metadata["papermill"]["output_path"] == str(out / book.relative_to(kept)), book.name
    failed_book = out / "lead_conversion_uplift" / "notebooks" / "02_data_collection.ipynb"
    assert str(failed_book) in str(failed)
    assert nbformat.read(failed_book, as_version=4).metadata["papermill"]["parameters"]["output_root"] == str(out)
    for root in (kept, out):
        for path, text in _texts(root):
            assert PREFIX + "lead_conversion_uplift" not in text, path.relative_to(root)


def test_no_password_is_recorded_anywhere(runs):
    out, good, _, kept = runs
    assert good.status == "ok"
    checked = 0
    for root in (kept, out):
        for path, text in _texts(root):
            checked += 1
            assert PASSWORD not in text, path.relative_to(root)
    for book in kept.rglob("*.xlsx"):
        cells = [v for ws in openpyxl.load_workbook(book) for row in ws.iter_rows(values_only=True) for v in row]
        assert len(cells) > 100 and not any(PASSWORD in str(v) for v in cells)
    assert checked > 8
    nb = nbformat.read(kept / "lead_conversion_uplift" / "notebooks" / "02_data_collection.ipynb", as_version=4)
    url = nb.metadata["papermill"]["parameters"]["case"]["data"]["tables"]["receipts"]["sql"]["url"]
    assert url.endswith("?password=${" + SECRET_ENV + "1}")
