"""TLS record types and the test for a record header: what the plugin needs before it knows a
connection is TLS, kept apart from the session so that loading the plugin imports no cryptography
(``cryptography`` costs 15 MB and 10 ms at start-up; a plaintext capture never needs it)."""

from __future__ import annotations

from .handshake import CLIENT_HELLO, SERVER_HELLO

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
MAX_RECORD = (1 << 14) + 2048  # RFC 5246 section 6.2.3: the largest TLSCiphertext fragment


def looks_like_record(data: bytes, types: tuple[int, ...] = (HANDSHAKE,)) -> bool | None:
    """Does ``data`` start with a TLS record header of one of ``types`` (None: too few bytes to say)?"""
    if len(data) < 5:
        return None if not data or (data[0] in types and (len(data) < 2 or data[1] == 3)) else False
    if data[0] not in types or data[1] != 3 or data[2] > 4:
        return False
    length = int.from_bytes(data[3:5], "big")
    if not 0 < length <= MAX_RECORD:
        return False
    if data[0] == HANDSHAKE and len(data) > 5:
        return data[5] in (CLIENT_HELLO, SERVER_HELLO)
    return True
