"""Validator results cached by what was validated: the SHA-256 of the bytes and the tool's version.

A day of traffic repeats objects (a retried store, the same series sent to two archives,
a C-MOVE's sub-operations of what a C-STORE already carried): each distinct object is
validated once.  Two levels:

- in-process: a dict, bounded (``MEMORY_ENTRIES``), shared by every analysis in the process
  (the TUI's on-demand key, tests, batch workers);
- on disk (``validate_cache`` option, on by default): one small JSON file per object under
  ``$XDG_CACHE_HOME/dicomtui/validation/<tool>-<version>/`` (``~/.cache/...`` when unset),
  so a second run over the same captures does not run the tool again.  The folder holds
  validator messages, which quote data-set values (patient names among them): it is created
  private (0700), and ``rm -r ~/.cache/dicomtui/validation`` empties it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from dicomtui.core.model.validation import ValidationResult, ValidatorLine

MEMORY_ENTRIES = 65536


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dicomtui" / "validation"


def object_key(tool_label: str, part10: bytes) -> str:
    digest = hashlib.sha256(part10)
    digest.update(b"\0" + tool_label.encode())
    return digest.hexdigest()


class ValidationCache:
    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: dict[str, ValidationResult] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> ValidationResult | None:
        with self._lock:
            found = self._memory.get(key)
        if found is None and self.folder is not None:
            found = self._read(key)
            if found is not None:
                self._remember(key, found)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        return replace(found, cached=True)

    def put(self, key: str, result: ValidationResult) -> None:
        if result.failed and "did not finish" in result.failed:
            return  # a timeout says more about the machine's load than about the object
        self._remember(key, result)
        if self.folder is not None:
            self._write(key, result)

    def _remember(self, key: str, result: ValidationResult) -> None:
        with self._lock:
            if len(self._memory) >= MEMORY_ENTRIES:
                self._memory.pop(next(iter(self._memory)))
            self._memory[key] = result

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.json"

    def _read(self, key: str) -> ValidationResult | None:
        try:
            raw = json.loads(self._path(key).read_text(encoding="utf-8"))
            return ValidationResult(
                tool=str(raw["tool"]), errors=int(raw["errors"]), warnings=int(raw["warnings"]),
                lines=tuple(ValidatorLine(str(line[0]), str(line[1])) for line in raw["lines"]),
                iod=str(raw.get("iod", "")), failed=str(raw.get("failed", "")))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None  # absent or damaged: validate again

    def _write(self, key: str, result: ValidationResult) -> None:
        path = self._path(key)
        record = {"tool": result.tool, "errors": result.errors, "warnings": result.warnings,
                  "lines": [[line.severity, line.text] for line in result.lines], "iod": result.iod,
                  "failed": result.failed}
        try:
            cache_root().parent.mkdir(parents=True, exist_ok=True)
            for folder in (cache_root(), self.folder, path.parent):  # private: the lines quote patient data
                folder.mkdir(exist_ok=True, mode=0o700)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                json.dump(record, stream)
            os.replace(temporary, path)
        except OSError:
            pass  # a read-only or full cache folder costs time, not results


_shared: dict[Path | None, ValidationCache] = {}


def shared_cache(on_disk: bool, tool_label: str) -> ValidationCache:
    """The process's cache for this tool version (on disk too when ``on_disk``)."""
    folder = cache_root() / tool_label.replace(" ", "-") if on_disk else None
    cache = _shared.get(folder)
    if cache is None:
        cache = _shared[folder] = ValidationCache(folder)
    return cache
