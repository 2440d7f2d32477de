"""Case files and small workbooks written for a test: shared by the batch and cluster tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def case_copy(folder: Path, template: str, data: Path, **changes) -> Path:
    """Write a copy of a demo case file reading ``data``; ``changes`` set top-level keys."""
    raw = yaml.safe_load((ROOT / "parameters" / f"{template}.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(data)}
    raw.update(changes)
    path = folder / f"{raw['case_id']}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def toy_workbook(tmp: Path, cell: str, cases: dict[str, dict], heading: str | None = None) -> Path:
    """Write under ``tmp`` a one-step workbook (``notebooks/01_toy.ipynb``: its parameters, then ``cell``) and,
    in ``parameters/``, one case file per entry of ``cases`` (case id: the keys it changes); return ``tmp``."""
    (tmp / "notebooks").mkdir()
    cells = [new_markdown_cell(heading)] if heading else []
    cells += [
        new_code_cell('case_file = ""\noutput_root = "outputs"\ncase = None', metadata={"tags": ["parameters"]}),
        new_code_cell(cell),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp / "notebooks" / "01_toy.ipynb")
    params = tmp / "parameters"
    params.mkdir()
    for case_id, extra in cases.items():
        case_copy(params, "lead_conversion_uplift", tmp / "data", case_id=case_id, **extra)
    return tmp
