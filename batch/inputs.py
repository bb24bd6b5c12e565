"""Batch inputs: files, directories and glob patterns; identity by content, not name."""

from __future__ import annotations

import glob
import hashlib
import os

CAPTURE_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                  b"\x0a\x0d\x0d\x0a")
GZIP_MAGIC = b"\x1f\x8b"


def looks_like_capture(path: str) -> bool:
    """pcap, pcapng or gzip by the first bytes (ring-buffer names carry no reliable extension)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head in CAPTURE_MAGICS or head[:2] == GZIP_MAGIC


def expand_inputs(patterns: list[str]) -> tuple[list[str], list[tuple[str, str]], int]:
    """(capture paths in name order, problems as (pattern, text), files passed over in directories).

    A named file is always an input (if it is not a capture, that is reported); in a
    directory (searched recursively) only files that start like a capture are, hidden
    files and directories are not.
    """
    found: dict[str, None] = {}
    problems: list[tuple[str, str]] = []
    passed_over = 0

    def add_directory(directory: str) -> None:
        nonlocal passed_over
        for root, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                path = os.path.join(root, name)
                if looks_like_capture(path):
                    found[path] = None
                else:
                    passed_over += 1

    for pattern in patterns:
        if os.path.isdir(pattern):
            add_directory(pattern)
        elif os.path.exists(pattern):
            found[pattern] = None
        elif glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                problems.append((pattern, "no file matches this pattern"))
            for match in matches:
                if os.path.isdir(match):
                    add_directory(match)
                else:
                    found[match] = None
        else:
            problems.append((pattern, "no such file or directory"))
    return sorted(found), problems, passed_over


def hash_file(path: str) -> dict:
    """SHA-256 of the file's bytes and its size, or the reason it cannot be read."""
    try:
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        return {"path": path, "hash": None, "size": 0, "problem": f"cannot read: {exc.strerror or exc}"}
    return {"path": path, "hash": digest, "size": size, "problem": None}
