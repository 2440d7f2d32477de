"""The faster intake gives what the slower one gave: Arrow's CSV reader the text of pandas' reader, dates
read once per distinct value as they were read value by value, and tables written one at a time.

Each test builds its input by hand, so the expected result is known without running the code under test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from crm_mini import mini_case, write_mini

from crmnb.handoffs import Workspace, save_intake
from crmnb.intake.inventory import inventory
from crmnb.intake.load import iter_tables, load_tables
from crmnb.intake.parse import _parse_text, _text, parse_dates
from crmnb.intake.read import _read_csv_fast, read_csv_text
from crmnb.intake.schema import TABLES


def _pandas_text(path: Path, sep: str = ",") -> pd.DataFrame:
    """Return a CSV as pandas' own reader gives it, the way intake read every export before."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig", sep=sep, engine="c")
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    return df


TRICKY_CSV = (
    "\ufeffid,name,amount,note\r\n"
    '001," 张伟 ",007,"a ""quoted"" word"\r\n'
    '002,"",,"two\r\nlines"\r\n'
    "\r\n"  # a blank line: skipped by both readers
    "003,NA,null,N/A\r\n"
    '004,ab"c,1.50,"\t=1+1"\r\n'
)


def test_arrow_reads_a_utf8_file_with_bom_as_pandas_does(tmp_path: Path):
    path = tmp_path / "x.csv"
    path.write_bytes(TRICKY_CSV.encode("utf-8"))
    fast = _read_csv_fast(path, "utf-8-sig", ",", 1)
    assert fast is not None, "a whole UTF-8 file with a BOM is read by Arrow"
    fast.columns = [str(c).strip().lstrip("\ufeff") for c in fast.columns]
    pd.testing.assert_frame_equal(fast, _pandas_text(path))
    # the text itself, as written by hand above: leading zeros, blanks inside quotes, "NA" kept as text
    assert fast["id"].tolist() == ["001", "002", "003", "004"]
    assert fast["name"].tolist()[0] == " 张伟 " and pd.isna(fast["name"].iloc[1]) and fast["name"].iloc[2] == "NA"
    assert fast["note"].tolist() == ['a "quoted" word', "two\r\nlines", "N/A", "\t=1+1"]
    df, enc, sep = read_csv_text(path)
    assert (enc, sep) == ("utf-8-sig", ",") and list(df.columns) == ["id", "name", "amount", "note"]


@pytest.mark.parametrize(
    "content",
    [
        b"id,name,amount\n1,a\n2,b,2\n",  # a row short of fields: pandas fills it
        b"id,name,amount\n1,a,1,9\n",  # a row with a field too many
        b"id,memo,memo\n1,a,b\n",  # a column named twice: pandas tells the two apart
        b"id,name,amount\n1,\xff\xfe,1\n",  # a byte that is not UTF-8
        b'id,name,amount\n1,a,1\n2,"b',  # cut inside a quoted value
    ],
)
def test_damaged_files_go_to_pandas_reader(tmp_path: Path, content: bytes):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    assert _read_csv_fast(path, "utf-8-sig", ",", 1) is None


def test_a_gb18030_file_is_left_to_pandas_reader(tmp_path: Path):
    path = tmp_path / "x.csv"
    path.write_bytes("id,name\n1,张伟\n".encode("gb18030"))
    assert _read_csv_fast(path, "gb18030", ",", 1) is None
    df, enc, _ = read_csv_text(path)
    assert enc == "gb18030" and df["name"].tolist() == ["张伟"]


TRICKY_DATES = [
    "2025-03-04 10:00:00",
    " 2025-03-04 10:00:00 ",  # blanks around: trimmed, the same value
    "2025/3/4 10:05",
    "2025年3月4日",
    "2025-02-30",  # no such day: refused, not moved to 2 March
    "2025-02-28 23:59:60",  # no such second
    "2024-02-29",  # a leap day
    "2025-02-29",  # not a leap year
    "2025-03-04T02:00:00.000Z",  # UTC: converted to the case's zone
    "2025-03-04T02:00:00+0800",
    "2025-03-04 10:00:00.25",  # a fraction of a second dropped
    "04/03/2025",  # the day first: no format reads it
    "",
    None,
    "x",
]


@pytest.mark.parametrize("zone", [None, "Asia/Shanghai", "Europe/Berlin"])
def test_dates_read_once_per_distinct_value_as_value_by_value(zone):
    values = pd.Series(TRICKY_DATES * 4, index=np.arange(100, 100 + 4 * len(TRICKY_DATES)), dtype=object)
    parsed, label = parse_dates(values, zone)
    old_parsed, old_label = _parse_text(values.astype("string").str.strip(), zone)
    pd.testing.assert_series_equal(parsed, old_parsed)
    pd.testing.assert_series_equal(label, old_label)


def test_dates_hand_checked():
    parsed, label = parse_dates(pd.Series(TRICKY_DATES), "Asia/Shanghai")
    got = dict(zip(TRICKY_DATES, zip(map(str, parsed), label)))
    assert got["2025-02-30"] == ("NaT", None)
    assert got["2025-02-28 23:59:60"] == ("NaT", None)
    assert got["2025-02-29"] == ("NaT", None)
    assert got["2024-02-29"] == ("2024-02-29 00:00:00", "YYYY-MM-DD")
    assert got["2025-03-04T02:00:00.000Z"] == ("2025-03-04 10:00:00", "YYYY-MM-DDThh:mm:ss ±zone → Asia/Shanghai")
    assert got["2025-03-04T02:00:00+0800"] == ("2025-03-04 02:00:00", "YYYY-MM-DDThh:mm:ss ±zone → Asia/Shanghai")
    assert got["2025-03-04 10:00:00.25"] == ("2025-03-04 10:00:00", "YYYY-MM-DD hh:mm:ss .fraction")
    assert got[" 2025-03-04 10:00:00 "] == ("2025-03-04 10:00:00", "YYYY-MM-DD hh:mm:ss")
    assert got["2025/3/4 10:05"] == ("2025-03-04 10:05:00", "YYYY/M/D hh:mm")
    assert got["04/03/2025"] == ("NaT", None) and got["x"] == ("NaT", None)
    assert got[""] == ("NaT", "") and got[None] == ("NaT", "")


def test_a_column_without_any_date_is_all_missing():
    parsed, label = parse_dates(pd.Series([None, "", " "], dtype=object))
    assert parsed.isna().all() and label.tolist() == ["", "", ""]


def test_text_is_trimmed_except_a_formula_behind_a_tab():
    s = pd.Series([" a ", "\t=1+1", " \r+2", "b\tc", "\t", None, "=3", "x\t=4"], dtype="str")
    assert _text(s).tolist()[:5] == ["a", "\t=1+1", " \r+2", "b\tc", ""]
    assert pd.isna(_text(s).iloc[5]) and _text(s).tolist()[6:] == ["=3", "x\t=4"]


class _Recorder(Workspace):
    """A workspace that notes each hand-off it opens for writing, in order, beside the tables the case reads
    (a table taken in in batches is written through the path it is given, not :meth:`write`)."""

    def _path(self, name: str, kind, writing: bool = False) -> Path:
        if writing:
            self.events.append(f"write {name}")
        return super()._path(name, kind, writing)


def test_each_table_is_written_before_the_next_is_read(tmp_path: Path):
    case = mini_case(write_mini(tmp_path / "exports"))
    ws = _Recorder(tmp_path / "out", case.case_id)
    ws.events = []
    kept = save_intake(ws, iter_tables(case, progress=lambda msg: ws.events.append(msg.split(" from ")[0])))
    events = ws.events
    for name in TABLES:
        assert f"reading {name}" in events and f"write intake/{name}" in events
    # each table is written before the next one is read: read under their own names, leads and
    # opportunities need not wait for each other (only a mapping's converted leads link them)
    order = [e.split(" ")[-1].removeprefix("intake/") + (" w" if e.startswith("write") else " r") for e in events]
    assert order[:7] == [
        "customers r",
        "customers w",
        "leads r",
        "leads w",
        "opportunities r",
        "opportunities w",
        "stage_history r",
    ]
    assert order.index("activities w") < order.index("orders r") < order.index("orders w") < order.index("tickets r")
    # nothing held: the workspace keeps no written table, the intakes keep no rows
    assert not [k for k, v in vars(ws).items() if isinstance(v, (pd.DataFrame, dict)) and k != "events"]
    assert list(kept) == list(TABLES) and all(len(g.table) == 0 for g in kept.values())
    # every CSV was taken in a batch at a time (one batch each, so small); the Excel campaigns whole, and
    # the e-mail events, an optional export these exports leave out, as the empty table it then is
    assert not (tmp_path / "exports" / "email_events.csv").exists()
    assert {n for n, g in kept.items() if g.batches == 0} == {"campaigns", "email_events"}


def test_tables_a_mapping_links_are_taken_in_together(tmp_path: Path):
    from crmnb.intake.load import in_batches

    folder = write_mini(tmp_path / "exports")
    plain = mini_case(folder)
    mapped = mini_case(folder, tables={"opportunities": {"mapping": "salesforce_opportunity"}})
    assert in_batches(plain, "leads") and in_batches(plain, "opportunities")
    assert not in_batches(mapped, "leads") and not in_batches(mapped, "opportunities")
    assert in_batches(mapped, "orders")


def test_summaries_show_the_inventory_of_the_whole_tables(tmp_path: Path):
    case = mini_case(write_mini(tmp_path / "exports"))
    whole = load_tables(case)
    kept = save_intake(Workspace(tmp_path / "out", case.case_id), iter_tables(case))
    pd.testing.assert_frame_equal(inventory(kept, case), inventory(whole, case))
    assert inventory(kept, case).set_index("table").loc["customers", "rows"] == 3  # the mini export's three
    written = pd.read_parquet(tmp_path / "out" / case.case_id / "data" / "intake" / "customers.parquet")
    whole["customers"].table.to_parquet(tmp_path / "whole.parquet", index=False)
    pd.testing.assert_frame_equal(written, pd.read_parquet(tmp_path / "whole.parquet"))


def test_a_summarised_table_keeps_none_of_its_text(tmp_path: Path):
    case = mini_case(write_mini(tmp_path / "exports"))
    got = load_tables(case)["customers"]
    got.table = got.table.iloc[np.arange(3000) % 3].reset_index(drop=True)  # 3,000 rows: buffers worth keeping
    assert got.table["name"].array._pa_array.get_total_buffer_size() > 10_000
    empty = got.summarised("customers").table
    assert list(empty.dtypes.items()) == list(got.table.dtypes.items())
    # a slice, even of no rows, would still hold the whole column's buffers
    held = [empty[c].array._pa_array.get_total_buffer_size() for c in empty if str(empty[c].dtype) == "str"]
    assert held and max(held) <= 64  # an empty column's own offsets


def _checked_everywhere(text: pd.Series, fmt: str) -> pd.Series:
    """Return ``text`` parsed with ``fmt``, the day and second written checked on every value (as before)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from crmnb.intake.parse import _written_as_parsed

    arr = pa.array(text.astype("str"), type=pa.large_string())
    got = pc.strptime(arr, format=fmt, unit="ns", error_is_null=True)
    got = pc.if_else(_written_as_parsed(arr, got, fmt), got, pa.scalar(None, got.type))
    return pd.Series(got.to_numpy(zero_copy_only=False), index=text.index).astype("datetime64[ns]")


def test_checking_only_dates_that_may_have_moved_refuses_the_same_dates():
    from crmnb.intake.parse import DATE_FORMATS, _strptime

    # every month's last days and the 1st to 3rd, seconds 0, 1, 58 to 61, midnight and 23:59, leap and not
    written = []
    for y, m, d, h, sec in (
        (y, m, d, h, sec)
        for y in (2024, 2025)
        for m in range(1, 13)
        for d in (1, 2, 3, 4, 28, 29, 30, 31)
        for h in (0, 23)
        for sec in (0, 1, 2, 58, 59, 60, 61)
    ):
        written += [
            f"{y}-{m:02d}-{d:02d} {h:02d}:59:{sec:02d}",
            f"{y}/{m}/{d} {h}:59:{sec}",
            f"{y}年{m}月{d}日 {h}:59:{sec:02d}",
            f"{y}-{m:02d}-{d:02d}",
            f"{y}/{m}/{d}",
        ]
    text = pd.Series(written, dtype="string")
    for fmt, _ in DATE_FORMATS:
        pd.testing.assert_series_equal(_strptime(text, fmt), _checked_everywhere(text, fmt))
    got = _strptime(pd.Series(["2025-02-29", "2024-02-29", "2025-04-31", "2025-04-30"], dtype="string"), "%Y-%m-%d")
    assert list(map(str, got)) == ["NaT", "2024-02-29 00:00:00", "NaT", "2025-04-30 00:00:00"]
