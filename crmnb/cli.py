"""The ``crmnb`` command: demo data, validation and case runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import CrmnbError


def _demo_data(args: argparse.Namespace) -> int:
    from .demo import generate

    out = Path(args.out)
    summary = generate(out, scale=args.scale, seed=args.seed,
                       progress=lambda m: print(f"demo-data: {m}", file=sys.stderr, flush=True))
    rows = summary.get("rows", {})
    print(f"demo data written to {out.resolve()} ({sum(rows.values()):,} rows in {len(rows)} tables)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .io import intake, read_export
    from .params import load_case
    from .schema import TABLES

    case = load_case(args.case)
    print(f"{args.case}: case file valid ({case.case_id}, {case.title})")
    problems = 0
    for name in TABLES:
        path = case.data_path(name)
        try:
            got = intake(read_export(path, name), name, path)
        except CrmnbError as exc:
            print(f"  {name}: ERROR {exc}")
            problems += 1
            continue
        bad = len(got.issues)
        print(f"  {name}: {len(got.table):,} rows from {path.name}" + (f", {bad} unreadable values" if bad else ""))
    return 1 if problems else 0


def _run(args: argparse.Namespace) -> int:
    from .runner import run_case

    res = run_case(args.case, args.output_root)
    print(f"{res.case.case_id}: done in {res.seconds:.0f} s")
    print(f"  report:   {res.report}")
    print(f"  workbook: {res.workbook}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the crmnb command line."""
    p = argparse.ArgumentParser(prog="crmnb", description="CRM case analysis workbook")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo-data", help="generate the demo CRM exports")
    d.add_argument("--out", default="data/demo", help="folder to write (default: data/demo)")
    d.add_argument("--scale", type=float, default=1.0, help="size multiplier (default 1: a few thousand customers)")
    d.add_argument("--seed", type=int, default=20250701)
    d.set_defaults(func=_demo_data)

    v = sub.add_parser("validate", help="check a case file and its data without running notebooks")
    v.add_argument("case")
    v.set_defaults(func=_validate)

    r = sub.add_parser("run", help="run a case end to end: notebooks, report.html, tables.xlsx")
    r.add_argument("case")
    r.add_argument("--output-root", default="outputs")
    r.set_defaults(func=_run)

    args = p.parse_args(argv)
    try:
        return args.func(args)
    except CrmnbError as exc:
        print(f"crmnb: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head or less that closed early
        return 0
    except KeyboardInterrupt:
        print("crmnb: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
