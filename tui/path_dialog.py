"""A dialog that asks for one file or folder and a few choices: export (x), HTML report (H), TLS key log (K).

What they share: the path input has the focus, Enter or the primary button submits, Escape or the
other button cancels, an empty path is refused with a toast.  Each dialog says what its path and
choices become (``choice``); returning None keeps the dialog open (it has said why).
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Button, Input


class PathDialog(ModalScreen):
    """Subclasses set ``PATH_ID`` (the Input's id), ``GO_ID`` (the primary button's, if any) and
    ``EMPTY_TEXT``, compose their widgets, and implement ``choice(path)``."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    PATH_ID = "path"
    GO_ID = ""
    EMPTY_TEXT = "Give a file name"

    def choice(self, path: str) -> Any | None:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.query_one(f"#{self.PATH_ID}", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == self.GO_ID:
            self._submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def _submit(self) -> None:
        path = self.query_one(f"#{self.PATH_ID}", Input).value.strip()
        if not path:
            self.app.notify(str(self.EMPTY_TEXT), severity="error")
            return
        chosen = self.choice(path)
        if chosen is not None:
            self.dismiss(chosen)

    def action_cancel(self) -> None:
        self.dismiss(None)
