"""TCP reassembly: segments in, exact per-direction byte streams out.

Sans-IO: the reassembler is fed segment descriptors (sequence number, where the
payload lies in the capture, frame number) and calls back with in-order chunks
and gaps.  It never holds payload bytes, only descriptors, so out-of-order
buffering costs a few dozen bytes per segment whatever the segment size.

Cost: each segment is placed once; out-of-order segments sit in a heap keyed by
stream offset, O(log n) each.  The heap is bounded (``max_pending_segments``);
when it overflows, the hole in front of it is declared a gap and the stream
moves on, so an endless run of out-of-order segments cannot grow memory.

A byte that never arrives becomes a gap when the evidence says it is lost to
the capture: the peer acknowledged bytes beyond it, the buffer limit was hit,
or the connection (or the capture) ended with data still waiting behind it.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Protocol

SEQ_MODULO = 1 << 32
HALF_SEQ = 1 << 31
DEFAULT_MAX_PENDING_SEGMENTS = 8192
# How long (capture time) a segment the peer has acknowledged may still arrive before its bytes are
# declared lost to the capture: each direction on its own capture port, the ports' clocks a few ms
# apart, records a segment after its acknowledgement.  Time, not a count of frames: on a busy port
# 64 frames pass in microseconds, on a quiet one not in seconds.
LATE_SEGMENT_WAIT = 0.010


def seq_delta(a: int, b: int) -> int:
    """Signed distance a - b in 32-bit sequence space (handles wrap-around)."""
    return ((a - b + HALF_SEQ) % SEQ_MODULO) - HALF_SEQ


@dataclass(frozen=True, slots=True)
class Gap:
    """Bytes of a stream that the capture does not hold."""

    stream_offset: int
    length: int
    frame: int  # the frame at which the loss was noticed
    reason: str


class StreamSink(Protocol):
    def on_data(self, stream_offset: int, source: int, file_offset: int, length: int, frame: int, ts: float) -> None: ...

    def on_gap(self, gap: Gap) -> None: ...


@dataclass(slots=True)
class ChunkMap:
    """Which frames carried which bytes of a stream, and where they are in the file.

    Parallel arrays, appended in stream order; lookups by bisection.  About 28
    bytes per segment.
    """

    stream_offsets: array = field(default_factory=lambda: array("Q"))
    file_offsets: array = field(default_factory=lambda: array("Q"))
    lengths: array = field(default_factory=lambda: array("I"))
    frames: array = field(default_factory=lambda: array("I"))
    sources: array = field(default_factory=lambda: array("I"))  # a live capture's spool has many segments
    timestamps: array = field(default_factory=lambda: array("d"))
    gaps: list[Gap] = field(default_factory=list)
    end: int = 0  # stream offset just after the last byte or gap
    # Where ``sources`` point: None for the capture's own sources (the ``views``/``buffers`` a
    # read is given); for the stream a transform produced (core/wire/transform.py: e.g. the
    # plaintext inside TLS records), its own list of pieces, so reads stay index-based.
    store: list | None = None

    def append(self, stream_offset: int, source: int, file_offset: int, length: int, frame: int, ts: float) -> None:
        self.stream_offsets.append(stream_offset)
        self.file_offsets.append(file_offset)
        self.lengths.append(length)
        self.frames.append(frame)
        self.sources.append(source)
        self.timestamps.append(ts)
        self.end = stream_offset + length

    def extend_packed(self, stream_offsets: bytes, file_offsets: bytes, lengths: bytes, frames: bytes,
                      timestamps: bytes, end: int) -> None:
        """Many in-order entries of source 0 at once, as packed columns (the bulk path's delivery);
        ``end``: the stream offset after the last of them."""
        self.stream_offsets.frombytes(stream_offsets)
        self.file_offsets.frombytes(file_offsets)
        self.lengths.frombytes(lengths)
        self.frames.frombytes(frames)
        self.sources.frombytes(bytes(len(lengths)))
        self.timestamps.frombytes(timestamps)
        self.end = end

    def drop_before_frame(self, frame: int) -> int:
        """Forget the entries of frames before ``frame`` at the start of the map (live retention).

        Reads of the forgotten range then find a hole (None), as if never captured.
        Returns the entries dropped.
        """
        frames = self.frames
        count = 0
        while count < len(frames) and frames[count] < frame:
            count += 1
        if count:
            for column in (self.stream_offsets, self.file_offsets, self.lengths, self.frames, self.sources,
                           self.timestamps):
                del column[:count]
            start = self.stream_offsets[0] if self.stream_offsets else self.end
            self.gaps = [gap for gap in self.gaps if gap.stream_offset + gap.length > start]
        return count

    def add_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        self.end = gap.stream_offset + gap.length

    def frames_for(self, start: int, end: int) -> tuple[int, int, float, float]:
        """First and last frame carrying bytes in [start, end), and their times."""
        offsets = self.stream_offsets
        if not offsets:
            return (0, 0, 0.0, 0.0)
        end = max(end, start + 1)
        first = max(bisect_right(offsets, start) - 1, 0)
        last = max(bisect_right(offsets, end - 1) - 1, 0)
        while first < last and offsets[first] + self.lengths[first] <= start:
            first += 1
        return (self.frames[first], self.frames[last], self.timestamps[first], self.timestamps[last])

    def pieces(self, start: int, end: int, views: list) -> list:
        """The stream's bytes [start, end) as zero-copy memoryviews, one per segment.

        A hole in the range ends the list with None (what follows would be misplaced).
        """
        offsets = self.stream_offsets
        if end <= start:
            return []
        if self.store is not None:
            views = self.store
        first = max(bisect_right(offsets, start) - 1, 0)
        last = bisect_right(offsets, end - 1)  # exclusive
        if first >= last or offsets[first] > start or offsets[first] + self.lengths[first] <= start:
            return self._pieces_with_holes(start, end, views)
        result = [
            views[source][file_offset : file_offset + length]
            for source, file_offset, length in zip(self.sources[first:last], self.file_offsets[first:last],
                                                   self.lengths[first:last])
        ]
        # Trim the first and last segment to the range; check the segments abut.
        head_trim = start - offsets[first]
        if head_trim:
            result[0] = result[0][head_trim:]
        tail_end = offsets[last - 1] + self.lengths[last - 1]
        if tail_end > end:
            result[-1] = result[-1][: len(result[-1]) - (tail_end - end)]
        if tail_end < end or offsets[last - 1] - offsets[first] + self.lengths[last - 1] != \
                sum(self.lengths[first:last]):
            return self._pieces_with_holes(start, end, views)
        return result

    def _pieces_with_holes(self, start: int, end: int, views: list) -> list:
        """``pieces`` the slow way, stopping at the first hole."""
        if self.store is not None:
            views = self.store
        offsets = self.stream_offsets
        result: list = []
        index = max(bisect_right(offsets, start) - 1, 0)
        position = start
        while position < end:
            if index >= len(offsets):
                result.append(None)
                break
            chunk_start = offsets[index]
            chunk_end = chunk_start + self.lengths[index]
            if chunk_end <= position:
                index += 1
                continue
            if chunk_start > position:
                result.append(None)
                break
            file_start = self.file_offsets[index] + (position - chunk_start)
            take = min(end, chunk_end) - position
            result.append(views[self.sources[index]][file_start : file_start + take])
            position += take
            index += 1
        return result

    def read(self, start: int, end: int, buffers: list) -> bytes | None:
        """The stream's bytes [start, end) as one bytes object; None over a hole."""
        pieces = self.pieces(start, end, buffers)
        if pieces and pieces[-1] is None:
            return None
        return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)


class DirectionReassembler:
    """One direction of a TCP connection."""

    __slots__ = (
        "sink", "max_pending", "next_seq", "next_offset", "started", "pending",
        "_pending_serial", "finished", "bytes_delivered", "retransmitted_segments",
        "out_of_order_segments", "fin_seq", "loss_evidence", "isn",
    )

    def __init__(self, sink: StreamSink, max_pending: int = DEFAULT_MAX_PENDING_SEGMENTS) -> None:
        self.sink = sink
        self.max_pending = max_pending
        self.next_seq = 0
        self.next_offset = 0
        self.started = False
        self.pending: list[tuple[int, int, int, int, int, int, float]] = []
        self._pending_serial = 0
        self.finished = False
        self.bytes_delivered = 0
        self.retransmitted_segments = 0
        self.out_of_order_segments = 0
        self.fin_seq: int | None = None
        self.isn: int | None = None  # initial sequence number, when the SYN was captured
        # (acknowledged seq, frame and time first seen, the first acknowledged seq while its
        # lateness is not yet taken: ``first_unseen_ack``)
        self.loss_evidence: tuple[int, int, float, int | None] | None = None

    def fin(self, seq_after_data: int) -> None:
        """A FIN occupies one sequence number after the data; acknowledging it is not data (an
        acknowledgement of it recorded before it is no evidence of lost bytes)."""
        self.fin_seq = seq_after_data % SEQ_MODULO
        evidence = self.loss_evidence
        if evidence is not None and seq_delta(evidence[0], self.fin_seq) > 0:
            self.loss_evidence = (self.fin_seq, evidence[1], evidence[2], evidence[3])
            if seq_delta(self.fin_seq, self.next_seq) <= 0:
                self.loss_evidence = None

    def syn(self, seq: int) -> None:
        if not self.started:
            self.started = True
            self.isn = seq
            self.next_seq = (seq + 1) % SEQ_MODULO
            evidence = self.loss_evidence  # an acknowledgement of the SYN recorded before it: no loss
            if evidence is not None and seq_delta(evidence[0], self.next_seq) <= 0:
                self.loss_evidence = None

    # -- delivery: the only ways a direction's stream advances ------------------------------------
    #
    # ``segment`` is the reference (any segment, any order).  The engine's fast and bulk paths,
    # which have already checked that their segments are the next bytes in order with nothing
    # waiting (``takes_in_order``), advance the counters with ``deliver_in_order`` (one segment)
    # or ``delivered_in_order`` (a run of them, whose chunk-map entries they add themselves with
    # ``ChunkMap.extend_packed``), so these fields are set here and nowhere else.

    def takes_in_order(self, seq: int) -> bool:
        """Whether a segment at ``seq`` is the next bytes of a stream with nothing held or doubted."""
        return seq == self.next_seq and not self.pending and self.started and self.loss_evidence is None

    def deliver_in_order(self, seq: int, length: int) -> int:
        """Advance past one in-order segment (``takes_in_order`` held); returns its stream offset."""
        stream_offset = self.next_offset
        self.next_offset = stream_offset + length
        self.next_seq = (seq + length) & 0xFFFFFFFF
        self.bytes_delivered += length
        return stream_offset

    def delivered_in_order(self, next_offset: int, next_seq: int, count: int) -> None:
        """A run of in-order segments was delivered: ``count`` bytes, ending at ``next_offset`` / ``next_seq``."""
        self.next_offset = next_offset
        self.next_seq = next_seq
        self.bytes_delivered += count

    def segment(self, seq: int, source: int, file_offset: int, length: int, frame: int, ts: float) -> None:
        if length == 0:
            return
        if seq == self.next_seq and self.started and not self.pending:
            # The common case, kept short: the next bytes, in order, nothing waiting.
            self.sink.on_data(self.next_offset, source, file_offset, length, frame, ts)
            self.next_offset += length
            self.next_seq = (seq + length) & 0xFFFFFFFF
            self.bytes_delivered += length
            if self.loss_evidence is not None:
                self._check_evidence(frame, ts)
            return
        if not self.started:
            # Picked up mid-connection: the first byte we see is stream offset 0.
            self.started = True
            self.next_seq = seq
        relative = seq_delta(seq, self.next_seq)
        stream_offset = self.next_offset + relative
        if relative > 0:
            self.out_of_order_segments += 1
            self._pending_serial += 1
            heapq.heappush(
                self.pending, (stream_offset, self._pending_serial, source, file_offset, length, frame, ts)
            )
            if len(self.pending) > self.max_pending:
                self._skip_to_pending(frame, "out-of-order buffer full")
            elif self.loss_evidence is not None:
                self._check_evidence(frame, ts)
            return
        self._place(stream_offset, source, file_offset, length, frame, ts)
        self._drain()
        if self.loss_evidence is not None:
            self._check_evidence(frame, ts)

    def _place(self, stream_offset: int, source: int, file_offset: int, length: int, frame: int, ts: float) -> None:
        """Deliver the part of a segment at or after next_offset (stream_offset <= next_offset)."""
        overlap = self.next_offset - stream_offset
        if overlap >= length:
            self.retransmitted_segments += 1
            return
        if overlap > 0:
            self.retransmitted_segments += 1
            file_offset += overlap
            length -= overlap
        self.sink.on_data(self.next_offset, source, file_offset, length, frame, ts)
        self.next_offset += length
        self.next_seq = (self.next_seq + length) % SEQ_MODULO
        self.bytes_delivered += length

    def _drain(self) -> None:
        pending = self.pending
        while pending and pending[0][0] <= self.next_offset:
            stream_offset, _serial, source, file_offset, length, frame, ts = heapq.heappop(pending)
            self._place(stream_offset, source, file_offset, length, frame, ts)

    def _declare_gap(self, upto_offset: int, frame: int, reason: str) -> None:
        length = upto_offset - self.next_offset
        if length <= 0:
            return
        self.sink.on_gap(Gap(self.next_offset, length, frame, reason))
        self.next_offset = upto_offset
        self.next_seq = (self.next_seq + length) % SEQ_MODULO

    def _skip_to_pending(self, frame: int, reason: str) -> None:
        if self.pending:
            self._declare_gap(self.pending[0][0], frame, reason)
            self._drain()

    def acknowledged(self, ack: int, frame: int, ts: float) -> None:
        """The peer acknowledged up to ``ack`` (in frame ``frame`` at capture time ``ts``).

        Bytes before it that we lack were sent, so they were lost to the capture
        (not the network).  They become a gap once ``LATE_SEGMENT_WAIT`` seconds of
        capture time have passed since the acknowledgement (seen at the next segment
        or acknowledgement of this direction, or at the end); until then a capture
        that merely recorded the segment after its acknowledgement (each direction
        on its own interface, their clocks apart) can still place it.  Before this
        direction started (its SYN or first bytes recorded after the acknowledgement, for
        the same reason) the highest such acknowledgement is kept with its own time, for
        ``first_unseen_ack``.
        """
        if not self.started:
            if self.loss_evidence is None or 0 < seq_delta(ack, self.loss_evidence[0]) < HALF_SEQ // 2:
                self.loss_evidence = (ack, frame, ts, ack)
            return
        if self.fin_seq is not None and seq_delta(ack, self.fin_seq) > 0:
            ack = self.fin_seq
        ahead = seq_delta(ack, self.next_seq)
        if ahead <= 0 or ahead > HALF_SEQ // 2:
            return
        if self.loss_evidence is None:
            self.loss_evidence = (ack, frame, ts, ack)
        elif seq_delta(ack, self.loss_evidence[0]) > 0:
            self.loss_evidence = (ack, self.loss_evidence[1], self.loss_evidence[2], self.loss_evidence[3])
        self._check_evidence(frame, ts)

    def first_unseen_ack(self, seq: int, length: int, ts: float) -> float | None:
        """A segment [seq, seq + length) about to be delivered: when it brings the first bytes an
        acknowledgement already covered, how long after that acknowledgement it was recorded (once
        per run of such acknowledgements; None otherwise).  The peer cannot have acknowledged
        bytes before they passed the capture point, so this is how late this direction's frames
        were recorded against the peer's (two capture interfaces, their clocks apart)."""
        evidence = self.loss_evidence
        if evidence is None or evidence[3] is None or seq_delta((seq + length) % SEQ_MODULO, evidence[3]) < 0:
            return None
        self.loss_evidence = (evidence[0], evidence[1], evidence[2], None)  # taken: once per run
        if seq_delta(evidence[3], seq) <= 0:  # the acknowledged bytes themselves were not captured
            return None
        return ts - evidence[2]

    def _check_evidence(self, frame: int, ts: float = 0.0, force: bool = False) -> None:
        evidence = self.loss_evidence
        if evidence is None:
            return
        if not self.started:  # the direction never started: nothing of it to wait for
            self.loss_evidence = None
            return
        ack, _since, since_ts, _first = evidence
        ahead = seq_delta(ack, self.next_seq)
        if ahead <= 0:
            self.loss_evidence = None
            return
        if not force and ts - since_ts < LATE_SEGMENT_WAIT:
            # The segment may just be recorded late (after its acknowledgement).
            return
        self.loss_evidence = None
        reason = "segment not captured (acknowledged by peer)"
        while ahead > 0:
            target = self.next_offset + ahead
            if self.pending and self.pending[0][0] <= self.next_offset:
                self._drain()
            elif self.pending and self.pending[0][0] < target:
                self._declare_gap(self.pending[0][0], frame, reason)
                self._drain()
            else:
                self._declare_gap(target, frame, reason)
            ahead = seq_delta(ack, self.next_seq)

    def missing(self, length: int, frame: int, reason: str) -> None:
        """Bytes known to follow directly but not captured (snapshot length cut the frame)."""
        self._declare_gap(self.next_offset + length, frame, reason)
        self._drain()

    def finish(self, frame: int, reason: str = "capture ended before missing segment") -> None:
        """No more segments will come: whatever waits behind a hole is delivered after a gap."""
        self._check_evidence(frame, force=True)
        while self.pending:
            self._skip_to_pending(frame, reason)
        self.finished = True

