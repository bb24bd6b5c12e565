"""The export contract shared by exporter plugins, the CLI and the TUI.

Exporters are plugins (``dicomtui_register_exporters``); this module holds what
they share: options, results and safe file naming inside the output folder.
The headless driver (progress bar, end summary, exit status) is a view:
``dicomtui.core.views.export``.

Every file is written under a temporary name in the output folder
(``.NAME.dicomtui-partial-PID``) and renamed to its real name only when it is
complete; an exception or Ctrl-C while writing removes it.  So a file with an
exporter's name is always whole, whatever stopped the export.  A refusal or
write failure for one file is recorded in the result (``errors``) and the
exporter goes on with the others.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


# What an exporter declares it writes (its optional ``capabilities`` attribute, a set of these), so
# a front end picks an exporter by what it needs, never by its name: a plugin may be disabled or
# replaced, and another may offer the same.
WRITES_OBJECTS = "objects"  # one file per message's data set: can export message by message, as they complete
WRITES_CAPTURE = "capture"  # a capture file of the selected frames (``ExportOptions.frames``), not per message


def capabilities(exporter) -> frozenset[str]:
    """What ``exporter`` declares it writes (nothing: a whole-capture exporter of messages)."""
    return frozenset(getattr(exporter, "capabilities", ()))


SKIP_TOO_SMALL = "smaller than --min-size"
SKIP_NOTHING = "no DICOM connection in the capture"
REQUESTED_SKIPS = frozenset((SKIP_TOO_SMALL, SKIP_NOTHING))


@dataclass(slots=True)
class ExportOptions:
    min_size: int = 0
    include_commands: bool = False
    meta_header: bool = True
    include_incomplete: bool = False
    overwrite: bool = False
    messages: list[int] | None = None  # only these message indices (the TUI's "export selected")
    frames: frozenset[int] | None = None  # frame-based exporters (pcap): only these frame numbers


def frames_of_pdus(analysis, pdus) -> frozenset[int]:
    """Every frame number that carried bytes of the given PDUs (for "displayed" / "marked" exports)."""
    from bisect import bisect_right

    found: set[int] = set()
    for pdu in pdus:
        chunks = analysis.connections[pdu.connection].streams[pdu.direction]
        start, end = pdu.stream_offset, pdu.stream_offset + pdu.total_length
        offsets = chunks.stream_offsets
        index = max(bisect_right(offsets, start) - 1, 0)
        while index < len(offsets) and offsets[index] < end:
            if offsets[index] + chunks.lengths[index] > start:
                found.add(chunks.frames[index])
            index += 1
    return frozenset(found)


@dataclass(slots=True)
class ExportResult:
    written: list[tuple[str, int]] = field(default_factory=list)  # (path, message index)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (message index, reason)
    partial: list[tuple[str, int]] = field(default_factory=list)  # written with --include-incomplete
    errors: list[str] = field(default_factory=list)
    bytes_written: int = 0
    replaced: list[str] = field(default_factory=list)  # files of an earlier export replaced (--overwrite)
    renamed: list[str] = field(default_factory=list)  # written as NAME~N because NAME was already there
    notes: list[str] = field(default_factory=list)  # written, with something to say (a value kept raw)
    inexact: list[str] = field(default_factory=list)  # written, but something could not be kept as captured

    @property
    def complete(self) -> bool:
        """True when every object the capture carried was written whole and exactly.

        Skipping is a loss unless the user asked for it (``SKIP_TOO_SMALL``) or there
        was nothing to export (``SKIP_NOTHING``): any other skip makes the export
        incomplete, whatever the exporter's reason.
        """
        return not self.errors and not self.partial and not self.inexact and all(
            reason in REQUESTED_SKIPS for _index, reason in self.skipped)

    @property
    def lost(self) -> list[tuple[int, str]]:
        """Skipped objects the user did not ask to skip: (message index, reason)."""
        return [(index, reason) for index, reason in self.skipped if reason not in REQUESTED_SKIPS]


Progress = Callable[[int, int], None]


def safe_component(text: str, fallback: str = "x", limit: int = 80) -> str:
    """A file-name component: only [A-Za-z0-9._-], no leading dots, bounded length."""
    cleaned = _UNSAFE_NAME.sub("_", text or "").strip("._-")
    return (cleaned or fallback)[:limit]


def split_suffix(name: str) -> tuple[str, str, str]:
    """``("A-1.2.3", ".", "dcm.partial")`` for ``A-1.2.3.dcm.partial``: UIDs in names contain dots."""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        return name, "", ""
    if suffix == "partial":
        inner_stem, inner_dot, inner_suffix = stem.rpartition(".")
        if inner_dot and inner_suffix and len(inner_suffix) <= 8:
            return inner_stem, ".", f"{inner_suffix}.partial"
    if not stem or len(suffix) > 8:
        return name, "", ""
    return stem, dot, suffix


def object_name(message, kind: str, extension: str, partial: bool = False) -> str:
    """The stable, readable file name of one exported object (before OutputFolder's checks).

    ``A{association:03d}-M{message index:05d}-{command}-{SOP instance}.{extension}``; every
    part from the capture goes through ``safe_component``, so no name can leave the folder.
    ``kind`` tells objects of one message apart (``command`` for an exported command set).
    """
    association = f"A{message.association:03d}" if message.association >= 0 else "Ax"
    command = safe_component(message.command_name, "unknown", 40)
    instance = safe_component(message.affected_sop_instance, "no-instance", 64)
    parts = [association, f"M{message.index:05d}", command]
    if kind:
        parts.append(kind)
    parts.append(instance)
    name = "-".join(parts) + "." + extension
    return name + ".partial" if partial else name


class ExportRefused(OSError):
    """One file is not written (e.g. a symbolic link sits where it would go); the others still are."""


class AtomicFile:
    """A file written under a temporary name and renamed into place when closed without error.

    Used as a context manager (``with stream: ...``): leaving the block with an
    exception (Ctrl-C included) removes the temporary file instead, so nothing
    half-written ever carries the real name.
    """

    def __init__(self, path: Path, overwrite: bool) -> None:
        self.path = path
        self.overwrite = overwrite
        self.temporary = path.with_name(f".{path.name}.dicomtui-partial-{os.getpid()}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self._file = os.fdopen(os.open(self.temporary, flags, 0o644), "wb")
        self.closed = False

    def write(self, data) -> int:
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def fileno(self) -> int:
        return self._file.fileno()

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind, _value, _traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()

    def close(self) -> None:
        """Finish the file: flush, close and rename it to its real name."""
        if self.closed:
            return
        try:
            self._file.close()
            if os.path.islink(self.path):  # planted while we wrote: do not replace it
                raise ExportRefused(f"{self.path.name}: a symbolic link appeared there; not replaced")
            if not self.overwrite and os.path.lexists(self.path):
                raise ExportRefused(f"{self.path.name}: a file appeared there while exporting; not replaced")
            os.replace(self.temporary, self.path)
        except BaseException:
            self.discard()
            raise
        self.closed = True

    def discard(self) -> None:
        """Remove the temporary file (an error or an interrupt while writing)."""
        self.closed = True
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self.temporary)
        except OSError:
            pass


def error_text(exc: OSError) -> str:
    """One line for a failed file: the refusal's own words, or the system's reason and the file."""
    if isinstance(exc, ExportRefused):
        return str(exc)
    where = Path(exc.filename).name if exc.filename else ""
    return f"{where + ': ' if where else ''}{exc.strerror or exc}"


class OutputFolder:
    """Creates files strictly inside one folder, never silently replacing anything."""

    def __init__(self, path: str, overwrite: bool = False) -> None:
        self.root = Path(path).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.overwrite = overwrite
        self.claimed: set[str] = set()
        self.replaced: list[str] = []

    def claim(self, name: str) -> Path:
        """A path for ``name`` inside the folder; a suffix keeps names from colliding."""
        name = safe_component(name, "object", 200)
        stem, dot, suffix = split_suffix(name)
        candidate = name
        number = 1
        # lexists: a dangling symbolic link is something already there, too.
        while candidate in self.claimed or (not self.overwrite and os.path.lexists(self.root / candidate)):
            number += 1
            candidate = f"{stem}~{number}{dot}{suffix}"
        self.claimed.add(candidate)
        path = self.root / candidate
        if os.path.islink(path):
            raise ExportRefused(f"{candidate}: a symbolic link is in the output folder under this name; "
                                "not written through or replaced")
        if path.resolve().parent != self.root:
            raise ExportRefused(f"refusing to write outside {self.root}: {candidate!r}")
        if os.path.lexists(path):
            self.replaced.append(candidate)
        return path

    def open_new(self, name: str) -> tuple[Path, AtomicFile]:
        """(final path, file to write): the file takes its name only when closed without error."""
        path = self.claim(name)
        return path, AtomicFile(path, self.overwrite)
