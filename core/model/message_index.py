"""The read API from PDUs to messages: which messages a PDU carries, which message each PDV is in.

Within one direction of one connection DIMSE messages never interleave, so per
(connection, direction) the messages are ordered by their first PDU and their
PDU ranges only touch at the ends.  One compact array of first-PDU numbers per
group plus ``bisect`` finds the messages of a PDU in O(log n + k) for k
messages carried by the PDU; memory is two machine integers per message.

Safe to use while the analysis still grows (the TUI reads it from the UI
thread while the pipeline appends in a worker): it reads ``len(...)`` once and
works up to it, and regroups once when the pipeline renumbers at the end.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from typing import Protocol

from dicomtui.core.protocol.messages import pdv_owners
from dicomtui.core.protocol.records import Message, Pdu

P_DATA_TF = 4


class MessageSource(Protocol):
    """What the index reads of the Analysis (which owns the index)."""

    messages: list[Message]
    finished: bool


class MessageIndex:
    def __init__(self, analysis: MessageSource) -> None:
        self.analysis = analysis
        self._groups: dict[tuple[int, int], tuple[array, array]] = {}
        self._messages_seen = 0
        self._finished_rebuilt = False
        self._lock = threading.Lock()

    def _update(self) -> None:
        with self._lock:
            analysis = self.analysis
            if analysis.finished and not self._finished_rebuilt:
                # Connections were renumbered at the end of the pass: regroup once.
                self._groups = {}
                self._messages_seen = 0
                self._finished_rebuilt = True
            messages = analysis.messages
            end = len(messages)
            groups = self._groups
            for position in range(self._messages_seen, end):
                message = messages[position]
                key = (message.connection, message.direction)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = (array("q"), array("q"))
                group[0].append(message.first_pdu)
                group[1].append(position)
            self._messages_seen = end

    def messages_for(self, pdu: Pdu) -> list[Message]:
        """Messages with at least one PDV in ``pdu``, in stream order."""
        if pdu.pdu_type != P_DATA_TF:
            return []
        self._update()
        group = self._groups.get((pdu.connection, pdu.direction))
        if group is None:
            return []
        firsts, positions = group
        messages = self.analysis.messages
        at = bisect.bisect_right(firsts, pdu.index) - 1
        found: list[Message] = []
        while at >= 0:
            message = messages[positions[at]]
            if message.last_pdu < pdu.index:
                break  # ranges do not overlap: earlier messages ended earlier still
            found.append(message)
            at -= 1
        found.reverse()
        return found

    def pdv_messages(self, pdu: Pdu) -> list[Message | None]:
        """For each PDV of ``pdu``, the message it belongs to (None when unknown)."""
        return pdv_owners(pdu.index, pdu.pdvs, self.messages_for(pdu))

    def dataset_completed_in(self, pdu: Pdu) -> list[Message]:
        """Messages whose last data set fragment is in ``pdu`` (where the data set is shown)."""
        start, end = pdu.stream_offset, pdu.stream_offset + pdu.total_length
        found = []
        for message in self.messages_for(pdu):
            fragments = message.dataset_fragments
            if message.has_dataset and fragments and message.last_pdu == pdu.index \
                    and start <= fragments[-1].stream_offset < end:
                last = next((pdv for pdv in pdu.pdvs if pdv.stream_offset == fragments[-1].stream_offset), None)
                if last is not None and last.is_last and not last.is_command:
                    found.append(message)
        return found
