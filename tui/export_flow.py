"""Export from the UI: the dialog, the scope (selected / displayed / marked / all) and the worker."""

from __future__ import annotations

import io
import os

from .prefs import preference
from .screens import ExportRequest, ExportScreen


class ExportFlow:
    def __init__(self, app) -> None:
        self.app = app
        self.last_export = None

    def selected_messages(self) -> list[int]:
        """The messages of the PDU under the cursor; for a response without a data set, its request.

        A C-STORE-RSP (or any command-only response) has no object of its own: exporting it
        alone wrote 0 files.  The object the user means is the request it answers.
        """
        app = self.app
        if app.index is None or app.current_pdu is None:
            return []
        found = set(self.messages_of([app.current_pdu]))
        messages = app.analysis.messages
        for number in list(found):
            message = messages[number]
            if not message.has_dataset and message.request is not None:
                found.add(message.request)
        return sorted(found)

    def describe_selected(self, messages: list[int]) -> str:
        """What "Selected" exports, in the dialog's words (and the result toast's)."""
        app = self.app
        if not messages:
            return "(the selected PDU carries no DIMSE message)"
        analysis = app.analysis
        own = set(self.messages_of([app.current_pdu]))
        objects = [analysis.messages[number] for number in messages if analysis.messages[number].has_dataset]
        names = ", ".join(dict.fromkeys(message.command_name for message in objects)) or "no data set"
        text = f"{len(objects)} object(s) ({names}) of PDU {app.current_pdu + 1}"
        if any(message.index not in own for message in objects):
            answered = ", ".join(dict.fromkeys(analysis.messages[number].command_name for number in sorted(own)))
            text = f"{len(objects)} object(s): the {names} this {answered} answers"
        return text

    def messages_of(self, pdus) -> list[int]:
        """Messages with a PDV in any of ``pdus`` (PDU numbers), in message order."""
        app = self.app
        found: set[int] = set()
        for number in pdus:
            found.update(message.index for message in app.index.messages_for(app.analysis.pdus[number]))
        return sorted(found)

    def scope_messages(self, scope: str) -> list[int] | None:
        """The messages a scope exports (None: every object in the capture)."""
        app = self.app
        if scope == "selected":
            return self.selected_messages()
        if scope == "displayed":
            rows = app.filtering.displayed_rows
            return self.messages_of(rows) if rows is not None else None
        if scope == "marked":
            return self.messages_of(sorted(app.packet_list.marked))
        return None

    def open(self) -> None:
        from dicomtui.core.views.export import exporters

        app = self.app
        if app.analysis is None or not app.analysis.finished:
            app.notify("Export is available when indexing completes", severity="warning")
            return
        available = exporters(app.host)
        if not available:
            app.notify("No exporter plugins are loaded", severity="error")
            return
        messages = self.selected_messages()
        selected = self.describe_selected(messages)
        scopes = {"selected": f"Selected: {selected}"}
        if app.filtering.displayed_rows is not None:
            scopes["displayed"] = f"Displayed: the {len(app.filtering.displayed_rows):,} PDUs the filter shows"
        if app.packet_list.marked:
            scopes["marked"] = f"Marked: {len(app.packet_list.marked):,} marked PDU(s)"
        scopes["all"] = "All objects in the capture"
        # The default is a scope with something in it (never "Selected" on a PDU without a message).
        default = "selected" if messages else ("marked" if "marked" in scopes else "all")
        folder = os.path.join(os.getcwd(), "dicomtui-export")
        app.push_screen(ExportScreen(available, folder, selected, scopes, default), self.chosen)

    def chosen(self, request: ExportRequest | None) -> None:
        if request is None:
            return
        app = self.app
        messages = self.scope_messages(request.scope)
        frames = self.scope_frames(request.scope)
        if messages is not None and not messages and not self.writes_capture(request.exporter):
            app.notify(f"The {request.scope} PDUs carry no DIMSE message to export", severity="warning")
            return
        what = {"selected": f"Selected: {self.describe_selected(messages or [])}",
                "displayed": "Displayed PDUs", "marked": "Marked PDUs"}.get(request.scope, "All objects")
        app.run_worker(lambda: self._run(request, messages, frames, what), thread=True, exclusive=True,
                       group="export")

    def writes_capture(self, name: str) -> bool:
        """A capture of the scope's frames needs no DIMSE message (what the exporter declares, not its name)."""
        from dicomtui.core.api.export import WRITES_CAPTURE, capabilities
        from dicomtui.core.views.export import exporters

        exporter = exporters(self.app.host).get(name)
        return exporter is not None and WRITES_CAPTURE in capabilities(exporter)

    def scope_frames(self, scope: str):
        """Frame numbers for frame-based exporters (pcap): the frames of the displayed / marked PDUs."""
        from dicomtui.core.api.export import frames_of_pdus

        app = self.app
        if scope == "displayed" and app.filtering.displayed_rows is not None:
            numbers = list(app.filtering.displayed_rows)
        elif scope == "marked":
            numbers = sorted(app.packet_list.marked)
        elif scope == "selected" and app.current_pdu is not None:
            numbers = [app.current_pdu]
        else:
            return None
        return frames_of_pdus(app.analysis, [app.analysis.pdus[number] for number in numbers])

    def _run(self, request: ExportRequest, messages: list[int] | None, frames=None, what: str = "") -> None:
        from dicomtui.core.api.export import ExportOptions
        from dicomtui.core.views.export import exporters, print_summary

        app = self.app
        exporter = exporters(app.host)[request.exporter]
        options = ExportOptions(
            min_size=preference(app.config.options, "export_min_size"),
            meta_header=preference(app.config.options, "export_meta_header"),
            messages=messages,
            frames=frames,
        )
        try:
            result = exporter.export(app.analysis, request.folder, options, None)
        except (OSError, ValueError) as exc:
            app.deliver(app.notify, f"Export failed: {exc}", severity="error")
            return
        summary = io.StringIO()
        print_summary(result, exporter.name, request.folder, summary)
        self.last_export = result
        scope = f"\n({what})" if what else ""
        app.deliver(app.notify, f"{summary.getvalue().strip()}{scope}", title="Export",
                    severity="information" if result.complete else "warning", timeout=8)
