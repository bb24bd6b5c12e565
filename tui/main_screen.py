"""The main screen: packet list on top; detail tree and bytes below; expert pane; filter bar; status line.

The screen only lays the panes out and owns the status line and the bar; what
happens on a key is decided by the app's helpers (``tui.filtering``,
``tui.detail_view``, ``tui.navigation``, ...), each of which reaches the panes
through the properties here.  Other screens (associations, timing, ...) are
pushed on top of it and never act on it while they are shown.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from .bytes_view import BytesView
from .detail_tree import DetailTree
from .expert_pane import ExpertPane
from .packet_list import PacketList


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

    class TooLong(Message):
        """A key was refused: the text is at the filter language's length limit."""

    def __init__(self) -> None:
        from dicomtui.core.views.filter import MAX_FILTER_LENGTH

        # Refusing keys past the limit keeps a long paste or typed run from queueing thousands of
        # redraws of an over-long value (Textual's Input costs O(length) per key).
        super().__init__(id="bar", compact=True, max_length=MAX_FILTER_LENGTH)
        self.mode = "filter"

    def restricted(self) -> None:
        self.post_message(self.TooLong())  # said once on the status line, not a bell per key

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

    @property
    def packet_list(self) -> PacketList:
        return self.query_one(PacketList)

    @property
    def detail_tree(self) -> DetailTree:
        return self.query_one(DetailTree)

    @property
    def bytes_view(self) -> BytesView:
        return self.query_one(BytesView)

    @property
    def expert_pane(self) -> ExpertPane:
        return self.query_one(ExpertPane)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    def show_status(self, text: Text) -> None:
        try:
            self.query_one(StatusBar).update(text)
        except Exception:  # during shutdown the widget may be gone
            pass
