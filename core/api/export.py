"""The export contract shared by exporter plugins, the CLI and the TUI.

Exporters are plugins (``dicomtui_register_exporters``); this module holds what
they share: options, results and safe file naming inside the output folder.
The headless driver (progress bar, end summary, exit status) is a view:
``dicomtui.core.views.export``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


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

    @property
    def complete(self) -> bool:
        """True when every object the capture carried was written whole.

        Skipping is a loss unless the user asked for it (``SKIP_TOO_SMALL``) or there
        was nothing to export (``SKIP_NOTHING``): any other skip makes the export
        incomplete, whatever the exporter's reason.
        """
        return not self.errors and not self.partial and all(
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
        while candidate in self.claimed or (not self.overwrite and (self.root / candidate).exists()):
            number += 1
            candidate = f"{stem}~{number}{dot}{suffix}"
        path = (self.root / candidate).resolve()
        if path.parent != self.root:
            raise ValueError(f"refusing to write outside {self.root}: {candidate!r}")
        if path.exists():
            self.replaced.append(candidate)
        self.claimed.add(candidate)
        return path

    def open_new(self, name: str):
        path = self.claim(name)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self.overwrite else os.O_EXCL)
        flags |= getattr(os, "O_NOFOLLOW", 0)
        return path, os.fdopen(os.open(path, flags, 0o644), "wb")
