"""The Textual application: packet list, detail tree, bytes and expert panes over one capture.

The capture is analysed in a thread worker; its progress callback posts
messages, and each one makes the packet list re-measure its row count, so the
first rows appear while indexing goes on.  Decoding for the detail pane, the
display filter and text search also run in thread workers: the UI thread only
renders visible rows and reacts to keys.

``DicomApp`` holds the analysis and the key bindings; what each key does lives
in a helper of its own (``FilterController``, ``DetailPresenter``,
``Navigator``, ``ExportFlow``, ``PreferencesFlow``) or a screen of its own.
Workers hand results back with ``app.deliver(callback, *args)``.

Entry point: ``run_app(captures, config, host) -> exit status``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.base.wording import counted
from dicomtui.core.pipeline import Analysis, AnalysisConfig, analyze
from dicomtui.core.wire.capture import CaptureError
from rich.text import Text
from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input

from .associations import AssociationsScreen
from .bytes_view import BytesView
from .detail_tree import DetailTree
from .detail_view import DetailPresenter
from .expert_pane import ExpertPane, counts_text
from .export_flow import ExportFlow
from .report_flow import ReportFlow
from .filtering import FilterController
from .index import PacketIndex
from .main_screen import FilterBar, MainScreen
from .navigation import Navigator
from .notify import Toasts, markup_plain
from .packet_list import PacketList
from .prefs import preference
from .prefs_flow import PreferencesFlow
from .screens import HelpScreen
from .validate_flow import ValidationFlow
from .value_actions import ValueActions
from .view_settings import ViewSettings

EXIT_OK, EXIT_CAPTURE, EXIT_CRASH = 0, 1, 70  # 70: EX_SOFTWARE, an internal error


# -- messages from workers -------------------------------------------------------------------


class LoadProgress(Message):
    def __init__(self, analysis: Analysis, generation: int) -> None:
        super().__init__()
        self.analysis = analysis
        self.generation = generation
        self.finished = analysis.finished


class LoadFailed(Message):
    def __init__(self, error: str, generation: int) -> None:
        super().__init__()
        self.error = error
        self.generation = generation


class Deliver(Message):
    """A worker's result for a helper: ``callback(*args, **kwargs)`` runs on the UI thread."""

    def __init__(self, callback: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        super().__init__()
        self.callback = callback
        self.args = args
        self.kwargs = kwargs


class DicomApp(App[int]):
    """dicomtui's terminal UI."""

    TITLE = "dicomtui"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        # As in less, termshark and most terminal programs (Textual's own ctrl+c only says to press q).
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "open_bar('filter')", "Filter"),
        Binding("s", "open_search", "Search", show=False),
        Binding("n", "search(True)", "Next match", show=False),
        Binding("N", "search(False)", "Prev match", show=False),
        Binding("colon,ctrl+g", "open_bar('goto')", "Go to", show=False),
        Binding("e", "expert_step(True)", "Next expert"),
        Binding("E", "expert_step(False)", "Prev expert", show=False),
        Binding("i", "toggle_expert", "Expert pane", show=False),
        Binding("a", "associations", "Assocs"),
        Binding("W", "workflow", "Workflow", show=False),  # commitment, MPPS, worklist (live: W saves)
        Binding("t", "timing_screen('stats')", "Stats"),
        Binding("L", "timing_screen('ladder')", "Ladder", show=False),
        Binding("o", "timing_screen('plots')", "Plots", show=False),
        Binding("f", "toggle_subtrees", "Flat/nested", show=False),
        Binding("x", "export", "Export"),
        Binding("H", "html_report", "Report", show=False),
        Binding("p", "preferences", "Prefs"),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("K", "tls_keylog", "TLS key log", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("T", "cycle_time_format", "Time format", show=False),  # t is the statistics screen
        Binding("v", "show_value", "Full value", show=False),
        Binding("y", "copy(False)", "Copy", show=False),
        Binding("Y", "copy(True)", "Copy subtree", show=False),
        Binding("r", "related", "Request/response", show=False),
        Binding("w", "move_link", "C-MOVE link", show=False),  # where the C-MOVE went (o: plots)
        Binding("F", "findings", "Findings of PDU", show=False),
        Binding("backspace", "back", "Back", show=False),
        Binding("c", "columns", "Columns", show=False),
        Binding("V", "validate_object", "Validate object", show=False),  # v is the full value
    ]

    # Actions that act on the main screen: inactive (and not offered in the footer) while another
    # screen (associations, help, a dialog) is on top.
    MAIN_SCREEN_ACTIONS = {"open_bar", "search", "expert_step", "toggle_expert", "toggle_subtrees", "export",
                           "html_report", "clear_filter", "cycle_time_format", "show_value", "copy", "related",
                           "move_link", "findings", "back", "columns", "associations", "reload", "workflow",
                           "tls_keylog",
                           "validate_object"}

    def __init__(self, captures: list[str], config: AnalysisConfig | None = None, host=None,
                 *, preferences_path: Path | None = None) -> None:
        super().__init__()
        if host is None:  # the command line (the composition root) builds it with the built-ins
            raise TypeError("DicomApp needs the plugin host (dicomtui.cli.make_host)")
        self.captures = list(captures)
        self.config = config or AnalysisConfig()
        self.host = host
        self.preferences_path = preferences_path
        self.analysis: Analysis | None = None
        self.index: PacketIndex | None = None
        self.load_generation = 0
        self.load_started = 0.0
        self.load_error: str | None = None
        self.crashed = False
        self.startup_warnings: list[str] = []  # e.g. bad values in the preferences file
        self.initial_filter: str | None = None  # -Y on the command line
        self.reload_pdu: int | None = None  # the selection to restore after ctrl+r
        self.search_in_tree = False  # n / N repeat the last search where it was made
        self.first_rows_seconds: float | None = None
        self.loaded_seconds: float | None = None
        self.toasts = Toasts()
        self.filtering = FilterController(self)
        self.details = DetailPresenter(self)
        self.navigator = Navigator(self)
        self.exports = ExportFlow(self)
        self.reports = ReportFlow(self)
        self.preferences = PreferencesFlow(self)
        self.view_settings = ViewSettings(self)
        self.values = ValueActions(self)
        self.validation = ValidationFlow(self)
        names = ", ".join(os.path.basename(path) for path in self.captures)
        self.sub_title = names
        self.title = f"dicomtui {names}"

    # -- the one notification path ---------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every toast: plain text shown literally (see ``tui.notify``); ``markup`` is ignored.

        Textual's own toasts (the command palette's screenshot, and any a new Textual adds) are
        written in its markup: those are rendered to their plain text here, not shown as tags.
        """
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller == "textual" or caller.startswith("textual."):
            message, title = markup_plain(message), markup_plain(title)
        text, title_text = self.toasts.prepare(message, title)
        super().notify(text, title=title_text, severity=severity, timeout=timeout, markup=False)

    def _on_notify(self, event) -> None:
        self.toasts.make_room(self)  # toasts arrive as messages: trim when one is added
        super()._on_notify(event)

    def notify_plain(self, message: str, **kwargs) -> None:  # kept for plugins and older callers
        self.notify(message, **kwargs)

    def deliver(self, callback: Callable[..., Any], *args, **kwargs) -> None:
        """From a worker thread: run ``callback`` on the UI thread (in message order)."""
        self.post_message(Deliver(callback, args, kwargs))

    def on_deliver(self, message: Deliver) -> None:
        message.callback(*message.args, **message.kwargs)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MAIN_SCREEN_ACTIONS and getattr(self, "main_screen", None) is not None \
                and self.screen is not self.main_screen:
            return False
        return True

    # -- crashes ---------------------------------------------------------------------------

    def pop_screen(self):
        """A screen dismissed twice (Enter twice on a command palette entry, a key repeated while a
        dialog closes) must not take the app down: only the main screen is left, so nothing to pop."""
        if len(self._screen_stack) <= 1:
            return self._pop_nothing()
        return super().pop_screen()

    def _pop_nothing(self):
        from textual.await_complete import AwaitComplete

        async def nothing() -> None:
            return None
        return AwaitComplete(nothing())

    def _handle_exception(self, error: Exception) -> None:
        # Textual restores the terminal and prints the traceback; the exit status must say so.
        self.crashed = True
        super()._handle_exception(error)

    # -- setup -----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        self.main_screen = MainScreen()
        return self.main_screen

    def main_screen_ready(self, screen: MainScreen) -> None:
        flat = preference(self.config.options, "subtree_style") == "flat"
        self.detail_tree.set_flat(flat)
        self.view_settings.apply()
        self.detail_tree.show_message("Indexing the capture…")
        self.expert_pane.show_loading("Expert findings appear when indexing is complete")
        if self.size.height >= 40:
            screen.add_class("-expert")
        self.packet_list.focus()
        for warning in self.startup_warnings:
            self.notify(str(warning), severity="warning", timeout=10)
        self.start_loading()
        if self.initial_filter:
            self.filtering.apply(self.initial_filter)

    @property
    def packet_list(self) -> PacketList:
        return self.main_screen.packet_list

    @property
    def detail_tree(self) -> DetailTree:
        return self.main_screen.detail_tree

    @property
    def bytes_view(self) -> BytesView:
        return self.main_screen.bytes_view

    @property
    def expert_pane(self) -> ExpertPane:
        return self.main_screen.expert_pane

    @property
    def filter_bar(self) -> FilterBar:
        return self.main_screen.filter_bar

    @property
    def current_pdu(self) -> int | None:
        return self.details.current_pdu

    @property
    def display_filter(self):
        return self.filtering.display_filter

    def expert_pdu(self, item) -> int | None:
        return self.navigator.expert_pdu(item)

    def apply_filter(self, text: str) -> bool:
        return self.filtering.apply(text)

    def select_pdu(self, pdu: int) -> None:
        """Put the cursor on PDU ``pdu`` (clearing a filter that hides it); screens call this."""
        self.navigator.jump(pdu)

    async def _on_key(self, event) -> None:
        # Keys typed right after / : s were forwarded to the pane focused when they arrived and
        # bubble up here after the bar opened: type them into the bar instead of dropping them.
        # (Enter and Escape need nothing: bindings are looked up from the bar, now focused.)
        bar = self.filter_bar if self.screen is self.main_screen else None
        if bar is not None and bar.has_class("-visible") and self.focused is bar and event.is_printable \
                and event.character:
            event.prevent_default()
            event.stop()
            bar.insert_text_at_cursor(event.character)

    # -- loading ---------------------------------------------------------------------------

    def start_loading(self) -> None:
        self.load_generation += 1
        self.load_started = time.perf_counter()
        self.first_rows_seconds = None
        self.loaded_seconds = None
        if self.analysis is not None and self.analysis.finished:
            self.analysis.close()  # one still loading is closed by its worker (``_load``)
        self.analysis = None
        self.index = None
        self.navigator.reset()
        self.update_status()
        self.load_capture(self.load_generation)

    def load_capture(self, generation: int) -> None:
        """Start the worker that fills ``self.analysis`` (the live app reads a capture session instead)."""
        self.run_worker(lambda: self._load(generation), thread=True, exclusive=True, group="load",
                        exit_on_error=True)

    def _load(self, generation: int) -> None:
        def progress(analysis: Analysis) -> None:
            self.post_message(LoadProgress(analysis, generation))
        try:
            analysis = analyze(self.captures, self.config, self.host, progress=progress, progress_interval=0.1)
        except CaptureError as exc:
            self.post_message(LoadFailed(str(exc), generation))
            return
        if generation != self.load_generation or not self.is_running:
            analysis.close()  # replaced by a reload, or the app quit while it loaded: nobody will read it

    def on_load_failed(self, message: LoadFailed) -> None:
        if message.generation != self.load_generation:
            return
        self.load_error = message.error
        self.exit(EXIT_CAPTURE, return_code=EXIT_CAPTURE)

    def on_load_progress(self, message: LoadProgress) -> None:
        if message.generation != self.load_generation:
            return
        packets = self.packet_list
        filtering = self.filtering
        if self.analysis is not message.analysis:
            self.analysis = message.analysis
            self.index = PacketIndex(message.analysis)
            packets.set_index(self.index)
            if filtering.display_filter is not None:
                filtering.start()
        if self.first_rows_seconds is None and len(self.analysis.pdus):
            self.first_rows_seconds = time.perf_counter() - self.load_started
        if message.finished and self.loaded_seconds is None:
            self.loaded_seconds = time.perf_counter() - self.load_started
            self.index.decoded_pdus.clear()  # PDUs were renumbered at the end of the pass
            self.index.decoded_commands.clear()
            self.index.decoded_datasets.clear()
            self.expert_pane.show_items(self.analysis.expert)
            if self.reload_pdu is not None and self.reload_pdu < len(self.analysis.pdus):
                packets.cursor_to(self.reload_pdu if filtering.display_filter is None else 0)
                self.details.current_pdu = self.reload_pdu
            self.reload_pdu = None
            if filtering.display_filter is not None:
                filtering.start()
            else:
                packets.data_changed()
            packets.rehighlight()
        elif filtering.display_filter is None:
            packets.data_changed()
        self.update_status()

    # -- status line -----------------------------------------------------------------------

    def update_status(self) -> None:
        if hasattr(self, "main_screen"):
            self.main_screen.show_status(status_text(self.analysis, self.filtering, self.load_error))

    # -- events from the panes -------------------------------------------------------------

    def on_packet_list_highlighted(self, message: PacketList.Highlighted) -> None:
        self.details.highlighted(message.pdu_index)

    def on_detail_tree_field_highlighted(self, message: DetailTree.FieldHighlighted) -> None:
        self.details.field_highlighted(message.data)

    def on_packet_list_activated(self, message: PacketList.Activated) -> None:
        self.detail_tree.focus()

    def on_expert_pane_jump(self, message: ExpertPane.Jump) -> None:
        self.navigator.jump_to_finding(message.item)

    @on(FilterBar.Closed)
    def _bar_closed(self) -> None:
        self.filtering.close_bar()

    @on(FilterBar.TooLong)
    def _bar_too_long(self) -> None:
        self.filtering.too_long()

    @on(Input.Changed, "#bar")
    def _bar_changed(self, event: Input.Changed) -> None:
        self.filtering.bar_changed(event.value)

    @on(Input.Submitted, "#bar")
    def _bar_submitted(self, event: Input.Submitted) -> None:
        self.filtering.bar_submitted(event.value)

    # -- actions (keys and the command palette) --------------------------------------------

    def action_open_bar(self, mode: str) -> None:
        self.filtering.open_bar(mode)

    def action_clear_filter(self) -> None:
        if self.filtering.display_filter is not None:
            self.filtering.apply("")

    def action_open_search(self) -> None:
        self.search_in_tree = self.focused is self.detail_tree
        self.filtering.open_bar("search")

    def action_search(self, forward: bool = True) -> None:
        if self.search_in_tree:
            self.search_tree(self.filtering.search_text, forward)
        else:
            self.filtering.search(forward)

    def search_tree(self, text: str, forward: bool = True) -> None:
        from .tree_search import search_tree

        if not text:
            self.notify("No search text: press s in the detail tree to search it", severity="warning")
            return
        if not search_tree(self.detail_tree, text, forward):
            self.notify(f"{text!r} not found in this PDU's tree", severity="warning")
        else:
            self.detail_tree.focus()

    def action_expert_step(self, forward: bool = True) -> None:
        self.navigator.expert_step(forward)

    def action_toggle_expert(self) -> None:
        screen = self.main_screen
        screen.toggle_class("-expert")
        if screen.has_class("-expert"):
            self.expert_pane.focus()
        else:
            self.packet_list.focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_associations(self) -> None:
        if self.analysis is None:
            return
        threshold = preference(self.config.options, "slow_response_seconds")
        self.push_screen(AssociationsScreen(self.analysis, threshold), self._association_chosen)

    def action_workflow(self) -> None:
        """Storage commitment, MPPS and worklist per study (tui/workflow_screen.py); Enter: the message."""
        from .workflow_screen import WorkflowScreen

        if self.analysis is None:
            return
        self.push_screen(WorkflowScreen(self.analysis), self._workflow_message_chosen)

    def _workflow_message_chosen(self, chosen: int | None) -> None:
        if chosen is not None and 0 <= chosen < len(self.analysis.messages):
            self.select_pdu(self.analysis.messages[chosen].first_pdu)

    def action_timing_screen(self, which: str) -> None:
        """Statistics, ladder or plots (tui/timing_screens.py) for the selected PDU's association."""
        from .timing_screens import open_timing_screen

        open_timing_screen(self, which)

    def _association_chosen(self, chosen: int | None) -> None:
        if chosen is not None:
            self.filtering.apply(f"assoc == {chosen}")

    def action_toggle_subtrees(self) -> None:
        tree = self.detail_tree
        tree.set_flat(not tree.flat)
        self.notify("Data set sequences: " + ("flat list" if tree.flat else "nested subtrees"), timeout=2)

    def action_export(self) -> None:
        self.exports.open()

    def action_html_report(self) -> None:
        self.reports.open()

    def action_preferences(self) -> None:
        self.preferences.open()

    def preferences_applied(self, values: dict[str, Any]) -> None:
        """The preferences screen saved ``values``: panes that depend on them redraw."""
        self.packet_list.data_changed()

    def action_tls_keylog(self) -> None:
        """Ask for a TLS key log; with one, analyse the capture again decrypting with it."""
        from dicomtui.tui.keylog_screen import KeyLogScreen

        current = self.config.options.get("tls.keylog_file", "")

        def chosen(path: str | None) -> None:
            if not path:
                return
            paths = [entry for entry in current.split(os.pathsep) if entry]
            if path not in paths:
                paths.append(path)
            self.config.options["tls.keylog_file"] = os.pathsep.join(paths)
            self.keylog_added()

        self.push_screen(KeyLogScreen(current), chosen)

    def keylog_added(self) -> None:
        """A key log was added to the options: analyse the capture again with it."""
        self.action_reload()

    def action_reload(self) -> None:
        self.notify("Reloading the capture…", timeout=2)
        self.reload_pdu = self.current_pdu  # put the cursor back where it was
        self.start_loading()

    # -- view settings, values, related PDUs: helpers of their own ---------------------------

    def action_cycle_time_format(self) -> None:
        self.view_settings.cycle_time_format()

    def action_columns(self) -> None:
        self.view_settings.choose_columns()

    def action_show_value(self) -> None:
        self.values.show()

    def action_copy(self, subtree: bool = False) -> None:
        self.values.copy(subtree)

    def copy_value(self, text: str, what: str) -> None:
        self.values.copy_text(text, what)

    def action_related(self) -> None:
        self.navigator.related()

    def action_move_link(self) -> None:
        self.navigator.move_link()

    def action_findings(self) -> None:
        self.navigator.findings()

    def action_back(self) -> None:
        self.navigator.back()

    def action_validate_object(self) -> None:
        self.validation.validate_current()

    def on_detail_tree_link_chosen(self, message: DetailTree.LinkChosen) -> None:
        self.navigator.jump(message.pdu_index, f"Went to PDU {message.pdu_index + 1} (backspace returns)")

    # -- command palette -------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in PALETTE:
            yield SystemCommand(title, help_text, lambda action=action: self.run_action(action))


# The command palette's entries: (title, help, the action a key runs), so a key and its entry run the
# same code; a test checks each action exists.
PALETTE = (
    ("Display filter", "Filter the packet list (/)", "open_bar('filter')"),
    ("Clear filter", "Show every packet", "clear_filter"),
    ("Search", "Find text in the packet list (s)", "open_search"),
    ("Go to packet", "Jump to a packet number (:)", "open_bar('goto')"),
    ("Associations", "Every association with its contexts (a)", "associations"),
    ("Next expert item", "Jump to the next finding (e)", "expert_step(True)"),
    ("Toggle expert pane", "Show or hide the expert findings (i)", "toggle_expert"),
    ("Toggle sequence subtrees", "Nested or flat data sets (f)", "toggle_subtrees"),
    ("Export", "Export objects through an exporter plugin (x)", "export"),
    ("HTML report", "One self-contained page for a vendor ticket, no patient data (H)", "html_report"),
    ("Preferences", "Ports, heuristic, subtree style, export (p)", "preferences"),
    ("Reload capture", "Analyse the capture again (ctrl+r)", "reload"),
    ("TLS key log", "Decrypt DICOM over TLS with a key log file (K)", "tls_keylog"),
    ("Time format", "Cycle r / a / ad / u / ud / e / dd / d (T)", "cycle_time_format"),
    ("Columns", "Choose, hide and reorder columns (c)", "columns"),
    ("Full value", "Show the selected value in full (v)", "show_value"),
    ("Copy value", "Copy the selected value (y; Y the subtree)", "copy(False)"),
    ("Request / response", "Go to the linked request or response (r)", "related"),
    ("C-MOVE link", "C-MOVE <-> its sub-association (w)", "move_link"),
    ("Workflow", "Storage commitment, MPPS and worklist per study (W)", "workflow"),
    ("Findings of this PDU", "Show the expert findings on the PDU (F)", "findings"),
    ("Validate object", "Check the stored object under the cursor against its IOD (V)", "validate_object"),
    ("Keys", "Every key binding (?)", "help"),
)


def status_text(analysis: Analysis | None, filtering: FilterController, load_error: str | None) -> Text:
    """The main screen's status line: the filter first (at 80 columns what the list is filtered by
    matters more than the totals), then loading progress or the totals."""
    text = Text(no_wrap=True, overflow="ellipsis")
    display_filter = filtering.display_filter
    if display_filter is not None and not load_error:
        text.append(f"{filtering.status} ", style="bold")
        text.append("filter: ", style="bold")
        text.append(safe_text(display_filter.text))
        text.append(" | ")
    if load_error:
        text.append(f"error: {safe_text(load_error)}", style="bold red")
    elif analysis is None:
        text.append("Opening capture…", style="italic")
    elif not analysis.finished:
        total = max(1, analysis.bytes_total)
        percent = 100 * analysis.bytes_done / total
        text.append(f"Indexing {percent:3.0f}% ", style="bold yellow")
        text.append(f"({analysis.bytes_done >> 20} of {analysis.bytes_total >> 20} MiB) "
                    f"{counted(len(analysis.pdus), 'PDU')}")
    else:
        text.append(f"{counted(len(analysis.pdus), 'PDU')}, {counted(len(analysis.associations), 'association')}",
                    style="bold")
        text.append(f" | expert: {counts_text(analysis.expert)}")
    return text


def _spool_stdin(captures: list[str]) -> tuple[list[str], str | None]:
    """A capture on standard input is copied to a temporary file so the terminal can own stdin."""
    if "-" not in captures or sys.stdin.isatty():
        return captures, None
    handle = tempfile.NamedTemporaryFile(prefix="dicomtui-stdin-", suffix=".pcap", delete=False)
    with handle:
        shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
    try:
        tty = os.open("/dev/tty", os.O_RDONLY)
        os.dup2(tty, 0)
        os.close(tty)
    except OSError:
        pass
    return [handle.name if path == "-" else path for path in captures], handle.name


def run_app(captures: list[str], config: AnalysisConfig, host, app_class: type[DicomApp] = DicomApp,
            warnings: list[str] | None = None, display_filter: str | None = None) -> int:
    """Run the terminal UI on ``captures``; returns the exit status.

    1 if the capture cannot be read; EXIT_CRASH (70) if the UI failed (Textual
    has then restored the terminal and printed the traceback).
    """
    spooled = None
    app = None
    try:
        captures, spooled = _spool_stdin(captures)
        app = app_class(captures, config, host)
        app.startup_warnings = list(warnings or [])
        app.initial_filter = display_filter
        from dicomtui.core.base.library_warnings import LibraryWarnings

        with LibraryWarnings():  # pydicom's value warnings would be drawn over the screen
            status = app.run()
        if app.analysis is not None and app.analysis.finished:
            app.analysis.close()
    except OSError as exc:
        print(f"dicomtui: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_CAPTURE
    finally:
        if spooled:
            try:
                os.unlink(spooled)
            except OSError:
                pass
    if app.load_error:
        print(f"dicomtui: {safe_text(app.load_error)}", file=sys.stderr)
        return EXIT_CAPTURE
    if app.crashed or (status is None and app.return_code):
        print("dicomtui: the terminal UI stopped on an internal error (details above)", file=sys.stderr)
        return EXIT_CRASH
    return int(status or 0)
