"""The demo cases' outputs are what tests/golden/ recorded: hand-offs, workbook cells, report text, images.

A change meant to keep what users see (a regrouping of the code, a faster path) must pass this as it is.
A change meant to alter it records anew with ``.venv/bin/python tests/golden.py`` in the same commit.
"""

from __future__ import annotations

import difflib
import json

import pytest
from golden import CASES, GOLDEN, snapshot


@pytest.mark.e2e
@pytest.mark.parametrize("case_id", CASES)
def test_demo_outputs_are_as_recorded(demo_outputs, case_id):
    want = json.loads((GOLDEN / f"{case_id}.json").read_text(encoding="utf-8"))
    got = snapshot(demo_outputs[case_id])
    changed = sorted(
        k for k in set(want["handoffs"]) | set(got["handoffs"]) if want["handoffs"].get(k) != got["handoffs"].get(k)
    )
    assert not changed, f"{case_id}: hand-offs differ from the recording: {changed}"
    for sheet in sorted(set(want["workbook"]) | set(got["workbook"])):
        a, b = want["workbook"].get(sheet), got["workbook"].get(sheet)
        assert a == b, f"{case_id}: workbook sheet {sheet!r} differs:\n" + "\n".join(
            list(difflib.unified_diff(a or [], b or [], lineterm="", n=1))[:40]
        )
    diff = list(difflib.unified_diff(want["report_text"], got["report_text"], lineterm="", n=1))
    assert not diff, f"{case_id}: report text differs:\n" + "\n".join(diff[:60])
    assert got["report_images"] == want["report_images"], f"{case_id}: report images differ"


def test_snapshot_sees_a_changed_word(demo_outputs, tmp_path):
    """The comparison is not blind: one changed word in a report shows in its text."""
    import shutil

    folder = demo_outputs[CASES[0]]
    copy = tmp_path / "case"
    shutil.copytree(folder, copy)
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert "Executive summary" in html
    (copy / "report.html").write_text(html.replace("Executive summary", "Summary", 1), encoding="utf-8")
    assert snapshot(copy)["report_text"] != snapshot(folder)["report_text"]
