"""What a user sees of the two demo cases, recorded so that a change of the code's shape can prove it
changed nothing: every hand-off's content, every workbook cell (value and number format), the report's
visible text and the digests of its images.

    .venv/bin/python tests/golden.py          # record tests/golden/<case_id>.json from the current code

Record before a change meant to keep the outputs; ``tests/test_same_outputs.py`` compares after it.
A change that is meant to change what users see records anew, in the same commit, so the diff of the
recorded text shows what changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTACT_KEY_ENV = "CRMNB_CONTACT_KEY"  # crmnb.intake.protect's
GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = ("lead_conversion_uplift", "repeat_purchase_optimisation")
DEMO_SCALE, DEMO_SEED = 0.3, 7
BLAS_KERNEL = "Haswell"
"""The OpenBLAS kernel the recording is made with, and compared under (AVX2: any x86-64 machine of the last
decade). OpenBLAS picks its kernel by CPU, and the fits (BG/NBD, logistic regressions) then stop at points
that differ in the fourth digit: an AVX-512 Intel machine picks SkylakeX, an AMD one Haswell."""
NUMPY_WITHOUT = "X86_V4 AVX512_ICL AVX512_SPR"
"""numpy's own loops (exp, log, sums) the recording is made without: numpy, too, picks its loops by CPU, and
its AVX-512 ones give other last bits than its AVX2 ones, which the same flat fits carry into the fourth digit
(the recording made on an AVX-512 machine failed on an AVX2 one with OpenBLAS's kernel already pinned).
Without them every x86-64 machine with AVX2 runs the same loops; numpy ignores what a CPU lacks."""


def pin_blas_kernel() -> None:
    """Make this process (before numpy loads) and those started from here on (the kernels that run the steps) use
    :data:`BLAS_KERNEL` and numpy's loops without :data:`NUMPY_WITHOUT`, on an x86-64 machine that has AVX2 and
    where they are not chosen already."""
    try:
        avx2 = " avx2 " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        avx2 = False
    if avx2:
        os.environ.setdefault("OPENBLAS_CORETYPE", BLAS_KERNEL)
        os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", NUMPY_WITHOUT)


def run_demo_cases(tmp: Path) -> dict[str, Path]:
    """Run the demo cases on small demo data under ``tmp``; return each case's output folder by case id.

    The case files, shared defaults and department files are copied from parameters/, with only the
    data folder changed.
    """
    import yaml

    from crmnb.demo.generator import generate

    try:
        from crmnb.run.steps import run_case
    except ImportError:  # before the regrouping
        from crmnb.run.steps import run_case

    pin_blas_kernel()
    generate(tmp / "data", scale=DEMO_SCALE, seed=DEMO_SEED)
    # without the action ledgers a run of the workbook's own case files leaves beside them: a first run each
    shutil.copytree(ROOT / "parameters", tmp / "parameters", ignore=shutil.ignore_patterns("*.actions.yaml"))
    out = {}
    # contacts are keyed under a random key per run unless a secret is set: one fixed here, so that the
    # hand-offs holding the keys are the same from one recording to the next
    before = os.environ.get(CONTACT_KEY_ENV)
    os.environ[CONTACT_KEY_ENV] = "the recording's own contact key"
    try:
        for name in CASES:
            path = tmp / "parameters" / f"{name}.yaml"
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            raw["data"] = {"dir": str(tmp / "data")}
            path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
            out[raw["case_id"]] = run_case(path, tmp / "outputs", progress=None, index=False).report.parent
    finally:
        if before is None:
            os.environ.pop(CONTACT_KEY_ENV, None)
        else:
            os.environ[CONTACT_KEY_ENV] = before
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def handoff_digests(data: Path) -> dict[str, str]:
    """Digest every hand-off by its content: a table's dtypes and values, a JSON record's data."""
    import pandas as pd

    out = {}
    for f in sorted(data.rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(data).as_posix()
        if f.suffix == ".parquet":
            df = pd.read_parquet(f)
            text = "\n".join(f"{c}: {t}" for c, t in df.dtypes.astype(str).items()) + "\n" + df.to_csv()
            out[rel] = _sha(text.encode())
        elif f.suffix == ".json":
            out[rel] = _sha(
                json.dumps(json.loads(f.read_text(encoding="utf-8")), sort_keys=True, ensure_ascii=False).encode()
            )
        else:
            out[rel] = _sha(f.read_bytes())
    return out


def workbook_cells(path: Path) -> dict[str, list[str]]:
    """List every non-empty cell of every sheet as 'A1 value | number format'."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    sheets = {}
    for sheet in wb.worksheets:
        rows = []
        for row in sheet.iter_rows():
            for cell in row:
                if cell.value is not None:
                    rows.append(f"{cell.coordinate} {cell.value!r} | {cell.number_format}")
        sheets[sheet.title] = rows
    return sheets


class _Text(HTMLParser):
    """The text a reader sees, one line per block; the digests of inline images."""

    BLOCKS = {
        "p",
        "div",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "caption",
        "figcaption",
        "br",
        "table",
        "section",
        "header",
        "footer",
        "summary",
        "details",
        "ul",
        "ol",
        "dt",
        "dd",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.images: list[str] = []
        self.skip = 0

    def _flush(self):
        line = re.sub(r"\s+", " ", "".join(self.current)).strip()
        if line:
            self.lines.append(line)
        self.current = []

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self.skip += 1
        if tag in self.BLOCKS:
            self._flush()
        if tag in ("td", "th"):
            self.current.append(" | ")
        if tag == "img":
            src = dict(attrs).get("src") or ""
            if src.startswith("data:"):
                self.images.append(_sha(base64.b64decode(src.split(",", 1)[1])))
            alt = dict(attrs).get("alt")
            if alt:
                self.current.append(f"[image: {alt}]")

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self.skip -= 1
        if tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data):
        if not self.skip:
            self.current.append(data)


GENERATED = re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?\b")


def report_text(path: Path) -> tuple[list[str], list[str]]:
    """Return the report's visible text (the generation time blanked) and its images' digests."""
    p = _Text()
    p.feed(path.read_text(encoding="utf-8"))
    p._flush()
    return [GENERATED.sub("<time>", line) for line in p.lines], p.images


def snapshot(folder: Path) -> dict:
    """Everything of one case's outputs that the snapshot compares."""
    text, images = report_text(folder / "report.html")
    return {
        "handoffs": handoff_digests(folder / "data"),
        "workbook": workbook_cells(folder / "tables.xlsx"),
        "report_text": text,
        "report_images": images,
    }


def record() -> None:
    """Run the demo cases with the current code and write tests/golden/<case_id>.json."""
    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crmnb-golden-") as tmp:
        for case_id, folder in run_demo_cases(Path(tmp)).items():
            target = GOLDEN / f"{case_id}.json"
            target.write_text(json.dumps(snapshot(folder), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            print(f"recorded {target.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tests"))
    record()
