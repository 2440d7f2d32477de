"""The floor: a case's analyses in one plain Python process, without a kernel or notebook machinery.

    python bench/floor.py CASE_FILE OUTPUT_ROOT [NOTEBOOKS_DIR]

Reads each step notebook's JSON and executes its code cells in order with ``exec()``, one
namespace per step, as the notebook would run them:

- the ``parameters`` cell is replaced by ``case_file``, ``output_root`` and ``case = None``;
- lines that are IPython magics or shell escapes (``%…``, ``!…``) are skipped;
- a cell's last expression is evaluated and displayed, and ``display(...)`` does the same:
  its ``_repr_mimebundle_``, ``_repr_html_`` and ``repr`` are computed, as IPython's display
  formatter computes them, so formatting tables and charts is paid as the notebook pays it.

After the first step, the objects made so far (the libraries') go to the collector's permanent
generation, as the runner's kernel puts them there once it has imported them. Then the workbook is
written with ``crmnb.present.workbook.build_workbook(case, ws)``. Per-step seconds
go to stderr as ``step i/N NAME done in X s``. A failing cell stops the run with exit status 1,
naming the notebook and the cell.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import ast  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

MAGIC = ("%", "!")


def show(value: object) -> None:
    """Format ``value`` for display the way IPython's display formatter does, and drop the result."""
    if value is None:
        return
    bundle = {}
    if hasattr(value, "_repr_mimebundle_"):
        bundle = value._repr_mimebundle_() or {}
        if isinstance(bundle, tuple):
            bundle = bundle[0]
    if "text/html" not in bundle and hasattr(value, "_repr_html_"):
        value._repr_html_()
    if "text/plain" not in bundle:
        repr(value)


def display(*values: object, **_kwargs) -> None:
    """Stand-in for ``IPython.display.display``: format each value, show nothing."""
    for v in values:
        show(v)


def code_cells(notebook: Path) -> list[tuple[int, str, list[str]]]:
    """Return (1-based cell number, source, tags) for each code cell of ``notebook``, in order."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cells = []
    for i, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        cells.append((i, src, list(cell.get("metadata", {}).get("tags", []))))
    return cells


def run_cell(src: str, namespace: dict, filename: str) -> None:
    """Execute one cell's source in ``namespace``; evaluate and display its last expression."""
    src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(MAGIC))
    tree = ast.parse(src, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not src.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        show(eval(compile(last, filename, "eval"), namespace))


def run_notebook(notebook: Path, parameters: dict) -> dict:
    """Execute ``notebook``'s code cells in a fresh namespace and return it; raise RuntimeError naming
    a failing cell."""
    namespace = {"__name__": "__main__", "display": display}
    for number, src, tags in code_cells(notebook):
        if "parameters" in tags:
            namespace.update(parameters)
            continue
        try:
            run_cell(src, namespace, f"{notebook.name}[cell {number}]")
        except Exception as exc:
            raise RuntimeError(f"{notebook.name}, cell {number}: {type(exc).__name__}: {exc}") from exc
    return namespace


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    case_file = str(Path(argv[0]).resolve())
    output_root = str(Path(argv[1]).resolve())
    folder = Path(argv[2]).resolve() if len(argv) == 3 else Path(__file__).resolve().parent.parent / "notebooks"
    books = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        print(f"floor: no step notebooks in {folder}", file=sys.stderr)
        return 1
    os.chdir(folder)  # where the runner starts its kernel
    os.environ.setdefault("MPLBACKEND", "Agg")
    from crmnb.run.kernel import skip_unused_slow_imports

    skip_unused_slow_imports()  # as the runner's kernel does: nbformat's jsonschema without its IRI grammar
    parameters = {"case_file": case_file, "output_root": output_root, "case": None}
    try:
        for i, nb in enumerate(books, start=1):
            t = time.perf_counter()
            run_notebook(nb, parameters)
            if i == 1:  # the libraries are loaded: out of the collector's way, as the runner's kernel does
                import gc

                gc.freeze()
            print(
                f"step {i}/{len(books)} {nb.stem} done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True
            )
        t = time.perf_counter()
        import crmnb
        import crmnb.present.report

        case, ws = crmnb.open_case(case_file, output_root)
        crmnb.present.workbook.build_workbook(case, ws)
        print(f"workbook done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    except Exception as exc:
        traceback.print_exc()
        print(f"floor: failed in {exc}", file=sys.stderr)
        return 1
    print(
        f"floor: done in {time.perf_counter() - T0:.1f} s (since the interpreter reached this script)", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
