"""IP fragment reassembly (IPv4, and IPv6 fragment headers): fragments in, whole datagrams out.

Fragmented TCP shows up where a VPN or tunnel lowers the path MTU and a sender does not do path MTU
discovery: every large segment arrives as two or more IP fragments, and without reassembly the
stream has a hole per datagram.  Sans-IO, as the rest of the wire layer: a fragment is described by
where its bytes are in the capture (source, file offset, length), and a completed datagram comes
out as the list of those ranges in datagram order, so its payload is read from the capture map
without a copy, like any segment's.

Policy, stated: fragments may arrive in any order; where they overlap, the bytes of the fragment that
starts earlier in the datagram are kept, and of two starting at the same place the one that arrived
first (RFC 5722 would drop an IPv6 datagram with overlaps, but a capture tool should show what was
sent; retransmitted fragments carry the same bytes anyway); a datagram is complete when a last fragment (no "more" flag) has
arrived and every byte before its end is held.  Bounds: at most ``max_datagrams`` datagrams pending
(the oldest goes first), each at most 65,535 bytes of payload plus its fragments' bookkeeping, and a
datagram whose first fragment is older than ``timeout`` seconds of capture time is dropped (Linux:
30 s for IPv4, 60 s for IPv6).  What was dropped or never completed is counted for the finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_DATAGRAM = 65535 + 8  # IPv4's 16-bit total length; an IPv6 jumbogram is not fragmented


@dataclass(slots=True)
class _Pending:
    first_time: float
    pieces: list[tuple[int, int, int, int]] = field(default_factory=list)  # (offset, source, file offset, length)
    end: int | None = None  # the datagram payload's length, once the last fragment is in


class FragmentReassembler:
    def __init__(self, max_datagrams: int = 4096, timeout: float = 60.0) -> None:
        self.max_datagrams = max_datagrams
        self.timeout = timeout
        self.pending: dict[tuple, _Pending] = {}
        self.completed = 0  # datagrams put back together
        self.fragments = 0  # fragments seen
        self.dropped = 0  # datagrams given up (timeout, too many pending, too large)

    def add(self, key: tuple, offset: int, more: bool, source: int, file_offset: int, length: int,
            ts: float) -> list[tuple[int, int, int, int]] | None:
        """One fragment; the whole datagram's pieces (offset, source, file offset, length) once
        complete, in datagram order and without overlap, else None."""
        self.fragments += 1
        entry = self.pending.get(key)
        if entry is None:
            self._expire(ts)
            if len(self.pending) >= self.max_datagrams:
                del self.pending[next(iter(self.pending))]  # the oldest first (insertion order)
                self.dropped += 1
            entry = self.pending[key] = _Pending(ts)
        if offset + length > MAX_DATAGRAM:
            del self.pending[key]
            self.dropped += 1
            return None
        if length:
            entry.pieces.append((offset, source, file_offset, length))
        if not more:
            entry.end = offset + length
        if entry.end is None:
            return None
        whole = _cover(entry.pieces, entry.end)
        if whole is None:
            return None
        del self.pending[key]
        self.completed += 1
        return whole

    def _expire(self, now: float) -> None:
        while self.pending:
            key, entry = next(iter(self.pending.items()))
            if now - entry.first_time <= self.timeout:
                return
            del self.pending[key]
            self.dropped += 1

    def incomplete(self) -> int:
        """Datagrams still missing fragments (at the end of the capture)."""
        return len(self.pending)


def _cover(pieces: list[tuple[int, int, int, int]], end: int) -> list[tuple[int, int, int, int]] | None:
    """The pieces trimmed to cover [0, end) once each (the policy above); None if a byte is missing."""
    # By offset, ties by arrival (the list's order).
    ordered = sorted(enumerate(pieces), key=lambda item: (item[1][0], item[0]))
    covered: list[tuple[int, int, int, int]] = []
    position = 0
    for _arrival, (offset, source, file_offset, length) in ordered:
        piece_end = offset + length
        if piece_end <= position:
            continue
        if offset > position:
            return None  # a hole
        skip = position - offset
        covered.append((position, source, file_offset + skip, min(piece_end, end) - position))
        position = piece_end
        if position >= end:
            break
    if position < end:
        return None
    return [piece for piece in covered if piece[3] > 0]
