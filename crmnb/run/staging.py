"""A run writes into a folder of its own beside the case folder; what it made is moved into place when complete.

``<output_root>/.run-<case_id>-<pid>/<case_id>/`` holds the run's hand-offs, executed notebooks
and outputs while it runs. A run that ends well replaces the case folder's ``data/``,
``notebooks/`` and outputs with its own; a failed run replaces only ``notebooks/`` (the partly
executed notebook is what the analyst looks at) and keeps the last good report and hand-offs; a
killed run changes nothing there. Two runs of one case each write their own folder, so their files
never mix: the last to finish is the case's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from crmnb.run.records import pid_alive

PREFIX = ".run-"
"""How a run's own folder begins; the index page leaves out folders whose name starts with a dot."""


def stage_root(root: Path, case_id: str, pid: int | None = None) -> Path:
    """Return the output root of this process's run of ``case_id``: its case folder is below it."""
    return root / f"{PREFIX}{case_id}-{os.getpid() if pid is None else pid}"


def _owner(path: Path, case_id: str) -> int | None:
    """Return the process id a run folder of ``case_id`` belongs to, or None for any other folder."""
    head, _, pid = path.name.rpartition("-")
    return int(pid) if head == f"{PREFIX}{case_id}" and pid.isdigit() else None


def clear_stale(root: Path, case_id: str) -> list[Path]:
    """Remove the run folders of ``case_id`` left by runs whose process is gone (killed); return them."""
    gone = []
    if not root.is_dir():
        return gone
    for path in root.iterdir():
        pid = _owner(path, case_id)
        if pid is not None and path.is_dir() and not pid_alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    return gone


def _replace(src: Path, dest: Path, trash: Path) -> None:
    """Put ``src`` where ``dest`` is, whether either is a file or a folder."""
    if dest.is_dir() and not dest.is_symlink():
        old = trash / f".old-{dest.name}"
        os.replace(dest, old)
        os.replace(src, dest)
        shutil.rmtree(old, ignore_errors=True)
        return
    if src.is_dir() and (dest.exists() or dest.is_symlink()):
        dest.unlink()
    os.replace(src, dest)


def publish(stage: Path, folder: Path, complete: bool = True) -> None:
    """Move a run's files from its folder ``stage`` into the case folder, then remove its folder.

    ``complete``: everything it wrote; else only its executed notebooks.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if stage.is_dir():
        for item in sorted(stage.iterdir()):
            if complete or item.name == "notebooks":
                _replace(item, folder / item.name, stage.parent)
    discard(stage.parent)


def discard(stage_root_folder: Path) -> None:
    """Remove a run's own folder and whatever is left in it."""
    shutil.rmtree(stage_root_folder, ignore_errors=True)


def moved(path: Path, stage: Path, folder: Path) -> Path:
    """Return where a file written below ``stage`` is once moved into ``folder``."""
    try:
        return folder / Path(path).relative_to(stage)
    except ValueError:
        return Path(path)


def relocate(notebooks: Iterable[Path], stage_root_folder: Path, root: Path) -> None:
    """Rewrite executed notebooks to name the output root they are moved into, not the run's own folder:
    their recorded ``output_root`` parameter, papermill's output path and any path a cell printed."""
    pairs = {str(stage_root_folder): str(root)}
    pairs[json.dumps(str(stage_root_folder))[1:-1]] = json.dumps(str(root))[1:-1]  # as the notebook's JSON writes it
    for nb in notebooks:
        text = nb.read_text(encoding="utf-8")
        new = text
        for old, to in pairs.items():
            new = new.replace(old, to)
        if new != text:
            nb.write_text(new, encoding="utf-8")
