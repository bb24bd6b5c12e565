"""Bounded memory for long live captures: the oldest part of the index is dropped, counted and shown.

A file's analysis keeps its whole index (offsets, never payload).  A capture
left running for a day must not: ``Retention.enforce`` drops, oldest first,
everything before a cut frame once the PDU table holds more than
``live_max_pdus`` rows or the spool (the captured bytes on disk) more than
``live_spool_mb``:

- PDU rows (``PduTable.drop_before``; row numbers stay, as in Wireshark's
  frame numbers after a ring buffer turned over);
- messages and associations that ended before the cut, connections closed
  before it (``RetainedList``: the same numbering, the head forgotten); a
  message kept that began before the cut is marked incomplete;
- chunk-map entries and TCP segment rows (timing) of the frames before the cut
  (reads there find a hole; timing covers the retained frames);
- expert findings of frames before the cut;
- spool segments whose frames are all before the cut (files deleted).

It drops a tenth more than needed each time, so the work is amortised:
O(dropped) per call, called once per poll.  What was dropped is counted in
``dropped_*`` for the status line and the end report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

DROP_SLACK = 0.9  # drop down to 90 % of the limit, so drops come in batches


class RetainedList:
    """A list whose head can be forgotten while every element keeps its index."""

    __slots__ = ("base", "items")

    def __init__(self, items=()) -> None:
        self.items = list(items)
        self.base = 0

    def __len__(self) -> int:
        return self.base + len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator:
        return iter(self.items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return [self.items[i - self.base] for i in range(max(start, self.base), stop, step)]
        if index < 0:
            index += len(self)
        if index < self.base:
            raise IndexError("dropped by the live retention limit")
        return self.items[index - self.base]

    def append(self, item) -> None:
        self.items.append(item)

    def sort(self, key=None) -> None:
        self.items.sort(key=key)

    def drop_front(self, count: int) -> None:
        del self.items[:count]
        self.base += count

    def retained(self, index: int) -> bool:
        return self.base <= index < len(self)


@dataclass(slots=True)
class RetentionCounts:
    pdus: int = 0
    messages: int = 0
    associations: int = 0
    connections: int = 0
    expert: int = 0
    segments: int = 0
    bytes: int = 0  # spool bytes deleted

    @property
    def any(self) -> bool:
        return bool(self.pdus or self.segments)


class Retention:
    """Applies the live retention limits to one IncrementalAnalysis's analysis and spool."""

    def __init__(self, analysis, spool, max_pdus: int, max_spool_bytes: int) -> None:
        self.analysis = analysis
        self.spool = spool
        self.max_pdus = max_pdus
        self.max_spool_bytes = max_spool_bytes
        self.dropped = RetentionCounts()
        analysis.messages = RetainedList(analysis.messages)
        analysis.associations = RetainedList(analysis.associations)
        analysis.connections = RetainedList(analysis.connections)

    def cut_frame(self) -> int:
        """The first frame to keep (0: nothing to drop)."""
        analysis, spool = self.analysis, self.spool
        pdus = analysis.pdus
        cut = 0
        if len(pdus) - pdus.base > self.max_pdus:
            cut = pdus[len(pdus) - int(self.max_pdus * DROP_SLACK)].first_frame
        if spool.bytes_kept > self.max_spool_bytes:
            target = spool.bytes_kept - int(self.max_spool_bytes * DROP_SLACK)
            freed = 0
            segment = spool.first_kept
            while segment < spool.file_index and freed < target:
                freed += spool.lengths[segment]
                segment += 1
            if segment < len(spool.first_frames) and spool.first_frames[segment]:
                cut = max(cut, spool.first_frames[segment])
        return cut

    def enforce(self, open_associations, closed_connections) -> int:
        """Drop what lies before the cut frame; returns the PDU rows dropped."""
        cut = self.cut_frame()
        if not cut:
            return 0
        analysis, dropped = self.analysis, self.dropped
        pdus = analysis.pdus
        first_kept = pdus.base
        while first_kept < len(pdus) and pdus[first_kept].first_frame < cut:
            first_kept += 1
        count = pdus.drop_before(first_kept)
        dropped.pdus += count
        messages = analysis.messages
        drop = 0
        for message in messages.items:
            if message.last_pdu >= first_kept:
                break
            drop += 1
        messages.drop_front(drop)
        dropped.messages += drop
        for message in messages.items:
            # Kept, but its first bytes go with the cut: never pass it off as whole.
            if message.first_frame < cut and message.complete:
                message.complete = False
                message.incomplete_reason = "its first part was dropped by the live retention limit"
        associations = analysis.associations
        drop = 0
        for association in associations.items:
            if association.index in open_associations or (association.last_frame or association.first_frame) >= cut:
                break
            drop += 1
        associations.drop_front(drop)
        dropped.associations += drop
        connections = analysis.connections
        # A kept association keeps its connection (views and rules look it up by number).
        needed = min((association.connection for association in associations.items), default=len(connections))
        drop = 0
        for connection in connections.items:
            if not connection.last_frame or connection.last_frame >= cut or connection.index >= needed:
                break  # still open, recent, or an association kept needs it
            drop += 1
        connections.drop_front(drop)
        dropped.connections += drop
        for connection in connections:
            for chunks in connection.streams:
                chunks.drop_before_frame(cut)
            segments = getattr(connection, "segments", None)  # TCP header rows for the timing analysis
            if segments is not None:
                segments.drop_before_frame(cut)
        before = len(analysis.expert)
        analysis.expert[:] = [item for item in analysis.expert if item.frame >= cut or not item.frame]
        dropped.expert += before - len(analysis.expert)
        spool = self.spool
        segment = spool.first_kept
        while segment + 1 <= spool.file_index and spool.first_frames[segment + 1] and \
                spool.first_frames[segment + 1] <= cut:
            segment += 1
        kept_before = spool.bytes_kept
        dropped.segments += segment - spool.first_kept
        spool.drop_before(segment)
        dropped.bytes += kept_before - spool.bytes_kept
        return count
