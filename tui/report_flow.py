"""The UI's report key (H): the --html page of what is loaded, written where the user says.

The dialog asks for the file (``dicomtui-report-<capture>.html`` in the working directory by
default) and what the page may show: AE titles and addresses mapped, or real values for
internal use (the same choices as ``--anonymize-ae``, ``--anonymize-network`` and
``--html-real-values``).  The page is rendered in a worker thread; a toast says where it went.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label

from .path_dialog import PathDialog


@dataclass(slots=True)
class ReportChoice:
    path: str
    map_ae: bool = False
    map_network: bool = False
    real_values: bool = False
    overwrite: bool = False


class ReportScreen(PathDialog):
    """The page's file and what it may show (dismisses with a ``ReportChoice`` or None)."""

    PATH_ID, GO_ID, EMPTY_TEXT = "report-path", "report-go", "Give an output file"

    DEFAULT_CSS = """
    ReportScreen { align: center middle; }
    ReportScreen > Vertical { width: 78; max-width: 100%; height: auto; border: round $primary;
        background: $surface; padding: 0 1; }
    ReportScreen Horizontal { height: auto; }
    ReportScreen Button { margin: 0 1 0 0; }
    """

    CHOICES = {"report-map-ae": "replace AE titles",
               "report-map-network": "replace IP addresses",
               "report-real-values": "real UIDs and values (internal use only)"}

    @staticmethod
    def _label(text: str, value: bool) -> str:
        # The state in words too: a checkbox's mark differs only in colour (and not in a text capture).
        return f"{text}: {'yes' if value else 'no'}"

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.checkbox.label = self._label(self.CHOICES[event.checkbox.id], event.value)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("HTML report for a vendor ticket (one file, no patient data)", style="bold"))
            yield Input(self.path, placeholder="output file (.html)", id="report-path")
            for checkbox_id, label in self.CHOICES.items():
                yield Checkbox(self._label(label, False), id=checkbox_id)
            with Horizontal():
                yield Button("Write", variant="primary", id="report-go")
                yield Button("Cancel", id="report-cancel")

    def choice(self, path: str) -> ReportChoice:
        return ReportChoice(os.path.abspath(os.path.expanduser(path)),
                            map_ae=self.query_one("#report-map-ae", Checkbox).value,
                            map_network=self.query_one("#report-map-network", Checkbox).value,
                            real_values=self.query_one("#report-real-values", Checkbox).value)


def default_path(captures: list[str], folder: str) -> str:
    """``dicomtui-report-<first capture>.html`` in ``folder``, numbered if that is taken."""
    stem = os.path.basename(captures[0]) if captures and captures[0] != "-" else "capture"
    for suffix in (".gz", ".pcapng", ".pcap", ".cap"):
        stem = stem.removesuffix(suffix)
    path = os.path.join(folder, f"dicomtui-report-{stem}.html")
    number = 1
    while os.path.exists(path):
        number += 1
        path = os.path.join(folder, f"dicomtui-report-{stem}~{number}.html")
    return path


class ReportFlow:
    def __init__(self, app) -> None:
        self.app = app
        self.last_written = None  # ReportWritten of the last page (tests read it)

    def open(self) -> None:
        app = self.app
        if app.analysis is None or not app.analysis.finished:
            app.notify("The report is available when the analysis is complete (live: stop the capture with ctrl+e)",
                       severity="warning")
            return
        app.push_screen(ReportScreen(default_path(app.captures, os.getcwd())), self.chosen)

    def chosen(self, choice: ReportChoice | None) -> None:
        if choice is None:
            return
        if os.path.isdir(choice.path):
            choice.path = default_path(self.app.captures, choice.path)
        elif os.path.exists(choice.path):
            self.app.notify(f"{choice.path} exists: give another name", severity="error")
            return
        self.app.notify("Writing the report…", timeout=2)
        self.app.run_worker(lambda: self._run(choice), thread=True, exclusive=True, group="report")

    def _run(self, choice: ReportChoice) -> None:
        from dicomtui.core.views.report import RedactionSettings, ReportSettings, write_report

        app = self.app
        settings = ReportSettings(RedactionSettings(real_values=choice.real_values, map_ae=choice.map_ae,
                                                    map_network=choice.map_network),
                                  invocation="dicomtui (terminal UI, report key H)")
        try:
            written = write_report(app.analysis, choice.path, settings)
        except OSError as exc:
            app.deliver(app.notify, f"Report not written: {choice.path}: {exc.strerror or exc}", severity="error",
                        timeout=8)
            return
        self.last_written = written
        app.deliver(app.notify, f"Report written to {written.path}\n({written.size / 1024:.0f} kB, "
                                f"{written.seconds:.1f} s; open it in any browser)", title="Report", timeout=12)
