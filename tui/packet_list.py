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
import re
from array import array
from collections import OrderedDict

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.views.preferences import COLUMN_NAMES, parse_columns  # noqa: F401  (re-exported)
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

KINDS = ("association", "data", "release", "abort", "reject", "failure", "warning", "dropped")
ROW_CACHE_SIZE = 512
# NO_COLOR: failures, aborts and rejects bold (never dim), warnings italic bold, set-up plain.
NO_COLOR_STYLES = {"failure": Style(bold=True), "abort": Style(bold=True), "reject": Style(bold=True),
                   "warning": Style(bold=True, italic=True)}


# name -> (title by width tier (<96, <120, wider), width by tier, align); "info" takes the rest.
COLUMNS: dict[str, tuple[tuple[str, str, str], tuple[int, int, int], str]] = {
    "no": (("No.", "No.", "No."), (5, 6, 7), "right"),
    "time": (("Time", "Time", "Time"), (8, 9, 10), "right"),
    "source": (("Source", "Source", "Source"), (15, 21, 21), "left"),
    "destination": (("Destination", "Destination", "Destination"), (15, 21, 21), "left"),
    "assoc": (("As", "As", "Assoc"), (3, 4, 5), "left"),
    "type": (("PDU type", "PDU type", "PDU type"), (14, 14, 14), "left"),
    "length": (("Length", "Length", "Length"), (6, 7, 8), "right"),
    "frames": (("Frames", "Frames", "Frames"), (9, 11, 13), "left"),
    "info": (("Info", "Info", "Info"), (8, 8, 8), "left"),
}
DEFAULT_COLUMNS = ("no", "time", "source", "destination", "assoc", "type", "info")
assert set(COLUMNS) == set(COLUMN_NAMES)  # the preference check knows the same names
NARROW_HIDDEN = {"type"}  # below 120 cells these give their room to Info


def column_layout(width: int, visible: tuple[str, ...] = DEFAULT_COLUMNS,
                  time_format: str = "r") -> list[tuple[str, str, int, str]]:
    """(name, title, width, align) per column for a list ``width`` cells wide; Info takes the rest."""
    from dicomtui.core.base.time_format import WIDTHS

    tier = 2 if width >= 120 else 1 if width >= 96 else 0
    columns = []
    for name in visible:
        if name in NARROW_HIDDEN and tier < 2:
            continue
        titles, widths, align = COLUMNS[name]
        size = widths[tier]
        if name == "time" and time_format != "r":
            size = WIDTHS.get(time_format, size)
        columns.append([name, titles[tier], size, align])
    if not any(column[0] == "info" for column in columns):
        columns.append(["info", "Info", 8, "left"])
    used = sum(column[2] + 1 for column in columns if column[0] != "info")
    for column in columns:
        if column[0] == "info":
            column[2] = max(8, width - used)
    return [tuple(column) for column in columns]


_STATUS_GROUP = re.compile(r"\s\((?:[^()]|\([^()]*\))*\)")


def telling_first(summary: str, width: int) -> str:
    """The Info text for ``width`` cells: when it does not fit, the status or reason goes first.

    "P-DATA, C-STORE-RSP ID=1 (Refused: Out of resources)" becomes
    "C-STORE-RSP (Refused: Out of resources) ID=1": a cut never hides the outcome.
    """
    if cell_len(summary) <= width:
        return summary
    text = summary.removeprefix("P-DATA, ")
    match = _STATUS_GROUP.search(text)
    if match is None:
        return text
    head, group, tail = text[:match.start()], match.group().strip(), text[match.end():]
    words = head.split()
    if head.startswith("A-ASSOCIATE reject"):
        # "(rejected-permanent, DICOM UL service-user: called-AE-title-not-recognized)": the reason first
        inner = group[1:-1]
        before, _sep, reason = inner.rpartition(": ")
        return " ".join(["A-ASSOCIATE reject:", reason, *words[2:], f"({before})" if before else ""]).strip() + tail
    if not words or not words[0].endswith("-RSP"):
        return text  # only a response's status moves: other parentheses are not outcomes
    return " ".join([words[0], group, *words[1:]]) + tail


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


def fit_time(text: str, width: int) -> str:
    """A formatted time cut to ``width``: fewer decimals first, never the leading digits."""
    if len(text) <= width:
        return text
    whole, _dot, fraction = text.partition(".")
    for keep in (3, 1):
        candidate = f"{whole}.{fraction[:keep]}"
        if len(candidate) <= width:
            return candidate
    return whole[-width:]


class PacketList(ScrollView, can_focus=True):
    """Virtual list of PDUs.  Posts ``PacketList.Highlighted`` when the cursor moves."""

    COMPONENT_CLASSES = {"packet-list--header", "packet-list--cursor", "packet-list--cursor-blurred",
                         "packet-list--marked",
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
    PacketList > .packet-list--dropped { color: $text-muted; text-style: italic; }
    PacketList > .packet-list--marked { text-style: bold underline; }
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
        self.columns: tuple[str, ...] = DEFAULT_COLUMNS
        self.time_format = "r"

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

    def previous_timestamp(self, pdu_index: int, row: int | None) -> float | None:
        """For the d / dd time formats: the previous captured PDU's, or the previous row's, time."""
        pdus = self.index.analysis.pdus
        if self.time_format == "d":
            return pdus[pdu_index - 1].timestamp if pdu_index > 0 else None
        if row is None:
            row = self.row_of(pdu_index)
        previous = self.pdu_at(row - 1) if row is not None and row > 0 else None
        return pdus[previous].timestamp if previous is not None else None

    def cell_values(self, pdu_index: int, row: int | None = None) -> dict[str, str]:
        """Every column's full text for one PDU (nothing cut)."""
        from dicomtui.core.base.time_format import format_timestamp

        analysis = self.index.analysis
        pdu = analysis.pdus[pdu_index]
        try:
            connection = analysis.connections[pdu.connection]
        except IndexError:
            connection = None
        if connection is None:
            source = destination = "?"
        elif pdu.direction == 0:
            source, destination = connection.client, connection.server
        else:
            source, destination = connection.server, connection.client
        previous = self.previous_timestamp(pdu_index, row) if self.time_format in ("d", "dd") else None
        frames = str(pdu.first_frame) if pdu.first_frame == pdu.last_frame else f"{pdu.first_frame}-{pdu.last_frame}"
        return {
            "no": ("*" if pdu_index in self.marked else "") + str(pdu_index + 1),
            # A pcapng simple packet block carried no time: the PDU has its predecessor's, not shown.
            "time": format_timestamp(self.time_format, pdu.timestamp, analysis.first_time, previous)
            if analysis.time_known(pdu.last_frame) else "?",
            "source": source,
            "destination": destination,
            "assoc": f"A{pdu.association}" if pdu.association >= 0 else "",
            "type": pdu.type_name,
            "length": str(pdu.total_length),
            "frames": frames,
            "info": pdu.summary,
        }

    def row_texts(self, pdu_index: int, columns, row: int | None = None) -> tuple[str, str]:
        """(row text, kind) for one PDU, exactly as wide as the columns."""
        if not self.index.analysis.pdus.retained(pdu_index):  # a live capture's retention limit dropped it
            values = {"no": str(pdu_index + 1), "info": "(dropped from the index: live retention limit)"}
            parts = [fit(values.get(name, ""), width, align) for name, _title, width, align in columns]
            return " ".join(parts), "dropped"
        values = self.cell_values(pdu_index, row)
        parts = []
        for name, _title, width, align in columns:
            value = safe_text(values[name])
            if name == "time":
                value = fit_time(value, width)
            elif name == "info":
                value = telling_first(value, width)
            parts.append(fit(value, width, align, keep_tail=name in ("source", "destination")))
        return " ".join(parts), self.index.row_kind(self.index.analysis.pdus[pdu_index])

    def layout(self, width: int):
        return column_layout(width, self.columns, self.time_format)

    def set_columns(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.data_changed()

    def set_time_format(self, time_format: str) -> None:
        self.time_format = time_format
        self.data_changed()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        columns = self.layout(width)
        if y == 0:
            header = " ".join(fit(title, size, align) for _name, title, size, align in columns)
            style = self.get_component_rich_style("packet-list--header")
            return Strip([Segment(fit(header, width), style)], width)
        row = round(self.scroll_y) + y - 1
        pdu_index = self.pdu_at(row)
        if pdu_index is None:
            return Strip.blank(width, self.rich_style)
        key = (pdu_index, width)
        cached = self._row_cache.get(key)
        if cached is None:
            text, kind = self.row_texts(pdu_index, columns, row)
            cached = (fit(text, width), kind)
            self._row_cache[key] = cached
            if len(self._row_cache) > ROW_CACHE_SIZE:
                self._row_cache.popitem(last=False)
        text, kind = cached
        style = self.rich_style + self.get_component_rich_style(f"packet-list--{kind}")
        no_color = self.app.no_color
        if no_color:
            # Without colour, what matters must still stand out, never look dimmer than normal rows.
            style = self.rich_style + NO_COLOR_STYLES.get(kind, Style())
        if pdu_index in self.marked:
            style = style + self.get_component_rich_style("packet-list--marked")
        if row == self.cursor:
            cursor_class = "packet-list--cursor" if self.has_focus else "packet-list--cursor-blurred"
            style = style + self.get_component_rich_style(cursor_class)
            if no_color:
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
        columns = column_layout(400, self.columns, self.time_format)
        for step in range(1, count + 1):
            row = (self.cursor + step) % count if forward else (self.cursor - step) % count
            pdu = self.pdu_at(row)
            if pdu is not None and wanted in self.row_texts(pdu, columns, row)[0].lower():
                return row
        return None
