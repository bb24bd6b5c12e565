"""TLS secrets: an NSS key log file (SSLKEYLOGFILE format), kept by client random.

Each line is ``LABEL <client random hex> <secret hex>``: ``CLIENT_RANDOM`` (a TLS 1.2 master
secret) or TLS 1.3's ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``, ``SERVER_HANDSHAKE_TRAFFIC_SECRET``,
``CLIENT_TRAFFIC_SECRET_0``, ``SERVER_TRAFFIC_SECRET_0`` (others are kept, unused).  The file is
re-read when a lookup misses and it has grown (a live capture whose peer is still writing it).
Secrets are never part of a message, repr or finding: only counts and the file's name are.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

LABELS = ("CLIENT_RANDOM", "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
          "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "CLIENT_EARLY_TRAFFIC_SECRET", "EXPORTER_SECRET")


class KeyLog:
    """Secrets by (label, client random); from lines, files (re-read when grown), or pcapng blocks."""

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._secrets: dict[tuple[str, bytes], bytes] = {}
        self._files: dict[str, int] = {path: -1 for path in paths}  # path -> size when read
        self.problems: list[str] = []  # unreadable files, malformed lines (counted, never quoted)
        self._bad_lines = 0
        self.reload()

    def __repr__(self) -> str:
        return f"KeyLog({len(self._secrets)} secrets from {len(self._files)} file(s))"

    def __len__(self) -> int:
        return len(self._secrets)

    def add_text(self, text: str) -> int:
        """Secrets from key log lines; how many were new."""
        added = 0
        for line in text.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) != 3:
                self._bad_lines += 1
                continue
            try:
                client_random, secret = bytes.fromhex(fields[1]), bytes.fromhex(fields[2])
            except ValueError:
                self._bad_lines += 1
                continue
            key = (fields[0], client_random)
            if key not in self._secrets:
                added += 1
            self._secrets[key] = secret
        return added

    def reload(self) -> bool:
        """Read the files that are new or have grown; True when something was read."""
        grew = False
        for path, size in list(self._files.items()):
            try:
                current = os.path.getsize(path)
                if current == size:
                    continue
                with open(path, encoding="ascii", errors="replace") as handle:
                    text = handle.read()
            except OSError as exc:
                problem = f"TLS key log {path}: {exc.strerror or exc}"
                if problem not in self.problems:
                    self.problems.append(problem)
                continue
            self._files[path] = current
            self.problems = [problem for problem in self.problems if not problem.startswith(f"TLS key log {path}:")]
            self.add_text(text)
            grew = True
        if self._bad_lines and not any("malformed" in problem for problem in self.problems):
            self.problems.append(f"TLS key log: {self._bad_lines} malformed line(s) ignored")
        return grew

    def get(self, label: str, client_random: bytes) -> bytes | None:
        secret = self._secrets.get((label, client_random))
        if secret is None and self._files and self.reload():
            secret = self._secrets.get((label, client_random))
        return secret

    @property
    def files(self) -> list[str]:
        return list(self._files)
