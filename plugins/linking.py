"""Links across connections: a C-MOVE and the sub-association its SCP opened to the destination.

PS3.4 C.4.2: the Q/R SCP (the C-MOVE's called AE) opens a new association to the
move destination AE and sends C-STORE-RQs that carry Move Originator AE title
and Message ID.  The link is made from that evidence when present, else from
AE titles and timing (the sub-association starts while the C-MOVE is pending).

Neither piece of evidence is unique over a day: message IDs restart in every
association and a device sends the same C-MOVE again and again.  So among the
C-MOVEs the evidence names, the one pending when the sub-association started
wins (the latest-started of those), as a person reading the capture would link them.

Cost: one pass over the messages and associations, plus per sub-association a
bisection and a walk back over the C-MOVEs with the same evidence that may still
be pending at its start (O((A + M) log M) for A associations and M messages; the
walk stops at the first C-MOVE that every earlier one ended before).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from dicomtui import hookimpl

C_MOVE_RQ = 0x0021
C_STORE_RQ = 0x0001
LATE_START = 1.0  # seconds after the last C-MOVE-RSP a sub-association may still start (slow release)


@dataclass
class _Candidates:
    """C-MOVEs that share one piece of evidence, by start time."""

    starts: list[float]
    ends: list[float]
    latest_ends: list[float]  # latest_ends[i]: the latest end among moves [0..i] (the walk's stop)
    moves: list  # the C-MOVE-RQ messages

    @classmethod
    def of(cls, entries: list[tuple[float, float, int, object]]) -> _Candidates:
        entries.sort(key=lambda entry: (entry[0], entry[2]))
        latest_ends, latest = [], float("-inf")
        for _start, end, _index, _move in entries:
            latest = max(latest, end)
            latest_ends.append(latest)
        return cls([entry[0] for entry in entries], [entry[1] for entry in entries], latest_ends,
                   [entry[3] for entry in entries])

    def pending_at(self, when: float, association_index: int):
        """The latest-started C-MOVE pending at ``when`` (not one on association ``association_index``)."""
        position = bisect.bisect_right(self.starts, when) - 1
        while position >= 0 and self.latest_ends[position] + LATE_START >= when:
            move = self.moves[position]
            if move.association != association_index and self.ends[position] + LATE_START >= when:
                return move
            position -= 1
        return None

    def started_before(self, when: float, association_index: int):
        """The latest C-MOVE started before ``when``, else the first (for timestamps that do not fit)."""
        position = bisect.bisect_right(self.starts, when) - 1
        for index in range(position, -1, -1):
            if self.moves[index].association != association_index:
                return self.moves[index]
        return next((move for move in self.moves if move.association != association_index), None)


def _move_window(analysis, move) -> tuple[float, float]:
    end = move.end_time
    for index in move.responses:
        end = max(end, analysis.messages[index].end_time)
    return move.start_time, end


def _index(entries: dict) -> dict:
    return {key: _Candidates.of(value) for key, value in entries.items()}


@hookimpl
def dicomtui_complete_model(analysis):
    by_originator: dict[tuple[int, str], list] = {}
    by_titles: dict[tuple[str, str], list] = {}
    originators_by_association: dict[int, set[tuple[int, str]]] = {}
    moves_seen = False
    for message in analysis.messages:
        command_field = message.command_field
        if command_field == C_MOVE_RQ:
            fields = dict(message.command)  # decoded once
            start, end = _move_window(analysis, message)
            moves_seen = True
            calling = analysis.associations[message.association]
            entry = (start, end, message.index, message)
            if type(message.message_id) is int:
                by_originator.setdefault((message.message_id, calling.calling_ae.strip()), []).append(entry)
            destination = str(fields.get("MoveDestination", "")).strip()
            by_titles.setdefault((destination, calling.called_ae.strip()), []).append(entry)
        elif command_field == C_STORE_RQ:
            fields = message.command
            originator_id = fields.get("MoveOriginatorMessageID")
            # An element of length 0 (pynetdicom writes them) decodes as [], a malformed one as a
            # list: only a single number is evidence.
            if type(originator_id) is int:
                originator_ae = str(fields.get("MoveOriginatorApplicationEntityTitle", "")).strip()
                originators_by_association.setdefault(message.association, set()).add(
                    (originator_id, originator_ae))
    if not moves_seen:
        return
    originator_index = _index(by_originator)
    titles_index = _index(by_titles)
    for association in analysis.associations:
        if association.parent_move is not None:
            continue
        start = association.start_time
        best = None
        # Move Originator evidence first: the pending C-MOVE it names, else (timestamps that do
        # not fit, e.g. two capture points) the latest one started before, else the first.
        for key in sorted(originators_by_association.get(association.index, ()), key=repr):
            candidates = originator_index.get(key)
            if candidates is None:
                continue
            best = (candidates.pending_at(start, association.index)
                    or candidates.started_before(start, association.index))
            if best is not None:
                break
        if best is None:
            candidates = titles_index.get((association.called_ae.strip(), association.calling_ae.strip()))
            if candidates is not None:
                best = candidates.pending_at(start, association.index)
        if best is not None:
            association.parent_move = best.index

