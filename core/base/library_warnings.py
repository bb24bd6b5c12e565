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
"""

from __future__ import annotations

import warnings

from dicomtui.core.base.safe_text import safe_text

KEPT = 3
MAX_TEXT = 200


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
