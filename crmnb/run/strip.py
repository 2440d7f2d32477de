"""Strip a notebook's outputs for git: the clean filter behind ``*.ipynb filter=crmnb-strip``.

Removes outputs, execution counts, papermill's injected parameters and run metadata;
keeps sources, tags and cell ids, and writes the JSON as nbformat does, so a clean
notebook passes through unchanged. Standard library only: git runs it on every
``git add`` of a notebook.

    python crmnb/run/strip.py < in.ipynb > out.ipynb      # as git's clean filter
    python -m crmnb.run.strip notebooks/*.ipynb           # strip files in place
    python -m crmnb.run.strip --check notebooks/*.ipynb   # exit 1 if any holds outputs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CELL_METADATA = ("execution", "papermill", "ExecuteTime", "collapsed", "scrolled")
NOTEBOOK_METADATA = ("papermill", "widgets")


def strip(nb: dict) -> dict:
    """Return the notebook without outputs, execution counts, injected parameters or run metadata."""
    cells = []
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {})
        if "injected-parameters" in meta.get("tags", []):
            continue  # papermill's cell: the parameters cell keeps the defaults
        cell = {**cell, "metadata": {k: v for k, v in meta.items() if k not in CELL_METADATA}}
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    meta = {k: v for k, v in nb.get("metadata", {}).items() if k not in NOTEBOOK_METADATA}
    if isinstance(meta.get("language_info"), dict) and "name" in meta["language_info"]:
        meta["language_info"] = {"name": meta["language_info"]["name"]}  # not the kernel's version of the day
    return {**nb, "cells": cells, "metadata": meta}


def strip_text(text: str) -> str:
    """Return a notebook's JSON text stripped; text that is not a notebook comes back unchanged."""
    try:
        nb = json.loads(text)
    except ValueError:  # a merge conflict or a half-written file: never lose it
        return text
    if not isinstance(nb, dict) or "cells" not in nb:
        return text
    return json.dumps(strip(nb), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Filter stdin to stdout, or strip (``--check``: only check) the notebook files named."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    files = [a for a in args if a != "--check"]
    if not files:
        data = sys.stdin.buffer.read().decode("utf-8")
        sys.stdout.buffer.write(strip_text(data).encode("utf-8"))
        return 0
    dirty = []
    for name in files:
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        clean = strip_text(text)
        if clean != text:
            dirty.append(name)
            if not check:
                path.write_text(clean, encoding="utf-8", newline="\n")
    for name in dirty:
        print(f"{'has outputs' if check else 'stripped'}: {name}", file=sys.stderr)
    return 1 if check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
