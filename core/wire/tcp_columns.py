"""The TCP analysis of plain rows, column-wise (numpy): the loop's results without its loop.

``tcp_analysis._Walk.rows`` is the reference: one Python step per segment,
0.7-1 µs each, 0.2 s for the 220,000 segments of a 227 MB transfer.  Most rows
of a long record are plain: no SYN, and each data segment starts where its
direction's data so far ended (no retransmission, no hole).  Over a run of such
rows everything the loop tracks has a closed form: the highest byte sent and
the highest acknowledged are running maxima, the window in force is the last
one advertised, an RTT sample is an advancing ACK equal to the end of a segment
sent before it, a stall candidate is a gap between one data segment and the
next, and the queue of unacknowledged segments loses an entry at the first
advancing ACK that covers it.  ``runs`` guesses where such runs are;
``continue_walk`` applies one up to the first row that is not plain for the real
state and leaves the walk as the loop would have, so the loop takes over there
(the handshake, retransmissions, holes, SYNs) and hands back at the next run.
Tests compare both on every fixture and on generated transfers, in order and
messy (tests/test_tcp_columns.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from .tcp import HALF_SEQ
from .tcp_stalls import MIN_STALL, classify_wait

ROWS = np.dtype([("time", "<f8"), ("frame", "<u4"), ("seq", "<u4"), ("ack", "<u4"), ("length", "<u4"),
                 ("window", "<u2"), ("flags", "u1"), ("direction", "u1")])
MODULO = 1 << 32
LARGEST = 1 << 30  # bytes one direction may reach column-wise


def _latest(values: np.ndarray, counts: np.ndarray, default) -> np.ndarray:
    """``values[count - 1]`` for each count (the latest of the first ``count`` values), ``default``
    where the count is 0."""
    if not len(values):
        return np.full(len(counts), default)
    return np.where(counts > 0, values[np.maximum(counts - 1, 0)], default)


def runs(record, shortest: int) -> list[tuple[int, int]]:
    """Row ranges worth trying column-wise: at least ``shortest`` rows with no SYN and each data
    segment following on from its direction's previous one (a guess from the rows alone;
    ``continue_walk`` checks against the real state)."""
    rows = np.frombuffer(record.data, dtype=ROWS)
    seqs = rows["seq"].astype(np.int64)
    lengths = rows["length"].astype(np.int64)
    breaks = (rows["flags"] & TCP_SYN) != 0
    for direction in (0, 1):
        data = np.flatnonzero((rows["direction"] == direction) & (lengths > 0))
        following = (seqs[data[:-1]] + lengths[data[:-1]]) % MODULO
        breaks[data[1:][seqs[data[1:]] != following]] = True
    edges = np.concatenate(([-1], np.flatnonzero(breaks), [len(rows)]))
    found = []
    for before, after in zip(edges[:-1].tolist(), edges[1:].tolist()):
        if after - before - 1 >= shortest:
            found.append((before + 1, after))
    return found


def take_samples(walk) -> None:
    """Move the RTT samples ``continue_walk`` kept aside into the result, in order."""
    for direction, samples in walk.samples:
        walk.result.directions[direction].rtt_samples.extend(samples.tolist())
    walk.samples.clear()


def continue_walk(walk, record, start: int, stop: int) -> int:
    """Apply rows ``start`` to ``stop`` column-wise, up to the first one that is not plain for the
    walk's state (a SYN, a segment not at its direction's high); returns the row reached.

    Every figure and every piece of state the loop keeps comes out as the loop would leave
    it, so the loop can go on from the row returned.
    """
    if not walk.settled():
        return start  # holes, or the handshake unfinished: the loop's business
    for sender in walk.senders:
        ends = [entry[0] for entry in sender.unacked]
        if any(later <= earlier for earlier, later in zip(ends, ends[1:])) or (ends and ends[-1] > sender.high):
            # A queue out of order (a capture merged from two interfaces holds every segment
            # twice): one ACK may then take several samples, which only the loop follows.
            return start
    rows = np.frombuffer(record.data, dtype=ROWS)[start:stop]
    flags = rows["flags"]
    directions = (rows["direction"] ^ record.swap).astype(np.int64)
    lengths = rows["length"].astype(np.int64)
    seqs = rows["seq"].astype(np.int64)
    # The first row that is not plain ends the range.
    reach = len(rows)
    syn = np.flatnonzero(flags & TCP_SYN)
    if len(syn):
        reach = int(syn[0])
    for direction in (0, 1):
        sender = walk.senders[direction]
        data = np.flatnonzero((directions == direction) & (lengths > 0))
        ends = sender.high + np.cumsum(lengths[data])
        wrong = np.flatnonzero((seqs[data] - sender.base - (ends - lengths[data])) % MODULO)
        if len(wrong):
            reach = min(reach, int(data[wrong[0]]))
        beyond = np.flatnonzero(ends >= LARGEST)
        if len(beyond):
            reach = min(reach, int(data[beyond[0]]))
    if reach < 2:
        return start
    _apply_rows(walk, record, rows[:reach])
    return start + reach


class _Columns(NamedTuple):
    """One batch of plain rows as int64/float columns, directions in the walk's orientation."""

    flags: np.ndarray
    times: np.ndarray
    frames: np.ndarray
    acks: np.ndarray
    lengths: np.ndarray
    windows: np.ndarray
    directions: np.ndarray
    has_ack: np.ndarray


class _AtStart(NamedTuple):
    """The state the loop's rows left, read before the ACK pass moves it on."""

    acked: list
    high: list
    ack_raw: list
    window: list
    last_ack: list


def _apply_rows(walk, record, rows) -> None:
    """Rows known to be plain, applied to the walk's figures and state: data ends, idle gaps,
    each direction's ACKs of the other's data (RTT samples, windows), then each direction's data
    (window-full, resends the receiver had acknowledged, stalls)."""
    flags = rows["flags"]
    columns = _Columns(flags, rows["time"], rows["frame"].astype(np.int64), rows["ack"].astype(np.int64),
                       rows["length"].astype(np.int64), rows["window"].astype(np.int64),
                       (rows["direction"] ^ record.swap).astype(np.int64), (flags & TCP_ACK) != 0)
    senders = walk.senders
    at_start = _AtStart([sender.acked for sender in senders], [sender.high for sender in senders],
                        [sender.ack_raw for sender in senders], [sender.peer_window for sender in senders],
                        list(walk.last_ack_from))
    # Data in order, from where each direction had got to: (row indices, end offsets, times).
    # (The handshake is the loop's: the walk settles only once it is done or cannot be.)
    ends_by = []
    for direction in (0, 1):
        rows_of = np.flatnonzero((columns.directions == direction) & (columns.lengths > 0))
        ends_by.append((rows_of, senders[direction].high + np.cumsum(columns.lengths[rows_of]),
                        columns.times[rows_of]))
    _idle_gaps_and_counts(walk, columns)
    acked_by = {}  # data sender -> (ACK row indices, acknowledged offset after each)
    window_by = {}  # data sender -> (ACK row indices, window they advertised)
    pure_by = {}  # ACK sender -> (ACK row indices, pure-and-advancing flags)
    for direction in (0, 1):
        ack_rows, acked_after, scaled, pure = _acks_from(walk, columns, ends_by[1 - direction], direction)
        acked_by[1 - direction] = (ack_rows, acked_after)
        window_by[1 - direction] = (ack_rows, scaled)
        pure_by[direction] = (ack_rows, pure)
    for direction in (0, 1):
        if len(ends_by[direction][0]):
            _data_from(walk, columns, ends_by[direction], acked_by[direction], window_by[direction],
                       pure_by[1 - direction], at_start, direction)
    _ack_state(walk, rows, columns.directions, ends_by, at_start.high)


def _idle_gaps_and_counts(walk, columns: _Columns) -> None:
    result = walk.result
    times = columns.times
    previous = np.concatenate(([walk.previous_time if walk.previous_time is not None else np.nan], times[:-1]))
    with np.errstate(invalid="ignore"):
        idle = np.flatnonzero(times - previous >= walk.idle_gap)
    for row in idle.tolist():
        result.idle_gaps.append((int(columns.frames[row]), float(previous[row]), float(times[row] - previous[row])))
    walk.previous_time = float(times[-1])
    for direction in (0, 1):
        result.directions[direction].segments += int(np.count_nonzero(columns.directions == direction))


def _acks_from(walk, columns: _Columns, peer_data, direction: int):
    """``direction``'s ACKs of the other side's data ``peer_data`` (rows, ends, times): zero
    windows, the window range, RTT samples, the peer's unacknowledged queue and acknowledged
    offset moved on.  Returns (ACK rows, acknowledged offset after each, scaled window of each,
    pure-and-advancing flag of each)."""
    other = 1 - direction
    peer = walk.senders[other]
    figures = walk.result.directions[direction]
    peer_figures = walk.result.directions[other]
    flags, times, frames, windows = columns.flags, columns.times, columns.frames, columns.windows
    ack_rows = np.flatnonzero((columns.directions == direction) & columns.has_ack)
    data_rows, data_ends, data_times = peer_data
    # The peer's high when each ACK was sent: its data ends so far.
    sent = np.searchsorted(data_rows, ack_rows)
    high = _latest(data_ends, sent, peer.high)
    ack_rel = high + ((columns.acks[ack_rows] - peer.base - high + HALF_SEQ) % MODULO - HALF_SEQ)
    scaled = windows[ack_rows] << walk.shifts[direction]
    zero = ack_rows[(windows[ack_rows] == 0) & ((flags[ack_rows] & (TCP_FIN | TCP_RST)) == 0)]
    figures.zero_windows += len(zero)
    figures.zero_window_frames.extend(frames[zero].tolist())
    if len(scaled):
        peer_figures.max_window = max(peer_figures.max_window, int(scaled.max()))
        smallest = int(scaled.min())
        if peer_figures.min_window is None or smallest < peer_figures.min_window:
            peer_figures.min_window = smallest
        peer.peer_window = int(scaled[-1])
    acked_before = np.maximum.accumulate(np.concatenate(([peer.acked], ack_rel)))
    advancing = ack_rel > acked_before[:-1]
    # RTT samples: an advancing ACK exactly at the end of a segment sent before it (the loop's
    # unacknowledged queue; what the loop's rows left in it counts as sent before).
    queue = list(peer.unacked)
    queued_ends = np.array([entry[0] for entry in queue], dtype=np.int64)
    queued_times = np.array([entry[1] for entry in queue], dtype=np.float64)
    all_ends = np.concatenate((queued_ends, data_ends))
    all_times = np.concatenate((queued_times, data_times))
    all_rows = np.concatenate((np.full(len(queue), -1, dtype=np.int64), data_rows))
    at = np.searchsorted(all_ends, ack_rel)
    inside = at < len(all_ends)
    matched = np.zeros(len(ack_rows), dtype=bool)
    matched[inside] = (all_ends[at[inside]] == ack_rel[inside]) & (all_rows[at[inside]] < ack_rows[inside])
    sampled = np.flatnonzero(advancing & matched)
    # Kept as an array until the caller has let go of this pass's temporaries (``take_samples``):
    # growing the result's list now would put it above them in the C heap and keep their
    # memory from going back to the system while the result lives (30 MB on 227 MB).
    walk.samples.append((other, times[ack_rows[sampled]] - all_times[at[sampled]]))
    # What the peer's queue holds after these rows: an entry leaves it at the first advancing
    # ACK after it was queued that covers it (the acknowledgements only grow).
    flags_queued = [entry[2] for entry in queue] + [False] * len(data_ends)
    advancing_rows = ack_rows[advancing]
    if len(advancing_rows):
        later = np.searchsorted(advancing_rows, all_rows, side="right") < len(advancing_rows)
        popped = later & (ack_rel[advancing][-1] >= all_ends)
    else:
        popped = np.zeros(len(all_ends), dtype=bool)
    # Only the entries that stay become Python objects: a list of every segment's end and
    # time here would scatter the RTT samples (kept) among freed objects, holding their
    # memory pages (30 MB more after a 227 MB capture).
    peer.unacked.clear()
    for entry in np.flatnonzero(~popped).tolist():
        peer.unacked.append(queue[entry] if entry < len(queue) else
                            (int(all_ends[entry]), float(all_times[entry]), flags_queued[entry]))
    pure = advancing & (columns.lengths[ack_rows] == 0)
    if len(ack_rows):
        peer.acked = int(acked_before[-1])
        walk.last_ack_from[direction] = (float(times[ack_rows[-1]]), bool(pure[-1]))
    return ack_rows, acked_before[1:], scaled, pure


def _data_from(walk, columns: _Columns, own_data, acked_by_other, window_by_other, pure_of_other,
               at_start: _AtStart, direction: int) -> None:
    """``direction``'s data segments ``own_data`` (rows, ends, times) against the other side's
    ACKs: window-full, resends of data already acknowledged, stalls; the sender's state moved on."""
    other = 1 - direction
    sender = walk.senders[direction]
    result = walk.result
    figures = result.directions[direction]
    times, frames, acks, lengths = columns.times, columns.frames, columns.acks, columns.lengths
    data_rows, ends, data_times = own_data
    ack_rows, acked_after = acked_by_other
    _, advertised = window_by_other
    before = np.searchsorted(ack_rows, data_rows)  # the other side's ACKs before each data row
    acked = _latest(acked_after, before, at_start.acked[direction])
    if result.scale_known:
        start_window = at_start.window[direction]
        window = _latest(advertised, before, -1 if start_window is None else start_window)  # -1: none yet
        known = window > 0  # the loop's "if peer_window": neither None nor 0
        figures.window_full += int(np.count_nonzero(known & (ends == acked + window)))
    else:
        window = None
    sizes = lengths[data_rows]
    # Data the receiver had acknowledged before the capture saw it: tshark's (and the loop's)
    # spurious retransmission, on the peer's max ACK and then its last ACK number.
    others = np.flatnonzero(columns.directions == other)
    last = np.searchsorted(others, data_rows) - 1
    last_raw = np.where(last >= 0, acks[others[np.maximum(last, 0)]] if len(others) else 0,
                        at_start.ack_raw[other])
    starts = ends - sizes
    last_rel = starts + ((last_raw - sender.base - starts + HALF_SEQ) % MODULO - HALF_SEQ)
    covered = np.flatnonzero((ends <= acked) & (last_raw != 0) & (ends <= last_rel))
    figures.flagged.extend((int(frame), "spurious_retransmission") for frame in frames[data_rows[covered]])
    figures.data_segments += len(data_rows)
    figures.payload_bytes += int(sizes.sum())
    if figures.first_data_time is None:
        figures.first_data_time = float(data_times[0])
    figures.last_data_time = float(data_times[-1])
    # The state each data segment found: the previous segment's time, smallness and window bound.
    previous_time = np.concatenate(([np.nan if sender.last_data is None else sender.last_data],
                                    data_times[:-1]))
    with np.errstate(invalid="ignore"):
        waits = np.flatnonzero(data_times - previous_time >= MIN_STALL)
    if len(waits):
        small = sizes < figures.mss - 64
        if window is not None:
            bound = (window >= 0) & (ends - acked >= window - figures.mss)
        else:
            bound = np.zeros(len(data_rows), dtype=bool)
        pure_rows, pure = pure_of_other
        last_pure = np.searchsorted(pure_rows, data_rows[waits]) - 1
        for wait, last in zip(waits.tolist(), last_pure.tolist()):
            if last >= 0:
                last_ack = (float(times[pure_rows[last]]), bool(pure[last]))
            else:
                last_ack = at_start.last_ack[other]
            if wait > 0:
                window_bound = bool(bound[wait - 1])
                last_small = (float(data_times[wait - 1]), int(ends[wait - 1])) if small[wait - 1] else None
            else:
                window_bound, last_small = sender.window_bound, sender.last_small
            classify_wait(figures, float(previous_time[wait]), window_bound, last_small, last_ack,
                          float(data_times[wait]), int(frames[data_rows[wait]]))
    # The sender as its last segment here left it.
    last = len(data_rows) - 1
    sender.high = int(ends[last])
    sender.last_data = float(data_times[last])
    sender.last_small = (float(data_times[last]), int(ends[last])) if sizes[last] < figures.mss - 64 else None
    sender.window_bound = window is not None and bool(window[last] >= 0) and \
        int(ends[last]) - int(acked[last]) >= int(window[last]) - figures.mss


def _ack_state(walk, rows, directions, ends_by, high_at_start) -> None:
    """What the loop keeps for tshark's classification of resends (tcp_analysis._resend_kind): when
    each side's high last moved, its last raw ACK number, time and window, and its duplicate ACKs
    since that ACK number last changed."""
    flags = rows["flags"]
    acks = rows["ack"].astype(np.int64)
    windows = rows["window"].astype(np.int64)
    seqs = rows["seq"].astype(np.int64)
    lengths = rows["length"].astype(np.int64)
    for direction in (0, 1):
        sender = walk.senders[direction]
        mine = np.flatnonzero(directions == direction)
        if not len(mine):
            continue
        data_rows, data_ends, data_times = ends_by[direction]
        if len(data_rows):
            sender.high_time = float(data_times[-1])
        my_acks = acks[mine]
        my_windows = windows[mine]
        previous_ack = np.concatenate(([sender.ack_raw], my_acks[:-1]))
        previous_window = np.concatenate(([sender.window_raw], my_windows[:-1]))
        high_before = _latest(data_ends, np.searchsorted(data_rows, mine), high_at_start[direction])
        at_high = (seqs[mine] - sender.base - high_before) % MODULO == 0
        duplicate = ((lengths[mine] == 0) & (my_windows != 0) & (my_windows == previous_window)
                     & (my_acks == previous_ack) & ((flags[mine] & (TCP_SYN | TCP_FIN | TCP_RST)) == 0) & at_high)
        changed = np.flatnonzero(my_acks != previous_ack)
        if len(changed):
            sender.dup_acks = int(np.count_nonzero(duplicate[changed[-1] + 1:]))
        else:
            sender.dup_acks += int(np.count_nonzero(duplicate))
        sender.ack_raw = int(my_acks[-1])
        sender.ack_time = float(rows["time"][mine[-1]])
        sender.window_raw = int(my_windows[-1])
