"""The sentences of the protocol core's findings, made from their code and parameters.

The decoder reports a finding as a code (``tcp.gap``, ``state.ac-without-rq``,
``pdu.malformed``...) with parameters (``protocol.events.Finding``); this
catalogue is the default wording, used when the pipeline stores the finding as
an ``ExpertItem`` (which keeps the code and parameters too).  A view or a
translation phrases the same item differently by its own table keyed on
``ExpertItem.code`` and reading ``ExpertItem.params``.

Findings about a PDU or a message name the part of the core that noticed the
problem and its own code (``problem``: ``framing.reserved-byte``,
``negotiation.context-proposed-twice``, ``dimse.malformed-command``...; worded
by ``PROBLEM_TEXT``), or carry a ``detail``: the text of a PDU body decoder
(``AssociateBody.problems``), which a replacement body decoder writes itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dicomtui.core.protocol.records import PDU_TYPE_NAMES, context_result_text
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


def _pdu_name(pdu_type: int) -> str:
    """The framer's name for a PDU type."""
    return PDU_TYPE_NAMES.get(pdu_type, f"PDU type 0x{pdu_type:02x}")


def _pdu_type_name(pdu_type: int) -> str:
    """A decoded PDU's name for its type (``Pdu.type_name``)."""
    return PDU_TYPE_NAMES.get(pdu_type, f"unknown PDU type 0x{pdu_type:02x}")


def _resync(params: Mapping[str, Any]) -> str:
    before = params["before"]
    where = f" before stream offset {before}" if before is not None else ""
    if params.get("after_gap"):
        return (f"skipped {params['length']} bytes after a gap{where}: the PDU header that would place them was "
                "not captured (resynchronised on the next PDU header whose bytes were captured)")
    if before is None:
        return f"skipped {params['length']} bytes that are not a DICOM PDU (no valid PDU header followed)"
    return (f"skipped {params['length']} bytes that are not a DICOM PDU{where} "
            "(resynchronised on the next valid PDU header)")


# What a part of the core noticed (protocol.findings.Problem), by its code.
PROBLEM_TEXT: dict[str, Phrase] = {
    # framing: where PDUs and PDVs are in the stream
    "framing.gap-bytes": lambda p: f"{p['length']} bytes missing from the capture (TCP gap)",
    "framing.gap-rest": lambda p: "TCP gap: the rest of this PDU was not captured",
    "framing.capture-ended": lambda p: "capture ended inside this PDU",
    "framing.header-cut": lambda p: f"capture ended inside a PDU header ({p['length']} bytes)",
    "framing.unknown-pdu-type": lambda p: (f"unknown PDU type 0x{p['pdu_type']:02x}; "
                                           "looking for the next valid PDU header"),
    "framing.pdu-too-long": lambda p: (f"{_pdu_name(p['pdu_type'])} claims {p['length']} bytes, more than the "
                                       f"{p['limit']}-byte limit; looking for the next valid PDU header"),
    "framing.resync-skipped": _resync,
    "framing.reserved-byte": lambda p: f"reserved byte after the PDU type is 0x{p['value']:02x}",
    "framing.empty-pdu": lambda p: "PDU length 0",
    "framing.control-pdu-too-long": lambda p: (f"{p['length']}-byte {_pdu_name(p['pdu_type'])} exceeds the "
                                               f"{p['limit']}-byte limit for control PDUs; body not decoded"),
    "framing.invalid-pdv-length": lambda p: (f"invalid PDV length {p['length']} at stream offset "
                                             f"{p['stream_offset']} ({p['left']} bytes left in the PDU)"),
    "framing.too-many-pdvs": lambda p: f"more than {p['limit']} PDVs in one PDU; rest skipped",
    "framing.command-too-long": lambda p: (f"command PDV of {p['length']} bytes exceeds the {p['limit']}-byte "
                                           "limit; not decoded"),
    "framing.pdv-header-cut": lambda p: f"{p['left']} bytes left in the P-DATA-TF PDU, too few for a PDV header",
    # the registered PDU body decoder failed (its own words in ``error``)
    "pdu.body-malformed": lambda p: (f"malformed {_pdu_type_name(p['pdu_type'])}: {p['error']} "
                                     f"(at PDU byte {p['offset']})"),
    "pdu.body-decoder-raised": lambda p: (f"{_pdu_type_name(p['pdu_type'])} decoder raised {p['exception']}: "
                                          f"{p['error']}"),
    # negotiation: what the A-ASSOCIATE items set
    "negotiation.context-proposed-twice": lambda p: f"presentation context ID {p['context_id']} proposed twice",
    "negotiation.too-many-contexts": lambda p: (f"{p['count']} presentation contexts proposed; only the first "
                                                f"{p['limit']} kept"),
    "negotiation.no-maximum-length": lambda p: ("A-ASSOCIATE-RQ has no maximum length sub-item (0x51), "
                                                "which is mandatory"),
    "negotiation.no-implementation-uid": lambda p: ("A-ASSOCIATE-RQ has no implementation class UID sub-item "
                                                    "(0x52), which is mandatory"),
    "negotiation.answer-not-proposed": lambda p: (f"A-ASSOCIATE-AC answers presentation context "
                                                  f"{p['context_id']}, which was not proposed"),
    "negotiation.syntax-not-proposed": lambda p: (f"context {p['context_id']} accepted with transfer syntax "
                                                  f"{p['transfer_syntax']}, which was not proposed"),
    # DIMSE: PDVs to messages
    "dimse.dataset-unfinished": lambda p: "message ended without its last data set fragment",
    "dimse.context-changed": lambda p: (f"PDV on presentation context {p['context_id']} inside a message on "
                                        f"context {p['message_context_id']}"),
    "dimse.malformed-command": lambda p: f"malformed command set: {p['error']}",
}


def problem_text(params: Mapping[str, Any]) -> str:
    """The sentence for a finding's ``problem`` (or its ``detail``, a body decoder's own text)."""
    code = params.get("problem")
    if code is None:
        return params["detail"]
    wording = PROBLEM_TEXT.get(code)
    return wording(params) if wording is not None else code


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
    return (problem_text(params) + " — the sender's DICOM stack wrote an invalid PDU (or the capture is damaged); "
            "expect the receiver to abort")


def _context_not_negotiated(params: Mapping[str, Any]) -> str:
    return (f"PDV on presentation context {params['context_id']}, which was never negotiated — the sender uses "
            "a context ID its A-ASSOCIATE did not set up: check the sender's DICOM stack; the receiver should abort")


def _context_rejected(params: Mapping[str, Any]) -> str:
    return (f"PDV on presentation context {params['context_id']}, which was rejected "
            f"({context_result_text(params['result'])}) — the sender ignored the A-ASSOCIATE-AC and must only "
            "use accepted contexts: check the sender's DICOM stack")


FINDING_TEXT: dict[str, Phrase] = {
    "tcp.gap": _tcp_gap,
    "framing.invalid-header": problem_text,
    "framing.skipped": problem_text,
    "pdu.malformed": _malformed_pdu,
    "pdu.not-captured": problem_text,
    "pdv.context-not-negotiated": _context_not_negotiated,
    "pdv.context-rejected": _context_rejected,
    "dimse.malformed": problem_text,
    **{f"state.{violation.value}": _violation for violation in Violation},
}


def phrase(code: str, params: Mapping[str, Any]) -> str:
    """The default sentence of a finding (an unknown code, from a replacement decoder, reads as its code)."""
    wording = FINDING_TEXT.get(code)
    if wording is None:
        detail = params.get("detail")
        return f"{code}: {detail}" if detail else code
    return wording(params)


def problem_sentence(problem) -> str:
    """The sentence for a ``protocol.findings.Problem`` (or a body decoder's text, as it is)."""
    if isinstance(problem, str):
        return problem
    return problem_text({"problem": problem.code, **problem.params})
