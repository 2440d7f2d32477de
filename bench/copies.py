"""A K-times larger demo data set as K copies of one, with distinct ids: how the bench builds 1000x from 100x
(crmnb demo-data at that size would hold the whole data set in memory at once).

In copy ``i`` (0 … K-1) every id column (``*_id``, campaign ids aside) gets the suffix ``_i``, a phone the digit(s) ``i`` appended and an
e-mail ``i`` before its ``@``, so that duplicate customers stay duplicates within a copy and never merge
across copies; campaign ids and all dates are kept. Each file is written copy after copy, one streaming
DuckDB query per copy appended to the output, so that memory stays bounded whatever the size (a single
query over the union of all copies ran out of memory at 2 GB). DuckDB writes no byte-order mark.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from bench.measuring import GB, BenchError, measure, say

# Every column named ``*_id`` is an id and gets its copy's suffix, so that a table added to the demo later
# (the e-mail events' event, e-mail and recipient ids) is replicated with distinct keys too; campaigns are
# shared by every copy, so their ids are kept.
KEPT_IDS = frozenset({"campaign_id"})


def is_id(column: str) -> bool:
    """Return whether ``column`` holds an id that must differ between copies."""
    return column.endswith("_id") and column not in KEPT_IDS


CSV_OPTIONS = "header=true, delim=',', quote='\"', escape='\"'"


def quote(text: str) -> str:
    """Return ``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def column_expr(column: str, copy: int) -> str:
    """Return the SQL that gives ``column`` its value in copy number ``copy``."""
    c, r = '"' + column.replace('"', '""') + '"', quote(str(copy))
    if is_id(column):
        return f"CASE WHEN {c} IS NULL OR {c} = '' THEN {c} ELSE {c} || '_' || {r} END AS {c}"
    if column == "phone":
        return f"CASE WHEN {c} IS NULL OR {c} = '' THEN {c} ELSE {c} || {r} END AS {c}"
    if column == "email":
        return f"CASE WHEN {c} IS NULL OR {c} = '' THEN {c} ELSE replace({c}, '@', {r} || '@') END AS {c}"
    return c


def copy_file(con, src: Path, dst: Path, copies: int) -> None:
    """Write ``dst`` as ``copies`` copies of the CSV ``src``, header once, copy after copy."""
    rel = f"read_csv({quote(str(src))}, all_varchar=true, {CSV_OPTIONS})"
    columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
    part = dst.with_name(dst.name + ".part")
    with open(dst, "wb") as out:
        for i in range(copies):
            select = ", ".join(column_expr(c, i) for c in columns)
            header = "true" if i == 0 else "false"
            con.execute(
                f"COPY (SELECT {select} FROM {rel}) TO {quote(str(part))} "
                f"(HEADER {header}, DELIMITER ',', QUOTE '\"', ESCAPE '\"')"
            )
            with open(part, "rb") as piece:
                shutil.copyfileobj(piece, out, 16 * 1024 * 1024)
            part.unlink()


def replicate(src: Path, dst: Path, copies: int, threads: int = 2, memory_limit: str = "2GB") -> None:
    """Write every CSV of ``src`` into ``dst`` as ``copies`` copies with distinct ids; other files as they are."""
    import duckdb  # only the bench's 1000x needs it

    dst.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET memory_limit = {quote(memory_limit)}")
    con.execute("SET preserve_insertion_order = true")  # rows in export order, as crmnb keeps them
    for f in sorted(src.glob("*.csv")):
        copy_file(con, f, dst / f.name, copies)
        print(f"{f.name}: {copies} copies", flush=True)
    for f in sorted(src.glob("*.xlsx")):
        shutil.copy2(f, dst / f.name)
    con.close()


def build(src: Path, dst: Path, copies: int, rows: dict, log: Path, env: dict, cwd: Path) -> None:
    """Build ``dst`` as ``copies`` copies of ``src`` (in a subprocess), through ``dst``.partial renamed at the end.

    Refuses, naming the figures, when the disk holds less than the copies need plus room for the
    runs' own outputs. Writes ``replicated.json`` with the rows per table, as planted.json has them.
    """
    size = sum(f.stat().st_size for f in src.iterdir() if f.is_file())
    need = size * copies * 1.2 + 20 * GB
    free = shutil.disk_usage(dst.parent).free
    if free < need:
        raise BenchError(
            f"{dst.name} not built: {free / GB:.0f} GB free on its disk, {need / GB:.0f} GB needed "
            f"({copies} copies of {size / GB:.1f} GB and 20 GB for the runs' outputs)"
        )
    partial = dst.with_name(dst.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    say(f"  building {dst} as {copies} copies of {src.name} with distinct ids (once, not timed) …")
    m = measure(
        f"{copies} copies of {src}",
        [sys.executable, "-m", "bench.copies", str(src), str(partial), str(copies)],
        log,
        cwd=cwd,
        env=env,
        echo_steps=False,
    )
    csvs = {f.stem for f in src.glob("*.csv")}
    scaled = {t: n * copies if t in csvs else n for t, n in rows.items()}
    (partial / "replicated.json").write_text(
        json.dumps({"from": str(src), "copies": copies, "rows": scaled}, indent=1) + "\n", encoding="utf-8"
    )
    partial.rename(dst)
    say(f"    done in {m['seconds']:.0f} s")


if __name__ == "__main__":
    replicate(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
