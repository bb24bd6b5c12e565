"""What a TLS session says about itself, for views: a status, one line, tree rows, ``--json``.

Functions over a ``session.TlsSession`` (or its batch snapshot); they read, never change it, and
never show a secret.
"""

from __future__ import annotations

from typing import Any

from .suites import suite_name, version_name

TlsSession = Any  # session.TlsSession (not imported: session.py imports this module)


def status(session: TlsSession) -> str:
    """Decrypted, or why not, in a few words."""
    if session.decrypted:
        stopped = [d.stopped for d in session.directions if d.stopped]
        how = "NULL cipher: read in the clear" if session.secret_source == "NULL cipher" \
            else f"decrypted with the {session.secret_source}"
        return how + (f"; {stopped[0]}" if stopped else "")
    if session.missing_secret:
        return f"not decrypted: needs {session.missing_secret}"
    if not any(direction.encrypted for direction in session.directions):
        return "handshake only (nothing encrypted)"
    return "not decrypted"


def summary(session: TlsSession) -> str:
    """One line: version, suite, the server certificate, decrypted or why not."""
    parts = [session.name]
    if session.client_hello and session.client_hello.server_name:
        parts.append(f"SNI {session.client_hello.server_name}")
    chain = session.certificates.get("server")
    if chain:
        parts.append(f"server certificate {chain[0].subject or '?'} from {chain[0].issuer or '?'}")
    parts.append(session.status())
    return ", ".join(parts)


def details(session: TlsSession) -> list[tuple[str, str]]:
    """(label, value) rows for a tree: what the handshake said and what decryption did."""
    rows = [("Version", version_name(session.version) if session.version else "unknown (no ServerHello captured)")]
    if session.server_hello is not None:
        rows.append(("Cipher suite", session.suite.name if session.suite else
                     suite_name(session.server_hello.cipher_suites[0])))
    if session.client_hello is not None:
        if session.client_hello.server_name:
            rows.append(("Server name (SNI)", session.client_hello.server_name))
        if session.client_hello.alpn:
            rows.append(("ALPN offered", ", ".join(session.client_hello.alpn)))
    for side in ("server", "client"):
        chain = session.certificates.get(side)
        if chain:
            rows.append((f"{side.capitalize()} certificate", chain[0].line()))
        elif chain == [] or (side == "client" and session.certificate_requested and session.version != 0x0304):
            rows.append((f"{side.capitalize()} certificate", "none sent"))
    rows.append(("Decryption", session.status()))
    records = [direction.records for direction in session.directions]
    rows.append(("Records", f"{records[0]} / {records[1]} (by TCP direction)"))
    return rows


def as_json(session: TlsSession) -> dict:
    """The connection's TLS facts for ``--json`` (``connections[].layer``); never a secret."""
    def certificate(chain):
        if not chain:
            return None
        first = chain[0]
        return {"subject": first.subject, "issuer": first.issuer, "problem": first.problem or None,
                "not_before": first.not_before.isoformat() if first.not_before else None,
                "not_after": first.not_after.isoformat() if first.not_after else None}

    client = session.client_hello
    return {
        "protocol": "TLS",
        "version": version_name(session.version) if session.version else None,
        "cipher_suite": (session.suite.name if session.suite else
                         suite_name(session.server_hello.cipher_suites[0]) if session.server_hello else None),
        "server_name": client.server_name or None if client else None,
        "alpn": client.alpn if client else [],
        "hello_retry": session.hello_retry,
        "server_certificate": certificate(session.certificates.get("server")),
        "client_certificate": certificate(session.certificates.get("client")),
        "decrypted": session.decrypted,
        "secret_source": session.secret_source or None,
        "missing_secret": session.missing_secret or None,
        "records": [direction.records for direction in session.directions],  # by TCP direction
        "decrypted_records": [direction.decrypted_records for direction in session.directions],
        "key_updates": [direction.key_updates for direction in session.directions],
    }
