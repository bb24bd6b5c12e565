"""Copying text out of the UI: OSC 52 to the terminal's clipboard, and a file.

Terminals that honour OSC 52 (and tmux with ``set-clipboard on``) put the text
on the clipboard; there is no way to ask whether one did, so the text is also
written to a file whose path the toast names (``copy_to`` preference:
``both``, ``osc52`` or ``file``).
"""

from __future__ import annotations

import os
from pathlib import Path


def copy_file_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "dicomtui" / "copied.txt"


def copy_text(app, text: str, what: str, mode: str = "both") -> str:
    """Copy ``text``; returns the sentence for the toast."""
    done = []
    if mode in ("both", "osc52"):
        app.copy_to_clipboard(text)
        done.append("to the clipboard (OSC 52)")
    if mode in ("both", "file"):
        path = copy_file_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")
            done.append(f"to {path}")
        except OSError as exc:
            done.append(f"not to a file ({exc.strerror or exc})")
    return f"Copied {what} ({len(text):,} characters) " + " and ".join(done)
