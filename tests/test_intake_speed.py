"""Step 2's faster paths give what the plain ones give: batches read ahead, writes in a thread, scans of bytes."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from crmnb.intake.ahead import read_ahead
from crmnb.intake.parse import _holds_any, _text
from crmnb.intake.write import BatchWriter, few_values


def test_read_ahead_yields_every_batch_in_order() -> None:
    """Every batch comes, in order, read in another thread than the caller's."""
    seen: list[str] = []

    def batches():
        for i in range(5):
            seen.append(threading.current_thread().name)
            yield i

    assert list(read_ahead(batches())) == [0, 1, 2, 3, 4]
    assert set(seen) == {"crmnb-read"}


def test_read_ahead_raises_where_reading_failed() -> None:
    """A reader's error reaches the caller after the batches read before it, as the error itself."""

    def batches():
        yield 1
        yield 2
        raise ValueError("row 7 has 3 fields, 4 expected")

    got = []
    with pytest.raises(ValueError, match="row 7 has 3 fields"):
        for b in read_ahead(batches()):
            got.append(b)
    assert got == [1, 2]


def test_read_ahead_stops_reading_when_the_caller_stops() -> None:
    """A caller that stops early (a batch taken in whole) leaves no thread reading the file on."""
    closed = threading.Event()

    def batches():
        try:
            yield from range(1000)
        finally:
            closed.set()

    before = {t for t in threading.enumerate() if t.name == "crmnb-read"}
    it = read_ahead(batches())
    assert next(it) == 0
    it.close()
    assert closed.wait(5)
    assert {t for t in threading.enumerate() if t.name == "crmnb-read" and t.is_alive()} <= before


def test_holds_any_by_bytes_agrees_with_a_search_of_each_value() -> None:
    """A tab or CR anywhere is found in the value that holds it; a column without one holds none."""
    plain = pd.Series(["a", None, "b c", "甲乙"] * 50, dtype="str")
    assert not _holds_any(plain, ("\t", "\r")).any()
    odd = pd.Series(["a", "x\ty", None, "甲\r", "ok"], dtype="str")
    assert _holds_any(odd, ("\t", "\r")).tolist() == [False, True, False, True, False]
    # a slice of a longer array: only the bytes of its own values count
    arr = pa.array(["\tx", "a", "b", "c\r"], type=pa.large_string()).slice(1, 2)
    assert not _holds_any(pd.Series(arr.to_pylist(), dtype="str"), ("\t",)).any()
    assert _holds_any(pd.Series(["\t=1+1", "b"], dtype="str"), ("\t",)).tolist() == [True, False]


def test_text_keeps_an_armed_formula_and_strips_the_rest() -> None:
    """Blanks around text go; a tab before a formula stays, so the workbook still disarms it."""
    got = _text(pd.Series(["  a ", "\t=1+1", None, "b\t"], dtype="str"))
    assert got.tolist()[:2] == ["a", "\t=1+1"]
    assert pd.isna(got.iloc[2])
    assert got.iloc[3] == "b"


def test_few_values_counts_as_the_whole_column_would() -> None:
    """Columns are dictionary-encoded exactly when their distinct values are at most 1% of the rows."""
    n = 10_000
    table = pa.table(
        {
            "id": [f"A{i}" for i in range(n)],
            "dept": [f"d{i % 7}" for i in range(n)],
            "late": ["x"] * (n - 150) + [f"y{i}" for i in range(150)],  # distinct only at the end: 101 > 100
            "edge": [f"e{i % 100}" for i in range(n)],  # exactly at the limit
        }
    )
    expected = [c for c in table.column_names if pc.count_distinct(table[c]).as_py() <= n // 100]
    assert few_values(table) == expected == ["dept", "edge"]


def test_batch_writer_in_a_thread_writes_what_one_write_would(tmp_path) -> None:
    """Batches written while the next is made read back as the frames joined, a null column widened."""
    frames = [
        pd.DataFrame({"a": np.arange(i * 100, i * 100 + 100), "b": [None] * 100 if i == 0 else ["v"] * 100})
        for i in range(4)
    ]
    path = tmp_path / "t.parquet"
    with BatchWriter(path, {"compression": "lz4", "row_group_size": 128}) as out:
        for f in frames:
            out.write(f)
    got = pq.read_table(path)
    assert got["a"].to_pylist() == list(range(400))
    assert got["b"].to_pylist() == [None] * 100 + ["v"] * 300
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    assert not any(t.name.startswith("crmnb-write") and t.is_alive() for t in threading.enumerate())


def test_batch_writer_raises_a_failed_write(tmp_path) -> None:
    """A batch that cannot be written (a column of another type) raises, and no writing thread is left."""
    path = tmp_path / "t.parquet"
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, ValueError)), BatchWriter(path, {}) as out:
        out.write(pd.DataFrame({"a": [1, 2]}))
        out.write(pd.DataFrame({"a": ["x", "y"]}))
    assert not any(t.name.startswith("crmnb-write") and t.is_alive() for t in threading.enumerate())


def test_utm_columns_are_each_rows_own_parameters_as_text() -> None:
    """Each row gets the parameters of its own address; a value the export has is kept; missing stays missing."""
    from crmnb.intake.utm import add_utm, utm_of

    urls = ["https://x.cn/a?utm_source=Baidu&utm_medium=CPC&utm_campaign=CMP001", None, "https://x.cn/b", "bad"] * 3
    had = ["wechat", None, None, None] * 3
    df = pd.DataFrame({"landing_url": pd.Series(urls, dtype="str"), "utm_source": pd.Series(had, dtype="str")})
    got = add_utm(df, "leads")
    for i, url in enumerate(urls):
        want = list(utm_of(url))
        want[0] = had[i] or want[0]
        row = [None if pd.isna(v) else v for v in got.loc[i, ["utm_source", "utm_medium", "utm_campaign"]]]
        assert row == want
    assert all(got[c].dtype == got["landing_url"].dtype for c in ("utm_source", "utm_medium", "utm_campaign"))


@pytest.mark.parametrize("blank", [" ", "\t", "\n", "\x1f", "\u00a0", "\u3000", "\u2009"])
def test_trimming_finds_every_blank_arrow_trims(blank: str) -> None:
    """A blank Arrow trims, at either end of any one value, is trimmed; text with none is left as it is."""
    from crmnb.intake.parse import _trimmed

    plain = ["C001", "a b", None, "", "2025-03-04 10:00"] * 40
    assert _trimmed(pd.Series(plain, dtype="str")).tolist() == pd.Series(plain, dtype="str").tolist()
    for at in (0, 1):
        values = list(plain)
        values[77] = blank + "x" if at == 0 else "x" + blank
        got = _trimmed(pd.Series(values, dtype="str"))
        assert got.iloc[77] == "x"
        assert got.tolist()[:5] == pd.Series(plain[:5], dtype="str").tolist()


def test_contacts_rewritten_and_keyed_from_arrow_as_from_objects() -> None:
    """A contact written other than normalised is flagged (one that normalises to nothing too, a missing one
    not), and its key is the same whether its distinct values are found by pandas or by Arrow."""
    from crmnb.intake.duplicates import normalise_phone
    from crmnb.intake.protect import _as_arrow, _rewritten, keyed

    src = pd.Series(["13812345678", "+86 138-1234-5678", None, "abc", "13912345678", "13812345678"], dtype="str")
    new = normalise_phone(src)
    assert _rewritten(src, _as_arrow(new)).tolist() == [False, True, False, True, False, False]
    by_objects, by_arrow = keyed(new, b"k"), keyed(new, b"k", _as_arrow(new))
    assert by_arrow.tolist() == by_objects.tolist()
    assert by_arrow[0] == by_arrow[1] == by_arrow[5] != by_arrow[4]
    assert by_arrow[2] is None and by_arrow[3] is None


@pytest.mark.parametrize(
    "key", [b"k", bytes(range(64)), b"a department's secret, longer than a block " * 3], ids=["short", "block", "long"]
)
def test_contact_keys_from_duckdb_are_python_hmacs(monkeypatch, key) -> None:
    """A batch of many contacts is hashed by DuckDB, row by row when they are mostly distinct, else each distinct
    value once: each key is the HMAC-SHA256 Python's hmac gives (its first 32 hex digits), for Chinese and plain
    text alike and for a key longer than SHA-256's block; missing stays missing."""
    import hashlib
    import hmac

    from crmnb.intake import protect

    distinct = ["13812345678", "z@x.cn", None, "张三@例子.中国", "13812345678", "", "+86 138"]
    repeated = distinct * 5
    monkeypatch.setattr(protect, "IN_ENGINE_FROM", 3)
    hashed = []
    monkeypatch.setattr(
        protect, "_hmacs_in_engine", lambda a, k, f=protect._hmacs_in_engine: hashed.append(len(a)) or f(a, k)
    )
    for values, rows_hashed in ((distinct, 7), (repeated, 5)):  # every row, or the 5 distinct texts
        want = [
            None if v is None else hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest()[:32] for v in values
        ]
        s = pd.Series(values, dtype="str")
        hashed.clear()
        by_objects, by_arrow = protect.keyed(s, key), protect.keyed(s, key, protect._as_arrow(s))
        assert by_objects.tolist() == by_arrow.tolist() == want
        assert by_objects.index.equals(s.index) and by_objects.dtype == object
        assert hashed[-1] == rows_hashed
    with monkeypatch.context() as m:  # fewer than IN_ENGINE_FROM: Python's hashlib
        m.setattr(protect, "IN_ENGINE_FROM", 100)
        hashed.clear()
        assert protect.keyed(pd.Series(repeated, dtype="str"), key).tolist() == want
        assert not hashed


def test_no_thread_reads_on_after_a_table_is_taken_in(tmp_path) -> None:
    """After step 2 took in a table, in batches or (having started in batches) whole, no reading thread is left."""
    from crmnb.intake.sources import Located, TableSource
    from crmnb.intake.stream import Whole, take_in_streamed

    path = tmp_path / "visits.csv"
    path.write_text("visit_id,customer_id,visited_at,department,owner_rep\nV1,C1,2025-01-02 10:00:00,d,r\n")
    loc = Located("visits", "csv", TableSource(file="visits.csv"), path=path)
    try:
        take_in_streamed(object(), "visits", loc, None, tmp_path / "out.parquet", {})
    except Whole:
        pass
    assert not any(t.name == "crmnb-read" and t.is_alive() for t in threading.enumerate())
