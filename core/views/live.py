"""Headless live capture: ``--summary``, ``--expert``, ``--jsonl``, ``--json`` and ``--export`` as it happens.

Each printer gets every ``LiveUpdate`` and writes what became known (a PDU line
as soon as the PDU is in, a finding as soon as it is settled, a JSON line per
object); ``--json`` prints its one document when the capture stops.
``--export`` writes every object as soon as its message is complete, through
the exporter's own checks (a data set with bytes missing is never written as
whole) and atomically (``OutputFolder`` writes a temporary name, then renames).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from dicomtui.core.api.export import WRITES_OBJECTS, ExportOptions, ExportResult, capabilities
from dicomtui.core.base.safe_text import safe_json, safe_text
from dicomtui.core.base.wording import counted
from dicomtui.core.model import Severity
from dicomtui.core.pipeline.incremental import IncrementalAnalysis, LiveUpdate
from dicomtui.core.pipeline.live import LiveOptions, LiveSession
from dicomtui.core.views import (
    association_json,
    capture_json,
    connection_json,
    expert_line,
    message_json,
    pdu_json,
    summary_line,
)
from dicomtui.core.views.export import ExportSettings, exporters, print_summary, unknown_exporter
from dicomtui.core.views.json_lines import workflow_json_rows
from dicomtui.core.wire.capture import CaptureError
from dicomtui.core.wire.capture_tool import CaptureToolError

EXIT_OK, EXIT_CAPTURE, EXIT_USAGE, EXIT_EXPORT_INCOMPLETE, EXIT_FAIL_ON = 0, 1, 2, 3, 4  # as the command line's


@dataclass(frozen=True, slots=True)
class LiveOutput:
    """What a headless live capture prints or writes.

    ``view``: "summary", "expert", "jsonl", "json" (one document when the capture
    stops) or "export" (then ``export`` says where and how); ``fail_on``: a severity
    name, exit status 4 when a finding is that bad or worse.
    """

    view: str = "summary"
    export: ExportSettings | None = None
    fail_on: str | None = None


class SummaryPrinter:
    def __init__(self, stream) -> None:
        self.stream = stream

    def __call__(self, analysis, update: LiveUpdate) -> None:
        pdus = analysis.pdus
        for index in update.pdus:
            self.stream.write(summary_line(analysis, pdus[index]) + "\n")
        self.stream.flush()


class ExpertPrinter:
    def __init__(self, stream) -> None:
        self.stream = stream

    def __call__(self, analysis, update: LiveUpdate) -> None:
        for item in update.expert:
            self.stream.write(expert_line(item) + "\n")
        self.stream.flush()


class JsonLinesPrinter:
    """``--jsonl``: one JSON object per line, each with a ``type`` (see README, "JSON lines")."""

    def __init__(self, stream, session: LiveSession) -> None:
        self.stream = stream
        self.session = session

    def _line(self, object_name: str, body: dict, **extra) -> None:
        self.stream.write(safe_json({"object": object_name, **extra, **body}, ensure_ascii=False) + "\n")

    def __call__(self, analysis, update: LiveUpdate) -> None:
        for association in update.associations_started:
            self._line("association", association_json(analysis, association), event="start")
        pdus = analysis.pdus
        for index in update.pdus:
            self._line("pdu", pdu_json(pdus[index]))
        for message in update.messages:
            self._line("message", message_json(analysis, message))
        for association in update.associations_ended:
            self._line("association", association_json(analysis, association), event="end")
        for item in update.expert:
            self._line("expert", item.as_json())
        if update.final:
            for kind, item in workflow_json_rows(analysis):  # linked across associations: at the end
                self._line("workflow", item, kind=kind)
            status = self.session.status
            self._line("end", {"capture": capture_json(analysis),
                               "connections": [connection_json(connection) for connection in analysis.connections],
                               "stop_reason": status.stop_reason, "dropped": status.dropped,
                               "written": status.written})
        self.stream.flush()


class LiveExporter:
    """Exports each complete message's objects as they arrive; the rest when the capture stops."""

    def __init__(self, exporter, outdir: str, options: ExportOptions, incremental: IncrementalAnalysis) -> None:
        self.incremental = incremental
        self.exporter = exporter
        self.outdir = outdir
        self.options = options
        self.done: set[int] = set()
        self.result = ExportResult()
        # Exporters of one file per data set write each message as it completes; the others
        # describe the whole capture and are written when it stops.
        self.per_message = WRITES_OBJECTS in capabilities(exporter)

    def __call__(self, analysis, update: LiveUpdate) -> None:
        if update.final:
            if self.per_message:
                rest = [message.index for message in analysis.messages if message.index not in self.done]
                self._export(analysis, rest)
            else:
                self._export_whole_capture()
            return
        if not self.per_message:
            return
        ready = [message.index for message in update.messages
                 if message.complete and (message.has_dataset or self.options.include_commands)
                 and (message.transfer_syntax or not self.options.meta_header)]
        self._export(analysis, ready)

    def _export_whole_capture(self) -> None:
        """Exporters that describe the whole capture (pcap, transactions) read what was captured, saved."""
        import tempfile

        from dicomtui.core.pipeline import analyze

        with tempfile.TemporaryDirectory(prefix="dicomtui-export-") as work_dir:
            saved = os.path.join(work_dir, "captured.pcapng")
            self.incremental.spool.save(saved)
            analysis = analyze([saved], self.incremental.config, self.incremental.plugins)
            try:
                self._merge(self.exporter.export(analysis, self.outdir, self._options(None), None))
            finally:
                analysis.close()

    def _options(self, messages):
        options = self.options
        return ExportOptions(min_size=options.min_size, include_commands=options.include_commands,
                             meta_header=options.meta_header, include_incomplete=options.include_incomplete,
                             overwrite=options.overwrite, messages=messages)

    def _export(self, analysis, messages: list[int]) -> None:
        if not messages:
            return
        self.done.update(messages)
        self._merge(self.exporter.export(analysis, self.outdir, self._options(messages), None))

    def _merge(self, part: ExportResult) -> None:
        result = self.result
        result.written += part.written
        result.skipped += part.skipped
        result.partial += part.partial
        result.errors += part.errors
        result.bytes_written += part.bytes_written
        result.replaced += part.replaced


def run_live(output: LiveOutput, config, host, live: LiveOptions) -> int:
    """The headless live modes; returns the exit status."""

    incremental = IncrementalAnalysis(config, host, live.name, packet_limit=live.packets)
    session = LiveSession(live, incremental)
    out = sys.stdout
    consumers = []
    exporter = None
    if output.view == "summary":
        consumers.append(SummaryPrinter(out))
    elif output.view == "expert":
        consumers.append(ExpertPrinter(out))
    elif output.view == "jsonl":
        consumers.append(JsonLinesPrinter(out, session))
    elif output.view == "export" and output.export is not None:
        settings = output.export
        available = exporters(host)
        chosen = available.get(settings.exporter)
        if chosen is None:
            print(unknown_exporter(settings.exporter, available), file=sys.stderr)
            incremental.close()
            return EXIT_USAGE
        Path(settings.outdir).mkdir(parents=True, exist_ok=True)
        exporter = LiveExporter(chosen, settings.outdir, settings.options(), incremental)
        consumers.append(exporter)

    analysis = incremental.analysis

    def on_update(update: LiveUpdate) -> None:
        for consumer in consumers:
            consumer(analysis, update)

    previous = {}

    def interrupted(signum, _frame) -> None:
        session.stop("interrupted" if signum == signal.SIGINT else "terminated")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            previous[signum] = signal.signal(signum, interrupted)
        except (ValueError, OSError):  # not the main thread
            pass
    try:
        session.start()
        if live.request is not None:
            what = ", ".join(live.request.interfaces or ["any"])
            print(f"dicomtui: capturing on {safe_text(what)} with {session.status.tool}"
                  + (f" (filter: {safe_text(live.request.capture_filter)})" if live.request.capture_filter else "")
                  + "; Ctrl-C stops", file=sys.stderr)
        session.run(on_update)
    except (CaptureToolError, CaptureError) as exc:
        print(f"dicomtui: {safe_text(str(exc))}", file=sys.stderr)
        session.stop("error")
        try:
            session._shutdown()
        finally:
            incremental.close()
        return EXIT_CAPTURE
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    status = session.status
    if output.view == "json":
        from dicomtui.core.views.document import analysis_json

        out.write(safe_json(analysis_json(analysis), indent=1))
        out.write("\n")
        out.flush()
    if live.pipe_fd is None:  # a capture or a followed file: say how it ended (a pipe just ends)
        dropped = "unknown" if status.dropped is None else str(status.dropped)
        tool = f", dropped by the capture: {dropped}" if session.process is not None else ""
        print(f"dicomtui: {status.stop_reason or 'stopped'}: {counted(analysis.frame_count, 'packet', separator='')}, "
              f"{counted(len(analysis.pdus), 'DICOM PDU', separator='')}, "
              f"{counted(len(analysis.associations), 'association', separator='')}{tool}", file=sys.stderr)
    for path in status.written:
        print(f"dicomtui: wrote {safe_text(path)}", file=sys.stderr)
    for note in analysis.notes:
        print(f"dicomtui: warning: {safe_text(note.source)}: {safe_text(note.message)}", file=sys.stderr)
    exit_status = EXIT_OK
    if status.error:
        print(f"dicomtui: {safe_text(status.error)}", file=sys.stderr)
        exit_status = EXIT_CAPTURE
    if exporter is not None:
        print_summary(exporter.result, exporter.exporter.name, exporter.outdir)
        if not exporter.result.complete and exit_status == EXIT_OK:
            exit_status = EXIT_EXPORT_INCOMPLETE
    if output.fail_on and exit_status == EXIT_OK:
        threshold = Severity.parse(output.fail_on)
        if any(item.severity >= threshold for item in analysis.expert):
            exit_status = EXIT_FAIL_ON
    incremental.close()
    return exit_status
