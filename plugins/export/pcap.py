"""The filtered capture exporter (``pcap``): only the frames of DICOM connections.

A second pass over the capture keeps every frame (handshake, data, ACKs, FIN
and RST) of the TCP connections the analysis recognised as DICOM, between
each connection's first and last frame (so a port pair reused later by
something else is not kept).  Frames are copied byte-exact from the capture
map with their captured and original lengths and their link type.

One link type: ``dicom.pcap`` (microsecond timestamps, nanosecond when a
source pcap was nanosecond).  Several link types (a pcapng recorded on
several interfaces): ``dicom.pcapng`` with one interface per link type and
nanosecond timestamps.  The record writers are a few lines of ``struct``
rather than dpkt's, because dpkt's pcap writer sets the original length to the
captured length, which would misreport frames cut by a snapshot length.
"""

from __future__ import annotations

import struct
from bisect import bisect_right

from dicomtui import hookimpl
from dicomtui.core.capture import PCAP_MAGICS, Record, merge_records
from dicomtui.core.export import ExportOptions, ExportResult, OutputFolder, Progress
from dicomtui.core.packet import format_address, parse_tcp

SNAPLEN = 262144


class PcapRecordWriter:
    def __init__(self, stream, link_type: int, nanoseconds: bool) -> None:
        self.stream = stream
        self.scale = 1_000_000_000 if nanoseconds else 1_000_000
        magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
        stream.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, SNAPLEN, link_type))
        self.bytes = 24

    def write(self, frame, timestamp: float, origlen: int, link_type: int) -> None:
        seconds = int(timestamp)
        fraction = min(round((timestamp - seconds) * self.scale), self.scale - 1)
        self.stream.write(struct.pack("<IIII", seconds, fraction, len(frame), origlen))
        self.stream.write(frame)
        self.bytes += 16 + len(frame)


class PcapngRecordWriter:
    """Section header, one interface per link type, enhanced packet blocks (ns timestamps)."""

    def __init__(self, stream, link_types: list[int]) -> None:
        self.stream = stream
        self.interfaces = {link_type: number for number, link_type in enumerate(link_types)}
        shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        self.bytes = 0
        self._block(0x0A0D0D0A, shb_body)
        for link_type in link_types:
            tsresol = struct.pack("<HHB3x", 9, 1, 9)  # if_tsresol = 10^-9
            options = tsresol + struct.pack("<HH", 0, 0)
            self._block(1, struct.pack("<HHI", link_type, 0, SNAPLEN) + options)

    def _block(self, block_type: int, body: bytes) -> None:
        total = 12 + len(body)
        self.stream.write(struct.pack("<II", block_type, total) + body + struct.pack("<I", total))
        self.bytes += total

    def write(self, frame, timestamp: float, origlen: int, link_type: int) -> None:
        nanoseconds = round(timestamp * 1_000_000_000)
        padding = b"\x00" * (-len(frame) % 4)
        total = 32 + len(frame) + len(padding)
        self.stream.write(struct.pack("<IIIIIII", 6, total, self.interfaces[link_type], nanoseconds >> 32,
                                      nanoseconds & 0xFFFFFFFF, len(frame), origlen))
        self.stream.write(frame)
        self.stream.write(padding + struct.pack("<I", total))
        self.bytes += total


def dicom_frames(analysis, only: frozenset[int] | None = None):
    """(record, frame bytes) of every frame that belongs to a DICOM connection, in capture order
    (``only``: just these frame numbers, e.g. the frames of the displayed or marked PDUs)."""
    ranges: dict[tuple[str, str], list[tuple[int, int]]] = {}
    ports: set[int] = set()
    for connection in analysis.connections:
        last = connection.last_frame or analysis.frame_count
        ranges.setdefault((connection.client, connection.server), []).append((connection.first_frame, last))
        ports.update((connection.client_port, connection.server_port))
    views = [memoryview(buffer) for buffer in analysis.buffers]
    for number, record in enumerate(map(Record._make, merge_records(analysis.sources)), 1):
        if only is not None and number not in only:
            continue
        frame = views[record.source_index][record.offset:record.offset + record.caplen]
        segment = parse_tcp(frame, record.link_type)
        if segment is None or (segment.sport not in ports and segment.dport not in ports):
            continue
        source = format_address(segment.family, segment.src, segment.sport)
        target = format_address(segment.family, segment.dst, segment.dport)
        spans = ranges.get((source, target)) or ranges.get((target, source))
        if spans and any(first <= number <= last for first, last in spans):
            yield record, frame


def secret_ranges(analysis) -> dict[int, list[tuple[int, int]]]:
    """Capture byte ranges (by source) holding user identity passcodes or tokens.

    The exported frames carry ``*`` there instead: a passcode is masked in every
    view and export, this one included (the TCP checksum of those frames is then wrong).
    """
    ranges: dict[int, list[tuple[int, int]]] = {}
    for pdu in analysis.pdus:
        if pdu.pdu_type != 1:
            continue
        try:
            decoded = analysis.decode_pdu(pdu)
        except Exception:  # malformed: nothing located to mask
            continue
        identity = getattr(getattr(decoded, "user", None), "user_identity", None)
        if identity is None or not identity.secret[1]:
            continue
        start = pdu.stream_offset + identity.secret[0]
        end = start + identity.secret[1]
        chunks = analysis.connections[pdu.connection].streams[pdu.direction]
        index = max(bisect_right(chunks.stream_offsets, start) - 1, 0)
        while index < len(chunks.stream_offsets) and chunks.stream_offsets[index] < end:
            chunk_start = chunks.stream_offsets[index]
            low, high = max(start, chunk_start), min(end, chunk_start + chunks.lengths[index])
            if low < high:
                file_offset = chunks.file_offsets[index] - chunk_start
                ranges.setdefault(chunks.sources[index], []).append((file_offset + low, file_offset + high))
            index += 1
    return ranges


def _masked(frame, frame_offset: int, spans: list[tuple[int, int]]):
    copy = None
    for start, end in spans:
        low, high = max(start, frame_offset), min(end, frame_offset + len(frame))
        if low < high:
            copy = copy if copy is not None else bytearray(frame)
            copy[low - frame_offset : high - frame_offset] = b"*" * (high - low)
    return frame if copy is None else copy


class PcapExporter:
    name = "pcap"
    description = "a capture with only the frames of DICOM connections (pcap, or pcapng for mixed link types)"

    def export(self, analysis, outdir: str, options: ExportOptions, progress: Progress | None = None
               ) -> ExportResult:
        folder = OutputFolder(outdir, options.overwrite)
        result = ExportResult()
        link_types: list[int] = []
        count = 0
        for record, _frame in dicom_frames(analysis, options.frames):
            count += 1
            if record.link_type not in link_types:
                link_types.append(record.link_type)
        if not count:
            result.skipped.append((-1, "no DICOM connection in the capture"))
            return result
        nanoseconds = any(bytes(buffer[:4]) in PCAP_MAGICS and PCAP_MAGICS[bytes(buffer[:4])][1] < 1e-6
                          for buffer in analysis.buffers)
        name = "dicom.pcap" if len(link_types) == 1 else "dicom.pcapng"
        path, stream = folder.open_new(name)
        with stream:
            writer = PcapRecordWriter(stream, link_types[0], nanoseconds) if len(link_types) == 1 \
                else PcapngRecordWriter(stream, link_types)
            done = 0
            secrets = secret_ranges(analysis)
            for record, frame in dicom_frames(analysis, options.frames):
                spans = secrets.get(record.source_index)
                if spans:
                    frame = _masked(frame, record.offset, spans)
                writer.write(frame, record.timestamp, record.origlen, record.link_type)
                done += 1
                if progress is not None and (done & 0x3FF == 0 or done == count):
                    progress(done, count)
        result.written.append((str(path), -1))
        result.bytes_written = writer.bytes
        result.replaced = list(folder.replaced)
        return result


@hookimpl
def dicomtui_register_exporters(register) -> None:
    register(PcapExporter())
