"""The bytes pane: hex and ASCII of a buffer, the selected tree node's range highlighted.

Line API like the packet list: only visible rows are rendered, so a data set
of hundreds of megabytes scrolls as easily as a 12-byte PDU.  Bytes outside
printable ASCII are shown as ``.``; nothing from the capture reaches the
terminal unescaped.
"""

from __future__ import annotations

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

_PRINTABLE = bytes(range(0x20, 0x7F))
_ASCII_TABLE = "".join(chr(b) if bytes([b]) in _PRINTABLE else "." for b in range(256))


def row_width(per_row: int) -> int:
    return 8 + 2 + per_row * 3 + 1 + per_row


class BytesView(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"bytes-view--offset", "bytes-view--highlight", "bytes-view--ascii"}

    DEFAULT_CSS = """
    BytesView { height: 1fr; overflow-x: hidden; overflow-y: auto; scrollbar-size-vertical: 1; }
    BytesView > .bytes-view--offset { color: $text-muted; }
    BytesView > .bytes-view--highlight { background: $accent; color: $text; text-style: bold; }
    BytesView > .bytes-view--ascii { color: $text-secondary; }
    """

    BINDINGS = [
        Binding("j,down", "scroll_down", "Down", show=False),
        Binding("k,up", "scroll_up", "Up", show=False),
        Binding("g,home", "scroll_home", "Top", show=False),
        Binding("G,end", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: bytes = b""
        self.title = ""
        self.start = 0
        self.end = 0
        self.holes: list[tuple[int, int]] = []  # ranges the capture lacks (drawn as --)

    @property
    def per_row(self) -> int:
        width = self.scrollable_content_region.width or 80
        return 16 if width >= row_width(16) else 8 if width >= row_width(8) else 4

    def show(self, data: bytes | None, title: str, start: int = 0, length: int = 0,
             holes: list[tuple[int, int]] | None = None) -> None:
        self.data = bytes(data or b"")
        self.title = title
        self.holes = list(holes or [])
        missing = sum(end - begin for begin, end in self.holes)
        if data is None:
            self.border_title = f"{title} (not captured)"
        elif missing:
            self.border_title = f"{title} ({len(self.data)} bytes, {missing} not captured: shown as --)"
        else:
            self.border_title = f"{title} ({len(self.data)} bytes)"
        self._measure()
        self.highlight(start, length)

    def highlight(self, start: int, length: int) -> None:
        self.start = max(0, start)
        self.end = max(self.start, min(len(self.data), start + length))
        if self.end > self.start:
            row = self.start // self.per_row
            top = round(self.scroll_y)
            height = max(1, self.scrollable_content_region.height)
            last_row = (self.end - 1) // self.per_row
            if row < top or last_row >= top + height:
                self.scroll_to(y=max(0, row - 1), animate=False, immediate=True)
        self.refresh()

    def _measure(self) -> None:
        rows = (len(self.data) + self.per_row - 1) // self.per_row
        self.virtual_size = Size(self.size.width, rows)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._measure()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        per_row = self.per_row
        row = round(self.scroll_y) + y
        offset = row * per_row
        base = self.rich_style
        if offset >= len(self.data):
            return Strip.blank(width, base)
        chunk = self.data[offset:offset + per_row]
        highlight = base + self.get_component_rich_style("bytes-view--highlight")
        muted = base + self.get_component_rich_style("bytes-view--offset")
        ascii_style = base + self.get_component_rich_style("bytes-view--ascii")
        segments = [Segment(f"{offset:08x}  ", muted)]
        start, end = self.start, self.end

        pieces: list[tuple[str, object]] = []
        last = len(chunk) - 1
        missing = [any(begin <= offset + position < stop for begin, stop in self.holes) for position in
                   range(len(chunk))] if self.holes else [False] * len(chunk)
        for position, byte in enumerate(chunk):
            inside = start <= offset + position < end
            pieces.append(("--" if missing[position] else f"{byte:02x}", highlight if inside else
                           (muted if missing[position] else base)))
            if position != last:
                joined = inside and start <= offset + position + 1 < end
                pieces.append((" ", highlight if joined else base))
        pieces.append((" " * ((per_row - len(chunk)) * 3 + 2), base))
        for position, byte in enumerate(chunk):
            inside = start <= offset + position < end
            pieces.append((" " if missing[position] else _ASCII_TABLE[byte], highlight if inside else ascii_style))
        text: list[str] = []
        style = None
        for piece, piece_style in pieces:
            if piece_style is not style and text:
                segments.append(Segment("".join(text), style))
                text = []
            style = piece_style
            text.append(piece)
        if text:
            segments.append(Segment("".join(text), style))
        return Strip(segments).adjust_cell_length(width, base)
