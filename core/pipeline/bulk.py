"""The engine's bulk path: a block of frames at once, with no Python step for the ordinary ones.

On a large transfer nearly every frame is an in-order segment, or a bare
ACK, of a connection already known; all the engine does with it is move
counters, append one row to the connection's segment record and one entry to
its direction's chunk map, and, only where a PDU or PDV boundary falls in the
segment, hand it to the decoder.  Here those frames are found and applied a
block at a time (the block's header fields come from core/wire/pcap_block.py):

1. Per known connection, vectorised: which frames are *candidates*, those the
   per-frame path would only count if reassembly goes as expected (simple TCP;
   data exactly at the highest sequence number seen so far in its direction; no
   ACK for bytes not yet seen), and what each direction's next sequence number
   should be after every frame.
2. In frame order (a heap merges the connections): the other frames go one at a
   time through ``CaptureEngine.pcap_frame``, after the candidates before them
   are applied at once (array extends of chunk-map entries and segment-record
   rows, counters); after each, the connection's real state is compared with the
   expected one.  While they differ (segments held for a hole, loss evidence) the
   connection is *inactive* and its candidates go one at a time too; when they
   agree again it is active and back in bulk.
3. A direction's decoder sees a segment only where its ``skippable`` credit
   runs out (a bisection over the candidates' byte counts); the segments before
   it are counted and given as one ``skip``, as the per-frame path does.

Tests check the analysis equals the per-frame and reference paths on real
captures, damaged copies and generated messy transfers, with blocks small
enough that every edge falls inside a PDU or a retransmission
(tests/test_engine_fast_path.py).
"""

from __future__ import annotations

import heapq
import struct
from bisect import bisect_left, bisect_right

from dicomtui.core.wire.capture_format import CLOCK_STEP_BACK
from dicomtui.core.wire.duplicates import HASH_MULTIPLIER, flow_hash, identity_hash
from dicomtui.core.wire.packet import LINKTYPE_ETHERNET, parse_tcp_at
from dicomtui.core.wire.tcp import HALF_SEQ, SEQ_MODULO

BLOCK_FRAMES = 8192  # the largest block (a few MB of numpy columns)
FIRST_BLOCK_FRAMES = 256  # blocks start small and double while they go well: a new connection's
# frames are slow until the block after its handshake, so a large first block would waste them
PER_FRAME_STRETCH = 2048  # frames taken one by one after a block with few bulk frames
MIN_BULK_SHARE = 0.5  # below it a block was not worth the vector work
MIN_CONNECTION_FRAMES = 64  # fewer frames of a connection in a block go one at a time (the vector
# set-up of a connection, ~0.1 ms, is worth it only over more frames)
NEW_CONNECTION_FRAMES = 8  # a block ends this many frames after a new connection's first (its
# handshake and A-ASSOCIATE): the next block finds it decided and takes its frames in bulk

try:  # a dependency, but a broken numpy must not stop the analysis: the per-frame path remains
    import numpy as np

    from dicomtui.core.wire.capture_format import walk_record_offsets as walk_records
    from dicomtui.core.wire.pcap_block import decode_block
    from dicomtui.core.wire.tcp_record import ROW_SIZE

    ROW_DTYPE = np.dtype([("time", "<f8"), ("frame", "<u4"), ("seq", "<u4"), ("ack", "<u4"), ("length", "<u4"),
                          ("window", "<u2"), ("flags", "u1"), ("direction", "u1")])
except ImportError:  # pragma: no cover - exercised only where numpy is missing
    np = None


def make_bulk_runner(engine, layout: tuple[str, float, int]) -> BulkRunner | None:
    """A bulk runner for this engine's pcap, or None where numpy is missing."""
    if np is None:
        return None
    return BulkRunner(engine, layout)


class BulkRunner:
    """Runs blocks of a pcap's records through the bulk path (see the module's docstring)."""

    def __init__(self, engine, layout: tuple[str, float, int]) -> None:
        self.engine = engine
        self.endian, self.resolution, _link_type = layout
        self.data = engine.buffers[0]
        self.caplen_at = struct.Struct(self.endian + "I").unpack_from
        self.per_frame_stretch = 0  # how many frames the engine takes one by one before the next block
        self.block_frames = FIRST_BLOCK_FRAMES
        self.blocks = 0
        self.bulk_frames = 0
        self.waited: set[tuple] = set()  # flows a block was cut short for (once each)
        # The last DUPLICATE_FRAMES frames of the blocks, (hashes, bodies, caplens, times, frame numbers,
        # simple): a copy in the next block of a frame applied in bulk must still be recognised.
        self.tail: tuple | None = None
        self.tail_end = 0  # the frame number the tail ends at

    def run(self, offset: int, frame_number: int, tick, tick_every: int) -> tuple[int, int, float | None]:
        """One block from ``offset``; returns (offset after it, last frame number, last frame's time).

        The block ends early where the record walk meets a damaged record (the
        per-frame loop then reports it).  ``per_frame_stretch`` says how many frames
        the engine should take one by one before asking again: none after a block
        that went well, a stretch after one with mostly slow frames (a storm of
        retransmissions is cheaper frame by frame than re-examined block by block).
        """
        engine = self.engine
        if engine.duplicates.count:
            # The capture holds SPAN copies (core/wire/duplicates.py): the per-frame path sets each
            # aside, which needs every frame seen one at a time.
            self.per_frame_stretch = PER_FRAME_STRETCH
            return offset, frame_number, None
        offsets, after = walk_records(self.data, offset, self.block_frames, self.caplen_at)
        if not offsets:
            self.per_frame_stretch = 1
            return offset, frame_number, None
        limits = engine.config.limits
        if (engine.tcp_frames + len(offsets) > engine.record_budget and not engine.record_stopped) \
                or len(engine.table) + 4 * len(offsets) >= 2 * limits.max_connections:
            # The record budget or connection eviction could strike inside the block:
            # only the per-frame path does those at the exact frame.
            self.per_frame_stretch = len(offsets)
            return offset, frame_number, None
        block = decode_block(self.data, offsets, self.endian, self.resolution)
        if engine.time_shift:  # the clock stepped back earlier (engine.CaptureEngine._clock_stepped)
            block.ts += engine.time_shift
        if (block.ts < np.maximum.accumulate(np.concatenate(([engine.newest_time], block.ts)))[:-1]
                - CLOCK_STEP_BACK).any():
            self.per_frame_stretch = len(offsets)  # a step back: the per-frame path moves the times on
            return offset, frame_number, None
        step = _Block(engine, block, frame_number)
        cut = step.new_connection_cut(self.waited)
        if cut is not None and cut < len(offsets):
            step.block = block = block.head(cut)
            after = offsets[cut]
        if self._may_hold_copies(block, frame_number):
            self.per_frame_stretch = len(block.body)
            return offset, frame_number, None
        bulk_count, known = step.run()
        self.blocks += 1
        self.bulk_frames += bulk_count
        count = len(block.body)
        # The next block: large enough to give each connection seen here its minimum of frames
        # (many interleaved connections), doubling while blocks go well.
        enough = min(BLOCK_FRAMES, 2 * MIN_CONNECTION_FRAMES * step.connections_seen)
        if bulk_count < MIN_BULK_SHARE * known:
            # Known connections spent most of the block off the expected state (a storm of
            # reordering or loss): frame by frame is cheaper for a while.
            self.per_frame_stretch = PER_FRAME_STRETCH
            self.block_frames = max(FIRST_BLOCK_FRAMES, enough)
        elif bulk_count < MIN_BULK_SHARE * count and cut is not None:
            # Mostly frames of a connection not known yet (a handshake, detection): a small
            # block soon, when it will be.
            self.per_frame_stretch = 0
            self.block_frames = max(FIRST_BLOCK_FRAMES, enough)
        elif bulk_count < MIN_BULK_SHARE * count:
            # Too few frames per connection for the vector work to pay: frame by frame for a
            # while, then a block sized for the connections.
            self.per_frame_stretch = PER_FRAME_STRETCH
            self.block_frames = max(FIRST_BLOCK_FRAMES, enough)
        else:
            self.per_frame_stretch = 0
            self.block_frames = min(max(2 * self.block_frames, enough), BLOCK_FRAMES)
        last_ts = float(block.ts[-1])
        engine.newest_time = max(engine.newest_time, float(block.ts.max()))
        first = frame_number + 1
        for number in range(first + (-first) % tick_every, frame_number + count + 1, tick_every):
            index = number - first
            tick(number, int(block.body[index]), float(block.ts[index]))
            if engine.tcp_frames > engine.record_budget and not engine.record_stopped:
                engine._check_record_budget(number)
        return after, frame_number + count, last_ts

    def _may_hold_copies(self, block, frame_number: int) -> bool:
        """Whether two frames of the block, or one of it and one of the frames before it within the
        duplicate filter's reach, have the same packet identity (``duplicates.identity_hash``; equal
        digests decide nothing, the per-frame path does).  If so the tail's frames applied in bulk
        are remembered in the engine's duplicate filter and the block goes frame by frame (as the
        per-frame path, which shows the filter every frame, would have them); else the tail moves on."""
        duplicates = self.engine.duplicates
        reach = frame_number + 1 - duplicates.frames
        hashes = _identity_hashes(block, self.data)
        frames = np.arange(frame_number + 1, frame_number + 1 + len(hashes), dtype=np.int64)
        tail = self.tail
        if tail is not None:
            keep = tail[4] >= reach
            tail = tuple(column[keep] for column in tail)
        every = [hashes] if tail is None else [tail[0], hashes]
        if self.tail_end != frame_number:  # frames went the per-frame way since: the filter has them
            every.append(np.array([identity_hash(key) for key in duplicates.keys_since(reach)], dtype=np.uint64))
        every = np.sort(np.concatenate(every))  # (a sort: np.unique costs several times more here)
        if (every[1:] == every[:-1]).any():
            duplicates.wake(frame_number + 1)
            if tail is not None:
                self._remember(tail)
            self.tail = None
            return True
        columns = (hashes, block.body, block.caplen, block.ts, frames, block.simple)
        self.tail = columns if tail is None else tuple(np.concatenate(pair) for pair in zip(tail, columns))
        self.tail = tuple(column[-duplicates.frames:] for column in self.tail)
        self.tail_end = frame_number + len(hashes)
        return False

    def _remember(self, tail) -> None:
        """Show the duplicate filter the tail's frames, as the per-frame path would have (which
        skips a simple frame of a connection that is not DICOM)."""
        engine = self.engine
        table = engine.table
        for body, caplen, ts, frame, simple in zip(tail[1].tolist(), tail[2].tolist(), tail[3].tolist(),
                                                     tail[4].tolist(), tail[5].tolist()):
            segment = parse_tcp_at(self.data, body, caplen, LINKTYPE_ETHERNET)
            if segment is None:
                continue
            entry = table.get((segment[1], segment[3], segment[2], segment[4]))
            if simple and entry is not None and entry[0].ignored:
                continue
            engine.duplicates.remember(_identity_key(segment), ts, 0, body + segment[8], segment[9], frame)


def _identity_key(segment: tuple) -> tuple:
    """``DuplicateFilter``'s key of a ``parse_tcp_at`` answer, as the engine builds it."""
    family, src, dst, sport, dport, seq, ack, flags, _offset, length, missing, window, identity = segment
    return (identity, src, dst, sport, dport, seq, ack, flags, window, length + missing)


def _identity_hashes(block, data):
    """``identity_hash`` of every frame of the block: columns for the simple frames, the general
    walk for the others (a routed copy carries a VLAN tag its original has not); a frame that is
    no TCP gets a digest of its own place in the file."""
    multiplier = np.uint64(HASH_MULTIPLIER)
    hashes = np.array([flow_hash(*flow) for flow in block.flows], dtype=np.uint64)[block.flow]
    for column in (block.seq.astype(np.uint64), block.ack.astype(np.uint64),
                   block.flags.astype(np.uint64) << np.uint64(16) | block.window.astype(np.uint64),
                   block.identity, block.length.astype(np.uint64)):
        hashes = hashes * multiplier + column
    for index in np.flatnonzero(~block.simple).tolist():
        body = int(block.body[index])
        segment = parse_tcp_at(data, body, int(block.caplen[index]), LINKTYPE_ETHERNET)
        hashes[index] = identity_hash(_identity_key(segment)) if segment is not None else ~np.uint64(body)
    return hashes


class _Direction:
    """One direction of a connection in the block: its in-sequence data segments and the decoder's credit."""

    __slots__ = (
        "applied",
        "columns",
        "consumed",
        "cumulative",
        "frames",
        "lengths",
        "payloads",
        "positions",
        "seqs",
        "sink",
        "stream_offsets",
        "tcp_direction",
        "tracked",
        "version",
    )

    def __init__(self, tracked, tcp_direction: int, positions, frames, lengths, stream_offsets, payloads,
                 seqs) -> None:
        self.tracked = tracked
        self.tcp_direction = tcp_direction
        self.sink = tracked.sinks[tcp_direction]
        self.positions = positions.tolist()  # positions in the connection's frame list
        # Python lists for what the boundary loop reads one value at a time (a numpy scalar
        # costs more to read than a list item, and bisect on a list less than searchsorted).
        self.frames = frames.tolist()  # block indices
        self.lengths = lengths.tolist()
        self.cumulative = np.cumsum(lengths).tolist()
        self.stream_offsets = stream_offsets.tolist()
        self.payloads = payloads.tolist()
        self.seqs = seqs.tolist()
        # The chunk map's columns for every segment, as bytes in its arrays' native types ('Q',
        # 'Q', 'I', 'I', 'd'; see ChunkMap): applying a run of segments is a slice of each.
        self.columns = (stream_offsets.astype(np.uint64).tobytes(), payloads.astype(np.uint64).tobytes(),
                        lengths.astype(np.uint32).tobytes())
        self.consumed = 0  # segments gone through the credit bookkeeping (or the per-frame path)
        self.applied = 0  # segments in the chunk map and the reassembler's counters
        self.version = 0  # bumped when queued boundaries no longer hold


class _Connection:
    """A connection's frames in the block, and which of them may go in bulk.

    A frame is a *candidate* when, with the reassembly state the frames before it
    leave if nothing goes wrong, the per-frame path would only count it: simple
    TCP, its data (if any) exactly at the highest sequence number seen so far in
    its direction, and no ACK for bytes not yet seen.  Candidates go in bulk while
    the connection is *active*, that is while its real state is the expected one
    (checked after every frame that went the per-frame way); the rest go one at a
    time, and so do all frames while it is not active.
    """

    __slots__ = (
        "active",
        "candidate",
        "candidates",
        "decoder",
        "directions",
        "epoch",
        "expected",
        "flushed",
        "frame_list",
        "frames",
        "ignored",
        "number",
        "noncandidates",
        "queued",
        "rows",
        "tcp_directions",
        "tracked",
    )

    def __init__(self, number: int, tracked, frames) -> None:
        self.number = number
        self.tracked = tracked
        self.decoder = tracked.decoder
        self.ignored = tracked.ignored
        self.frames = frames  # block indices, in order
        self.frame_list = frames.tolist()
        self.tcp_directions = None  # numpy, per position
        self.candidate = None  # numpy bool per position
        self.candidates: list[int] = []  # positions of the candidates
        self.expected: list[list[int]] = []  # per TCP direction: next_seq expected after each position
        self.directions: list[_Direction] = []
        self.rows = b""
        self.noncandidates: list[int] = []  # positions of the frames that are not candidates
        self.active = False
        self.flushed = 0  # positions before this are applied (or went the per-frame way)
        self.epoch = 0  # bumped when it becomes active again (per-frame entries then lapse)
        self.queued = -1  # position of the candidate queued to go the per-frame way (inactive only)


class _Block:
    SLOW, BOUNDARY, ONE_BY_ONE = 0, 1, 2  # kinds of queued work, by block index

    def __init__(self, engine, block, frame_number: int) -> None:
        self.engine = engine
        self.block = block
        self.first = frame_number + 1  # frame number of block index 0
        self.entries = [engine.table.get(key) for key in block.flows]
        self.bulk = 0
        self.connections_seen = 0  # known connections with frames in the block
        self.times = block.ts.tolist()

    def new_connection_cut(self, waited: set[tuple]) -> int | None:
        """Where to end the block so a connection it starts is decided by the next one (or None).

        A connection not yet known to be DICOM or not takes no bulk frames; ending
        the block shortly after its first frame lets the rest of them go in bulk in
        the next.  Once per flow, so one that stays undecided (no data) cannot keep
        every block short.
        """
        unknown = [flow for flow, entry in enumerate(self.entries)
                   if (entry is None or (entry[0].decoder is None and not entry[0].ignored))
                   and self.block.flows[flow] not in waited]
        if not unknown:
            return None
        if len(waited) > 100_000:
            waited.clear()
        waited.update(self.block.flows[flow] for flow in unknown)
        first = int(np.argmax(np.isin(self.block.flow, unknown)))
        return first + NEW_CONNECTION_FRAMES

    # -- which frames are candidates ---------------------------------------------------------

    def run(self) -> tuple[int, int]:
        """Apply the block; returns how many frames went in bulk, of how many of known connections."""
        block = self.block
        count = len(block.body)
        connection_of_flow = np.full(len(self.entries), -1, dtype=np.int64)
        direction_of_flow = np.zeros(len(self.entries), dtype=np.int64)
        trackeds: dict[int, int] = {}
        known_trackeds = []
        for flow, entry in enumerate(self.entries):
            if entry is None:
                continue
            tracked, direction = entry
            if not tracked.ignored and (tracked.decoder is None or tracked.sinks[0].transform is not None or not all(
                    reassembler.started for reassembler in tracked.reassemblers) or tracked.held):
                continue  # undecided, transformed, a direction not started or segments held: the per-frame path
            number = trackeds.setdefault(id(tracked), len(known_trackeds))
            if number == len(known_trackeds):
                known_trackeds.append(tracked)
            connection_of_flow[flow] = number
            direction_of_flow[flow] = direction
        connections: list[_Connection] = []
        known = 0
        owner = np.full(count, -1, dtype=np.int64)  # connection number of each frame (-1: none)
        candidate = np.zeros(count, dtype=bool)
        if known_trackeds:
            frame_connection = connection_of_flow[block.flow]
            frame_direction = direction_of_flow[block.flow]
            order = np.argsort(frame_connection, kind="stable")
            bounds = np.searchsorted(frame_connection[order], np.arange(len(known_trackeds) + 1))
            known = int(bounds[-1] - bounds[0])
            known = 0
            self.connections_seen = len(known_trackeds)
            for number, tracked in enumerate(known_trackeds):
                frames = order[bounds[number]: bounds[number + 1]]
                if len(frames) < MIN_CONNECTION_FRAMES:
                    continue  # a few frames here: one at a time costs less than the vector set-up
                connection = _Connection(len(connections), tracked, frames)
                self._candidates(connection, frame_direction[frames])
                owner[frames] = connection.number
                candidate[frames] = connection.candidate
                connections.append(connection)
                known += len(frames)
        self._process(connections, owner, candidate)
        self.engine.tcp_frames += self.bulk
        return self.bulk, known

    def _candidates(self, connection: _Connection, tcp_directions) -> None:
        block = self.block
        frames = connection.frames
        tracked = connection.tracked
        simple = block.simple[frames]
        connection.tcp_directions = tcp_directions
        if connection.ignored:
            connection.candidate = simple
            connection.candidates = np.flatnonzero(simple).tolist()
            connection.noncandidates = np.flatnonzero(~simple).tolist()
            connection.expected = []
            connection.active = self._valid(connection, -1)
            return
        lengths = block.length[frames]
        seqs = block.seq[frames]
        candidate = simple.copy()
        highest_after = []  # per direction: relative sequence number reached after each position
        for tcp_direction in (0, 1):
            reassembler = tracked.reassemblers[tcp_direction]
            mine = (tcp_directions == tcp_direction) & (lengths > 0)
            relative = (seqs - reassembler.next_seq + HALF_SEQ) % SEQ_MODULO - HALF_SEQ
            ends = np.where(mine, relative + lengths, 0)
            highest = np.maximum.accumulate(np.maximum(ends, 0))
            before = np.concatenate(([0], highest[:-1]))
            candidate &= ~mine | (relative == before)
            highest_after.append(highest)
            connection.expected.append(((reassembler.next_seq + highest) % SEQ_MODULO).tolist())
        acks = (block.flags[frames] & 0x10) != 0
        for tcp_direction in (0, 1):
            other = tracked.reassemblers[1 - tcp_direction]
            mine = np.flatnonzero(acks & (tcp_directions == tcp_direction))
            if not mine.size:
                continue
            reached = np.concatenate(([0], highest_after[1 - tcp_direction]))[mine]  # before each ACK
            expected = (other.next_seq + reached) % SEQ_MODULO
            ahead = (block.ack[frames[mine]] - expected + HALF_SEQ) % SEQ_MODULO - HALF_SEQ
            candidate[mine[(ahead > 0) & (ahead <= HALF_SEQ // 2)]] = False  # acknowledged() must run
        connection.candidate = candidate
        connection.candidates = np.flatnonzero(candidate).tolist()
        connection.noncandidates = np.flatnonzero(~candidate).tolist()
        for tcp_direction in (0, 1):
            positions = np.flatnonzero(candidate & (tcp_directions == tcp_direction) & (lengths > 0))
            indices = frames[positions]
            reassembler = tracked.reassemblers[tcp_direction]
            relative = (seqs[positions] - reassembler.next_seq) % SEQ_MODULO
            state = _Direction(tracked, tcp_direction, positions, indices, block.length[indices],
                               reassembler.next_offset + relative, block.payload[indices], block.seq[indices])
            state.columns += ((indices + self.first).astype(np.uint32).tobytes(), block.ts[indices].tobytes())
            connection.directions.append(state)
        rows = np.empty(len(frames), dtype=ROW_DTYPE)
        rows["time"] = block.ts[frames]
        rows["frame"] = frames + self.first
        rows["seq"] = seqs
        rows["ack"] = block.ack[frames]
        rows["length"] = lengths
        rows["window"] = block.window[frames]
        rows["flags"] = block.flags[frames]
        rows["direction"] = tcp_directions
        connection.rows = rows.tobytes()  # every frame's segment-record row; candidates' are used
        connection.active = self._valid(connection, -1)

    def _valid(self, connection: _Connection, position: int) -> bool:
        """Whether the connection's real state after ``position`` (-1: the block's start) is the expected one."""
        tracked = connection.tracked
        if not connection.ignored:
            # Reassembly first: while a connection is inactive this is what fails, cheaply.
            for tcp_direction, reassembler in enumerate(tracked.reassemblers):
                expected = connection.expected[tcp_direction][position] if position >= 0 else reassembler.next_seq
                if reassembler.pending or reassembler.loss_evidence is not None or reassembler.fin_seq is not None \
                        or reassembler.next_seq != expected:
                    return False
            if tracked.decoder is not connection.decoder or tracked.held:
                return False
        return self.engine.table.get(tracked.key, (None,))[0] is tracked and tracked.ignored == connection.ignored

    # -- applying them, in frame order ----------------------------------------------------------

    def _process(self, connections: list[_Connection], owner, candidate) -> None:
        """Every frame of the block, in frame order: candidates of active connections in bulk,
        the rest through ``CaptureEngine.pcap_frame``; decoder calls where credit runs out."""
        block = self.block
        heap: list[tuple] = []  # (block index, kind, connection number, ...)
        for connection in connections:
            if connection.active:
                self._apply_ahead(connection, 0)
                for tcp_direction in range(len(connection.directions)):
                    self._queue_boundary(heap, connection, tcp_direction)
            else:
                self._queue_one_by_one(heap, connection, -1)
        slow = np.flatnonzero(~candidate)
        owners = owner[slow].tolist()
        bodies = block.body[slow].tolist()
        caplens = block.caplen[slow].tolist()
        times = block.ts[slow].tolist()
        for position, index in enumerate(slow.tolist()):
            while heap and heap[0][0] < index:
                self._pop(heap, connections, index)
            number = owners[position]
            if number < 0:  # a frame of no connection the block knows
                self.engine.pcap_frame(self.first + index, times[position], bodies[position], caplens[position])
                continue
            connection = connections[number]
            where = bisect_left(connection.frame_list, index, connection.flushed)
            credits = None
            if connection.active:
                self._apply(connection, where)
                credits = [state.sink.credit for state in connection.directions]
            self.engine.pcap_frame(self.first + index, times[position], bodies[position], caplens[position])
            self._after_one(heap, connection, where, credits)
        while heap:
            self._pop(heap, connections, len(block.body))
        for connection in connections:
            if connection.active:
                self._apply(connection, len(connection.frame_list))

    def _pop(self, heap, connections: list[_Connection], limit: int) -> None:
        """The work at the top of the heap; ``limit``: block index of the next slow frame."""
        item = heapq.heappop(heap)
        index, kind, number = item[0], item[1], item[2]
        connection = connections[number]
        if kind == self.BOUNDARY:
            tcp_direction, segment, version = item[3], item[4], item[5]
            state = connection.directions[tcp_direction]
            if connection.active and state.version == version:
                self._boundary(heap, connection, state, segment)
            return
        # ONE_BY_ONE: a candidate of a connection not active, through the per-frame path
        position, epoch = item[3], item[4]
        if connection.active or connection.epoch != epoch:
            return
        connection.queued = -1
        if heap and heap[0][0] < limit:
            limit = heap[0][0]
        # The connection's candidates up to the next other work, one after the other without
        # the heap, until its state is the expected one again.
        block = self.block
        bodies, caplens, times, first = block.body, block.caplen, self.times, self.first
        pcap_frame, valid = self.engine.pcap_frame, self._valid
        candidates, frame_list = connection.candidates, connection.frame_list
        at = bisect_left(candidates, position)
        while True:
            pcap_frame(first + index, times[index], int(bodies[index]), int(caplens[index]))
            at += 1
            if at >= len(candidates) or frame_list[candidates[at]] > limit or valid(connection, position):
                break
            connection.flushed = position + 1
            position = candidates[at]
            index = frame_list[position]
        self._after_one(heap, connection, position)

    def _after_one(self, heap, connection: _Connection, position: int, credits: list | None = None) -> None:
        """After a frame of ``connection`` went the per-frame way: is the state still (again) as expected?

        ``credits``: the directions' credits before the frame, when the connection was
        active (queued boundaries still hold if the frame changed none).
        """
        connection.flushed = position + 1
        was_active = connection.active
        connection.active = self._valid(connection, position)
        if connection.active:
            if not was_active:
                connection.epoch += 1
                connection.queued = -1
                for state in connection.directions:
                    # The segments up to here went the per-frame way, credit included.
                    done = bisect_right(state.positions, position)
                    state.consumed = state.applied = done
            self._apply_ahead(connection, position + 1)
            if credits is not None and all(
                    state.sink.credit == credit for state, credit in zip(connection.directions, credits)):
                return  # a retransmission, a window update: the queued boundaries stand
            for tcp_direction, state in enumerate(connection.directions):
                state.version += 1  # the frame may have changed the credit
                self._queue_boundary(heap, connection, tcp_direction)
            return
        for state in connection.directions:
            state.version += 1
        if connection.queued <= position:
            self._queue_one_by_one(heap, connection, position)

    def _queue_one_by_one(self, heap, connection: _Connection, position: int) -> None:
        """Queue the connection's next candidate after ``position`` to go the per-frame way."""
        candidates = connection.candidates
        at = bisect_right(candidates, position)
        if at < len(candidates):
            following = candidates[at]
            connection.queued = following
            heapq.heappush(heap, (connection.frame_list[following], self.ONE_BY_ONE, connection.number,
                                  following, connection.epoch))
        else:
            connection.queued = len(connection.frame_list)

    def _queue_boundary(self, heap, connection: _Connection, tcp_direction: int) -> None:
        """Queue the direction's next segment the decoder must see: where the credit it gave runs out.

        Segments that fit in the credit are only counted (``owed``, in ``_apply``), as the
        per-frame path does.
        """
        state = connection.directions[tcp_direction]
        done = state.consumed
        if done >= len(state.frames):
            return
        reach = (state.cumulative[done - 1] if done else 0) + state.sink.credit
        segment = bisect_right(state.cumulative, reach, done)
        if segment < len(state.frames):
            heapq.heappush(heap, (state.frames[segment], self.BOUNDARY, connection.number, tcp_direction,
                                  segment, state.version))

    def _boundary(self, heap, connection: _Connection, state: _Direction, segment: int) -> None:
        """Hand the decoder the segment (``_DirectionSink.on_data``'s second half)."""
        position = state.positions[segment]
        self._apply(connection, position + 1, credit_stop=(state, segment))
        sink = state.sink
        tracked = connection.tracked
        decoder = tracked.decoder
        direction = state.tcp_direction ^ tracked.swap
        if sink.owed:
            decoder.skip(direction, sink.owed)
            sink.owed = 0
        payload = state.payloads[segment]
        events = decoder.receive_data(direction, state.stream_offsets[segment],
                                      self.engine.views[0][payload: payload + state.lengths[segment]])
        state.consumed = segment + 1
        if events:
            self.engine.apply(events)
        if tracked.decoder is decoder:
            skippable = getattr(decoder, "skippable", None)
            sink.credit = skippable(direction) if skippable is not None else 0
        self._queue_boundary(heap, connection, state.tcp_direction)

    def _apply_ahead(self, connection: _Connection, position: int) -> None:
        """Apply the candidates from ``position`` up to the connection's next other frame now (credit
        aside): the decoder's boundaries in between then cost only its call."""
        following = bisect_left(connection.noncandidates, position)
        stop = connection.noncandidates[following] if following < len(connection.noncandidates) \
            else len(connection.frame_list)
        if stop > connection.flushed:
            self._apply(connection, stop, count_credit=False)

    def _apply(self, connection: _Connection, stop: int, credit_stop: tuple | None = None,
               count_credit: bool = True) -> None:
        """Apply the candidates from ``connection.flushed`` up to position ``stop`` at once.

        Chunk-map entries and reassembler counters of their data, segment-record rows,
        counters, and the credit their bytes use up (except, for a boundary, the segment
        the decoder is about to see).  Nothing reads these before the connection's next
        frame that goes another way, except the decoder, which asks only about bytes it
        was given.  Every position in the range is a candidate: a frame that is not
        is processed (and ``flushed`` moved past it) before any later one.
        """
        start = connection.flushed
        tracked = connection.tracked
        if stop > start:
            connection.flushed = stop
            self.bulk += stop - start
            last = connection.frame_list[stop - 1]
            tracked.last_frame = self.first + last
            tracked.last_time = self.times[last]
            if connection.ignored:
                return
            tracked.record(connection.rows[start * ROW_SIZE: stop * ROW_SIZE])
            for state in connection.directions:
                done = state.applied
                end = bisect_left(state.positions, stop, done)
                if end > done:
                    self._append_segments(tracked, state, done, end)
        if not count_credit:
            return
        for state in connection.directions:
            done = state.consumed
            if credit_stop is not None and credit_stop[0] is state:
                end = credit_stop[1]
            else:
                end = bisect_left(state.positions, stop, done)
            if end > done:
                skipped = state.cumulative[end - 1] - (state.cumulative[done - 1] if done else 0)
                state.sink.credit -= skipped
                state.sink.owed += skipped
                state.consumed = end

    def _append_segments(self, tracked, state: _Direction, start: int, end: int) -> None:
        """Segments ``start`` to ``end`` of a direction into its chunk map and reassembler counters."""
        stream_offsets, file_offsets, lengths, frames, timestamps = state.columns
        last_length = state.lengths[end - 1]
        following = state.stream_offsets[end - 1] + last_length
        state.sink.chunks.extend_packed(stream_offsets[start * 8: end * 8], file_offsets[start * 8: end * 8],
                                        lengths[start * 4: end * 4], frames[start * 4: end * 4],
                                        timestamps[start * 8: end * 8], following)
        tracked.reassemblers[state.tcp_direction].delivered_in_order(
            following, (state.seqs[end - 1] + last_length) & 0xFFFFFFFF,
            state.cumulative[end - 1] - (state.cumulative[start - 1] if start else 0))
        tracked.has_data = True
        state.applied = end
