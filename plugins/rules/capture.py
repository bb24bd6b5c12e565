"""Expert rules about the capture itself: associations it only partly shows.

Notes, not faults of the peers: an association picked up midway (its
A-ASSOCIATE was not captured, so transfer syntaxes are guessed from the data),
and an association still open when the capture ended.  TCP gaps are reported
by the connection decoder as they are found.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.model import AssociationState, Group, Severity

from .common import peers


@hookimpl
def dicomtui_check_association(association, analysis, report):
    guessed = []
    if association.picked_up_midway or any(context.guessed for context in association.contexts.values()):
        guessed = [message for message in _messages_of(analysis, association.index) if message.syntax_guessed]
    if association.picked_up_midway:
        detail = (f"; the transfer syntax of {len(guessed)} data set(s) is guessed from their first bytes"
                  if guessed else "")
        frame = guessed[0].first_frame if guessed else association.first_frame
        report.add(Severity.NOTE, Group.CAPTURE,
                   f"association {peers(association)} began before the capture: AE titles, presentation contexts "
                   f"and maximum PDU lengths are unknown{detail} — start the capture before the association "
                   "(e.g. before sending or querying again) to see the negotiation",
                   frame, association.index, None, guessed[0].index if guessed else None,
                   code="capture.began_before_capture")
    elif guessed:
        report.add(Severity.NOTE, Group.CAPTURE,
                   f"association {peers(association)}: the transfer syntax of {len(guessed)} data set(s) on "
                   "presentation contexts without a negotiated syntax is guessed from their first bytes",
                   guessed[0].first_frame, association.index, None, guessed[0].index,
                   code="capture.transfer_syntax_guessed")
    if association.state == AssociationState.INCOMPLETE and not analysis.connections[association.connection].closed_by:
        report.add(Severity.NOTE, Group.CAPTURE,
                   f"association {peers(association)} was still open when the capture ended — what happened "
                   "next is not in this capture", association.last_frame or association.first_frame,
                   association.index, code="capture.open_at_end")


def _messages_of(analysis, association_index: int):
    return analysis.relations.messages_of(association_index)
