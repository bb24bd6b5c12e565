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
    retransmissions: int = 0
    retransmitted_bytes: int = 0
    retransmission_seconds: float = 0.0  # union of [original or hole seen, retransmission] intervals
    retransmission_frames: list[int] = field(default_factory=list)
    retransmission_intervals: list[tuple[float, float, int]] = field(default_factory=list)  # merged, + frame
    out_of_order: int = 0  # segments beyond a hole (data before them missing at that point)
    zero_windows: int = 0  # segments of this direction advertising a zero window
    zero_window_frames: list[int] = field(default_factory=list)
    window_full: int = 0  # data segments that filled the peer's advertised window exactly
    max_window: int = 0  # largest window the peer advertised to this sender (scaled bytes)
    min_window: int | None = None
    mss: int = DEFAULT_MSS
    rtt_samples: list[float] = field(default_factory=list)  # data in this direction -> covering ACK
    stalls: list[Stall] = field(default_factory=list)

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
    def throughput(self) -> float:
        """New payload bytes per second between this direction's first and last data segment."""
        if self.first_data_time is None or self.last_data_time is None:
            return 0.0
        span = self.last_data_time - self.first_data_time
        return self.payload_bytes / span if span > 0 else 0.0


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


class _Sender:
    """Per-direction state while walking the record."""

    __slots__ = ("base", "high", "started", "unacked", "acked", "peer_window", "last_data",
                 "last_small", "holes", "retrans_intervals", "window_bound")

    def __init__(self) -> None:
        self.base = 0
        self.high = 0  # relative sequence number after the highest byte sent
        self.started = False
        self.unacked: deque = deque()  # (relative end, time, retransmitted) of new data segments
        self.acked = 0  # relative ack from the peer
        self.peer_window: int | None = None
        self.last_data: float | None = None
        self.last_small: tuple[float, int] | None = None  # (time, relative end) of a sub-MSS segment
        self.holes: list[tuple[int, float]] = []  # (relative start of a hole, time it was seen)
        self.retrans_intervals: list[tuple[float, float]] = []
        self.window_bound = False  # the last segment left less than one MSS of window


def analyse_connection(connection, idle_gap: float = IDLE_GAP_DEFAULT, vectorized: bool = True) -> ConnectionTcp:
    """The TCP figures of one model connection (empty when it has no segment record).

    In a long record, runs of plain rows (no SYN, every data segment at its
    direction's high: no retransmission, no hole) are read column-wise with numpy
    (core/wire/tcp_columns.py), the rest by the loop, each handing the other the
    state it left; with ``vectorized=False`` the loop alone, the reference (tests
    compare the two).
    """
    record = connection.segments
    walk = _Walk(connection.index, record, idle_gap)
    if record is None or not len(record):
        return walk.result
    position = 0
    if vectorized and len(record) >= COLUMNS_MIN_ROWS:
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
                 "previous_time", "samples")

    def __init__(self, index: int, record, idle_gap: float) -> None:
        self.result = result = ConnectionTcp(index, directions=(DirectionTcp(0), DirectionTcp(1)))
        self.record = record
        self.idle_gap = idle_gap
        self.senders = (_Sender(), _Sender())
        self.syn_time: float | None = None
        self.synack_time: float | None = None
        self.last_ack_from: list[tuple[float, bool] | None] = [None, None]  # per ACK sender: (time, pure)
        self.previous_time: float | None = None
        self.samples: list = []  # (direction, array) of RTT samples the columns found, not yet in the result
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
        syn_time, synack_time = self.syn_time, self.synack_time
        last_ack_from = self.last_ack_from
        previous_time = self.previous_time
        shifts = self.shifts
        idle_gap = self.idle_gap
        swap = self.record.swap
        scale_known = result.scale_known
        directions = result.directions
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
                sender.base = (seq + 1) & MASK
                sender.started = True
                sender.high = 0
            elif not sender.started:
                sender.base = seq
                sender.started = True
            if result.handshake_rtt is None and synack_time is not None and direction == 0 \
                    and flags & (TCP_SYN | TCP_ACK) == TCP_ACK and syn_time is not None:
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
                        if entry[0] == ack_rel:
                            peer_figures.rtt_samples.append(time - entry[1])
                    last_ack_from[direction] = (time, length == 0)
                else:
                    # Acknowledges nothing new (or carries data): it releases nothing.
                    last_ack_from[direction] = (time, False)
            if not length:
                continue
            # -- this segment as data -----------------------------------------------------------------
            figures.data_segments += 1
            high = sender.high
            rel = high + (((seq - sender.base - high + HALF_SEQ) & MASK) - HALF_SEQ)
            end = rel + length
            if rel < high:
                # Sends bytes already sent: a retransmission (or the peer's copy of a lost segment).
                _retransmission(figures, sender, rel, end, length, time, frame)
                continue
            if rel > high:
                figures.out_of_order += 1
                sender.holes.append((high, time))
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
            if last_data is not None and time - last_data >= MIN_STALL:
                _classify_wait(figures, sender, last_ack_from[1 - direction], time, frame)
            sender.unacked.append((end, time, False))
            sender.high = end
            sender.last_data = time
            # Segments a little under the MSS are full ones carrying TCP options (timestamps, SACK).
            sender.last_small = (time, end) if length < figures.mss - 64 else None
            sender.window_bound = peer_window is not None and end - sender.acked >= peer_window - figures.mss
        self.syn_time, self.synack_time, self.previous_time = syn_time, synack_time, previous_time

    def finish(self) -> ConnectionTcp:
        for direction in (0, 1):
            figures = self.result.directions[direction]
            figures.retransmission_intervals = _union(self.senders[direction].retrans_intervals)
            figures.retransmission_seconds = sum(end - start for start, end, _frame
                                                 in figures.retransmission_intervals)
        return self.result


def _retransmission(figures: DirectionTcp, sender: _Sender, rel: int, end: int, length: int, time: float,
                    frame: int) -> None:
    figures.retransmissions += 1
    figures.retransmitted_bytes += min(length, sender.high - rel)
    figures.retransmission_frames.append(frame)
    # The original: the unacknowledged segment holding the first resent byte, else the hole it fills.
    since = next((sent for seg_end, sent, _flag in sender.unacked if seg_end > rel), None)
    if since is None:
        since = next((seen for start, seen in sender.holes if start <= rel), None)
    if since is not None:
        sender.retrans_intervals.append((since, time, frame))
    sender.holes = [(start, seen) for start, seen in sender.holes if start >= end]
    # Karn: round trips of resent data are ambiguous.
    sender.unacked = deque((seg_end, sent, flag or seg_end > rel) for seg_end, sent, flag in sender.unacked)
    if end > sender.high:
        figures.payload_bytes += end - sender.high
        sender.high = end


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
