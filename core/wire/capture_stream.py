"""A capture that is still being written: pcap or pcapng bytes in, whole pcapng blocks out.

Sans-IO, like ``h11``'s receive buffer: the caller feeds whatever bytes the pipe
or the followed file gave (``feed``) and pulls complete blocks
(``next_block``), which returns None until a whole block is in.  Buffer: one
``bytearray`` consumed from the front and compacted when more than half of it
is consumed, so the cost is O(n) in bytes fed, whatever the chunking.

Everything comes out as pcapng: pcapng input block for block (verbatim), pcap
input (tcpdump's output) converted to a section header, one interface block
and an enhanced packet block per record with the record's own timestamp units,
so no timestamp is rounded.  Downstream (``BlockFiles``) the blocks are written
to spool segments the engine maps, and to the user's ``-w`` files with ring
buffer rotation; every file starts with the section and interface blocks, so
each is a capture on its own and consecutive files read back as one capture.
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from dicomtui.core.wire.capture import GZIP_MAGIC
from dicomtui.core.wire.capture_format import (
    UntimedTime,
    MAX_RECORD_LENGTH,
    PCAP_MAGICS,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_ISB,
    PCAPNG_MIN_LENGTH,
    PCAPNG_OBSOLETE_PB,
    PCAPNG_SHB,
    PCAPNG_SHB_TYPE,
    PCAPNG_SPB,
    CaptureError,
    Interface,
    enhanced_packet_block,
    interface_block,
    packet_of_block,
    read_interface,
    section_byte_order,
    section_header_block,
)

SECTION, INTERFACE, PACKET, STATISTICS, OTHER = "section", "interface", "packet", "statistics", "other"


class StreamBlock(NamedTuple):
    """One pcapng block; ``packet`` = (timestamp, link type, data offset in ``raw``, caplen, origlen)."""

    kind: str
    raw: bytes
    packet: tuple | None = None


@dataclass
class CaptureStreamParser:
    """pcap/pcapng bytes in, ``StreamBlock``s out (pcap converted to pcapng)."""

    name: str = "<stream>"
    format: str = ""
    dropped: dict[int, int] = field(default_factory=dict)  # interface -> drops from statistics blocks
    _buffer: bytearray = field(default_factory=bytearray)
    _start: int = 0
    _endian: str = "<"
    _interfaces: list[Interface] = field(default_factory=list)
    _pcap: tuple | None = None  # (endian, nanoseconds, link type)
    _pending_header: list[bytes] = field(default_factory=list)
    _last_time: float = 0.0  # of the last timed packet: a simple packet block's borrowed time

    def feed(self, data: bytes) -> None:
        if self._start > len(self._buffer) // 2:
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned as blocks (a partial block at the end of a pipe)."""
        return len(self._buffer) - self._start

    def next_block(self) -> StreamBlock | None:
        """The next whole block, or None until more bytes are fed.  Raises CaptureError for a non-capture."""
        if self._pending_header:
            raw = self._pending_header.pop(0)
            return StreamBlock(SECTION if raw[:4] == PCAPNG_SHB else INTERFACE, raw)
        buffer, start = self._buffer, self._start
        available = len(buffer) - start
        if not self.format:
            if available < 4:
                return None
            head = bytes(buffer[start : start + 4])
            if head in PCAP_MAGICS:
                self.format = "pcap"
            elif head == PCAPNG_SHB:
                self.format = "pcapng"
            elif head[:2] == GZIP_MAGIC:
                raise CaptureError(f"{self.name}: gzip-compressed input cannot be read while it is written; "
                                   "pipe the uncompressed capture (or gunzip it first)")
            else:
                raise CaptureError(f"{self.name}: not a pcap or pcapng capture (starts with {head.hex()})")
        if self.format == "pcap":
            return self._next_pcap(buffer, start, available)
        return self._next_pcapng(buffer, start, available)

    # -- pcap ------------------------------------------------------------------------------

    def _next_pcap(self, buffer: bytearray, start: int, available: int) -> StreamBlock | None:
        if self._pcap is None:
            if available < 24:
                return None
            magic = bytes(buffer[start : start + 4])
            endian, resolution = PCAP_MAGICS[magic]
            snaplen, link_type = struct.unpack_from(endian + "II", buffer, start + 16)
            link_type &= 0x0FFFFFFF
            nanoseconds = resolution < 1e-6
            self._pcap = (endian, nanoseconds, link_type)
            self._start = start + 24
            self._interfaces = [Interface(link_type, resolution, 0)]
            self._pending_header = [interface_block(link_type, snaplen, nanoseconds)]
            return StreamBlock(SECTION, section_header_block())
        if available < 16:
            return None
        endian, nanoseconds, link_type = self._pcap
        seconds, fraction, caplen, origlen = struct.unpack_from(endian + "IIII", buffer, start)
        if caplen > MAX_RECORD_LENGTH:
            raise CaptureError(f"{self.name}: record claims {caplen} bytes; the stream is damaged")
        if available < 16 + caplen:
            return None
        data = bytes(buffer[start + 16 : start + 16 + caplen])
        self._start = start + 16 + caplen
        units = seconds * (1_000_000_000 if nanoseconds else 1_000_000) + fraction
        raw = enhanced_packet_block(0, units, data, origlen)
        # As a pcapng reader computes it from the block written (the -w file reads back the same).
        timestamp = units * (1e-9 if nanoseconds else 1e-6)
        return StreamBlock(PACKET, raw, (timestamp, link_type, 28, caplen, origlen))

    # -- pcapng ----------------------------------------------------------------------------

    def _next_pcapng(self, buffer: bytearray, start: int, available: int) -> StreamBlock | None:
        if available < 12:
            return None
        if bytes(buffer[start : start + 4]) == PCAPNG_SHB:
            endian = section_byte_order(bytes(buffer[start + 8 : start + 12]))
            if endian is None:
                raise CaptureError(f"{self.name}: pcapng section header with bad byte-order magic")
            self._endian = endian
        endian = self._endian
        block_type, length = struct.unpack_from(endian + "II", buffer, start)
        if length < 12 or length % 4 or length > MAX_RECORD_LENGTH:
            raise CaptureError(f"{self.name}: malformed pcapng block (length {length}); the stream is damaged")
        if available < length:
            return None
        raw = bytes(buffer[start : start + length])
        self._start = start + length
        if block_type == PCAPNG_SHB_TYPE:
            self._interfaces = []
            return StreamBlock(SECTION, raw)
        if block_type == PCAPNG_IDB:
            interface, _error = read_interface(raw, endian)
            self._interfaces.append(interface)
            return StreamBlock(INTERFACE, raw)
        if block_type in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_OBSOLETE_PB) and length >= PCAPNG_MIN_LENGTH[block_type]:
            packet = packet_of_block(raw, 0, block_type, length, endian, self._interfaces)
            if packet is None:
                return StreamBlock(OTHER, raw)
            if block_type == PCAPNG_SPB:  # no time of its own: the packet before it's, marked
                packet = (UntimedTime(self._last_time), *packet[1:])
            else:
                self._last_time = packet[0]
            return StreamBlock(PACKET, raw, packet)
        if block_type == PCAPNG_ISB and length >= 24:
            self._statistics(raw, endian)
            return StreamBlock(STATISTICS, raw)
        return StreamBlock(OTHER, raw)

    def _statistics(self, raw: bytes, endian: str) -> None:
        """Drops from an interface statistics block (dumpcap writes one per interface when it stops)."""
        interface_id = struct.unpack_from(endian + "I", raw, 8)[0]
        position, end = 20, len(raw) - 4
        drops = 0
        while position + 4 <= end:
            code, size = struct.unpack_from(endian + "HH", raw, position)
            if code == 0:
                break
            if code in (5, 7) and size == 8 and position + 12 <= end:  # isb_ifdrop, isb_osdrop
                drops += struct.unpack_from(endian + "Q", raw, position + 4)[0]
            position += 4 + size + (-size % 4)
        self.dropped[interface_id] = drops


# -- block files: spool segments and -w files ---------------------------------------------------


class BlockFiles:
    """Writes pcapng blocks to a sequence of files, each starting with the section and interface blocks.

    A new file starts when the current one would pass ``max_bytes`` (and holds at
    least one packet); with ``max_files`` only the newest files are kept (a ring
    buffer).  Subclasses decide where the bytes go.
    """

    def __init__(self, max_bytes: int = 0, max_files: int = 0) -> None:
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.header: list[bytes] = []  # the section header and interface blocks of the current section
        self.file_index = -1
        self.file_bytes = 0
        self.file_packets = 0
        self.packets = 0

    def add(self, block: StreamBlock) -> tuple[int, int]:
        """Write ``block``; returns (file index, offset of the block in that file)."""
        if block.kind == SECTION:
            self.header = [block.raw]
        elif block.kind == INTERFACE:
            self.header.append(block.raw)
        size = len(block.raw)
        if self.file_index < 0 or (self.max_bytes and self.file_packets and
                                   self.file_bytes + size > self.max_bytes and block.kind == PACKET):
            self._rotate(size)
            if block.kind in (SECTION, INTERFACE):
                return self.file_index, self.file_bytes - size  # the header replay wrote it
        offset = self.file_bytes
        self._write(block.raw)
        self.file_bytes += size
        if block.kind == PACKET:
            self.file_packets += 1
            self.packets += 1
        return self.file_index, offset

    def _rotate(self, next_block: int) -> None:
        self.file_index += 1
        header = b"".join(self.header)
        self._open(self.file_index, len(header) + next_block)
        self.file_bytes = 0
        self.file_packets = 0
        if header:
            self._write(header)
            self.file_bytes = len(header)
        if self.max_files and self.file_index >= self.max_files:
            self._remove(self.file_index - self.max_files)

    def _open(self, index: int, minimum: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write(self, raw: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _remove(self, index: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class CaptureFileWriter(BlockFiles):
    """The user's ``-w FILE`` (pcapng), optionally a ring buffer named as dumpcap names it.

    ``-b filesize:KB``: FILE_00001_YYYYMMDDhhmmss.pcapng, FILE_00002_..., ...;
    ``-b files:N``: keep the newest N.  Each file is a complete pcapng capture.
    """

    def __init__(self, path: str, filesize_kb: int = 0, files: int = 0) -> None:
        super().__init__(filesize_kb * 1000, files if filesize_kb else 0)
        self.path = path
        self.ring = bool(filesize_kb)
        self.paths: list[str] = []
        self._stream = None

    def _name(self, index: int) -> str:
        if not self.ring:
            return self.path
        stem, dot, suffix = os.path.basename(self.path).rpartition(".")
        if not dot:
            stem, suffix = suffix, "pcapng"
        stamp = time.strftime("%Y%m%d%H%M%S")
        return os.path.join(os.path.dirname(self.path), f"{stem}_{index + 1:05d}_{stamp}.{suffix}")

    def _open(self, index: int, minimum: int) -> None:
        if self._stream is not None:
            self._stream.close()
        path = self._name(index)
        try:
            self._stream = open(path, "wb")
        except OSError as exc:
            raise CaptureError(f"{path}: cannot write: {exc.strerror or exc}") from None
        self.paths.append(path)

    def _write(self, raw: bytes) -> None:
        self._stream.write(raw)

    def _remove(self, index: int) -> None:
        try:
            os.unlink(self.paths[index])
        except OSError:
            pass

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    @property
    def kept_paths(self) -> list[str]:
        return [path for path in self.paths if os.path.exists(path)]


SPOOL_SEGMENT_BYTES = 64 << 20


class CaptureSpool(BlockFiles):
    """The live capture's bytes on disk, memory-mapped so the engine reads them as it reads files.

    Segments of ``segment_bytes`` (sparse files, mapped whole, written through
    the map).  ``buffers`` and ``views`` are the lists the engine indexes by
    record source, so segment N is source N.  ``drop_before`` deletes old
    segments (the retention limit); their slots hold ``b""`` from then on.
    """

    def __init__(self, segment_bytes: int = SPOOL_SEGMENT_BYTES, directory: str | None = None) -> None:
        super().__init__(segment_bytes)
        self.directory = tempfile.mkdtemp(prefix="dicomtui-live-", dir=directory)
        self.buffers: list = []
        self.views: list = []
        self.lengths: list[int] = []
        self._files: list = []
        self.first_kept = 0
        self.first_frames: list[int] = []  # frame number of each segment's first packet (0: none yet)

    def _open(self, index: int, minimum: int) -> None:
        capacity = max(self.max_bytes, minimum)
        handle = open(os.path.join(self.directory, f"segment-{index:06d}.pcapng"), "w+b")
        handle.truncate(capacity)
        data = mmap.mmap(handle.fileno(), capacity)
        self._files.append(handle)
        self.buffers.append(data)
        self.views.append(memoryview(data))
        self.lengths.append(0)
        self.first_frames.append(0)

    def _write(self, raw: bytes) -> None:
        index = self.file_index
        start = self.lengths[index]
        self.buffers[index][start : start + len(raw)] = raw
        self.lengths[index] = start + len(raw)

    def _remove(self, index: int) -> None:  # ring rotation is not used for the spool
        pass

    @property
    def bytes_kept(self) -> int:
        return sum(self.lengths[self.first_kept :])

    def drop_before(self, index: int) -> None:
        """Delete segments below ``index`` (never the one being written)."""
        index = min(index, self.file_index)
        while self.first_kept < index:
            number = self.first_kept
            view, data = self.views[number], self.buffers[number]
            self.views[number] = memoryview(b"")
            self.buffers[number] = b""
            self.lengths[number] = 0
            try:
                view.release()
                data.close()
            except (BufferError, ValueError):
                pass  # a decoder still holds a slice; the pages go when it does
            handle = self._files[number]
            try:
                os.unlink(handle.name)
            except OSError:
                pass
            handle.close()
            self.first_kept += 1

    def segment_bytes(self, index: int):
        """The written part of one segment (a complete pcapng capture), zero-copy."""
        return self.views[index][: self.lengths[index]]

    def save(self, path: str) -> int:
        """Write every kept segment to ``path`` as one pcapng capture (sections concatenated); returns bytes."""
        total = 0
        with open(path, "wb") as out:
            for index in range(self.first_kept, self.file_index + 1):
                part = self.segment_bytes(index)
                out.write(part)
                total += len(part)
        return total

    def close(self) -> None:
        for index in range(self.first_kept, len(self.buffers)):
            try:
                self.views[index].release()
                self.buffers[index].close()
            except (BufferError, ValueError, AttributeError):
                pass
            self._files[index].close()
        shutil.rmtree(self.directory, ignore_errors=True)
