"""Where the user identity secrets lie in an A-ASSOCIATE PDU, for every view of raw bytes.

PS3.7 D.3.3.7 lets a requester prove who it is with a User Identity sub-item
(0x58) of the A-ASSOCIATE-RQ's User Information item, and lets the acceptor
answer with a server response sub-item (0x59) in the A-ASSOCIATE-AC.  These
bytes are hospital credentials.  Everything that shows or writes raw PDU
bytes (the pcap exporter, the TUI's bytes pane) masks the ranges found here;
the decoded views never show them at all.

Secrets (ranges, PDU-relative):

* 0x58, type 1 (username) and 2 (username and passcode): the secondary field
  (the passcode), when there is one; the username is not a secret.
* 0x58, types 3 (Kerberos ticket), 4 (SAML assertion), 5 (JWT) and any type
  PS3.7 does not define: the primary field and any secondary field.
* 0x59: the server response (a Kerberos or SAML/JWT token).
* Bytes of a 0x58/0x59 sub-item past its fields (they could be anything).
* Whatever cannot be parsed: a 0x58/0x59 sub-item whose lengths do not add up,
  or an item whose length runs past the PDU, is masked from its header to the
  end of the PDU; when only a prefix of the PDU is at hand (the capture lost
  its tail), everything from the first byte not walked to the end of the PDU.

The scan is a walk of the item lengths only (no decoding, no dictionary):
pure, fast, and independent of whichever decoder plugin is registered, so a
PDU that no decoder accepts is still masked.
"""

from __future__ import annotations

import struct

HEADER = 6  # PDU header: type, reserved, 4-byte length
FIXED = HEADER + 68  # items start after the protocol version, AE titles and reserved bytes
ASSOCIATE_TYPES = (1, 2)
USER_INFORMATION = 0x50
USER_IDENTITY = 0x58
USER_IDENTITY_RESPONSE = 0x59
PUBLIC_PRIMARY_TYPES = (1, 2)  # the primary field is a username
MASK_BYTE = b"*"

_u16 = struct.Struct("!H").unpack_from
_u32 = struct.Struct("!I").unpack_from


def associate_secret_ranges(pdu) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``[start, end)`` ranges of secrets in an A-ASSOCIATE-RQ/-AC.

    ``pdu`` holds the PDU from its header on (bytes or memoryview); it may be
    only a prefix of the PDU, and then ranges reach past ``len(pdu)`` up to the
    end its header declares (the bytes the capture lacks may turn up in a
    retransmitted frame).  Other PDU types, or fewer than 6 bytes: no ranges.
    """
    if len(pdu) < HEADER or pdu[0] not in ASSOCIATE_TYPES:
        return []
    end = HEADER + _u32(pdu, 2)[0]
    available = min(len(pdu), end)
    ranges: list[tuple[int, int]] = []
    position = FIXED
    while position < end:
        if position + 4 > available:
            ranges.append((position, end))  # not captured: what follows is unknown
            break
        if position + 4 > end:
            break  # 1-3 stray bytes: too short to be a sub-item
        item_type = pdu[position]
        item_end = position + 4 + _u16(pdu, position + 2)[0]
        if item_type == USER_INFORMATION:
            if not _user_information(pdu, position + 4, min(item_end, end), end, available, ranges):
                break
            if item_end > end:
                break
        elif item_end > end:
            ranges.append((position, end))  # an item running past the PDU: cannot be walked
            break
        position = item_end
    return _merged(ranges)


def _user_information(pdu, start: int, stop: int, end: int, available: int,
                      ranges: list[tuple[int, int]]) -> bool:
    """Add the secrets among the sub-items in pdu[start:stop]; False when the rest is masked."""
    position = start
    while position < stop:
        if position + 4 > available:
            ranges.append((position, end))
            return False
        if position + 4 > stop:
            return True
        sub_type = pdu[position]
        sub_end = position + 4 + _u16(pdu, position + 2)[0]
        if sub_type in (USER_IDENTITY, USER_IDENTITY_RESPONSE):
            found = _identity(pdu, position, sub_end, stop, available) if sub_type == USER_IDENTITY \
                else _response(pdu, position, sub_end, stop, available)
            if found is None:  # cannot be parsed: from its header to the end of the PDU
                ranges.append((position, end))
                return False
            ranges.extend(found)
        elif sub_end > stop:
            ranges.append((position, end))
            return False
        position = sub_end
    return True


def _identity(pdu, position: int, sub_end: int, stop: int, available: int) -> list[tuple[int, int]] | None:
    """0x58: [type][positive response][primary length][primary][secondary length][secondary]."""
    value = position + 4
    if sub_end > stop or sub_end - value < 6 or value + 4 > available:
        return None
    identity_type = pdu[value]
    primary_start = value + 4
    primary_end = primary_start + _u16(pdu, value + 2)[0]
    if primary_end + 2 > sub_end or primary_end + 2 > available:
        return None
    secondary_start = primary_end + 2
    secondary_end = secondary_start + _u16(pdu, primary_end)[0]
    if secondary_end > sub_end:
        return None
    found = [] if identity_type in PUBLIC_PRIMARY_TYPES else [(primary_start, primary_end)]
    found.append((secondary_start, sub_end))  # the secondary field and any bytes after it
    return [(low, high) for low, high in found if high > low]


def _response(pdu, position: int, sub_end: int, stop: int, available: int) -> list[tuple[int, int]] | None:
    """0x59: [response length][server response]."""
    value = position + 4
    if sub_end > stop or sub_end - value < 2 or value + 2 > available:
        return None
    if value + 2 + _u16(pdu, value)[0] > sub_end:
        return None
    return [(value + 2, sub_end)] if sub_end > value + 2 else []


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def mask_ranges(data, ranges: list[tuple[int, int]], shift: int = 0):
    """``data`` with ``MASK_BYTE`` over ``ranges`` (less ``shift``, clipped to ``data``).

    Returns ``data`` itself when nothing falls inside it, else a new bytearray.
    """
    copy = None
    for start, end in ranges:
        low, high = max(start - shift, 0), min(end - shift, len(data))
        if low < high:
            if copy is None:
                copy = bytearray(data)
            copy[low:high] = MASK_BYTE * (high - low)
    return data if copy is None else copy


def masked_pdu(pdu):
    """A PDU's bytes fit to show: user identity secrets replaced by ``*`` (other PDUs unchanged)."""
    if pdu is None:
        return None
    ranges = associate_secret_ranges(pdu)
    return bytes(mask_ranges(pdu, ranges)) if ranges else pdu
