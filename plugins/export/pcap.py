"""The filtered capture exporter (``pcap``): only the frames of DICOM connections.

A second pass over the capture keeps every frame (handshake, data, ACKs, FIN
and RST) of the TCP connections the analysis recognised as DICOM, between
each connection's first and last frame (so a port pair reused later by
something else is not kept).  Frames are copied byte-exact from the capture
map with their captured and original lengths and their link type.

One link type: ``dicom.pcap`` (microsecond timestamps, nanosecond when a
source pcap was nanosecond).  Several link types (a pcapng recorded on
several interfaces): ``dicom.pcapng`` with one interface per link type and
nanosecond timestamps.  User identity secrets are overwritten with ``*`` in
every frame that carries them (``SecretMasker``; docs/secrets.md).  The record writers are the
wire layer's (core/wire/capture_format.py), shared with the anonymizer and the live path.
"""

from __future__ import annotations

from bisect import bisect_right

from dicomtui import hookimpl
from dicomtui.core.api.export import SKIP_NOTHING, ExportOptions, ExportResult, OutputFolder, Progress, error_text
from dicomtui.core.protocol.secrets import ASSOCIATE_TYPES, FIXED, MASK_BYTE, associate_secret_ranges
from dicomtui.core.wire.capture import PCAP_MAGICS, Record, merge_records
from dicomtui.core.wire.capture_format import PcapngRecordWriter, PcapRecordWriter
from dicomtui.core.wire.packet import format_address, parse_tcp
from dicomtui.core.wire.tcp import SEQ_MODULO, seq_delta

def dicom_frames(analysis, only: frozenset[int] | None = None):
    """(frame number, record, frame bytes, TCP segment, connection index, direction) of every
    frame of a DICOM connection, in capture order.  Direction 0 is the client's, as in ``Connection.streams``.
    ``only``: just these frame numbers (the frames of the displayed or marked PDUs)."""
    ranges: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    ports: set[int] = set()
    for index, connection in enumerate(analysis.connections):
        last = connection.last_frame or analysis.frame_count
        ranges.setdefault((connection.client, connection.server), []).append((connection.first_frame, last, index))
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
        spans, direction = ranges.get((source, target)), 0
        if spans is None:
            spans, direction = ranges.get((target, source)), 1
        for first, last, index in spans or ():
            if first <= number <= last:
                yield number, record, frame, segment, index, direction
                break


class SecretMasker:
    """Masks user identity secrets in every frame that carries them.

    The secrets are located in the reassembled stream (``associate_secret_ranges``
    over each A-ASSOCIATE PDU, from the bytes the capture holds), so they are known
    by stream offset.  Every frame of that direction is then placed on the stream by
    its own sequence number, not by the reassembly's chunk map: a retransmitted
    copy or an overlapping resend, which reassembly drops or trims, carries the
    same stream offsets and is masked the same way.  A frame whose bytes inside
    an A-ASSOCIATE PDU differ from the reassembled ones (or fall in a hole of the
    stream) is masked over the whole variable part of that PDU.
    The TCP checksum of a masked frame is then wrong.
    """

    def __init__(self, analysis) -> None:
        self.analysis = analysis
        # (connection, direction) -> sorted [(pdu start, pdu end, secret ranges in stream offsets)]
        self.regions: dict[tuple[int, int], list[tuple[int, int, list[tuple[int, int]]]]] = {}
        pdus = analysis.pdus
        types = pdus.column("pdu_type")
        for index in (index for index, pdu_type in enumerate(types, pdus.base) if pdu_type in ASSOCIATE_TYPES):
            pdu = pdus[index]
            start, end = pdu.stream_offset, pdu.stream_offset + pdu.total_length
            stream = analysis.connections[pdu.connection].streams[pdu.direction]
            pieces = stream.pieces(start, end, analysis.views)
            if pieces and pieces[-1] is None:
                pieces.pop()
            prefix = b"".join(pieces)
            secrets = [(start + low, start + high) for low, high in associate_secret_ranges(prefix)]
            self.regions.setdefault((pdu.connection, pdu.direction), []).append((start, end, secrets))
        for regions in self.regions.values():
            regions.sort()
        self.base: dict[tuple[int, int], tuple[int, int]] = {}  # (seq, stream offset) last seen
        self._first_chunk = {}
        for key in self.regions:
            chunks = analysis.connections[key[0]].streams[key[1]]
            if len(chunks.frames):
                self._first_chunk[chunks.frames[0]] = key

    def learn(self, number: int, record, segment, key) -> None:
        """First pass: where the direction's stream starts in sequence space (from its first chunk)."""
        if self._first_chunk.get(number) != key or key in self.base:
            return
        chunks = self.analysis.connections[key[0]].streams[key[1]]
        skipped = chunks.file_offsets[0] - (record.offset + segment.payload_offset)  # trimmed by reassembly
        self.base[key] = ((segment.seq + skipped) % SEQ_MODULO, chunks.stream_offsets[0])

    def mask(self, frame, segment, key):
        regions = self.regions.get(key)
        if not regions or not segment.payload_length or key not in self.base:
            return frame
        last_seq, last_offset = self.base[key]
        offset = last_offset + seq_delta(segment.seq, last_seq)
        self.base[key] = (segment.seq, offset)  # unwrapped from frame to frame: streams past 4 GB
        length = segment.payload_length
        index = bisect_right(regions, (offset + length,)) - 1
        copy = None
        while index >= 0 and regions[index][1] > offset:
            start, end, secrets = regions[index]
            spans = list(secrets)
            if self._diverges(key, offset, segment, frame, start, end):
                spans.append((start + FIXED, end))
            payload_start = segment.payload_offset
            for low, high in spans:
                low, high = max(low, offset), min(high, offset + length)
                if low < high:
                    copy = copy if copy is not None else bytearray(frame)
                    copy[payload_start + low - offset : payload_start + high - offset] = MASK_BYTE * (high - low)
            index -= 1
        return frame if copy is None else copy

    def _diverges(self, key, offset: int, segment, frame, start: int, end: int) -> bool:
        """Do the frame's bytes inside [start, end) differ from the reassembled stream's?"""
        low, high = max(start, offset), min(end, offset + segment.payload_length)
        if low >= high:
            return False
        stream = self.analysis.connections[key[0]].streams[key[1]]
        reassembled = stream.read(low, high, self.analysis.buffers)
        carried = frame[segment.payload_offset + low - offset : segment.payload_offset + high - offset]
        return reassembled is None or reassembled != bytes(carried)


class PcapExporter:
    name = "pcap"
    capabilities = frozenset({"capture"})  # dicomtui.core.api.export.WRITES_CAPTURE
    description = "a capture with only the frames of DICOM connections (pcap, or pcapng for mixed link types)"

    def export(self, analysis, outdir: str, options: ExportOptions, progress: Progress | None = None
               ) -> ExportResult:
        folder = OutputFolder(outdir, options.overwrite)
        result = ExportResult()
        link_types: list[int] = []
        count = 0
        masker = SecretMasker(analysis)
        for number, record, _frame, segment, connection, direction in dicom_frames(analysis, options.frames):
            count += 1
            masker.learn(number, record, segment, (connection, direction))
            if record.link_type not in link_types:
                link_types.append(record.link_type)
        if not count:
            result.skipped.append((-1, SKIP_NOTHING))
            return result
        nanoseconds = any(bytes(buffer[:4]) in PCAP_MAGICS and PCAP_MAGICS[bytes(buffer[:4])][1] < 1e-6
                          for buffer in analysis.buffers)
        name = "dicom.pcap" if len(link_types) == 1 else "dicom.pcapng"
        try:
            path, stream = folder.open_new(name)
            with stream:
                writer = PcapRecordWriter(stream, link_types[0], nanoseconds) if len(link_types) == 1 \
                    else PcapngRecordWriter(stream, link_types)
                done = 0
                frames = dicom_frames(analysis, options.frames)
                for _number, record, frame, segment, connection, direction in frames:
                    frame = masker.mask(frame, segment, (connection, direction))
                    writer.write(frame, record.timestamp, record.origlen, record.link_type)
                    done += 1
                    if progress is not None and (done & 0x3FF == 0 or done == count):
                        progress(done, count)
        except OSError as exc:
            result.errors.append(error_text(exc))
            return result
        if writer.clamped:
            result.inexact.append(f"{writer.clamped} frame(s) have timestamps {name} cannot hold (before 1970 or "
                                  "too far in the future); written with the nearest time it can hold")
        result.written.append((str(path), -1))
        result.bytes_written = writer.bytes
        result.replaced = list(folder.replaced)
        return result


@hookimpl
def dicomtui_register_exporters(register) -> None:
    register(PcapExporter())
