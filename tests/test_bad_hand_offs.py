"""The step hand-offs hold no contact and no personal number in a note, and duplicates are still found.

Intake keeps a phone or e-mail only as a keyed hash of it normalised (and its masked form, as a
reader sees it); step 4 matches duplicates by those keys. A case that does not mask personal data
(``mask_pii: false``) keeps them as read.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from crm_mini import AS_OF, CASE, frame, write_mini

from crmnb.intake.cleaning import clean
from crmnb.intake.load import load_tables
from crmnb.intake.protect import CONTACT_KEY_ENV, contact_key
from crmnb.params import parse_case

ROOT = Path(__file__).resolve().parents[1]


def _spoil(folder: Path, table: str, **changes) -> None:
    df = frame(table)
    for col, cells in changes.items():
        for i, v in cells.items():
            df.loc[i, col] = v
    df.to_csv(folder / f"{table}.csv", index=False, encoding="utf-8")


def _take_in(folder: Path, mask: bool = True):
    case = parse_case({**CASE, "mask_pii": mask, "data": {"dir": str(folder)}}, folder / "case.yaml")
    intakes = load_tables(case)
    issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
    formats = pd.concat([g.formats for g in intakes.values()], ignore_index=True)
    return intakes, clean({k: v.table for k, v in intakes.items()}, issues, formats, as_of=AS_OF)


@pytest.fixture
def written_two_ways(tmp_path: Path) -> Path:
    """The mini export with C2 the same mobile as C1 written another way, C3 C1's e-mail in capitals,
    a kept lead's e-mail in capitals, and notes holding a resident ID, a phone and an e-mail."""
    folder = write_mini(tmp_path / "exports")
    _spoil(folder, "customers", phone={1: "+86 138-0000-0001"}, email={2: " A@X.CN "})
    _spoil(folder, "leads", email={0: "Lead.One@Example.CN"})
    _spoil(folder, "activities", note={0: "身份证110101199003078515 回电 13912345678 发 wang.li@corp.cn", 1: "跟进"})
    return folder


def test_duplicates_are_found_by_keys_and_no_contact_is_kept(written_two_ways: Path):
    intakes, cleaned = _take_in(written_two_ways)
    cust = intakes["customers"].table
    assert list(cust["phone"]) == ["138****0001", "138****0001", "138****0003"]
    assert list(cust["email"]) == ["a***@x.cn", "b***@x.cn", "a***@x.cn"]
    assert cust.loc[0, "phone_key"] == cust.loc[1, "phone_key"] != cust.loc[2, "phone_key"]
    assert cust.loc[0, "email_key"] == cust.loc[2, "email_key"] != cust.loc[1, "email_key"]
    # a key is no plain hash anyone could recompute from a guessed number
    assert cust.loc[0, "phone_key"] != hashlib.sha256(b"13800000001").hexdigest()[:32]
    merges = cleaned.merges.set_index("duplicate_id")
    assert merges.loc["C2", ["kept_id", "match_on"]].tolist() == ["C1", "phone"]
    assert merges.loc["C3", ["kept_id", "match_on"]].tolist() == ["C1", "e-mail"]
    for name, got in intakes.items():
        text = got.table.astype(str).to_csv()
        for secret in ("13800000001", "0000-0001", "a@x.cn", "A@X.CN", "lead.one", "13912345678", "199003078515"):
            assert secret not in text, (name, secret)
    for name, df in {**cleaned.tables, "quarantine": cleaned.quarantine}.items():
        assert "13800000001" not in df.astype(str).to_csv() and "wang.li" not in df.astype(str).to_csv(), name
    note = cleaned.tables["activities"].set_index("activity_id").loc["A1", "note"]
    assert note == "身份证110***********8515 回电 139****5678 发 w***@corp.cn"


def test_the_cleaning_log_counts_the_kept_contacts_written_another_way(written_two_ways: Path):
    _, cleaned = _take_in(written_two_ways)
    log = cleaned.log
    lines = log[log["column"].isin(["phone", "email"]) & log["action"].isin(["normalised", "已规范化"])]
    # C2 and C3 are merged into C1: of the rows kept, only the lead's e-mail was written another way
    assert lines[["table", "column", "rows"]].values.tolist() == [["leads", "email", 1]]
    assert "phone_rewritten" not in cleaned.tables["customers"] and "email_key" in cleaned.tables["customers"]


def test_a_case_that_does_not_mask_keeps_contacts_and_still_finds_duplicates(written_two_ways: Path):
    intakes, cleaned = _take_in(written_two_ways, mask=False)
    assert "phone_key" not in intakes["customers"].table
    assert cleaned.tables["customers"].loc[0, "phone"] == "13800000001"
    assert sorted(cleaned.merges["duplicate_id"]) == ["C2", "C3"]
    assert "13912345678" in " ".join(cleaned.tables["activities"]["note"].dropna())


def _key_in_a_new_process(env: dict[str, str]) -> str:
    code = "from crmnb.intake.protect import contact_key; print(contact_key('mini').hex())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


def test_the_key_is_a_runs_own_unless_a_secret_is_set(monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k != CONTACT_KEY_ENV}
    assert _key_in_a_new_process(env) != _key_in_a_new_process(env)  # drawn anew by each run
    with_secret = {**env, CONTACT_KEY_ENV: "department secret"}
    assert _key_in_a_new_process(with_secret) == _key_in_a_new_process(with_secret)
    monkeypatch.setenv(CONTACT_KEY_ENV, "department secret")
    assert contact_key("mini").hex() == _key_in_a_new_process(with_secret)
    assert contact_key("mini") != contact_key("other case")
