"""PostgreSQL, for real: the demo data loaded into a server gives the same tables and figures as the CSV files.

Needs a server: ``CRMNB_TEST_PG_URL`` (a SQLAlchemy URL of a throwaway database,
e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/crmnb_test``). ``.ci/run``
starts one on 127.0.0.1 and sets it; without it these tests are skipped.
Each run works in a schema of its own and drops it at the end.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml
from raw_figures import lead_conversion
from sheets import read_sheet

from crmnb.analysis import metrics
from crmnb.demo.generator import generate
from crmnb.intake.cleaning import clean
from crmnb.intake.load import load_tables
from crmnb.intake.read import read_export, read_sql_text, readonly_engine
from crmnb.intake.schema import DEFAULT_FILES, TABLES
from crmnb.params import parse_case

PG_URL = os.environ.get("CRMNB_TEST_PG_URL", "")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="CRMNB_TEST_PG_URL not set: PostgreSQL test did not run; .ci/run starts a server"
)

CASE = {
    "case_id": "pg",
    "title": "From PostgreSQL",
    "department": "销售一部",
    "owner": "tests",
    "period": {"start": "2025-07-01", "end": "2025-12-31"},
    "goal": {"metric": "lead_conversion_rate", "baseline": 0.15, "target": 0.2, "deadline": "2026-06-30"},
}


def _case(folder: Path, **data):
    return parse_case({**CASE, "data": {"dir": str(folder), **data}}, folder / "case.yaml")


def _from_schema(schema: str) -> dict:
    # a database returns rows in no set order: number them as the export does
    return {
        "sql_url": PG_URL,
        "tables": {t: {"sql": {"table": f"{schema}.{t}", "order_by": "export_row"}} for t in TABLES},
    }


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    """The demo exports, their CSV intake, and two schemas holding them: as text, and typed."""
    import sqlalchemy as sa

    demo = tmp_path_factory.mktemp("pg_demo")
    generate(demo, scale=0.3, seed=7)
    reference = load_tables(_case(demo))
    # what the CRM's database holds: the typed values before crmnb keys and masks the contacts
    plain = load_tables(parse_case({**CASE, "mask_pii": False, "data": {"dir": str(demo)}}, demo / "case.yaml"))
    tag = uuid.uuid4().hex[:8]
    text_schema, typed_schema = f"crmnb_text_{tag}", f"crmnb_typed_{tag}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {text_schema}"))
        conn.execute(sa.text(f"create schema {typed_schema}"))
    try:
        for name, file in DEFAULT_FILES.items():
            # as exported: every cell text, exactly as in the file
            raw = read_export(demo / file, name)
            raw = raw.astype(object).where(raw.notna(), None)
            raw.insert(0, "export_row", range(1, len(raw) + 1))
            raw.to_sql(
                name,
                engine,
                schema=text_schema,
                index=False,
                dtype={c: sa.Text() for c in raw.columns if c != "export_row"},
            )
            # as a CRM database holds it: timestamps, numbers and text
            typed = plain[name].table.rename(columns={"_row": "export_row"})
            typed.to_sql(name, engine, schema=typed_schema, index=False)
        yield demo, text_schema, typed_schema, reference
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"drop schema if exists {text_schema} cascade"))
            conn.execute(sa.text(f"drop schema if exists {typed_schema} cascade"))
        engine.dispose()


def test_text_tables_from_postgres_equal_the_csv_intake(pg):
    demo, text_schema, _, reference = pg
    got = load_tables(_case(demo, **_from_schema(text_schema)))
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name].table, reference[name].table, obj=name)
        pd.testing.assert_frame_equal(got[name].issues, reference[name].issues, obj=f"{name} issues")
        pd.testing.assert_frame_equal(got[name].formats, reference[name].formats, obj=f"{name} formats")


def test_typed_tables_from_postgres_equal_the_csv_intake_and_give_the_same_figures(pg):
    demo, _, typed_schema, reference = pg
    got = load_tables(_case(demo, **_from_schema(typed_schema)))
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name].table, reference[name].table, obj=name)

    def headline(intakes):
        issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
        cleaned = clean({k: v.table for k, v in intakes.items()}, issues, as_of=pd.Timestamp("2026-03-31"))
        return metrics.headline(cleaned.tables, "2025-07-01", "2025-12-31", "销售一部", language="en")

    a, b = headline(reference), headline(got)
    pd.testing.assert_frame_equal(a, b)
    assert a["value"].notna().any()


def test_postgres_connection_is_read_only(pg):
    _, text_schema, _, _ = pg
    engine = readonly_engine(PG_URL)
    with engine.connect() as conn, pytest.raises(Exception, match="read-only transaction"):
        conn.exec_driver_sql(f"create table {text_schema}.intruder (x int)")
    engine.dispose()
    q = read_sql_text(PG_URL, query=f"select count(*) as n from {text_schema}.leads")
    assert int(q.loc[0, "n"]) > 0


@pytest.mark.e2e
def test_a_case_runs_from_postgres(pg, tmp_path: Path):
    from crmnb.run.steps import run_case

    demo, _, typed_schema, _ = pg
    raw = yaml.safe_load((ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(demo), **_from_schema(typed_schema)}
    raw["case_id"] = "from_postgres"
    (tmp_path / "parameters").mkdir()
    case_file = tmp_path / "parameters" / "from_postgres.yaml"
    case_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    res = run_case(case_file, tmp_path / "outputs", progress=None)
    assert res.report.is_file()
    a0, a1 = res.case.windows["after"]
    expected, _ = lead_conversion(demo, res.case.department, a0, a1, res.case.thresholds.conversion_window_days)
    table2 = read_sheet(res.workbook, "Table 2 KPI before-after").set_index("metric")
    assert table2.loc["lead_conversion_rate", "after"] == pytest.approx(expected, abs=1e-12)
