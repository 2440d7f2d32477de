"""The ``crmnb`` command: demo data, validation, case runs, report rebuilds, batches and new case files."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from crmnb.errors import CrmnbError


def _demo_data(args: argparse.Namespace) -> int:
    from crmnb.demo.generator import generate

    out = Path(args.out)
    summary = generate(
        out, scale=args.scale, seed=args.seed, progress=lambda m: print(f"demo-data: {m}", file=sys.stderr, flush=True)
    )
    if getattr(args, "later", False):
        from crmnb.demo.later import extend

        later = extend(out, args.seed)
        print(
            f"demo-data: the later extract (export {later['export_date']}): {later['new_leads']:,} new leads, "
            f"{len(later['restated']['opportunities'])} restated deals",
            file=sys.stderr,
        )
    rows = summary.get("rows", {})
    print(f"demo data written to {out.resolve()} ({sum(rows.values()):,} rows in {len(rows)} tables)")
    if getattr(args, "sqlite", None):
        from crmnb.demo.generator import to_sqlite

        db = Path(args.sqlite)
        loaded = to_sqlite(out, db)
        print(
            f"demo data loaded into {db.resolve()} ({sum(loaded.values()):,} rows in {len(loaded)} tables); "
            f"a case reads it with data.sql_url: sqlite:///{db.resolve()}"
        )
    return 0


def _validate(args: argparse.Namespace) -> int:
    from crmnb.run.preflight import validate_case

    try:
        return validate_case(args.case)
    except CrmnbError as exc:
        print(f"crmnb validate: {exc}")
        return 1
    except Exception as exc:  # never a bare traceback at the command line
        print(f"crmnb validate: unexpected {type(exc).__name__}: {exc}")
        return 1


def _run(args: argparse.Namespace) -> int:
    from crmnb.paths import resolve
    from crmnb.present.outputs import every_output
    from crmnb.run.steps import run_case

    res = run_case(args.case, args.output_root, resume=args.resume, index=not args.no_index)
    if res.status == "skipped":
        print(f"{res.case.case_id}: skipped: unchanged since {res.skipped_since}")
    else:
        print(f"{res.case.case_id}: done in {res.seconds:.0f} s")
    for name, path in res.outputs.items():
        print(f"  {every_output()[name].key + ':':<10}{path}")
    if not args.no_index:
        print(f"  {'index:':<10}{resolve(args.output_root) / 'index.html'}")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from crmnb.run.batch import run_batch, summary_table

    if args.cluster:  # Dask is imported only here: a batch on this machine never loads it
        from crmnb.run.cluster import run_cluster_batch

        res = run_cluster_batch(
            args.paths, args.cluster, department=args.department, resume=args.resume, output_root=args.output_root
        )
    else:
        res = run_batch(
            args.paths,
            department=args.department,
            jobs=args.jobs or 1,
            resume=args.resume,
            output_root=args.output_root,
            due=args.due,
        )
    print(summary_table(res.jobs))
    print(f"index: {res.index}")
    if args.mail_on:
        _mail_alerts(args, res.jobs)
    return 0 if res.ok else 1


def _mail_alerts(args: argparse.Namespace, jobs) -> None:
    from crmnb.paths import resolve
    from crmnb.run.alerts import MailSettings, send_alerts

    host, _, port = args.smtp.partition(":")
    mail = MailSettings(args.mail_on, tuple(args.to), args.sender, host or "localhost", int(port or 25),
                        args.starttls, args.user, os.environ.get("CRMNB_SMTP_PASSWORD"))  # fmt: skip
    sent = send_alerts(jobs, resolve(args.output_root), mail)
    print(
        f"mailed: {', '.join(sent)}" if sent else f"mailed: none (no case called for it under --mail-on {args.mail_on})"
    )


def _new(args: argparse.Namespace) -> int:
    from crmnb.run.scaffold import new_case

    path, todo = new_case(
        args.case_id,
        args.department,
        title=args.title,
        owner=args.owner,
        metric=args.metric,
        data_dir=args.data_dir,
        parameters_dir=args.parameters_dir,
        language=args.language,
    )
    print(f"wrote {path}")
    if todo:
        print("  fill in: " + ", ".join(todo))
    print(f"  then:    crmnb validate {path}")
    return 0


def _email(args: argparse.Namespace) -> int:
    from crmnb.present.mail import build_message, send, write_eml

    msg = build_message(Path(args.report), args.to, args.sender, args.subject)
    if args.eml:
        path = write_eml(msg, Path(args.eml))
        print(f"message written to {path} ({len(msg.as_bytes()) / 1024:,.0f} KB); open it in a mail client to send")
        return 0
    host, _, port = args.smtp.partition(":")
    send(
        msg,
        host or "localhost",
        int(port or 25),
        starttls=args.starttls,
        user=args.user,
        password=os.environ.get("CRMNB_SMTP_PASSWORD"),
    )
    print(f"sent {Path(args.report)} to {', '.join(args.to)} through {host or 'localhost'}:{port or 25}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from crmnb.params import load_case
    from crmnb.paths import resolve
    from crmnb.run.history import history_table, list_runs

    case = load_case(resolve(args.case))
    folder = resolve(args.output_root) / case.case_id
    if not list_runs(folder):
        print(f"{case.case_id}: no runs recorded in {folder / 'runs'}; run `crmnb run {args.case}` first")
        return 1
    print(history_table(folder, case.language))
    return 0


def _step_problem(nb: Path) -> str | None:
    """Return why an executed step notebook cannot go into a report (unreadable, never run, failed), or None."""
    import nbformat

    try:
        cells = nbformat.read(nb, as_version=4).cells
    except (OSError, ValueError) as exc:
        return f"{nb}: cannot be read ({exc})"
    code = [c for c in cells if c.cell_type == "code"]
    for i, cell in enumerate(cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return f"step {nb.stem} failed when it last ran (cell {i}); fix it and run the case again"
    if code and not any(c.get("outputs") or c.get("execution_count") for c in code):
        return f"{nb}: has not been executed (no outputs)"
    return None


def _not_rebuildable(case_file: str, ws, books: list[Path], expected: list[str], folder: Path) -> str | None:
    """Return why the case's report cannot be rebuilt from what its last run left, or None when it can."""
    from crmnb.run.records import read_record, record_status

    again = f"run `crmnb run {case_file}` first"
    if not books:
        return f"{ws.case_id} has not been run: no executed notebooks in {folder}; {again}"
    if record_status(read_record(ws.folder)) == "running":
        return f"{ws.case_id} is being run right now ({ws.folder / 'run.json'}); wait for it to finish"
    missing = sorted(set(expected) - {b.name for b in books})
    if missing:
        return f"{ws.case_id}: steps not run yet: {', '.join(Path(m).stem for m in missing)}; {again}"
    summary = ws.data / "report" / "summary.json"
    if not summary.is_file():
        return f"{ws.case_id}: step 7's summary is missing ({summary}); {again}"
    return next(filter(None, map(_step_problem, books)), None)


def _report(args: argparse.Namespace) -> int:
    from crmnb.handoffs import Workspace
    from crmnb.params import load_case
    from crmnb.paths import resolve
    from crmnb.present.outputs import build_outputs, every_output
    from crmnb.run.records import notebooks_dir, step_notebooks

    file = resolve(args.case)
    case = load_case(file)
    root = resolve(args.output_root)
    ws = Workspace(root, case.case_id)
    folder = Path(args.notebooks) if args.notebooks else ws.folder / "notebooks"
    books = step_notebooks(folder)
    expected = [p.name for p in step_notebooks(notebooks_dir(file))]
    problem = _not_rebuildable(args.case, ws, books, expected, folder)
    if problem:
        print(f"crmnb report: {problem}", file=sys.stderr)
        return 1
    outputs = build_outputs(case, books, ws)
    print(f"{case.case_id}: rebuilt from {folder} without running a step")
    for name, path in outputs.items():
        print(f"  {every_output()[name].key + ':':<10}{path}")
    if not args.no_index:
        from crmnb.run.index import write_index

        print(f"  {'index:':<10}{write_index(root)}")
    return 0


def _terminate(signum, frame) -> None:
    """Stop on SIGTERM as on Ctrl-C, so a running notebook's kernel is shut down and the run recorded."""
    raise KeyboardInterrupt


def _in_main_thread() -> bool:
    """Return True in the main thread, the only one that may set signal handlers."""
    return threading.current_thread() is threading.main_thread()


def _add_demo_data(sub) -> None:
    d = sub.add_parser("demo-data", help="generate the demo CRM exports")
    d.add_argument("--out", default="data/demo", help="folder to write (default: data/demo)")
    d.add_argument("--scale", type=float, default=1.0, help="size multiplier (default 1: a few thousand customers)")
    d.add_argument("--seed", type=int, default=20250701)
    d.add_argument("--sqlite", metavar="PATH", help="also load the exports into this SQLite database file")
    d.add_argument(
        "--later",
        action="store_true",
        help="write the same company's later extract (export 2026-06-30): three more months, restated deals, "
        "one action that worked and one that did not (see planted.json's 'later')",
    )
    d.set_defaults(func=_demo_data)


def _add_validate(sub) -> None:
    v = sub.add_parser("validate", help="check a case file and its data without running notebooks")
    v.add_argument("case")
    v.set_defaults(func=_validate)


def _add_run(sub) -> None:
    from crmnb.present.outputs import OUTPUTS

    r = sub.add_parser(
        "run",
        help=f"run a case end to end: notebooks, {', '.join(OUTPUTS)}",
        epilog="writes into <output-root>/<case_id>/: the executed notebooks, "
        + "; ".join(f"{name}, {o.purpose}" for name, o in OUTPUTS.items()),
    )
    r.add_argument("case")
    r.add_argument("--output-root", default="outputs")
    r.add_argument(
        "--resume",
        action="store_true",
        help="skip the case when its settings, data and code are unchanged since its last successful run",
    )
    r.add_argument("--no-index", action="store_true", help=argparse.SUPPRESS)  # crmnb batch writes the index once
    r.set_defaults(func=_run)


def _add_report(sub) -> None:
    from crmnb.present.outputs import OUTPUTS

    r = sub.add_parser(
        "report",
        help=f"rebuild {', '.join(OUTPUTS)} from a case's executed notebooks and hand-offs, without re-running",
        epilog="reads <output-root>/<case_id>/notebooks/ and data/ as the case's last run left them (or the "
        "notebooks given with --notebooks, e.g. after editing and running one in JupyterLab)",
    )
    r.add_argument("case")
    r.add_argument("--output-root", default="outputs")
    r.add_argument("--notebooks", metavar="DIR", help="take the executed notebooks from DIR instead")
    r.add_argument("--no-index", action="store_true", help="do not refresh <output-root>/index.html")
    r.set_defaults(func=_report)


def _add_batch(sub) -> None:
    b = sub.add_parser(
        "batch",
        help="run every case file in a folder, a few at a time or on a Dask cluster, with a summary and index",
        epilog="each case runs as `crmnb run` in a process of its own: on this machine (--jobs), or on a worker "
        "of the Dask cluster (--cluster), one task per case. A failing case (or a worker that dies) fails that "
        "case only; a case past its timeout_minutes is stopped. With --cluster, the output root, the case files, "
        "the notebooks and the data must be on storage every worker sees at the same path (checked before any "
        "case starts), and each worker runs as many cases at once as it has threads (dask worker --nthreads).",
    )
    b.add_argument(
        "paths",
        nargs="+",
        metavar="path",
        help="folders of case files (files starting with '_' are defaults, not cases) or case files",
    )
    b.add_argument("--department", help="only the cases of this department (as written in the case files)")
    b.add_argument("--jobs", "-j", type=int, help="cases to run at the same time on this machine (default 1)")
    b.add_argument(
        "--cluster",
        metavar="tcp://HOST:PORT",
        help="run the cases on the workers of the Dask scheduler at this address (or scheduler file) instead",
    )
    b.add_argument(
        "--resume",
        action="store_true",
        help="skip cases whose settings, data and code are unchanged since their last successful run",
    )
    b.add_argument("--output-root", default="outputs")
    b.add_argument(
        "--due",
        action="store_true",
        help="run only the cases due for review: never run, or their review_every is up since their last good run",
    )
    b.add_argument(
        "--mail-on",
        choices=("alert", "failure"),
        help="after the batch, mail a case's report only when its run failed (failure), or also when its verdict "
        "changed or an action turned worse or overdue (alert); needs --to",
    )
    b.add_argument("--to", action="append", default=[], help="recipient of --mail-on (repeat for several)")
    b.add_argument("--from", dest="sender", default="crmnb@localhost", help="sender address of --mail-on")
    b.add_argument("--smtp", default="localhost:25", help="SMTP server host:port for --mail-on (default localhost:25)")
    b.add_argument("--starttls", action="store_true", help="upgrade the SMTP connection with STARTTLS")
    b.add_argument("--user", help="SMTP user; the password is read from CRMNB_SMTP_PASSWORD")
    b.set_defaults(func=_batch)


def _add_new(sub) -> None:
    n = sub.add_parser("new", help="write a new case file, every key explained, ready to fill in")
    n.add_argument("case_id", help="lower-case id; names the case file and the output folder")
    n.add_argument("--department", required=True, help="the department whose CRM use is analysed")
    n.add_argument("--title", help="the case's title (default: from the id)")
    n.add_argument("--owner", help="who owns the case")
    n.add_argument("--metric", default="lead_conversion_rate", help="the goal metric (default lead_conversion_rate)")
    n.add_argument("--data-dir", help="folder of the CRM exports (default data/<case_id>)")
    n.add_argument("--language", choices=("en", "zh"), help="language of the report (default: the defaults')")
    n.add_argument("--parameters-dir", default=None, help="where to write (default: the workbook's parameters/)")
    n.set_defaults(func=_new)


def _add_email(sub) -> None:
    e = sub.add_parser("email", help="send a case's report as an HTML e-mail with its other outputs attached")
    e.add_argument("report", help="outputs/<case_id>/report.html")
    e.add_argument("--to", action="append", required=True, help="recipient (repeat for several)")
    e.add_argument("--from", dest="sender", default="crmnb@localhost", help="sender address")
    e.add_argument("--subject", help="subject (default: the report's title)")
    e.add_argument("--smtp", default="localhost:25", help="SMTP server host:port (default localhost:25)")
    e.add_argument("--starttls", action="store_true", help="upgrade the connection with STARTTLS")
    e.add_argument("--user", help="SMTP user; the password is read from CRMNB_SMTP_PASSWORD")
    e.add_argument("--eml", help="write the message to this .eml file instead of sending it")
    e.set_defaults(func=_email)


def _add_history(sub) -> None:
    h = sub.add_parser("history", help="list a case's past runs: when, status, goal KPI, verdict, change, record")
    h.add_argument("case")
    h.add_argument("--output-root", default="outputs")
    h.set_defaults(func=_history)


COMMANDS = (_add_demo_data, _add_validate, _add_run, _add_report, _add_batch, _add_history, _add_new, _add_email)
"""Each subcommand's arguments, in the order ``crmnb --help`` lists them."""


def parser() -> argparse.ArgumentParser:
    """Return the command line's parser, every subcommand added."""
    p = argparse.ArgumentParser(prog="crmnb", description="CRM case analysis workbook")
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def _dispatch(args: argparse.Namespace) -> int:
    """Run the chosen subcommand; turn its known errors and interruptions into exit codes."""
    try:
        return args.func(args)
    except CrmnbError as exc:
        print(f"crmnb: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head or less that closed early
        return 0
    except OSError as exc:  # a folder or file that cannot be written: one line naming it, never a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"crmnb: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crmnb: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    """Run the crmnb command line."""
    from crmnb.run.kernel import skip_unused_slow_imports

    skip_unused_slow_imports()  # `crmnb report` and `email` read notebooks too: 1.5 s of an unused grammar
    p = parser()
    args = p.parse_args(argv)
    if args.command == "batch" and args.jobs is not None and args.jobs < 1:
        p.error("--jobs must be 1 or more")
    if args.command == "batch" and args.due and args.cluster:
        p.error("--due picks the cases on this machine; with --cluster, give the due cases' files instead")
    if args.command == "batch" and args.mail_on and not args.to:
        p.error("--mail-on needs --to: whom to mail")
    if args.command == "batch" and args.jobs is not None and args.cluster:
        p.error("--jobs and --cluster do not go together: on a cluster, each worker's threads set how many cases run")
    previous = signal.signal(signal.SIGTERM, _terminate) if args.command == "run" and _in_main_thread() else None
    try:
        return _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
