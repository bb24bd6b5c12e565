"""A popup with one value in full: what a narrow column or a long line cuts off, wrapped and scrollable."""

from __future__ import annotations

from dicomtui.core.base.safe_text import safe_text
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class ValueScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,v", "dismiss_screen", "Close"),
        Binding("j,down", "scroll('down')", "Down", show=False),
        Binding("k,up", "scroll('up')", "Up", show=False),
        Binding("y", "copy", "Copy"),
    ]

    DEFAULT_CSS = """
    ValueScreen { align: center middle; }
    ValueScreen > VerticalScroll { width: 90%; max-width: 140; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 0 1; }
    """

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = safe_text(self.title_text)
            scroll.border_subtitle = "y copies, Escape closes"
            yield Static(Text("\n".join(safe_text(line) for line in self.text.splitlines())))

    def action_scroll(self, direction: str) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.scroll_relative(y=1 if direction == "down" else -1, animate=False)

    def action_copy(self) -> None:
        self.app.copy_value(self.text, self.title_text)

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)
