"""The association state machine as a table (after h11's ``_state.py``).

One association per connection at a time; its state moves on each PDU either
side sends.  ``transition(state, pdu_type, side, release_requester)`` returns
the next state and the violation the PDU commits (None when PS3.8's state
machine allows it).  This is a passive observer's view of PS3.8 9.2: it
records what the peers did rather than refusing it, so every PDU has a next
state, legal or not.

What is flagged is what a capture can attribute with certainty; PS3.8 is
stricter in places this table deliberately is not (an A-RELEASE-RQ before the
association is accepted, for instance, is followed but not flagged).
"""

from __future__ import annotations

import enum


class AssociationState(enum.StrEnum):
    REQUESTED = "requested"  # A-ASSOCIATE-RQ seen, no answer yet
    ESTABLISHED = "established"
    RELEASING = "releasing"  # A-RELEASE-RQ seen
    RELEASED = "released"
    REJECTED = "rejected"
    ABORTED = "aborted"
    INCOMPLETE = "incomplete"  # the capture or the connection ended while it was open


OPEN_STATES = frozenset((AssociationState.REQUESTED, AssociationState.ESTABLISHED, AssociationState.RELEASING))
ENDED_STATES = frozenset((AssociationState.RELEASED, AssociationState.ABORTED, AssociationState.REJECTED))


class Side(enum.IntEnum):
    """Model direction: 0 is the association requestor (the TCP client), 1 the acceptor."""

    REQUESTOR = 0
    ACCEPTOR = 1


class PduType(enum.IntEnum):
    A_ASSOCIATE_RQ = 1
    A_ASSOCIATE_AC = 2
    A_ASSOCIATE_RJ = 3
    P_DATA_TF = 4
    A_RELEASE_RQ = 5
    A_RELEASE_RP = 6
    A_ABORT = 7


class Violation(enum.StrEnum):
    """State-machine violations, by code (the text is the reporter's business)."""

    RQ_WHILE_OPEN = "rq-while-open"
    RQ_FROM_ACCEPTOR = "rq-from-acceptor"
    AC_WITHOUT_RQ = "ac-without-rq"
    RJ_WITHOUT_RQ = "rj-without-rq"
    DATA_BEFORE_AC = "data-before-ac"
    DATA_AFTER_END = "data-after-end"
    DATA_AFTER_OWN_RELEASE_RQ = "data-after-own-release-rq"
    RP_WITHOUT_RQ = "rp-without-rq"


S, P, V = AssociationState, PduType, Violation

# pdu type -> (next state, states in which it is allowed, violation otherwise)
TRANSITIONS: dict[PduType, tuple[AssociationState | None, frozenset[AssociationState], Violation | None]] = {
    # A request always starts a new association; it violates the protocol while one is open.
    P.A_ASSOCIATE_RQ: (S.REQUESTED, frozenset(S) - OPEN_STATES, V.RQ_WHILE_OPEN),
    P.A_ASSOCIATE_AC: (S.ESTABLISHED, frozenset((S.REQUESTED,)), V.AC_WITHOUT_RQ),
    P.A_ASSOCIATE_RJ: (S.REJECTED, frozenset((S.REQUESTED,)), V.RJ_WITHOUT_RQ),
    P.P_DATA_TF: (None, frozenset((S.ESTABLISHED, S.RELEASING, S.INCOMPLETE)), None),  # None: state unchanged
    P.A_RELEASE_RQ: (S.RELEASING, frozenset(S), None),
    P.A_RELEASE_RP: (S.RELEASED, frozenset((S.RELEASING,)), V.RP_WITHOUT_RQ),
    P.A_ABORT: (S.ABORTED, frozenset(S), None),
}

# P-DATA-TF outside the states that allow it: which violation depends on where it is.
DATA_VIOLATIONS = {S.REQUESTED: V.DATA_BEFORE_AC, S.RELEASED: V.DATA_AFTER_END, S.ABORTED: V.DATA_AFTER_END,
                   S.REJECTED: V.DATA_AFTER_END}


def transition(state: AssociationState | None, pdu_type: int, side: int,
               release_requester: int | None = None, answered: bool = False
               ) -> tuple[AssociationState | None, Violation | None]:
    """(next state, violation or None) when ``side`` sends a PDU of ``pdu_type`` in ``state``.

    ``state`` is None before the first association of the connection.
    ``release_requester``: the side that sent A-RELEASE-RQ (if any); ``answered``: the
    association's request already had its A-ASSOCIATE-AC (a second one is a violation).
    Unknown PDU types leave the state as it is.
    """
    try:
        pdu = PduType(pdu_type)
    except ValueError:
        return state, None
    next_state, allowed, violation = TRANSITIONS[pdu]
    if pdu is P.A_ASSOCIATE_RQ:
        if side != Side.REQUESTOR:
            return next_state, V.RQ_FROM_ACCEPTOR
        return next_state, (violation if state in OPEN_STATES else None)
    if next_state is None:
        next_state = state
    if pdu is P.P_DATA_TF:
        if state in DATA_VIOLATIONS:
            return next_state, DATA_VIOLATIONS[state]
        if state is S.RELEASING and side == release_requester:
            return next_state, V.DATA_AFTER_OWN_RELEASE_RQ
        return next_state, None
    if pdu is P.A_ASSOCIATE_AC and answered:
        return next_state, violation
    if pdu is P.A_ABORT and state is S.RELEASED:
        # After a completed A-RELEASE exchange an A-ABORT ends nothing: the association stays released.
        return state, None
    return next_state, (None if state in allowed else violation)
