"""From argv to typed options: the parser, the preferences and ``-o`` merged into the analysis
configuration, and the checks of each mode's options (``parser.error`` exits on a bad one)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from dicomtui import __version__
from dicomtui.batch import cli as batch_cli  # standard library only until a batch option is used
from dicomtui.core.api.host import BuiltinPlugin, PluginHost
from dicomtui.core.base.limits import Limits
from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.pipeline import AnalysisConfig
from dicomtui.core.protocol.detect import DEFAULT_PORTS, parse_port_list

# The de-identification mode's command-line face (its options, checks and run); its
# profile and rewriter are imported only when it runs.
from dicomtui.plugins.anonymize import cli as anonymize_cli

from .builtins import BUILTIN_PLUGINS, EXPORT_PLUGINS, RULE_PLUGINS
from .options import ReportRequest, ViewOptions

if TYPE_CHECKING:  # pragma: no cover - imported when the mode runs (start-up cost)
    pass


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


def _view_of(args: argparse.Namespace, anonymize: bool) -> str:
    """Which view the options ask for; "ui" when none (the terminal UI, or --summary off a terminal)."""
    if anonymize:
        return "anonymize"
    given = {"html": bool(args.html), "summary": args.summary, "jsonl": args.jsonl, "json": args.json,
             "stats": args.stats, "flow": args.flow is not None, "workflow": args.workflow, "expert": args.expert,
             "export": bool(args.export)}
    return next((name for name, wanted in given.items() if wanted), "ui")


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
