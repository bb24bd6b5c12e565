"""Which PDU is "related" to another: request <-> response(s), C-MOVE <-> its sub-association, PDU -> finding.

Pure (no Textual): answers in PDU numbers from the model's links
(``Message.request`` / ``responses``, ``Association.parent_move``), so the
navigator can put the cursor there.  Each answer says what it is, for the
status toast.
"""

from __future__ import annotations

C_MOVE_RQ = 0x0021


def _messages(index, pdu_number: int):
    return index.messages_for(index.analysis.pdus[pdu_number])


def partner(index, pdu_number: int, step: int = 0) -> tuple[int, str] | None:
    """From a request: its ``step``-th response (wrapping); from a response: its request."""
    analysis = index.analysis
    for message in _messages(index, pdu_number):
        if message.request is not None:
            request = analysis.messages[message.request]
            return request.first_pdu, f"request {request.command_name} (message ID {request.message_id})"
        if message.responses:
            number = message.responses[step % len(message.responses)]
            response = analysis.messages[number]
            which = f"{step % len(message.responses) + 1} of {len(message.responses)}"
            return response.first_pdu, f"response {which}: {response.command_name}"
    return None


def move_link(index, pdu_number: int) -> tuple[int, str] | None:
    """From a C-MOVE PDU: the first PDU of its sub-association; from a sub-association: the C-MOVE-RQ."""
    analysis = index.analysis
    pdu = analysis.pdus[pdu_number]
    if 0 <= pdu.association < len(analysis.associations):
        association = analysis.associations[pdu.association]
        if association.parent_move is not None:
            move = analysis.messages[association.parent_move]
            return move.first_pdu, f"the C-MOVE-RQ that opened association A{association.index}"
    for message in _messages(index, pdu_number):
        move = message if message.command_field == C_MOVE_RQ else (
            analysis.messages[message.request] if message.request is not None else None)
        if move is None or move.command_field != C_MOVE_RQ:
            continue
        for number in analysis.relations.sub_associations(move.index):
            association = analysis.associations[number]
            if association.request_pdu is not None:
                return association.request_pdu, f"sub-association A{association.index} of this C-MOVE"
        return None
    return None


def findings_of(analysis, pdu_number: int, expert_pdu) -> list:
    """Expert items that point at this PDU (``expert_pdu(item)`` maps an item to its PDU)."""
    return [item for item in analysis.expert if expert_pdu(item) == pdu_number]
