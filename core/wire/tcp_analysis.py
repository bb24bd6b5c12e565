"""TCP behaviour of one connection, from the capture alone (docs/timing.md, "TCP").

One pass over the connection's segment record (core/wire/tcp_record.py) in capture
order.  Per direction (the sender's): retransmissions and their cost in time,
out-of-order segments, zero-window and window-full events, RTT samples from
data/ACK pairs, and *ACK-clocked stalls*: the sender had data in flight, went
quiet, and sent its next new segment right after an ACK from the peer.  A stall
is put down to

* the receiver's window when the bytes in flight had reached the advertised
  window (less one MSS): the receive buffer capped the throughput;
* Nagle's algorithm against delayed ACK when the last segment before it was
  smaller than the MSS and the ACK that released the next one was a pure ACK
  that came at least ``DELAYED_ACK_MIN`` after it (the peer's delayed-ACK
  timer: 40 ms on Linux, 200 ms on Windows);
* otherwise the sender's congestion window (slow start, or recovery).

Everything is relative to where the capture was taken: the handshake splits
the round trip into the part between the capture point and the server
(SYN -> SYN/ACK) and the part to the client (SYN/ACK -> ACK), as Wireshark's
``tcp.analysis.initial_rtt`` does.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from .tcp import HALF_SEQ
from .tcp_record import ROW
from .tcp_stalls import MIN_STALL, Stall, classify_wait

MASK = 0xFFFFFFFF

DEFAULT_MSS = 1460
# As tshark: a resend of the sequence number two or more duplicate ACKs asked for, this soon after
# the last of them, is a fast retransmission ...
FAST_RETRANSMISSION_WINDOW = 0.020  # s
# ... and a segment below the highest one, this soon after it, arrived out of order (not resent),
# when the handshake gave no round trip to use instead.
OUT_OF_ORDER_DEFAULT = 0.003  # s
# The least evidence a rate needs (docs/timing.md, "Not measured"): two segments 3 µs apart
# "measure" gigabytes per second.  Below either, a rate is not measured, not zero and not a figure.
RATE_MIN_BYTES = 64 * 1024
RATE_MIN_SECONDS = 0.010
LOSS_KINDS = ("retransmission", "fast_retransmission")
RESEND_KINDS = ("retransmission", "fast_retransmission", "spurious_retransmission")
IDLE_GAP_DEFAULT = 1.0  # s without any segment on the connection


@dataclass(slots=True)
class DirectionTcp:
    """One direction of a connection; ``direction`` 0 is client -> server."""

    direction: int
    segments: int = 0
    data_segments: int = 0
    payload_bytes: int = 0  # new bytes (retransmissions not counted)
    first_data_time: float | None = None
    last_data_time: float | None = None
    # Every data segment tshark's sequence analysis flags, as (frame, kind) in capture order; the
    # kinds are its names (tcp.analysis.*): "lost_segment" (beyond a hole: the bytes before it
    # not seen yet), "out_of_order" (fills a hole within one handshake RTT of the highest
    # segment: the path reordered), "fast_retransmission" (resends what two or more duplicate
    # ACKs asked for), "spurious_retransmission" (resends bytes the receiver had acknowledged)
    # and "retransmission" (any other resend, or a hole filled later than an RTT).  Loss,
    # reordering and a sender resending needlessly call for different advice (docs/timing.md).
    flagged: list[tuple[int, str]] = field(default_factory=list)
    retransmitted_bytes: int = 0  # bytes seen before, sent again (the three resend kinds)
    hole_fills: int = 0  # of the plain retransmissions, those that carried no byte seen before
    retransmission_seconds: float = 0.0  # union of [original or hole seen, resend] of real losses
    retransmission_intervals: list[tuple[float, float, int]] = field(default_factory=list)  # merged, + frame
    zero_windows: int = 0  # segments of this direction advertising a zero window
    zero_window_frames: list[int] = field(default_factory=list)
    window_full: int = 0  # data segments that filled the peer's advertised window exactly
    max_window: int = 0  # largest window the peer advertised to this sender (scaled bytes)
    min_window: int | None = None
    mss: int = DEFAULT_MSS
    rtt_samples: list[float] = field(default_factory=list)  # data in this direction -> covering ACK
    stalls: list[Stall] = field(default_factory=list)

    def frames(self, *kinds: str) -> list[int]:
        return [frame for frame, kind in self.flagged if kind in kinds]

    def count(self, kind: str) -> int:
        return sum(1 for _frame, found in self.flagged if found == kind)

    @property
    def retransmissions(self) -> int:
        """Resends after a loss the capture cannot put down to duplicate ACKs (tshark's plain
        retransmission: an RTO, or a hole filled later than one round trip)."""
        return self.count("retransmission")

    @property
    def fast_retransmissions(self) -> int:
        return self.count("fast_retransmission")

    @property
    def spurious_retransmissions(self) -> int:
        return self.count("spurious_retransmission")

    @property
    def out_of_order(self) -> int:
        return self.count("out_of_order")

    @property
    def lost_segments(self) -> int:
        return self.count("lost_segment")

    @property
    def lost(self) -> int:
        """Resends that mean a segment was lost on the path (plain and fast retransmissions)."""
        return sum(1 for _frame, kind in self.flagged if kind in LOSS_KINDS)

    @property
    def certain_losses(self) -> int:
        """Resends that show a loss: fast retransmissions (the receiver asked for the bytes) and
        retransmissions of bytes seen before; a hole filled late (``hole_fills``) may be reordering."""
        return self.fast_retransmissions + self.retransmissions - self.hole_fills

    @property
    def resent(self) -> int:
        """Every resend, needless ones included (tshark's tcp.analysis.retransmission)."""
        return sum(1 for _frame, kind in self.flagged if kind in RESEND_KINDS)

    @property
    def retransmission_frames(self) -> list[int]:
        return self.frames(*RESEND_KINDS)

    def stall_seconds(self, cause: str) -> float:
        return sum(stall.seconds for stall in self.stalls if stall.cause == cause)

    def stall_count(self, cause: str) -> int:
        return sum(1 for stall in self.stalls if stall.cause == cause)

    @property
    def rtt_min(self) -> float | None:
        return min(self.rtt_samples) if self.rtt_samples else None

    @property
    def rtt_median(self) -> float | None:
        return statistics.median(self.rtt_samples) if self.rtt_samples else None

    @property
    def throughput(self) -> float | None:
        """New payload bytes per second between this direction's first and last data segment;
        None (not measured) below the minimum evidence (``measured_rate``)."""
        if self.first_data_time is None or self.last_data_time is None:
            return None
        return measured_rate(self.payload_bytes, self.last_data_time - self.first_data_time)


@dataclass(slots=True)
class ConnectionTcp:
    connection: int
    handshake_rtt: float | None = None  # SYN -> ACK of the SYN/ACK, seen at the capture point
    server_side_rtt: float | None = None  # SYN -> SYN/ACK: capture point <-> server
    client_side_rtt: float | None = None  # SYN/ACK -> ACK: capture point <-> client
    scale_known: bool = False  # both SYNs captured (window scale known)
    directions: tuple[DirectionTcp, DirectionTcp] = (DirectionTcp(0), DirectionTcp(1))
    idle_gaps: list[tuple[int, float, float]] = field(default_factory=list)  # (frame after, start, seconds)
    record_truncated: bool = False

    def side_rtt(self, side: str) -> float:
        """The round trip between the capture point and the server (or client); 0 when unknown.

        Without a captured handshake the smallest data/ACK sample stands in.
        """
        value = self.server_side_rtt if side == "server" else self.client_side_rtt
        if value is not None:
            return value
        samples = self.directions[0 if side == "server" else 1].rtt_samples
        return min(samples) if samples else 0.0


def measured_rate(amount: float, seconds: float) -> float | None:
    """``amount`` per second, or None when fewer than ``RATE_MIN_BYTES`` bytes moved or over less
    than ``RATE_MIN_SECONDS``."""
    if amount < RATE_MIN_BYTES or seconds < RATE_MIN_SECONDS:
        return None
    return amount / seconds


class _Sender:
    """Per-direction state while walking the record."""

    __slots__ = ("base", "high", "started", "unacked", "acked", "peer_window", "last_data",
                 "last_small", "holes", "retrans_intervals", "window_bound", "high_time", "ack_raw", "ack_time",
                 "dup_acks", "window_raw")

    def __init__(self) -> None:
        self.base = 0
        self.high = 0  # relative sequence number after the highest byte sent
        self.started = False
        self.unacked: deque = deque()  # (relative end, time, retransmitted) of new data segments
        self.acked = 0  # relative ack from the peer
        self.peer_window: int | None = None
        self.last_data: float | None = None
        self.last_small: tuple[float, int] | None = None  # (time, relative end) of a sub-MSS segment
        self.holes: list[tuple[int, int, float]] = []  # (relative start, stop, time seen) of bytes not seen yet
        self.retrans_intervals: list[tuple[float, float]] = []
        self.window_bound = False  # the last segment left less than one MSS of window
        # What tshark's classification of the peer's resends reads (packet-tcp.c): when the high
        # last moved, and this side's last segment's raw ACK number, time and window, with the
        # count of duplicate ACKs since its ACK number last changed.
        self.high_time = 0.0
        self.ack_raw = 0
        self.ack_time = 0.0
        self.dup_acks = 0
        self.window_raw = 0


def analyse_connection(connection, idle_gap: float = IDLE_GAP_DEFAULT, vectorized: bool = True,
                       untimed: frozenset = frozenset()) -> ConnectionTcp:
    """The TCP figures of one model connection (empty when it has no segment record).

    In a long record, runs of plain rows (no SYN, every data segment at its
    direction's high: no retransmission, no hole) are read column-wise with numpy
    (core/wire/tcp_columns.py), the rest by the loop, each handing the other the
    state it left; with ``vectorized=False`` the loop alone, the reference (tests
    compare the two).  Times are the corrected ones where one direction was recorded late
    (``SegmentRecord.corrected``: two capture interfaces, their clocks apart).  ``untimed``: frames
    whose capture block carried no time (pcapng simple packet blocks, with the time of the frame
    before them): no RTT sample and no stall is measured to or from them (the loop alone then).
    """
    record = connection.segments
    if record is not None:
        record = record.corrected()
    walk = _Walk(connection.index, record, idle_gap, untimed)
    if record is None or not len(record):
        return walk.result
    position = 0
    if vectorized and not untimed and len(record) >= COLUMNS_MIN_ROWS:
        from dicomtui.core.wire import tcp_columns  # numpy: only for long records

        for start, stop in tcp_columns.runs(record, COLUMNS_MIN_RUN):
            start = max(start, position)
            while stop - start >= COLUMNS_MIN_RUN:
                walk.rows(record.data, position, start)
                position = start
                reached = tcp_columns.continue_walk(walk, record, start, stop)
                tcp_columns.take_samples(walk)
                if reached > start:
                    position = reached
                    start = reached + 1  # the row it stopped at goes through the loop first
                else:
                    start += COLUMNS_RETRY_ROWS  # not settled yet (the handshake): a few more rows first
    walk.rows(record.data, position, len(record))
    return walk.finish()


COLUMNS_MIN_ROWS = 4096  # shorter records are not worth numpy's start-up
COLUMNS_MIN_RUN = 512  # shorter runs of plain rows go through the loop (setting up the columns costs more)
COLUMNS_RETRY_ROWS = 8  # rows the loop takes before the columns try again, when the walk was not settled


class _Walk:
    """The state of one pass over a connection's segment record (the loop's, and the columns')."""

    __slots__ = ("result", "record", "idle_gap", "shifts", "senders", "syn_time", "synack_time", "last_ack_from",
                 "previous_time", "samples", "untimed", "untimed_ends", "handshake_untimed")

    def __init__(self, index: int, record, idle_gap: float, untimed: frozenset = frozenset()) -> None:
        self.result = result = ConnectionTcp(index, directions=(DirectionTcp(0), DirectionTcp(1)))
        self.record = record
        self.idle_gap = idle_gap
        self.senders = (_Sender(), _Sender())
        self.syn_time: float | None = None
        self.synack_time: float | None = None
        self.last_ack_from: list[tuple[float, bool] | None] = [None, None]  # per ACK sender: (time, pure)
        self.previous_time: float | None = None
        self.samples: list = []  # (direction, array) of RTT samples the columns found, not yet in the result
        self.untimed = untimed  # frames without a time of their own (``analyse_connection``)
        self.untimed_ends: tuple[set, set] = (set(), set())  # per sender: relative ends of its untimed data
        self.handshake_untimed = False  # a SYN without a time: the handshake's RTT is unknown
        self.shifts = (0, 0)
        if record is None or not len(record):
            return
        result.record_truncated = record.truncated
        result.scale_known = record.scale_known()
        self.shifts = (record.window_shift(0), record.window_shift(1))
        for direction in (0, 1):
            options = record.options(1 - direction)  # the MSS the peer will accept
            if options and options.get("mss"):
                result.directions[direction].mss = options["mss"]

    def settled(self) -> bool:
        """Whether what follows may go column-wise: both sides started, the handshake done, no hole."""
        senders, result = self.senders, self.result
        return all(sender.started and not sender.holes for sender in senders) and (
            result.handshake_rtt is not None or self.synack_time is None or self.syn_time is None)

    def rows(self, data, start: int, stop: int) -> None:
        """Walk rows ``start`` to ``stop`` of ``data`` (packed segment rows) in capture order."""
        if stop <= start:
            return
        result = self.result
        senders = self.senders
        syn_time, synack_time, handshake_untimed = self.syn_time, self.synack_time, self.handshake_untimed
        last_ack_from = self.last_ack_from
        previous_time = self.previous_time
        shifts = self.shifts
        idle_gap = self.idle_gap
        swap = self.record.swap
        scale_known = result.scale_known
        directions = result.directions
        untimed, untimed_ends = self.untimed, self.untimed_ends
        # The loop runs once per segment of the capture's DICOM connections: locals, no per-row objects,
        # sequence arithmetic written out (seq_delta inline).
        for time, frame, seq, ack, length, window, flags, direction in ROW.iter_unpack(
                memoryview(data)[start * ROW.size: stop * ROW.size]):
            direction ^= swap
            figures = directions[direction]
            figures.segments += 1
            if previous_time is not None and time - previous_time >= idle_gap:
                result.idle_gaps.append((frame, previous_time, time - previous_time))
            previous_time = time
            sender = senders[direction]
            peer = senders[1 - direction]
            if flags & TCP_SYN:
                if not flags & TCP_ACK and syn_time is None:
                    syn_time = time
                elif flags & TCP_ACK and synack_time is None:
                    synack_time = time
                if untimed and frame in untimed:
                    handshake_untimed = True
                sender.base = (seq + 1) & MASK
                sender.started = True
                sender.high = 0
                sender.high_time = time
            elif not sender.started:
                sender.base = seq
                sender.started = True
                sender.high_time = time
            if result.handshake_rtt is None and synack_time is not None and direction == 0 \
                    and flags & (TCP_SYN | TCP_ACK) == TCP_ACK and syn_time is not None:
                if handshake_untimed or (untimed and frame in untimed):
                    syn_time = None  # a frame of the handshake has no time: its RTT is unknown (asked no more)
                else:
                    result.server_side_rtt = synack_time - syn_time
                    result.client_side_rtt = time - synack_time
                    result.handshake_rtt = time - syn_time
            # -- this segment as an acknowledgement of the peer's data ------------------------------
            if flags & TCP_ACK and peer.started:
                high = peer.high
                ack_rel = high + (((ack - peer.base - high + HALF_SEQ) & MASK) - HALF_SEQ)
                scaled = window if flags & TCP_SYN else window << shifts[direction]
                peer_figures = directions[1 - direction]
                if window == 0 and not flags & (TCP_SYN | TCP_FIN | TCP_RST):
                    figures.zero_windows += 1
                    figures.zero_window_frames.append(frame)
                peer.peer_window = scaled
                if scaled > peer_figures.max_window:
                    peer_figures.max_window = scaled
                if not flags & TCP_SYN and (peer_figures.min_window is None or scaled < peer_figures.min_window):
                    peer_figures.min_window = scaled
                if ack_rel > peer.acked:
                    peer.acked = ack_rel
                    # As Wireshark's tcp.analysis.ack_rtt: a sample when the ACK is exactly the end of a
                    # segment, measured from that segment.
                    unacked = peer.unacked
                    while unacked and unacked[0][0] <= ack_rel:
                        entry = unacked.popleft()
                        if entry[0] == ack_rel and not (untimed and (frame in untimed
                                                                     or ack_rel in untimed_ends[1 - direction])):
                            peer_figures.rtt_samples.append(time - entry[1])
                    last_ack_from[direction] = (time, length == 0)
                else:
                    # Acknowledges nothing new (or carries data): it releases nothing.
                    last_ack_from[direction] = (time, False)
                if untimed and frame in untimed:  # when it came is unknown: no wait is put down to it
                    last_ack_from[direction] = None
            # tshark's duplicate ACKs of this side (what makes the peer's resend a fast one): no data,
            # the same ACK number and non-zero window as this side's previous segment, at its high.
            if not length and window and window == sender.window_raw and ack == sender.ack_raw \
                    and not flags & (TCP_SYN | TCP_FIN | TCP_RST) and seq == (sender.base + sender.high) & MASK:
                sender.dup_acks += 1
            elif ack != sender.ack_raw:
                sender.dup_acks = 0
            sender.ack_raw, sender.ack_time, sender.window_raw = ack, time, window
            if not length:
                continue
            # -- this segment as data -----------------------------------------------------------------
            figures.data_segments += 1
            high = sender.high
            rel = high + (((seq - sender.base - high + HALF_SEQ) & MASK) - HALF_SEQ)
            end = rel + length
            if rel < high:
                # Below the highest byte seen: resent, or late through reordering (``_resend_kind``).
                _resend(figures, sender, peer, rel, end, length, seq, time, frame, result.handshake_rtt)
                continue
            if rel > high:
                figures.flagged.append((frame, "lost_segment"))
                sender.holes.append((high, rel, time))
            if end <= sender.acked and _acked_before(sender, peer, end):
                # New here, yet the receiver had acknowledged it (it acknowledged bytes the capture had
                # not seen yet): tshark calls this spurious too.
                figures.flagged.append((frame, "spurious_retransmission"))
            figures.payload_bytes += length
            if figures.first_data_time is None:
                figures.first_data_time = time
            figures.last_data_time = time
            # Without both SYNs the window scale is unknown and the windows are not comparable with
            # bytes in flight (as Wireshark, which then skips window_full).
            peer_window = sender.peer_window if scale_known else None
            # Window-full, as Wireshark's tcp.analysis.window_full: this segment reaches the window's edge.
            if peer_window and end == sender.acked + peer_window:
                figures.window_full += 1
            last_data = sender.last_data
            timed = not untimed or frame not in untimed
            if not timed:  # no time of its own: no wait measured to it or from it, no RTT sample on it
                untimed_ends[direction].add(end)
            elif last_data is not None and time - last_data >= MIN_STALL:
                _classify_wait(figures, sender, last_ack_from[1 - direction], time, frame)
            sender.unacked.append((end, time, False))
            sender.high = end
            sender.high_time = time
            sender.last_data = time if timed else None
            # Segments a little under the MSS are full ones carrying TCP options (timestamps, SACK).
            sender.last_small = (time, end) if length < figures.mss - 64 else None
            sender.window_bound = peer_window is not None and end - sender.acked >= peer_window - figures.mss
        self.syn_time, self.synack_time, self.previous_time = syn_time, synack_time, previous_time
        self.handshake_untimed = handshake_untimed

    def finish(self) -> ConnectionTcp:
        for direction in (0, 1):
            figures = self.result.directions[direction]
            figures.retransmission_intervals = _union(self.senders[direction].retrans_intervals)
            figures.retransmission_seconds = sum(end - start for start, end, _frame
                                                 in figures.retransmission_intervals)
        return self.result


def _resend_kind(sender: _Sender, peer: _Sender, rel: int, end: int, length: int, seq: int, time: float,
                 first_rtt: float | None) -> str | None:
    """What tshark's sequence analysis (packet-tcp.c, 4.0) calls a data segment below the highest
    byte its sender had sent; None for a keep-alive, or new data after a one-byte window probe.

    In its order: spurious when the receiver had acknowledged all of it; a fast retransmission when
    it starts where two or more duplicate ACKs pointed, within 20 ms of the last; out of order when
    it came within one handshake RTT (3 ms without a handshake) of the segment that set the high
    and does not end there; else a retransmission.
    """
    high = sender.high
    if length <= 1 and rel == high - 1:
        return None  # a keep-alive: one old byte, or none
    if _acked_before(sender, peer, end):
        return "spurious_retransmission"
    if length > 1 and rel == high - 1:
        return None  # new data after a one-byte zero-window probe
    if peer.dup_acks >= 2 and peer.ack_raw == seq and 0 <= time - peer.ack_time < FAST_RETRANSMISSION_WINDOW:
        return "fast_retransmission"
    if 0 <= time - sender.high_time < (first_rtt or OUT_OF_ORDER_DEFAULT) and end != high:
        return "out_of_order"
    return "retransmission"


def _acked_before(sender: _Sender, peer: _Sender, end: int) -> bool:
    """Whether the peer's last ACK number (tshark's ``lastack``) covers ``end``."""
    raw = peer.ack_raw
    if not raw:
        return False
    high = sender.high
    return end <= high + (((raw - sender.base - high + HALF_SEQ) & MASK) - HALF_SEQ)


def _resend(figures: DirectionTcp, sender: _Sender, peer: _Sender, rel: int, end: int, length: int, seq: int,
            time: float, frame: int, first_rtt: float | None) -> None:
    kind = _resend_kind(sender, peer, rel, end, length, seq, time, first_rtt)
    if kind is None and length <= 1:
        return  # a keep-alive: nothing to account
    holes = sender.holes
    if kind is not None:
        figures.flagged.append((frame, kind))
        if kind == "retransmission":
            below = min(end, sender.high)
            if any(start <= rel and below <= stop for start, stop, _seen in holes):
                # No byte of it was seen before: lost before the capture point and resent, or
                # reordered by more than a round trip; tshark (and the capture) cannot tell which.
                figures.hole_fills += 1
    if kind in RESEND_KINDS:
        figures.retransmitted_bytes += min(length, sender.high - rel)
    if kind in LOSS_KINDS:
        # The time a loss cost: from the original (the unacknowledged segment holding the first
        # resent byte), else from when the hole it fills was seen.  Reordering and needless resends
        # cost the receiver no wait of their own.
        since = next((sent for seg_end, sent, _flag in sender.unacked if seg_end > rel), None)
        if since is None:
            since = next((seen for start, _stop, seen in holes if start <= rel), None)
        if since is not None:
            sender.retrans_intervals.append((since, time, frame))
    if holes:
        # What is still missing once this segment's bytes are in.
        sender.holes = [piece for start, stop, seen in holes
                        for piece in ((start, min(stop, rel), seen), (max(start, end), stop, seen))
                        if piece[0] < piece[1]]
    # Karn: round trips of data sent twice, or held up behind a hole, are ambiguous.
    sender.unacked = deque((seg_end, sent, flag or seg_end > rel) for seg_end, sent, flag in sender.unacked)
    if end > sender.high:
        figures.payload_bytes += end - sender.high
        sender.high = end
        sender.high_time = time


def _classify_wait(figures: DirectionTcp, sender: _Sender, last_ack, time: float, frame: int) -> None:
    """A new data segment: was it held back until the ACK just before it?"""
    if sender.last_data is not None:
        classify_wait(figures, sender.last_data, sender.window_bound, sender.last_small, last_ack, time, frame)


def _union(intervals: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Overlapping intervals merged (a loss episode resends several segments at once)."""
    merged: list[list] = []
    for start, end, frame in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, frame])
    return [(start, end, frame) for start, end, frame in merged]
