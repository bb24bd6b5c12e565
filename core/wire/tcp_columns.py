"""The TCP analysis of a clean record, column-wise (numpy): the loop's results without its loop.

``tcp_analysis._Walk.rows`` is the reference: one Python step per segment,
0.7-1 µs each, 0.2 s for the 220,000 segments of a 227 MB transfer.  Once the
handshake is over, most long records are plain: every data segment starts
where its direction's data so far ended (no retransmission, no hole).  For
those everything the loop tracks has a closed form over the columns: the
highest byte sent and the highest acknowledged are running maxima, the window
in force is the last one advertised, an RTT sample is an advancing ACK equal to
the end of a segment sent before it, a stall candidate is a gap between one
data segment and the next.  ``continue_walk`` applies the rows from ``start``
to the walk's state that way, or declines (returns False, the caller starts
over with the loop) when a row is anything else: a SYN, a retransmission, a
segment beyond a hole, more than 1 GiB in one direction (sequence wrap-around
is then the loop's business).  Tests compare both on every fixture and on
generated transfers (tests/test_tcp_columns.py).
"""

from __future__ import annotations

import numpy as np

from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from .tcp import HALF_SEQ
from .tcp_stalls import MIN_STALL, classify_wait

ROWS = np.dtype([("time", "<f8"), ("frame", "<u4"), ("seq", "<u4"), ("ack", "<u4"), ("length", "<u4"),
                 ("window", "<u2"), ("flags", "u1"), ("direction", "u1")])
MODULO = 1 << 32
LARGEST = 1 << 30  # bytes one direction may reach column-wise


def _last_before(mask: np.ndarray) -> np.ndarray:
    """For every row, the index of the last row before it where ``mask`` holds (-1: none)."""
    positions = np.where(mask, np.arange(len(mask)), -1)
    running = np.maximum.accumulate(positions)
    return np.concatenate(([-1], running[:-1]))


def continue_walk(walk, record, start: int) -> bool:
    rows = np.frombuffer(record.data, dtype=ROWS)[start:]
    if not len(rows):
        return False
    flags = rows["flags"]
    if (flags & TCP_SYN).any():
        return False
    result = walk.result
    senders = walk.senders
    # The state the loop's rows left, read before the ACK pass below moves it on.
    acked_at_start = [sender.acked for sender in senders]
    window_at_start = [sender.peer_window for sender in senders]
    last_ack_at_start = list(walk.last_ack_from)
    times = rows["time"]
    frames = rows["frame"].astype(np.int64)
    seqs = rows["seq"].astype(np.int64)
    acks = rows["ack"].astype(np.int64)
    lengths = rows["length"].astype(np.int64)
    windows = rows["window"].astype(np.int64)
    directions = (rows["direction"] ^ record.swap).astype(np.int64)
    has_ack = (flags & TCP_ACK) != 0
    # -- data: in order, from where each direction had got to ------------------------------------
    ends_by = []  # per direction: (row indices of its data, their end offsets, their times)
    for direction in (0, 1):
        sender = senders[direction]
        rows_of = np.flatnonzero((directions == direction) & (lengths > 0))
        sizes = lengths[rows_of]
        ends = sender.high + np.cumsum(sizes)
        starts = ends - sizes
        if len(ends) and ends[-1] >= LARGEST:
            return False
        if ((seqs[rows_of] - sender.base - starts) % MODULO).any():
            return False  # a retransmission or a segment beyond a hole
        ends_by.append((rows_of, ends, times[rows_of]))
    # (The handshake is the loop's: the walk settles only once it is done or cannot be.)
    # -- idle gaps and segment counts ----------------------------------------------------------------
    previous = np.concatenate(([walk.previous_time if walk.previous_time is not None else np.nan], times[:-1]))
    with np.errstate(invalid="ignore"):
        idle = np.flatnonzero(times - previous >= walk.idle_gap)
    for row in idle.tolist():
        result.idle_gaps.append((int(frames[row]), float(previous[row]), float(times[row] - previous[row])))
    walk.previous_time = float(times[-1])
    figures_by = result.directions
    for direction in (0, 1):
        figures_by[direction].segments += int(np.count_nonzero(directions == direction))
    # -- each direction's ACKs of the other's data -----------------------------------------------
    acked_by = {}  # data sender -> (ACK row indices, acknowledged offset after each)
    window_by = {}  # data sender -> (ACK row indices, window they advertised)
    pure_by = {}  # ACK sender -> (ACK row indices, pure-and-advancing flags)
    for direction in (0, 1):
        other = 1 - direction
        peer = senders[other]
        figures = figures_by[direction]
        peer_figures = figures_by[other]
        ack_rows = np.flatnonzero((directions == direction) & has_ack)
        data_rows, data_ends, data_times = ends_by[other]
        # The peer's high when each ACK was sent: its data ends so far.
        sent = np.searchsorted(data_rows, ack_rows)
        high = np.where(sent > 0, data_ends[np.maximum(sent - 1, 0)], peer.high)
        ack_rel = high + ((acks[ack_rows] - peer.base - high + HALF_SEQ) % MODULO - HALF_SEQ)
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
        peer_figures.rtt_samples.extend((times[ack_rows[sampled]] - all_times[at[sampled]]).tolist())
        # (The walk ends here: the senders' queues and counters need no final values.)
        pure = advancing & (lengths[ack_rows] == 0)
        acked_by[other] = (ack_rows, acked_before[1:])
        window_by[other] = (ack_rows, scaled)
        pure_by[direction] = (ack_rows, pure)
    # -- each direction's data: window-full, stalls --------------------------------------------------
    for direction in (0, 1):
        other = 1 - direction
        sender = senders[direction]
        figures = figures_by[direction]
        data_rows, ends, data_times = ends_by[direction]
        if not len(data_rows):
            continue
        ack_rows, acked_after = acked_by[direction]
        _, advertised = window_by[direction]
        before = np.searchsorted(ack_rows, data_rows)  # the other side's ACKs before each data row
        acked = np.where(before > 0, acked_after[np.maximum(before - 1, 0)], acked_at_start[direction])
        if result.scale_known:
            start_window = window_at_start[direction]
            window = np.where(before > 0, advertised[np.maximum(before - 1, 0)],
                              -1 if start_window is None else start_window)  # -1: none advertised yet
            known = window > 0  # the loop's "if peer_window": neither None nor 0
            figures.window_full += int(np.count_nonzero(known & (ends == acked + window)))
        else:
            window = None
        sizes = lengths[data_rows]
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
            pure_rows, pure = pure_by[other]
            last_pure = np.searchsorted(pure_rows, data_rows[waits]) - 1
            for wait, last in zip(waits.tolist(), last_pure.tolist()):
                if last >= 0:
                    last_ack = (float(times[pure_rows[last]]), bool(pure[last]))
                else:
                    last_ack = last_ack_at_start[other]
                if wait > 0:
                    window_bound = bool(bound[wait - 1])
                    last_small = (float(data_times[wait - 1]), int(ends[wait - 1])) if small[wait - 1] else None
                else:
                    window_bound, last_small = sender.window_bound, sender.last_small
                classify_wait(figures, float(previous_time[wait]), window_bound, last_small, last_ack,
                          float(data_times[wait]), int(frames[data_rows[wait]]))
    return True
