"""The headless ``--export`` driver: pick the exporter, show progress, summarise, exit status."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from dicomtui.core.api.export import (
    ExportOptions,
    ExportResult,
    Progress,
    capabilities,
    split_suffix,
)
from dicomtui.core.base.safe_text import safe_text

MAX_LISTED = 50  # objects named one by one in the summary


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """What ``--export`` asks for: where, which exporter (by the name the user gave), and how.

    No default exporter here: which one is the default is the command line's choice.
    """

    outdir: str
    exporter: str
    min_size: int = 0
    include_commands: bool = False
    meta_header: bool = True
    include_incomplete: bool = False
    overwrite: bool = False

    def options(self, messages: list[int] | None = None, frames: frozenset[int] | None = None) -> ExportOptions:
        return ExportOptions(min_size=self.min_size, include_commands=self.include_commands,
                             meta_header=self.meta_header, include_incomplete=self.include_incomplete,
                             overwrite=self.overwrite, messages=messages, frames=frames)


def exporters(host) -> dict:
    """Every registered exporter by its name (the names a user picks from)."""
    return {exporter.name: exporter for _plugin, (exporter,) in host.hook.dicomtui_register_exporters.registrations()}


def exporters_with(host, capability: str) -> list:
    """The registered exporters that declare ``capability`` (``core.api.export.WRITES_*``), built-ins first."""
    return [exporter for exporter in exporters(host).values() if capability in capabilities(exporter)]


def unknown_exporter(name: str, available: dict) -> str:
    names = ", ".join(sorted(available)) or "none"
    return f"dicomtui: unknown export format {safe_text(name)!r} (available: {names})"


def _terminal_progress(stream) -> Progress:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        stream.write(f"\rexporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def run_export(analysis, settings: ExportSettings, messages: list[int] | None = None,
               frames: frozenset[int] | None = None) -> int:
    """The headless ``--export`` mode; returns the exit status.  ``messages`` / ``frames``: what -Y kept."""
    available = exporters(analysis.plugins)
    exporter = available.get(settings.exporter)
    if exporter is None:
        print(unknown_exporter(settings.exporter, available), file=sys.stderr)
        return 2
    options = settings.options(messages, frames)
    outdir = settings.outdir
    progress = _terminal_progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        existing = set(os.listdir(outdir)) if os.path.isdir(outdir) else set()
    except OSError:  # a folder we may write but not list (mode 0333): nothing to compare with
        existing = set()
    try:
        result = exporter.export(analysis, outdir, options, progress)
    except OSError as exc:
        print(f"dicomtui: export to {safe_text(outdir)} failed: {safe_text(exc.strerror or str(exc))}",
              file=sys.stderr)
        return 3
    if existing and not options.overwrite:
        result.renamed = [name for name in (Path(path).name for path, _index in result.written + result.partial)
                          if name not in existing and _unsuffixed(name) in existing]
    print_summary(result, exporter.name, outdir)
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
    lost = result.lost
    for index, reason in lost[:MAX_LISTED]:
        where = f"message {index}" if index >= 0 else "capture"
        print(f"  not exported: {where}: {safe_text(reason)}", file=stream)
    if len(lost) > MAX_LISTED:
        print(f"  ... and {len(lost) - MAX_LISTED} more not exported", file=stream)
    for note in result.notes[:MAX_LISTED]:
        print(f"  note: {safe_text(note)}", file=stream)
    if len(result.notes) > MAX_LISTED:
        print(f"  ... and {len(result.notes) - MAX_LISTED} more notes", file=stream)
    for line in result.inexact[:MAX_LISTED]:
        print(f"  not exact: {safe_text(line)}", file=stream)
    if len(result.inexact) > MAX_LISTED:
        print(f"  ... and {len(result.inexact) - MAX_LISTED} more not exact", file=stream)
    for error in result.errors[:MAX_LISTED]:
        print(f"  error: {safe_text(error)}", file=stream)
    if len(result.errors) > MAX_LISTED:  # a full disk fails every file the same way
        print(f"  ... and {len(result.errors) - MAX_LISTED} more errors", file=stream)
