"""Finding the TLS records again after a capture gap (sans-IO helpers for session.py).

A gap leaves a direction in the middle of a record, with the sequence number of the records
after it unknown.  The next record is found by its header — a plausible type, version and
length, followed by another plausible header where that record ends — and confirmed by
decrypting it: AEAD authentication only succeeds with the right sequence number, which is
searched near the estimate from the lost bytes (for TLS 1.2 AES-GCM/CCM the explicit nonce is
the sequence number in OpenSSL, tried first).  Only AEAD and NULL suites resynchronise: their
records have a fixed overhead, so the plaintext the gap took is known exactly from the record
count (unless the lost records were padded TLS 1.3 records or not application data).
Worst case: ``MAX_CANDIDATES`` decryptions of one record per candidate header.
"""

from __future__ import annotations

from .suites import CipherSuite

MAX_RECORD = (1 << 14) + 2048
MAX_CANDIDATES = 48  # sequence numbers tried for one candidate header
MAX_FALSE_HEADERS = 64  # candidate headers that did not decrypt before giving up


def record_overhead(suite: CipherSuite, tls13: bool) -> int | None:
    """Wire bytes per record beyond its plaintext (header included), or None (CBC: it varies)."""
    if suite.cipher == "NULL":
        return 5 + suite.mac_length
    if not suite.aead:
        return None
    tag = 8 if suite.cipher.endswith("CCM-8") else 16
    if tls13:
        return 5 + tag + 1  # the inner content type (OpenSSL adds no padding)
    explicit = 0 if suite.cipher.startswith("CHACHA20") else 8
    return 5 + explicit + tag


def _plausible(buffer, offset: int, types: tuple[int, ...], version: int, minimum: int) -> int | None:
    """The record length when a plausible header starts at ``offset``, else None."""
    if buffer[offset] not in types or int.from_bytes(buffer[offset + 1:offset + 3], "big") != version:
        return None
    length = int.from_bytes(buffer[offset + 3:offset + 5], "big")
    return length if minimum <= length <= MAX_RECORD else None


def find_record(buffer, start: int, types: tuple[int, ...], version: int, minimum: int) -> int | None:
    """The first offset from ``start`` where a record header is followed, at that record's end,
    by another plausible header; None when ``buffer`` holds no such pair yet."""
    end = len(buffer)
    offset = start
    while offset + 5 <= end:
        length = _plausible(buffer, offset, types, version, minimum)
        if length is not None:
            following = offset + 5 + length
            if following + 5 > end:
                return None  # not enough bytes yet to check the next header: wait for them
            if _plausible(buffer, following, types, version, minimum) is not None:
                return offset
        offset += 1
    return None


def sequence_candidates(before: int, lost_wire: int, average_record: float, explicit: int | None) -> list[int]:
    """Sequence numbers to try for the first record after a gap, likeliest first."""
    candidates = []
    if explicit is not None and explicit >= before:
        candidates.append(explicit)
    expected = before + (round(lost_wire / average_record) if average_record > 0 else 0)
    step = 0
    while len(candidates) < MAX_CANDIDATES:
        for candidate in (expected + step, expected - step):
            if candidate >= before and candidate not in candidates:
                candidates.append(candidate)
        step += 1
        if expected - step < before and expected + step - before > 4 * MAX_CANDIDATES:
            break
    return candidates[:MAX_CANDIDATES]
