"""Capture files in, frames out.

Reads pcap (micro- and nanosecond, either byte order) and pcapng (any number of
interfaces and sections), plain or gzip-compressed (recognised by magic bytes),
from a path or from standard input (``-``).

Every source ends up as a seekable file that is memory-mapped, so a frame is
described by an offset into the file rather than a copy of its bytes: the rest
of the engine keeps offsets in its index and reads bytes back only when a
decoder or a view needs them.  Compressed input and standard input are spooled
to an anonymous temporary file first (one sequential pass, no payload kept in
Python objects), in the system's temporary folder (``TMPDIR``, else ``/tmp``).
At most ``max_spool_bytes`` are spooled (a gzip bomb must not fill the disk),
spooling also stops while less than ``SPOOL_DISK_RESERVE`` would be left free
there, and gzip input stops expanding past ``max_gzip_ratio`` (500:1) once
64 MB came out; each time the capture is analysed up to that point, with a note.
A damaged or truncated gzip stream likewise keeps everything inflated before
the damage, as a truncated plain capture keeps its records before the cut.

The per-record loop is the hot path of the whole program, so record headers are
read with ``struct`` directly from the map.  Section and interface headers of
pcapng (rare, and full of options) are parsed by dpkt; tests cross-check the
frames produced here against ``dpkt.pcap.Reader`` and ``dpkt.pcapng.Reader``.
"""

from __future__ import annotations

import gzip
import heapq
import mmap
import os
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, NamedTuple

from dicomtui.core.wire.capture_format import (  # noqa: F401  (names importers use from here)
    UntimedTime,
    MAX_RECORD_LENGTH,
    PCAP_HEADER_LENGTH,
    PCAP_MAGICS,
    PCAP_RECORD_HEADER_LENGTH,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_MIN_LENGTH,
    PCAPNG_OBSOLETE_PB,
    PCAPNG_SHB,
    PCAPNG_SHB_TYPE,
    PCAPNG_SPB,
    CaptureError,
    CaptureNote,
    Interface,
    WalkEnd,
    packet_of_block,
    pcap_file_layout,
    pcap_record_problem,
    pcap_records,
    read_interface,
    section_byte_order,
)

GZIP_MAGIC = b"\x1f\x8b"

DEFAULT_SPOOL_LIMIT = 4 << 30  # the default of Limits.max_spool_bytes
SPOOL_DISK_RESERVE = 1 << 30  # spooling stops rather than leave less free in the temporary folder
SPOOL_CHUNK = 1 << 20
DEFAULT_GZIP_RATIO = 500  # the default of Limits.max_gzip_ratio
RATIO_CHECK_AFTER = 64 << 20  # small files may expand as they like


@dataclass(slots=True)
class CaptureSource:
    """One capture file, memory-mapped.  ``data`` supports slicing and ``memoryview``."""

    name: str
    data: mmap.mmap | bytes
    format: str = ""
    notes: list[CaptureNote] = field(default_factory=list)
    _file: BinaryIO | None = None

    def close(self) -> None:
        if isinstance(self.data, mmap.mmap):
            try:
                self.data.close()
            except BufferError:
                # A memoryview into the map is still alive somewhere (a view
                # holding a PDU); the OS reclaims the map with the process.
                pass
        if self._file is not None:
            self._file.close()


class Record(NamedTuple):
    """One captured frame: where its bytes are, not the bytes themselves."""

    source_index: int
    timestamp: float
    link_type: int
    offset: int
    caplen: int
    origlen: int


def _spool(stream: BinaryIO, name: str, what: str, limit: int, notes: list[CaptureNote],
           compressed: BinaryIO | None = None, max_ratio: int = 0) -> BinaryIO:
    """Copy ``stream`` into an anonymous temporary file, at most ``limit`` bytes.

    With ``compressed`` (the file under a gzip stream) copying also stops once more than
    ``RATIO_CHECK_AFTER`` bytes came out at over ``max_ratio`` times the compressed bytes
    read: no capture compresses like that (deflate's ceiling is about 1030:1, reached only
    by long runs of one byte value), a gzip bomb does.

    Damage in the stream (a truncated or corrupt gzip member) ends the copy: what
    came before is kept and the damage becomes a note; only a stream that yields
    nothing at all is an error.
    """
    spooled = tempfile.TemporaryFile(prefix="dicomtui-")
    # read1: what one step of inflation gives, so bytes before a damaged spot are not lost
    # with the read that meets it (read() would raise having discarded a whole chunk).
    read = getattr(stream, "read1", stream.read)
    written = 0
    next_disk_check = 0
    try:
        while True:
            if written >= limit:
                if stream.read(1):
                    notes.append(CaptureNote(name, f"{what} stopped after {written} bytes, the max_spool_bytes "
                                                   "limit (-o max_spool_bytes:BYTES to raise it); the rest of "
                                                   "the capture was not analysed"))
                break
            if written >= next_disk_check:
                next_disk_check = written + 256 * SPOOL_CHUNK
                if _free_space(spooled) < SPOOL_DISK_RESERVE:
                    notes.append(CaptureNote(name, f"{what} stopped after {written} bytes: less than "
                                                   f"{SPOOL_DISK_RESERVE >> 20} MB left free in "
                                                   f"{tempfile.gettempdir()} (set TMPDIR to a larger folder); "
                                                   "the rest of the capture was not analysed"))
                    break
            if compressed is not None and max_ratio and written > RATIO_CHECK_AFTER and \
                    written > max_ratio * max(1, compressed.tell()):
                notes.append(CaptureNote(name, f"{what} stopped after {written} bytes: they came from only "
                                               f"{compressed.tell()} compressed bytes, more than "
                                               f"{max_ratio}:1 (a gzip bomb?); -o max_gzip_ratio:N allows more; "
                                               "the rest of the capture was not analysed"))
                break
            chunk = read(min(SPOOL_CHUNK, limit - written))
            if not chunk:
                break
            spooled.write(chunk)
            written += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        if not written:
            spooled.close()
            raise CaptureError(f"{name}: damaged gzip data: {exc}") from None
        notes.append(CaptureNote(name, f"damaged gzip data after {written} bytes ({exc}); "
                                       "analysed what came before"))
    spooled.flush()
    spooled.seek(0)
    return spooled


def _free_space(handle: BinaryIO) -> int:
    try:
        stat = os.fstatvfs(handle.fileno())
    except OSError:
        return SPOOL_DISK_RESERVE
    return stat.f_bavail * stat.f_frsize


def open_source(path: str, spool_limit: int = DEFAULT_SPOOL_LIMIT, max_ratio: int = DEFAULT_GZIP_RATIO
                ) -> CaptureSource:
    """Open a capture (``-`` for stdin), undoing gzip, and map it into memory."""
    name = "<stdin>" if path == "-" else path
    notes: list[CaptureNote] = []
    try:
        if path == "-":
            raw: BinaryIO = _spool(sys.stdin.buffer, name, "reading standard input", spool_limit, notes)
        else:
            raw = open(path, "rb")
    except OSError as exc:
        raise CaptureError(f"{name}: cannot open: {exc.strerror or exc}") from None
    try:
        magic = raw.read(4)
        raw.seek(0)
        if magic[:2] == GZIP_MAGIC:
            try:
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    inflated = _spool(unzipped, name, "inflating gzip", spool_limit, notes, raw, max_ratio)
            finally:
                raw.close()
            raw = inflated
        size = os.fstat(raw.fileno()).st_size
        if size == 0:
            raw.close()
            raise CaptureError(f"{name}: empty file, not a pcap or pcapng capture")
        data = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raw.close()
        raise CaptureError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return CaptureSource(name=name, data=data, notes=notes, _file=raw)


def iter_records(source: CaptureSource, source_index: int = 0) -> Iterator[Record]:
    """Yield the frames of one capture in file order.

    Raises CaptureError for a file that is not a capture at all; damage after the
    first good record ends the iteration with a note in ``source.notes``.
    """
    return map(Record._make, iter_record_tuples(source, source_index))


def iter_record_tuples(source: CaptureSource, source_index: int = 0) -> Iterator[tuple]:
    """``iter_records`` as plain tuples in Record's field order (the engine's hot loop)."""
    head = bytes(source.data[:4])
    if head in PCAP_MAGICS:
        source.format = "pcap"
        return _iter_pcap(source, source_index)
    if head == PCAPNG_SHB:
        source.format = "pcapng"
        return _iter_pcapng(source, source_index)
    raise CaptureError(
        f"{source.name}: not a pcap or pcapng capture (starts with {head.hex() or 'nothing'})"
    )


def pcap_layout(source: CaptureSource) -> tuple[str, float, int] | None:
    """(struct byte order, timestamp resolution, link type) of a pcap file; None for anything else.

    For a caller that walks the records itself (the engine): with ``pcap_records`` or, for the
    bulk path, ``walk_record_offsets`` (core/wire/capture_format.py).
    """
    layout = pcap_file_layout(source.data)
    if layout is not None:
        source.format = "pcap"
    return layout


def _iter_pcap(source: CaptureSource, source_index: int) -> Iterator[Record]:
    if len(source.data) < PCAP_HEADER_LENGTH:
        raise CaptureError(f"{source.name}: truncated pcap file header")
    layout = pcap_layout(source)
    link_type = layout[2]
    for ts, body, caplen, origlen in pcap_records(source, layout, PCAP_HEADER_LENGTH, len(source.data), WalkEnd()):
        yield (source_index, ts, link_type, body, caplen, origlen)


UNTIMED_LOOKAHEAD = 10_000  # blocks searched for the first time of a file that starts with simple packet blocks


def _iter_pcapng(source: CaptureSource, source_index: int) -> Iterator[Record]:
    """The packet records of a pcapng file.  A simple packet block carries no time: it is given the
    time of the packet before it (those before the first timed packet, that packet's), so no time
    passes at it and no duration is made of a missing timestamp; a note counts them."""
    untimed = [0]
    try:
        yield from _iter_pcapng_blocks(source, source_index, untimed)
    finally:
        if untimed[0]:  # once per file, however often it is walked
            note = CaptureNote(source.name, (
                f"{untimed[0]} packet(s) in simple packet blocks carry no time: each keeps its place at the time "
                "of the packet before it and is shown with its time unknown; response times, RTT samples and "
                "waits that start or end in one, and the associations it carries PDUs of, are left out of the "
                "timing figures"))
            if note not in source.notes:
                source.notes.append(note)


def _first_time_after(data, offset: int, end: int, endian: str, interfaces: list[Interface]) -> float:
    """The time of the first timed packet block from ``offset`` on (0.0 when none is near)."""
    interfaces = list(interfaces)
    for _block in range(UNTIMED_LOOKAHEAD):
        if offset + 12 > end:
            break
        block_type, block_length = struct.unpack_from(endian + "II", data, offset)
        if block_length < 12 or offset + block_length > end or block_type == PCAPNG_SHB_TYPE:
            break
        if block_type == PCAPNG_IDB and block_length >= PCAPNG_MIN_LENGTH[PCAPNG_IDB]:
            interfaces.append(read_interface(bytes(data[offset : offset + block_length]), endian)[0])
        elif block_type in (PCAPNG_EPB, PCAPNG_OBSOLETE_PB) and block_length >= PCAPNG_MIN_LENGTH[block_type]:
            packet = packet_of_block(data, offset, block_type, block_length, endian, interfaces)
            if packet is not None:
                return packet[0]
        offset += block_length
    return 0.0


def _iter_pcapng_blocks(source: CaptureSource, source_index: int, untimed: list[int]) -> Iterator[Record]:
    data = source.data
    end = len(data)
    offset = 0
    endian = "<"
    interfaces: list[Interface] = []
    last_ts = None
    while offset < end:
        if offset + 12 > end:
            source.notes.append(CaptureNote(source.name, f"truncated block at byte {offset}; stopped there"))
            return
        if bytes(data[offset : offset + 4]) == PCAPNG_SHB:
            endian = section_byte_order(bytes(data[offset + 8 : offset + 12]))
            if endian is None:
                message = f"pcapng section header at byte {offset} has a bad byte-order magic"
                if offset == 0:
                    raise CaptureError(f"{source.name}: {message}")
                source.notes.append(CaptureNote(source.name, f"{message}; stopped there"))
                return
            interfaces = []  # interface ids are per section
        block_type, block_length = struct.unpack_from(endian + "II", data, offset)
        if block_length < 12 or block_length % 4 or offset + block_length > end:
            what = "truncated" if offset + block_length > end else "malformed"
            message = f"{what} pcapng block at byte {offset} (length {block_length}); stopped there"
            if offset == 0:
                raise CaptureError(f"{source.name}: {message}")
            source.notes.append(CaptureNote(source.name, message))
            return
        if block_length < PCAPNG_MIN_LENGTH.get(block_type, 12):
            # Framed correctly but shorter than its own fixed fields: nothing in it can be read.
            message = (f"pcapng block of type {block_type} at byte {offset} is {block_length} bytes, shorter "
                       f"than its fixed part ({PCAPNG_MIN_LENGTH[block_type]})")
            if offset == 0:
                raise CaptureError(f"{source.name}: {message}")
            if block_type == PCAPNG_SHB_TYPE:  # a new section we cannot read: its blocks would be misread
                source.notes.append(CaptureNote(source.name, f"{message}; stopped there"))
                return
            source.notes.append(CaptureNote(source.name, f"{message}; skipped"))
            offset += block_length
            continue
        if block_type in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_OBSOLETE_PB):
            packet = packet_of_block(data, offset, block_type, block_length, endian, interfaces)
            if packet is not None:
                ts, link_type, data_offset, caplen, origlen = packet
                if block_type == PCAPNG_SPB:  # no time of its own
                    untimed[0] += 1
                    if last_ts is None:
                        last_ts = _first_time_after(data, offset, end, endian, interfaces)
                    ts = UntimedTime(last_ts)
                else:
                    last_ts = ts
                yield (source_index, ts, link_type, offset + data_offset, caplen, origlen)
            elif block_type == PCAPNG_EPB:
                source.notes.append(CaptureNote(source.name, f"bad packet block at byte {offset}; skipped"))
        elif block_type == PCAPNG_IDB:
            interface, error = read_interface(bytes(data[offset : offset + block_length]), endian)
            if error is not None:
                source.notes.append(CaptureNote(source.name, f"interface block at byte {offset} unreadable "
                                                             f"({error}); assuming microsecond timestamps"))
            interfaces.append(interface)
        offset += block_length


def merge_records(sources: list[CaptureSource]) -> Iterator[tuple]:
    """All frames (Record-ordered tuples) of several captures in timestamp order (rotated files).

    A single capture keeps its file order, as Wireshark numbers frames in file order.
    """
    if len(sources) == 1:
        return iter_record_tuples(sources[0], 0)
    iterators = [iter_record_tuples(source, index) for index, source in enumerate(sources)]
    return heapq.merge(*iterators, key=lambda record: record[1])
