"""The batch options of the ``dicomtui`` command (``--batch``, ``--report``, ``--sql``...).

Imports nothing beyond the standard library until a batch option is used, so the
command works (and says what to install) without the ``batch`` extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import dataclass

EXTRA_MODULES = {"dask": "dask", "distributed": "distributed", "pyarrow": "pyarrow", "duckdb": "duckdb"}
EXIT_OK, EXIT_INPUT_PROBLEM, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("batch analysis (needs: pip install '.[batch]' in the dicomtui checkout; see docs/batch.md)")
    group.add_argument("--batch", metavar="OUTDIR",
                       help="analyse every CAPTURE (files, directories, glob patterns; gzip or not) as one "
                            "capture on Dask, into Parquet tables in OUTDIR; inputs already there are skipped")
    group.add_argument("--report", metavar="OUTDIR",
                       help="print the canned reports over OUTDIR's tables (DuckDB); see --sql")
    group.add_argument("--sql", metavar="QUERY",
                       help="with --report: run QUERY instead; tables: connections, associations, messages, "
                            "expert, timing, inputs, input_problems")
    group.add_argument("--csv", action="store_true", help="with --report: CSV instead of text tables "
                                                          "(--json gives JSON)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="with --batch: run on this Dask scheduler (e.g. tcp://host:8786) instead of a "
                            "local cluster; its workers must see the same paths")
    group.add_argument("--workers", type=int, metavar="N",
                       help="with --batch and no --scheduler: local worker processes (default: one per core, at most "
                            "one per 256 MiB of new input; with one, the batch runs in this process)")
    group.add_argument("--run-files", type=int, default=0, metavar="N",
                       help="with --batch: cut the new inputs, in time order, into runs of about N files, each "
                            "read as one capture and merged on its own (bounds the merge's memory; connections "
                            "are cut where runs are); default: all new inputs are one capture")
    group.add_argument("--groups", type=int, metavar="N",
                       help="with --batch: flow groups decoded in parallel (default: twice the worker threads)")


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.batch or args.report)


def missing_modules() -> list[str]:
    return [name for name, module in EXTRA_MODULES.items() if importlib.util.find_spec(module) is None]


@dataclass(frozen=True)
class BatchCommand:
    """``--batch OUTDIR`` or ``--report OUTDIR``, checked (``check`` builds it from the command line)."""

    outdir: str | None = None  # --batch
    report: str | None = None  # --report
    sql: str | None = None
    output: str = "text"  # --report's: text, csv or json
    captures: tuple[str, ...] = ()
    disabled: frozenset[str] = frozenset()
    scheduler: str | None = None
    workers: int | None = None
    groups: int | None = None
    run_files: int = 0


def check(args: argparse.Namespace, parser: argparse.ArgumentParser, captures: list[str]) -> BatchCommand:
    """The batch options checked and typed (``parser.error`` exits on a bad one)."""
    if args.batch and args.report:
        parser.error("--batch and --report are separate steps: run --batch, then --report")
    if (args.sql or args.csv) and not args.report:
        parser.error("--sql and --csv go with --report OUTDIR")
    if args.csv and args.json:
        parser.error("--csv and --json: choose one")
    for name in ("summary", "expert", "export", "list_plugins", "stats"):
        if getattr(args, name, None):
            parser.error(f"--{name.replace('_', '-')} does not combine with --batch/--report")
    for name in ("anonymize", "flow"):
        if getattr(args, name, None) is not None:
            parser.error(f"--{name} does not combine with --batch/--report")
    if args.report:
        return BatchCommand(report=args.report, sql=args.sql,
                            output="json" if args.json else "csv" if args.csv else "text")
    if not captures:
        parser.error("--batch needs captures: files, directories or glob patterns")
    if "-" in captures:
        parser.error("--batch reads files, not standard input")
    if args.workers is not None and args.workers < 1 or args.groups is not None and args.groups < 1 \
            or args.run_files < 0:
        parser.error("--workers and --groups must be at least 1, --run-files at least 0")
    return BatchCommand(outdir=args.batch, captures=tuple(captures), disabled=frozenset(args.disable_plugin),
                        scheduler=args.scheduler, workers=args.workers, groups=args.groups,
                        run_files=args.run_files)


def run(command: BatchCommand, config, make_host) -> int:
    """``config`` (for --batch) and ``make_host``: the command line's own (it is the composition root)."""
    missing = missing_modules()
    if missing:
        print(f"dicomtui: batch mode needs the batch extra (missing: {', '.join(missing)}); "
              "install it with: pip install '.[batch]' in the dicomtui checkout", file=sys.stderr)
        return EXIT_USAGE
    if command.report:
        return _report(command)
    return _batch(command, config, make_host)


def _report(command: BatchCommand) -> int:
    from .report import ReportError, run_reports

    try:
        text = run_reports(command.report, command.sql, command.output)
    except ReportError as exc:
        from dicomtui.core.base.safe_text import safe_text

        print(f"dicomtui: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE if command.sql else EXIT_INPUT_PROBLEM
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def _batch(command: BatchCommand, config, make_host) -> int:
    from dicomtui.core.base.safe_text import safe_text

    from .runner import BatchRefused, run_batch

    try:
        outcome = run_batch(command.outdir, list(command.captures), make_host, config, disabled=set(command.disabled),
                            scheduler=command.scheduler, workers=command.workers, groups=command.groups,
                            run_files=command.run_files)
    except BatchRefused as exc:
        print(f"dicomtui: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"dicomtui: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_INPUT_PROBLEM
    for warning in outcome.warnings:
        print(f"dicomtui: warning: {safe_text(warning['path'])}: {safe_text(warning['problem'])}", file=sys.stderr)
    for problem in outcome.problems:
        print(f"dicomtui: input problem: {safe_text(problem['path'])}: {safe_text(problem['problem'])}",
              file=sys.stderr)
    if outcome.run_dir and outcome.counts:
        counts = ", ".join(f"{count} {name}" for name, count in outcome.counts.items())
        runs = f"{len(outcome.run_ids)} runs" if len(outcome.run_ids) > 1 else f"run {outcome.run_id}"
        print(f"dicomtui: {runs}: {outcome.inputs} inputs ({outcome.bytes / 1e6:,.1f} MB, "
              f"{outcome.frames} frames) in {outcome.seconds:.1f} s; {outcome.skipped} already done; {counts} "
              f"-> {os.path.dirname(outcome.run_dir)}", file=sys.stderr)
    return EXIT_INPUT_PROBLEM if outcome.problems else EXIT_OK
