"""The export contract shared by exporter plugins, the CLI and the TUI.

Exporters are plugins (``dicomtui_register_exporters``); this module holds what
they share: options, results, safe file naming inside the output folder, and
the headless driver with its progress bar and end summary.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .safe_text import safe_text

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


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

    @property
    def complete(self) -> bool:
        """True when every object the capture carried was written whole."""
        return not self.errors and not self.partial and not any(
            reason.startswith("incomplete") for _index, reason in self.skipped)


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


def exporters(host) -> dict:
    return {exporter.name: exporter for _plugin, (exporter,) in host.collect_registrations(
        "dicomtui_register_exporters")}


def _terminal_progress(stream) -> Progress:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        stream.write(f"\rexporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def run_export(analysis, args, messages: list[int] | None = None, frames: frozenset[int] | None = None) -> int:
    """The headless ``--export`` mode; returns the exit status.  ``messages`` / ``frames``: what -Y kept."""
    available = exporters(analysis.plugins)
    exporter = available.get(args.export_format)
    if exporter is None:
        names = ", ".join(sorted(available)) or "none"
        print(f"dicomtui: unknown export format {safe_text(args.export_format)!r} (available: {names})",
              file=sys.stderr)
        return 2
    options = ExportOptions(min_size=args.min_size, include_commands=args.include_commands,
                            meta_header=not args.no_meta, include_incomplete=args.include_incomplete,
                            overwrite=args.overwrite, messages=messages, frames=frames)
    progress = _terminal_progress(sys.stderr) if sys.stderr.isatty() else None
    existing = set(os.listdir(args.export)) if os.path.isdir(args.export) else set()
    try:
        result = exporter.export(analysis, args.export, options, progress)
    except OSError as exc:
        print(f"dicomtui: export to {safe_text(args.export)} failed: {exc.strerror or exc}", file=sys.stderr)
        return 3
    if existing and not options.overwrite:
        result.renamed = [name for name in (Path(path).name for path, _index in result.written + result.partial)
                          if name not in existing and _unsuffixed(name) in existing]
    print_summary(result, exporter.name, args.export)
    return 0 if result.complete else 3


def _unsuffixed(name: str) -> str:
    """``A-1.2~3.dcm`` -> ``A-1.2.dcm``: the name OutputFolder would have used without a collision."""
    stem, dot, suffix = split_suffix(name)
    match = re.fullmatch(r"(.*)~\d+", stem)
    return f"{match.group(1)}{dot}{suffix}" if match else name


def print_summary(result: ExportResult, name: str, outdir: str, stream=None) -> None:
    stream = stream or sys.stderr
    print(f"{name}: wrote {len(result.written)} file(s), {result.bytes_written} bytes, into "
          f"{safe_text(outdir)}", file=stream)
    if result.replaced:
        print(f"  replaced {len(result.replaced)} file(s) of an earlier export (--overwrite)", file=stream)
    if result.renamed:
        print(f"  {len(result.renamed)} file(s) already existed (an earlier export?): kept them and wrote the "
              "new ones as NAME~2, NAME~3, ... (--overwrite replaces them instead)", file=stream)
    if result.partial:
        print(f"  {len(result.partial)} incomplete object(s) written as *.partial", file=stream)
    reasons: dict[str, int] = {}
    for _index, reason in result.skipped:
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in sorted(reasons.items()):
        print(f"  skipped {count}: {safe_text(reason)}", file=stream)
    for error in result.errors:
        print(f"  error: {safe_text(error)}", file=stream)
