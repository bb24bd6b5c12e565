"""What a connection decoder returns: typed events, h11-style.

The decoder is fed bytes and gaps and answers with a list of these; the pipeline
(``pipeline.apply.ModelWriter``) applies them to the model, so the protocol core
never touches the analysis.  One small object per event (``__slots__``, no
dataclass machinery), and none for the commonest: a framed PDU is returned as
its own record (``PduFramed`` is ``records.Pdu``).

Records are handed over by reference: an association or message keeps being
completed by the decoder after the event that introduced it (negotiation, the
release, responses, data-set fragments), as the model shows it while decoding.

Indices: the model refers to PDUs, associations and messages by their position in
the analysis, across all connections, and a decoder needs them at once (a message
names its PDUs, a finding its PDU and message, a response its request).  So the
decoder numbers what it makes from ``Numbering``, the analysis' id space, handed
in by the engine; applying the events in order puts each record at that index.
(Connection-local numbers would have to be translated on every later change the
decoder makes to a record it already returned.)
"""

from __future__ import annotations

from typing import Any

from dicomtui.core.protocol.findings import Group, Severity
from dicomtui.core.protocol.records import Pdu


class Numbering:
    """The index the model gives the next PDU, association and message (one per analysis)."""

    __slots__ = ("pdus", "associations", "messages")

    def __init__(self, pdus: int = 0, associations: int = 0, messages: int = 0) -> None:
        self.pdus = pdus
        self.associations = associations
        self.messages = messages


# A PDU was framed and decoded (summary included): the event is the PDU's record, stored as it
# is when returned.  No wrapper: one more object per PDU made the cyclic collector run 10% more
# often on a capture of small PDUs (300,000 PDUs, 1,000 per segment: 2,732 collections
# against 2,477), whatever the wrapper's size.
PduFramed = Pdu


class AssociationOpened:
    """A new association (an A-ASSOCIATE-RQ, or the first PDU of one picked up midway)."""

    __slots__ = ("association",)

    def __init__(self, association) -> None:
        self.association = association


class AssociationChanged:
    """The association moved along the state table, ``before`` -> ``after``.

    ``pdu`` is the index of the PDU that moved it (None at the end of the connection).
    """

    __slots__ = ("association", "before", "after", "pdu")

    def __init__(self, association, before, after, pdu: int | None) -> None:
        self.association = association
        self.before = before
        self.after = after
        self.pdu = pdu


class MessageStarted:
    """A DIMSE message's command set was decoded: the message exists (its data set may follow)."""

    __slots__ = ("message",)

    def __init__(self, message) -> None:
        self.message = message


class MessageComplete:
    """A DIMSE message ended (its last fragment arrived, or its stream ended)."""

    __slots__ = ("message",)

    def __init__(self, message) -> None:
        self.message = message


class Finding:
    """A protocol finding: a ``code`` and its ``params``; the sentence is made above the core.

    ``pipeline.finding_text`` phrases the built-in codes (a view or a translation may
    phrase them differently from the same code and parameters).
    """

    __slots__ = ("severity", "group", "code", "params", "frame", "association", "pdu", "message", "rule")

    def __init__(self, severity: Severity, group: Group, code: str, params: dict[str, Any], frame: int,
                 association: int | None = None, pdu: int | None = None, message: int | None = None,
                 rule: str = "decoder") -> None:
        self.severity = severity
        self.group = group
        self.code = code
        self.params = params
        self.frame = frame
        self.association = association
        self.pdu = pdu
        self.message = message
        self.rule = rule

    def __repr__(self) -> str:
        return f"Finding({self.code!r}, {self.params!r}, frame={self.frame})"
