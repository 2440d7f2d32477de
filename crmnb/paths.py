"""Locate the workbook, case files and outputs from wherever a notebook runs."""

from __future__ import annotations

from pathlib import Path


def workbook_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above ``start`` that holds ``parameters/``.

    Notebooks run with their own folder as working directory in JupyterLab, and
    with the repository root under papermill; both find the same root. Falls back
    to ``start`` (the working directory) when no such folder exists.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "parameters").is_dir():
            return folder
    return here


def resolve(path: str | Path, start: Path | None = None) -> Path:
    """Return ``path`` made absolute: as given, else from the working directory, else from the workbook root."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    here = (start or Path.cwd()).resolve()
    if (here / p).exists():
        return (here / p).resolve()
    return (workbook_root(here) / p).resolve()


def bundled_cjk_font() -> Path | None:
    """Return the Noto Sans SC file installed with crmnb's dependencies, or None when it is absent."""
    try:
        from importlib.resources import files

        path = Path(str(files("pylopdf_fonts_zh_cn") / "NotoSansSC-Regular.otf"))
    except (ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None
