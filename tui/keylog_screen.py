"""The TLS key log dialog (K): a file name in, the capture analysed again with it.

The file is only named here; reading it is the TLS plugin's (``-o tls.keylog_file``), and
nothing of its contents is ever shown.
"""

from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from .path_dialog import PathDialog


class KeyLogScreen(PathDialog):
    """Asks for an NSS key log file; dismisses with its path, or None."""

    PATH_ID, EMPTY_TEXT = "keylog-path", "Give a key log file"

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

    def choice(self, path: str) -> str | None:
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            self.app.notify(f"No such file: {path}", severity="error")
            return None
        return path
