"""The step hand-offs of a case: each step writes its tables and records under outputs/<case_id>/data/, later steps read them."""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from crmnb.errors import HandoffMissing
from crmnb.intake.parse import Intake
from crmnb.intake.schema import TABLES

# --------------------------------------------------------------------------- hand-offs
HANDOFF_STEPS: dict[str, tuple[int, str]] = {
    "scope": (1, "01_goal_and_scope"),
    "intake": (2, "02_data_collection"),
    "metrics": (3, "03_metrics"),
    "clean": (4, "04_cleaning_and_validation"),
    "deep_dive": (5, "05_case_deep_dive"),
    "plan": (6, "06_diagnosis_and_plan"),
    "report": (7, "07_report_and_iteration"),
}
"""Which step writes each hand-off folder."""


@dataclass
class Workspace:
    """The output folder of one case: ``<output_root>/<case_id>/``."""

    root: Path
    case_id: str
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def folder(self) -> Path:
        """Return the case's output folder."""
        return self.root / self.case_id

    @property
    def data(self) -> Path:
        """Return the folder of the step hand-offs."""
        return self.folder / "data"

    def _path(self, name: str, ext: str) -> Path:
        if not re.fullmatch(r"[a-z0-9_]+/[a-z0-9_]+", name):
            raise ValueError(f"hand-off name must look like 'step/name', got {name!r}")
        return self.data / f"{name}.{ext}"

    def write(self, name: str, df: pd.DataFrame) -> Path:
        """Write a table hand-off as Parquet and return its path."""
        path = self._path(name, "parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path, index=False)
        self._cache[name] = df
        return path

    def read(self, name: str) -> pd.DataFrame:
        """Read a table hand-off, or say which step to run first."""
        if name in self._cache:
            return self._cache[name]
        path = self._path(name, "parquet")
        if not path.exists():
            raise self._missing(name, path)
        return pd.read_parquet(path)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a small hand-off (figures, sentences) as JSON."""
        path = self._path(name, "json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        return path

    def read_json(self, name: str) -> Any:
        """Read a JSON hand-off, or say which step to run first."""
        path = self._path(name, "json")
        if not path.exists():
            raise self._missing(name, path)
        return json.loads(path.read_text(encoding="utf-8"))

    def exists(self, name: str) -> bool:
        """Return True when the hand-off has been written."""
        return self._path(name, "parquet").exists() or self._path(name, "json").exists()

    def tables(self, step: str) -> Tables:
        """Return every canonical table a step wrote (``intake`` or ``clean``), each read when first used."""
        return Tables(self, step)

    def _missing(self, name: str, path: Path) -> HandoffMissing:
        step = HANDOFF_STEPS.get(name.split("/")[0])
        which = f"run step {step[0]} ({step[1]}.ipynb) first" if step else "run the earlier steps first"
        return HandoffMissing(f"hand-off '{name}' not found at {path}: {which}")


class Tables(MutableMapping):
    """The canonical tables of one step, read from their hand-offs when first used.

    A step that needs three of the eleven tables reads three: at 100 times the demo
    data, the visits and activities alone are 12 million rows. A missing hand-off
    raises :class:`HandoffMissing` when it is used, naming the step to run.
    """

    def __init__(self, ws: Workspace, step: str):
        self._ws, self._step = ws, step
        self._names = list(TABLES)
        self._got: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._got:
            if name not in self._names:
                raise KeyError(name)
            self._got[name] = self._ws.read(f"{self._step}/{name}")
        return self._got[name]

    def __setitem__(self, name: str, df: pd.DataFrame) -> None:
        if name not in self._names:
            self._names.append(name)
        self._got[name] = df

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._got.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self):
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<{self._step} tables: {', '.join(self._names)}; read so far: {', '.join(self._got) or 'none'}>"


def save_intake(ws: Workspace, intakes: dict[str, Intake]) -> pd.DataFrame:
    """Write every intake table, the unreadable values and the date formats; return the issues."""
    for name, got in intakes.items():
        ws.write(f"intake/{name}", got.table)
    issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
    formats = pd.concat([g.formats for g in intakes.values()], ignore_index=True)
    ws.write("intake/issues", issues.astype({"row": "int64"}) if len(issues) else issues)
    ws.write("intake/formats", formats)
    return issues


def save_cleaned(ws: Workspace, cleaned) -> None:
    """Write the cleaned tables, the cleaning log, the quarantine, the merges and the row reconciliation."""
    for name, df in cleaned.tables.items():
        ws.write(f"clean/{name}", df)
    ws.write("clean/log", cleaned.log)
    ws.write("clean/quarantine", cleaned.quarantine)
    ws.write("clean/merges", cleaned.merges)
    ws.write("clean/reconciliation", cleaned.reconciliation)
