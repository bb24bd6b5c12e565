"""Expert rules about time: requests never answered and responses slower than a threshold.

"Looking at the timestamps is by far the best method to figure out why a
transfer is slow" (Wireshark DICOM wiki): the slow-response rule measures from
the request complete (its last byte) to its first response complete (the
response's last byte: a response whose header came alone and whose rest
waited for a delayed ACK counts in full), so the time to send a large request
data set does not count against the responder.  Definitions: docs/timing.md.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.model import AssociationState, Group, Severity

from .common import first_pdu_of_type, option, peers, side

C_CANCEL = 0x0FFF
SLOW_RESPONSE_OPTION = "slow_response_seconds"
SLOW_RESPONSE_DEFAULT = 5.0
PENDING = "pending"


@hookimpl
def dicomtui_register_rule_options(register):
    register(SLOW_RESPONSE_OPTION, SLOW_RESPONSE_DEFAULT,
             "report a DIMSE response completed more than this many seconds after its request completed")


@hookimpl
def dicomtui_check_message(message, analysis, report):
    if not message.is_request or message.command_field in (0, C_CANCEL) or message.message_id is None:
        return
    if not message.responses:
        _never_answered(message, analysis, report)
        return
    _slow(message, analysis, report)
    _no_final_response(message, analysis, report)


def _never_answered(message, analysis, report) -> None:
    association = analysis.associations[message.association]
    name = message.command_name
    what = f"{name} (message ID {message.message_id}) in association {peers(association)} was never answered"
    end = None
    if association.state == AssociationState.ABORTED:
        end = first_pdu_of_type(analysis, association.index, 7)
        severity = Severity.WARNING
        aborter = side(association, end.direction) if end else "one side"
        why = (f"{aborter} aborted the association (frame {end.last_frame})" if end
               else "the association was aborted")
        if end is not None and end.direction == message.direction:
            advice = ("the requestor probably timed out waiting: compare its DIMSE timeout with how long the "
                      "responder needs (large objects, slow storage, a busy database)")
        else:
            advice = "the responder aborted instead of answering: see the A-ABORT and the responder's log"
    elif association.state == AssociationState.RELEASED:
        severity = Severity.ERROR
        why = "the association was released without the response"
        advice = "the responder dropped the request: look in its log for this message ID"
    elif association.state == AssociationState.INCOMPLETE and not analysis.connections[association.connection].closed_by:
        severity = Severity.NOTE
        why = "the capture ended before a response"
        advice = "the response may simply not have been captured: capture for longer"
    else:
        severity = Severity.WARNING
        closed = analysis.connections[association.connection].closed_by
        why = f"the connection was closed ({closed})" if closed else f"the association ended ({association.state})"
        advice = "look in the responder's log for this message ID and for why the connection ended"
    report.add(severity, Group.SEQUENCE, f"{what}: {why} — {advice}", message.last_frame or message.first_frame,
               message.association, message.last_pdu, message.index, code="timing.never_answered")


def _slow(message, analysis, report) -> None:
    first = analysis.messages[message.responses[0]]
    delay = first.response_time
    if delay is None:
        return
    threshold = float(option(analysis, SLOW_RESPONSE_OPTION, SLOW_RESPONSE_DEFAULT))
    if threshold <= 0 or delay <= threshold:
        return
    association = analysis.associations[message.association]
    report.add(Severity.WARNING, Group.PERFORMANCE,
               f"{first.command_name} to message ID {message.message_id} completed {delay:.3f} s after the request "
               f"(threshold {threshold:g} s, -o {SLOW_RESPONSE_OPTION}:N) in association {peers(association)} — "
               "the responder was busy: check its load, storage and database, and for a C-FIND how broad the "
               "query is; compare with the timestamps of other requests in the capture",
               first.first_frame, message.association, first.first_pdu, first.index,
               code="timing.slow_response")


def _no_final_response(message, analysis, report) -> None:
    last = analysis.messages[message.responses[-1]]
    if last.status is None:
        return
    category, _meaning = analysis.status_meaning(last.command_field, last.status, last.affected_sop_class)
    if category != PENDING:
        return
    association = analysis.associations[message.association]
    ended = {"aborted": "the association was aborted", "released": "the association was released",
             "incomplete": "the capture or connection ended"}.get(association.state, "the capture ended")
    severity = Severity.NOTE if association.state == AssociationState.INCOMPLETE and \
        not analysis.connections[association.connection].closed_by else Severity.WARNING
    report.add(severity, Group.SEQUENCE,
               f"{message.command_name} (message ID {message.message_id}) got {len(message.responses)} pending "
               f"responses but no final one: {ended} first — look in the responder's log for why it stopped",
               last.last_frame, message.association, last.last_pdu, last.index,
               code="timing.no_final_response")
