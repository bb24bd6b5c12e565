"""Where TLS secrets come from: key log files (``-o tls.keylog_file``), key log text embedded in
the capture (pcapng Decryption Secrets Blocks), and servers' RSA private keys (``-o
tls.rsa_keys``, PEM, PKCS#1 or PKCS#8) for static-RSA suites.

One ``SecretSources`` per analysis, shared by its TLS connections.  Loading problems (a file
that cannot be read, a key that is not an RSA private key) are kept in ``problems`` for one
finding each; no secret ever appears in them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .keylog import KeyLog

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric import rsa

# ``cryptography`` is imported where an RSA key is read or used: loading the plugin for a
# plaintext capture must not pay for it (record_types.py).


def split_paths(value: str | None) -> list[str]:
    """``-o`` values naming several files: separated by the OS path separator (':' on Linux)."""
    return [path for path in (value or "").split(os.pathsep) if path]


class SecretSources:
    def __init__(self, keylog_files: list[str] = (), rsa_key_files: list[str] = ()) -> None:
        self.keylog = KeyLog(keylog_files)
        self.embedded_keylog = KeyLog()  # from the capture's Decryption Secrets Blocks
        self.rsa_keys: list[rsa.RSAPrivateKey] = []
        self.rsa_key_files = list(rsa_key_files)
        self.embedded = 0  # key log lines from the capture's Decryption Secrets Blocks
        # Records all TLS sessions keep while waiting for a key log to grow (session.py): at most
        # this many bytes in all, whatever the number of connections.
        self.held_bytes = 0
        self.max_held_bytes = 64 << 20
        self._problems: list[str] = []
        if rsa_key_files:
            self._load_rsa_keys(rsa_key_files)

    def _load_rsa_keys(self, rsa_key_files) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        for path in rsa_key_files:
            try:
                with open(path, "rb") as handle:
                    key = serialization.load_pem_private_key(handle.read(), password=None)
            except OSError as exc:
                self._problems.append(f"TLS key {path}: {exc.strerror or exc}")
                continue
            except (ValueError, TypeError) as exc:
                self._problems.append(f"TLS key {path}: not an unencrypted PEM private key ({type(exc).__name__})")
                continue
            if not isinstance(key, rsa.RSAPrivateKey):
                self._problems.append(f"TLS key {path}: not an RSA key (only static-RSA suites use the server key)")
                continue
            self.rsa_keys.append(key)

    def __repr__(self) -> str:
        return f"SecretSources({self.keylog!r}, {len(self.rsa_keys)} RSA key(s))"

    @property
    def problems(self) -> list[str]:
        return self._problems + self.keylog.problems

    @property
    def any(self) -> bool:
        return bool(len(self.keylog) or self.keylog.files or self.rsa_keys or len(self.embedded_keylog))

    def add_embedded(self, text: str) -> None:
        self.embedded += self.embedded_keylog.add_text(text)

    def keylog_secret(self, label: str, client_random: bytes) -> bytes | None:
        secret = self.keylog.get(label, client_random)
        return secret if secret is not None else self.embedded_keylog.get(label, client_random)

    def keylog_name(self, label: str, client_random: bytes) -> str:
        """Which key log has this secret, in words."""
        if self.keylog.get(label, client_random) is not None:
            return "key log"
        return "key log embedded in the capture (pcapng Decryption Secrets Block)"

    def rsa_premaster(self, encrypted: bytes) -> bytes | None:
        """The 48-byte premaster secret, with whichever server key decrypts it."""
        from cryptography.hazmat.primitives.asymmetric import padding

        for key in self.rsa_keys:
            if key.key_size // 8 != len(encrypted):
                continue
            try:
                premaster = key.decrypt(encrypted, padding.PKCS1v15())
            except ValueError:
                continue
            if len(premaster) == 48:
                return premaster
        return None
