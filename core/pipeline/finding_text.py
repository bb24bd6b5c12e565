"""The sentences of the protocol core's findings, made from their code and parameters.

The decoder reports a finding as a code (``tcp.gap``, ``state.ac-without-rq``,
``pdu.malformed``...) with parameters (``protocol.events.Finding``); this
catalogue is the default wording, used when the pipeline stores the finding as
an ``ExpertItem`` (which keeps the code and parameters too).  A view or a
translation phrases the same item differently by its own table keyed on
``ExpertItem.code`` and reading ``ExpertItem.params``.

``detail`` parameters carry a lower layer's own description of what was wrong
(the framer's, a PDU body decoder's, the negotiation's, the DIMSE assembler's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dicomtui.core.protocol.records import context_result_text
from dicomtui.core.protocol.state import Side, Violation

# How a violation reads; {state} is the state it happened in.
VIOLATION_TEXT = {
    Violation.RQ_WHILE_OPEN: "A-ASSOCIATE-RQ while an association is already open on this connection",
    Violation.RQ_FROM_ACCEPTOR: "A-ASSOCIATE-RQ sent by the connection's server side",
    Violation.AC_WITHOUT_RQ: "A-ASSOCIATE-AC without a pending A-ASSOCIATE-RQ",
    Violation.RJ_WITHOUT_RQ: "A-ASSOCIATE-RJ without a pending A-ASSOCIATE-RQ",
    Violation.DATA_BEFORE_AC: "P-DATA-TF before the association was accepted (no A-ASSOCIATE-AC yet)",
    Violation.DATA_AFTER_END: "P-DATA-TF after the association was {state}",
    Violation.DATA_AFTER_OWN_RELEASE_RQ: "P-DATA-TF sent after this side requested release",
    Violation.RP_WITHOUT_RQ: "A-RELEASE-RP without an A-RELEASE-RQ",
}

Phrase = Callable[[Mapping[str, Any]], str]


def _tcp_gap(params: Mapping[str, Any]) -> str:
    side = "client" if params["direction"] == 0 else "server"
    return (f"TCP gap: {params['length']} bytes from the {side} were not captured at stream offset "
            f"{params['stream_offset']} ({params['reason']}); PDUs and data sets crossing it are incomplete — "
            "usually the capture dropped packets rather than the network (the peers retransmit): "
            "capture on one of the hosts, with a larger buffer (dumpcap -B) and without "
            "segmentation offload (ethtool -K IFACE tso off gso off gro off)")


def _violation(params: Mapping[str, Any]) -> str:
    sender = "the requestor" if params["side"] == Side.REQUESTOR else "the acceptor"
    return (VIOLATION_TEXT[params["violation"]].format(state=params["state"])
            + f" — a protocol violation by {sender} (PS3.8 state machine): look at what it did just before "
            "and in its log; the other side is expected to abort")


def _malformed_pdu(params: Mapping[str, Any]) -> str:
    return (params["detail"] + " — the sender's DICOM stack wrote an invalid PDU (or the capture is damaged); "
            "expect the receiver to abort")


def _context_not_negotiated(params: Mapping[str, Any]) -> str:
    return (f"PDV on presentation context {params['context_id']}, which was never negotiated — the sender uses "
            "a context ID its A-ASSOCIATE did not set up: check the sender's DICOM stack; the receiver should abort")


def _context_rejected(params: Mapping[str, Any]) -> str:
    return (f"PDV on presentation context {params['context_id']}, which was rejected "
            f"({context_result_text(params['result'])}) — the sender ignored the A-ASSOCIATE-AC and must only "
            "use accepted contexts: check the sender's DICOM stack")


def _detail(params: Mapping[str, Any]) -> str:
    return params["detail"]


FINDING_TEXT: dict[str, Phrase] = {
    "tcp.gap": _tcp_gap,
    "framing.invalid-header": _detail,
    "framing.skipped": _detail,
    "pdu.malformed": _malformed_pdu,
    "pdu.not-captured": _detail,
    "pdv.context-not-negotiated": _context_not_negotiated,
    "pdv.context-rejected": _context_rejected,
    "dimse.malformed": _detail,
    **{f"state.{violation.value}": _violation for violation in Violation},
}


def phrase(code: str, params: Mapping[str, Any]) -> str:
    """The default sentence of a finding (an unknown code, from a replacement decoder, reads as its code)."""
    wording = FINDING_TEXT.get(code)
    if wording is None:
        detail = params.get("detail")
        return f"{code}: {detail}" if detail else code
    return wording(params)
