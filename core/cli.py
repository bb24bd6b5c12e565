"""The ``dicomtui`` command: the composition root.

The one module that knows every layer: it builds the plugin host with the
list of built-in plugins, reads the preferences file, runs the pipeline, and
hands the result to a view (summary, JSON, expert list, export) or the TUI.

Exit status: 0 success; 1 a capture could not be read; 2 bad command line;
3 export left objects out (incomplete, refused or failed) or could not write
something exactly as captured; 4 ``--fail-on`` threshold met.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from dicomtui import __version__
from dicomtui.core.api.host import PluginHost
from dicomtui.core.base.library_warnings import LibraryWarnings
from dicomtui.core.base.limits import Limits
from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.model import Severity
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.protocol.detect import DEFAULT_PORTS, parse_port_list
from dicomtui.core.wire.capture import CaptureError

BUILTIN_PLUGINS = (
    "dicomtui.plugins.pdu",
    "dicomtui.plugins.connection",
    "dicomtui.plugins.status",
    "dicomtui.plugins.dictionary",
    "dicomtui.plugins.dataset",
    "dicomtui.plugins.linking",
    "dicomtui.plugins.rules.association",
    "dicomtui.plugins.rules.protocol",
    "dicomtui.plugins.rules.status",
    "dicomtui.plugins.rules.timing",
    "dicomtui.plugins.rules.slowness",
    "dicomtui.plugins.rules.capture",
    "dicomtui.plugins.rules.query",
    "dicomtui.plugins.export.part10",
    "dicomtui.plugins.export.dicom_json",
    "dicomtui.plugins.export.transactions",
    "dicomtui.plugins.export.pcap",
)


def make_host(disabled: set[str] | None = None, load_installed: bool = True) -> PluginHost:
    """The plugin host with the built-in plugins and (unless told not to) the installed ones."""
    return PluginHost(BUILTIN_PLUGINS, disabled=disabled, load_installed=load_installed)


EXIT_OK, EXIT_CAPTURE, EXIT_USAGE, EXIT_EXPORT_INCOMPLETE, EXIT_FAIL_ON = 0, 1, 2, 3, 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicomtui",
        description="Look inside DICOM network traffic: terminal UI, summaries, JSON, expert findings, export.",
        epilog="Without a mode option the terminal UI opens (or, when stdout is not a terminal, --summary runs).",
    )
    parser.add_argument("captures", nargs="*", metavar="CAPTURE",
                        help="pcap/pcapng files (gzip allowed), '-' for standard input; several files are "
                             "read as one capture in timestamp order")
    parser.add_argument("-r", dest="read", action="append", default=[], metavar="CAPTURE",
                        help="capture to read (as in tshark); may be repeated")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--summary", action="store_true", help="print one line per PDU")
    mode.add_argument("--json", action="store_true", help="print the whole analysis as one JSON document")
    mode.add_argument("--expert", action="store_true", help="print the expert findings")
    mode.add_argument("--export", metavar="OUTDIR", help="export objects into OUTDIR (see --export-format)")
    mode.add_argument("--list-plugins", action="store_true", help="list built-in and installed plugins")
    mode.add_argument("--stats", action="store_true",
                      help="where the time went: causes, time budgets, response-time statistics, throughput, "
                           "TCP behaviour (docs/timing.md)")
    mode.add_argument("--flow", metavar="ASSOCIATION",
                      help="print the ladder diagram of one association (number as in --summary, e.g. 1 or A1)")
    parser.add_argument("--flow-level", choices=["pdu", "message"], default="pdu",
                        help="--flow rows: one per PDU (P-DATA runs collapsed) or one per DIMSE message")
    parser.add_argument("-Y", dest="display_filter", metavar="FILTER",
                        help="display filter (the UI's language, see docs/filter.md): --summary, --json and "
                             "--expert show only matching PDUs, --export writes only their objects (pcap: frames)")
    parser.add_argument("-t", dest="time_format", default=None, metavar="FORMAT",
                        help="time display format as tshark's -t: r (since first frame, default), a (absolute), "
                             "ad (absolute with date), u / ud (UTC), e (epoch), d (since previous PDU), "
                             "dd (since previous displayed PDU)")
    parser.add_argument("--export-format", default="part10", metavar="NAME",
                        help="exporter to use with --export (see --list-plugins); default part10")
    parser.add_argument("--min-size", type=int, default=0, metavar="BYTES",
                        help="export only data sets of at least BYTES bytes")
    parser.add_argument("--include-commands", action="store_true",
                        help="export command sets too (with artificial SOP UIDs under dicomtui's root)")
    parser.add_argument("--no-meta", action="store_true", help="export raw data sets without a Part 10 header")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="also write incomplete objects, named *.partial")
    parser.add_argument("--overwrite", action="store_true", help="replace files left by an earlier export")
    parser.add_argument("--fail-on", metavar="SEVERITY", choices=["chat", "note", "warning", "error"],
                        help="exit with status 4 if any expert item has this severity or worse")
    parser.add_argument("--ports", default=None, metavar="LIST",
                        help=f"DICOM ports and ranges, e.g. '104,11112,50000-50010' (default {DEFAULT_PORTS})")
    parser.add_argument("--no-heuristic", action="store_true",
                        help="only decode the DICOM ports; do not look for DICOM on other ports")
    parser.add_argument("-o", dest="options", action="append", default=[], metavar="NAME:VALUE",
                        help="set a preference or rule option, e.g. -o slow_response_seconds:2")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="do not load this plugin (name as in --list-plugins); may be repeated")
    parser.add_argument("--version", action="version", version=f"dicomtui {__version__}")
    _anonymize_cli().add_arguments(parser)
    from dicomtui.batch import cli as batch_cli  # standard library only until a batch option is used

    batch_cli.add_arguments(parser)
    return parser


# The de-identification mode (--anonymize) lives in a built-in plugin package; named as a
# string like the other built-ins, since core does not import plugins.
ANONYMIZE_CLI = "dicomtui.plugins.anonymize.cli"


def _anonymize_cli():
    return importlib.import_module(ANONYMIZE_CLI)


def _parse_options(pairs: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        if ":" not in pair:
            parser.error(f"-o expects NAME:VALUE, got {pair!r}")
        name, value = pair.split(":", 1)
        options[name.strip()] = value
    return options


def make_config(args: argparse.Namespace, parser: argparse.ArgumentParser,
                warnings: list[str] | None = None) -> AnalysisConfig:
    """The analysis settings: preferences file < -o < dedicated options.

    A bad value in the preferences file is a warning naming the file, key and
    value (its default applies); a bad value given on the command line is a
    usage error naming the option the user typed.
    """
    from dicomtui.core.views.preferences import check_preferences, load_checked_preferences

    options = _parse_options(args.options, parser)
    warnings = [] if warnings is None else warnings
    preferences, found = load_checked_preferences()
    warnings.extend(found)
    _typed, bad = check_preferences(options, "-o")
    if bad:
        parser.error(bad[0].split("; the default")[0])
    for warning in warnings:
        print(f"dicomtui: warning: {safe_text(warning)}", file=sys.stderr)
    merged = {**{k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in preferences.items()},
              **options}
    if args.ports:
        try:
            ports = parse_port_list(args.ports)
        except ValueError as exc:
            parser.error(f"--ports: {exc}")
    else:
        try:
            ports = parse_port_list(merged.get("ports") or DEFAULT_PORTS)
        except ValueError as exc:  # only -o ports can get here: the file's value was checked
            parser.error(f"-o ports: {exc}")
    heuristic = not args.no_heuristic
    if "heuristic" in merged and not args.no_heuristic:
        heuristic = merged["heuristic"].strip().lower() in ("1", "true", "yes", "on")
    try:
        limits = Limits.from_options(merged)
    except ValueError as exc:
        parser.error(f"-o: {exc}")
    return AnalysisConfig(ports=ports, heuristic=heuristic, options=merged, limits=limits)


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows of cells as aligned text (last column left ragged)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)] if rows else []
    # Names, versions and texts come from installed plugins: shown escaped like capture text.
    return [safe_text("  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]).rstrip())
            for row in rows]


def _print_plugins(host: PluginHost) -> None:
    rows = [("NAME", "FROM", "VERSION", "STATUS", "HOOKS")]
    rows += [(info.name, info.origin, info.version, info.status, ", ".join(info.hooks))
             for info in host.list_plugins()]
    print("\n".join(_columns(rows)))
    exporters = list(_exporter_names(host))
    if exporters:
        print("\nexporters (--export-format):")
        print("\n".join("  " + line for line in _columns(exporters)))
    options = host.collect_registrations("dicomtui_register_rule_options")
    if options:
        print("\nrule options (-o NAME:VALUE):")
        rows = []
        for plugin, args in options:
            name, default, text = (tuple(args) + ("", "", ""))[:3]
            rows.append((f"{name}:{default}", f"{text} [{plugin}]"))
        print("\n".join("  " + line for line in _columns(rows)))
    for failure in host.failures:
        print(f"\nplugin {failure.plugin} failed in {failure.where}: {safe_text(failure.error)}", file=sys.stderr)


def _exporter_names(host: PluginHost):
    for _plugin, (exporter,) in host.collect_registrations("dicomtui_register_exporters"):
        yield exporter.name, exporter.description


def main(argv: list[str] | None = None) -> int:
    """The console entry point: ``_run`` with the exits a shell user expects."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # `dicomtui --summary x.pcap | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("dicomtui: interrupted", file=sys.stderr)
        return 130


def _run(argv: list[str] | None) -> int:
    with LibraryWarnings() as library_warnings:
        status = _run_mode(argv)
    if library_warnings.summary():
        print(f"dicomtui: warning: {library_warnings.summary()}", file=sys.stderr)
    return status


def _run_mode(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    captures = list(args.read) + list(args.captures)
    anonymize_cli = _anonymize_cli()
    anonymize = anonymize_cli.wanted(args)
    if anonymize:
        captures = anonymize_cli.fix_captures(args, captures)
    host = make_host(disabled=set(args.disable_plugin))
    if args.list_plugins:
        _print_plugins(host)
        return EXIT_OK
    from dicomtui.batch import cli as batch_cli

    if batch_cli.wanted(args):
        return batch_cli.run(args, parser, make_config, make_host)
    if not captures:
        parser.error("no capture given (e.g. dicomtui capture.pcap)")
    warnings: list[str] = []  # shown again in the UI, where stderr is hidden
    config = make_config(args, parser, warnings)
    time_format = args.time_format or config.options.get("time_format") or "r"
    try:
        from .base.time_format import check

        time_format = check(time_format)
    except ValueError as exc:
        if args.time_format:
            parser.error(f"-t: {exc}")
        warnings.append(f"preference time_format: {exc}; r is used")
        time_format = "r"
    config.options["time_format"] = time_format
    display_filter = None
    if args.display_filter is not None:
        from dicomtui.core.views.filter import FilterError, compile_filter

        try:
            display_filter = compile_filter(args.display_filter)
        except FilterError as exc:
            parser.error(f"-Y: invalid filter at {exc.position + 1}: {exc}")
    if anonymize:
        anonymize_cli.check(args, captures, parser)
    interactive = not (args.summary or args.json or args.expert or args.export or anonymize or args.stats
                       or args.flow is not None)
    # The UI needs the terminal for keys as well as for drawing; a capture piped in on stdin
    # (`tcpdump -w - | dicomtui -`) therefore gets the summary.
    if interactive and sys.stdout.isatty() and sys.stdin.isatty():
        from dicomtui.tui.app import run_app

        return run_app(captures, config, host, warnings=warnings, display_filter=args.display_filter)
    if interactive:
        args.summary = True
    try:
        analysis = analyze(captures, config, host)
    except CaptureError as exc:
        print(f"dicomtui: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_CAPTURE
    for note in analysis.notes:
        print(f"dicomtui: warning: {safe_text(note.source)}: {safe_text(note.message)}", file=sys.stderr)
    status = EXIT_OK
    if anonymize:
        return anonymize_cli.run(analysis, args)
    shown = None  # PDU numbers -Y keeps (None: all)
    if display_filter is not None:
        from dicomtui.core.views.index import PacketIndex

        index = PacketIndex(analysis)
        shown = [pdu.index for pdu in analysis.pdus if display_filter.matches(index, pdu)]
    try:
        if args.summary:
            from dicomtui.core.views import summary_lines

            for line in summary_lines(analysis, time_format, shown):
                print(line)
        elif args.json:
            from dicomtui.core.views import write_analysis_json

            write_analysis_json(analysis, sys.stdout, shown)
            sys.stdout.write("\n")
        elif args.stats:
            from dicomtui.core.views.timing import stats_lines

            for line in stats_lines(analysis):
                print(safe_text(line))
        elif args.flow is not None:
            from dicomtui.core.views.timing import flow_lines

            text = args.flow.strip().upper().removeprefix("A")
            if not text.isdigit() or int(text) >= len(analysis.associations):
                print(f"dicomtui: --flow: no association {safe_text(args.flow)!r} in this capture (it has "
                      f"A0-A{len(analysis.associations) - 1})" if analysis.associations else
                      "dicomtui: --flow: this capture has no association", file=sys.stderr)
                return EXIT_USAGE
            for line in flow_lines(analysis, int(text), args.flow_level):
                print(safe_text(line))
        elif args.expert:
            kept = set(shown) if shown is not None else None
            for item in analysis.expert:
                if kept is not None and item.pdu not in kept:
                    continue
                where = f"frame {item.frame}" if item.frame else "capture"
                association = f" A{item.association}" if item.association is not None else ""
                print(f"{item.severity.label:<7} {item.group.value:<15} {where:>12}{association:<5} "
                      f"{safe_text(item.message)}")
        elif args.export:
            from dicomtui.core.views.export import run_export

            messages = frames = None
            if shown is not None:
                from dicomtui.core.api.export import frames_of_pdus
                from dicomtui.core.views.index import PacketIndex

                index = PacketIndex(analysis)
                pdus = [analysis.pdus[number] for number in shown]
                messages = sorted({message.index for pdu in pdus for message in index.messages_for(pdu)})
                frames = frames_of_pdus(analysis, pdus)
            status = run_export(analysis, args, messages, frames)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return status
    if args.fail_on and status == EXIT_OK:
        threshold = Severity.parse(args.fail_on)
        if any(item.severity >= threshold for item in analysis.expert):
            status = EXIT_FAIL_ON
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
