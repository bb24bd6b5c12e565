"""The pipeline: capture files -> frames -> TCP streams -> DICOM connections -> model.

``analyze`` opens the captures, runs ``engine.CaptureEngine`` over every frame
(one sequential pass), numbers the results for display and runs the expert
rules through the plugin hooks.  The pass keeps an index (chunk maps, PDUs,
messages), never the payload; ``Analysis`` reads bytes back on demand.
"""

from __future__ import annotations

import itertools
import mmap
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .capture import CaptureError, CaptureNote, CaptureSource, merge_records, open_source
from .detect import DEFAULT_PORTS, parse_port_list
from .limits import Limits
from .engine import CaptureEngine, DecoderHost  # noqa: F401  (DecoderHost: part of the plugin contract)
from .model import Association, Connection, ExpertItem, Group, Message, Pdu, Severity
from .pdu_table import PduTable
from .plugins import PluginHost

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

    def pdu_bytes_with_holes(self, pdu: Pdu) -> tuple[bytes, list[tuple[int, int]]]:
        """The PDU as far as the capture holds it: missing ranges zero-filled and listed (PDU-relative)."""
        from .partial_pdu import read_with_holes

        chunks = self.connections[pdu.connection].streams[pdu.direction]
        return read_with_holes(chunks, pdu.stream_offset, pdu.stream_offset + pdu.total_length, self.buffers)

    def decode_dataset_bytes(self, data: bytes, transfer_syntax: str):
        """Decode data-set bytes that are not a whole message's (e.g. the part before a capture hole)."""
        return self.plugins.call_first("dicomtui_decode_dataset", data=data, transfer_syntax=transfer_syntax,
                                       limits=self.config.limits)

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

    def dataset_pieces(self, message: Message):
        """The data set as lists of zero-copy memoryviews of the capture, one list per PDV fragment.

        A list ending in None means the capture lacks what follows.  Exporters hand
        these lists to ``os.writev``, so memory does not grow with object size.
        """
        stream = self.connections[message.connection].streams[message.direction]
        for fragment in message.dataset_fragments:
            pieces = stream.pieces(fragment.stream_offset, fragment.stream_offset + fragment.length, self.views)
            yield pieces
            if pieces and pieces[-1] is None:
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
    engine = CaptureEngine(analysis)
    next_report = time.monotonic() + progress_interval
    released_at = 0

    def tick(frame_number: int, offset: int, timestamp: float) -> None:
        nonlocal next_report, released_at
        analysis.frame_count = frame_number
        analysis.tcp_frame_count = engine.tcp_frames
        analysis.last_time = timestamp
        if offset - released_at > RELEASE_INTERVAL or offset < released_at:
            analysis.release_pages()
            released_at = offset
        if progress is not None:
            now = time.monotonic()
            if now >= next_report:
                analysis.bytes_done = offset
                progress(analysis)
                next_report = now + progress_interval

    records = merge_records(sources)
    first = next(records, None)
    if first is not None:
        analysis.first_time = first[1]
        records = itertools.chain((first,), records)
    analysis.frame_count, analysis.last_time = engine.run(records, tick)
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
    analysis.release_pages()  # the rules read data sets all over the capture
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
