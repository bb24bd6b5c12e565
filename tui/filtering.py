"""The bar under the packet list (display filter, text search, go to) and the filter worker.

A helper of the app: it owns the display filter, the search text, and the
worker that scans the PDUs.  The scan follows the analysis while it is still
loading and reports matches as it finds them.
"""

from __future__ import annotations

import time
from array import array

from dicomtui.core.base.safe_text import safe_text
from rich.text import Text
from textual.worker import get_current_worker

from .filter import MAX_FILTER_LENGTH, DisplayFilter, FilterError, compile_filter
from .index import PacketIndex

FILTER_PROGRESS_SECONDS = 0.2
VALIDATE_SECONDS = 0.12  # typing pauses this long before the text is parsed again

PLACEHOLDERS = {
    "filter": "display filter, e.g. status != 0 and calling_ae == \"MODALITY\"  (Enter applies)",
    "search": "text to find in the packet list (n / N repeat)",
    "goto": "packet number (or f<frame>)",
}


class FilterController:
    def __init__(self, app) -> None:
        self.app = app
        self.display_filter: DisplayFilter | None = None
        self.generation = 0
        self.status = ""
        self.search_text = ""
        self._validate_timer = None
        self._told_too_long = False
        self.displayed_rows: array | None = None  # the rows of a finished scan (for "displayed" export)

    # -- the bar ---------------------------------------------------------------------------

    def open_bar(self, mode: str) -> None:
        app = self.app
        bar = app.filter_bar
        bar.mode = mode
        bar.placeholder = PLACEHOLDERS[mode]
        bar.value = (self.display_filter.text if self.display_filter else "") if mode == "filter" else (
            self.search_text if mode == "search" else "")
        bar.remove_class("-invalid", "-valid")
        bar.add_class("-visible")
        # Focus now, not after a refresh: keys typed right after the hotkey must land in the bar.
        app.main_screen.set_focus(bar)

    def close_bar(self) -> None:
        app = self.app
        bar = app.filter_bar
        bar.remove_class("-visible", "-invalid", "-valid")
        if self._validate_timer is not None:
            self._validate_timer.stop()
            self._validate_timer = None
        app.packet_list.focus()
        app.update_status()

    def bar_changed(self, value: str) -> None:
        """Validate as the user types: the length at once, the parse after a short pause."""
        bar = self.app.filter_bar
        if bar.mode != "filter":
            return
        if self._validate_timer is not None:
            self._validate_timer.stop()
            self._validate_timer = None
        text = value.strip()
        self._told_too_long = False
        if not text:
            bar.remove_class("-invalid", "-valid")
            return
        if len(text) > MAX_FILTER_LENGTH:
            self._mark(False, f"filter longer than {MAX_FILTER_LENGTH} characters ({len(text):,})")
            return
        self._validate_timer = self.app.set_timer(VALIDATE_SECONDS, lambda: self.validate(text))

    def too_long(self) -> None:
        """The bar refused a key: the filter is at the length limit (said once, not restyled per key)."""
        if self._told_too_long:
            return
        self._told_too_long = True
        if self._validate_timer is not None:
            self._validate_timer.stop()
            self._validate_timer = None
        self._mark(False, f"filter longer than {MAX_FILTER_LENGTH} characters: the rest was not taken")

    def validate(self, text: str) -> bool:
        self._validate_timer = None
        try:
            compile_filter(text)
        except FilterError as exc:
            self._mark(False, f"invalid filter at {exc.position + 1}: {exc}")
            return False
        self._mark(True, "valid filter: Enter applies")
        return True

    def _mark(self, valid: bool, hint: str) -> None:
        bar = self.app.filter_bar
        bar.set_class(not valid, "-invalid")
        bar.set_class(valid, "-valid")
        style = "green" if valid else "bold red"
        if self.app.no_color:
            style = "bold" if valid else "bold reverse"
        self.app.main_screen.show_status(Text(safe_text(hint), style=style))

    def bar_submitted(self, value: str) -> None:
        bar = self.app.filter_bar
        text = value.strip()
        if bar.mode == "filter":
            if not self.apply(text):
                return
        elif bar.mode == "search":
            self.search_text = text
            self.close_bar()
            if text:
                self.app.action_search(True)  # the packet list, or the detail tree if s was pressed there
            return
        else:
            self.app.navigator.go_to(text)
        self.close_bar()

    # -- the display filter ----------------------------------------------------------------

    def apply(self, text: str) -> bool:
        """Filter the packet list with ``text`` ('' clears); False (and a message) if it is invalid."""
        app = self.app
        if not text:
            self.clear(keep_pdu=app.current_pdu)
            return True
        try:
            self.display_filter = compile_filter(text)
        except FilterError as exc:
            app.notify(f"Invalid filter at {exc.position + 1}: {exc}", severity="error")
            return False
        self.start()
        return True

    def clear(self, keep_pdu: int | None = None) -> None:
        self.display_filter = None
        self.generation += 1
        self.status = ""
        self.displayed_rows = None
        self.app.packet_list.set_rows(None, keep_pdu=keep_pdu)
        self.app.update_status()

    def start(self) -> None:
        app = self.app
        self.generation += 1
        rows = array("q")
        self.status = "(scanning…)"
        self.displayed_rows = None
        app.packet_list.set_rows(rows, keep_pdu=app.current_pdu)
        if app.analysis is not None:
            display_filter, analysis, generation = self.display_filter, app.analysis, self.generation
            app.run_worker(lambda: self._scan(display_filter, analysis, rows, generation),
                           thread=True, exclusive=True, group="filter")
        app.update_status()

    def _scan(self, display_filter: DisplayFilter, analysis, rows: array, generation: int) -> None:
        worker = get_current_worker()
        index = PacketIndex(analysis)  # its own caches: scanning must not evict what the panes show
        started_finished = analysis.finished
        scanned = 0
        next_post = time.monotonic() + FILTER_PROGRESS_SECONDS
        deliver = self.app.deliver
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
                        deliver(self._progress, generation, rows, scanned, len(pdus), False)
                        next_post = now + FILTER_PROGRESS_SECONDS
            if finished:
                deliver(self._progress, generation, rows, scanned, len(pdus), True)
                return
            deliver(self._progress, generation, rows, scanned, len(pdus), False)
            time.sleep(0.1)

    def _progress(self, generation: int, rows: array, scanned: int, total: int, done: bool) -> None:
        if generation != self.generation:
            return
        packets = self.app.packet_list
        if done:
            self.status = f"({len(rows):,} of {total:,} PDUs)"
            self.displayed_rows = rows
        else:
            self.status = f"({len(rows):,} shown, scanned {scanned:,} of {total:,})"
        had_selection = packets.selected_pdu is not None
        packets.data_changed()
        if not had_selection or done:
            packets.rehighlight()
        self.app.update_status()

    # -- text search -----------------------------------------------------------------------

    def search(self, forward: bool = True) -> None:
        app = self.app
        if not self.search_text:
            app.notify("No search text: press s to search", severity="warning")
            return
        text = self.search_text
        app.run_worker(lambda: self._find(text, forward), thread=True, exclusive=True, group="search")

    def _find(self, text: str, forward: bool) -> None:
        row = self.app.packet_list.find(text, forward)
        self.app.deliver(self._found, text, row)

    def _found(self, text: str, row: int | None) -> None:
        if row is None:
            self.app.notify(f"{text!r} not found", severity="warning")
            return
        self.app.packet_list.cursor_to(row)
