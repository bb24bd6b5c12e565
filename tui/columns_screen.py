"""Choosing, hiding and reordering the packet list's columns (saved as the ``columns`` preference)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList
from textual.widgets.selection_list import Selection

from .packet_list import COLUMNS


class ColumnsScreen(ModalScreen[tuple[str, ...] | None]):
    """Returns the visible columns in order, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "save", "Save", priority=True),  # the list itself would toggle on Enter
        Binding("K,shift+up", "move(-1)", "Move up"),
        Binding("J,shift+down", "move(1)", "Move down"),
    ]

    DEFAULT_CSS = """
    ColumnsScreen { align: center middle; }
    ColumnsScreen > Vertical { width: 60; max-width: 100%; height: auto; border: round $primary;
        background: $surface; padding: 0 1; }
    ColumnsScreen SelectionList { height: auto; max-height: 14; }
    """

    def __init__(self, visible: tuple[str, ...]) -> None:
        super().__init__()
        self.order = list(visible) + [name for name in COLUMNS if name not in visible]
        self.shown = set(visible)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Columns: space shows / hides, J / K (shift+down / up) move, Enter saves",
                             style="bold"))
            yield SelectionList[str](*self._selections(), id="columns")

    def _selections(self) -> list[Selection]:
        return [Selection(COLUMNS[name][0][2], name, name in self.shown) for name in self.order]

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def _read_visible(self) -> None:
        self.shown = set(self.query_one(SelectionList).selected)

    def action_move(self, step: int) -> None:
        listing = self.query_one(SelectionList)
        at = listing.highlighted
        if at is None:
            return
        target = at + step
        if not 0 <= target < len(self.order):
            return
        self._read_visible()
        self.order[at], self.order[target] = self.order[target], self.order[at]
        listing.clear_options()
        listing.add_options(self._selections())
        listing.highlighted = target

    def action_save(self) -> None:
        self._read_visible()
        chosen = tuple(name for name in self.order if name in self.shown)
        self.dismiss(chosen or ("info",))

    def action_cancel(self) -> None:
        self.dismiss(None)
