"""The TLS key log dialog (K): a file name in, the capture analysed again with it.

The file is only named here; reading it is the TLS plugin's (``-o tls.keylog_file``), and
nothing of its contents is ever shown.
"""

from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class KeyLogScreen(ModalScreen[str | None]):
    """Asks for an NSS key log file; dismisses with its path, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    KeyLogScreen { align: center middle; }
    KeyLogScreen > Vertical { width: 76; max-width: 100%; height: auto; border: round $primary;
        background: $surface; padding: 0 1; }
    """

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Decrypt TLS with a key log", style="bold"))
            yield Static("An NSS key log (SSLKEYLOGFILE, Python's SSLContext.keylog_filename); Enter reloads "
                         "the capture with it, Escape cancels.")
            if self.current:
                yield Label(Text(f"In use: {self.current}", style="dim"))
            yield Input("", placeholder="key log file", id="keylog-path")

    def on_mount(self) -> None:
        self.query_one("#keylog-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = os.path.expanduser(event.value.strip())
        if not path:
            self.app.notify("Give a key log file", severity="error")
            return
        if not os.path.isfile(path):
            self.app.notify(f"No such file: {path}", severity="error")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
