"""Shared test set-up."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# nbval and papermill start the kernel "python3": make it this environment's Python.
_mine = str(Path(sys.prefix) / "share" / "jupyter")
if _mine not in os.environ.get("JUPYTER_PATH", ""):
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (_mine, os.environ.get("JUPYTER_PATH")) if p)
