"""What the views need on top of an Analysis: PDU -> messages, lazy decoding with caches.

Pure (no Textual).  The analysis runs in a worker thread and only appends to
its lists, so everything here reads ``len(...)`` once and works up to it.

PDU -> messages comes from the core's read API (``Analysis.messages_for``,
``pdv_messages``: ``dicomtui.core.model.message_index``), which applies the
message assembler's own rules.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from dicomtui.core.model.analysis import Analysis
from dicomtui.core.model import Message, Pdu

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
        self.decoded_pdus = LruCache(64)
        self.decoded_datasets = LruCache(4)
        self.decoded_commands = LruCache(256)
        self.status_categories: dict[int, str] = {}
        self._last_frames: array | None = None

    # -- PDU -> messages (the core's read API) ------------------------------------------

    def messages_for(self, pdu: Pdu) -> list[Message]:
        """Messages with at least one PDV in ``pdu``, in stream order."""
        return self.analysis.messages_for(pdu)

    def pdv_messages(self, pdu: Pdu) -> list[Message | None]:
        """For each PDV of ``pdu``, the message it belongs to (None when unknown)."""
        return self.analysis.pdv_messages(pdu)

    def dataset_completed_in(self, pdu: Pdu) -> list[Message]:
        """Messages whose last data set fragment is in ``pdu`` (where the data set is shown)."""
        return self.analysis.dataset_completed_in(pdu)

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
        def make():
            try:
                fields, tree = self.analysis.decode_command(message)
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
