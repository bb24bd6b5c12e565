"""Who belongs to whom across the model, indexed once instead of searched per question.

A day at a PACS port has tens of thousands of associations; a rule or view that asks
"which association runs on this connection" or "which sub-associations did this C-MOVE
open" by scanning every association makes the whole analysis quadratic (issue 22).
``Relations`` answers those from dictionaries built in one pass over associations and
messages (O(A + M)), rebuilt only when the model has changed since: its lengths, whether
the pass finished (connections are renumbered then), or ``invalidate()`` (the links
phase sets ``parent_move`` without changing any length).
"""

from __future__ import annotations

import threading
from typing import Any


class Relations:
    def __init__(self, analysis: Any) -> None:
        self.analysis = analysis
        self._generation = 0
        self._key: tuple | None = None
        self._lock = threading.Lock()
        self._by_connection: dict[int, list[int]] = {}
        self._messages_by_association: dict[int, list] = {}
        self._sub_associations: dict[int, list[int]] = {}

    def invalidate(self) -> None:
        """The model changed in a way its lengths do not show (links set, connections renumbered)."""
        self._generation += 1

    def _current(self) -> None:
        analysis = self.analysis
        key = (len(analysis.associations), len(analysis.messages), analysis.finished, self._generation)
        if key == self._key:
            return
        with self._lock:
            if key == self._key:
                return
            by_connection: dict[int, list[int]] = {}
            sub_associations: dict[int, list[int]] = {}
            for association in analysis.associations:
                by_connection.setdefault(association.connection, []).append(association.index)
                if association.parent_move is not None:
                    sub_associations.setdefault(association.parent_move, []).append(association.index)
            messages_by_association: dict[int, list] = {}
            for message in analysis.messages:
                messages_by_association.setdefault(message.association, []).append(message)
            self._by_connection, self._sub_associations = by_connection, sub_associations
            self._messages_by_association = messages_by_association
            self._key = key

    def associations_on(self, connection: int) -> list[int]:
        """Indexes of the associations carried by a connection, in order."""
        self._current()
        return self._by_connection.get(connection, [])

    def first_association_on(self, connection: int) -> int | None:
        found = self.associations_on(connection)
        return found[0] if found else None

    def messages_of(self, association: int) -> list:
        """The messages of an association, in capture order."""
        self._current()
        return self._messages_by_association.get(association, [])

    def sub_associations(self, move: int) -> list[int]:
        """Associations linked to the C-MOVE-RQ with message index ``move`` (``parent_move``)."""
        self._current()
        return self._sub_associations.get(move, [])
