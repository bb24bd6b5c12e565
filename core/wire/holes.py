"""A stream's bytes around the holes a capture left (lost segments, a cut capture).

``read_with_holes`` returns the bytes of a range with the missing parts
zero-filled and listed, so a view can show what is there and mark the rest.
One pass over the stream's segments (``core.wire.tcp.ChunkMap``).
"""

from __future__ import annotations

from bisect import bisect_right


def read_with_holes(chunks, start: int, end: int, buffers: list) -> tuple[bytes, list[tuple[int, int]]]:
    """Bytes [start, end) of a stream (a ``core.tcp.ChunkMap``), holes zero-filled; holes relative to ``start``."""
    out = bytearray(end - start)
    holes: list[tuple[int, int]] = []
    if getattr(chunks, "store", None) is not None:  # a transformed stream's own pieces
        buffers = chunks.store
    offsets = chunks.stream_offsets
    index = max(bisect_right(offsets, start) - 1, 0)
    position = start
    while position < end:
        if index >= len(offsets) or offsets[index] >= end:
            holes.append((position - start, end - start))
            break
        chunk_start = offsets[index]
        chunk_end = chunk_start + chunks.lengths[index]
        if chunk_end <= position:
            index += 1
            continue
        if chunk_start > position:
            holes.append((position - start, chunk_start - start))
            position = chunk_start
        take = min(end, chunk_end) - position
        file_start = chunks.file_offsets[index] + (position - chunk_start)
        out[position - start:position - start + take] = buffers[chunks.sources[index]][file_start:file_start + take]
        position += take
        index += 1
    return bytes(out), holes
