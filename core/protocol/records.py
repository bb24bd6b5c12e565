"""What the protocol core produces: PDUs with their PDVs, associations and DIMSE messages.

Plain records (no I/O).  Objects that describe the wire are frozen or tuples;
associations and messages accumulate while a connection is decoded and are
only mutated by the decoder and the pipeline's completion phase.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dicomtui.core.protocol.state import AssociationState


class AssociationEnd(enum.StrEnum):
    """How an association ended (rules key on this, never on the wording of ``end_reason``)."""

    OPEN = ""  # not ended (or not yet)
    RELEASED = "released"  # A-RELEASE-RP seen
    REJECTED = "rejected"
    ABORTED = "aborted"
    CONNECTION_CLOSED = "connection closed"  # FIN or RST without a release
    CAPTURE_ENDED = "capture ended"

# -- PDUs ----------------------------------------------------------------------------------

PDU_TYPE_NAMES = {
    1: "A-ASSOCIATE-RQ",
    2: "A-ASSOCIATE-AC",
    3: "A-ASSOCIATE-RJ",
    4: "P-DATA-TF",
    5: "A-RELEASE-RQ",
    6: "A-RELEASE-RP",
    7: "A-ABORT",
}


PDU_HEADER_LENGTH = 6  # PDU type, reserved, 4-byte length (PS3.8 9.3.1)
PDV_HEADER_LENGTH = 6  # 4-byte item length, context ID, message control header (PS3.8 9.3.5.1)


class Pdv(NamedTuple):
    """One presentation data value: where its data lies in the stream and its header.

    A NamedTuple rather than a dataclass: there is one per PDV of the capture and
    building them is on the hot path.
    """

    stream_offset: int  # of the first data byte (after the 6-byte PDV header)
    length: int  # data bytes (PDV item length minus 2)
    context_id: int
    is_command: bool
    is_last: bool
    flags: int


@dataclass(slots=True)
class Pdu:
    """One PDU as found in a stream.  Its body is read back from the capture on demand."""

    index: int
    connection: int
    direction: int
    stream_offset: int  # of the PDU header
    pdu_type: int
    length: int  # the header's length field (body bytes)
    first_frame: int
    last_frame: int
    timestamp: float  # of the frame that completed the PDU
    association: int = -1
    pdvs: tuple[Pdv, ...] = ()
    summary: str = ""
    complete: bool = True  # False: a TCP gap or the end of the capture cut it
    kind: str = ""  # presentation category: association, data, release, abort, reject, failure

    @property
    def type_name(self) -> str:
        return PDU_TYPE_NAMES.get(self.pdu_type, f"unknown PDU type 0x{self.pdu_type:02x}")

    @property
    def total_length(self) -> int:
        return self.length + PDU_HEADER_LENGTH

    def pdv_data_offset(self, number: int) -> int:
        """Where PDV ``number``'s data starts, counted from the first byte of this PDU (its header)."""
        return self.pdvs[number].stream_offset - self.stream_offset


# -- associations --------------------------------------------------------------------------

CONTEXT_RESULTS = {
    0: "acceptance",
    1: "user-rejection",
    2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}


def context_result_text(result: int | None) -> str:
    """How an A-ASSOCIATE-AC answered a presentation context (None: no answer seen)."""
    if result is None:
        return "no response seen"
    return CONTEXT_RESULTS.get(result, f"unknown result {result}")


@dataclass(slots=True)
class PresentationContext:
    context_id: int
    abstract_syntax: str = ""
    proposed_transfer_syntaxes: tuple[str, ...] = ()
    result: int | None = None  # None: no answer seen
    transfer_syntax: str = ""  # accepted (or guessed) syntax
    guessed: bool = False

    @property
    def accepted(self) -> bool:
        return self.result == 0

    @property
    def result_text(self) -> str:
        return context_result_text(self.result)


@dataclass(slots=True)
class Association:
    index: int
    connection: int
    calling_ae: str = ""
    called_ae: str = ""
    application_context: str = ""
    contexts: dict[int, PresentationContext] = field(default_factory=dict)
    requestor_max_pdu: int | None = None
    acceptor_max_pdu: int | None = None
    requestor_implementation: tuple[str, str] = ("", "")  # class UID, version name
    acceptor_implementation: tuple[str, str] = ("", "")
    async_window: tuple[int, int] | None = None
    roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # SOP class -> (SCU, SCP)
    # The roles the A-ASSOCIATE-AC answered (``roles`` holds the proposal where the AC said nothing:
    # then the default applies, the requestor SCU only, PS3.7 D.3.3.4).
    acceptor_roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    user_identity: dict[str, Any] = field(default_factory=dict)
    state: AssociationState = AssociationState.REQUESTED
    end_reason: str = ""  # in words, for people
    ended_by: AssociationEnd = AssociationEnd.OPEN  # how it ended, for code
    request_pdu: int | None = None
    response_pdu: int | None = None
    start_time: float = 0.0
    established_time: float | None = None
    end_time: float | None = None
    first_frame: int = 0
    last_frame: int = 0
    picked_up_midway: bool = False
    message_count: int = 0
    parent_move: int | None = None  # message index of the C-MOVE that caused this association

    def accepted_syntax(self, context_id: int) -> str:
        context = self.contexts.get(context_id)
        return context.transfer_syntax if context else ""


# -- DIMSE messages ------------------------------------------------------------------------


class Fragment(NamedTuple):
    """Data-set bytes of a message: a stream range (direction of the message)."""

    stream_offset: int
    length: int


@dataclass(slots=True)
class Message:
    index: int
    association: int
    connection: int
    direction: int
    context_id: int
    command: Mapping[str, Any] = field(default_factory=dict)  # keyword -> value (decoded on read)
    command_bytes: bytes = b""
    command_field: int = 0
    command_name: str = ""
    message_id: int | None = None
    responded_to: int | None = None
    status: int | None = None
    dataset_fragments: list[Fragment] = field(default_factory=list)
    dataset_length: int = 0
    has_dataset: bool = False
    complete: bool = True
    incomplete_reason: str = ""
    first_frame: int = 0
    last_frame: int = 0
    start_time: float = 0.0
    end_time: float = 0.0
    first_pdu: int = 0
    last_pdu: int = 0
    request: int | None = None  # for a response: index of its request
    responses: list[int] = field(default_factory=list)  # for a request
    # Times (seconds; docs/timing.md).  For a response, ``first_byte_time`` is request complete ->
    # this response's first byte and ``response_time`` request complete -> this response complete.
    response_time: float | None = None
    first_byte_time: float | None = None
    transfer_syntax: str = ""
    syntax_guessed: bool = False

    @property
    def is_request(self) -> bool:
        return not (self.command_field & 0x8000)

    @property
    def transfer_time(self) -> float:
        """First byte -> last byte of this message (its PDUs' first and last frames)."""
        return max(0.0, self.end_time - self.start_time)

    @property
    def affected_sop_class(self) -> str:
        return str(self.command.get("AffectedSOPClassUID") or self.command.get("RequestedSOPClassUID") or "")

    @property
    def affected_sop_instance(self) -> str:
        return str(
            self.command.get("AffectedSOPInstanceUID") or self.command.get("RequestedSOPInstanceUID") or ""
        )
