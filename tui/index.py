"""What the views need on top of an Analysis: PDU -> messages, lazy decoding with caches.

Pure (no Textual).  The analysis runs in a worker thread and only appends to
its lists, so everything here reads ``len(...)`` once and works up to it.

PDU -> messages: within one direction of one connection, DIMSE messages never
interleave, so per (connection, direction) the messages are ordered by their
first PDU and their PDU ranges only touch at the ends.  One compact array of
first-PDU numbers per group plus ``bisect`` finds the messages of a PDU in
O(log n); memory is two machine integers per message.  Worst case per lookup:
O(log n + k) for k messages carried by the PDU.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from dicomtui.core.analysis import Analysis
from dicomtui.core.model import Message, Pdu

HEADER = 6


def owns_fragment(message: Message, stream_offset: int) -> bool:
    fragments = message.dataset_fragments
    at = bisect.bisect_left(fragments, stream_offset, key=lambda fragment: fragment.stream_offset)
    return at < len(fragments) and fragments[at].stream_offset == stream_offset


class LruCache:
    """A small least-recently-used cache; ``get_or_make(key, make)``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get_or_make(self, key, make: Callable[[], Any]):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()  # outside the lock: decoding may take a while
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


class PacketIndex:
    """Lookups and caches over one Analysis, safe to use while the analysis still grows."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self._groups: dict[tuple[int, int], tuple[array, array]] = {}
        self._messages_seen = 0
        self._finished_rebuilt = False
        self.decoded_pdus = LruCache(64)
        self.decoded_datasets = LruCache(4)
        self.decoded_commands = LruCache(256)
        self.status_categories: dict[int, str] = {}
        self._last_frames: array | None = None
        self._lock = threading.Lock()

    # -- PDU -> messages -------------------------------------------------------------------

    def _update(self) -> None:
        with self._lock:
            self._update_locked()

    def _update_locked(self) -> None:
        analysis = self.analysis
        if analysis.finished and not self._finished_rebuilt:
            # Connections were renumbered at the end of the pass: regroup once.
            self._groups = {}
            self._messages_seen = 0
            self._finished_rebuilt = True
            self._last_frames = None
        messages = analysis.messages
        end = len(messages)
        groups = self._groups
        # A live capture's retention limit may have dropped the oldest messages (numbers stay).
        for position in range(max(self._messages_seen, getattr(messages, "base", 0)), end):
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
        if pdu.pdu_type != 4:
            return []
        self._update()
        group = self._groups.get((pdu.connection, pdu.direction))
        if group is None:
            return []
        firsts, positions = group
        messages = self.analysis.messages
        first_kept = getattr(messages, "base", 0)
        at = bisect.bisect_right(firsts, pdu.index) - 1
        found: list[Message] = []
        while at >= 0 and positions[at] >= first_kept:
            message = messages[positions[at]]
            if message.last_pdu < pdu.index:
                break  # ranges do not overlap: earlier messages ended earlier still
            found.append(message)
            at -= 1
        found.reverse()
        return found

    def pdv_messages(self, pdu: Pdu) -> list[Message | None]:
        """For each PDV of ``pdu``, the message it belongs to (None when unknown).

        Replays the assembler's rule: a message is a command (PDVs up to the last
        command fragment) then, if it has one, a data set up to its last fragment.
        """
        messages = self.messages_for(pdu)
        result: list[Message | None] = []
        queue = list(messages)
        current: Message | None = None
        command_done = False
        if queue and queue[0].first_pdu < pdu.index:
            current = queue.pop(0)
            command_done = False
        for pdv in pdu.pdvs:
            if not pdv.is_command and current is not None:
                if not owns_fragment(current, pdv.stream_offset):
                    current = None
            if current is None or (pdv.is_command and command_done):
                current = queue.pop(0) if queue else None
                command_done = False
            result.append(current)
            if current is None:
                continue
            if pdv.is_command:
                if pdv.is_last:
                    command_done = True
                    if not current.has_dataset:
                        current = None
            else:
                command_done = True
                if pdv.is_last:
                    current = None
        return result

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

    # -- statuses and colours --------------------------------------------------------------

    def status_category(self, message: Message) -> str:
        if message.status is None:
            return ""
        category = self.status_categories.get(message.index)
        if category is None:
            category, _meaning = self.analysis.status_meaning(message.command_field, message.status,
                                                              message.affected_sop_class)
            self.status_categories[message.index] = category
        return category

    def row_kind(self, pdu: Pdu) -> str:
        """association, data, release, abort, reject, failure, warning (for colours)."""
        kind = pdu.kind or "data"
        if pdu.pdu_type == 4:
            worst = ""
            for message in self.messages_for(pdu):
                category = self.status_category(message)
                if category == "failure":
                    return "failure"
                if category == "warning":
                    worst = "warning"
            if worst:
                return worst
        return kind

    # -- lazy decoding ---------------------------------------------------------------------

    def decode_pdu(self, pdu: Pdu):
        """(decoded, error text) for a PDU, cached."""
        def make():
            try:
                return self.analysis.decode_pdu(pdu), ""
            except Exception as exc:  # malformed bytes or a broken plugin decoder
                return None, f"{type(exc).__name__}: {exc}"
        return self.decoded_pdus.get_or_make(pdu.index, make)

    def decode_command(self, message: Message):
        """(fields, tree, error) for a message's command set, cached."""
        from dicomtui.plugins.dimse import decode_command_set

        def make():
            try:
                fields, tree = decode_command_set(message.command_bytes)
                return fields, tree, ""
            except Exception as exc:
                return {}, None, f"{type(exc).__name__}: {exc}"
        return self.decoded_commands.get_or_make(message.index, make)

    def decode_dataset(self, message: Message):
        """The DecodedDataset of a message (or None), cached (few: data sets can be large)."""
        def make():
            try:
                return self.analysis.decode_dataset(message)
            except Exception:  # a broken dataset plugin: treat as "cannot decode"
                return None
        return self.decoded_datasets.get_or_make(message.index, make)

    # -- frames ----------------------------------------------------------------------------

    def pdu_for_frame(self, frame: int) -> int | None:
        """The PDU that holds (or, failing that, follows) ``frame``."""
        pdus = self.analysis.pdus
        count = len(pdus)
        base = pdus.base  # rows below were dropped by a live capture's retention limit
        if count <= base:
            return None
        best = None
        # PDUs are appended as they complete, so last_frame is nearly sorted: bisect, then look around.
        if self._last_frames is None or len(self._last_frames) != count - base:
            self._last_frames = pdus.last_frames()[: count - base]
        last_frames = self._last_frames
        at = bisect.bisect_left(last_frames, frame) + base
        for position in range(max(base, at - 64), min(count, at + 64)):
            pdu = pdus[position]
            if pdu.first_frame <= frame <= pdu.last_frame:
                return position
            if pdu.last_frame >= frame and (best is None or pdus[best].last_frame > pdu.last_frame):
                best = position
        if best is None:
            for position in range(base, count):
                if pdus[position].first_frame <= frame <= pdus[position].last_frame:
                    return position
            return count - 1
        return best
