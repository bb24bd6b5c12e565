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
    if len(data) < 6 + ASSOCIATE_FIXED_FIELDS + 4:
        return False
    if data[0] != 0x01 or data[1] != 0:
        return False
    length = struct.unpack_from("!I", data, 2)[0]
    if not ASSOCIATE_FIXED_FIELDS + 4 <= length <= MAX_PLAUSIBLE_PDU_LENGTH:
        return False
    if struct.unpack_from("!H", data, 6)[0] & 0x0001 == 0:
        return False
    if not (_printable_ae(bytes(data[10:26])) and _printable_ae(bytes(data[26:42]))):
        return False
    return data[74] == ITEM_APPLICATION_CONTEXT


def plausible_pdu_header(data: bytes, offset: int = 0) -> bool:
    """A PDU header that could start a PDU here (used for resynchronisation and pickup)."""
    if len(data) < offset + 6:
        return False
    pdu_type = data[offset]
    if not 1 <= pdu_type <= 7 or data[offset + 1] != 0:
        return False
    length = struct.unpack_from("!I", data, offset + 2)[0]
    if pdu_type in (5, 6):
        return length == 4
    if pdu_type in (3, 7):
        return length == 4
    if pdu_type == 4:
        return looks_like_pdata_header(data, offset)
    if pdu_type in (1, 2):
        if not ASSOCIATE_FIXED_FIELDS <= length <= MAX_PLAUSIBLE_PDU_LENGTH:
            return False
        if len(data) >= offset + 8:
            return struct.unpack_from("!H", data, offset + 6)[0] & 1 == 1
    return True


def looks_like_pdata_header(data: bytes, offset: int = 0) -> bool:
    """P-DATA-TF header whose first PDV header agrees with it (odd context id, flags <= 3)."""
    if len(data) < offset + 12 or data[offset] != 0x04 or data[offset + 1] != 0:
        return False
    length = struct.unpack_from("!I", data, offset + 2)[0]
    if not 6 <= length <= MAX_PLAUSIBLE_PDU_LENGTH:
        return False
    pdv_length = struct.unpack_from("!I", data, offset + 6)[0]
    context_id = data[offset + 10]
    flags = data[offset + 11]
    if not 2 <= pdv_length <= length - 4 or context_id % 2 == 0 or flags > 3:
        return False
    # If the next PDU's header is in reach it must be plausible too.
    following = offset + 6 + length
    if len(data) >= following + 6:
        return 1 <= data[following] <= 7 and data[following + 1] == 0
    return True


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
        # A client's first PDU that is not an association request means the capture began late.
        midway = any(first_bytes)
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
