"""Shared test set-up."""

from __future__ import annotations

from pathlib import Path

from crmnb.runner import prefer_this_python

ROOT = Path(__file__).resolve().parents[1]

# nbval and papermill start the kernel "python3": make it this environment's Python.
prefer_this_python()
