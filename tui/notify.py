"""Every toast of the UI goes through ``Toasts.show``: plain text only, never markup, never a renderable.

Textual 8 renders a toast's message by calling ``str.translate`` on it, so a
``rich.text.Text`` (or anything but ``str``) crashes the app a moment after it
is posted, far from the call that caused it.  ``DicomApp.notify`` routes every
call here; a non-``str`` message is converted to its plain text (the user sees
the toast, the app lives) and recorded in ``violations`` so tests fail on it.
"""

from __future__ import annotations

from typing import Any

from dicomtui.core.base.safe_text import safe_text

MAX_TOASTS = 2  # more stacked toasts would cover half the packet list at 80x24
MAX_TOAST_CHARS = 240  # a toast is a hint: the full text is in its pane, and v shows it


def plain_text(message: Any) -> str:
    """The text of ``message`` as the user should read it (rich Text -> its plain string)."""
    if isinstance(message, str):
        return message
    plain = getattr(message, "plain", None)
    return plain if isinstance(plain, str) else str(message)


def markup_plain(text: Any) -> Any:
    """The plain text of a string in Textual's content markup ("Press [b]q[/b]" -> "Press q")."""
    if not isinstance(text, str):
        return text
    from textual.content import Content

    try:
        return Content.from_markup(text).plain
    except Exception:  # not valid markup after all: show it as it is
        return text


def toast_text(message: str) -> str:
    """Control characters escaped line by line (newlines kept), long text cut with a mark."""
    lines = [safe_text(line) for line in message.splitlines()] or [""]
    text = "\n".join(lines)
    if len(text) > MAX_TOAST_CHARS:
        text = text[:MAX_TOAST_CHARS - 1] + "…"
    return text


class Toasts:
    """The app's one notification path (see module docstring)."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def prepare(self, message: Any, title: Any) -> tuple[str, str]:
        for what, value in (("message", message), ("title", title)):
            if not isinstance(value, str):
                self.violations.append(f"{what} of type {type(value).__name__}")
        return toast_text(plain_text(message)), toast_text(plain_text(title))

    @staticmethod
    def make_room(app) -> None:
        """Drop the oldest toasts so at most MAX_TOASTS - 1 remain before a new one."""
        notifications = list(getattr(app, "_notifications", []))
        for notification in notifications[:max(0, len(notifications) - (MAX_TOASTS - 1))]:
            app._unnotify(notification, refresh=False)
