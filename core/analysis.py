"""The pipeline: capture files -> frames -> TCP streams -> DICOM connections -> model.

One sequential pass over the capture.  Per frame it parses headers, places the
segment in its connection's reassembler and, for DICOM connections, hands the
in-order bytes (memoryviews into the capture map) to the connection decoder
supplied by a plugin.  The pass keeps an index (chunk maps, PDUs, messages),
never the payload; views read bytes back on demand through ``Analysis``.
Expert rules run once at the end, through the plugin hooks.
"""

from __future__ import annotations

import mmap
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .capture import CaptureError, CaptureNote, CaptureSource, merge_records, open_source
from .detect import DEFAULT_PORTS, classify_connection, parse_port_list
from .limits import Limits
from .model import Association, Connection, ExpertItem, Group, Message, Pdu, Severity
from .packet import SUPPORTED_LINK_TYPES, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, format_address, parse_tcp_at
from .pdu_table import PduTable
from .plugins import PluginHost
from .tcp import ChunkMap, DirectionReassembler, Gap

DETECTION_BYTES = 4096
RELEASE_INTERVAL = 64 << 20  # drop mapped capture pages from memory every 64 MB read


@dataclass(slots=True)
class AnalysisConfig:
    ports: frozenset[int] = field(default_factory=lambda: parse_port_list(DEFAULT_PORTS))
    heuristic: bool = True
    limits: Limits = field(default_factory=Limits)
    options: dict[str, str] = field(default_factory=dict)  # -o name:value, read by rules and exporters

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        if value is None:
            return default
        if isinstance(default, bool):
            return value.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return value


class Analysis:
    """Everything decoded from one capture, plus on-demand access to its bytes."""

    def __init__(self, sources: list[CaptureSource], config: AnalysisConfig, plugins: PluginHost) -> None:
        self.sources = sources
        self.buffers = [source.data for source in sources]
        self.views = [memoryview(buffer) for buffer in self.buffers]
        self.config = config
        self.plugins = plugins
        self.connections: list[Connection] = []
        self.associations: list[Association] = []
        self.pdus = PduTable()
        self.messages: list[Message] = []
        self.expert: list[ExpertItem] = []
        self.frame_count = 0
        self.tcp_frame_count = 0
        self.bytes_total = sum(len(buffer) for buffer in self.buffers)
        self.bytes_done = 0
        self.finished = False
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.pdu_decoders: dict[int, Callable[[bytes], Any]] = {}
        for _plugin, (pdu_type, decoder) in plugins.collect_registrations("dicomtui_register_pdu_decoders"):
            self.pdu_decoders[pdu_type] = decoder

    def release_pages(self) -> None:
        """Drop the capture's mapped pages from this process's resident memory.

        They stay in the OS page cache and fault back in when read, so a pass over a
        multi-GB capture holds its index, not the capture, in memory.
        """
        for source in self.sources:
            if isinstance(source.data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
                try:
                    source.data.madvise(mmap.MADV_DONTNEED)
                except (OSError, ValueError):
                    pass

    @property
    def notes(self) -> list[CaptureNote]:
        return [note for source in self.sources for note in source.notes]

    # -- bytes on demand -------------------------------------------------------------------

    def read_stream(self, connection: int, direction: int, start: int, end: int) -> bytes | None:
        return self.connections[connection].streams[direction].read(start, end, self.buffers)

    def pdu_bytes(self, pdu: Pdu) -> bytes | None:
        """The whole PDU (header included) or None if the capture lacks some of it."""
        return self.read_stream(pdu.connection, pdu.direction, pdu.stream_offset,
                                pdu.stream_offset + pdu.total_length)

    def dataset_bytes(self, message: Message, limit: int | None = None) -> bytes | None:
        """A message's data set, joined from its PDV fragments; None if incomplete or over ``limit``."""
        if not message.complete or not message.has_dataset:
            return None
        if limit is not None and message.dataset_length > limit:
            return None
        parts = []
        for fragment in message.dataset_fragments:
            data = self.read_stream(message.connection, message.direction, fragment.stream_offset,
                                    fragment.stream_offset + fragment.length)
            if data is None:
                return None
            parts.append(data)
        return b"".join(parts)

    def iter_dataset_chunks(self, message: Message):
        """The data set as zero-copy memoryviews of the capture, segment by segment; None at a hole.

        Exporters stream these to disk, so memory does not grow with object size.
        """
        stream = self.connections[message.connection].streams[message.direction]
        for fragment in message.dataset_fragments:
            for piece in stream.pieces(fragment.stream_offset, fragment.stream_offset + fragment.length,
                                       self.views):
                yield piece
                if piece is None:
                    return

    def decode_pdu(self, pdu: Pdu):
        """The PDU body decoded by the registered plugin; raises DecodeError when malformed."""
        from .errors import DecodeError

        data = self.pdu_bytes(pdu)
        if data is None:
            raise DecodeError("the capture does not hold all of this PDU")
        decoder = self.pdu_decoders.get(pdu.pdu_type)
        if decoder is None:
            raise DecodeError(f"no decoder registered for PDU type 0x{pdu.pdu_type:02x}")
        return decoder(bytes(data[6:]))

    def status_meaning(self, command_field: int, status: int, sop_class: str = "") -> tuple[str, str]:
        result = self.plugins.call_first("dicomtui_status_meaning", command_field=command_field,
                                         status=status, sop_class=sop_class)
        return result or ("failure" if status else "success", f"0x{status:04X}")

    def decode_dataset(self, message: Message):
        """Decode a message's data set with the dataset plugin; None when there is none to decode."""
        data = self.dataset_bytes(message, self.config.limits.max_dataset_bytes)
        if data is None:
            return None
        # A syntax the capture did not negotiate is passed as unknown, so the decoder guesses
        # (and says so) from the bytes itself.
        syntax = "" if message.syntax_guessed else message.transfer_syntax
        return self.plugins.call_first("dicomtui_decode_dataset", data=data, transfer_syntax=syntax,
                                       limits=self.config.limits)

    def frame_time(self, timestamp: float) -> float:
        return timestamp - (self.first_time or 0.0)


class DecoderHost:
    """What a connection decoder may do: add model objects and ask where bytes came from."""

    def __init__(self, analysis: Analysis, connection: Connection) -> None:
        self.analysis = analysis
        self.connection = connection

    def next_pdu_index(self) -> int:
        """The index the next ``add_pdu`` will give."""
        return len(self.analysis.pdus)

    def add_pdu(self, pdu: Pdu) -> int:
        """Store a finished PDU (the table keeps a compact copy: later changes to ``pdu`` are lost)."""
        return self.analysis.pdus.append(pdu)

    def add_association(self, association: Association) -> int:
        association.index = len(self.analysis.associations)
        self.analysis.associations.append(association)
        return association.index

    def add_message(self, message: Message) -> int:
        message.index = len(self.analysis.messages)
        self.analysis.messages.append(message)
        return message.index

    def expert(self, severity: Severity, group: Group, message: str, frame: int = 0,
               association: int | None = None, pdu: int | None = None, message_index: int | None = None,
               rule: str = "decoder") -> None:
        self.analysis.expert.append(ExpertItem(severity, group, message, frame, association, pdu,
                                               message_index, rule))

    def frames(self, direction: int, start: int, end: int) -> tuple[int, int, float, float]:
        """(first frame, last frame, first frame's time, last frame's time) of a stream range."""
        return self.connection.streams[direction].frames_for(start, end)

    def status_meaning(self, command_field: int, status: int, sop_class: str) -> tuple[str, str]:
        return self.analysis.status_meaning(command_field, status, sop_class)


class _DirectionSink:
    """Receives one TCP direction's in-order bytes and routes them."""

    __slots__ = ("tracked", "tcp_direction", "chunks")

    def __init__(self, tracked: "_TrackedConnection", tcp_direction: int) -> None:
        self.tracked = tracked
        self.tcp_direction = tcp_direction
        self.chunks = ChunkMap()

    def on_data(self, stream_offset: int, source: int, file_offset: int, length: int, frame: int, ts: float) -> None:
        tracked = self.tracked
        if tracked.ignored:
            return
        self.chunks.append(stream_offset, source, file_offset, length, frame, ts)
        if tracked.decoder is not None:
            data = tracked.engine.views[source][file_offset : file_offset + length]
            tracked.decoder.receive_data(self.tcp_direction ^ tracked.swap, stream_offset, data)
        else:
            tracked.pending.append((self.tcp_direction, stream_offset, source, file_offset, length))
            tracked.engine.try_classify(tracked)

    def on_gap(self, gap: Gap) -> None:
        tracked = self.tracked
        if tracked.ignored:
            return
        self.chunks.add_gap(gap)
        if tracked.decoder is not None:
            tracked.decoder.receive_gap(self.tcp_direction ^ tracked.swap, gap)
        else:
            tracked.pending.append((self.tcp_direction, gap))


class _TrackedConnection:
    """TCP-level state of one connection (DICOM or not yet known)."""

    __slots__ = ("engine", "key", "family", "reassemblers", "sinks", "ignored", "decoder", "swap", "pending",
                 "model", "syn_seen", "client_tcp_direction", "fin", "rst", "first_frame", "first_time",
                 "last_frame", "last_time", "has_data")

    def __init__(self, engine: "_Engine", key: tuple, family: int, frame: int, ts: float) -> None:
        self.engine = engine
        self.key = key  # (src, sport, dst, dport) of TCP direction 0
        self.family = family
        self.sinks = (_DirectionSink(self, 0), _DirectionSink(self, 1))
        limit = engine.analysis.config.limits.max_pending_segments
        self.reassemblers = (DirectionReassembler(self.sinks[0], limit), DirectionReassembler(self.sinks[1], limit))
        self.ignored = False
        self.decoder = None
        self.swap = 0  # 1 when TCP direction 0 is the server's
        self.pending: list[tuple] = []
        self.model: Connection | None = None
        self.syn_seen = False
        self.client_tcp_direction: int | None = None
        self.fin = [False, False]
        self.rst = False
        self.first_frame = frame
        self.first_time = ts
        self.last_frame = frame
        self.last_time = ts
        self.has_data = False


class _Engine:
    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.buffers = analysis.buffers
        self.views = analysis.views
        self.table: dict[tuple, tuple[_TrackedConnection, int]] = {}
        self.unsupported_link_types: set[int] = set()
        self.config = analysis.config
        self.tcp_frames = 0
        self.evicted = 0

    # -- per frame -------------------------------------------------------------------------

    def frame(self, frame_number: int, source: int, offset: int, caplen: int, link_type: int, ts: float) -> None:
        segment = parse_tcp_at(self.buffers[source], offset, caplen, link_type)
        if segment is None:
            if link_type not in SUPPORTED_LINK_TYPES and link_type not in self.unsupported_link_types:
                self.unsupported_link_types.add(link_type)
                self.analysis.expert.append(ExpertItem(
                    Severity.WARNING, Group.CAPTURE,
                    f"link type {link_type} is not supported; its frames were skipped", frame_number,
                    rule="capture"))
            return
        self.tcp_frames += 1
        family, src, dst, sport, dport, seq, ack, flags, payload_offset, payload_length, missing = segment
        entry = self.table.get((src, sport, dst, dport))
        if entry is not None:
            tracked, direction = entry
            if flags & TCP_SYN and not flags & TCP_ACK and self._is_new_connection(tracked, direction, seq):
                # The port pair is reused by a new connection.
                self._close(tracked, frame_number)
                entry = None
        if entry is None:
            if len(self.table) >= 2 * self.config.limits.max_connections:
                self._evict_idle(frame_number)
            key = (src, sport, dst, dport)
            tracked = _TrackedConnection(self, key, family, frame_number, ts)
            self.table[key] = (tracked, 0)
            self.table[(dst, dport, src, sport)] = (tracked, 1)
            direction = 0
        tracked.last_frame = frame_number
        tracked.last_time = ts
        if tracked.ignored:
            if flags & (TCP_FIN | TCP_RST):
                self._note_close(tracked, direction, flags)
            return
        reassembler = tracked.reassemblers[direction]
        if flags & TCP_SYN:
            tracked.syn_seen = True
            if not flags & TCP_ACK:
                tracked.client_tcp_direction = direction
            elif tracked.client_tcp_direction is None:
                tracked.client_tcp_direction = 1 - direction
            reassembler.syn(seq)
        if payload_length:
            tracked.has_data = True
            reassembler.segment(seq, source, offset + payload_offset, payload_length, frame_number, ts)
            if missing:
                reassembler.missing(missing, frame_number, "frame cut by the capture's snapshot length")
        if flags & TCP_ACK:
            other = tracked.reassemblers[1 - direction]
            # Most ACKs acknowledge exactly what was delivered: nothing to learn from them.
            if other.started and ack != other.next_seq:
                other.acknowledged(ack, frame_number)
        if flags & (TCP_FIN | TCP_RST):
            if flags & TCP_FIN:
                reassembler.fin(seq + payload_length + missing)
            self._note_close(tracked, direction, flags)

    @staticmethod
    def _is_new_connection(tracked: _TrackedConnection, direction: int, seq: int) -> bool:
        """A SYN on a known port pair: a new connection, or the old SYN again (a retransmission,
        or the same packet recorded on a second interface)?"""
        isn = tracked.reassemblers[direction].isn
        if isn is not None:
            return seq != isn
        # The first connection was picked up mid-way: only a closed one can be followed by a new one.
        return tracked.rst or all(tracked.fin)

    def _note_close(self, tracked: _TrackedConnection, direction: int, flags: int) -> None:
        if flags & TCP_RST:
            tracked.rst = True
        if flags & TCP_FIN:
            tracked.fin[direction] = True
        if tracked.model is not None:
            tracked.model.closed_by = "RST" if tracked.rst else "FIN"

    # -- DICOM or not ----------------------------------------------------------------------

    def try_classify(self, tracked: _TrackedConnection) -> None:
        first: list[bytes] = [b"", b""]
        for item in tracked.pending:
            if len(item) == 5:
                tcp_direction, _offset, source, file_offset, length = item
                if len(first[tcp_direction]) < DETECTION_BYTES:
                    first[tcp_direction] += bytes(self.views[source][file_offset : file_offset + min(length, DETECTION_BYTES)])
        ports = (tracked.key[3], tracked.key[1])  # destination port of each TCP direction
        detection = classify_connection((first[0], first[1]), ports, self.config.ports, self.config.heuristic)
        if detection is None:
            return
        if not detection.is_dicom:
            tracked.ignored = True
            tracked.pending = []
            for sink in tracked.sinks:
                sink.chunks = ChunkMap()
            return
        client = tracked.client_tcp_direction
        if client is None or detection.reason == "A-ASSOCIATE-RQ":
            client = detection.client_direction if detection.client_direction is not None else 0
        tracked.swap = client  # model direction = tcp direction ^ swap; client becomes 0
        self._start_decoder(tracked, detection)

    def _start_decoder(self, tracked: _TrackedConnection, detection) -> None:
        analysis = self.analysis
        src, sport, dst, dport = tracked.key
        endpoints = [(src, sport), (dst, dport)]
        client_address, client_port = endpoints[tracked.swap]
        server_address, server_port = endpoints[1 - tracked.swap]
        streams = (tracked.sinks[tracked.swap].chunks, tracked.sinks[1 - tracked.swap].chunks)
        model = Connection(
            index=len(analysis.connections),
            client=format_address(tracked.family, client_address, client_port),
            server=format_address(tracked.family, server_address, server_port),
            client_port=client_port,
            server_port=server_port,
            streams=streams,
            first_frame=tracked.first_frame,
            first_time=tracked.first_time,
            syn_seen=tracked.syn_seen,
            detection=detection.reason,
            picked_up_midway=detection.picked_up_midway or not tracked.syn_seen,
        )
        analysis.connections.append(model)
        tracked.model = model
        host = DecoderHost(analysis, model)
        decoder = analysis.plugins.call_first(
            "dicomtui_make_connection_decoder", connection=model, config=analysis.config,
            pdu_decoders=analysis.pdu_decoders, host=host)
        if decoder is None:
            host.expert(Severity.ERROR, Group.PLUGIN, "no plugin supplied a DICOM connection decoder; "
                        "connection not decoded", tracked.first_frame)
            tracked.ignored = True
            return
        tracked.decoder = decoder
        for item in tracked.pending:
            if len(item) == 5:
                tcp_direction, stream_offset, source, file_offset, length = item
                decoder.receive_data(tcp_direction ^ tracked.swap, stream_offset,
                                     self.views[source][file_offset : file_offset + length])
            else:
                tcp_direction, gap = item
                decoder.receive_gap(tcp_direction ^ tracked.swap, gap)
        tracked.pending = []

    # -- the end ---------------------------------------------------------------------------

    def _evict_idle(self, frame: int) -> None:
        """Close the least recently active tenth of the tracked connections.

        A port scan or SYN flood would otherwise keep state (~2 KB) for every port
        pair it touched; sorting a tenth away at a time costs O(log n) per new
        connection, amortised.  An evicted connection that speaks again is picked
        up as a new one.
        """
        tracked_connections = list({id(tracked): tracked for tracked, _direction in self.table.values()}.values())
        tracked_connections.sort(key=lambda tracked: tracked.last_frame)
        oldest = tracked_connections[: max(1, len(tracked_connections) // 10)]
        if not self.evicted:
            self.analysis.expert.append(ExpertItem(
                Severity.WARNING, Group.CAPTURE,
                f"more than {self.config.limits.max_connections} TCP connections open at once (a port scan?); "
                "the least recently active are closed early, so a DICOM connection idle that long and then "
                "resumed shows as two", frame, rule="capture"))
        for tracked in oldest:
            self._close(tracked, frame)
        self.evicted += len(oldest)

    def _close(self, tracked: _TrackedConnection, frame: int) -> None:
        reason = "connection closed before missing segment arrived" if (tracked.rst or any(tracked.fin)) \
            else "capture ended before missing segment arrived"
        for reassembler in tracked.reassemblers:
            reassembler.finish(frame, reason)
        if tracked.decoder is None and not tracked.ignored and tracked.pending:
            # Too little data to decide (e.g. a tiny capture on a DICOM port): decide with what there is.
            self.try_classify_final(tracked)
        if tracked.decoder is not None:
            model = tracked.model
            model.last_frame = tracked.last_frame
            model.last_time = tracked.last_time
            model.closed_by = "RST" if tracked.rst else ("FIN" if any(tracked.fin) else "")
            tracked.decoder.finish()
            tracked.decoder = None
        tracked.ignored = True
        for key in (tracked.key, (tracked.key[2], tracked.key[3], tracked.key[0], tracked.key[1])):
            if self.table.get(key, (None,))[0] is tracked:
                del self.table[key]

    def try_classify_final(self, tracked: _TrackedConnection) -> None:
        ports = (tracked.key[3], tracked.key[1])
        first = [b"", b""]
        for item in tracked.pending:
            if len(item) == 5:
                tcp_direction, _offset, source, file_offset, length = item
                first[tcp_direction] += bytes(self.views[source][file_offset : file_offset + length])[:DETECTION_BYTES]
        detection = classify_connection((first[0] + b"\0" * 12, first[1] + b"\0" * 12) if any(
            p in self.config.ports for p in ports) else (first[0], first[1]), ports, self.config.ports,
            self.config.heuristic)
        if detection is not None and detection.is_dicom:
            client = tracked.client_tcp_direction
            if client is None:
                client = detection.client_direction or 0
            tracked.swap = client
            self._start_decoder(tracked, detection)

    def finish(self) -> None:
        seen = set()
        for tracked, _direction in list(self.table.values()):
            if id(tracked) in seen:
                continue
            seen.add(id(tracked))
            self._close(tracked, self.analysis.frame_count)
        self.analysis.connections.sort(key=lambda connection: connection.first_frame)


ProgressCallback = Callable[[Analysis], None]


def _sort_pdus(analysis: Analysis) -> None:
    pdus = analysis.pdus
    last_frames = pdus.last_frames()
    if all(last_frames[i] <= last_frames[i + 1] for i in range(len(last_frames) - 1)):
        return
    order = sorted(range(len(last_frames)), key=lambda index: (last_frames[index], index))
    new_index = {old: new for new, old in enumerate(order)}
    pdus.reorder(order)
    for message in analysis.messages:
        message.first_pdu = new_index.get(message.first_pdu, message.first_pdu)
        message.last_pdu = new_index.get(message.last_pdu, message.last_pdu)
    for association in analysis.associations:
        if association.request_pdu is not None:
            association.request_pdu = new_index.get(association.request_pdu, association.request_pdu)
        if association.response_pdu is not None:
            association.response_pdu = new_index.get(association.response_pdu, association.response_pdu)
    analysis.expert = [replace(item, pdu=new_index[item.pdu]) if item.pdu in new_index else item
                       for item in analysis.expert]


def open_capture(paths: list[str]) -> list[CaptureSource]:
    sources: list[CaptureSource] = []
    try:
        for path in paths:
            sources.append(open_source(path))
    except CaptureError:
        for source in sources:
            source.close()
        raise
    return sources


def analyze(
    paths: list[str],
    config: AnalysisConfig | None = None,
    plugins: PluginHost | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 0.1,
    run_rules: bool = True,
) -> Analysis:
    """Decode a capture (one or several files read as one) into an Analysis.

    Raises CaptureError when a file cannot be read at all.
    """
    config = config or AnalysisConfig()
    plugins = plugins or PluginHost()
    sources = open_capture(paths)
    analysis = Analysis(sources, config, plugins)
    for failure in plugins.failures:
        analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN,
                                          f"plugin {failure.plugin} failed in {failure.where}: {failure.error}",
                                          rule="plugins"))
    reported_failures = len(plugins.failures)
    engine = _Engine(analysis)
    next_report = time.monotonic() + progress_interval
    frame_number = 0
    released_at = 0
    handle_frame = engine.frame
    timestamp = None
    for source_index, timestamp, link_type, offset, caplen, _origlen in merge_records(sources):
        frame_number += 1
        if frame_number == 1:
            analysis.first_time = timestamp
        handle_frame(frame_number, source_index, offset, caplen, link_type, timestamp)
        if frame_number & 0xFF == 0:
            analysis.frame_count = frame_number
            analysis.tcp_frame_count = engine.tcp_frames
            if offset - released_at > RELEASE_INTERVAL or offset < released_at:
                analysis.release_pages()
                released_at = offset
            analysis.last_time = timestamp
            if progress is not None:
                now = time.monotonic()
                if now >= next_report:
                    analysis.bytes_done = offset
                    progress(analysis)
                    next_report = now + progress_interval
    analysis.frame_count = frame_number
    if timestamp is not None:
        analysis.last_time = timestamp
    engine.finish()
    analysis.tcp_frame_count = engine.tcp_frames
    analysis.bytes_done = analysis.bytes_total
    _renumber(analysis)
    for failure in plugins.failures[reported_failures:]:
        analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN,
                                          f"plugin {failure.plugin} failed in {failure.where}: {failure.error}",
                                          rule="plugins"))
    if run_rules:
        from .rules import run_rules as run_expert_rules

        run_expert_rules(analysis)
    for note in analysis.notes:
        analysis.expert.append(ExpertItem(Severity.WARNING, Group.CAPTURE, f"{note.source}: {note.message}",
                                          analysis.frame_count, rule="capture"))
    analysis.expert.sort(key=lambda item: (item.frame, -item.severity))
    analysis.finished = True
    if progress is not None:
        progress(analysis)
    return analysis


def _renumber(analysis: Analysis) -> None:
    """Number PDUs in frame order and connections by first frame, as a packet list shows them.

    PDUs are found in the order their bytes become contiguous; a lost segment can
    hold one direction back until the gap is declared, so a few may come out of
    frame order.  Connections are numbered when recognised.
    """
    _sort_pdus(analysis)
    mapping = {connection.index: position for position, connection in enumerate(analysis.connections)}
    if all(old == new for old, new in mapping.items()):
        return
    for position, connection in enumerate(analysis.connections):
        connection.index = position
    analysis.pdus.remap_connections(mapping)
    for association in analysis.associations:
        association.connection = mapping[association.connection]
    for message in analysis.messages:
        message.connection = mapping[message.connection]
