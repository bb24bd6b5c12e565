"""Expert rules for association negotiation: rejection, abort, rejected presentation contexts.

The findings an engineer needs first when "nothing works": why the SCP said
no (in words, with the AE title that it did not know), which SOP classes or
transfer syntaxes it refused, and who gave up with an A-ABORT.  Two chat items
per association (established, released normally) mark the normal milestones.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.base.uids import uid_label, uid_with_name
from dicomtui.core.model import AssociationEnd, AssociationState, Group, Severity
from dicomtui.core.protocol.pdu import (
    REJECT_RESULTS,
    REJECT_SOURCES,
    AbortBody,
    conforms,
    RejectBody,
    reject_reason_text,
)

from .common import ASSOCIATION_ADVICE, decode_or_none, first_pdu_of_type, pdu_at, peers, side

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"

# (source, reason) -> what to check next
REJECT_ADVICE = {
    (1, 1): "the SCP gave no reason: its log says why; " + ASSOCIATION_ADVICE,
    (1, 2): "the SCP does not support the application context name {context}: it must be the DICOM "
            "application context 1.2.840.10008.3.1.1.1 — check the requestor's DICOM stack",
    (1, 3): "the SCP does not know the calling AE title {calling}: add it (with its host or IP address and "
            "port) to the SCP's list of known peers, or correct the requestor's own AE title; compare "
            "spelling, case and trailing spaces (AE titles are at most 16 characters); some SCPs also check "
            "the requestor's IP address or license connections per AE title",
    (1, 7): "the SCP does not answer to the called AE title {called}: set the called AE title on the requestor "
            "to the SCP's own AE title (spelling, case, trailing spaces, at most 16 characters), and check "
            "the host and port belong to that AE",
    (2, 1): "the SCP's DICOM stack rejected the request without a reason: its log says why; "
            + ASSOCIATION_ADVICE,
    (2, 2): "the SCP does not support the protocol version in the A-ASSOCIATE-RQ: check the requestor's "
            "DICOM stack (version 1 is the only one defined)",
    (3, 1): "the SCP is congested: retry later, and check its load and how many associations it accepts at once",
    (3, 2): "the SCP reached a local limit (often its maximum number of simultaneous associations or its "
            "licensed connections): retry later, close idle associations, or raise the limit on the SCP",
}

CONTEXT_ADVICE = {
    1: "the SCP's configuration refuses it (user rejection): enable this SOP class for this peer on the SCP",
    2: "the SCP gave no reason: check its log and which SOP classes it is configured for",
    3: "the SCP does not support this SOP class: enable it on the SCP or send this kind of object "
       "to a system that supports it",
    4: "the SCP accepts none of the transfer syntaxes proposed ({proposed}): enable one of them on the SCP, or have the requestor also propose Implicit VR Little Endian (1.2.840.10008.1.2), "
       "the default every SCP must accept",
}


@hookimpl
def dicomtui_check_association(association, analysis, report):
    if association.state == AssociationState.REJECTED:
        _rejected(association, analysis, report)
        return
    response = pdu_at(analysis, association.response_pdu)
    if response is not None and response.pdu_type == 2:
        _contexts(association, response, report)
        accepted = sum(1 for context in association.contexts.values() if context.accepted)
        report.add(Severity.CHAT, Group.SEQUENCE,
                   f"association {peers(association)} established: {accepted} of {len(association.contexts)} "
                   f"presentation contexts accepted, maximum PDU length requestor "
                   f"{_max_pdu(association.requestor_max_pdu)} / acceptor {_max_pdu(association.acceptor_max_pdu)}",
                   response.last_frame, association.index, response.index,
                   code="association.established")
    if association.state == AssociationState.ABORTED:
        _aborted(association, analysis, report)
        _in_flight_at_abort(association, analysis, report)
    elif association.ended_by is AssociationEnd.RELEASED and first_pdu_of_type(analysis, association.index, 7) \
            is not None:
        _aborted_after_release(association, analysis, report)
    elif association.ended_by is AssociationEnd.RELEASED:
        release = first_pdu_of_type(analysis, association.index, 6)
        if release is not None:
            report.add(Severity.CHAT, Group.SEQUENCE, f"association {peers(association)} released normally",
                       release.last_frame, association.index, release.index,
                       code="association.released")


# A PDU the other side sent before it could have received the A-ABORT is not a violation: it was on
# the wire (or in the sender's socket buffer) already.  "Could have received" is judged by timing:
# sent before the A-ABORT in the capture, or within this many negotiation round trips after it
# (with a floor for captures taken away from both peers).
IN_FLIGHT_ROUND_TRIPS = 4
IN_FLIGHT_FLOOR_SECONDS = 0.5


def _in_flight_window(association, analysis) -> float:
    request, response = pdu_at(analysis, association.request_pdu), pdu_at(analysis, association.response_pdu)
    round_trip = (response.timestamp - request.timestamp) if request is not None and response is not None else 0.0
    return max(IN_FLIGHT_FLOOR_SECONDS, IN_FLIGHT_ROUND_TRIPS * max(0.0, round_trip))


def _in_flight_at_abort(association, analysis, report) -> None:
    """Re-judge "PDU after the association was aborted" findings against the other side's PDUs in flight.

    The connection decoder sees PDU order only; a requestor still streaming a data set when the
    acceptor aborts is not breaking the state machine.  Such findings become one note each.
    """
    abort = first_pdu_of_type(analysis, association.index, 7)
    if abort is None:
        return
    window = _in_flight_window(association, analysis)
    sender = side(association, abort.direction)
    kept = []
    in_flight = []
    for item in analysis.expert:
        pdu = pdu_at(analysis, item.pdu) if item.rule == "protocol-order" and \
            item.association == association.index else None
        if pdu is not None and pdu.direction != abort.direction and \
                (pdu.first_frame <= abort.last_frame or pdu.timestamp - abort.timestamp <= window):
            in_flight.append(pdu)
            continue
        kept.append(item)
    if not in_flight:
        return
    analysis.expert[:] = kept
    for pdu in in_flight:
        report.add(Severity.NOTE, Group.SEQUENCE,
                   f"{pdu.type_name} from {side(association, pdu.direction)} was already in flight when "
                   f"{sender} sent its A-ABORT (frame {abort.last_frame}): sent before the abort could arrive, "
                   "so not a protocol violation", pdu.last_frame, association.index, pdu.index,
                   code="association.in_flight_at_abort")


def _aborted_after_release(association, analysis, report) -> None:
    abort = first_pdu_of_type(analysis, association.index, 7)
    sender = side(association, abort.direction)
    report.add(Severity.NOTE, Group.SEQUENCE,
               f"association {peers(association)} was released normally, then {sender} sent an A-ABORT "
               f"(frame {abort.last_frame}) — nothing was lost: the release had completed; some stacks close "
               "this way instead of closing the TCP connection", abort.last_frame, association.index, abort.index,
               code="association.aborted_after_release")


def _max_pdu(value: int | None) -> str:
    if value is None:
        return "not seen"
    return "unlimited" if value == 0 else str(value)


def _rejected(association, analysis, report) -> None:
    pdu = pdu_at(analysis, association.response_pdu)
    if pdu is None:
        return
    decoded = decode_or_none(analysis, pdu)
    if not conforms(decoded, RejectBody):
        return  # malformed: the decoder reported it
    result = REJECT_RESULTS.get(decoded.result, f"result {decoded.result}")
    source = REJECT_SOURCES.get(decoded.source, f"source {decoded.source}")
    reason = reject_reason_text(decoded.source, decoded.reason)
    advice = REJECT_ADVICE.get((decoded.source, decoded.reason), ASSOCIATION_ADVICE)
    advice = advice.format(calling=repr(association.calling_ae), called=repr(association.called_ae),
                           context=association.application_context or "(none)")
    if decoded.result == 2:
        advice += "; the rejection is transient, so a retry may succeed"
    report.add(Severity.ERROR, Group.NEGOTIATION,
               f"association {peers(association)} rejected ({result}) by the {source}: {reason} — {advice}",
               pdu.last_frame, association.index, pdu.index, code="association.rejected")


def _contexts(association, response, report) -> None:
    contexts = list(association.contexts.values())
    answered = [context for context in contexts if context.result is not None]
    if not answered:
        return
    accepted_syntaxes = {context.abstract_syntax for context in answered if context.accepted}
    if not accepted_syntaxes:
        report.add(Severity.ERROR, Group.NEGOTIATION,
                   f"association {peers(association)}: every presentation context was rejected, so no DIMSE "
                   "message can be exchanged — compare the SOP classes and transfer syntaxes the requestor "
                   "proposes with what the SCP is configured to accept", response.last_frame,
                   association.index, response.index, code="association.no_context_accepted")
    for context in answered:
        if context.accepted or context.result is None:
            continue
        if context.abstract_syntax and context.abstract_syntax in accepted_syntaxes:
            continue  # another context carries the same SOP class: a normal alternative-syntax proposal
        proposed = ", ".join(uid_label(uid) for uid in context.proposed_transfer_syntaxes) or "none seen"
        advice = CONTEXT_ADVICE.get(context.result, "check the SCP's configuration").format(proposed=proposed)
        what = uid_with_name(context.abstract_syntax) if context.abstract_syntax else "unknown abstract syntax"
        title = ("no common transfer syntax for " if context.result == 4 else "presentation context rejected: ")
        report.add(Severity.WARNING, Group.NEGOTIATION,
                   f"{title}{what} (context {context.context_id}, {context.result_text}) — {advice}",
                   response.last_frame, association.index, response.index,
                   code="association.context_rejected")


def _aborted(association, analysis, report) -> None:
    pdu = first_pdu_of_type(analysis, association.index, 7)
    if pdu is None:
        return
    decoded = decode_or_none(analysis, pdu)
    sender = side(association, pdu.direction)
    if conforms(decoded, AbortBody) and decoded.source == 2:
        how = f"A-ABORT from its DICOM stack (service-provider): {decoded.text.split(', ', 1)[-1]}"
        advice = (f"{sender}'s DICOM stack refused something the other side sent: look at the PDU that "
                  "arrived just before this frame (malformed or unexpected PDUs are reported here too)")
    elif conforms(decoded, AbortBody):
        how = "A-ABORT from the application (service-user)"
        if pdu.direction == 0:
            advice = (f"{sender} gave up: look in its log at what happened just before — most often a timeout "
                      "waiting for a response (see any unanswered request), an error handling received data, "
                      "or an operator cancelling")
        else:
            advice = (f"{sender} refused to go on: look in its log — it may have rejected the data it was "
                      "receiving, run out of resources, timed out waiting for the requestor, or been stopped")
    else:
        how = "malformed A-ABORT"
        advice = f"look in {sender}'s log for why it aborted"
    report.add(Severity.WARNING, Group.SEQUENCE,
               f"association {peers(association)} aborted by {sender} ({how}) — {advice}",
               pdu.last_frame, association.index, pdu.index, code="association.aborted")
