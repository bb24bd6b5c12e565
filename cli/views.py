"""The views of a finished analysis, one function each, and the ``VIEWS`` table the command picks
from: (analysis, options, the PDU numbers -Y kept or None) -> exit status.  Each imports what it
shows when it runs (``tests/test_startup.py``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dicomtui.core.base.safe_text import safe_text

# The de-identification mode's command-line face (its options, checks and run); its
# profile and rewriter are imported only when it runs.
from dicomtui.plugins.anonymize import cli as anonymize_cli

from .options import EXIT_EXPORT_INCOMPLETE, EXIT_OK, EXIT_USAGE, ReportRequest, ViewOptions

if TYPE_CHECKING:  # pragma: no cover - imported when the mode runs (start-up cost)
    pass


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


FAIL_ON_VIEWS = frozenset(VIEWS) - {"anonymize"}
