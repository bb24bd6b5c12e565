"""PDV fragments to DIMSE messages (PS3.7 / PS3.8 annex E), one assembler per direction.

Sans-IO.  A message is a command set (one or more command PDVs, the last with
the last-fragment bit) optionally followed by a data set (data PDVs on the same
presentation context).  Fragments of different messages never interleave in one
direction of an association, so a single "current message" suffices.  Only the
command bytes are held; data set fragments are kept as stream ranges.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from dicomtui.core.base.errors import DecodeError
from dicomtui.core.protocol.dimse import (
    whole_elements,
    NO_DATASET,
    CommandFields,
    command_name,
    decode_command_fields,
)
from dicomtui.core.protocol.findings import Problem
from dicomtui.core.protocol.records import Fragment, Message, Pdv


@dataclass(slots=True)
class MessageEvent:
    kind: str  # "command" (command set decoded), "complete", "problem"
    message: Message | None
    problem: Problem | None = None


def starts_message(pdv: Pdv, in_message: bool, command_done: bool) -> bool:
    """Does this PDV begin a new message?  The one rule, for the assembler and for readers.

    Outside a message, any PDV does; inside one, a command PDV after the command set
    was finished does (the previous message ended without its data set, or had none).
    """
    return not in_message or (pdv.is_command and command_done)


def owns_fragment(message: Message, stream_offset: int) -> bool:
    """Is the data PDV starting at ``stream_offset`` one of ``message``'s data-set fragments?"""
    fragments = message.dataset_fragments
    at = bisect.bisect_left(fragments, stream_offset, key=lambda fragment: fragment.stream_offset)
    return at < len(fragments) and fragments[at].stream_offset == stream_offset


def pdv_owners(pdu_index: int, pdvs, messages: list[Message]) -> list[Message | None]:
    """For each PDV of a P-DATA PDU, the message the assembler put it in (None when none).

    ``messages`` are the messages with a PDV in this PDU, in stream order (a message
    that began in an earlier PDU first).  Applies the assembler's own rules
    (``starts_message``; a message with no data set ends with its command set; a data
    PDV belongs to the message whose fragments list it), so readers never re-derive them.
    """
    result: list[Message | None] = []
    queue = list(messages)
    current: Message | None = None
    command_done = False
    if queue and queue[0].first_pdu < pdu_index:
        current = queue.pop(0)
    for pdv in pdvs:
        if not pdv.is_command and current is not None and not owns_fragment(current, pdv.stream_offset):
            current = None
        if starts_message(pdv, current is not None, command_done):
            current = queue.pop(0) if queue else None
            command_done = False
        result.append(current)
        if current is None:
            continue
        if pdv.is_command:
            if pdv.is_last:
                command_done = True
                if not current.has_dataset:
                    current = None
        else:
            command_done = True
            if pdv.is_last:
                current = None
    return result


class MessageAssembler:
    __slots__ = ("direction", "current", "command_buffer", "command_done", "max_command")

    def __init__(self, direction: int, max_command: int = 1 << 16) -> None:
        self.direction = direction
        self.current: Message | None = None
        self.command_buffer = bytearray()
        self.command_done = False
        self.max_command = max_command

    def _new_message(self, pdv: Pdv, pdu_index: int, association: int, connection: int,
                     frames: tuple[int, int, float, float]) -> Message:
        first, last, start_ts, end_ts = frames
        message = Message(index=-1, association=association, connection=connection, direction=self.direction,
                          context_id=pdv.context_id, first_frame=first, last_frame=last,
                          start_time=start_ts, end_time=end_ts, first_pdu=pdu_index, last_pdu=pdu_index)
        self.current = message
        self.command_buffer = bytearray()
        self.command_done = False
        return message

    def add_pdv(self, pdv: Pdv, command_bytes: bytes | None, pdu_index: int, association: int, connection: int,
                frames: tuple[int, int, float, float], pdu_complete: bool,
                command_cut: bool = False) -> list[MessageEvent]:
        """One PDV into the current message.  ``command_cut``: ``command_bytes`` are only the captured
        start of the command PDV (a gap or the end of the capture followed); its whole elements are
        kept and decoded, and the message is incomplete."""
        events: list[MessageEvent] = []
        message = self.current
        if message is not None and starts_message(pdv, True, self.command_done):
            # A command PDV while the previous message still expects data: it was cut short (by its
            # sender, unless the capture lost part of it already: then its last PDV may be in a gap).
            if message.complete:
                events.append(MessageEvent("problem", message, Problem("dimse.dataset-unfinished", {})))
            message.complete = False
            message.incomplete_reason = message.incomplete_reason or "data set never finished"
            events.append(MessageEvent("complete", message))
            message = None
        if message is not None and pdv.context_id != message.context_id:
            events.append(MessageEvent("problem", message, Problem(
                "dimse.context-changed", {"context_id": pdv.context_id, "message_context_id": message.context_id})))
        if message is None:
            message = self._new_message(pdv, pdu_index, association, connection, frames)
            if not pdv.is_command:
                # Picked up mid-message, or a peer that sent data before a command.
                message.complete = False
                message.incomplete_reason = "command set not captured"
                message.command_name = "(data without command)"
                message.has_dataset = True
                self.command_done = True
                events.append(MessageEvent("command", message))
        message.last_pdu = pdu_index
        message.last_frame = max(message.last_frame, frames[1])
        message.end_time = max(message.end_time, frames[3])
        if not pdu_complete:
            message.complete = False
            message.incomplete_reason = message.incomplete_reason or "part of it was not captured (TCP gap)"
        if pdv.is_command:
            if command_bytes is None:
                message.complete = False
                message.incomplete_reason = message.incomplete_reason or "command fragment not captured"
            elif len(self.command_buffer) + len(command_bytes) <= self.max_command:
                self.command_buffer += command_bytes
            if command_cut:
                kept = whole_elements(bytes(self.command_buffer))
                message.complete = False
                message.incomplete_reason = message.incomplete_reason or (
                    f"command set cut by the capture after {len(self.command_buffer)} bytes")
                del self.command_buffer[kept:]
            if pdv.is_last:
                self.command_done = True
                message.command_bytes = bytes(self.command_buffer)
                self._decode_command(message, events)
                if command_cut and message.command_name == "(no CommandField)":
                    message.command_name = "(command set not captured)"
                events.append(MessageEvent("command", message))
                if not message.has_dataset:
                    events.append(MessageEvent("complete", message))
                    self.current = None
        else:
            message.dataset_fragments.append(Fragment(pdv.stream_offset, pdv.length))
            message.dataset_length += pdv.length
            if pdv.is_last:
                events.append(MessageEvent("complete", message))
                self.current = None
        return events

    def add_data_fragment(self, pdv: Pdv, pdu_index: int, last_frame: int, end_time: float) -> None:
        """``add_pdv`` of a data PDV, not the last, that continues the current message's data set
        in a complete PDU (the decoder checked all that): no events."""
        message = self.current
        message.last_pdu = pdu_index
        if last_frame > message.last_frame:
            message.last_frame = last_frame
        if end_time > message.end_time:
            message.end_time = end_time
        message.dataset_fragments.append(Fragment(pdv.stream_offset, pdv.length))
        message.dataset_length += pdv.length

    def _decode_command(self, message: Message, events: list[MessageEvent]) -> None:
        try:
            fields = decode_command_fields(message.command_bytes)
        except DecodeError as exc:
            message.command_name = "(malformed command set)"
            message.complete = False
            message.incomplete_reason = message.incomplete_reason or f"malformed command set: {exc}"
            events.append(MessageEvent("problem", message, Problem("dimse.malformed-command", {"error": str(exc)})))
            return
        # The dict itself is not kept; the summary, which reads it next, does not decode again.
        message.command = CommandFields.decoded(message.command_bytes, fields)
        command_field = fields.get("CommandField")
        message.command_field = command_field if isinstance(command_field, int) else 0
        message.command_name = command_name(message.command_field) if isinstance(command_field, int) \
            else "(no CommandField)"
        value = fields.get("MessageID")
        message.message_id = value if isinstance(value, int) else None
        value = fields.get("MessageIDBeingRespondedTo")
        message.responded_to = value if isinstance(value, int) else None
        value = fields.get("Status")
        message.status = value if isinstance(value, int) else None
        dataset_type = fields.get("CommandDataSetType")
        message.has_dataset = isinstance(dataset_type, int) and dataset_type != NO_DATASET

    def finish(self) -> list[MessageEvent]:
        message = self.current
        self.current = None
        if message is None:
            return []
        message.complete = False
        message.incomplete_reason = message.incomplete_reason or "capture or association ended inside the message"
        if not self.command_done:
            message.command_name = message.command_name or "(command incomplete)"
            return [MessageEvent("command", message), MessageEvent("complete", message)]
        return [MessageEvent("complete", message)]
