"""The packet list: one row per PDU, on Textual's Line API so only visible rows are rendered.

A ``ScrollView`` whose virtual height is the row count (plus a sticky header
line); ``render_line(y)`` builds the row for the PDU at that position.  Rows
come either from every PDU of the analysis (while it grows) or from a filtered
array of PDU numbers.  Rendered rows are kept in a small LRU cache keyed by
(PDU, width); the cache is cleared whenever the analysis may have changed a
PDU (during loading and when it finishes).  Text from the capture goes through
``safe_text`` and is placed in plain segments, never parsed as markup.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict

from dicomtui.core.safe_text import safe_text
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .index import PacketIndex

KINDS = ("association", "data", "release", "abort", "reject", "failure", "warning")
ROW_CACHE_SIZE = 512


def column_layout(width: int) -> list[tuple[str, int, str]]:
    """(title, width, align) per column for a list ``width`` cells wide; Info takes the rest."""
    if width >= 120:
        columns = [("No.", 7, "right"), ("Time", 10, "right"), ("Source", 21, "left"),
                   ("Destination", 21, "left"), ("Assoc", 5, "left"), ("PDU type", 14, "left")]
    elif width >= 96:
        columns = [("No.", 6, "right"), ("Time", 9, "right"), ("Source", 21, "left"),
                   ("Destination", 21, "left"), ("As", 4, "left")]
    else:
        columns = [("No.", 5, "right"), ("Time", 8, "right"), ("Source", 15, "left"),
                   ("Destination", 15, "left"), ("As", 3, "left")]
    used = sum(column[1] + 1 for column in columns)
    columns.append(("Info", max(8, width - used), "left"))
    return columns


def fit(text: str, width: int, align: str = "left", keep_tail: bool = False) -> str:
    """``text`` cut or padded to exactly ``width`` cells (an ellipsis marks a cut)."""
    length = cell_len(text)
    if length > width:
        if width <= 1:
            return set_cell_size(text, width)
        if keep_tail:
            tail = text[-(width - 1):]
            while cell_len(tail) > width - 1:
                tail = tail[1:]
            return set_cell_size("…" + tail, width)
        return set_cell_size(text, width - 1) + "…"
    if align == "right":
        return " " * (width - length) + text
    return text + " " * (width - length)


def format_time(seconds: float, width: int) -> str:
    for decimals in (6, 3, 1, 0):
        text = f"{seconds:.{decimals}f}"
        if len(text) <= width:
            return text
    return text[-width:]


class PacketList(ScrollView, can_focus=True):
    """Virtual list of PDUs.  Posts ``PacketList.Highlighted`` when the cursor moves."""

    COMPONENT_CLASSES = {"packet-list--header", "packet-list--cursor", "packet-list--cursor-blurred",
                         *(f"packet-list--{kind}" for kind in KINDS)}

    DEFAULT_CSS = """
    PacketList {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
    }
    PacketList > .packet-list--header { text-style: bold; background: $panel; color: $foreground; }
    PacketList > .packet-list--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    PacketList > .packet-list--cursor-blurred { background: $block-cursor-blurred-background; text-style: bold; }
    PacketList > .packet-list--association { color: $success; }
    PacketList > .packet-list--data { color: $foreground; }
    PacketList > .packet-list--release { color: $primary; }
    PacketList > .packet-list--abort { color: $error; text-style: bold; }
    PacketList > .packet-list--reject { color: $error; text-style: bold; }
    PacketList > .packet-list--failure { color: $error; }
    PacketList > .packet-list--warning { color: $warning; }
    """

    BINDINGS = [
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("pagedown,ctrl+f,space", "page_down", "Page down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "activate", "Details", show=False),
        Binding("m", "toggle_mark", "Mark", show=False),
        Binding("M", "next_mark", "Next marked", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Highlighted(Message):
        """The cursor is on another PDU (or the same PDU changed)."""

        def __init__(self, pdu_index: int | None) -> None:
            super().__init__()
            self.pdu_index = pdu_index

    class MarksChanged(Message):
        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

    class Activated(Message):
        """Enter on a row: the user wants the details."""

        def __init__(self, pdu_index: int) -> None:
            super().__init__()
            self.pdu_index = pdu_index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index: PacketIndex | None = None
        self.rows: array | None = None  # None: every PDU
        self._row_cache: OrderedDict = OrderedDict()
        self._highlighted: int | None = None
        self.search_text = ""
        self.marked: set[int] = set()  # PDU numbers marked by the user (Wireshark's Ctrl-M)

    # -- the data --------------------------------------------------------------------------

    def set_index(self, index: PacketIndex | None) -> None:
        self.index = index
        self.rows = None
        self.marked = set()
        self.cursor_to(0)
        self.data_changed()

    @property
    def row_count(self) -> int:
        if self.index is None:
            return 0
        if self.rows is not None:
            return len(self.rows)
        return len(self.index.analysis.pdus)

    def pdu_at(self, row: int) -> int | None:
        if row < 0 or row >= self.row_count:
            return None
        return self.rows[row] if self.rows is not None else row

    def row_of(self, pdu_index: int) -> int | None:
        """Position of a PDU in the current rows, or None if filtered out."""
        if self.rows is None:
            return pdu_index if 0 <= pdu_index < self.row_count else None
        at = bisect.bisect_left(self.rows, pdu_index)
        if at < len(self.rows) and self.rows[at] == pdu_index:
            return at
        return None

    @property
    def selected_pdu(self) -> int | None:
        return self.pdu_at(self.cursor)

    def set_rows(self, rows: array | None, keep_pdu: int | None = None) -> None:
        """Show only ``rows`` (ascending PDU numbers) or, with None, every PDU."""
        self.rows = rows
        target = keep_pdu if keep_pdu is not None else self._highlighted
        position = 0
        if target is not None:
            if rows is None:
                position = target
            else:
                position = min(bisect.bisect_left(rows, target), max(0, len(rows) - 1))
        self.data_changed()
        self.cursor_to(position)

    def data_changed(self) -> None:
        """The row count or PDUs changed (loading, filtering): re-measure and redraw."""
        self._row_cache.clear()
        self.virtual_size = Size(self.size.width, self.row_count + 1)
        if self.cursor >= self.row_count and self.row_count:
            self.cursor = self.row_count - 1
        self.refresh()
        if self._highlighted is None and self.row_count:
            self._post_highlight()

    # -- cursor ----------------------------------------------------------------------------

    @property
    def page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def cursor_to(self, row: int) -> None:
        count = self.row_count
        row = max(0, min(row, count - 1)) if count else 0
        self.cursor = row

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        self._post_highlight()

    def _post_highlight(self) -> None:
        pdu = self.selected_pdu
        if pdu != self._highlighted:
            self._highlighted = pdu
            self.post_message(self.Highlighted(pdu))

    def rehighlight(self) -> None:
        """Tell listeners about the selected PDU again (its content may have changed)."""
        self._highlighted = self.selected_pdu
        self.post_message(self.Highlighted(self._highlighted))

    def _scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        visible = self.page_rows
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self._row_cache.clear()
        self.virtual_size = Size(event.size.width, self.row_count + 1)
        self._scroll_to_cursor()

    def action_cursor_down(self) -> None:
        self.cursor_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.cursor_to(self.cursor - 1)

    def action_page_down(self) -> None:
        self.cursor_to(self.cursor + self.page_rows)

    def action_page_up(self) -> None:
        self.cursor_to(self.cursor - self.page_rows)

    def action_first(self) -> None:
        self.cursor_to(0)

    def action_last(self) -> None:
        self.cursor_to(self.row_count - 1)

    def action_activate(self) -> None:
        pdu = self.selected_pdu
        if pdu is not None:
            self.post_message(self.Activated(pdu))

    def action_toggle_mark(self) -> None:
        pdu = self.selected_pdu
        if pdu is None:
            return
        self.marked.symmetric_difference_update((pdu,))
        self._row_cache.clear()
        self.refresh()
        self.post_message(self.MarksChanged(len(self.marked)))

    def action_next_mark(self) -> None:
        if not self.marked:
            self.app.notify("No marked rows: m marks the selected row")
            return
        current = self.selected_pdu if self.selected_pdu is not None else -1
        ordered = sorted(self.marked)
        at = bisect.bisect_right(ordered, current)
        target = ordered[at] if at < len(ordered) else ordered[0]
        row = self.row_of(target)
        if row is None:
            self.app.notify("The next marked row is hidden by the filter")
            return
        self.cursor_to(row)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = round(self.scroll_y) + offset.y - 1
        if 0 <= row < self.row_count:
            self.cursor_to(row)
            if event.chain >= 2:
                self.action_activate()

    # -- rendering -------------------------------------------------------------------------

    def row_texts(self, pdu_index: int, columns: list[tuple[str, int, str]]) -> tuple[str, str]:
        """(row text, kind) for one PDU, exactly as wide as the columns."""
        index = self.index
        analysis = index.analysis
        pdu = analysis.pdus[pdu_index]
        connection = analysis.connections[pdu.connection] if pdu.connection < len(analysis.connections) else None
        if connection is None:
            source = destination = "?"
        elif pdu.direction == 0:
            source, destination = connection.client, connection.server
        else:
            source, destination = connection.server, connection.client
        values = {
            "No.": str(pdu_index + 1),
            "Time": format_time(analysis.frame_time(pdu.timestamp), columns[1][1]),
            "Source": source,
            "Destination": destination,
            "Assoc": f"A{pdu.association}" if pdu.association >= 0 else "",
            "As": f"A{pdu.association}" if pdu.association >= 0 else "",
            "PDU type": pdu.type_name,
            "Info": safe_text(pdu.summary),
        }
        parts = [fit(safe_text(values[title]), width, align, keep_tail=title in ("Source", "Destination"))
                 for title, width, align in columns]
        return " ".join(parts), index.row_kind(pdu)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        columns = column_layout(width)
        if y == 0:
            header = " ".join(fit(title, size, align) for title, size, align in columns)
            style = self.get_component_rich_style("packet-list--header")
            return Strip([Segment(fit(header, width), style)], width)
        row = round(self.scroll_y) + y - 1
        pdu_index = self.pdu_at(row)
        if pdu_index is None:
            return Strip.blank(width, self.rich_style)
        key = (pdu_index, width)
        cached = self._row_cache.get(key)
        if cached is None:
            text, kind = self.row_texts(pdu_index, columns)
            cached = (fit(text, width), kind)
            self._row_cache[key] = cached
            if len(self._row_cache) > ROW_CACHE_SIZE:
                self._row_cache.popitem(last=False)
        text, kind = cached
        style = self.rich_style + self.get_component_rich_style(f"packet-list--{kind}")
        if row == self.cursor:
            cursor_class = "packet-list--cursor" if self.has_focus else "packet-list--cursor-blurred"
            style = style + self.get_component_rich_style(cursor_class)
            if self.app.no_color:
                style = style + Style(reverse=True)
        return Strip([Segment(text, style)], width)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- search ----------------------------------------------------------------------------

    def find(self, text: str, forward: bool = True) -> int | None:
        """Next row (after/before the cursor, wrapping) whose text contains ``text``, ignoring case."""
        wanted = text.lower()
        count = self.row_count
        if not wanted or not count:
            return None
        columns = column_layout(400)
        for step in range(1, count + 1):
            row = (self.cursor + step) % count if forward else (self.cursor - step) % count
            pdu = self.pdu_at(row)
            if pdu is not None and wanted in self.row_texts(pdu, columns)[0].lower():
                return row
        return None
