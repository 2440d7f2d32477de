"""frames.isin gives Series.isin's answer, on Arrow text and on everything else."""

import numpy as np
import pandas as pd
import pytest

from crmnb.frames import isin


@pytest.mark.parametrize(
    "values",
    [
        ["C1", "C3"],
        [],
        [None],
        ["C2", None],
        {"C1": "x", "C9": "y"},
        {"C4"},
        np.array(["C1", "C4"], dtype=object),
        pd.Index(["C2"]),
        [1, 2],
        ["C1", 3],
    ],
)
def test_isin_matches_pandas_on_text(values):
    s = pd.Series(["C1", "C2", None, "C3", "C4", "C1"], dtype="str")
    assert isin(s, values).tolist() == s.isin(values).tolist()


def test_isin_matches_pandas_on_a_large_random_column():
    rng = np.random.default_rng(7)
    s = pd.Series([f"C{i:05d}" for i in rng.integers(0, 5000, 20000)], dtype="str")
    s[rng.random(len(s)) < 0.05] = None
    known = pd.Series([f"C{i:05d}" for i in rng.integers(0, 5000, 2000)], dtype="str")
    got = isin(s, known)
    assert got.index.equals(s.index) and got.dtype == bool
    assert got.tolist() == s.isin(known).tolist()
    assert 0 < got.sum() < len(s)


def test_isin_leaves_other_columns_to_pandas():
    s = pd.Series([1.0, 2.0, np.nan])
    assert isin(s, [2.0]).tolist() == [False, True, False]
    obj = pd.Series(["a", None, "b"], dtype=object)
    assert isin(obj, ["b"]).tolist() == [False, False, True]


def test_engine_connections_spill_to_the_temporary_folder_not_the_working_one():
    """DuckDB spills to ".tmp" in the working folder by default: the kernel's is the workbook's notebooks/."""
    import tempfile

    from crmnb.frames import connect
    from crmnb.intake import clean_engine

    for con in (connect(), connect(memory_limit="256MB", threads=2), clean_engine.connect()):
        where = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        assert where.startswith(tempfile.gettempdir()), where
    assert clean_engine.connect().execute("SELECT current_setting('threads')").fetchall()[0][0] == 2
