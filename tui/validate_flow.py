"""The ``V`` key: validate the stored object under the cursor now (dciodvfy, through the plugin hook).

The TUI does not know the validator: it calls ``dicomtui_validate_messages`` (the
``rules.data`` plugin answers it) in a worker thread, then shows what it added — the
result under the object's data set in the detail tree, the ``data.*`` findings in the
expert pane, a one-line toast.  Without the validate extra the plugin reports that as a
finding, which the toast repeats.
"""

from __future__ import annotations

from dicomtui.core.base.wording import counted
from dicomtui.core.pipeline.rules import ExpertReport

C_STORE_RQ = 0x0001


class ValidationFlow:
    def __init__(self, app) -> None:
        self.app = app
        self.running: set[int] = set()

    def stored_object_at_cursor(self):
        """The C-STORE-RQ whose PDU (or whose response's PDU) is under the cursor, else None."""
        app = self.app
        analysis = app.analysis
        if analysis is None or app.current_pdu is None or app.current_pdu >= len(analysis.pdus):
            return None
        for message in analysis.messages_for(analysis.pdus[app.current_pdu]):
            if message.command_field != C_STORE_RQ and message.request is not None:
                message = analysis.messages[message.request]
            if message.command_field == C_STORE_RQ and message.has_dataset:
                return message
        return None

    def validate_current(self) -> None:
        app = self.app
        analysis = app.analysis
        if analysis is None or not analysis.finished:
            app.notify("Validation waits until indexing is complete", severity="warning")
            return
        message = self.stored_object_at_cursor()
        if message is None:
            app.notify("V validates a stored object: put the cursor on a C-STORE-RQ (or its response)",
                       severity="warning")
            return
        known = analysis.validation.for_message(message.index)
        if known is not None:
            app.notify(str(self._summary(message, known)))
            return
        if message.index in self.running:
            return
        self.running.add(message.index)
        app.notify(f"Validating message {message.index + 1} ({message.command_name})…")
        app.run_worker(lambda: self._validate(analysis, message.index), thread=True, group="validate")

    def _validate(self, analysis, index: int) -> None:
        before = len(analysis.expert)
        analysis.plugins.hook.dicomtui_validate_messages(analysis=analysis, messages=[index],
                                                        report=ExpertReport(analysis))
        self.app.deliver(self._done, analysis, index, before)

    def _done(self, analysis, index: int, before: int) -> None:
        self.running.discard(index)
        app = self.app
        if analysis is not app.analysis:
            return  # reloaded meanwhile
        added = analysis.expert[before:]
        if added:
            app.expert_pane.show_items(analysis.expert)
            app.update_status()
        result = analysis.validation.for_message(index)
        if result is None:
            missing = next((item.message for item in added if item.code == "data.validator-missing"),
                           "not validated (no plugin answered)")
            app.notify(str(missing), severity="error", timeout=10)
            return
        app.details.show_current()
        app.notify(str(self._summary(analysis.messages[index], result)),
                   severity="warning" if result.errors or result.failed else "information")

    @staticmethod
    def _summary(message, result) -> str:
        what = f"Message {message.index + 1}"
        if result.skipped:
            return f"{what}: not validated — {result.skipped}"
        if result.failed:
            return f"{what}: {result.failed}"
        iod = f" as {result.iod}" if result.iod else ""
        return (f"{what}{iod}: {counted(result.errors, 'error')}, {counted(result.warnings, 'warning')} "
                f"({result.tool}; details under its data set)")
