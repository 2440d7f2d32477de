"""Tests of the demo data generator: files, determinism, scale, planted facts."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.demo.generator import generate
from crmnb.intake.schema import DEFAULT_FILES, DEPARTMENTS, LOSS_REASONS, TABLES, UTM_COLUMNS

SALES, CONTROL = DEPARTMENTS
EXPORT_END = pd.Timestamp("2026-03-31 23:59:59")
INTERVENTION = pd.Timestamp("2025-10-01")
ISO = "%Y-%m-%d %H:%M:%S"


def _hashes(folder: Path) -> dict[str, str]:
    """Return the SHA-256 of every file in a folder: of its bytes, and of a workbook's sheets and cells (its XML
    is written differently by openpyxl with lxml and without)."""
    from openpyxl import load_workbook

    def content(p: Path) -> bytes:
        if p.suffix != ".xlsx":
            return p.read_bytes()
        wb = load_workbook(p, read_only=True)
        return repr([(ws.title, list(ws.iter_rows(values_only=True))) for ws in wb.worksheets]).encode("utf-8")

    return {p.name: hashlib.sha256(content(p)).hexdigest() for p in sorted(folder.iterdir())}


def _csv(folder: Path, table: str) -> pd.DataFrame:
    """Read one CSV of the demo as strings (empty cells -> NaN)."""
    return pd.read_csv(
        folder / DEFAULT_FILES[table], dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
    )


def _dt(s: pd.Series) -> pd.Series:
    """Parse ISO datetimes."""
    return pd.to_datetime(s, format=ISO)


def _dt_mixed(s: pd.Series) -> pd.Series:
    """Parse ISO, '2025/3/4 10:05' and '2025年3月4日 10:05' datetimes."""
    out = pd.to_datetime(s, format=ISO, errors="coerce")
    for fmt in ("%Y/%m/%d %H:%M", "%Y年%m月%d日 %H:%M"):
        out = out.fillna(pd.to_datetime(s, format=fmt, errors="coerce"))
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo at scale 0.2."""
    out = tmp_path_factory.mktemp("demo_02")
    messages: list[str] = []
    generate(out, scale=0.2, progress=messages.append)
    assert len(messages) >= len(DEFAULT_FILES)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo at scale 0.1."""
    out = tmp_path_factory.mktemp("demo_01")
    generate(out, scale=0.1)
    return out


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo at scale 1."""
    out = tmp_path_factory.mktemp("demo_1")
    generate(out, scale=1.0)
    return out


def _planted(folder: Path) -> dict:
    return json.loads((folder / "planted.json").read_text(encoding="utf-8"))


# --- files and determinism ---------------------------------------------------


def test_same_seed_gives_identical_files(small: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", scale=0.2)
    assert _hashes(tmp_path / "again") == _hashes(small)


def test_other_seed_differs(small: Path, tmp_path: Path) -> None:
    generate(tmp_path / "other", scale=0.2, seed=7)
    a, b = _hashes(small), _hashes(tmp_path / "other")
    assert a.keys() == b.keys()
    assert all(a[name] != b[name] for name in ("customers.csv", "leads.csv", "orders.csv", "activities.csv"))


def test_every_file_has_the_schema_columns(small: Path) -> None:
    for table, name in DEFAULT_FILES.items():
        path = small / name
        assert path.exists(), name
        # the UTM columns are parsed from the landing URLs at intake: the export leaves them out
        expected = [c for c in TABLES[table].columns if c not in UTM_COLUMNS]
        if name.endswith(".xlsx"):
            df = pd.read_excel(path, sheet_name="campaigns")
            assert list(df.columns) == expected
            assert 15 <= len(df) <= 25
            assert set(df["channel"]) == {"search", "wechat", "trade_show", "referral", "email", "content"}
            assert pd.to_datetime(df["start_date"], format="%Y-%m-%d").notna().all()
        else:
            with open(path, encoding="utf-8-sig", newline="") as f:
                assert next(csv.reader(f)) == expected
            assert list(_csv(small, table).columns) == expected
    assert (small / "customers.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    assert (small / "leads.csv").read_bytes()[:3] != b"\xef\xbb\xbf"
    assert (small / "planted.json").exists()


def test_rows_grow_with_scale(small: Path, tiny: Path) -> None:
    a, b = _planted(tiny)["rows"], _planted(small)["rows"]
    for table in DEFAULT_FILES:
        if table == "campaigns":
            continue
        assert 1.6 <= b[table] / a[table] <= 2.4, table
        assert len(_csv(small, table)) == b[table]


def test_references_and_keys(small: Path) -> None:
    cu, le, op = _csv(small, "customers"), _csv(small, "leads"), _csv(small, "opportunities")
    for table in (
        "customers",
        "leads",
        "opportunities",
        "activities",
        "orders",
        "tickets",
        "touches",
        "visits",
        "receipts",
    ):
        df = _csv(small, table)
        key = TABLES[table].key
        assert df[key].is_unique, table
        if "customer_id" in df.columns:
            assert df["customer_id"].dropna().isin(set(cu["customer_id"])).all(), table
    assert op["customer_id"].notna().all()
    assert op["lead_id"].isin(set(le["lead_id"])).all()
    assert le.loc[le["status"] == "converted", "customer_id"].notna().all()
    assert set(op["loss_reason"].dropna()) <= set(LOSS_REASONS)
    assert cu["phone"].dropna().str.fullmatch(r"(\+86 )?1[358]\d-?\d{4}-?\d{4}").all()


def test_nothing_after_the_export_date(small: Path) -> None:
    for table in DEFAULT_FILES:
        if table == "campaigns":
            continue
        df = _csv(small, table)
        for col in TABLES[table].dates:
            parse = _dt_mixed if table == "activities" else _dt
            values = parse(df[col].dropna())
            assert values.notna().all(), (table, col)
            assert values.max() <= EXPORT_END, (table, col)
    camp = pd.read_excel(small / "campaigns.xlsx", sheet_name="campaigns")
    assert pd.to_datetime(camp["end_date"]).max() <= EXPORT_END


# --- planted effects -----------------------------------------------------------


def test_response_time_halves_for_sales_only(small: Path) -> None:
    le = _csv(small, "leads")
    created, first = _dt(le["created_at"]), _dt(le["first_contact_at"])
    hours = (first - created).dt.total_seconds() / 3600
    after = created >= INTERVENTION
    for dept, lo, hi in ((SALES, 0.0, 0.65), (CONTROL, 0.8, 1.25)):
        m = le["department"] == dept
        ratio = hours[m & after].median() / hours[m & ~after].median()
        assert lo < ratio < hi, (dept, ratio)
    never = first.isna() & (created < EXPORT_END - pd.Timedelta(days=30))
    assert 0.03 < never.mean() < 0.09
    assert (le.loc[never, "status"] == "lost").all()


def test_receipt_mismatches_are_exactly_the_planted_ones(small: Path) -> None:
    planted = _planted(small)
    op, rc = _csv(small, "opportunities"), _csv(small, "receipts")
    won = op[op["status"] == "won"]
    m = rc.merge(won[["opportunity_id", "amount"]], on="opportunity_id", suffixes=("", "_crm"))
    assert len(m) == len(rc)
    crm, paid = m["amount_crm"].astype(float), m["amount"].astype(float)
    diff = m[(crm - paid).abs() > 0.005]
    key = planted["receipt_mismatches"]
    assert len(key) >= 3
    assert set(diff["opportunity_id"]) == {x["opportunity_id"] for x in key}
    rel = ((diff["amount"].astype(float) - diff["amount_crm"].astype(float)) / diff["amount_crm"].astype(float)).abs()
    assert rel.between(0.005, 0.02).all()
    for x in key:
        assert 0.005 <= abs(x["receipt_amount"] - x["crm_amount"]) / x["crm_amount"] <= 0.02
    missing = set(won["opportunity_id"]) - set(rc["opportunity_id"])
    assert missing == set(planted["won_without_receipt"]) and len(missing) >= 1


def test_heavy_customer_and_duplicates(small: Path) -> None:
    planted = _planted(small)
    ac, cu = _csv(small, "activities"), _csv(small, "customers").set_index("customer_id")
    heavy = planted["heavy_customer"]["customer_id"]
    assert (ac["customer_id"] == heavy).sum() >= 100
    assert ac["customer_id"].value_counts().iloc[0] == (ac["customer_id"] == heavy).sum()
    dups = planted["duplicates"]
    assert len(dups) >= 3
    digits = cu["phone"].fillna("").str.replace(r"\D", "", regex=True).str[-11:]
    for d in dups:
        a, b = cu.loc[d["original"]], cu.loc[d["duplicate"]]
        assert digits[d["original"]] == digits[d["duplicate"]] and len(digits[d["original"]]) == 11
        assert a["email"].lower() == b["email"].lower() and a["email"] != b["email"]
        assert (a["name"], a["company"]) != (b["name"], b["company"])
    # no accidental duplicates: each shared phone is a planted pair
    shared = digits[digits != ""].value_counts()
    assert (shared > 1).sum() == len(dups)
    refs = pd.concat([_csv(small, t)["customer_id"] for t in ("orders", "tickets", "visits")])
    assert refs.isin({d["duplicate"] for d in dups}).any()
    assert cu["phone"].isna().any() and cu["email"].isna().any()


def test_mixed_date_formats_in_activities(small: Path) -> None:
    ac = _csv(small, "activities")
    values = pd.concat([ac["due_at"], ac["completed_at"].dropna()])
    iso = values.str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    slash = values.str.fullmatch(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d\d")
    chinese = values.str.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 \d{1,2}:\d\d")
    assert (iso | slash | chinese).all()
    assert 0.06 < slash.mean() < 0.14 and 0.02 < chinese.mean() < 0.08
    done = ac["completed_at"].notna().mean()
    assert 0.75 < done < 0.95


def test_funnel_and_marketing_consistency(small: Path) -> None:
    le, op, sh, tc = (_csv(small, t) for t in ("leads", "opportunities", "stage_history", "touches"))
    t = tc.merge(le[["lead_id", "created_at", "channel", "campaign_id"]], on="lead_id", suffixes=("", "_lead"))
    assert (_dt(t["touched_at"]) < _dt(t["created_at"])).all()
    last = t.assign(ts=_dt(t["touched_at"])).sort_values(["lead_id", "ts"]).groupby("lead_id").tail(1)
    assert (last["campaign_id"] == last["campaign_id_lead"]).all() and (last["channel"] == last["channel_lead"]).all()
    assert tc.groupby("lead_id").size().between(1, 4).all()
    final = sh.groupby("opportunity_id").tail(1).merge(op, on="opportunity_id", suffixes=("", "_opp"))
    assert final["exited_at"].isna().all()
    assert (final["stage"] == final["stage_opp"]).all()
    closed = final[final["status"] != "open"]
    assert (closed["entered_at"] == closed["closed_at"]).all()
    assert (op["status"] == "open").any()
    assert op["note"].str.startswith(("=", "+", "-", "@")).sum() >= 4
    assert op["note"].str.contains("<script>", regex=False).any()


def test_small_scale_still_plants_every_fault(tiny: Path) -> None:
    p = _planted(tiny)
    assert len(p["duplicates"]) >= 3
    assert len(p["receipt_mismatches"]) >= 3
    assert len(p["won_without_receipt"]) >= 1
    assert p["heavy_customer"]["activities"] >= 100
    assert p["mixed_date_formats"]["slash_rows"] > 0 and p["mixed_date_formats"]["chinese_rows"] > 0
    assert len(p["tricky_notes"]) >= 4
    assert 2 <= len(p["over_benchmark_campaigns"]) <= 3


# --- calibration at scale 1 --------------------------------------------------


def test_calibrated_rates_at_scale_one(full: Path) -> None:
    le, op, od, cu = (_csv(full, t) for t in ("leads", "opportunities", "orders", "customers"))
    assert 3_000 <= od["customer_id"].nunique() <= 5_000
    assert 30_000 <= len(_csv(full, "activities")) <= 65_000
    won_leads = set(op.loc[op["status"] == "won", "lead_id"])
    le["conv"] = (le["status"] == "converted") & le["lead_id"].isin(won_leads)
    created = _dt(le["created_at"])
    sales = le["department"] == SALES
    q3 = (created >= "2025-07-01") & (created < "2025-10-01")
    q4 = (created >= "2025-10-01") & (created < "2026-01-01")
    assert 1_400 <= (sales & q3).sum() <= 1_800
    assert 0.135 <= le.loc[sales & q3, "conv"].mean() <= 0.165
    assert 0.185 <= le.loc[sales & q4, "conv"].mean() <= 0.215
    for q in (q3, q4):
        assert 0.13 <= le.loc[~sales & q, "conv"].mean() <= 0.16

    od = od.merge(cu[["customer_id", "department"]], on="customer_id", suffixes=("_order", ""))
    day = _dt(od["order_date"])
    for lo, hi, target in (("2025-07-01", "2025-10-01", 0.30), ("2025-10-01", "2026-01-01", 0.35)):
        m = (od["department"] == CONTROL) & (day >= lo) & (day < hi)
        n = od[m].groupby("customer_id").size()
        rate = (n >= 2).sum() / (n >= 1).sum()
        assert target - 0.025 <= rate <= target + 0.025, (lo, rate)

    spend = od.assign(a=od["amount"].astype(float)).groupby("customer_id")["a"].sum()
    assert 0.01 <= (spend >= 300_000).mean() <= 0.08
    assert 0.10 <= ((spend >= 100_000) & (spend < 300_000)).mean() <= 0.20


TINY_DIGESTS = {
    "activities.csv": "8c0cac49b6f00dff754d4ce4d01707b7faaea9534075a4f635d920ebacb00d03",
    "campaigns.xlsx": "6514596257bda3293be02c9149f25fe5b0eeab513969aeb2f1fcb1d6f3be2747",
    "customers.csv": "6d8f14f4dbe4c5af89668f29e5924eaae4843de428e0b73f441e5e8c7943e509",
    "email_events.csv": "6b8a9f59b5076c2690b7e01646809b7816b46abc27484fa716b52452be0160e1",
    "leads.csv": "9c18dced4444da98a148312b8ce62a77d62458b6597e84d29bb6036f262b22f6",
    "opportunities.csv": "1b36cf85e79ecd0e516fbd02c93b78ac51dc2473955693705d65e09775322286",
    "orders.csv": "aed4adc3d109bf3897aa0550ca6035dd9cfd79bc3ff42a6db385907d4162d2da",
    "planted.json": "89218a21176a076de77df9e4444306d857366e68338cb350147e7d3c85523eaa",
    "receipts.csv": "0757e48df466d566d0ceb6513e543b225266dda375e3f84e5592f9d232368435",
    "stage_history.csv": "8f30db15434f38eb39693006b7ddf34e34a636a8e9de3c3943537a98a2cb09e9",
    "tickets.csv": "5317664fb9f52f1c7d077f4e1a43c1650037b575249cbcd166aaf2b2efca59c8",
    "touches.csv": "6eb2482de4b0c9c100b886fe388e3cf78e818dde2694f360426cc198895f2ea4",
    "visits.csv": "1d697137b803783276069cb6341ce12a8d3a6e6b60d9e53bb868bddde8d8ece8",
}
"""SHA-256 of every file at scale 0.05, seed 3 (of a workbook, its cells): the demo's output is part of what users see."""


def test_output_is_pinned(tmp_path: Path) -> None:
    """The same scale and seed give exactly the recorded files (draws in the same order)."""
    generate(tmp_path, scale=0.05, seed=3)
    assert _hashes(tmp_path) == TINY_DIGESTS


def test_writer_takes_the_columns_from_the_schema(tmp_path: Path) -> None:
    """Every table builder yields exactly the schema's columns; the writer refuses any other frame."""
    from crmnb.demo.tables import BUILDERS
    from crmnb.demo.text import Frame, col_int
    from crmnb.demo.world import build
    from crmnb.demo.write import write_frame

    world = build(0.05, 3)
    assert list(BUILDERS) == list(DEFAULT_FILES)
    for table, builder in BUILDERS.items():
        exported = [c for c in TABLES[table].columns if c not in UTM_COLUMNS]  # UTM: parsed at intake
        assert sorted(builder(world).columns) == sorted(exported), table
    with pytest.raises(ValueError, match="visits"):
        write_frame(tmp_path, "visits", Frame(0, {"visit_id": col_int(np.zeros(0, np.int64))}))
