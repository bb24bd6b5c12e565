"""The engine's bulk path: a block of frames at once, with no Python step for the ordinary ones.

On a large transfer nearly every frame is an in-order segment, or a bare
ACK, of a connection already known; all the engine does with it is move
counters, append one row to the connection's segment record and one entry to
its direction's chunk map, and, only where a PDU or PDV boundary falls in the
segment, hand it to the decoder.  Here those frames are found and applied a
block at a time (the block's header fields come from core/wire/pcap_block.py):

1. Each connection of the block is *in bulk* from the block's start up to its
   first frame that needs more than that (not a simple TCP frame, a segment
   out of sequence, an ACK for bytes not yet seen, which may mean loss): its
   *break*.  Connections not yet decided, and those with reassembly state (held
   segments, loss evidence, a FIN), take no bulk frames.
2. Everything else, the *slow* frames, goes through ``CaptureEngine.pcap_frame``
   one at a time, in frame order, merged with the decoder calls of the bulk
   stretches (a heap by frame), so PDUs, messages and findings come out in the
   order the per-frame path makes them.  A connection's bulk stretch is applied
   in full before its first slow frame.
3. A direction's decoder sees a segment only where its ``skippable`` credit
   runs out (a bisection over the stretch's byte counts); the segments before
   it are added to the chunk map with array extends and given as one ``skip``.

Tests check the analysis equals the per-frame and reference paths on real
captures, damaged copies and generated messy transfers
(tests/test_engine_fast_path.py).
"""

from __future__ import annotations

import heapq
import struct
from bisect import bisect_right

from dicomtui.core.wire.tcp import HALF_SEQ, SEQ_MODULO

BLOCK_FRAMES = 8192  # the largest block (a few MB of numpy columns)
FIRST_BLOCK_FRAMES = 256  # blocks start small and double while they go well: a new connection's
# frames are slow until the block after its handshake, so a large first block would waste them
PER_FRAME_STRETCH = 4096  # frames taken one by one after a block with few bulk frames
MIN_BULK_SHARE = 0.5  # below it a block was not worth the vector work
NEW_CONNECTION_FRAMES = 8  # a block ends this many frames after a new connection's first (its
# handshake and A-ASSOCIATE): the next block finds it decided and takes its frames in bulk

try:  # a dependency, but a broken numpy must not stop the analysis: the per-frame path remains
    import numpy as np

    from dicomtui.core.wire.pcap_block import decode_block, walk_records

    ROW_DTYPE = np.dtype([("time", "<f8"), ("frame", "<u4"), ("seq", "<u4"), ("ack", "<u4"), ("length", "<u4"),
                          ("window", "<u2"), ("flags", "u1"), ("direction", "u1")])
except ImportError:  # pragma: no cover - exercised only where numpy is missing
    np = None


def make_bulk_runner(engine, layout: tuple[str, float, int]) -> "BulkRunner | None":
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

    def run(self, offset: int, frame_number: int, tick, tick_every: int) -> tuple[int, int, float | None]:
        """One block from ``offset``; returns (offset after it, last frame number, last frame's time).

        The block ends early where the record walk meets a damaged record (the
        per-frame loop then reports it).  ``per_frame_stretch`` says how many frames
        the engine should take one by one before asking again: none after a block
        that went well, a stretch after one with mostly slow frames (a storm of
        retransmissions is cheaper frame by frame than re-examined block by block).
        """
        engine = self.engine
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
        step = _Block(engine, block, frame_number)
        cut = step.new_connection_cut(self.waited)
        if cut is not None and cut < len(offsets):
            step.block = block = block.head(cut)
            after = offsets[cut]
        bulk_count, known = step.run()
        self.blocks += 1
        self.bulk_frames += bulk_count
        count = len(block.body)
        if bulk_count < MIN_BULK_SHARE * known:
            # Known connections broke their stretches early (reordering, loss): frame by frame
            # is cheaper for a while.
            self.per_frame_stretch = PER_FRAME_STRETCH
            self.block_frames = FIRST_BLOCK_FRAMES
        elif bulk_count < MIN_BULK_SHARE * count:
            # Mostly frames of connections not known yet (a handshake, detection): a small
            # block soon, when they will be.
            self.per_frame_stretch = 0
            self.block_frames = FIRST_BLOCK_FRAMES
        else:
            self.per_frame_stretch = 0
            self.block_frames = min(2 * self.block_frames, BLOCK_FRAMES)
        last_ts = float(block.ts[-1])
        first = frame_number + 1
        for number in range(first + (-first) % tick_every, frame_number + count + 1, tick_every):
            index = number - first
            tick(number, int(block.body[index]), float(block.ts[index]))
            if engine.tcp_frames > engine.record_budget and not engine.record_stopped:
                engine._check_record_budget(number)
        return after, frame_number + count, last_ts


class _Direction:
    """One direction of a connection in bulk: its data segments in the stretch and the decoder's credit."""

    __slots__ = ("tracked", "tcp_direction", "sink", "frames", "lengths", "cumulative", "stream_offsets",
                 "payloads", "consumed")

    def __init__(self, tracked, tcp_direction: int, frames, lengths, stream_start: int, payloads) -> None:
        self.tracked = tracked
        self.tcp_direction = tcp_direction
        self.sink = tracked.sinks[tcp_direction]
        cumulative = np.cumsum(lengths)
        self.stream_offsets = stream_start + cumulative - lengths
        # Python lists for what the boundary loop reads one value at a time (a numpy scalar
        # costs more to read than a list item, and bisect on a list less than searchsorted).
        self.frames = frames.tolist()  # block indices of the stretch's data segments
        self.lengths = lengths.tolist()
        self.cumulative = cumulative.tolist()
        self.payloads = payloads  # file offsets of their payloads (numpy; read once a boundary)
        self.consumed = 0  # bytes of the stretch gone through the credit bookkeeping


class _Block:
    def __init__(self, engine, block, frame_number: int) -> None:
        self.engine = engine
        self.block = block
        self.first = frame_number + 1  # frame number of block index 0
        self.entries = [engine.table.get(key) for key in block.flows]

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

    # -- which frames are in bulk ------------------------------------------------------------

    def run(self) -> tuple[int, int]:
        """Apply the block; returns how many frames went in bulk, of how many of known connections."""
        engine, block = self.engine, self.block
        count = len(block.body)
        entries = self.entries
        connection_of_flow = np.full(len(entries), -1, dtype=np.int64)
        direction_of_flow = np.zeros(len(entries), dtype=np.int64)
        trackeds: dict[int, int] = {}
        candidates = []
        for flow, entry in enumerate(entries):
            if entry is None:
                continue
            tracked, direction = entry
            if not tracked.ignored and (tracked.decoder is None or not _settled(tracked)):
                continue
            number = trackeds.setdefault(id(tracked), len(candidates))
            if number == len(candidates):
                candidates.append(tracked)
            connection_of_flow[flow] = number
            direction_of_flow[flow] = direction
        stretches = []
        in_bulk = np.zeros(count, dtype=bool)
        known = 0
        if candidates:
            frame_connection = connection_of_flow[block.flow]
            frame_direction = direction_of_flow[block.flow]
            order = np.argsort(frame_connection, kind="stable")
            bounds = np.searchsorted(frame_connection[order], np.arange(len(candidates) + 1))
            known = int(bounds[-1] - bounds[0])
            for number, tracked in enumerate(candidates):
                frames = order[bounds[number]: bounds[number + 1]]
                stretch = self._stretch(tracked, frames, frame_direction[frames])
                if stretch is not None:
                    stretches.append(stretch)
                    in_bulk[stretch[1]] = True
        directions = []
        for stretch in stretches:
            directions.extend(self._apply_stretch(*stretch))
        self._decode(directions, np.flatnonzero(~in_bulk))
        bulk = sum(len(stretch[1]) for stretch in stretches)
        engine.tcp_frames += bulk
        return bulk, known

    def _stretch(self, tracked, frames, tcp_directions) -> tuple | None:
        """(tracked, frames, TCP directions) of one connection's bulk stretch in this block, or None."""
        simple = self.block.simple[frames]
        end = len(frames) if simple.all() else int(np.argmin(simple))
        if not tracked.ignored and end:
            end = min(end, self._first_break(tracked, frames[:end], tcp_directions[:end]))
        if not end:
            return None
        return tracked, frames[:end], tcp_directions[:end]

    def _first_break(self, tracked, frames, tcp_directions) -> int:
        """Position in ``frames`` of the first that is out of sequence or acknowledges unseen bytes."""
        block = self.block
        lengths = block.length[frames]
        first = len(frames)
        next_seqs = []
        positions = []
        for direction in (0, 1):
            reassembler = tracked.reassemblers[direction]
            data = np.flatnonzero((tcp_directions == direction) & (lengths > 0))
            sizes = lengths[data]
            before = np.concatenate(([0], np.cumsum(sizes)))
            expected = (reassembler.next_seq + before[:-1]) % SEQ_MODULO
            wrong = np.flatnonzero(block.seq[frames[data]] != expected)
            if wrong.size:
                first = min(first, int(data[wrong[0]]))
            if data.size and not reassembler.started:
                first = min(first, int(data[0]))
            next_seqs.append((reassembler.next_seq + before) % SEQ_MODULO)
            positions.append(data)
        acks = np.flatnonzero(block.flags[frames] & 0x10)
        for direction in (0, 1):
            other = 1 - direction
            if not tracked.reassemblers[other].started:
                continue
            mine = acks[tcp_directions[acks] == direction]
            if not mine.size:
                continue
            # The other direction's next sequence number when each ACK was sent.
            seen = np.searchsorted(positions[other], mine)
            ahead = (block.ack[frames[mine]] - next_seqs[other][seen] + HALF_SEQ) % SEQ_MODULO - HALF_SEQ
            beyond = np.flatnonzero((ahead > 0) & (ahead <= HALF_SEQ // 2))
            if beyond.size:
                first = min(first, int(mine[beyond[0]]))
        return first

    # -- applying it ------------------------------------------------------------------------

    def _apply_stretch(self, tracked, frames, tcp_directions) -> list[_Direction]:
        """Everything of a stretch but the decoder calls, at once: counters, chunk maps, segment records.

        Nothing reads these before the connection's next frame outside the
        stretch (then they must be complete) except the decoder, which asks only
        about bytes it was given, so applying the whole stretch first is the same
        as applying it frame by frame.  Returns the directions that carry data.
        """
        block = self.block
        last = int(frames[-1])
        tracked.last_frame = self.first + last
        tracked.last_time = float(block.ts[last])
        if tracked.ignored:
            return []
        directions = []
        lengths = block.length[frames]
        for tcp_direction in (0, 1):
            data = (tcp_directions == tcp_direction) & (lengths > 0)
            if not data.any():
                continue
            indices = frames[data]
            sizes = block.length[indices]
            reassembler = tracked.reassemblers[tcp_direction]
            payloads = block.payload[indices]
            state = _Direction(tracked, tcp_direction, indices, sizes, reassembler.next_offset, payloads)
            total = state.cumulative[-1]
            # The chunk map's arrays are native 'Q', 'Q', 'I', 'I', 'I', 'd' (see ChunkMap).
            chunks = state.sink.chunks
            chunks.stream_offsets.frombytes(state.stream_offsets.astype(np.uint64).tobytes())
            chunks.file_offsets.frombytes(payloads.astype(np.uint64).tobytes())
            chunks.lengths.frombytes(sizes.astype(np.uint32).tobytes())
            chunks.frames.frombytes((indices + self.first).astype(np.uint32).tobytes())
            chunks.sources.frombytes(bytes(4 * len(indices)))
            chunks.timestamps.frombytes(block.ts[indices].tobytes())
            chunks.end = reassembler.next_offset + total
            reassembler.next_offset += total
            reassembler.next_seq = (int(block.seq[indices[-1]]) + int(sizes[-1])) & 0xFFFFFFFF
            reassembler.bytes_delivered += total
            tracked.has_data = True
            directions.append(state)
        rows = np.empty(len(frames), dtype=ROW_DTYPE)
        rows["time"] = block.ts[frames]
        rows["frame"] = frames + self.first
        rows["seq"] = block.seq[frames]
        rows["ack"] = block.ack[frames]
        rows["length"] = lengths
        rows["window"] = block.window[frames]
        rows["flags"] = block.flags[frames]
        rows["direction"] = tcp_directions
        tracked.record(rows.tobytes())
        return directions

    def _decode(self, directions: list[_Direction], slow) -> None:
        """The decoder calls of the stretches, merged in frame order with the slow frames."""
        engine, block = self.engine, self.block
        heap: list[tuple[int, int, int]] = []  # (block index of the segment, direction number, its position)
        for number, state in enumerate(directions):
            self._next_boundary(heap, number, state)
        pcap_frame = engine.pcap_frame
        bodies = block.body[slow].tolist()
        caplens = block.caplen[slow].tolist()
        times = block.ts[slow].tolist()
        first = self.first
        for position, index in enumerate(slow.tolist()):
            while heap and heap[0][0] < index:
                self._boundary(heap, directions)
            pcap_frame(first + index, times[position], bodies[position], caplens[position])
        while heap:
            self._boundary(heap, directions)

    @staticmethod
    def _next_boundary(heap, number: int, state: _Direction) -> None:
        """Queue the next segment the decoder must see: where the credit it gave runs out.

        Segments that fit in the credit are only counted (``owed``), as the per-frame
        path does; when none is left to see, the rest of the stretch is counted now.
        """
        sink = state.sink
        position = bisect_right(state.cumulative, state.consumed + sink.credit)
        if position < len(state.frames):
            heapq.heappush(heap, (state.frames[position], number, position))
            return
        rest = state.cumulative[-1] - state.consumed
        sink.credit -= rest
        sink.owed += rest
        state.consumed += rest

    def _boundary(self, heap, directions: list[_Direction]) -> None:
        """Hand the decoder the segment at the top of the heap (``_DirectionSink.on_data``'s second half)."""
        index, number, position = heapq.heappop(heap)
        state = directions[number]
        sink = state.sink
        tracked = state.tracked
        length = state.lengths[position]
        skipped = state.cumulative[position] - length - state.consumed
        sink.credit -= skipped
        sink.owed += skipped
        state.consumed += skipped + length
        decoder = tracked.decoder
        direction = state.tcp_direction ^ tracked.swap
        if sink.owed:
            decoder.skip(direction, sink.owed)
            sink.owed = 0
        payload = int(state.payloads[position])
        decoder.receive_data(direction, int(state.stream_offsets[position]),
                             self.engine.views[0][payload: payload + length])
        if tracked.decoder is decoder:
            skippable = getattr(decoder, "skippable", None)
            sink.credit = skippable(direction) if skippable is not None else 0
        self._next_boundary(heap, number, state)


def _settled(tracked) -> bool:
    """Whether a decoding connection's reassembly holds no state a bulk stretch would have to consult."""
    for reassembler in tracked.reassemblers:
        if reassembler.pending or reassembler.loss_evidence is not None or reassembler.fin_seq is not None:
            return False
    return True
