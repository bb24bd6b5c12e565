"""Association state from decoded A-ASSOCIATE / release / abort PDUs (PS3.8 9.3, 7.1-7.5).

Pure updates of an ``Association`` model object from what a PDU carried; each
returns the protocol problems it noticed (the body decoder's own text, then its
own as coded ``Problem``s) so the caller can report them with frame numbers.  The association's state is the state table's business
(``state.transition``), not these functions'.
"""

from __future__ import annotations

from dicomtui.core.protocol.findings import Problem
from dicomtui.core.protocol.records import Association, PresentationContext
from dicomtui.core.protocol.state import AssociationState

from .pdu import AbortBody, AssociateBody, RejectBody


def apply_request(association: Association, pdu: AssociateBody, max_contexts: int) -> list[str | Problem]:
    problems: list[str | Problem] = list(pdu.problems)
    association.calling_ae = pdu.calling_ae
    association.called_ae = pdu.called_ae
    association.application_context = pdu.application_context
    for item in pdu.contexts[:max_contexts]:
        if item.context_id in association.contexts:
            problems.append(Problem("negotiation.context-proposed-twice", {"context_id": item.context_id}))
        association.contexts[item.context_id] = PresentationContext(
            item.context_id, item.abstract_syntax, tuple(item.transfer_syntaxes))
    if len(pdu.contexts) > max_contexts:
        problems.append(Problem("negotiation.too-many-contexts", {"count": len(pdu.contexts), "limit": max_contexts}))
    user = pdu.user
    association.requestor_max_pdu = user.max_length
    association.requestor_implementation = (user.implementation_class_uid, user.implementation_version_name)
    association.async_window = user.async_window
    for uid, scu, scp in user.roles:
        association.roles[uid] = (bool(scu), bool(scp))
    if user.user_identity is not None:
        identity = user.user_identity
        association.user_identity = {
            "type": identity.identity_type,
            "primary": identity.primary.decode("utf-8", "backslashreplace") if identity.identity_type in (1, 2)
            else f"{len(identity.primary)} bytes",
            "positive_response_requested": identity.positive_response_requested,
            "passcode": "********" if identity.identity_type == 2 else None,
        }
    if user.max_length is None:
        problems.append(Problem("negotiation.no-maximum-length", {}))
    if not user.implementation_class_uid:
        problems.append(Problem("negotiation.no-implementation-uid", {}))
    return problems


def apply_accept(association: Association, pdu: AssociateBody) -> list[str | Problem]:
    problems: list[str | Problem] = list(pdu.problems)
    for item in pdu.contexts:
        context = association.contexts.get(item.context_id)
        if context is None:
            if association.request_pdu is not None:
                problems.append(Problem("negotiation.answer-not-proposed", {"context_id": item.context_id}))
            context = PresentationContext(item.context_id)
            association.contexts[item.context_id] = context
        context.result = item.result
        if item.transfer_syntaxes:
            context.transfer_syntax = item.transfer_syntaxes[0]
            if item.result == 0 and context.proposed_transfer_syntaxes and \
                    context.transfer_syntax not in context.proposed_transfer_syntaxes:
                problems.append(Problem("negotiation.syntax-not-proposed", {
                    "context_id": item.context_id, "transfer_syntax": context.transfer_syntax}))
    if not association.calling_ae:
        association.calling_ae = pdu.calling_ae
        association.called_ae = pdu.called_ae
    user = pdu.user
    association.acceptor_max_pdu = user.max_length
    association.acceptor_implementation = (user.implementation_class_uid, user.implementation_version_name)
    for uid, scu, scp in user.roles:
        association.roles[uid] = (bool(scu), bool(scp))
        association.acceptor_roles[uid] = (bool(scu), bool(scp))
    if user.user_identity_response is not None:
        association.user_identity["server_response_length"] = len(user.user_identity_response)
    return problems


def apply_reject(association: Association, pdu: RejectBody) -> None:
    association.end_reason = pdu.text


def apply_abort(association: Association, pdu: AbortBody | None) -> None:
    text = pdu.text if pdu is not None else "A-ABORT (malformed)"
    if association.state is AssociationState.RELEASED:
        # An A-ABORT after a completed A-RELEASE exchange ends nothing: the association was released.
        association.end_reason = f"released normally, then A-ABORT: {text}"
        return
    association.end_reason = text
