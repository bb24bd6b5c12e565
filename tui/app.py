"""The Textual application: packet list, detail tree, bytes and expert panes over one capture.

The capture is analysed in a thread worker; its progress callback posts
messages, and each one makes the packet list re-measure its row count, so the
first rows appear while indexing goes on.  Decoding for the detail pane, the
display filter and text search also run in thread workers: the UI thread only
renders visible rows and reacts to keys.

Entry point: ``run_app(captures, config, host) -> exit status``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dicomtui.core.pipeline import Analysis, AnalysisConfig, analyze
from dicomtui.core.wire.capture import CaptureError
from dicomtui.core.model import ExpertItem
from dicomtui.core.base.safe_text import safe_text
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from .associations import AssociationsScreen
from .bytes_view import BytesView
from .detail_tree import Buffer, DetailTree, NodeData, build_sections
from .expert_pane import ExpertPane, counts_text
from .filter import DisplayFilter, FilterError, compile_filter
from .index import PacketIndex
from .packet_list import PacketList
from .prefs import PREFERENCES, PreferencesError, config_path, load_preferences, save_preferences
from .screens import ExportRequest, ExportScreen, HelpScreen, PreferencesScreen

EXIT_OK, EXIT_CAPTURE = 0, 1
FILTER_PROGRESS_SECONDS = 0.2


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


class FilterProgress(Message):
    def __init__(self, generation: int, rows: array, scanned: int, total: int, done: bool) -> None:
        super().__init__()
        self.generation = generation
        self.rows = rows
        self.scanned = scanned
        self.total = total
        self.done = done


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """


class FilterBar(Input):
    DEFAULT_CSS = """
    FilterBar { display: none; height: 1; border: none; padding: 0 1; background: $boost; }
    FilterBar.-visible { display: block; }
    FilterBar.-invalid { background: $error 30%; }
    FilterBar.-valid { background: $success 20%; }
    """

    BINDINGS = [Binding("escape", "close", "Cancel", show=False)]

    class Closed(Message):
        pass

    def __init__(self) -> None:
        super().__init__(id="bar", compact=True)
        self.mode = "filter"

    def action_close(self) -> None:
        self.post_message(self.Closed())



class MainScreen(Screen):
    """Packet list on top; detail tree and bytes below (side by side when wide); expert pane."""

    DEFAULT_CSS = """
    MainScreen { layout: vertical; }
    MainScreen #packets { height: 2fr; min-height: 4; }
    MainScreen #lower { layout: vertical; height: 3fr; }
    MainScreen.-wide #lower { layout: horizontal; }
    MainScreen #details { height: 1fr; border-top: solid $primary-muted; }
    MainScreen #bytes { height: 1fr; border-top: solid $primary-muted; }
    MainScreen.-wide #details { width: 1fr; height: 1fr; border-right: solid $primary-muted; }
    MainScreen.-wide #bytes { width: 78; height: 1fr; }
    MainScreen #expert { display: none; height: 1fr; border-top: solid $primary-muted; }
    MainScreen.-expert #expert { display: block; }
    MainScreen.-expert #packets { height: 2fr; }
    MainScreen.-expert #lower { height: 2fr; }
    MainScreen *:focus { border-top: solid $accent; }
    MainScreen #packets:focus { border-top: none; }
    """

    def compose(self) -> ComposeResult:
        yield PacketList(id="packets")
        with Container(id="lower"):
            yield DetailTree(id="details")
            yield BytesView(id="bytes")
        yield ExpertPane(id="expert")
        yield FilterBar()
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.main_screen_ready(self)

    def on_resize(self, event) -> None:
        self.set_class(event.size.width >= 140, "-wide")


class DicomApp(App[int]):
    """dicomtui's terminal UI."""

    TITLE = "dicomtui"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "open_bar('filter')", "Filter"),
        Binding("s", "open_bar('search')", "Search", show=False),
        Binding("n", "search(True)", "Next match", show=False),
        Binding("N", "search(False)", "Prev match", show=False),
        Binding("colon,ctrl+g", "open_bar('goto')", "Go to", show=False),
        Binding("e", "expert_step(True)", "Next expert"),
        Binding("E", "expert_step(False)", "Prev expert", show=False),
        Binding("i", "toggle_expert", "Expert pane", show=False),
        Binding("a", "associations", "Assocs"),
        Binding("t", "timing_screen('stats')", "Stats"),
        Binding("L", "timing_screen('ladder')", "Ladder", show=False),
        Binding("o", "timing_screen('plots')", "Plots", show=False),
        Binding("f", "toggle_subtrees", "Flat/nested", show=False),
        Binding("x", "export", "Export"),
        Binding("p", "preferences", "Prefs"),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def notify_plain(self, message: str, **kwargs) -> None:
        """A toast whose text is shown literally (capture values, paths, what the user typed):
        never parsed as markup."""
        self.notify(str(message), markup=False, **kwargs)

    def __init__(self, captures: list[str], config: AnalysisConfig | None = None, host=None,
                 *, preferences_path: Path | None = None) -> None:
        super().__init__()
        if host is None:  # the command line (the composition root) builds it with the built-ins
            raise TypeError("DicomApp needs the plugin host (dicomtui.core.cli.make_host)")
        self.captures = list(captures)
        self.config = config or AnalysisConfig()
        self.host = host
        self.preferences_path = preferences_path
        self.analysis: Analysis | None = None
        self.index: PacketIndex | None = None
        self.load_generation = 0
        self.load_started = 0.0
        self.load_error: str | None = None
        self.first_rows_seconds: float | None = None
        self.loaded_seconds: float | None = None
        self.display_filter: DisplayFilter | None = None
        self.filter_generation = 0
        self.filter_status = ""
        self.search_text = ""
        self.current_pdu: int | None = None
        self.current_pdu_bytes: bytes | None = None
        self.shown_buffer: Buffer | None = None
        self._dataset_bytes: tuple[int, bytes | None] | None = None
        self._expert_pdus: list[int] | None = None
        self._detail_timer = None
        names = ", ".join(os.path.basename(path) for path in self.captures)
        self.sub_title = names
        self.title = f"dicomtui {names}"

    # -- setup -----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        self.main_screen = MainScreen()
        return self.main_screen

    def main_screen_ready(self, screen: MainScreen) -> None:
        flat = str(self.config.option("subtree_style", "nested")).strip().lower() == "flat"
        self.detail_tree.set_flat(flat)
        self.detail_tree.show_message("Indexing the capture…")
        self.expert_pane.show_loading("Expert findings appear when indexing is complete")
        if self.size.height >= 40:
            screen.add_class("-expert")
        self.packet_list.focus()
        self.start_loading()

    @property
    def packet_list(self) -> PacketList:
        return self.main_screen.query_one(PacketList)

    @property
    def detail_tree(self) -> DetailTree:
        return self.main_screen.query_one(DetailTree)

    @property
    def bytes_view(self) -> BytesView:
        return self.main_screen.query_one(BytesView)

    @property
    def expert_pane(self) -> ExpertPane:
        return self.main_screen.query_one(ExpertPane)

    @property
    def filter_bar(self) -> FilterBar:
        return self.main_screen.query_one(FilterBar)

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
        self.analysis = None
        self.index = None
        self._expert_pdus = None
        self.update_status()
        self.load_capture(self.load_generation)

    @work(thread=True, exclusive=True, group="load", exit_on_error=True)
    def load_capture(self, generation: int) -> None:
        def progress(analysis: Analysis) -> None:
            self.post_message(LoadProgress(analysis, generation))
        try:
            analyze(self.captures, self.config, self.host, progress=progress, progress_interval=0.1)
        except CaptureError as exc:
            self.post_message(LoadFailed(str(exc), generation))

    def on_load_failed(self, message: LoadFailed) -> None:
        if message.generation != self.load_generation:
            return
        self.load_error = message.error
        self.exit(EXIT_CAPTURE, return_code=EXIT_CAPTURE)

    def on_load_progress(self, message: LoadProgress) -> None:
        if message.generation != self.load_generation:
            return
        packets = self.packet_list
        if self.analysis is not message.analysis:
            self.analysis = message.analysis
            self.index = PacketIndex(message.analysis)
            packets.set_index(self.index)
            if self.display_filter is not None:
                self.start_filter()
        if self.first_rows_seconds is None and len(self.analysis.pdus):
            self.first_rows_seconds = time.perf_counter() - self.load_started
        if message.finished and self.loaded_seconds is None:
            self.loaded_seconds = time.perf_counter() - self.load_started
            self.index.decoded_pdus.clear()  # PDUs were renumbered at the end of the pass
            self.index.decoded_commands.clear()
            self.index.decoded_datasets.clear()
            self.expert_pane.show_items(self.analysis.expert)
            if self.display_filter is not None:
                self.start_filter()
            else:
                packets.data_changed()
            packets.rehighlight()
        elif self.display_filter is None:
            packets.data_changed()
        self.update_status()

    # -- status line -----------------------------------------------------------------------

    def update_status(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        analysis = self.analysis
        if self.load_error:
            text.append(f"error: {safe_text(self.load_error)}", style="bold red")
        elif analysis is None:
            text.append("Opening capture…", style="italic")
        elif not analysis.finished:
            total = max(1, analysis.bytes_total)
            percent = 100 * analysis.bytes_done / total
            text.append(f"Indexing {percent:3.0f}% ", style="bold yellow")
            text.append(f"({analysis.bytes_done >> 20} of {analysis.bytes_total >> 20} MiB) "
                        f"{len(analysis.pdus):,} PDUs")
        else:
            text.append(f"{len(analysis.pdus):,} PDUs, {len(analysis.associations):,} associations",
                        style="bold")
            text.append(f" | expert: {counts_text(analysis.expert)}")
        if self.display_filter is not None:
            text.append(" | filter: ", style="bold")
            text.append(safe_text(self.display_filter.text))
            text.append(f" {self.filter_status}")
        try:
            self.main_screen.query_one(StatusBar).update(text)
        except Exception:  # during shutdown
            pass

    # -- selection -> detail and bytes -----------------------------------------------------

    def on_packet_list_highlighted(self, message: PacketList.Highlighted) -> None:
        self.current_pdu = message.pdu_index
        if self._detail_timer is not None:
            self._detail_timer.stop()
        # A short pause lets a held key scroll without decoding every row passed over.
        self._detail_timer = self.set_timer(0.03, self._show_current)

    def _show_current(self) -> None:
        self._detail_timer = None
        if self.current_pdu is None or self.index is None:
            self.detail_tree.show_message("No PDU selected")
            self.bytes_view.show(b"", "bytes")
            return
        self.decode_selected(self.current_pdu, self.index)

    @work(thread=True, exclusive=True, group="detail")
    def decode_selected(self, pdu_index: int, index: PacketIndex) -> None:
        worker = get_current_worker()
        try:
            sections, data = build_sections(index, pdu_index)
        except IndexError:
            return  # the PDU list was renumbered meanwhile; a new selection follows
        if worker.is_cancelled:
            return
        self.call_from_thread(self._apply_sections, pdu_index, sections, data)

    def _apply_sections(self, pdu_index: int, model, data: bytes | None) -> None:
        if pdu_index != self.current_pdu:
            return
        self.current_pdu_bytes = data
        self.shown_buffer = Buffer("pdu", pdu_index)
        self.bytes_view.show(data, f"PDU {pdu_index + 1}")
        self.detail_tree.show_model(model)

    def on_detail_tree_field_highlighted(self, message: DetailTree.FieldHighlighted) -> None:
        data = message.data
        if not isinstance(data, NodeData):
            return
        buffer = data.buffer
        if buffer != self.shown_buffer:
            content, title = self._buffer_bytes(buffer)
            self.shown_buffer = buffer
            self.bytes_view.show(content, title)
        self.bytes_view.highlight(data.field.offset, data.field.length)

    def _buffer_bytes(self, buffer: Buffer) -> tuple[bytes | None, str]:
        analysis = self.analysis
        if buffer.kind == "pdu":
            return self.current_pdu_bytes, buffer.title
        message = analysis.messages[buffer.number]
        if buffer.kind == "command":
            return message.command_bytes, buffer.title
        if self._dataset_bytes is None or self._dataset_bytes[0] != buffer.number:
            self._dataset_bytes = (buffer.number, analysis.dataset_bytes(
                message, analysis.config.limits.max_dataset_bytes))
        return self._dataset_bytes[1], buffer.title

    def on_packet_list_activated(self, message: PacketList.Activated) -> None:
        self.detail_tree.focus()

    # -- filter, search, go to -------------------------------------------------------------

    def action_open_bar(self, mode: str) -> None:
        bar = self.filter_bar
        bar.mode = mode
        placeholders = {"filter": "display filter, e.g. status != 0 and calling_ae == \"MODALITY\"  (Enter applies)",
                        "search": "text to find in the packet list (n / N repeat)",
                        "goto": "packet number (or f<frame>)"}
        bar.placeholder = placeholders[mode]
        bar.value = (self.display_filter.text if self.display_filter else "") if mode == "filter" else (
            self.search_text if mode == "search" else "")
        bar.remove_class("-invalid", "-valid")
        bar.add_class("-visible")
        # Focus now, not after a refresh: keys typed right after the hotkey must land in the bar.
        self.main_screen.set_focus(bar)

    def _close_bar(self) -> None:
        bar = self.filter_bar
        bar.remove_class("-visible", "-invalid", "-valid")
        self.packet_list.focus()
        self.update_status()

    @on(FilterBar.Closed)
    def _bar_closed(self) -> None:
        self._close_bar()

    @on(Input.Changed, "#bar")
    def _bar_changed(self, event: Input.Changed) -> None:
        bar = self.filter_bar
        if bar.mode != "filter":
            return
        text = event.value.strip()
        if not text:
            bar.remove_class("-invalid", "-valid")
            return
        try:
            compile_filter(text)
        except FilterError as exc:
            bar.set_class(True, "-invalid")
            bar.set_class(False, "-valid")
            self._status_hint(Text(f"invalid filter at {exc.position + 1}: {exc}", style="bold red"))
        else:
            bar.set_class(False, "-invalid")
            bar.set_class(True, "-valid")
            self._status_hint(Text("valid filter: Enter applies", style="green"))

    def _status_hint(self, text: Text) -> None:
        self.main_screen.query_one(StatusBar).update(text)

    @on(Input.Submitted, "#bar")
    def _bar_submitted(self, event: Input.Submitted) -> None:
        bar = self.filter_bar
        text = event.value.strip()
        if bar.mode == "filter":
            if not self.apply_filter(text):
                return
        elif bar.mode == "search":
            self.search_text = text
            if text:
                self.action_search(True)
        else:
            self.go_to(text)
        self._close_bar()

    def apply_filter(self, text: str) -> bool:
        """Filter the packet list with ``text`` ('' clears); False (and a message) if it is invalid."""
        if not text:
            self.display_filter = None
            self.filter_generation += 1
            self.filter_status = ""
            self.packet_list.set_rows(None, keep_pdu=self.current_pdu)
            self.update_status()
            return True
        try:
            self.display_filter = compile_filter(text)
        except FilterError as exc:
            self.notify_plain(f"Invalid filter at {exc.position + 1}: {exc}", severity="error")
            return False
        self.start_filter()
        return True

    def start_filter(self) -> None:
        self.filter_generation += 1
        rows = array("q")
        self.filter_status = "(scanning…)"
        self.packet_list.set_rows(rows, keep_pdu=self.current_pdu)
        if self.analysis is not None:
            self.run_filter(self.display_filter, self.analysis, rows, self.filter_generation)
        self.update_status()

    @work(thread=True, exclusive=True, group="filter")
    def run_filter(self, display_filter: DisplayFilter, analysis: Analysis, rows: array, generation: int) -> None:
        worker = get_current_worker()
        index = PacketIndex(analysis)  # its own caches: scanning must not evict what the panes show
        started_finished = analysis.finished
        scanned = 0
        next_post = time.monotonic() + FILTER_PROGRESS_SECONDS
        while not worker.is_cancelled:
            finished = analysis.finished
            if finished and not started_finished:
                return  # PDUs were renumbered at the end of the pass; the app restarts the filter
            pdus = analysis.pdus
            scanned = max(scanned, pdus.base)  # a live capture's retention limit dropped the rows below
            limit = len(pdus) if finished else max(0, len(pdus) - 1)  # the newest PDU may still change
            while scanned < limit:
                if display_filter.matches(index, pdus[scanned]):
                    rows.append(scanned)
                scanned += 1
                if scanned & 0x3FF == 0:
                    if worker.is_cancelled:
                        return
                    now = time.monotonic()
                    if now >= next_post:
                        self.post_message(FilterProgress(generation, rows, scanned, len(pdus), False))
                        next_post = now + FILTER_PROGRESS_SECONDS
            if finished:
                self.post_message(FilterProgress(generation, rows, scanned, len(pdus), True))
                return
            self.post_message(FilterProgress(generation, rows, scanned, len(pdus), False))
            time.sleep(0.1)

    def on_filter_progress(self, message: FilterProgress) -> None:
        if message.generation != self.filter_generation:
            return
        if message.done:
            self.filter_status = f"({len(message.rows):,} of {message.total:,} PDUs)"
        else:
            self.filter_status = f"({len(message.rows):,} shown, scanned {message.scanned:,} of {message.total:,})"
        had_selection = self.packet_list.selected_pdu is not None
        self.packet_list.data_changed()
        if not had_selection or message.done:
            self.packet_list.rehighlight()
        self.update_status()

    def action_clear_filter(self) -> None:
        if self.display_filter is not None:
            self.apply_filter("")

    def action_search(self, forward: bool = True) -> None:
        if not self.search_text:
            self.notify_plain("No search text: press s to search", severity="warning")
            return
        self.find_text(self.search_text, forward)

    @work(thread=True, exclusive=True, group="search")
    def find_text(self, text: str, forward: bool) -> None:
        row = self.packet_list.find(text, forward)
        self.call_from_thread(self._found, text, row)

    def _found(self, text: str, row: int | None) -> None:
        if row is None:
            self.notify_plain(f"{text!r} not found", severity="warning")
            return
        self.packet_list.cursor_to(row)

    def go_to(self, text: str) -> None:
        if self.analysis is None:
            return
        text = text.strip().lower()
        try:
            if text.startswith("f"):
                pdu = self.index.pdu_for_frame(int(text[1:]))
            else:
                pdu = int(text) - 1
        except ValueError:
            self.notify_plain(f"Not a packet number: {text!r}", severity="error")
            return
        if pdu is None or not 0 <= pdu < len(self.analysis.pdus):
            self.notify_plain(f"No packet {text}", severity="error")
            return
        self.select_pdu(pdu)

    def select_pdu(self, pdu: int) -> None:
        """Put the cursor on PDU ``pdu``, clearing the filter if it hides it."""
        packets = self.packet_list
        row = packets.row_of(pdu)
        if row is None and self.display_filter is not None:
            self.notify_plain("The filter hid that packet: filter cleared")
            self.display_filter = None
            self.filter_generation += 1
            self.filter_status = ""
            packets.set_rows(None, keep_pdu=pdu)
            self.update_status()
            row = packets.row_of(pdu)
        if row is not None:
            packets.cursor_to(row)
            packets.focus()

    # -- expert items ----------------------------------------------------------------------

    def expert_pdu(self, item: ExpertItem) -> int | None:
        if self.analysis is None:
            return None
        if item.pdu is not None and 0 <= item.pdu < len(self.analysis.pdus):
            return item.pdu
        if item.frame:
            return self.index.pdu_for_frame(item.frame)
        return None

    def on_expert_pane_jump(self, message: ExpertPane.Jump) -> None:
        pdu = self.expert_pdu(message.item)
        if pdu is None:
            self.notify_plain("This finding is about the whole capture, not one packet")
            return
        self.select_pdu(pdu)

    def action_expert_step(self, forward: bool = True) -> None:
        analysis = self.analysis
        if analysis is None or not analysis.finished:
            self.notify_plain("Expert findings are ready when indexing completes")
            return
        if self._expert_pdus is None:
            self._expert_pdus = sorted({pdu for pdu in (self.expert_pdu(item) for item in analysis.expert)
                                        if pdu is not None})
        targets = self._expert_pdus
        if not targets:
            self.notify_plain("No expert findings")
            return
        current = self.packet_list.selected_pdu
        current = -1 if current is None else current
        import bisect

        if forward:
            at = bisect.bisect_right(targets, current)
            target = targets[at] if at < len(targets) else targets[0]
        else:
            at = bisect.bisect_left(targets, current) - 1
            target = targets[at] if at >= 0 else targets[-1]
        self.select_pdu(target)
        items = [item for item in analysis.expert if self.expert_pdu(item) == target][:1] \
            if len(analysis.expert) < 50_000 else []
        if items:
            self.notify_plain(f"{items[0].severity.label}: {safe_text(items[0].message)}", timeout=4)

    def action_toggle_expert(self) -> None:
        screen = self.main_screen
        screen.toggle_class("-expert")
        if screen.has_class("-expert"):
            self.expert_pane.focus()
        else:
            self.packet_list.focus()

    # -- views -----------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_associations(self) -> None:
        if self.analysis is None:
            return
        threshold = float(self.config.option("slow_response_seconds", 5.0))
        self.push_screen(AssociationsScreen(self.analysis, threshold), self._association_chosen)

    def action_timing_screen(self, which: str) -> None:
        """Statistics, ladder or plots (tui/timing_screens.py) for the selected PDU's association."""
        from .timing_screens import open_timing_screen

        open_timing_screen(self, which)

    def _association_chosen(self, chosen: int | None) -> None:
        if chosen is not None:
            self.apply_filter(f"assoc == {chosen}")

    def action_toggle_subtrees(self) -> None:
        tree = self.detail_tree
        tree.set_flat(not tree.flat)
        self.notify_plain("Data set sequences: " + ("flat list" if tree.flat else "nested subtrees"), timeout=2)

    # -- export ----------------------------------------------------------------------------

    def selected_messages(self) -> list[int]:
        if self.index is None or self.current_pdu is None:
            return []
        pdu = self.analysis.pdus[self.current_pdu]
        return [message.index for message in self.index.messages_for(pdu)]

    def action_export(self) -> None:
        from dicomtui.core.views.export import exporters

        if self.analysis is None or not self.analysis.finished:
            self.notify_plain("Export is available when indexing completes", severity="warning")
            return
        available = exporters(self.host)
        if not available:
            self.notify_plain("No exporter plugins are loaded", severity="error")
            return
        messages = self.selected_messages()
        selected = (f"{len(messages)} message(s) of PDU {self.current_pdu + 1}" if messages
                    else "(the selected PDU carries no DIMSE message)")
        folder = os.path.join(os.getcwd(), "dicomtui-export")
        self.push_screen(ExportScreen(available, folder, selected), self._export_chosen)

    def _export_chosen(self, request: ExportRequest | None) -> None:
        if request is None:
            return
        messages = self.selected_messages() if request.scope == "selected" else None
        if request.scope == "selected" and not messages:
            self.notify_plain("The selected PDU carries no DIMSE message to export", severity="warning")
            return
        self.run_export(request, messages)

    @work(thread=True, exclusive=True, group="export")
    def run_export(self, request: ExportRequest, messages: list[int] | None) -> None:
        import io

        from dicomtui.core.api.export import ExportOptions
        from dicomtui.core.views.export import exporters, print_summary

        exporter = exporters(self.host)[request.exporter]
        options = ExportOptions(
            min_size=int(self.config.option("export_min_size", 0)),
            meta_header=bool(self.config.option("export_meta_header", True)),
            messages=messages,
        )
        try:
            result = exporter.export(self.analysis, request.folder, options, None)
        except (OSError, ValueError) as exc:
            self.call_from_thread(self.notify, f"Export failed: {safe_text(str(exc))}", severity="error")
            return
        summary = io.StringIO()
        print_summary(result, exporter.name, request.folder, summary)
        self.last_export = result
        self.call_from_thread(self.notify, Text(summary.getvalue().strip()), title="Export",
                              severity="information" if result.complete else "warning", timeout=8)

    # -- preferences -----------------------------------------------------------------------

    def current_preferences(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        try:
            values.update(load_preferences(self.preferences_path))
        except PreferencesError as exc:
            self.notify_plain(f"Preferences file unreadable: {exc}", severity="error")
        for preference in PREFERENCES:
            if preference.name in self.config.options:
                values[preference.name] = self.config.option(preference.name, preference.default)
        if "ports" not in values:
            values["ports"] = ",".join(self._port_text())
        return values

    def _port_text(self) -> list[str]:
        return [str(port) for port in sorted(self.config.ports)][:32]

    def action_preferences(self) -> None:
        path = self.preferences_path or config_path()
        self.push_screen(PreferencesScreen(self.current_preferences(), str(path)), self._preferences_saved)

    def _preferences_saved(self, values: dict[str, Any] | None) -> None:
        if values is None:
            return
        try:
            stored = {}
            try:
                stored = load_preferences(self.preferences_path)
            except PreferencesError:
                stored = {}
            stored.update(values)
            path = save_preferences(stored, self.preferences_path)
        except OSError as exc:
            self.notify_plain(f"Could not save preferences: {exc}", severity="error")
            return
        for name, value in values.items():
            self.config.options[name] = str(value).lower() if isinstance(value, bool) else str(value)
        from dicomtui.core.protocol.detect import parse_port_list

        new_ports = parse_port_list(str(values["ports"]))
        reload_needed = new_ports != self.config.ports or bool(values["heuristic"]) != self.config.heuristic
        self.config.ports = new_ports
        self.config.heuristic = bool(values["heuristic"])
        self.detail_tree.set_flat(values["subtree_style"] == "flat")
        note = " (ctrl+r reloads the capture with the new ports / heuristic)" if reload_needed else ""
        self.notify_plain(f"Preferences saved to {path}{note}", timeout=5)

    def action_reload(self) -> None:
        self.notify_plain("Reloading the capture…", timeout=2)
        self.start_loading()

    # -- command palette -------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Display filter", "Filter the packet list (/)", lambda: self.action_open_bar("filter"))
        yield SystemCommand("Clear filter", "Show every packet", self.action_clear_filter)
        yield SystemCommand("Search", "Find text in the packet list (s)", lambda: self.action_open_bar("search"))
        yield SystemCommand("Go to packet", "Jump to a packet number (:)", lambda: self.action_open_bar("goto"))
        yield SystemCommand("Associations", "Every association with its contexts (a)", self.action_associations)
        yield SystemCommand("Next expert item", "Jump to the next finding (e)", lambda: self.action_expert_step(True))
        yield SystemCommand("Toggle expert pane", "Show or hide the expert findings (i)", self.action_toggle_expert)
        yield SystemCommand("Toggle sequence subtrees", "Nested or flat data sets (f)", self.action_toggle_subtrees)
        yield SystemCommand("Export", "Export objects through an exporter plugin (x)", self.action_export)
        yield SystemCommand("Preferences", "Ports, heuristic, subtree style, export (p)", self.action_preferences)
        yield SystemCommand("Reload capture", "Analyse the capture again (ctrl+r)", self.action_reload)
        yield SystemCommand("Keys", "Every key binding (?)", self.action_help)


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


def run_app(captures: list[str], config: AnalysisConfig, host) -> int:
    """Run the terminal UI on ``captures``; returns the exit status (1 if the capture cannot be read)."""
    spooled = None
    try:
        captures, spooled = _spool_stdin(captures)
        app = DicomApp(captures, config, host)
        from dicomtui.core.base.library_warnings import LibraryWarnings

        with LibraryWarnings():  # pydicom's value warnings would be drawn over the screen
            status = app.run()
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
    return int(status or 0)
