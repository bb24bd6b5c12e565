"""pcap and pcapng, the file formats: one home for reading, walking and writing them.

Where capture bytes come from (a mapped file, a spooled gzip or pipe: ``capture``; a pipe still
being written: ``capture_stream``) is not this module's business; what the bytes mean is:

- pcap: the magic numbers (byte order, micro- or nanoseconds), the file header's link type, the
  record walk (``pcap_records``: the per-frame walk of the engine and of ``iter_record_tuples``;
  ``walk_record_offsets``: the bulk path's, which only needs where each record starts) and the one
  test of a record that cannot be read (``pcap_record_problem``);
- pcapng: the byte order of a section, interface blocks (their time resolution and offset, parsed
  by dpkt) and the three packet blocks (``packet_of_block``), for both the mapped reader and the
  streaming one;
- writing: pcapng blocks (section, interface, enhanced packet) and the record writers the
  exporters, the anonymizer and the live path's ``-w`` files use.

Pure functions and small writers over bytes: no connections, no DICOM, no files opened here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import dpkt

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
PCAPNG_SHB_TYPE = 0x0A0D0D0A
PCAPNG_IDB, PCAPNG_OBSOLETE_PB, PCAPNG_SPB, PCAPNG_ISB, PCAPNG_EPB = 1, 2, 3, 5, 6
# A frame this much older than the newest before it means the capture's clock was set back (an NTP
# step; the engine moves later times on by the step); smaller steps back are frames recorded out of
# order (dumpcap buffers each interface: tens of ms in fixtures/multi_iface.pcapng) and keep their times.
CLOCK_STEP_BACK = 0.5
PCAP_HEADER_LENGTH = 24
PCAP_RECORD_HEADER_LENGTH = 16
MAX_RECORD_LENGTH = 256 * 1024 * 1024  # larger than any link layer's frame; beyond is corruption
SNAPLEN = 262144  # what the writers put in file and interface headers

# The smallest valid length of each pcapng block type we read (PCAPNG spec 4.x):
# 12 bytes of framing plus the block's fixed fields.
PCAPNG_MIN_LENGTH = {PCAPNG_SHB_TYPE: 28, PCAPNG_IDB: 20, PCAPNG_OBSOLETE_PB: 32, PCAPNG_SPB: 16, PCAPNG_EPB: 32}


class CaptureError(Exception):
    """A capture that cannot be read at all.  The message is one line for the user."""


@dataclass(frozen=True, slots=True)
class CaptureNote:
    """Something wrong but survivable in a capture (e.g. a truncated last record)."""

    source: str
    message: str


# -- pcap -----------------------------------------------------------------------------------------


def pcap_file_layout(data) -> tuple[str, float, int] | None:
    """(struct byte order, timestamp resolution, link type) of pcap bytes; None for anything else."""
    magic = bytes(data[:4])
    if magic not in PCAP_MAGICS or len(data) < PCAP_HEADER_LENGTH:
        return None
    endian, resolution = PCAP_MAGICS[magic]
    return endian, resolution, struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF


def pcap_record_problem(source, offset: int, caplen: int | None) -> bool:
    """Whether the record at ``offset`` of ``source`` (``.data``, ``.name``, ``.notes``) cannot be
    read; if so it is noted, and every walk stops there.  ``caplen`` is None when even the
    record header is cut off."""
    end = len(source.data)
    if caplen is None:
        message = f"truncated record header at byte {offset}; stopped there"
    elif caplen > MAX_RECORD_LENGTH:
        message = f"record at byte {offset} claims {caplen} bytes; stopped there"
    elif offset + PCAP_RECORD_HEADER_LENGTH + caplen > end:
        body = offset + PCAP_RECORD_HEADER_LENGTH
        message = f"truncated last record at byte {offset} ({end - body} of {caplen} bytes); stopped there"
    else:
        return False
    source.notes.append(CaptureNote(source.name, message))
    return True


class WalkEnd:
    """Where a ``pcap_records`` walk ended: the offset after its last record, and whether a record
    that cannot be read stopped it (noted in the source)."""

    __slots__ = ("offset", "stopped")

    def __init__(self) -> None:
        self.offset = 0
        self.stopped = False


def pcap_records(source, layout: tuple[str, float, int], offset: int, limit: int,
                 end_state: WalkEnd) -> Iterator[tuple[float, int, int, int]]:
    """(timestamp, body offset, caplen, origlen) of up to ``limit`` records from ``offset``.

    The per-frame walk (the engine's, and ``iter_record_tuples``'s): a generator, so the caller's
    loop keeps the frame work inline.  When it ends, ``end_state`` says where and why.
    """
    endian, resolution, _link_type = layout
    data = source.data
    end = len(data)
    unpack = struct.Struct(endian + "IIII").unpack_from
    count = 0
    while offset < end and count < limit:
        if offset + PCAP_RECORD_HEADER_LENGTH > end:
            pcap_record_problem(source, offset, None)
            end_state.stopped = True
            break
        seconds, fraction, caplen, origlen = unpack(data, offset)
        body = offset + PCAP_RECORD_HEADER_LENGTH
        if (caplen > MAX_RECORD_LENGTH or body + caplen > end) and pcap_record_problem(source, offset, caplen):
            end_state.stopped = True
            break
        offset = body + caplen
        count += 1
        yield seconds + fraction * resolution, body, caplen, origlen
    end_state.offset = offset


def walk_record_offsets(data, offset: int, limit: int,
                        caplen_at=struct.Struct("<I").unpack_from) -> tuple[list[int], int]:
    """The offsets of up to ``limit`` sound records from ``offset``, and the offset after them.

    The bulk path's walk (only where records start; numpy reads the rest column-wise): stops
    before a record that is cut off or claims an absurd length, which the per-frame walk then
    reads and reports.  ``caplen_at`` reads a caplen in the file's byte order.
    """
    end = len(data)
    offsets: list[int] = []
    append = offsets.append
    last = end - PCAP_RECORD_HEADER_LENGTH
    for _count in range(limit):  # a counted loop: cheaper than testing len(offsets) each time
        if offset > last:
            break
        caplen = caplen_at(data, offset + 8)[0]
        following = offset + PCAP_RECORD_HEADER_LENGTH + caplen
        if following > end or caplen > MAX_RECORD_LENGTH:
            break
        append(offset)
        offset = following
    return offsets, offset


# -- pcapng ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Interface:
    """What a pcapng interface description block says about its packets' times and link."""

    link_type: int
    resolution: float
    offset_seconds: int


def section_byte_order(bom: bytes) -> str | None:
    """The struct byte order a section header's byte-order magic gives; None when it is neither."""
    if bom == b"\x4d\x3c\x2b\x1a":
        return "<"
    if bom == b"\x1a\x2b\x3c\x4d":
        return ">"
    return None


def _idb_resolution(idb: "dpkt.pcapng.InterfaceDescriptionBlock", endian: str) -> tuple[float, int]:
    import dpkt

    resolution, offset_seconds = 1e-6, 0
    for option in getattr(idb, "opts", []):
        if option.code == dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL and option.data:
            value = option.data[0]
            resolution = 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0 ** -value
        elif option.code == 14 and len(option.data) >= 8:  # if_tsoffset
            offset_seconds = struct.unpack(endian + "q", option.data[:8])[0]
    return resolution, offset_seconds


def read_interface(block: bytes, endian: str) -> tuple[Interface, Exception | None]:
    """An interface description block (whole, framing included), parsed by dpkt; on hostile option
    bytes, its link type with microsecond times, and the error that made it unreadable."""
    import dpkt  # only pcapng interface blocks need it: not paid by pcap files

    try:
        idb_class = dpkt.pcapng.InterfaceDescriptionBlockLE if endian == "<" else dpkt.pcapng.InterfaceDescriptionBlock
        idb = idb_class(block)
        resolution, offset_seconds = _idb_resolution(idb, endian)
        return Interface(idb.linktype, resolution, offset_seconds), None
    except Exception as exc:  # dpkt on hostile option bytes: any error means unreadable
        return Interface(struct.unpack_from(endian + "H", block, 8)[0], 1e-6, 0), exc


class UntimedTime(float):
    """The time of a packet whose block carried none (a pcapng simple packet block): the packet
    before it's, so the frame keeps its place; the engine marks the frame "time unknown"
    (``Analysis.untimed_frames``) and timing leaves it out.  Arithmetic gives plain floats."""

    __slots__ = ()


def packet_of_block(data, offset: int, block_type: int, length: int, endian: str,
                    interfaces: list[Interface]) -> tuple[float, int, int, int, int] | None:
    """(timestamp, link type, packet data offset from the block's start, caplen, origlen) of a
    packet block at ``offset`` (enhanced, simple or the obsolete one); None for a packet block
    that cannot be read (an unknown interface, a caplen past the block) or another block type.
    A simple packet block has no time: 0.0 (a reader gives it the time before it, ``UntimedTime``).
    """
    if block_type == PCAPNG_EPB:
        interface_id, high, low, caplen, origlen = struct.unpack_from(endian + "IIIII", data, offset + 8)
        if interface_id < len(interfaces) and 28 + caplen <= length - 4:
            interface = interfaces[interface_id]
            timestamp = ((high << 32) | low) * interface.resolution + interface.offset_seconds
            return timestamp, interface.link_type, 28, caplen, origlen
        return None
    if block_type == PCAPNG_SPB:
        if not interfaces:
            return None
        origlen = struct.unpack_from(endian + "I", data, offset + 8)[0]
        return 0.0, interfaces[0].link_type, 12, min(origlen, length - 16), origlen
    if block_type == PCAPNG_OBSOLETE_PB:
        interface_id, _drops, high, low, caplen, origlen = struct.unpack_from(endian + "HHIIII", data, offset + 8)
        if interface_id < len(interfaces) and 28 + caplen <= length - 4:
            interface = interfaces[interface_id]
            timestamp = ((high << 32) | low) * interface.resolution + interface.offset_seconds
            return timestamp, interface.link_type, 28, caplen, origlen
    return None


# -- writing --------------------------------------------------------------------------------------


def pcapng_block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def section_header_block() -> bytes:
    return pcapng_block(PCAPNG_SHB_TYPE, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def interface_block(link_type: int, snaplen: int = SNAPLEN, nanoseconds: bool = True) -> bytes:
    options = struct.pack("<HHB3x", 9, 1, 9 if nanoseconds else 6) + struct.pack("<HH", 0, 0)
    return pcapng_block(PCAPNG_IDB, struct.pack("<HHI", link_type, 0, snaplen) + options)


def enhanced_packet_parts(interface: int, units: int, caplen: int, origlen: int) -> tuple[bytes, bytes]:
    """An enhanced packet block but for its packet bytes: (what goes before them, what after).
    ``units``: the time in its interface's resolution.  Writers put the frame between the two
    without copying it."""
    padding = b"\x00" * (-caplen % 4)
    total = 32 + caplen + len(padding)
    head = struct.pack("<IIIIIII", PCAPNG_EPB, total, interface, units >> 32, units & 0xFFFFFFFF, caplen, origlen)
    return head, padding + struct.pack("<I", total)


def enhanced_packet_block(interface: int, units: int, frame, origlen: int) -> bytes:
    head, tail = enhanced_packet_parts(interface, units, len(frame), origlen)
    return head + bytes(frame) + tail


PCAP_MAX_SECONDS = 1 << 32  # pcap's seconds field is unsigned 32-bit


class PcapRecordWriter:
    """A pcap file of one link type: header, then a record per frame with its original length.

    A few lines of ``struct`` rather than dpkt's writer, which sets the original length to the
    captured length and would misreport frames cut by a snapshot length.
    """

    def __init__(self, stream, link_type: int, nanoseconds: bool) -> None:
        self.stream = stream
        self.scale = 1_000_000_000 if nanoseconds else 1_000_000
        magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
        stream.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, SNAPLEN, link_type))
        self.bytes = PCAP_HEADER_LENGTH
        self.clamped = 0  # frames whose time pcap cannot hold (before 1970, after 2106)

    def write(self, frame, timestamp: float, origlen: int, link_type: int) -> None:
        if not 0 <= timestamp < PCAP_MAX_SECONDS:  # NaN too
            self.clamped += 1
            timestamp = min(max(timestamp, 0.0), PCAP_MAX_SECONDS - 1) if timestamp == timestamp else 0.0
        seconds = int(timestamp)
        fraction = min(round((timestamp - seconds) * self.scale), self.scale - 1)
        self.stream.write(struct.pack("<IIII", seconds, fraction, len(frame), min(origlen, 0xFFFFFFFF)))
        self.stream.write(frame)
        self.bytes += PCAP_RECORD_HEADER_LENGTH + len(frame)


class PcapngRecordWriter:
    """A pcapng file: section header, one interface per link type, enhanced packet blocks (ns times)."""

    def __init__(self, stream, link_types: list[int]) -> None:
        self.stream = stream
        self.clamped = 0  # frames whose time an unsigned 64-bit nanosecond count cannot hold
        self.interfaces = {link_type: number for number, link_type in enumerate(link_types)}
        self.bytes = 0
        self._write(section_header_block())
        for link_type in link_types:
            self._write(interface_block(link_type, SNAPLEN, nanoseconds=True))

    def _write(self, block: bytes) -> None:
        self.stream.write(block)
        self.bytes += len(block)

    def write(self, frame, timestamp: float, origlen: int, link_type: int) -> None:
        nanoseconds = round(timestamp * 1_000_000_000) if timestamp == timestamp else -1
        if not 0 <= nanoseconds < 1 << 64:
            self.clamped += 1
            nanoseconds = min(max(nanoseconds, 0), (1 << 64) - 1)
        head, tail = enhanced_packet_parts(self.interfaces[link_type], nanoseconds, len(frame), origlen)
        self.stream.write(head)
        self.stream.write(frame)
        self.stream.write(tail)
        self.bytes += len(head) + len(frame) + len(tail)


# -- decryption secrets ----------------------------------------------------------------------

PCAPNG_DSB = 0x0000000A  # Decryption Secrets Block (editcap --inject-secrets writes them)
MAX_LEADING_BLOCKS = 64


def leading_decryption_secrets(data) -> list[tuple[int, bytes]]:
    """(secrets type, secrets data) of the Decryption Secrets Blocks of a pcapng file that come
    before its first packet, where ``editcap --inject-secrets`` puts them (the type says what the
    data is: 0x544c534b "TLSK", an NSS key log).  Stops at the first packet block, a malformed
    block, or after ``MAX_LEADING_BLOCKS``: a cost independent of the capture's size.  Not
    pcapng: [].  Never raises on bad input (the reader reports what is wrong with the file)."""
    found: list[tuple[int, bytes]] = []
    end = len(data)
    if end < 12 or bytes(data[:4]) != PCAPNG_SHB:
        return found
    offset, endian = 0, "<"
    for _ in range(MAX_LEADING_BLOCKS):
        if offset + 12 > end:
            break
        if bytes(data[offset : offset + 4]) == PCAPNG_SHB:
            endian = section_byte_order(bytes(data[offset + 8 : offset + 12]))
            if endian is None:
                break
        block_type, length = struct.unpack_from(endian + "II", data, offset)
        if length < 12 or length % 4 or offset + length > end:
            break
        if block_type in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_OBSOLETE_PB):
            break
        if block_type == PCAPNG_DSB and length >= 20:
            secrets_type, secrets_length = struct.unpack_from(endian + "II", data, offset + 8)
            if 16 + secrets_length <= length - 4:
                found.append((secrets_type, bytes(data[offset + 16 : offset + 16 + secrets_length])))
        offset += length
    return found
