"""Nothing leaked: personal numbers in notes masked, long notes cut, no formula cells, no password recorded."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from openpyxl import Workbook

from crmnb.analysis.cases import case_timeline
from crmnb.demo.generator import generate
from crmnb.intake.parse import intake
from crmnb.intake.sources import redact
from crmnb.present.masking import SHOWN_CHARACTERS, mask_frame, mask_text, show_text
from crmnb.present.workbook import write_sheet
from crmnb.run import kernel
from crmnb.run.steps import run_case

ROOT = Path(__file__).resolve().parents[1]

RESIDENT_ID = "11010119900307851X"
CARD = "6222 0212 3456 7890 123"
PHONE = "+86 139-8765-4321"
EMAIL = "wangxiaoming77@example.org"
NOTE = f"客户身份证{RESIDENT_ID}, 卡号{CARD}, 电话{PHONE}, 邮箱{EMAIL}, 另一身份证 330106198512120017 卡 6217-0000-1111-2222"
SECRETS = (
    RESIDENT_ID,
    RESIDENT_ID[:-1],
    "330106198512120017",
    CARD,
    CARD.replace(" ", ""),
    "6217000011112222",
    "6217-0000-1111-2222",
    "139-8765-4321",
    "13987654321",
    EMAIL,
    "wangxiaoming77",
)


# --------------------------------------------------------------------------- masking free text
@pytest.mark.parametrize(
    "raw,masked",
    [
        ("身份证11010119900307851X。", "身份证110***********851X。"),
        ("ID 110101199003078515 ok", "ID 110***********8515 ok"),
        ("卡号 6222021234567890123", "卡号 ***************0123"),
        ("卡号 6222 0212 3456 7890", "卡号 ************7890"),
        ("卡号 6222-0212-3456-789", "卡号 ***********6789"),
        ("电话13812345678", "电话138****5678"),
        ("电话 +86 138-1234-5678,", "电话 138****5678,"),
        ("电话 138 1234 5678", "电话 138****5678"),
        ("8613812345678", "138****5678"),
        ("电话 138 1234 5678 2次", "电话 138****5678 2次"),  # a number after it is not part of the phone
        ("13812345678 13987654321", "138****5678 139****4321"),
        ("1" * 40, "*" * 36 + "1111"),  # a longer run than any card: hidden but its end
        ("发至 zhangwei88@example.com 和 Li.Na@corp.cn", "发至 z***@example.com 和 L***@corp.cn"),
        ("QQ邮箱13812345678@qq.com", "QQ邮箱1***@qq.com"),
    ],
)
def test_personal_numbers_and_addresses_in_text_are_masked(raw, masked):
    assert mask_text(raw) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2025-03-04 10:00 回访, 报价 128000 元, 订单 ORD000123",
        "座机 0571-88886666, 数量 12",
        "12345678901",  # eleven digits that are not a mobile (no 1[3-9] start)
        "X光机 3台",
    ],
)
def test_other_numbers_in_text_stay(text):
    assert mask_text(text) == text


def test_a_long_note_is_cut_and_still_masked():
    note = "跟进" * 95 + RESIDENT_ID + "x" * 1_000_000  # the ID crosses the cut at 200 characters
    shown = show_text(note)
    assert len(shown) == SHOWN_CHARACTERS and shown.endswith("…")
    assert "1101011990" not in shown and "110****" in shown
    assert show_text("短备注 13812345678") == "短备注 138****5678"
    assert show_text("短备注 13812345678", mask=False) == "短备注 13812345678"
    assert show_text(None) is None


def test_mask_frame_masks_a_note_column():
    out = mask_frame(pd.DataFrame({"note": [NOTE, None], "amount": [1.0, 2.0]}))
    assert not any(s in str(out.loc[0, "note"]) for s in SECRETS)
    assert pd.isna(out.loc[1, "note"])


def _tables(note: str) -> dict[str, pd.DataFrame]:
    at = pd.Timestamp
    return {
        "opportunities": pd.DataFrame(
            [
                {
                    "opportunity_id": "O1",
                    "lead_id": "L1",
                    "created_at": at("2025-01-03"),
                    "closed_at": at("2025-02-01"),
                    "status": "won",
                    "loss_reason": None,
                }
            ]
        ),
        "leads": pd.DataFrame(
            [{"lead_id": "L1", "created_at": at("2025-01-01"), "first_contact_at": at("2025-01-02"), "channel": "web"}]
        ),
        "activities": pd.DataFrame([{"lead_id": "L1", "completed_at": at("2025-01-05"), "type": "call", "note": note}]),
        "stage_history": pd.DataFrame(columns=["opportunity_id", "stage", "entered_at"]),
    }


def test_the_timeline_masks_and_cuts_notes_unless_told_not_to_mask():
    masked = case_timeline("O1", _tables(NOTE + " " + "长" * 1_000_000), "zh")
    detail = " ".join(masked["detail"])
    assert not any(s in detail for s in SECRETS)
    assert "110***********851X" in detail and len(detail) < 2 * SHOWN_CHARACTERS
    shown = case_timeline("O1", _tables(NOTE), "zh", mask=False)
    assert RESIDENT_ID in " ".join(shown["detail"])


# --------------------------------------------------------------------------- formula-safe workbook
def test_text_that_could_be_a_formula_is_written_with_an_apostrophe(tmp_path):
    texts = ["=1+1", "+86 field", "-cmd|' /C calc'!A0", "@SUM(A1)", "\t=1+1", "\r=2", "华东", "a=b"]
    df = pd.DataFrame({"text": texts, "amount": [-5, -0.25, 0, 1, 2, 3, 4, 5]})
    wb = Workbook()
    wb.remove(wb.active)
    write_sheet(wb, "t", df, money=["amount"])
    wb.save(tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["t"]
    # (without lxml, the file's XML gives a CR back as a line feed: the apostrophe before it is what counts)
    got = [(c.value.replace("\r", "\n"), c.data_type) for c in ws["A"][1:]]
    assert got == [("'" + t.replace("\r", "\n") if t[0] in "=+-@\t\r" else t, "s") for t in texts]
    assert [c.value for c in ws["B"][1:]] == [-5, -0.25, 0, 1, 2, 3, 4, 5]
    assert all(c.data_type == "n" for c in ws["B"][1:])  # a negative number stays a number


def test_a_streamed_sheet_keeps_each_rows_own_values_and_formats(tmp_path):
    """The workbook is written in write-only mode, each formatted value in a cell reused row after row: every
    row still holds its own numbers, dates and text, each with its column's format, and '#N/A' stays text."""
    df = pd.DataFrame(
        {
            "text": ["=1+1", "#N/A", "华东", None],
            "amount": [1234.5, None, -7.0, 0.0],
            "conversion_rate": [0.5, 0.25, None, 1.0],
            "closed_at": pd.to_datetime(["2025-01-02 10:30", None, "2025-03-04 00:00", "2025-05-06 23:59"]),
        }
    )
    wb = Workbook(write_only=True)
    write_sheet(wb, "t", df, money=["amount"])
    wb.save(tmp_path / "t.xlsx")
    rows = list(openpyxl.load_workbook(tmp_path / "t.xlsx")["t"].iter_rows(min_row=2))
    got = [[(c.value, c.number_format) if c.value is not None else None for c in row] for row in rows]
    assert [g[0] for g in got] == [("'=1+1", "General"), ("#N/A", "General"), ("华东", "General"), None]
    assert rows[1][0].data_type == "s"
    assert [g[1] for g in got] == [(1234.5, "#,##0"), None, (-7, "#,##0"), (0, "#,##0")]
    assert [g[2] for g in got] == [(0.5, "0.0%"), (0.25, "0.0%"), None, (1, "0.0%")]
    when = [(g[3][0].strftime("%Y-%m-%d %H:%M"), g[3][1]) if g[3] else None for g in got]
    assert when == [
        ("2025-01-02 10:30", "yyyy-mm-dd hh:mm"),
        None,
        ("2025-03-04 00:00", "yyyy-mm-dd hh:mm"),
        ("2025-05-06 23:59", "yyyy-mm-dd hh:mm"),
    ]


def test_intake_keeps_a_tab_before_a_formula():
    raw = pd.DataFrame(
        {
            "activity_id": ["A1", "A2", "A3", "A4"],
            "due_at": ["2025-01-01"] * 4,
            "note": ["\t=1+1", "\r@cmd", "\t13812345678 ", "  跟进  "],
        }
    )
    notes = list(intake(raw, "activities").table["note"])
    assert notes == ["\t=1+1", "\r@cmd", "13812345678", "跟进"]


# --------------------------------------------------------------------------- passwords
@pytest.mark.parametrize(
    "url,secret",
    [
        ("postgresql+psycopg://analyst:hunter2@db:5432/crm", "hunter2"),
        ("postgresql://analyst:p@ss/w0rd@db/crm", "p@ss/w0rd"),
        ("mysql+pymysql://bi@db/crm?password=hunter2&charset=utf8mb4", "hunter2"),
        ("postgresql://db/crm?user=bi&PWD=hunter2", "hunter2"),
        ("sqlite+pysqlcipher://:correct-horse@/crm.db", "correct-horse"),
        ("sqlite+pysqlcipher:///crm.db?passphrase=correct-horse&kdf_iter=64000", "correct-horse"),
        ("sqlite+pysqlcipher:///crm.db?key=correct-horse", "correct-horse"),
        ("mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BSQL%7D%3BUID%3Dbi%3BPWD%3Dhunter2%3B", "hunter2"),
    ],
)
def test_redact_removes_a_password_from_any_part_of_a_url(url, secret):
    out = redact(url)
    assert secret not in out and "***" in out
    assert redact(out) == out
    assert out.split("://")[0] == url.split("://")[0]


def test_redact_keeps_what_is_no_secret():
    for url in ("sqlite:///data/crm.db", "postgresql://bi@db/crm?sslmode=require", "mysql://bi:${DB_PASSWORD}@db/crm"):
        assert redact(url) == url
    assert redact(None) == "" and redact("") == ""


def test_the_case_kernel_keeps_no_history():
    assert "--HistoryManager.enabled=False" in kernel.KERNEL_ARGUMENTS


# --------------------------------------------------------------------------- a whole case
def _case(tmp: Path, data: Path) -> Path:
    raw = yaml.safe_load((ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(data)}
    folder = tmp / "parameters"
    folder.mkdir(exist_ok=True)
    path = folder / f"{raw['case_id']}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _plant(data: Path, long_note_for: str | None = None) -> None:
    """Write ``NOTE`` into every note of the activities, tickets and opportunities; a 1 MB note (the
    secrets at both ends) on the first done follow-up of ``long_note_for``'s lead."""
    opps = pd.read_csv(data / "opportunities.csv", dtype=str, encoding="utf-8-sig", keep_default_na=False)
    for name in ("activities", "tickets", "opportunities"):
        path = data / f"{name}.csv"
        df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
        df["note"] = NOTE
        if name == "activities" and long_note_for:
            lead = opps.set_index("opportunity_id").loc[long_note_for, "lead_id"]
            done = df.index[(df["lead_id"] == lead) & (df["completed_at"] != "")]
            df.loc[done[:1], "note"] = NOTE + " " + "备注" * 500_000 + " " + NOTE
        df.to_csv(path, index=False, encoding="utf-8-sig")


def _text_of(path: Path) -> str:
    """Return what a file holds as text: every cell of a workbook or Parquet table, else the file."""
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path)
        return "\n".join(str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    if path.suffix == ".parquet":
        return pd.read_parquet(path).astype(str).to_csv()
    return path.read_bytes().decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The demo case run twice on notes full of personal numbers, the second time with a 1 MB note on a
    follow-up of the typical success; IPython's own folder is a fresh one, to see what it keeps."""
    tmp = tmp_path_factory.mktemp("leaks")
    data = tmp / "data"
    generate(data, scale=0.05, seed=3)
    _plant(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", str(tmp / "ipython"))
        first = run_case(_case(tmp, data), tmp / "first", progress=None)
        picks = json.loads((first.report.parent / "data" / "deep_dive" / "cases.json").read_text(encoding="utf-8"))
        _plant(data, long_note_for=picks["success"])
        second = run_case(_case(tmp, data), tmp / "second", progress=None)
    return tmp, first, second


def test_no_planted_number_or_address_is_in_any_output(planted):
    tmp, first, second = planted
    checked = 0
    for run in (first, second):
        root = run.report.parent.parent
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            text = _text_of(path)
            checked += 1
            for secret in SECRETS:
                assert secret not in text, f"{secret} in {path.relative_to(root)}"
    assert checked > 40
    html = first.report.read_text(encoding="utf-8")
    assert "110***********851X" in html  # the timeline shows the note, masked


def test_a_1_mb_note_keeps_the_report_small(planted):
    _, _, second = planted
    html = second.report.read_text(encoding="utf-8")
    assert second.report.stat().st_size <= 2 * 1024 * 1024
    assert "备注备注" in html and "备注" * 200 not in html and "…" in html
    for book in (second.report.parent / "notebooks").glob("*.ipynb"):
        assert book.stat().st_size <= 4 * 1024 * 1024, book.name


def test_no_history_database_is_written(planted):
    tmp, _, _ = planted
    assert not list((tmp / "ipython").rglob("history.sqlite"))


def test_the_step_hand_offs_hold_no_planted_number(planted):
    _, first, _ = planted
    for path in (first.report.parent / "data").rglob("*.parquet"):
        text = _text_of(path)
        assert not any(s in text for s in SECRETS), path.name


@pytest.mark.parametrize("url", ["sqlite://:s3cret@/", "sqlite:///?key=s3cret"])
def test_a_sqlite_url_without_a_file_is_named_without_its_passphrase(url):
    from crmnb.errors import DataError
    from crmnb.intake.read import readonly_engine

    with pytest.raises(DataError, match="a SQLite source needs a file path") as err:
        readonly_engine(url)
    assert "s3cret" not in str(err.value)
