"""Is this TCP connection DICOM?  Port list, A-ASSOCIATE-RQ heuristic, mid-stream pickup.

Pure functions over the first bytes of each direction of a connection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DEFAULT_PORTS = "104,2762,11112"  # 2762: DICOM over TLS (PS3.15 Annex B)
MAX_PLAUSIBLE_PDU_LENGTH = 1 << 26  # 64 MiB: far above any real max-PDU negotiation
ASSOCIATE_FIXED_FIELDS = 68
ITEM_APPLICATION_CONTEXT = 0x10
ASSOCIATE_JUDGED_BYTES = 6 + ASSOCIATE_FIXED_FIELDS + 4  # through the application context item's header
PDV_CHAIN_REACH = 512  # a P-DATA-TF's PDV items are followed this far before its header is taken on trust


def parse_port_list(text: str) -> frozenset[int]:
    """``"104, 11112, 50000-50010"`` to a set of ports; raises ValueError on nonsense."""
    ports: set[int] = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low_text, high_text = part.split("-", 1)
            low, high = int(low_text), int(high_text)
            if not (0 < low <= high <= 65535) or high - low > 65535:
                raise ValueError(f"bad port range {part!r}")
            ports.update(range(low, high + 1))
        else:
            port = int(part)
            if not 0 < port <= 65535:
                raise ValueError(f"bad port {part!r}")
            ports.add(port)
    return frozenset(ports)


def _printable_ae(raw: bytes) -> bool:
    return all(0x20 <= byte < 0x7F for byte in raw)


def looks_like_associate_rq(data: bytes) -> bool:
    """A-ASSOCIATE-RQ: type 1, protocol version 1, plausible length, AE titles, app context item."""
    return (len(data) >= ASSOCIATE_JUDGED_BYTES and data[0] == 0x01 and judge_pdu_header(data) is True
            and _printable_ae(bytes(data[10:26])) and _printable_ae(bytes(data[26:42])))


def judge_pdu_header(data, offset: int = 0, max_associate_length: int = MAX_PLAUSIBLE_PDU_LENGTH) -> bool | None:
    """Whether the PDU grammar holds for a PDU starting at ``offset`` of ``data``, as far as its bytes
    there go: True, False, or None when the bytes so far pass but more are needed to tell.

    The grammar (PS3.8 section 9.3): the PDU type and its reserved byte; a length sane for the type
    (4 for A-ASSOCIATE-RJ, A-RELEASE and A-ABORT, whose fields must hold values the standard
    defines; 72 bytes to ``max_associate_length`` for an A-ASSOCIATE (resynchronisation passes the
    control-PDU limit, 1 MiB by default: an A-ASSOCIATE of a thousand contexts is ~100 KB), whose
    protocol version and first item, the application context, are checked (AE titles are not: a
    peer may send any bytes there); up to 64 MiB for P-DATA-TF); for P-DATA-TF
    the PDV items, each at least 2 bytes with an odd context ID and flags of at most 3, must add
    up to the PDU's length, each item header lying within ``PDV_CHAIN_REACH`` bytes of the PDU's
    start (a long data PDV must be the PDU's last), and the next PDU's first bytes, where present,
    must be a PDU type and a zero.  Used to decide a stream is DICOM and to
    resynchronise after a gap: a header found among data bytes must pass all of it, which a few
    bytes of pixel data that happen to read as a type and a length do not.
    """
    size = len(data)
    if size < offset + 6:
        return None
    pdu_type = data[offset]
    if not 1 <= pdu_type <= 7 or data[offset + 1] != 0:
        return False
    length = struct.unpack_from("!I", data, offset + 2)[0]
    if pdu_type in (3, 5, 6, 7):
        if length != 4:
            return False
        if size < offset + 10:
            return None
        if pdu_type == 3:  # reserved, result (1-2), source (1-3), reason
            return data[offset + 6] == 0 and data[offset + 7] in (1, 2) and data[offset + 8] in (1, 2, 3)
        if pdu_type == 7:  # reserved, reserved, source (0-2), reason (0-6)
            return data[offset + 8] in (0, 1, 2) and data[offset + 9] <= 6
        return True  # A-RELEASE: four reserved bytes, "not tested" (PS3.8)
    if pdu_type in (1, 2):
        if not ASSOCIATE_FIXED_FIELDS + 4 <= length <= max_associate_length:
            return False
        if size < offset + 8:
            return None
        if struct.unpack_from("!H", data, offset + 6)[0] & 0x0001 == 0:
            return False
        if size < offset + ASSOCIATE_JUDGED_BYTES:
            return None
        if data[offset + 74] != ITEM_APPLICATION_CONTEXT or data[offset + 75] != 0:
            return False
        return offset + 78 + struct.unpack_from("!H", data, offset + 76)[0] <= offset + 6 + length
    if not 6 <= length <= MAX_PLAUSIBLE_PDU_LENGTH:
        return False
    end = offset + 6 + length
    position = offset + 6
    while position < end:
        if size < position + 6:  # the next item's header is not here (yet)
            return None if position - offset <= PDV_CHAIN_REACH else False
        item_length = struct.unpack_from("!I", data, position)[0]
        if item_length < 2 or data[position + 4] % 2 == 0 or data[position + 5] > 3 \
                or position + 4 + item_length > end:
            return False
        position += 4 + item_length
        if position < end and position - offset > PDV_CHAIN_REACH:
            return False  # another item beyond reach: not shown to hold (a single long PDV ends the PDU)
    if size >= end + 2:  # the next PDU's first bytes, in reach
        return 1 <= data[end] <= 7 and data[end + 1] == 0
    return True


def _begins_associate_rq(data) -> bool:
    """Bytes that begin an A-ASSOCIATE-RQ as far as they go (its first bytes only, when a snapshot
    length cut the rest)."""
    return len(data) >= 6 and data[0] == 0x01 and judge_pdu_header(data) is not False


def plausible_pdu_header(data, offset: int = 0) -> bool:
    """A PDU header that could start a PDU here, as far as the bytes given tell (``judge_pdu_header``
    not False; used for mid-stream pickup)."""
    return len(data) >= offset + 6 and judge_pdu_header(data, offset) is not False


def looks_like_pdata_header(data, offset: int = 0) -> bool:
    """A P-DATA-TF header with at least its first PDV header, where the grammar holds so far."""
    return len(data) >= offset + 12 and data[offset] == 0x04 and judge_pdu_header(data, offset) is not False


def breaks_pdu_grammar_at_start(first_bytes: tuple[bytes, bytes], stream_started: tuple[bool, bool]) -> bool:
    """Whether a direction whose stream start was captured (its SYN) begins with bytes that cannot be
    a PDU: then the connection is not DICOM, whatever its port (an HTTP server on 11112 sending a
    DICOM file is not an A-ASSOCIATE-AC of a million bytes)."""
    return any(started and len(data) >= 6 and judge_pdu_header(data) is False
               for data, started in zip(first_bytes, stream_started))


@dataclass(frozen=True, slots=True)
class Detection:
    is_dicom: bool
    reason: str
    client_direction: int | None  # 0 or 1 when known from the bytes
    picked_up_midway: bool


def classify_connection(
    first_bytes: tuple[bytes, bytes],
    ports: tuple[int, int],
    dicom_ports: frozenset[int],
    heuristic: bool,
) -> Detection | None:
    """Decide from the first bytes of each direction; None if more bytes are needed.

    ``first_bytes[d]`` is what direction d sent first (possibly empty);
    ``ports[d]`` is the destination port of direction d.
    """
    for direction in (0, 1):
        if looks_like_associate_rq(first_bytes[direction]):
            return Detection(True, "A-ASSOCIATE-RQ", direction, False)
    on_port = [ports[d] in dicom_ports for d in (0, 1)]
    if any(on_port):
        client = 0 if on_port[0] else 1
        # A client's first PDU that is not an association request means the capture began late
        # (one cut by a snapshot length still starts as one).
        midway = any(first_bytes) and not any(_begins_associate_rq(data) for data in first_bytes)
        return Detection(True, "DICOM port", client, midway)
    if heuristic:
        for direction in (0, 1):
            data = first_bytes[direction]
            if looks_like_pdata_header(data) or (
                len(data) >= 10 and data[0] in (5, 6) and plausible_pdu_header(data)
            ):
                # Responses (P-DATA-TF from the SCP) are not told apart here; ports decide below.
                client = direction if ports[direction] < ports[1 - direction] else 1 - direction
                return Detection(True, "P-DATA-TF heuristic", client, True)
    if all(len(b) >= 12 for b in first_bytes) or sum(len(b) for b in first_bytes) >= 4096:
        return Detection(False, "not DICOM", None, False)
    return None
