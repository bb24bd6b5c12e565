"""The terminal UI on a live capture: the packet list grows and follows, the panes update as it goes.

``LiveDicomApp`` is the file UI (``DicomApp``) whose loading worker runs a
``LiveSession`` instead of ``analyze``: every ``LiveUpdate`` is posted as the
same ``LoadProgress`` message the file loader posts, so the packet list,
filter, detail and bytes panes work unchanged.  On top of that:

- follow: the cursor stays on the newest row (like termshark's auto-scroll)
  until the user moves it; ``l`` toggles (``F`` and ``w`` are the main screen's findings and C-MOVE keys);
- the status line: capturing/stopped, packets and DICOM PDUs per second, the
  capture tool's dropped-packet count, rows dropped by the retention limit;
- ``ctrl+e`` stops the capture, or starts a new one; ``w`` saves what was
  captured (every packet, or only the DICOM connections' frames);
- the expert pane shows settled findings and, marked, the provisional ones;
  the associations view (``a``) refreshes while open.

Quitting (``q``, or the terminal going away) stops the capture tool and waits
for the worker, so the tool is reaped and ``-w`` files are complete.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import threading
import time

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.base.wording import counted
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.pipeline.incremental import IncrementalAnalysis, LiveUpdate
from dicomtui.core.pipeline.live import LiveOptions, LiveSession
from dicomtui.core.wire.capture import CaptureError
from dicomtui.core.wire.capture_tool import CaptureToolError
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet
from textual.worker import get_current_worker

from .app import EXIT_CAPTURE, DicomApp, LoadFailed, LoadProgress
from .associations import AssociationsScreen
from .expert_pane import counts_text
from .main_screen import StatusBar

EXPERT_REFRESH_SECONDS = 1.0


class SaveCaptureScreen(ModalScreen[tuple[str, bool] | None]):
    """Where to save the captured packets, and whether only the DICOM connections' frames."""

    DEFAULT_CSS = """
    SaveCaptureScreen { align: center middle; }
    SaveCaptureScreen > Vertical { width: 72; height: auto; border: round $primary; padding: 1 2;
                                   background: $surface; }
    SaveCaptureScreen Input { margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default_path: str) -> None:
        super().__init__()
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Save the captured packets to (pcapng; DICOM only: pcap or pcapng):")
            yield Input(self.default_path, id="save-path")
            with RadioSet(id="save-what"):
                yield RadioButton("every captured packet", value=True, id="save-all")
                yield RadioButton("only the frames of DICOM connections", id="save-dicom")
            yield Button("Save", variant="primary", id="save")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self._done()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._done()

    def _done(self) -> None:
        path = self.query_one("#save-path", Input).value.strip()
        if path:
            dicom_only = self.query_one("#save-dicom", RadioButton).value
            self.dismiss((path, dicom_only))

    def action_cancel(self) -> None:
        self.dismiss(None)


class LiveDicomApp(DicomApp):
    """The UI on a live capture (see the module docstring)."""

    BINDINGS = DicomApp.BINDINGS + [
        Binding("l", "toggle_follow", "Follow"),
        Binding("ctrl+e", "toggle_capture", "Stop/Start"),
        Binding("W", "save_capture", "Save"),
    ]

    def __init__(self, live: LiveOptions, config: AnalysisConfig | None = None, host=None, **kwargs) -> None:
        super().__init__([live.name], config, host, **kwargs)
        self.live = live
        self.session: LiveSession | None = None
        self.incremental: IncrementalAnalysis | None = None
        self.previous: list[IncrementalAnalysis] = []
        self.follow = True
        self._followed_pdu: int | None = None  # where follow last put the cursor
        self.captures_started = 0
        self.session_done = threading.Event()
        self.session_done.set()
        self.quit_when_stopped = False
        self.last_update: LiveUpdate | None = None
        self._expert_shown: tuple[int, int] | None = None
        self._expert_refreshed = 0.0
        self.title = f"dicomtui {live.name}"
        self.sub_title = live.name

    # -- the capture worker ----------------------------------------------------------------

    def _options(self) -> LiveOptions:
        options = dataclasses.replace(self.live)
        if self.captures_started > 1:
            # A restarted capture reads a new stream; a pipe or a followed file cannot be read again.
            if options.write:
                stem, dot, suffix = options.write.rpartition(".")
                options.write = f"{stem}-{self.captures_started}.{suffix}" if dot else \
                    f"{options.write}-{self.captures_started}"
        return options

    def start_loading(self) -> None:
        if not self.session_done.is_set():
            return
        if self.captures_started and self.live.request is None:
            self.notify_plain("A pipe or a followed file cannot be captured again", severity="warning")
            return
        if self.incremental is not None:
            self.previous.append(self.incremental)  # views may still read its spool until replaced
        self.captures_started += 1
        self.follow = True
        self._followed_pdu = None
        self._expert_shown = None
        self.session_done.clear()
        super().start_loading()

    @work(thread=True, exclusive=False, group="live", exit_on_error=True)
    def load_capture(self, generation: int) -> None:
        try:
            incremental = IncrementalAnalysis(self.config, self.host, self.live.name, packet_limit=self.live.packets)
            session = LiveSession(self._options(), incremental)
            self.incremental, self.session = incremental, session
            try:
                session.start()
            except (CaptureToolError, CaptureError, OSError) as exc:
                session.stop("error")
                session._shutdown()
                self.post_message(LoadFailed(str(exc), generation))
                return

            worker = get_current_worker()

            posted = [0.0]

            def on_update(update: LiveUpdate) -> None:
                if worker.is_cancelled:  # the app is shutting down
                    session.stop("quit")
                self.last_update = update
                now = time.monotonic()
                news = update.pdus or update.messages or update.expert or update.associations_ended
                if news or update.final or now - posted[0] >= 1.0:  # at least once a second: the rates
                    posted[0] = now
                    self.post_message(LoadProgress(incremental.analysis, generation))

            self.post_message(LoadProgress(incremental.analysis, generation))
            try:
                session.run(on_update)
            except CaptureError as exc:
                session.status.error = str(exc)
                self.post_message(LoadProgress(incremental.analysis, generation))
        finally:
            self.session_done.set()

    def on_load_failed(self, message: LoadFailed) -> None:
        if message.generation != self.load_generation:
            return
        if self.captures_started > 1:  # keep the previous capture on screen
            self.notify_plain(f"Capture failed: {message.error}", severity="error", timeout=8)
            return
        super().on_load_failed(message)

    def on_load_progress(self, message: LoadProgress) -> None:
        super().on_load_progress(message)
        if message.generation != self.load_generation or self.analysis is None:
            return
        self._follow_newest()
        self._refresh_expert(message.finished)
        screen = self.screen
        if isinstance(screen, AssociationsScreen) and screen.analysis is self.analysis:
            screen.fill_rows()
        if message.finished and self.quit_when_stopped:
            self.exit(EXIT_CAPTURE if self.session and self.session.status.error else 0)

    # -- follow ----------------------------------------------------------------------------

    def _follow_newest(self) -> None:
        packets = self.packet_list
        if not self.follow or not packets.row_count:
            return
        if self._followed_pdu is not None and packets.selected_pdu != self._followed_pdu:
            # The user moved the cursor since follow last did: stop following (l resumes).
            self.follow = False
            self.update_status()
            return
        packets.cursor_to(packets.row_count - 1)
        self._followed_pdu = packets.selected_pdu

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self._followed_pdu = None
        self.notify_plain("Following the newest packet" if self.follow else "Follow off (l resumes)", timeout=2)
        self._follow_newest()
        self.update_status()

    # -- expert pane -----------------------------------------------------------------------

    def _refresh_expert(self, final: bool) -> None:
        incremental = self.incremental
        if incremental is None or incremental.analysis is not self.analysis:
            return
        analysis = self.analysis
        provisional = [] if final else list(incremental.provisional)
        shown = (len(analysis.expert), len(provisional))
        now = time.monotonic()
        if shown == self._expert_shown or (not final and now - self._expert_refreshed < EXPERT_REFRESH_SECONDS):
            return
        self._expert_shown, self._expert_refreshed = shown, now
        marked = [dataclasses.replace(item, message="(provisional) " + item.message) for item in provisional]
        self.expert_pane.show_items(list(analysis.expert) + marked)

    # -- capture control -------------------------------------------------------------------

    def action_toggle_capture(self) -> None:
        session = self.session
        if session is not None and not self.session_done.is_set():
            session.stop("stopped from the UI")
            self.notify_plain("Stopping the capture…", timeout=2)
            return
        self.start_loading()

    def action_reload(self) -> None:
        self.action_toggle_capture()

    def keylog_added(self) -> None:
        """Live: the running capture keeps its secrets (give --tls-keylog at the start: a key log
        that grows is read again); the next capture started here uses the new one."""
        self.notify_plain("TLS key log added: used by the next capture started here (ctrl+e); give "
                          "--tls-keylog when starting to decrypt the running one", timeout=6)

    async def action_quit(self) -> None:
        session = self.session
        if session is not None and not self.session_done.is_set():
            if self.quit_when_stopped:  # a second q / ctrl+c while the tool is stopping: leave now
                self.exit(EXIT_CAPTURE if self.load_error else 0)
                return
            self.quit_when_stopped = True
            self.notify("Stopping the capture, then quitting (again to quit at once)", timeout=3)
            session.stop("quit")
            self.update_status()
            return
        self.exit(EXIT_CAPTURE if self.load_error else 0)

    def action_save_capture(self) -> None:
        if self.incremental is None or not self.analysis or not self.analysis.frame_count:
            self.notify_plain("Nothing captured yet", severity="warning")
            return
        default = os.path.join(os.getcwd(), time.strftime("dicomtui-live-%Y%m%d-%H%M%S.pcapng"))
        self.push_screen(SaveCaptureScreen(default), self._save_chosen)

    def _save_chosen(self, choice: tuple[str, bool] | None) -> None:
        if choice is not None:
            self.save_capture(choice[0], choice[1], self.incremental)

    @work(thread=True, exclusive=True, group="save")
    def save_capture(self, path: str, dicom_only: bool, incremental: IncrementalAnalysis) -> None:
        try:
            message = save_captured(incremental, path, dicom_only, self.host, self.config)
        except (OSError, CaptureError, ValueError) as exc:
            self.call_from_thread(self.notify_plain, f"Save failed: {exc}", severity="error")
            return
        self.call_from_thread(self.notify_plain, str(message), timeout=6)

    # -- status line -----------------------------------------------------------------------

    def update_status(self) -> None:
        session = self.session
        if session is None or self.load_error:
            super().update_status()
            return
        status = session.status
        analysis = self.analysis
        text = Text(no_wrap=True, overflow="ellipsis")
        if status.capturing:
            text.append("● capturing", style="bold green")
            text.append(f" {safe_text(status.source)}" + (f" ({status.tool})" if status.tool else ""))
        else:
            text.append("■ stopped", style="bold yellow")
            if status.error:  # first: at the end of the line the terminal's width cut it off
                text.append(f" error: {safe_text(status.error)}", style="bold red")
            else:
                text.append(f" ({safe_text(status.stop_reason or 'stopped')})")
        text.append(f" | {counted(status.packets, 'packet')} {status.packets_per_second:,.0f}/s, "
                    f"{counted(status.pdus, 'PDU')} {status.pdus_per_second:,.0f}/s")
        if session.process is not None:
            dropped = "?" if status.dropped is None else f"{status.dropped:,}"
            text.append(" | dropped: ")
            text.append(dropped, style="bold red" if status.dropped else "")
        update = self.last_update
        if update is not None and update.dropped is not None and update.dropped.pdus:
            text.append(f" | retention dropped {counted(update.dropped.pdus, 'PDU')}", style="yellow")
        if analysis is not None:
            text.append(f" | expert: {counts_text(analysis.expert)}")
        text.append(" | follow" if self.follow else " | follow off (l)", style="bold" if self.follow else "dim")
        if status.error and status.capturing:
            text.append(f" | error: {safe_text(status.error)}", style="bold red")
        if self.display_filter is not None:
            text.append(" | filter: ", style="bold")
            text.append(safe_text(self.display_filter.text))
            text.append(f" {self.filtering.status}")
        try:
            self.main_screen.query_one(StatusBar).update(text)
        except Exception:  # during shutdown
            pass

    def action_export(self) -> None:
        if self.analysis is not None and not self.analysis.finished:
            self.notify_plain("Stop the capture (ctrl+e) to export; dicomtui --export DIR -i IFACE records live",
                              severity="warning")
            return
        super().action_export()

    def on_unmount(self) -> None:
        if self.session is not None:
            self.session.stop("quit")  # the worker then stops the tool and finishes

    def stop_and_wait(self, timeout: float = 10.0) -> None:
        """Stop the capture (if running) and wait until its tool is reaped and files are closed."""
        if self.session is not None:
            self.session.stop("quit")
        self.session_done.wait(timeout)

    def close_spools(self) -> None:
        for incremental in self.previous + ([self.incremental] if self.incremental else []):
            incremental.close()


def save_captured(incremental: IncrementalAnalysis, path: str, dicom_only: bool, host, config) -> str:
    """Write what a live capture holds to ``path``; returns a sentence for the user."""
    spool = incremental.spool
    if not dicom_only:
        size = spool.save(path)
        return f"Saved {counted(incremental.analysis.frame_count, 'packet')} ({counted(size, 'byte')}) to {path}"
    from dicomtui.core.api.export import WRITES_CAPTURE, ExportOptions
    from dicomtui.core.views.export import exporters_with

    # Whichever loaded exporter writes captures (the built-in pcap one, unless disabled or replaced).
    writers = exporters_with(host, WRITES_CAPTURE)
    if not writers:
        raise ValueError("no loaded exporter writes captures (is the pcap exporter disabled?); "
                         "save every packet instead")
    with tempfile.TemporaryDirectory(prefix="dicomtui-save-") as work_dir:
        everything = os.path.join(work_dir, "all.pcapng")
        spool.save(everything)
        # The exporter selects the DICOM connections' frames from an analysis of what was saved.
        analysis = analyze([everything], config, host, run_rules=False)
        try:
            result = writers[0].export(analysis, os.path.join(work_dir, "out"), ExportOptions())
        finally:
            analysis.close()
        if not result.written:
            raise ValueError("no DICOM connection in what was captured")
        shutil.move(result.written[0][0], path)
    return f"Saved the frames of {len(analysis.connections)} DICOM connection(s) to {path}"


def _terminal_for_keys(live: LiveOptions) -> bool:
    """A capture piped in on stdin: keep reading it from another descriptor, take keys from /dev/tty."""
    if live.pipe_fd is None:
        return True
    try:
        tty = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False
    live.pipe_fd = os.dup(live.pipe_fd)
    os.dup2(tty, 0)
    os.close(tty)
    return True


def run_live_app(live: LiveOptions, config: AnalysisConfig, host) -> int:
    """The UI on a live capture; returns the exit status."""
    if not _terminal_for_keys(live):  # no terminal to take keys from: the summary, as it happens
        from dicomtui.core.views.live import LiveOutput, run_live

        return run_live(LiveOutput(view="summary"), config, host, live)
    app = LiveDicomApp(live, config, host)
    try:
        status = app.run()
    finally:
        app.stop_and_wait()
        app.close_spools()
    session = app.session
    if app.load_error:
        print(f"dicomtui: {safe_text(app.load_error)}", file=sys.stderr)
        return EXIT_CAPTURE
    if session is not None:
        for path in session.status.written:
            print(f"dicomtui: wrote {safe_text(path)}", file=sys.stderr)
        if session.status.error:
            print(f"dicomtui: {safe_text(session.status.error)}", file=sys.stderr)
            return EXIT_CAPTURE
    return int(status or 0)
