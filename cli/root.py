"""The ``dicomtui`` command: the composition root.

The one package above every layer (core, plugins, tui, batch): it builds the
plugin host with the built-in plugins (``builtins``), reads the preferences
file, turns the command line into typed options, and runs one mode from the
``MODES`` table — a listing, batch mode, the TUI, a live capture, or the
pipeline followed by a view (summary, JSON, expert list, export...).

What it starts is imported when that mode runs: ``--summary`` of a file must
not pay for Textual, pydicom, dpkt, the rules or the exporters
(``tests/test_startup.py``).

Exit status: 0 success; 1 a capture could not be read; 2 bad command line;
3 export left objects out (incomplete, refused or failed) or could not write
something exactly as captured; 4 ``--fail-on`` threshold met.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dicomtui import __version__
from dicomtui.batch import cli as batch_cli  # standard library only until a batch option is used
from dicomtui.core.api.host import BuiltinPlugin, PluginHost
from dicomtui.core.base.library_warnings import LibraryWarnings
from dicomtui.core.base.limits import Limits
from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.model import Severity
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.protocol.detect import DEFAULT_PORTS, parse_port_list
from dicomtui.core.wire.capture import CaptureError

# The de-identification mode's command-line face (its options, checks and run); its
# profile and rewriter are imported only when it runs.
from dicomtui.plugins.anonymize import cli as anonymize_cli

from .builtins import BUILTIN_PLUGINS, EXPORT_PLUGINS, RULE_PLUGINS, make_host

if TYPE_CHECKING:  # pragma: no cover - imported when the mode runs (start-up cost)
    from dicomtui.core.pipeline.live import LiveOptions
    from dicomtui.core.views.export import ExportSettings
    from dicomtui.core.views.filter import DisplayFilter
    from dicomtui.plugins.anonymize.cli import AnonymizeCommand


def _summary_or_export_only(args: argparse.Namespace, anonymize: bool) -> bool:
    """``--summary`` or ``--export`` of capture files, and nothing that shows findings."""
    other = (anonymize or args.list_plugins or args.json or args.jsonl or args.expert or args.stats
             or args.workflow or args.html or args.flow is not None or args.batch or args.report or args.interfaces
             or args.follow
             or args.validate)
    return bool((args.summary or args.export) and not other)


def rules_wanted(args: argparse.Namespace, anonymize: bool) -> bool:
    """The expert rules run where findings are shown or ``--fail-on`` asks for them."""
    return not _summary_or_export_only(args, anonymize) or bool(args.fail_on)


def builtins_for(args: argparse.Namespace, anonymize: bool) -> tuple[BuiltinPlugin, ...]:
    """The built-in plugins a mode uses: start-up imports only those (a rule or an exporter
    module imports pydicom's codec, more than the analysis of a small capture costs)."""
    if not _summary_or_export_only(args, anonymize):
        return BUILTIN_PLUGINS
    skipped = () if args.export else EXPORT_PLUGINS
    if not rules_wanted(args, anonymize):
        skipped += RULE_PLUGINS
    return tuple(plugin for plugin in BUILTIN_PLUGINS if plugin not in skipped)


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
    mode.add_argument("--jsonl", action="store_true",
                      help="print one JSON object per line for each association, PDU, message and finding as it "
                           "completes (streams during a live capture)")
    mode.add_argument("--expert", action="store_true", help="print the expert findings")
    mode.add_argument("--export", metavar="OUTDIR", help="export objects into OUTDIR (see --export-format)")
    mode.add_argument("--list-plugins", action="store_true", help="list built-in and installed plugins")
    mode.add_argument("--stats", action="store_true",
                      help="where the time went: causes, time budgets, response-time statistics, throughput, "
                           "TCP behaviour (docs/timing.md)")
    mode.add_argument("--workflow", action="store_true",
                      help="storage commitment, MPPS and worklist per study / accession: scheduled -> performed "
                           "-> stored -> committed, with times and associations (docs/workflow.md)")
    mode.add_argument("--flow", metavar="ASSOCIATION",
                      help="print the ladder diagram of one association (number as in --summary, e.g. 1 or A1)")
    mode.add_argument("--html", metavar="OUT.html",
                      help="write one self-contained HTML page for a vendor ticket: capture facts, verdicts, "
                           "negotiation, statuses, findings, timing, pictures; no patient data (docs/report.md)")
    parser.add_argument("--html-real-values", action="store_true",
                        help="--html: show UIDs, quoted values and Error Comments as captured (internal use only)")
    parser.add_argument("--flow-level", choices=["pdu", "message"], default="pdu",
                        help="--flow rows: one per PDU (P-DATA runs collapsed) or one per DIMSE message")
    parser.add_argument("-Y", dest="display_filter", metavar="FILTER",
                        help="display filter (the UI's language, see docs/filter.md): --summary, --json and "
                             "--expert show only matching PDUs, --export writes only their objects (pcap: frames)")
    parser.add_argument("-t", dest="time_format", default=None, metavar="FORMAT",
                        help="time display format as tshark's -t: r (since first frame, default), a (absolute), "
                             "ad (absolute with date), u / ud (UTC), e (epoch), d (since previous PDU), "
                             "dd (since previous displayed PDU)")
    live = parser.add_argument_group("live capture (tshark's options; through dumpcap, else tcpdump)")
    live.add_argument("-i", dest="interfaces", action="append", default=[], metavar="IFACE",
                      help="capture on IFACE (repeatable; 'any' for all)")
    live.add_argument("-f", dest="capture_filter", default="", metavar="FILTER",
                      help="capture filter (BPF), e.g. 'tcp port 104'")
    live.add_argument("-D", dest="list_interfaces", action="store_true", help="list the interfaces and exit")
    live.add_argument("-s", dest="snaplen", type=int, default=0, metavar="SNAPLEN",
                      help="snapshot length (bytes kept of each packet; default the tool's, 262144)")
    live.add_argument("-w", dest="write", default="", metavar="FILE",
                      help="also keep the raw capture in FILE (pcapng)")
    live.add_argument("-b", dest="ring", action="append", default=[], metavar="filesize:KB|files:N",
                      help="ring buffer for -w: a new file every KB kilobytes, keep the newest N files")
    live.add_argument("-a", dest="autostop", action="append", default=[], metavar="duration:SEC|packets:N",
                      help="stop after SEC seconds or N packets")
    live.add_argument("-c", dest="count", type=int, default=0, metavar="N", help="stop after N packets")
    live.add_argument("--follow", metavar="FILE",
                      help="read a capture file that another process is still writing, like tail -f")
    live.add_argument("--capture-tool", choices=["dumpcap", "tcpdump"], default="",
                      help="capture with this tool (default: dumpcap when installed, else tcpdump)")
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
    parser.add_argument("--validate", action="store_true",
                        help="check every stored object against its IOD (dciodvfy) and each study (dcentvfy); "
                             "needs the validate extra (docs/validate.md)")
    parser.add_argument("--fail-on", metavar="SEVERITY", choices=["chat", "note", "warning", "error"],
                        help="exit with status 4 if any expert item has this severity or worse")
    parser.add_argument("--ports", default=None, metavar="LIST",
                        help=f"DICOM ports and ranges, e.g. '104,11112,50000-50010' (default {DEFAULT_PORTS})")
    parser.add_argument("--no-heuristic", action="store_true",
                        help="only decode the DICOM ports; do not look for DICOM on other ports")
    parser.add_argument("-o", dest="options", action="append", default=[], metavar="NAME:VALUE",
                        help="set a preference or rule option, e.g. -o slow_response_seconds:2")
    parser.add_argument("--tls-keylog", action="append", default=[], metavar="FILE",
                        help="decrypt DICOM over TLS with this NSS key log (SSLKEYLOGFILE); may be repeated; "
                        "same as -o tls.keylog_file:FILE; re-read when it grows")
    parser.add_argument("--tls-key", action="append", default=[], metavar="PEM",
                        help="a server's RSA private key (PEM, PKCS#1 or PKCS#8) for static-RSA TLS suites; "
                        "may be repeated; same as -o tls.rsa_keys:FILE")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="do not load this plugin (name as in --list-plugins); may be repeated")
    parser.add_argument("--version", action="version", version=f"dicomtui {__version__}")
    anonymize_cli.add_arguments(parser)
    batch_cli.add_arguments(parser)
    return parser


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
    for option, files in (("tls.keylog_file", getattr(args, "tls_keylog", [])),
                          ("tls.rsa_keys", getattr(args, "tls_key", []))):
        if files:  # beside any -o value, each file once (plugins/tls/sources.py splits on os.pathsep)
            merged[option] = os.pathsep.join(filter(None, [merged.get(option, ""), *files]))
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
    options = host.hook.dicomtui_register_rule_options.registrations()
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
    for _plugin, (exporter,) in host.hook.dicomtui_register_exporters.registrations():
        yield exporter.name, exporter.description


def _live_options(args: argparse.Namespace, parser: argparse.ArgumentParser, captures: list[str],
                  reads_whole_file: bool = False):
    """The LiveOptions of a live capture (-i, --follow, or '-' alone), or None to read files.

    ``reads_whole_file``: the mode needs the whole capture first (--anonymize), so '-' is spooled as before.
    """
    live_only = [name for name, given in (("-f", args.capture_filter), ("-s", args.snaplen), ("-w", args.write),
                                          ("-b", args.ring), ("-a", args.autostop), ("-c", args.count))
                 if given]
    if args.interfaces and args.follow:
        parser.error("-i and --follow do not go together (capture, or follow a file another tool writes)")
    if (args.interfaces or args.follow) and captures:
        parser.error("capture files and live capture (-i, --follow) do not go together")
    is_pipe = captures == ["-"] and not args.interfaces and not args.follow and not reads_whole_file
    if not (args.interfaces or args.follow or is_pipe):
        if live_only:
            parser.error(f"{', '.join(live_only)} only apply to a live capture (-i IFACE, --follow FILE or -)")
        return None
    # Imported only for a live capture: reading files (the common case) need not pay for them.
    from dicomtui.core.pipeline.live import LiveOptions
    from dicomtui.core.wire.capture_tool import CaptureRequest

    if (args.follow or is_pipe) and (args.capture_filter or args.snaplen):
        parser.error("-f and -s apply to capturing (-i); a followed file or pipe is already captured")
    options = LiveOptions(write=args.write)
    if args.interfaces:
        options.request = CaptureRequest(interfaces=list(args.interfaces), capture_filter=args.capture_filter,
                                         snaplen=args.snaplen, tool=args.capture_tool)
        if args.snaplen < 0:
            parser.error("-s: the snapshot length must be positive")
    elif args.follow:
        options.follow = args.follow
    else:
        options.pipe_fd = sys.stdin.fileno()
    for item in args.ring:
        key, _, value = item.partition(":")
        if key not in ("filesize", "files") or not value.isdigit() or int(value) <= 0:
            parser.error(f"-b expects filesize:KB or files:N (a positive whole number), got {item!r}")
        if key == "filesize":
            options.ring_filesize_kb = int(value)
        else:
            options.ring_files = int(value)
    if args.ring and not args.write:
        parser.error("-b (ring buffer) needs -w FILE")
    if options.ring_files and not options.ring_filesize_kb:
        parser.error("-b files:N needs -b filesize:KB (when to start the next file)")
    for item in args.autostop:
        key, _, value = item.partition(":")
        try:
            number = float(value) if key == "duration" else int(value)
        except ValueError:
            number = -1
        if key not in ("duration", "packets") or number <= 0:
            parser.error(f"-a expects duration:SEC or packets:N (positive), got {item!r}")
        if key == "duration":
            options.duration = float(number)
        else:
            options.packets = int(number)
    if args.count:
        if args.count < 0:
            parser.error("-c: the packet count must be positive")
        options.packets = args.count
    return options


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


# -- typed options ------------------------------------------------------------------------------


@dataclass(slots=True)
class Command:
    """The parsed command line before any capture is read, and the host built for it.

    The listings read ``args`` itself; batch mode's options are typed by its own command-line
    face (``dicomtui.batch.cli.check``), as --anonymize's are by the anonymize plugin's.
    """

    parser: argparse.ArgumentParser
    args: argparse.Namespace
    captures: list[str]
    anonymize: bool
    host: PluginHost


@dataclass(slots=True)
class ViewOptions:
    """What a mode that reads captures needs, typed and checked: no view sees the Namespace."""

    view: str  # a key of VIEWS, or "ui"
    captures: list[str]
    host: PluginHost
    config: AnalysisConfig
    time_format: str
    warnings: list[str] = field(default_factory=list)  # shown again in the UI, where stderr is hidden
    display_filter: DisplayFilter | None = None  # -Y, compiled
    display_filter_text: str | None = None
    live: LiveOptions | None = None  # a live capture (-i, --follow, '-' alone); None reads files
    export: ExportSettings | None = None  # --export
    fail_on: str | None = None
    flow: str | None = None
    flow_level: str = "pdu"
    run_rules: bool = True
    anonymize: "AnonymizeCommand | None" = None  # --anonymize's options, typed by its own command-line face
    report: ReportRequest | None = None  # --html (also with --anonymize: then with its mapping)


@dataclass(slots=True)
class ReportRequest:
    """``--html OUT.html`` and what the page may show (``--anonymize-ae``/``-network``, ``--html-real-values``)."""

    path: str
    real_values: bool = False
    map_ae: bool = False
    map_network: bool = False
    invocation: str = ""


# -- the modes that read no capture ------------------------------------------------------------------


def _list_plugins(command: Command) -> int:
    _print_plugins(command.host)
    return EXIT_OK


def _list_interfaces(command: Command) -> int:
    from dicomtui.core.wire.capture_tool import CaptureToolError, list_interfaces

    try:
        print("\n".join(list_interfaces(command.args.capture_tool)))
    except CaptureToolError as exc:
        print(f"dicomtui: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_CAPTURE
    return EXIT_OK


def _batch(command: Command) -> int:
    args, parser = command.args, command.parser
    if args.interfaces or args.follow:
        parser.error("--batch reads capture files: capture with -w FILE first")
    batch = batch_cli.check(args, parser, command.captures)
    config = make_config(args, parser) if batch.outdir else None
    return batch_cli.run(batch, config, make_host)


COMMANDS: dict[str, Callable[[Command], int]] = {
    "list-plugins": _list_plugins,
    "list-interfaces": _list_interfaces,
    "batch": _batch,
}


def _command_mode(args: argparse.Namespace) -> str | None:
    if args.list_plugins:
        return "list-plugins"
    if args.list_interfaces:
        return "list-interfaces"
    if batch_cli.wanted(args):
        return "batch"
    return None


# -- the views of a finished analysis ---------------------------------------------------------------


def _summary(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    from dicomtui.core.views.summary import summary_lines

    for line in summary_lines(analysis, options.time_format, shown):
        print(line)
    return EXIT_OK


def _json_lines(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    from dicomtui.core.views.json_lines import analysis_json_lines

    for line in analysis_json_lines(analysis):
        print(line)
    return EXIT_OK


def _json(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    from dicomtui.core.views.document import write_analysis_json

    write_analysis_json(analysis, sys.stdout, shown)
    sys.stdout.write("\n")
    return EXIT_OK


def _stats(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    from dicomtui.core.views.timing import stats_lines

    for line in stats_lines(analysis):
        print(safe_text(line))
    return EXIT_OK


def _workflow(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    from dicomtui.core.views.workflow import workflow_lines

    for line in workflow_lines(analysis):
        print(line)
    return EXIT_OK


def _flow(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    from dicomtui.core.views.timing import flow_lines

    asked = options.flow or ""
    text = asked.strip().upper().removeprefix("A")
    if not text.isdigit() or int(text) >= len(analysis.associations):
        print(f"dicomtui: --flow: no association {safe_text(asked)!r} in this capture (it has "
              f"A0-A{len(analysis.associations) - 1})" if analysis.associations else
              "dicomtui: --flow: this capture has no association", file=sys.stderr)
        return EXIT_USAGE
    for line in flow_lines(analysis, int(text), options.flow_level):
        print(safe_text(line))
    return EXIT_OK


def _expert(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    from dicomtui.core.views.summary import expert_line

    kept = set(shown) if shown is not None else None
    for item in analysis.expert:
        if kept is None or item.pdu in kept:
            print(expert_line(item))
    return EXIT_OK


def _export(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    from dicomtui.core.views.export import run_export

    messages = frames = None
    if shown is not None:
        from dicomtui.core.api.export import frames_of_pdus
        from dicomtui.core.views.index import PacketIndex

        index = PacketIndex(analysis)
        pdus = [analysis.pdus[number] for number in shown]
        messages = sorted({message.index for pdu in pdus for message in index.messages_for(pdu)})
        frames = frames_of_pdus(analysis, pdus)
    return run_export(analysis, options.export, messages, frames)


def _anonymize(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    if options.report is None:
        return anonymize_cli.run(analysis, options.anonymize)
    # With --html: the page shows the UIDs, AE titles and addresses the de-identified capture carries.
    statuses: list[int] = []
    status = anonymize_cli.run(analysis, options.anonymize, on_done=lambda pseudonyms: statuses.append(
        _write_report(analysis, options.report, pseudonyms)))
    return max([status, *statuses])


def _html(analysis, options: ViewOptions, shown: list[int] | None) -> int:
    return _write_report(analysis, options.report)


def _write_report(analysis, request: ReportRequest, pseudonyms=None) -> int:
    from dicomtui.core.views.report import RedactionSettings, ReportSettings, write_report

    settings = ReportSettings(RedactionSettings(real_values=request.real_values, map_ae=request.map_ae,
                                                map_network=request.map_network),
                              invocation=request.invocation, pseudonyms=pseudonyms)
    try:
        written = write_report(analysis, request.path, settings)
    except OSError as exc:
        print(f"dicomtui: cannot write {safe_text(request.path)}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_EXPORT_INCOMPLETE
    print(f"dicomtui: wrote {safe_text(written.path)} ({written.size} bytes in {written.seconds:.2f} s)",
          file=sys.stderr)
    return EXIT_OK


# A view of a finished analysis: (analysis, options, the PDU numbers -Y kept or None) -> exit status.
View = Callable[[Any, ViewOptions, "list[int] | None"], int]

VIEWS: dict[str, View] = {
    "summary": _summary,
    "jsonl": _json_lines,
    "json": _json,
    "stats": _stats,
    "flow": _flow,
    "workflow": _workflow,
    "expert": _expert,
    "export": _export,
    "anonymize": _anonymize,
    "html": _html,
}
# The views the fail-on threshold applies to (de-identification reports on its own output).
FAIL_ON_VIEWS = frozenset(VIEWS) - {"anonymize"}


def _view_of(args: argparse.Namespace, anonymize: bool) -> str:
    """Which view the options ask for; "ui" when none (the terminal UI, or --summary off a terminal)."""
    if anonymize:
        return "anonymize"
    given = {"html": bool(args.html), "summary": args.summary, "jsonl": args.jsonl, "json": args.json,
             "stats": args.stats, "flow": args.flow is not None, "workflow": args.workflow, "expert": args.expert,
             "export": bool(args.export)}
    return next((name for name, wanted in given.items() if wanted), "ui")


# -- the modes that read captures ---------------------------------------------------------------------


def _live(options: ViewOptions) -> int:
    """A live capture (-i, --follow, or '-' alone): the UI on a terminal, else a headless view as it happens."""
    live = options.live
    if options.view == "ui" and sys.stdout.isatty() and (sys.stdin.isatty() or live.pipe_fd is not None):
        from dicomtui.tui.live import run_live_app

        return run_live_app(live, options.config, options.host)
    from dicomtui.core.views.live import LiveOutput, run_live

    view = "summary" if options.view == "ui" else options.view
    output = LiveOutput(view=view, export=options.export, fail_on=options.fail_on)
    return run_live(output, options.config, options.host, live)


def _files(options: ViewOptions) -> int:
    """Capture files: the UI on a terminal, else the pipeline and one view."""
    # The UI needs the terminal for keys as well as for drawing; a capture piped in on stdin
    # (`tcpdump -w - | dicomtui -`) therefore gets the summary.
    if options.view == "ui" and sys.stdout.isatty() and sys.stdin.isatty():
        from dicomtui.tui.app import run_app

        return run_app(options.captures, options.config, options.host, warnings=options.warnings,
                       display_filter=options.display_filter_text)
    view = "summary" if options.view == "ui" else options.view
    try:
        analysis = analyze(options.captures, options.config, options.host, run_rules=options.run_rules)
    except CaptureError as exc:
        print(f"dicomtui: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_CAPTURE
    try:
        return _present(analysis, view, options)
    finally:
        analysis.close()


def _present(analysis, view: str, options: ViewOptions) -> int:
    """Print or write what the headless mode asks for, from a finished analysis."""
    for note in analysis.notes:
        print(f"dicomtui: warning: {safe_text(note.source)}: {safe_text(note.message)}", file=sys.stderr)
    shown = None  # PDU numbers -Y keeps (None: all)
    if options.display_filter is not None and view != "anonymize":
        from dicomtui.core.views.index import PacketIndex

        index = PacketIndex(analysis)
        shown = [pdu.index for pdu in analysis.pdus if options.display_filter.matches(index, pdu)]
    status = EXIT_OK
    try:
        status = VIEWS[view](analysis, options, shown)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return status
    if view in FAIL_ON_VIEWS and options.fail_on and status == EXIT_OK:
        threshold = Severity.parse(options.fail_on)
        if any(item.severity >= threshold for item in analysis.expert):
            status = EXIT_FAIL_ON
    return status


# -- from argv to a mode ----------------------------------------------------------------------------


def _run_mode(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    captures = list(args.read) + list(args.captures)
    anonymize = anonymize_cli.wanted(args)
    if anonymize:
        captures = anonymize_cli.fix_captures(args, captures)
    host = make_host(disabled=set(args.disable_plugin), builtins=builtins_for(args, anonymize))
    command = _command_mode(args)
    if command is not None and args.validate:
        parser.error("--validate checks the objects of capture files (--json, --expert, the UI...), "
                     "not with --batch, --report, --list-plugins or -D")
    if command is not None:
        return COMMANDS[command](Command(parser, args, captures, anonymize, host))
    typed = list(sys.argv[1:] if argv is None else argv)
    options = _view_options(parser, args, captures, anonymize, host, typed)
    if args.validate:
        from dicomtui.plugins.validate.tool import ValidatorMissing, find_tools

        try:
            find_tools()
        except ValidatorMissing as exc:
            print(f"dicomtui: --validate: {exc}", file=sys.stderr)
            return EXIT_USAGE
        options.config.options["validate"] = "true"
    return _live(options) if options.live is not None else _files(options)


def _view_options(parser: argparse.ArgumentParser, args: argparse.Namespace, captures: list[str],
                  anonymize: bool, host: PluginHost, typed: list[str] | None = None) -> ViewOptions:
    """Check the options of a mode that reads captures and type them (``parser.error`` exits on a bad one)."""
    live = _live_options(args, parser, captures, reads_whole_file=anonymize or bool(args.html))
    if not captures and live is None:
        parser.error("no capture given (e.g. dicomtui capture.pcap, or dicomtui -i eth0 to capture live)")
    warnings: list[str] = []
    config = make_config(args, parser, warnings)
    time_format = args.time_format or config.options.get("time_format") or "r"
    try:
        from dicomtui.core.base.time_format import check

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
    anonymize_command = None
    if anonymize:
        if live is not None:
            parser.error("--anonymize works on capture files: capture with -w FILE first, then anonymize FILE")
        anonymize_command = anonymize_cli.check(args, captures, parser)
    if live is not None and display_filter is not None:
        parser.error("-Y filters a capture file; in a live capture use the UI's filter bar (/)")
    if live is not None and (args.stats or args.flow is not None or args.workflow):
        parser.error("--stats, --flow and --workflow read a capture file: capture with -w FILE, then dicomtui --stats FILE")
    report = None
    if args.html_real_values and not args.html:
        parser.error("--html-real-values goes with --html OUT.html")
    if args.html:
        if live is not None:
            parser.error("--html reads capture files: capture with -w FILE, then dicomtui --html OUT.html FILE")
        if display_filter is not None:
            parser.error("-Y does not apply to --html: the page shows the whole capture")
        if any(os.path.abspath(args.html) == os.path.abspath(capture) for capture in captures if capture != "-"):
            parser.error("--html: the page would overwrite an input capture")
        if os.path.exists(args.html) and not args.overwrite:
            parser.error(f"--html: {args.html} exists (--overwrite replaces it)")
        report = ReportRequest(args.html, real_values=args.html_real_values, map_ae=args.anonymize_ae,
                               map_network=args.anonymize_network,
                               invocation=_invocation(typed or [], captures))
    export = None
    if args.export:
        from dicomtui.core.views.export import ExportSettings

        export = ExportSettings(outdir=args.export, exporter=args.export_format, min_size=args.min_size,
                                include_commands=args.include_commands, meta_header=not args.no_meta,
                                include_incomplete=args.include_incomplete, overwrite=args.overwrite)
    return ViewOptions(view=_view_of(args, anonymize), captures=captures, host=host, config=config,
                       time_format=time_format, warnings=warnings, display_filter=display_filter,
                       display_filter_text=args.display_filter, live=live, export=export, fail_on=args.fail_on,
                       flow=args.flow, flow_level=args.flow_level, run_rules=rules_wanted(args, anonymize),
                       anonymize=anonymize_command, report=report)


def _invocation(argv: list[str], captures: list[str]) -> str:
    """The options as typed, without the capture names (the page lists the files itself)."""
    import shlex

    named = set(captures)
    kept = [word for word in argv if word not in named]
    return "dicomtui " + " ".join(shlex.quote(word) for word in kept)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
