"""The PDU index, stored column-wise.

A capture of small PDUs (C-ECHO or C-FIND storms) has as many PDUs as frames;
kept as Python objects each PDU cost about 450 bytes, more than the capture
itself.  Here each costs about 60 bytes (typed arrays, plus a shared string for
summaries that repeat), and ``table[i]`` builds a ``Pdu`` on demand: views and
rules use the same objects as before, they just do not live in memory.

Readers on another thread (the TUI while loading) only see rows below
``len(table)``, which is bumped after every column of a row is written.

A live capture's retention limit drops the oldest rows (``drop_before``): row
numbers stay what they were (``len`` still counts every row ever added), rows
below ``base`` raise IndexError, and ``column`` returns rows ``base`` onwards.
"""

from __future__ import annotations

from array import array
from typing import Iterator

from dicomtui.core.model import Pdu, Pdv


class PduTable:
    def __init__(self) -> None:
        self._connection = array("I")
        self._direction = array("B")
        self._stream_offset = array("Q")
        self._pdu_type = array("B")
        self._length = array("I")
        self._first_frame = array("I")
        self._last_frame = array("I")
        self._timestamp = array("d")
        self._association = array("i")
        self._complete = array("B")
        self._kind = array("B")
        self._pdv_start = array("Q")  # a row's PDVs are [start[i], start[i + 1])
        self._pdv_offset = array("Q")
        self._pdv_length = array("I")
        self._pdv_context = array("B")
        self._pdv_flags = array("B")
        self._summaries: list[str] = []
        self._shared_text: dict[str, str] = {}
        self._kinds: list[str] = []
        self._kind_codes: dict[str, int] = {}
        self._count = 0
        self.base = 0  # rows below this were dropped (live retention)
        # Bumped whenever existing rows change (dropped, reordered, remapped): caches built from the
        # columns stay valid while it is unchanged and only need the rows added since.
        self.generation = 0
        self._pdv_base = 0  # PDV entries dropped with them

    def __len__(self) -> int:
        return self._count

    def append(self, pdu: Pdu) -> int:
        """Store ``pdu`` as the next row; returns its index (also set on ``pdu``)."""
        index = self._count
        pdu.index = index
        self._connection.append(pdu.connection)
        self._direction.append(pdu.direction)
        self._stream_offset.append(pdu.stream_offset)
        self._pdu_type.append(pdu.pdu_type)
        self._length.append(pdu.length)
        self._first_frame.append(pdu.first_frame)
        self._last_frame.append(pdu.last_frame)
        self._timestamp.append(pdu.timestamp)
        self._association.append(pdu.association)
        self._complete.append(1 if pdu.complete else 0)
        code = self._kind_codes.get(pdu.kind)
        if code is None:
            code = self._kind_codes[pdu.kind] = len(self._kinds)
            self._kinds.append(pdu.kind)
        self._kind.append(code)
        self._pdv_start.append(len(self._pdv_offset) + self._pdv_base)
        for pdv in pdu.pdvs:
            self._pdv_offset.append(pdv.stream_offset)
            self._pdv_length.append(pdv.length)
            self._pdv_context.append(pdv.context_id)
            self._pdv_flags.append(pdv.flags)
        summary = pdu.summary
        self._summaries.append(self._shared_text.setdefault(summary, summary) if len(self._shared_text) < 65536
                               else summary)
        self._count = index + 1
        return index

    def _pdvs(self, index: int) -> tuple[Pdv, ...]:
        """PDVs of the row at array position ``index`` (row number minus ``base``)."""
        start = self._pdv_start[index] - self._pdv_base
        end = self._pdv_start[index + 1] - self._pdv_base if index + 1 < len(self._pdv_start) \
            else len(self._pdv_offset)
        return tuple(
            Pdv(self._pdv_offset[n], self._pdv_length[n], self._pdv_context[n], bool(self._pdv_flags[n] & 1),
                bool(self._pdv_flags[n] & 2), self._pdv_flags[n])
            for n in range(start, end)
        )

    def _row(self, number: int) -> Pdu:
        index = number - self.base
        return Pdu(
            index=number,
            connection=self._connection[index],
            direction=self._direction[index],
            stream_offset=self._stream_offset[index],
            pdu_type=self._pdu_type[index],
            length=self._length[index],
            first_frame=self._first_frame[index],
            last_frame=self._last_frame[index],
            timestamp=self._timestamp[index],
            association=self._association[index],
            pdvs=self._pdvs(index),
            summary=self._summaries[index],
            complete=bool(self._complete[index]),
            kind=self._kinds[self._kind[index]],
        )

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self._row(index) for index in range(*key.indices(self._count)) if index >= self.base]
        if key < 0:
            key += self._count
        if not self.base <= key < self._count:
            raise IndexError("PDU index out of range" if key >= self.base
                             else "PDU dropped by the live retention limit")
        return self._row(key)

    def __iter__(self) -> Iterator[Pdu]:
        for index in range(self.base, self._count):
            yield self._row(index)

    def retained(self, index: int) -> bool:
        return self.base <= index < self._count

    def last_frames(self) -> array:
        """Every row's last frame (for searches by frame number)."""
        return self.column("last_frame")

    COLUMNS = ("connection", "direction", "stream_offset", "pdu_type", "length", "first_frame", "last_frame",
               "timestamp", "association", "complete")

    def column(self, name: str, start: int | None = None) -> array:
        """A copy of one column for rows ``start`` (default ``base``) to ``len``, without building Pdu objects."""
        if name not in self.COLUMNS:
            raise KeyError(name)
        column = getattr(self, "_" + name)
        first = 0 if start is None else max(0, start - self.base)
        return array(column.typecode, column[first : self._count - self.base])

    def fields(self, number: int) -> tuple[int, int, int, int, int, int, float]:
        """(connection, direction, stream offset, PDU type, length, first frame, timestamp) of row
        ``number``, without building a Pdu (for passes over every PDU)."""
        index = number - self.base
        if not 0 <= index < self._count - self.base:
            raise IndexError("PDU index out of range")
        return (self._connection[index], self._direction[index], self._stream_offset[index],
                self._pdu_type[index], self._length[index], self._first_frame[index], self._timestamp[index])

    def pdv_counts(self) -> list[int]:
        """How many PDVs each retained row has (rows ``base`` to ``len``)."""
        starts = self._pdv_start.tolist()
        ends = starts[1:] + [len(self._pdv_offset) + self._pdv_base]
        return [end - start for start, end in zip(starts, ends)]

    def summaries(self) -> list[str]:
        """Every retained row's summary (rows ``base`` to ``len``), without building Pdu objects."""
        return self._summaries[: self._count - self.base]

    def drop_before(self, number: int) -> int:
        """Forget rows below ``number`` (live retention); returns how many were dropped."""
        count = min(number, self._count) - self.base
        if count <= 0:
            return 0
        pdv_end = self._pdv_start[count] - self._pdv_base if count < len(self._pdv_start) else len(self._pdv_offset)
        for name in ("_connection", "_direction", "_stream_offset", "_pdu_type", "_length", "_first_frame",
                     "_last_frame", "_timestamp", "_association", "_complete", "_kind", "_pdv_start"):
            del getattr(self, name)[:count]
        for name in ("_pdv_offset", "_pdv_length", "_pdv_context", "_pdv_flags"):
            del getattr(self, name)[:pdv_end]
        del self._summaries[:count]
        self._pdv_base += pdv_end
        self.base += count
        self.generation += 1
        return count

    def bytes_used(self) -> int:
        """Memory held by the rows (arrays and summary references), for the retention figures."""
        arrays = sum(getattr(self, name).buffer_info()[1] * getattr(self, name).itemsize for name in (
            "_connection", "_direction", "_stream_offset", "_pdu_type", "_length", "_first_frame", "_last_frame",
            "_timestamp", "_association", "_complete", "_kind", "_pdv_start", "_pdv_offset", "_pdv_length",
            "_pdv_context", "_pdv_flags"))
        return arrays + 8 * len(self._summaries)

    # -- renumbering at the end of the pass ---------------------------------------------------

    def reorder(self, order: list[int], start: int = 0) -> None:
        """Rows ``start`` to ``start + len(order)`` in the order ``order`` (a permutation of
        those row indices); the rows outside keep their place.  Row numbers are array
        positions here (the live pipeline reorders only while nothing was dropped).

        Only the window is rewritten: a PDU or two out of frame order in a large capture
        costs their neighbourhood, not the whole table (it rebuilt every column).
        """
        self.generation += 1
        end = start + len(order)
        pdvs = [self._pdvs(old) for old in order]
        for name in ("_connection", "_direction", "_stream_offset", "_pdu_type", "_length", "_first_frame",
                     "_last_frame", "_timestamp", "_association", "_complete", "_kind"):
            column = getattr(self, name)
            column[start:end] = array(column.typecode, [column[old] for old in order])
        summaries = self._summaries
        summaries[start:end] = [summaries[old] for old in order]
        # The window's PDV entries keep their span of the PDV arrays (same rows, other order).
        first = self._pdv_start[start] - self._pdv_base
        last = self._pdv_start[end] - self._pdv_base if end < len(self._pdv_start) else len(self._pdv_offset)
        starts, offsets, lengths = array("Q"), array("Q"), array("I")
        contexts, flags = array("B"), array("B")
        position = first + self._pdv_base
        for row in pdvs:
            starts.append(position)
            position += len(row)
            for pdv in row:
                offsets.append(pdv.stream_offset)
                lengths.append(pdv.length)
                contexts.append(pdv.context_id)
                flags.append(pdv.flags)
        self._pdv_start[start:end] = starts
        self._pdv_offset[first:last] = offsets
        self._pdv_length[first:last] = lengths
        self._pdv_context[first:last] = contexts
        self._pdv_flags[first:last] = flags

    def remap_connections(self, mapping: dict[int, int]) -> None:
        self.generation += 1
        self._connection = array("I", (mapping[value] for value in self._connection))
