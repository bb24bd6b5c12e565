"""The capture engine: frames in, TCP connections reassembled, DICOM connections decoded.

``CaptureEngine.frame`` runs once per frame of the capture (the hot path): it
parses headers, keeps a table of TCP connections, places each segment in its
direction's reassembler, decides which connections are DICOM, and feeds their
in-order bytes (memoryviews into the capture map) to the connection decoder a
plugin supplied.  The decoder returns typed events (``protocol.events``), which
``apply.ModelWriter`` stores in the model as soon as each call returns;
``DecoderContext`` is what a decoder may ask (read-only).
"""

from __future__ import annotations

import struct
from collections import deque


from dicomtui.core.model import Connection, ConnectionAttempt, ExpertItem, Group, Severity, TransformedConnection
from dicomtui.core.model.analysis import Analysis
from dicomtui.core.pipeline.apply import ModelWriter, Outbox
from dicomtui.core.protocol.events import Numbering
from dicomtui.core.protocol.detect import Detection, breaks_pdu_grammar_at_start, classify_connection
from dicomtui.core.wire.capture import PCAP_HEADER_LENGTH, CaptureSource, UntimedTime, merge_records, pcap_layout
from dicomtui.core.wire.capture_format import CLOCK_STEP_BACK, WalkEnd, pcap_records
from dicomtui.core.wire.duplicates import DuplicateFilter
from dicomtui.core.wire.fragments import FragmentReassembler
from dicomtui.core.wire.packet import (
    ETHERNET_IPV4_TCP,
    LINKTYPE_ETHERNET,
    SUPPORTED_LINK_TYPES,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    IpFragment,
    format_address,
    locate_fragment_at,
    parse_tcp_at,
    tcp_options_at,
)
from dicomtui.core.wire.tcp import LATE_SEGMENT_WAIT, ChunkMap, DirectionReassembler, Gap
from dicomtui.core.wire.tcp_record import ROW_SIZE, SegmentRecord, pack_row
from dicomtui.core.wire.undecoded import UndecodedFrames, link_type_name, undecoded_warning

DETECTION_BYTES = 4096
# Connections on a DICOM port that are not DICOM: the first this many are listed, the last of them saying
# so (batch mode's merge lists the first of every group's, in the capture's order, and says it alike).
NOT_DICOM_LISTED = 20
NOT_DICOM_MORE = " (more such connections are not listed)"
MAX_CONNECTION_ATTEMPTS = 65536  # connections without a byte kept (a port scan makes millions)
_ethernet_ipv4_tcp = ETHERNET_IPV4_TCP.unpack_from


def clock_step_findings(steps: list[tuple[int, float]]) -> list[ExpertItem]:
    """The findings for the clock's steps back, (frame, seconds) each: one a step, the first ten
    (batch mode's merge reports the steps it found over the whole capture with the same words)."""
    items = []
    for number, (frame, step) in enumerate(steps):
        if number == 10:
            text = f"{len(steps) - 10} more clock steps back after frame {frame}, handled the same way"
        else:
            text = (f"the capture's clock stepped back {step:.3f} s at frame {frame} (set back while capturing, "
                    f"e.g. an NTP step): times from there on are shown {step:.3f} s later than recorded"
                    + (" (with the earlier steps)" if number else "")
                    + ", so no duration or response time spans the step")
        items.append(ExpertItem(Severity.WARNING, Group.CAPTURE, text, frame, rule="capture",
                                code="capture.clock_step_back"))
        if number == 10:
            break
    return items


def direction_skew_finding(held_frames: int, lateness: float, connections: int, first_frame: int) -> ExpertItem:
    """The note on acknowledgements recorded before the peer bytes they acknowledge (``_learn_lateness``):
    how late those bytes came at most, on how many connections, how many data segments waited for
    them, the first frame it was seen at (batch mode's merge words every group's counts alike)."""
    return ExpertItem(
        Severity.NOTE, Group.CAPTURE,
        f"acknowledgements were recorded before the peer bytes they acknowledge, by up to "
        f"{lateness * 1000:.1f} ms, on {connections} connection(s) (each direction on its own capture "
        f"interface, their clocks apart?): {held_frames} data segment(s) waited for those bytes, at most "
        f"{LATE_SEGMENT_WAIT * 1000:g} ms of capture time, so the conversation was decoded in the order it was "
        "sent. For timing, the late side's times are moved back by the lateness measured on its connection "
        "(the least the clocks are apart: an acknowledgement cannot precede what it acknowledges), in PDU, "
        "message, response and TCP times; frame times are shown as recorded", first_frame, rule="capture",
        code="capture.direction_skew")


def ip_fragments_finding(fragments: int, completed: int, left: int, frame: int) -> ExpertItem:
    """What the fragment reassembler did: fragments seen, datagrams put back together, datagrams ``left``
    incomplete or dropped (batch mode's merge words every group's counts alike, once)."""
    text = (f"{fragments} IP fragment(s): {completed} TCP datagram(s) put back together"
            f" (fragments are reassembled in any order; where they overlap, the earlier-starting one's bytes"
            f" are kept)")
    if left:
        text += (f"; {left} datagram(s) could not be completed (fragments missing from the capture, or more"
                 " than 60 s apart) and are gaps in their streams")
    return ExpertItem(Severity.WARNING if left else Severity.NOTE, Group.CAPTURE, text, frame, rule="capture",
                      code="capture.ip_fragments")


def span_duplicates_finding(segments: tuple[int, int, int], fragments: tuple[int, int, int],
                            window: float) -> ExpertItem | None:
    """The note on SPAN copies set aside, from (count, first frame, last frame) of whole segments and of IP
    fragments (batch mode's merge adds up every group's, and words them alike, once); None without any."""
    found = [item for item in (fragments, segments) if item[0]]
    count = sum(item[0] for item in found)
    if not count:
        return None
    first_frame = min(item[1] for item in found)
    last_frame = max(item[2] for item in found)
    what = "TCP header" if not fragments[0] else ("fragment offset" if not segments[0]
                                                  else "TCP header or fragment offset")
    return ExpertItem(
        Severity.NOTE, Group.CAPTURE,
        f"{count} frame(s) (frames {first_frame}-{last_frame}) are copies of a "
        f"packet captured just before (the same IP identification, {what} and payload within "
        f"{window * 1000:g} ms: SPAN duplicates, a mirror port recording each packet twice, or a "
        f"routed copy): set aside, not counted as retransmissions or loss; reassembly and timing use the first "
        f"copy",
        first_frame, rule="capture", code="capture.span_duplicates")


def fragment_identity(fragment: IpFragment) -> tuple:
    """A fragment's identity for the SPAN-copy filter: what a router leaves alone (the addresses, which
    say the family by their length, the datagram's identification and protocol, where the fragment sits
    in it, the "more" flag; not the TTL, not a VLAN tag).  Its length and payload bytes are compared
    besides (``DuplicateFilter.is_copy``).  A slice of the named tuple: ~0.1 µs, fragments are many on a
    VPN's bulk transfer."""
    return fragment[1:6]


class DecoderContext:
    """What a connection decoder may ask (read-only), the id space it numbers its records from,
    and the outbox it may put its events in as they come instead of returning them."""

    __slots__ = ("analysis", "connection", "numbering", "outbox")

    def __init__(self, analysis: Analysis, connection: Connection, numbering: Numbering,
                 outbox: Outbox | None = None) -> None:
        self.analysis = analysis
        self.connection = connection
        self.numbering = numbering
        self.outbox = outbox

    def frames(self, direction: int, start: int, end: int) -> tuple[int, int, float, float]:
        """(first frame, last frame, first frame's time, last frame's time) of a stream range, the
        times corrected for a direction recorded late (``Connection.clock_offset``)."""
        found = self.connection.streams[direction].frames_for(start, end)
        late = self.connection.clock_offset(direction)
        return found if not late else (found[0], found[1], found[2] - late, found[3] - late)

    def status_meaning(self, command_field: int, status: int, sop_class: str) -> tuple[str, str]:
        return self.analysis.status_meaning(command_field, status, sop_class)


class _Closed:
    """What a sink of a closed connection points back to (ignores anything still delivered)."""

    ignored = True


_CLOSED = _Closed()


class _FailedTransform:
    """What a connection's sinks hold once its transform raised: nothing more comes out."""

    name = "failed"

    def feed(self, direction: int, data) -> bytes:
        return b""

    def gap(self, direction: int, length: int) -> None:
        return None


_FAILED_TRANSFORM = _FailedTransform()


class _DirectionSink:
    """Receives one TCP direction's in-order bytes and routes them.

    ``credit`` is how many next bytes the decoder said it does not need to see
    (``skippable``: the inside of a data set fragment); segments that fit in it
    are only recorded in the chunk map and counted in ``owed``, which the
    decoder gets as one ``skip`` before anything else reaches it.  So the PDU
    framer runs only when a PDU or PDV boundary falls in new data.
    """

    __slots__ = ("tracked", "tcp_direction", "chunks", "credit", "owed", "transform", "wire")

    def __init__(self, tracked: "_TrackedConnection", tcp_direction: int) -> None:
        self.tracked = tracked
        self.tcp_direction = tcp_direction
        self.chunks = ChunkMap()
        self.credit = 0
        self.owed = 0
        # With a stream transform (core/wire/transform.py) the wire bytes go to ``wire`` and
        # ``chunks`` holds the inner stream; the credit then stays 0, so the fast path hands
        # every segment to ``on_data`` and the bulk path leaves the connection alone.
        self.transform = None
        self.wire: ChunkMap | None = None

    def on_data(self, stream_offset: int, source: int, file_offset: int, length: int, frame: int, ts: float) -> None:
        tracked = self.tracked
        if tracked.ignored:
            return
        if self.transform is not None:
            self._through_transform(stream_offset, source, file_offset, length, frame, ts)
            return
        self.chunks.append(stream_offset, source, file_offset, length, frame, ts)
        decoder = tracked.decoder
        if decoder is not None:
            if length <= self.credit:
                self.credit -= length
                self.owed += length
                return
            direction = self.tcp_direction ^ tracked.swap
            if self.owed:
                decoder.skip(direction, self.owed)
                self.owed = 0
            events = decoder.receive_data(direction, stream_offset,
                                          tracked.engine.views[source][file_offset : file_offset + length])
            if events:
                tracked.engine.apply(events)
            if tracked.engine.fast_path and tracked.decoder is decoder:
                skippable = getattr(decoder, "skippable", None)
                self.credit = skippable(direction) if skippable is not None else 0
        else:
            tracked.pending.append((self.tcp_direction, stream_offset, source, file_offset, length))
            tracked.engine.try_classify(tracked, self.tcp_direction,
                                        tracked.engine.views[source][file_offset : file_offset + length])

    # -- the inner stream of a transformed connection ------------------------------------------

    def _through_transform(self, stream_offset: int, source: int, file_offset: int, length: int, frame: int,
                           ts: float) -> None:
        tracked = self.tracked
        engine = tracked.engine
        self.wire.append(stream_offset, source, file_offset, length, frame, ts)
        try:
            inner = self.transform.feed(self.tcp_direction, engine.views[source][file_offset : file_offset + length])
            lost = self.transform.take_gap(self.tcp_direction) if hasattr(self.transform, "take_gap") else 0
        except Exception as exc:  # a plugin's transform must not stop the analysis
            engine.transform_failed(tracked, exc)
            return
        if lost:
            self.inner_gap(lost, frame, "lost in capture (inside the layer: its records were not all captured)")
        if inner:
            self.deliver_inner(bytes(inner), frame, ts)

    def deliver_inner(self, inner: bytes, frame: int, ts: float) -> None:
        """Inner bytes the transform returned, completed by the wire segment of ``frame``."""
        tracked = self.tracked
        chunks = self.chunks
        offset = chunks.end
        view = memoryview(inner)
        chunks.store.append(view)
        chunks.append(offset, len(chunks.store) - 1, 0, len(inner), frame, ts)
        decoder = tracked.decoder
        if decoder is not None:
            events = decoder.receive_data(self.tcp_direction ^ tracked.swap, offset, view)
            if events:
                tracked.engine.apply(events)
        else:
            tracked.pending.append((self.tcp_direction, offset, view))
            tracked.engine.try_classify(tracked, self.tcp_direction, view)

    def gap_through_transform(self, gap: Gap, wire_recorded: bool = False) -> None:
        tracked = self.tracked
        if not wire_recorded:
            self.wire.add_gap(gap)
        try:
            lost = self.transform.gap(self.tcp_direction, gap.length)
        except Exception as exc:
            tracked.engine.transform_failed(tracked, exc)
            return
        if not lost:  # nothing inner lost yet (or the transform cannot go on: it returns no more)
            return
        self.inner_gap(lost, gap.frame, gap.reason)

    def inner_gap(self, lost: int, frame: int, reason: str) -> None:
        """``lost`` inner bytes the capture's gap took, at the inner stream's end."""
        tracked = self.tracked
        inner = Gap(self.chunks.end, lost, frame, reason)
        self.chunks.add_gap(inner)
        if tracked.decoder is not None:
            events = tracked.decoder.receive_gap(self.tcp_direction ^ tracked.swap, inner)
            if events:
                tracked.engine.apply(events)
        else:
            tracked.pending.append((self.tcp_direction, inner))

    def flush(self) -> None:
        """Hand the decoder the bytes it skipped (before a gap, the end, or other input)."""
        if self.owed:
            self.tracked.decoder.skip(self.tcp_direction ^ self.tracked.swap, self.owed)
            self.owed = 0
        self.credit = 0

    def on_gap(self, gap: Gap) -> None:
        tracked = self.tracked
        if tracked.ignored:
            return
        if self.transform is not None:
            self.gap_through_transform(gap)
            return
        self.chunks.add_gap(gap)
        if tracked.decoder is not None:
            self.flush()
            events = tracked.decoder.receive_gap(self.tcp_direction ^ tracked.swap, gap)
            if events:
                tracked.engine.apply(events)
        else:
            tracked.pending.append((self.tcp_direction, gap))
            tracked.detection_cut[self.tcp_direction] = True  # detection reads no bytes across a gap


def _acknowledges_unseen(tracked: "_TrackedConnection", direction: int, ack: int) -> bool:
    """Whether ``ack`` (sent in ``direction``) acknowledges peer bytes not yet delivered (or the
    peer's SYN, when this side's SYN was captured and the peer's answer not yet)."""
    other = tracked.reassemblers[1 - direction]
    if not other.started:
        return tracked.reassemblers[direction].isn is not None
    return 0 < ((ack - other.next_seq) & 0xFFFFFFFF) < 0x40000000


class _TrackedConnection:
    """TCP-level state of one connection (DICOM or not yet known)."""

    __slots__ = ("engine", "key", "family", "reassemblers", "sinks", "ignored", "decoder", "swap", "pending",
                 "model", "syn_seen", "client_tcp_direction", "fin", "rst", "first_frame", "first_time",
                 "last_frame", "last_time", "has_data", "segments", "record", "first_bytes", "transformed",
                 "detection_cut", "held")

    def __init__(self, engine: "CaptureEngine", key: tuple, family: int, frame: int, ts: float) -> None:
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
        self.segments = SegmentRecord()  # every segment's header facts, for timing analysis
        if engine.record_stopped:
            self.segments.stop()
        self.record = self.segments.extend
        self.first_bytes: tuple[bytearray, bytearray] | None = None  # until classified
        self.transformed: TransformedConnection | None = None  # a stream transform's (core/wire/transform.py)
        self.detection_cut = [False, False]  # a gap came before classification: first bytes end there
        self.held: deque = deque()  # segments waiting for the peer bytes they acknowledge (CaptureEngine._segment)


class CaptureEngine:
    """The per-frame pass: TCP connections, reassembly, detection, and a decoder per DICOM connection."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.buffers = analysis.buffers
        self.views = analysis.views
        self.stream_transforms = list(getattr(analysis, "stream_transforms", ()))  # core/wire/transform.py
        self.fragments: FragmentReassembler | None = None  # made at the first IP fragment
        self.duplicates = DuplicateFilter(self.views)  # SPAN copies of a packet, set aside (core/wire/duplicates.py)
        # SPAN copies of IP fragments, set aside before reassembly (keys of their own: ``fragment_identity``);
        # made at the first IP fragment and asked for every one (fragments are rare: no probation).
        self.fragment_copies: DuplicateFilter | None = None
        self.table: dict[tuple, tuple[_TrackedConnection, int]] = {}
        self.not_dicom_on_port = 0  # connections on a DICOM port whose first bytes are no PDU
        self.undecoded = UndecodedFrames()  # frames of a link type or encapsulation not taken off, by kind
        self.held_frames = 0  # segments that waited for the peer bytes they acknowledge
        self.held_lateness = 0.0  # the longest a peer's acknowledged bytes came after the acknowledgement
        self.held_first_frame = 0
        self.held_first_at = 0  # the frame being read when that was learnt
        # False in batch mode: the merge reports the whole capture's counts once, from every group's
        # (IP fragments, SPAN copies, segments held for the bytes they acknowledge).
        self.totals_reported = True
        # Clock steps back: every later time is moved on by ``time_shift`` (their sum), so no
        # duration spans a step; ``newest_time`` is the latest time so far (after the shift).
        self.time_shift = 0.0
        self.newest_time = float("-inf")
        self.clock_steps: list[tuple[int, float]] = []  # (frame, seconds)
        self.config = analysis.config
        self.tcp_frames = 0
        self.evicted = 0
        self.record_stopped = False
        self.record_budget = self.config.limits.max_segment_record
        self.fast_path = analysis.config.fast_path
        self.writer = ModelWriter(analysis)
        self.apply = self.writer.apply  # what decoders return goes to the model at once
        self.outbox = Outbox(self.writer)  # or, for a decoder that uses it, each event as it comes

    # -- per frame -------------------------------------------------------------------------

    def run(self, records, tick, tick_every: int = 256, start: int = 0,
            frame_numbers=None, clock_steps=None) -> tuple[int, float | None]:
        """Process every record (``(source, ts, link type, offset, caplen, origlen)`` tuples).

        ``tick(frame_number, offset, ts)`` is called every ``tick_every`` frames (progress,
        releasing mapped pages).  Frames are numbered on from ``start`` (a later call
        continues a capture), unless ``frame_numbers`` gives each record's number: batch
        mode feeds one flow group's frames of a larger capture, numbered as in the whole.
        Returns the last frame's number and time.  This is the reference path: every
        frame through ``frame``.

        Steps of the clock back are found here, frame by frame, unless ``clock_steps`` gives
        them (``_run_given_clock``): a flow group's frames alone cannot show them.
        """
        numbered = enumerate(records, start + 1) if frame_numbers is None else zip(frame_numbers, records)
        if clock_steps is not None:
            return self._run_given_clock(numbered, tick, tick_every, clock_steps, start)
        frame = self.frame
        frame_number = start  # a later call continues the numbering
        ts = None
        shift, newest = self.time_shift, self.newest_time
        untimed = UntimedTime  # a pcapng simple packet block's borrowed time (core/wire/capture.py)
        for frame_number, (source, ts, link_type, offset, caplen, _origlen) in numbered:
            if ts.__class__ is untimed:
                self.analysis.untimed_frames.append(frame_number)
            if shift:
                ts += shift
            if ts < newest - CLOCK_STEP_BACK:
                ts, shift = self._clock_stepped(frame_number, ts, newest)
            elif ts > newest:
                newest = ts
            if not frame_number % tick_every:
                tick(frame_number, offset, ts)
                if self.tcp_frames > self.record_budget and not self.record_stopped:
                    self._check_record_budget(frame_number)
            frame(frame_number, source, ts, link_type, offset, caplen)
        self.newest_time = max(newest, self.newest_time)
        return frame_number, ts

    def _run_given_clock(self, numbered, tick, tick_every: int, clock_steps, start: int) -> tuple[int, float | None]:
        """``run`` with the clock's steps back found over the whole capture (batch mode:
        batch/clock.py), as (frame number, shift from there on, the step frame's own time).

        Each frame's time is moved on by the shift of the last step at or before it (the
        frame of a step itself gets the time the single pass gives it); nothing is detected
        here and nothing reported (the merge reports each step once).
        """
        frame = self.frame
        frame_number = start
        ts = None
        steps = iter(clock_steps)
        shift = 0.0
        step_frame, step_shift, step_time = next(steps, (float("inf"), 0.0, 0.0))
        untimed = UntimedTime
        for frame_number, (source, ts, link_type, offset, caplen, _origlen) in numbered:
            if ts.__class__ is untimed:
                self.analysis.untimed_frames.append(frame_number)
            if frame_number >= step_frame:
                while frame_number >= step_frame:  # steps at frames of other groups are passed here
                    shift, at_frame, at_time = step_shift, step_frame, step_time
                    step_frame, step_shift, step_time = next(steps, (float("inf"), 0.0, 0.0))
                ts = at_time if frame_number == at_frame else ts + shift
            elif shift:
                ts += shift
            if not frame_number % tick_every:
                tick(frame_number, offset, ts)
                if self.tcp_frames > self.record_budget and not self.record_stopped:
                    self._check_record_budget(frame_number)
            frame(frame_number, source, ts, link_type, offset, caplen)
        return frame_number, ts

    def _clock_stepped(self, frame_number: int, ts: float, newest: float) -> tuple[float, float]:
        """The capture's clock went back at this frame: from here on times move on by the step, so
        this frame is at the newest time so far.  (corrected time, the new shift)."""
        step = newest - ts
        self.clock_steps.append((frame_number, step))
        self.time_shift += step
        return newest, self.time_shift

    def run_sources(self, sources: list[CaptureSource], tick, tick_every: int = 256,
                    start: int = 0) -> tuple[int, float | None]:
        """``run`` over the frames of ``sources``: one Ethernet pcap file takes the fast path (``run_pcap``)."""
        if self.fast_path and len(sources) == 1 and start == 0:
            layout = pcap_layout(sources[0])
            if layout is not None and layout[2] == LINKTYPE_ETHERNET:
                return self.run_pcap(sources[0], layout, tick, tick_every)
        return self.run(merge_records(sources), tick, tick_every, start)

    def run_pcap(self, source: CaptureSource, layout: tuple[str, float, int], tick,
                 tick_every: int = 256) -> tuple[int, float | None]:
        """``run`` for one Ethernet pcap, walking its records here rather than through a generator.

        Large captures go block by block through the bulk path (core/pipeline/bulk.py:
        header fields of a few thousand frames read at once with numpy, in-order
        stretches of known connections applied without a Python step per frame); other
        captures, and what a block cannot take, frame by frame (``_pcap_frames``).
        Tests check every path gives the same analysis as ``frame`` alone.
        """
        data = source.data
        end = len(data)
        bulk = None
        if end >= self.config.bulk_min_bytes:
            # Imported here: numpy costs ~60 ms of start-up, worth it only on a large capture.
            from dicomtui.core.pipeline.bulk import make_bulk_runner

            bulk = make_bulk_runner(self, layout)
        frame_number = 0
        ts = None
        offset = PCAP_HEADER_LENGTH
        while offset < end:
            if bulk is not None:
                offset, frame_number, block_ts = bulk.run(offset, frame_number, tick, tick_every)
                ts = block_ts if block_ts is not None else ts
                if offset >= end:
                    break
            # Frame by frame: a record the block walk stopped at, or the whole capture without bulk.
            offset, frame_number, frame_ts, stopped = self._pcap_frames(
                source, layout, offset, frame_number, tick, tick_every,
                count=bulk.per_frame_stretch if bulk is not None else end)
            ts = frame_ts if frame_ts is not None else ts
            if stopped:
                break
        return frame_number, ts

    def _pcap_frames(self, source: CaptureSource, layout: tuple[str, float, int], offset: int, frame_number: int,
                     tick, tick_every: int, count: int) -> tuple[int, int, float | None, bool]:
        """Up to ``count`` records from ``offset``, one at a time; (offset, frame number, time, stopped)."""
        pcap_frame = self.pcap_frame
        ts = None
        walk = WalkEnd()
        shift, newest = self.time_shift, self.newest_time
        for ts, body, caplen, _origlen in pcap_records(source, layout, offset, count, walk):
            frame_number += 1
            if shift:
                ts += shift
            if ts < newest - CLOCK_STEP_BACK:
                ts, shift = self._clock_stepped(frame_number, ts, newest)
            elif ts > newest:
                newest = ts
            if not frame_number % tick_every:
                tick(frame_number, body, ts)
                if self.tcp_frames > self.record_budget and not self.record_stopped:
                    self._check_record_budget(frame_number)
            pcap_frame(frame_number, ts, body, caplen)
        self.newest_time = max(newest, self.newest_time)
        return walk.offset, frame_number, ts, walk.stopped

    def pcap_frame(self, frame_number: int, ts: float, body: int, caplen: int) -> None:
        """One frame of an Ethernet pcap (record body at ``body``).

        The common frame, an in-order segment (or a bare ACK) of a connection
        already known to be DICOM (or ignored), untagged Ethernet/IPv4/TCP without
        SYN, FIN or RST, is handled here: the same state changes as ``frame``
        (segment record row included), without the calls through every layer.
        Every other frame goes to ``frame``.
        """
        if caplen >= 54:
            (ethertype, version_ihl, total_length, ident, fragment, protocol, src, dst, sport, dport, seq, ack,
             data_offset, flags, window, checksum) = _ethernet_ipv4_tcp(self.buffers[0], body)
            if ethertype == 0x0800 and version_ihl == 0x45 and protocol == 6 and not flags & 0x07 \
                    and not fragment & 0x3FFF and 20 <= data_offset >> 2 <= total_length - 20 \
                    and total_length <= caplen - 14:
                entry = self.table.get((src, sport, dst, dport))
                if entry is not None:
                    tracked, direction = entry
                    if tracked.ignored:
                        self.tcp_frames += 1
                        tracked.last_frame = frame_number
                        tracked.last_time = ts
                        return
                    if tracked.decoder is not None:
                        length = total_length - 20 - (data_offset >> 4) * 4
                        reassemblers = tracked.reassemblers
                        reassembler = reassemblers[direction]
                        if (not length or reassembler.takes_in_order(seq)) and not tracked.held and not (
                                length and flags & 0x10 and ack != reassemblers[1 - direction].next_seq
                                and _acknowledges_unseen(tracked, direction, ack)):
                            duplicates = self.duplicates
                            if duplicates.active and duplicates.is_copy(
                                    (ident << 16 | checksum, src, dst, sport, dport, seq, ack, flags, window, length),
                                    ts, 0, body + 34 + (data_offset >> 4) * 4, length, frame_number):
                                return  # a SPAN copy of a packet already taken (a data copy is never in order)
                            self.tcp_frames += 1
                            tracked.last_frame = frame_number
                            tracked.last_time = ts
                            tracked.record(pack_row(ts, frame_number, seq, ack, length, window, flags, direction))
                            if length:
                                tracked.has_data = True
                                stream_offset = reassembler.deliver_in_order(seq, length)
                                sink = tracked.sinks[direction]
                                if length <= sink.credit:  # bytes the decoder said it need not see
                                    sink.chunks.append(stream_offset, 0, body + 34 + (data_offset >> 4) * 4, length,
                                                       frame_number, ts)
                                    sink.credit -= length
                                    sink.owed += length
                                else:
                                    sink.on_data(stream_offset, 0, body + 34 + (data_offset >> 4) * 4,
                                                 length, frame_number, ts)
                            if flags & 0x10:
                                other = reassemblers[1 - direction]
                                if ack != other.next_seq:
                                    other.acknowledged(ack, frame_number, ts)
                            return
        self.frame(frame_number, 0, ts, LINKTYPE_ETHERNET, body, caplen)

    def frame(self, frame_number: int, source: int, ts: float, link_type: int, offset: int, caplen: int) -> None:
        """One frame through the layers: headers, the connection table, reassembly, detection."""
        buffers = self.buffers
        segment = parse_tcp_at(buffers[source], offset, caplen, link_type)
        if segment is None:
            if not self._fragment(frame_number, source, ts, link_type, offset, caplen):
                self._not_tcp(frame_number, link_type)
            return
        family, src, dst, sport, dport, seq, ack, flags, payload_offset, payload_length, missing, window, identity \
            = segment
        if self.duplicates.active and self.duplicates.is_copy(
                (identity, src, dst, sport, dport, seq, ack, flags, window, payload_length + missing),
                                   ts, source, offset + payload_offset, payload_length, frame_number):
            return  # a SPAN copy of a packet already taken: not a retransmission, not in the timing
        self._segment(frame_number, source, ts, family, src, dst, sport, dport, seq, ack, flags, window,
                      ((source, offset + payload_offset, payload_length),) if payload_length else (),
                      payload_length, missing, (link_type, offset, caplen))

    def _segment(self, frame_number: int, source: int, ts: float, family: int, src: bytes, dst: bytes, sport: int,
                 dport: int, seq: int, ack: int, flags: int, window: int, payload: tuple, payload_length: int,
                 missing: int, header_at: tuple | None) -> None:
        """A TCP segment into its connection: ``payload`` as (source, file offset, length) pieces in
        order (one for a frame, several for a datagram put back together from fragments);
        ``header_at``: (link type, offset, caplen) of the frame whose TCP options a SYN's are."""
        self.tcp_frames += 1
        entry = self.table.get((src, sport, dst, dport))
        if entry is None or flags & TCP_SYN:
            entry = self._lookup(entry, family, src, dst, sport, dport, seq, flags, frame_number, ts)
        tracked, direction = entry
        tracked.last_frame = frame_number
        tracked.last_time = ts
        if tracked.ignored:
            if flags & (TCP_FIN | TCP_RST):
                self._note_close(tracked, direction, flags)
            return
        tracked.record(pack_row(ts, frame_number, seq, ack, payload_length + missing, window, flags, direction))
        reassembler = tracked.reassemblers[direction]
        if flags & TCP_SYN:
            if header_at is not None:
                link_type, offset, caplen = header_at
                tracked.segments.syn_options[direction] = tcp_options_at(self.buffers[source], offset, caplen,
                                                                         link_type)
            tracked.syn_seen = True
            if not flags & TCP_ACK:
                tracked.client_tcp_direction = direction
            elif tracked.client_tcp_direction is None:
                tracked.client_tcp_direction = 1 - direction
            reassembler.syn(seq)
        if payload_length and (tracked.held or (flags & TCP_ACK and ack != tracked.reassemblers[1 - direction].next_seq
                                                and _acknowledges_unseen(tracked, direction, ack))):
            # Data sent after bytes of the peer the capture has not shown yet (each direction on its own
            # interface, the clocks apart): it waits for them, at most LATE_SEGMENT_WAIT of capture time,
            # so the decoder sees the conversation in the order it happened.  Later data of this
            # direction waits behind it.
            if not tracked.held or tracked.held[0][0] == direction:
                tracked.held.append((direction, seq, ack, flags, payload, payload_length, missing, frame_number, ts))
                self.held_frames += 1
                self._release_held(tracked, ts)  # what waited long enough goes on: the queue spans 10 ms
                return
            if payload_length and tracked.held[0][0] != direction:
                self._late_for_held(tracked, direction, seq, payload_length, ts, frame_number)
        if payload_length and tracked.reassemblers[direction].loss_evidence is not None:
            late = tracked.reassemblers[direction].first_unseen_ack(seq, payload_length, ts)
            if late is not None:
                self._learn_lateness(tracked, direction, late, frame_number, frame_number)
        self._deliver(tracked, direction, seq, ack, flags, payload, payload_length, missing, frame_number, ts)
        if tracked.held:
            self._release_held(tracked, ts)

    def _deliver(self, tracked: _TrackedConnection, direction: int, seq: int, ack: int, flags: int, payload: tuple,
                 payload_length: int, missing: int, frame_number: int, ts: float) -> None:
        """A segment's payload into reassembly, its acknowledgement and FIN or RST noted."""
        reassembler = tracked.reassemblers[direction]
        if payload_length:
            tracked.has_data = True
            piece_seq = seq
            for piece_source, file_offset, length in payload:
                reassembler.segment(piece_seq, piece_source, file_offset, length, frame_number, ts)
                piece_seq = (piece_seq + length) & 0xFFFFFFFF
            if missing:
                reassembler.missing(missing, frame_number, "frame cut by the capture's snapshot length")
        if flags & TCP_ACK:
            other = tracked.reassemblers[1 - direction]
            # Most ACKs acknowledge exactly what was delivered: nothing to learn from them.
            if ack != other.next_seq:
                other.acknowledged(ack, frame_number, ts)
        if flags & (TCP_FIN | TCP_RST):
            if flags & TCP_FIN:
                reassembler.fin(seq + payload_length + missing)
            self._note_close(tracked, direction, flags)

    def _release_held(self, tracked: _TrackedConnection, ts: float | None) -> None:
        """Deliver the held segments whose peer bytes have arrived, or that waited long enough
        (all of them when ``ts`` is None: the connection ends)."""
        held = tracked.held
        while held:
            direction, seq, ack, flags, payload, payload_length, missing, frame_number, held_ts = held[0]
            if ts is not None and ts - held_ts < LATE_SEGMENT_WAIT \
                    and _acknowledges_unseen(tracked, direction, ack):
                return
            held.popleft()
            self._deliver(tracked, direction, seq, ack, flags, payload, payload_length, missing, frame_number,
                          held_ts)

    def _late_for_held(self, tracked: _TrackedConnection, direction: int, seq: int, length: int, ts: float,
                       now: int) -> None:
        """Peer bytes that held segments acknowledge arrive (``direction``'s segment ending at seq +
        length): how late, learnt before they are delivered, so their PDUs' times are corrected too."""
        end = (seq + length) & 0xFFFFFFFF
        for _direction, _seq, ack, _flags, _payload, _length, _missing, frame_number, held_ts in tracked.held:
            if (end - ack) & 0xFFFFFFFF >= 0x80000000:
                break  # this one (and the ones behind it) wait for more
            self._learn_lateness(tracked, direction, ts - held_ts, frame_number, now)

    def _learn_lateness(self, tracked: _TrackedConnection, direction: int, lateness: float, frame_number: int,
                        now: int) -> None:
        """``direction``'s bytes were recorded ``lateness`` after an acknowledgement of them (the frame
        ``frame_number`` waited for them; ``now`` is the frame being read).

        The acknowledging side cannot have sent before it received, so this is the least the
        clocks of two capture interfaces are apart; the longest seen on a connection is taken off
        ``direction``'s times for timing (``SegmentRecord.late``; PDU times as they are decoded
        from then on, the TCP analysis all of them).  Longer than the late-segment wait it is no
        skew but bytes the capture lost and a resend brought.
        """
        if not 0 < lateness < LATE_SEGMENT_WAIT:
            return
        late = tracked.segments.late
        if lateness > late[direction]:
            late[direction] = lateness
        if lateness > self.held_lateness:
            self.held_lateness = lateness
        if not self.held_first_frame:
            self.held_first_frame, self.held_first_at = frame_number, now

    # -- IP fragments ----------------------------------------------------------------------

    def _fragment(self, frame_number: int, source: int, ts: float, link_type: int, offset: int, caplen: int) -> bool:
        """A frame that is an IP fragment: into the fragment reassembler (core/wire/fragments.py), and
        a TCP segment once its datagram is whole.  False when the frame is no fragment."""
        fragment = locate_fragment_at(self.buffers[source], offset, caplen, link_type)
        if fragment is None:
            return False
        if isinstance(fragment, str):  # an encapsulation the walk cannot take off: counted, named at the end
            self.undecoded.add(fragment, frame_number)
            return True
        if fragment.protocol != 6:
            return True  # a fragment of something that is not TCP
        if self.fragments is None:
            self.fragments = FragmentReassembler()
            self.fragment_copies = DuplicateFilter(self.views)
        captured = max(0, min(fragment.payload_end, caplen) - fragment.payload_offset)
        if self.fragment_copies.is_copy(fragment_identity(fragment), ts, source, offset + fragment.payload_offset,
                                        captured, frame_number):
            return True  # a SPAN copy of a fragment just taken: the datagram is put back together once
        pieces = self.fragments.add((fragment.family, fragment.addresses, fragment.ident), fragment.offset,
                                    fragment.more, source, offset + fragment.payload_offset, captured, ts)
        if pieces is not None:
            self._reassembled(frame_number, ts, fragment, pieces)
        return True

    def _reassembled(self, frame_number: int, ts: float, fragment: IpFragment, pieces: list) -> None:
        """A whole TCP segment from fragments: its header read across them, its payload left where it is."""
        views = self.views
        total = pieces[-1][0] + pieces[-1][3]
        head = b"".join(bytes(views[piece_source][at : at + min(length, 60)])
                        for offset, piece_source, at, length in pieces if offset < 60)[:60]
        if len(head) < 20 or (head[12] >> 4) * 4 > min(len(head), total) or head[12] >> 4 < 5:
            return  # not a TCP header this datagram can hold
        sport, dport, seq, ack, data_offset, flags, window = struct.unpack_from("!HHIIBBH", head)
        header_length = (data_offset >> 4) * 4
        payload = []
        for offset, piece_source, at, length in pieces:
            skip = max(0, header_length - offset)
            if skip < length:
                payload.append((piece_source, at + skip, length - skip))
        half = len(fragment.addresses) // 2
        self._segment(frame_number, pieces[-1][1], ts, fragment.family, fragment.addresses[:half],
                      fragment.addresses[half:], sport, dport, seq, ack, flags, window, tuple(payload),
                      total - header_length, 0, None)

    def fragment_totals(self) -> tuple[int, int, int]:
        """IP fragments seen, datagrams put back together, datagrams incomplete or dropped."""
        fragments = self.fragments
        if fragments is None:
            return (0, 0, 0)
        return (fragments.fragments, fragments.completed, fragments.incomplete() + fragments.dropped)

    def fragment_findings(self) -> None:
        """What the fragment reassembler did, for the expert pane (at the end of the capture)."""
        if self.fragments is None or not self.totals_reported:
            return
        self.analysis.expert.append(ip_fragments_finding(*self.fragment_totals(), self.analysis.frame_count))

    def clock_findings(self) -> None:
        """The clock steps back, for the expert pane (at the end of the capture)."""
        self.analysis.expert.extend(clock_step_findings(self.clock_steps))

    def _capture_finding(self, severity: Severity, text: str, frame: int = 0, code: str = "") -> None:
        """A finding about the capture itself (shape, clocks, limits), the engine's own (rule "capture")."""
        self.analysis.expert.append(ExpertItem(severity, Group.CAPTURE, text, frame, rule="capture", code=code))

    def duplicate_totals(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(count, first frame, last frame) of the SPAN copies set aside: of whole segments, of IP fragments."""
        copies = self.fragment_copies
        return ((self.duplicates.count, self.duplicates.first_frame, self.duplicates.last_frame),
                (copies.count, copies.first_frame, copies.last_frame) if copies is not None else (0, 0, 0))

    def duplicate_findings(self) -> None:
        """How many SPAN copies were set aside, of whole segments and of IP fragments alike (at the end of the
        capture)."""
        segments, fragments = self.duplicate_totals()
        self.analysis.span_duplicates = segments[0] + fragments[0]
        if not self.totals_reported:
            return
        item = span_duplicates_finding(segments, fragments, self.duplicates.window)
        if item is not None:
            self.analysis.expert.append(item)

    def _check_record_budget(self, frame_number: int) -> None:
        """Stop recording segment headers once ``max_segment_record`` segments are held.

        Called when the TCP frame count passes ``record_budget`` (an upper bound of what
        is recorded), so the exact count is taken rarely.
        """
        limit = self.config.limits.max_segment_record
        seen = {id(tracked): tracked for tracked, _direction in self.table.values()}
        held = sum(len(connection.segments) for connection in self.analysis.connections
                   if connection.segments is not None)
        held += sum(len(tracked.segments) for tracked in seen.values() if tracked.model is None)
        if held < limit:
            self.record_budget = self.tcp_frames + (limit - held)
            return
        self.record_stopped = True
        for tracked in seen.values():
            tracked.segments.stop()
            tracked.record = tracked.segments.extend
        self._capture_finding(
            Severity.NOTE,
            f"TCP timing analysis covers the first {held} segments only (limit max_segment_record, "
            f"{ROW_SIZE} bytes each; raise it with -o max_segment_record:N)", frame_number,
            code="capture.segment_record_limit")

    def order_findings(self) -> None:
        """Acknowledgements recorded before the peer bytes they acknowledge (at the end of the capture)."""
        if not self.totals_reported or not self.held_lateness:
            return
        skewed = sum(1 for connection in self.analysis.connections
                     if connection.segments is not None and any(connection.segments.late))
        self.analysis.expert.append(direction_skew_finding(self.held_frames, self.held_lateness, skewed,
                                                           self.held_first_frame))

    def undecoded_findings(self) -> None:
        """One warning naming the link types and encapsulations whose frames were skipped, with counts
        (core/wire/undecoded.py; batch mode counts them while indexing and words them alike)."""
        if not self.undecoded:
            return
        first, text = undecoded_warning(self.undecoded.kinds)
        self._capture_finding(Severity.WARNING, text, first, code="capture.unknown_encapsulation")

    def _not_tcp(self, frame_number: int, link_type: int) -> None:
        if link_type not in SUPPORTED_LINK_TYPES:
            self.undecoded.add(link_type_name(link_type), frame_number)

    def _lookup(self, entry, family: int, src: bytes, dst: bytes, sport: int, dport: int, seq: int, flags: int,
                frame_number: int, ts: float):
        """The connection of a frame that is new, or a SYN on a known port pair."""
        if entry is not None:
            tracked, direction = entry
            if not (flags & TCP_SYN and not flags & TCP_ACK and self._is_new_connection(tracked, direction, seq)):
                return entry
            # The port pair is reused by a new connection.
            self._close(tracked, frame_number)
        if len(self.table) >= 2 * self.config.limits.max_connections:
            self._evict_idle(frame_number)
        key = (src, sport, dst, dport)
        tracked = _TrackedConnection(self, key, family, frame_number, ts)
        self.table[key] = (tracked, 0)
        self.table[(dst, dport, src, sport)] = (tracked, 1)
        return tracked, 0

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

    def try_classify(self, tracked: _TrackedConnection, tcp_direction: int, data) -> None:
        """Decide with the first bytes so far, the new segment's ``data`` appended (at most DETECTION_BYTES per side).

        The first bytes grow with each segment instead of being rebuilt from all held
        segments, so a connection sending 4,096 one-byte segments costs 4,096 small
        appends, not 8 million (it was quadratic: 7 s for one such connection).  A stream
        transform (core/wire/transform.py) is asked first; once one has the connection,
        what is decided here is what its inner bytes are.
        """
        first = tracked.first_bytes
        if first is None:
            first = tracked.first_bytes = (bytearray(), bytearray())
        side = first[tcp_direction]
        room = DETECTION_BYTES - len(side)
        if room > 0 and not tracked.detection_cut[tcp_direction]:
            side += data[:room]
        ports = (tracked.key[3], tracked.key[1])  # destination port of each TCP direction
        if self.stream_transforms and tracked.sinks[0].transform is None \
                and self._attach_transform(tracked, first, ports):
            return
        detection = classify_connection(first, ports, self.config.ports, self.config.heuristic)
        if detection is None:
            return
        if detection.is_dicom and breaks_pdu_grammar_at_start(
                first, tuple(reassembler.isn is not None and not cut
                             for reassembler, cut in zip(tracked.reassemblers, tracked.detection_cut))):
            detection = Detection(False, "not DICOM (its first bytes are no PDU)", None, False)
            self._not_dicom_on_port(tracked, first)
        tracked.first_bytes = None
        if not detection.is_dicom:
            tracked.ignored = True
            tracked.pending = []
            transformed = tracked.transformed
            if transformed is not None and not set(transformed.ports) & self.config.ports:
                # Not DICOM inside, not on a DICOM port (HTTPS decrypted with a browser's key log):
                # nothing to diagnose, so its wire chunk maps are not kept to the end.
                transformed.transform = None
                transformed.wire_streams = (ChunkMap(), ChunkMap())
            tracked.segments = SegmentRecord()  # not DICOM: its segments are not analysed
            tracked.record = tracked.segments.extend
            for sink in tracked.sinks:
                sink.chunks = ChunkMap()
            return
        client = tracked.client_tcp_direction
        if client is None or detection.reason == "A-ASSOCIATE-RQ":
            client = detection.client_direction if detection.client_direction is not None else 0
        tracked.swap = client  # model direction = tcp direction ^ swap; client becomes 0
        self._start_decoder(tracked, detection)

    def _not_dicom_on_port(self, tracked: _TrackedConnection, first) -> None:
        """Say so when a connection on a DICOM port is not DICOM (the first 20; then only counted)."""
        self.not_dicom_on_port += 1
        if self.not_dicom_on_port > NOT_DICOM_LISTED:
            return
        src, sport, dst, dport = tracked.key
        opening = next(bytes(side[:16]) for side in first if len(side) >= 6)
        self._capture_finding(
            Severity.NOTE,
            f"TCP connection {format_address(tracked.family, src, sport)} -> "
            f"{format_address(tracked.family, dst, dport)} uses a DICOM port but is not DICOM: it begins with {opening!r}, which is no DICOM PDU; not decoded"
            + (NOT_DICOM_MORE if self.not_dicom_on_port == NOT_DICOM_LISTED and self.totals_reported else ""),
            tracked.first_frame, code="capture.not_dicom_on_dicom_port")

    def _attach_transform(self, tracked: _TrackedConnection, first, ports: tuple[int, int]) -> bool:
        """Ask the registered stream transforms for this connection; True when one took it.

        The wire bytes held so far go through the transform in the order they arrived;
        from then on the sinks keep the wire bytes apart and hand the inner bytes on.
        """
        for entry in list(self.stream_transforms):
            plugin, name, factory = entry
            try:
                transform = factory((bytes(first[0]), bytes(first[1])), ports)
            except Exception as exc:  # a plugin's factory must not stop the analysis: not asked again
                self.stream_transforms.remove(entry)
                self.analysis.expert.append(ExpertItem(
                    Severity.ERROR, Group.PLUGIN, f"plugin {plugin}: stream transform {name} failed: "
                    f"{type(exc).__name__}: {exc}; not used for the rest of the capture", tracked.first_frame,
                    rule="plugins", code="plugin.transform_factory_failed"))
                continue
            if transform is None:
                continue
            pending, tracked.pending = tracked.pending, []
            tracked.first_bytes = None
            for sink in tracked.sinks:
                sink.transform = transform
                sink.wire, sink.chunks = sink.chunks, ChunkMap(store=[])
            src, sport, dst, dport = tracked.key
            tracked.transformed = TransformedConnection(
                (format_address(tracked.family, src, sport), format_address(tracked.family, dst, dport)),
                (sport, dport), tracked.first_frame, transform, (tracked.sinks[0].wire, tracked.sinks[1].wire),
                last_frame=tracked.last_frame)
            self.analysis.transformed.append(tracked.transformed)
            for item in pending:  # the wire bytes held until now, in arrival order
                sink = tracked.sinks[item[0]]
                if sink.transform is not transform:
                    break  # the transform failed on an earlier item
                if len(item) == 2:
                    sink.gap_through_transform(item[1], wire_recorded=True)
                    continue
                tcp_direction, stream_offset, source, file_offset, length = item
                _first, frame, _start, ts = sink.wire.frames_for(stream_offset, stream_offset + length)
                try:
                    inner = transform.feed(tcp_direction, self.views[source][file_offset : file_offset + length])
                    lost = transform.take_gap(tcp_direction) if hasattr(transform, "take_gap") else 0
                except Exception as exc:
                    self.transform_failed(tracked, exc)
                    break
                if lost:
                    sink.inner_gap(lost, frame, "lost in capture (inside the layer: its records were not all "
                                   "captured)")
                if inner:
                    sink.deliver_inner(bytes(inner), frame, ts)
            return True
        return False

    def transform_failed(self, tracked: _TrackedConnection, exc: Exception) -> None:
        """A transform raised: said once, and the connection's inner streams end there."""
        transform = tracked.sinks[0].transform
        for sink in tracked.sinks:
            sink.transform = _FAILED_TRANSFORM
        self.analysis.expert.append(ExpertItem(
            Severity.ERROR, Group.PLUGIN, f"stream transform {getattr(transform, 'name', '?')} failed on the "
            f"connection of frame {tracked.first_frame}: {type(exc).__name__}: {exc}; the rest of it is not decoded",
            tracked.last_frame or tracked.first_frame, rule="plugins",
            code="plugin.transform_failed"))

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
            segments=tracked.segments,
        )
        transform = tracked.sinks[0].transform
        if transform is not None:
            model.transform = str(getattr(transform, "name", "") or "transformed")
            model.transform_state = transform
            model.wire_streams = (tracked.sinks[tracked.swap].wire, tracked.sinks[1 - tracked.swap].wire)
            if tracked.transformed is not None:
                tracked.transformed.connection = model.index
        tracked.segments.swap = tracked.swap
        analysis.connections.append(model)
        tracked.model = model
        context = DecoderContext(analysis, model, self.writer.numbering, self.outbox)
        decoder = analysis.plugins.hook.dicomtui_make_connection_decoder.first(
            connection=model, config=analysis.config, pdu_decoders=analysis.pdu_decoders, host=context)
        if decoder is None:
            analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN, "no plugin supplied a DICOM connection "
                                              "decoder; connection not decoded", tracked.first_frame,
                                              rule="decoder", code="plugin.no_connection_decoder"))
            tracked.ignored = True
            return
        tracked.decoder = decoder
        apply = self.apply
        for item in tracked.pending:
            if len(item) == 5:
                tcp_direction, stream_offset, source, file_offset, length = item
                events = decoder.receive_data(tcp_direction ^ tracked.swap, stream_offset,
                                              self.views[source][file_offset : file_offset + length])
            elif len(item) == 3:  # inner bytes of a transformed connection
                tcp_direction, stream_offset, view = item
                events = decoder.receive_data(tcp_direction ^ tracked.swap, stream_offset, view)
            else:
                tcp_direction, gap = item
                events = decoder.receive_gap(tcp_direction ^ tracked.swap, gap)
            if events:
                apply(events)
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
            self._capture_finding(
                Severity.WARNING,
                f"more than {self.config.limits.max_connections} TCP connections open at once (a port scan?); "
                "the least recently active are closed early, so a DICOM connection idle that long and then "
                "resumed shows as two", frame, code="capture.too_many_connections")
        for tracked in oldest:
            self._close(tracked, frame)
        self.evicted += len(oldest)

    def _close(self, tracked: _TrackedConnection, frame: int) -> None:
        if tracked.held:
            self._release_held(tracked, None)
        reason = "connection closed before missing segment arrived" if (tracked.rst or any(tracked.fin)) \
            else "capture ended before missing segment arrived"
        for reassembler in tracked.reassemblers:
            reassembler.finish(frame, reason)
        if tracked.decoder is None and not tracked.ignored and tracked.pending:
            # Too little data to decide (e.g. a tiny capture on a DICOM port): decide with what there is.
            self.try_classify_final(tracked)
        if tracked.transformed is not None:
            tracked.transformed.last_frame = tracked.last_frame
        if tracked.model is None and not tracked.has_data and tracked.syn_seen:
            self._attempt(tracked)
        if tracked.decoder is not None:
            model = tracked.model
            model.last_frame = tracked.last_frame
            model.last_time = tracked.last_time
            model.closed_by = "RST" if tracked.rst else ("FIN" if any(tracked.fin) else "")
            for sink in tracked.sinks:
                sink.flush()
            events = tracked.decoder.finish()
            if events:
                self.apply(events)
            tracked.decoder = None
        tracked.ignored = True
        for key in (tracked.key, (tracked.key[2], tracked.key[3], tracked.key[0], tracked.key[1])):
            if self.table.get(key, (None,))[0] is tracked:
                del self.table[key]
        # Break the tracked <-> sink cycle: reference counting frees a closed connection at once
        # (the analysis moves what it built out of the cyclic collector's reach; see analysis.py).
        for sink in tracked.sinks:
            sink.tracked = _CLOSED
        tracked.reassemblers = ()

    def _attempt(self, tracked: _TrackedConnection) -> None:
        """A connection that carried no byte: kept as a ``ConnectionAttempt`` (bounded)."""
        analysis = self.analysis
        if len(analysis.connection_attempts) >= MAX_CONNECTION_ATTEMPTS:
            analysis.attempts_not_kept += 1
            return
        client = tracked.client_tcp_direction or 0
        src, sport, dst, dport = tracked.key
        endpoints = [(src, sport), (dst, dport)]
        (client_address, client_port), (server_address, server_port) = endpoints[client], endpoints[1 - client]
        answered = tracked.reassemblers[1 - client].isn is not None if tracked.reassemblers else False
        outcome = "closed empty" if answered else ("refused" if tracked.rst else "unanswered")
        client_text = format_address(tracked.family, client_address, client_port)
        server_text = format_address(tracked.family, server_address, server_port)
        analysis.connection_attempts.append(ConnectionAttempt(
            client_text, server_text, client_text.rsplit(":", 1)[0], server_text.rsplit(":", 1)[0], server_port,
            tracked.first_frame, tracked.first_time, tracked.last_frame, outcome))

    def try_classify_final(self, tracked: _TrackedConnection) -> None:
        ports = (tracked.key[3], tracked.key[1])
        first = [b"", b""]
        for item in tracked.pending:
            if len(item) == 5:
                tcp_direction, _offset, source, file_offset, length = item
                first[tcp_direction] += bytes(self.views[source][file_offset : file_offset + length])[:DETECTION_BYTES]
            elif len(item) == 3:  # inner bytes of a transformed connection
                tcp_direction, _offset, view = item
                first[tcp_direction] += bytes(view)[:DETECTION_BYTES]
        detection = classify_connection((first[0] + b"\0" * 12, first[1] + b"\0" * 12) if any(
            p in self.config.ports for p in ports) else (first[0], first[1]), ports, self.config.ports,
            self.config.heuristic)
        if detection is not None and detection.is_dicom:
            client = tracked.client_tcp_direction
            if client is None:
                client = detection.client_direction or 0
            tracked.swap = client
            self._start_decoder(tracked, detection)

    def close_ended(self, before_frame: int, frame: int) -> int:
        """Close connections that ended (both FINs, or an RST) with no frame since ``before_frame``.

        A live capture calls this now and then, so an ended connection's decoder
        finishes (its association settles) and its state is freed, as the end of a
        file would.  Returns how many were closed.
        """
        ended = {id(tracked): tracked for tracked, _direction in self.table.values()
                 if (tracked.rst or all(tracked.fin)) and tracked.last_frame < before_frame}
        for tracked in ended.values():
            self._close(tracked, frame)
        return len(ended)

    def finish(self, before_close=None) -> None:
        """Close every connection still open at the end of the capture, oldest first.

        ``before_close(first_frame)`` is called before each (batch mode orders what the
        decoders add while closing by the connection's first frame, as this loop does).
        """
        self.fragment_findings()
        self.duplicate_findings()
        self.clock_findings()
        self.undecoded_findings()
        self.order_findings()
        seen = set()
        for tracked, _direction in list(self.table.values()):
            if id(tracked) in seen:
                continue
            seen.add(id(tracked))
            if before_close is not None:
                before_close(tracked.first_frame)
            self._close(tracked, self.analysis.frame_count)
        self.analysis.connections.sort(key=lambda connection: connection.first_frame)
        self.analysis.connection_attempts.sort(key=lambda attempt: attempt.first_frame)
