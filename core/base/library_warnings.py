"""Warnings from the libraries (pydicom, pynetdicom, dpkt) never reach the terminal raw.

pydicom warns about invalid values and quotes them (``Invalid value for VR UI:
'1.2.\\x1b[31m3'``), from wherever a value happens to be converted: inside the
data set decoder (which records them for its expert items), but also later, when
a view or a plugin first reads a value.  ``LibraryWarnings`` takes over
``warnings.showwarning`` for a whole run: every warning is counted and the
first few kept, escaped; the headless modes print one summarised line at the
end.  Every ``UserWarning`` (what pydicom and pynetdicom raise about data), not
only those whose frame lies in a library: pydicom warns with ``stacklevel``
pointing at its caller, which may be a plugin.

``pydicom_warnings()`` is how the decoders keep pydicom's complaints about the
value they are decoding as data problems.  It listens on pydicom's logger (every
pydicom warning is logged there first, by ``pydicom.misc.warn_and_log``) and only
on the calling thread: ``warnings.catch_warnings`` would record every warning
raised anywhere in the process meanwhile (a ResourceWarning for a file another
thread left to the garbage collector became "a value pydicom reports as
invalid"), and two threads using it at once leave the process's warning
filters and ``showwarning`` swapped for good.  The warning pydicom raises next
is then dropped, as already said (``claimed``).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from dicomtui.core.base.safe_text import safe_text

KEPT = 3
MAX_TEXT = 200
MAX_COLLECTED = 1000  # per pydicom_warnings() block: a data set of a million bad values is not a million texts


class LibraryWarnings:
    """A context manager: while active, library warnings are collected instead of printed."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []
        self._saved = None

    def __enter__(self) -> LibraryWarnings:
        self._saved = warnings.showwarning
        warnings.showwarning = self._show
        return self

    def __exit__(self, *_exc) -> None:
        if warnings.showwarning == self._show:
            warnings.showwarning = self._saved

    def _show(self, message, category, filename, lineno, file=None, line=None) -> None:
        if claimed(message):
            return
        if not issubclass(category, UserWarning):  # ResourceWarning etc.: about this program, not the capture
            self._saved(message, category, filename, lineno, file, line)
            return
        self.count += 1
        text = safe_text(str(message))
        text = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
        if len(self.first) < KEPT and text not in self.first:
            self.first.append(text)

    def summary(self) -> str:
        """One line for the end of a headless run ('' when nothing was collected)."""
        if not self.count:
            return ""
        examples = "; ".join(self.first)
        return f"the DICOM libraries reported {self.count} problem(s) with values in the capture (e.g. {examples})"


_collectors = threading.local()  # .stack: the lists of the pydicom_warnings() blocks open on this thread
_install_lock = threading.Lock()
_installed = False


class _PydicomLogListener(logging.Handler):
    """Hands pydicom's logged warnings to the innermost ``pydicom_warnings()`` block of the logging thread."""

    def emit(self, record: logging.LogRecord) -> None:
        stack = getattr(_collectors, "stack", None)
        if stack and record.levelno >= logging.WARNING:
            text = record.getMessage()
            _collectors.last = text
            if len(stack[-1]) < MAX_COLLECTED:
                stack[-1].append(text)


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        logger = logging.getLogger("pydicom")
        logger.addHandler(_PydicomLogListener())
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)
        saved = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not claimed(message):
                saved(message, category, filename, lineno, file, line)

        # Outside a LibraryWarnings run (dicomtui as a library), a claimed warning must not be
        # printed either: it quotes capture bytes, and the caller reports it escaped.
        warnings.showwarning = show
        _installed = True


@contextmanager
def pydicom_warnings() -> Iterator[list[str]]:
    """The warnings pydicom raises on this thread inside the block, in order (texts verbatim)."""
    _install()
    stack = getattr(_collectors, "stack", None)
    if stack is None:
        stack = _collectors.stack = []
    collected: list[str] = []
    stack.append(collected)
    try:
        yield collected
    finally:
        stack.pop()


def claimed(message) -> bool:
    """Whether a warning is one an open ``pydicom_warnings()`` block on this thread has collected."""
    # pydicom logs a warning and raises it right after, on the same thread: the one to drop
    # is the last text logged.
    return bool(getattr(_collectors, "stack", None)) and getattr(_collectors, "last", None) == str(message)
