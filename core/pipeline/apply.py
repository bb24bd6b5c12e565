"""Applying a connection decoder's events to the model (the pipeline side of the sans-IO core).

The engine hands every non-empty list a decoder returns to ``ModelWriter.apply``
at once, before any other decoder runs, or takes each event as the decoder
puts it in the ``Outbox``, so records land at the indices the decoder took from
``numbering`` (the analysis' id space, shared by the connections' decoders).  Findings are worded here, from their code and
parameters (``finding_text``).
"""

from __future__ import annotations

from dicomtui.core.model import ExpertItem, Group, Severity
from dicomtui.core.model.analysis import Analysis
from dicomtui.core.pipeline.finding_text import phrase
from dicomtui.core.protocol.events import (
    AssociationChanged,
    AssociationOpened,
    Finding,
    MessageComplete,
    MessageStarted,
    Numbering,
    PduFramed,
)


def expert_item(finding: Finding) -> ExpertItem:
    return ExpertItem(finding.severity, finding.group, phrase(finding.code, finding.params), finding.frame,
                      finding.association, finding.pdu, finding.message, finding.rule, finding.code,
                      finding.params)


class ModelWriter:
    """Stores what decoders return: PDUs in the table, associations, messages, findings."""

    __slots__ = ("analysis", "numbering")

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.numbering = Numbering(len(analysis.pdus), len(analysis.associations), len(analysis.messages))

    def apply(self, events) -> None:
        apply_one = self.apply_one
        for event in events:
            apply_one(event)

    def apply_one(self, event) -> None:
        kind = type(event)
        if kind is PduFramed:  # the PDU's record
            # the table keeps a compact copy: later changes to the PDU object are lost
            self.analysis.pdus.append(event)
        elif kind is Finding:
            self.analysis.expert.append(expert_item(event))
        elif kind is MessageStarted:
            self.analysis.messages.append(event.message)
        elif kind is AssociationOpened:
            self.analysis.associations.append(event.association)
        elif kind is MessageComplete:
            # (the message is the model's own object, already up to date)
            if self.analysis.untimed_frames:
                self.analysis.clear_untimed_response_times(event.message)
        elif kind is not AssociationChanged:
            # (the association is the model's own object, already up to date)
            self._other(event)

    def _other(self, event) -> None:
        """A subclass of an event (a replacement decoder's), or something that is not an event."""
        if isinstance(event, PduFramed):
            self.analysis.pdus.append(event)
        elif isinstance(event, Finding):
            self.analysis.expert.append(expert_item(event))
        elif isinstance(event, MessageStarted):
            self.analysis.messages.append(event.message)
        elif isinstance(event, AssociationOpened):
            self.analysis.associations.append(event.association)
        elif not isinstance(event, (AssociationChanged, MessageComplete)):
            self.analysis.expert.append(ExpertItem(
                Severity.ERROR, Group.PLUGIN, f"the connection decoder returned {type(event).__name__}, "
                "which is not a protocol event (dicomtui.core.protocol.events); ignored", rule="plugins",
                code="plugin.bad_event"))


class Outbox:
    """Where a decoder may put its events instead of returning them: each is applied as it comes.

    Behaves as an always-empty list with ``append`` (so a decoder that returns "its list
    if not empty" returns nothing); offered to decoders as ``DecoderContext.outbox``.
    """

    __slots__ = ("append",)

    def __init__(self, writer: ModelWriter) -> None:
        self.append = writer.apply_one

    def __bool__(self) -> bool:
        return False

    def __len__(self) -> int:
        return 0
