"""The ``dicomtui`` command: the composition root.

The one package above every layer (core, plugins, tui, batch): it builds the
plugin host with the built-in plugins (``builtins``), reads the preferences
file, turns the command line into typed options, and runs one mode from the
``MODES`` table — a listing, batch mode, the TUI, a live capture, or the
pipeline followed by a view (summary, JSON, expert list, export...).

Its rooms: ``parser`` (argv to typed options, the preferences and ``-o`` merged), ``options``
(the typed options and exit statuses), ``views`` (one function per view of a finished analysis,
the ``VIEWS`` table), ``builtins`` (the built-in plugins); this module picks and runs the mode.

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
from typing import TYPE_CHECKING

from dicomtui.batch import cli as batch_cli  # standard library only until a batch option is used
from dicomtui.core.api.host import PluginHost
from dicomtui.core.base.library_warnings import LibraryWarnings
from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.model import Severity
from dicomtui.core.pipeline import analyze
from dicomtui.core.wire.capture import CaptureError

# The de-identification mode's command-line face (its options, checks and run); its
# profile and rewriter are imported only when it runs.
from dicomtui.plugins.anonymize import cli as anonymize_cli

from .builtins import make_host
from .options import EXIT_CAPTURE, EXIT_FAIL_ON, EXIT_OK, EXIT_USAGE, Command, ViewOptions
from .parser import _view_options, build_parser, builtins_for, make_config
from .views import FAIL_ON_VIEWS, VIEWS

if TYPE_CHECKING:  # pragma: no cover - imported when the mode runs (start-up cost)
    pass


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
    if args.validate and "rules.data" in set(args.disable_plugin):
        parser.error("--validate runs through the rules.data plugin, which --disable-plugin turns off")
    if args.validate:
        from dicomtui.plugins.validate.tool import ValidatorMissing, find_tools

        try:
            find_tools()
        except ValidatorMissing as exc:
            print(f"dicomtui: --validate: {exc}", file=sys.stderr)
            return EXIT_USAGE
        options.config.options["validate"] = "true"
    return _live(options) if options.live is not None else _files(options)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
