"""What can still be decoded of a PDU the capture holds only in part (a lost TCP segment, a cut capture).

Kept apart from the normal decoders on purpose: those see whole PDUs only.
Over the bytes ``core.wire.holes.read_with_holes`` returns (holes zero-filled
and listed, PDU-relative ``(start, end)``), two pure steps:

- ``pdata_pdvs``: the PDV headers of a P-DATA-TF body walked up to the first
  header that falls in a hole (each PDV with how much of its data was captured);
- ``complete_elements_prefix``: how many leading bytes of a data set are whole
  elements, so a data set cut by a hole decodes up to the hole.

Cost: linear in the PDU length (one pass over the stream's segments, one over
the PDV headers, one over the top-level element headers).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PDU_HEADER = 6
PDV_HEADER = 6  # 4-byte item length, context ID, message control header
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
UNDEFINED_LENGTH = 0xFFFFFFFF


def captured_until(holes: list[tuple[int, int]], start: int, end: int) -> int:
    """The end of the captured run that begins at ``start`` (at most ``end``)."""
    for hole_start, hole_end in holes:
        if hole_end > start and hole_start < end:
            return max(start, hole_start)
    return end


@dataclass(frozen=True, slots=True)
class PartialPdv:
    offset: int  # of the PDV item (its length field), PDU-relative
    length: int  # the item length field (context ID + header + data)
    context_id: int
    flags: int
    captured: int  # data bytes captured from the start of the data, before the first hole

    @property
    def data_offset(self) -> int:
        return self.offset + PDV_HEADER

    @property
    def data_length(self) -> int:
        return max(0, self.length - 2)


def pdata_pdvs(data: bytes, holes: list[tuple[int, int]]) -> tuple[list[PartialPdv], str]:
    """PDV headers of a P-DATA-TF (``data`` is the whole PDU, header included), up to the first header
    in a hole; returns (pdvs, why the walk stopped or "")."""
    pdvs: list[PartialPdv] = []
    end = PDU_HEADER + struct.unpack_from(">I", data, 2)[0] if len(data) >= PDU_HEADER else 0
    end = min(end, len(data))
    position = PDU_HEADER
    while position < end:
        if captured_until(holes, position, position + PDV_HEADER) < position + PDV_HEADER:
            return pdvs, f"the PDV header at PDU byte {position} was not captured"
        if position + PDV_HEADER > end:
            return pdvs, f"{end - position} bytes after the last PDV are too short for a PDV header"
        length, context_id, flags = struct.unpack_from(">IBB", data, position)
        if length < 2 or position + 4 + length > end:
            return pdvs, f"PDV at PDU byte {position} has an impossible length {length}"
        data_start = position + PDV_HEADER
        data_end = position + 4 + length
        captured = captured_until(holes, data_start, data_end) - data_start
        pdvs.append(PartialPdv(position, length, context_id, flags, captured))
        position = data_end
    return pdvs, ""


def complete_elements_prefix(data: bytes, implicit: bool, little: bool) -> int:
    """Length of the longest prefix of ``data`` made of whole top-level data elements.

    Stops before an element whose value runs past the end, and before an
    undefined-length element (its end is only found by parsing its items).
    """
    order = "<" if little else ">"
    position = 0
    size = len(data)
    while position + 8 <= size:
        if implicit:
            length = struct.unpack_from(order + "I", data, position + 4)[0]
            header = 8
        else:
            vr = bytes(data[position + 4:position + 6])
            if vr in LONG_VRS:
                if position + 12 > size:
                    break
                length = struct.unpack_from(order + "I", data, position + 8)[0]
                header = 12
            else:
                length = struct.unpack_from(order + "H", data, position + 6)[0]
                header = 8
        if length == UNDEFINED_LENGTH or position + header + length > size:
            break
        position += header + length
    return position
