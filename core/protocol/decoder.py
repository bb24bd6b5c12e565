"""The built-in DICOM connection decoder: framing, PDUs, association state, DIMSE messages.

Sans-IO, h11-style: the engine feeds each direction's in-order bytes and gaps;
each call returns the typed events it caused (``protocol.events``: PDUs framed,
associations opened and changed, messages started and complete, findings as a
code and parameters), which the pipeline applies to the model.  The decoder
asks its host only read-only questions: which frames carried a stream range
(``frames``), what a status code means (``status_meaning``), and it numbers what
it makes from the analysis' id space (``numbering``; see ``protocol.events``).

``frames`` stays a query rather than part of the input: the engine records every
segment's frame in the connection's chunk map anyway, including the segments it
hands over unseen with ``skip``; a PDU's frames are looked up once, when it is
framed.  Passing frames with the bytes would cost every segment and defeat ``skip``.

It composes the pieces that each live in their own module:
``framing`` (PDUs and PDVs from bytes), ``pdu`` (body decoders, through the
registered decoder table, read through the ``AssociateBody``/``RejectBody``/
``AbortBody`` protocols so a replacement decoder works), ``state`` (the
association state table), ``negotiation`` (what A-ASSOCIATE items set) and
``messages`` (PDVs to DIMSE messages).
"""

from __future__ import annotations

from dicomtui.core.base.errors import DecodeError
from dicomtui.core.base.uids import uid_label
from dicomtui.core.protocol import negotiation
from dicomtui.core.protocol.events import (
    AssociationChanged,
    AssociationOpened,
    Finding,
    MessageComplete,
    MessageStarted,
)
from dicomtui.core.protocol.findings import Group, Problem, Severity
from dicomtui.core.protocol.framing import FramedPdu, PduStreamParser, StreamProblem
from dicomtui.core.protocol.messages import MessageAssembler
from dicomtui.core.protocol.pdu import AbortBody, AssociateBody, RejectBody, conforms
from dicomtui.core.protocol.records import (
    PDU_HEADER_LENGTH,
    Association,
    AssociationEnd,
    Message,
    Pdu,
    PresentationContext,
)
from dicomtui.core.protocol.state import OPEN_STATES, AssociationState, PduType, Side, Violation, transition
from dicomtui.core.wire.tcp import Gap

_NO_EVENTS: tuple = ()


def _params(problem: str | Problem) -> dict:
    """A finding's parameters for a problem: a coded one's code and parameters, or a body decoder's text."""
    if isinstance(problem, str):
        return {"detail": problem}
    return {"problem": problem.code, **problem.params}


KIND_BY_TYPE = {1: "association", 2: "association", 3: "reject", 4: "data", 5: "release", 6: "release",
                7: "abort"}


def _sub_operations(command: dict) -> str:
    counts = [command.get(key) for key in ("NumberOfRemainingSuboperations", "NumberOfCompletedSuboperations",
                                           "NumberOfFailedSuboperations", "NumberOfWarningSuboperations")]
    if all(count is None for count in counts):
        return ""
    labels = ("remaining", "completed", "failed", "warning")
    return " " + " ".join(f"{label}={count}" for label, count in zip(labels, counts) if count is not None)


class ConnectionDecoder:
    def __init__(self, connection, config, pdu_decoders: dict, host, outbox=None) -> None:
        self.connection = connection
        self.config = config
        self.limits = config.limits
        self.pdu_decoders = pdu_decoders
        self.frames = host.frames
        self.status_meaning = host.status_meaning
        self.numbering = host.numbering
        # What the current call caused: a list returned at its end, or, when given, the
        # host's outbox, which takes each event as it comes (see ``receive_data``).
        self.events = outbox if outbox is not None else []
        midway = connection.picked_up_midway
        self.parsers = (PduStreamParser(self.limits, midway), PduStreamParser(self.limits, midway))
        self.assemblers = (MessageAssembler(0, self.limits.max_command), MessageAssembler(1, self.limits.max_command))
        self.association: Association | None = None
        self.requests: dict[tuple[int, int, int], Message] = {}  # (association, direction, message id)
        self.release_requester: int | None = None  # direction that sent A-RELEASE-RQ
        self.violation_state: AssociationState | None = None  # the state the last PDU was sent in
        # The data-fragment shortcut (``_data_fragment``); off on the reference path, which tests
        # compare with.
        self.shortcut = config.fast_path

    # -- input from the engine -------------------------------------------------------------

    def receive_data(self, direction: int, stream_offset: int, data) -> list:
        """Bytes of ``direction`` from ``stream_offset`` on; returns the events they caused.

        With a host ``outbox`` the events went there one by one instead (and the list is
        empty): a segment carrying a thousand small PDUs would otherwise keep a thousand
        PDU records alive until the call returns, and the cyclic collector would scan
        and promote them (on 300,000 tiny PDUs: 20% more collections, +0.4 s).
        """
        for event in self.parsers[direction].feed(stream_offset, data):
            self._handle(direction, event)
        return self._take_events()

    def skippable(self, direction: int) -> int:
        """Bytes of ``direction`` the engine may pass with ``skip`` instead of ``receive_data``."""
        return self.parsers[direction].skippable()

    def skip(self, direction: int, length: int) -> None:
        """``receive_data`` of the next ``length`` bytes, which hold no PDU or PDV boundary."""
        self.parsers[direction].skip(length)

    def receive_gap(self, direction: int, gap: Gap) -> list:
        """Bytes of ``direction`` the capture lost; returns the events this caused."""
        association = self.association.index if self.association else None
        self.events.append(Finding(Severity.WARNING, Group.SEQUENCE, "tcp.gap",
                                   {"direction": direction, "length": gap.length, "stream_offset": gap.stream_offset,
                                    "reason": gap.reason}, gap.frame, association, rule="tcp-gap"))
        for event in self.parsers[direction].gap(gap):
            self._handle(direction, event)
        return self._take_events()

    def _take_events(self):
        events = self.events
        if events:  # a list with events (an outbox is always empty)
            self.events = []
            return events
        return _NO_EVENTS

    def finish(self) -> list:
        """The end of both streams: what was cut short, and the association's last state."""
        for direction in (0, 1):
            for event in self.parsers[direction].finish():
                self._handle(direction, event)
        for direction in (0, 1):
            for event in self.assemblers[direction].finish():
                self._message_event(direction, event, None)
        association = self.association
        if association is not None and association.state in OPEN_STATES:
            closed = self.connection.closed_by
            association.end_reason = (f"connection closed ({closed}) without A-RELEASE" if closed
                                      else "capture ended while the association was open")
            association.ended_by = AssociationEnd.CONNECTION_CLOSED if closed else AssociationEnd.CAPTURE_ENDED
            before = association.state
            releasing = before == AssociationState.RELEASING
            association.state = AssociationState.RELEASED if closed and releasing else AssociationState.INCOMPLETE
            self.events.append(AssociationChanged(association, before, association.state, None))
        return self._take_events()

    # -- events ----------------------------------------------------------------------------

    def _handle(self, direction: int, event) -> None:
        if isinstance(event, StreamProblem):
            first, _last, _start, _end = self.frames(direction, event.stream_offset, event.stream_offset + 1)
            self.events.append(Finding(
                Severity.ERROR if event.malformed else Severity.WARNING,
                Group.MALFORMED if event.malformed else Group.SEQUENCE,
                "framing.invalid-header" if event.malformed else "framing.skipped", _params(event.problem),
                first, self.association.index if self.association else None, rule="framing"))
            return
        if not (self.shortcut and self._data_fragment(direction, event)):
            self._pdu(direction, event)

    def _new_association(self, pdu_model: Pdu, state: AssociationState, midway: bool) -> Association:
        numbering = self.numbering
        association = Association(index=numbering.associations, connection=self.connection.index,
                                  start_time=pdu_model.timestamp, first_frame=pdu_model.first_frame,
                                  picked_up_midway=midway, state=state)
        numbering.associations += 1
        self.events.append(AssociationOpened(association))
        self.association = association
        return association

    def _pdu(self, direction: int, framed: FramedPdu) -> None:
        """One framed PDU: decode its body, move the association's state, report, describe, store."""
        pdu_frames = self.frames(direction, framed.stream_offset, framed.end_offset)
        # The PDU is returned (as its record, a PduFramed) only once complete, summary included; its index
        # is taken now, for the association, messages and findings that refer to it.
        numbering = self.numbering
        index = numbering.pdus
        numbering.pdus = index + 1
        pdu_model = Pdu(index=index, connection=self.connection.index, direction=direction,
                        stream_offset=framed.stream_offset, pdu_type=framed.pdu_type, length=framed.length,
                        first_frame=pdu_frames[0], last_frame=pdu_frames[1], timestamp=pdu_frames[3],
                        complete=framed.complete, kind=KIND_BY_TYPE.get(framed.pdu_type, "other"),
                        pdvs=tuple(framed.pdvs))
        problems = list(framed.problems)
        decoded = self._decode_body(framed, pdu_model, problems)
        association, violation = self._advance(direction, pdu_model)
        if framed.pdu_type in (PduType.A_ASSOCIATE_RQ, PduType.A_ASSOCIATE_AC) and not framed.complete:
            _cut_associate(association, framed)
        handler = self._HANDLERS.get(framed.pdu_type)
        if handler is not None:
            pdu_model.summary = handler(self, association, pdu_model, decoded, problems)
        pdu_model.association = association.index
        association.last_frame = max(association.last_frame, pdu_model.last_frame)
        self._report(direction, pdu_model, violation, problems, framed.capture_problems)
        if framed.pdu_type == PduType.P_DATA_TF:
            pdu_model.summary = self._pdata(direction, framed, pdu_model, association, pdu_frames)
        if not framed.complete and not pdu_model.summary.endswith("[incomplete]"):
            pdu_model.summary += " [incomplete]"
        self.events.append(pdu_model)  # PduFramed

    def _data_fragment(self, direction: int, framed: FramedPdu) -> bool:
        """The PDU of a large transfer, handled in a few steps; False when it is not one.

        A whole P-DATA-TF of one data PDV, not the last, continuing the data set of a message
        whose command is complete, on an accepted context of an established association:
        nothing to check, no finding possible, and the same records ``_pdu`` would make
        (tests compare the two through the reference path, which does not take this one).
        """
        association = self.association
        pdvs = framed.pdvs
        if framed.pdu_type != PduType.P_DATA_TF or association is None \
                or association.state is not AssociationState.ESTABLISHED or len(pdvs) != 1 \
                or not framed.complete or framed.problems or framed.capture_problems:
            return False
        pdv = pdvs[0]
        assembler = self.assemblers[direction]
        message = assembler.current
        if pdv.is_command or pdv.is_last or message is None or not assembler.command_done \
                or message.context_id != pdv.context_id:
            return False
        context = association.contexts.get(pdv.context_id)
        if context is None or context.result not in (0, None):
            return False
        first, last, _start, end = self.frames(direction, framed.stream_offset, framed.end_offset)
        numbering = self.numbering
        index = numbering.pdus
        numbering.pdus = index + 1
        self.violation_state = association.state
        if last > association.last_frame:
            association.last_frame = last
        assembler.add_data_fragment(pdv, index, last, end)
        self.events.append(Pdu(  # PduFramed
            index, self.connection.index, direction, framed.stream_offset, PduType.P_DATA_TF, framed.length, first,
            last, end, association.index, (pdv,), "P-DATA, PDV Fragment", True, "data"))
        return True

    def _decode_body(self, framed: FramedPdu, pdu_model: Pdu, problems: list[str | Problem]):
        """The registered decoder's object for a control PDU's body (None for P-DATA or when malformed)."""
        if framed.body is None or framed.pdu_type == PduType.P_DATA_TF:
            return None
        decoder = self.pdu_decoders.get(framed.pdu_type)
        if decoder is None:
            return None
        try:
            return decoder(framed.body)
        except DecodeError as exc:
            problems.append(Problem("pdu.body-malformed", {"pdu_type": framed.pdu_type, "error": str(exc),
                                                           "offset": exc.offset + PDU_HEADER_LENGTH}))
        except Exception as exc:  # a plugin decoder must not stop the analysis
            problems.append(Problem("pdu.body-decoder-raised", {"pdu_type": framed.pdu_type,
                                                                "exception": type(exc).__name__, "error": str(exc)}))
        return None

    def _advance(self, direction: int, pdu_model: Pdu) -> tuple[Association, Violation | None]:
        """Move the association along the state table; a new one for a request (or a capture's first PDU)."""
        association = self.association
        pdu_type = pdu_model.pdu_type
        if pdu_type == PduType.A_ASSOCIATE_RQ:
            state, violation = transition(association.state if association else None, pdu_type, direction)
            association = self._new_association(pdu_model, state, False)
            association.request_pdu = pdu_model.index
            return association, violation
        if association is None:
            # Picked up after the negotiation: assume it was accepted, unless this is its answer.
            answer = pdu_type in (PduType.A_ASSOCIATE_AC, PduType.A_ASSOCIATE_RJ)
            association = self._new_association(
                pdu_model, AssociationState.REQUESTED if answer else AssociationState.ESTABLISHED, True)
        before = association.state
        state, violation = transition(before, pdu_type, direction, self.release_requester,
                                      answered=association.response_pdu is not None)
        self.violation_state = before
        association.state = state
        if state is not before:
            self.events.append(AssociationChanged(association, before, state, pdu_model.index))
        if pdu_type == PduType.A_RELEASE_RQ:
            self.release_requester = direction
        return association, violation

    # Per PDU type: update the association from the decoded body; return the PDU's summary.

    def _on_request(self, association: Association, pdu_model: Pdu, decoded, problems: list[str | Problem]) -> str:
        if not conforms(decoded, AssociateBody):
            if not pdu_model.complete:  # cut by the capture, not malformed: the AE titles if they were captured
                return f"A-ASSOCIATE request {association.calling_ae or '?'} --> {association.called_ae or '?'}"
            return "A-ASSOCIATE request (malformed)"
        problems += negotiation.apply_request(association, decoded, self.limits.max_contexts)
        return f"A-ASSOCIATE request {association.calling_ae} --> {association.called_ae}"

    def _on_accept(self, association: Association, pdu_model: Pdu, decoded, problems: list[str | Problem]) -> str:
        association.response_pdu = pdu_model.index
        association.established_time = pdu_model.timestamp
        if conforms(decoded, AssociateBody):
            problems += negotiation.apply_accept(association, decoded)
        return f"A-ASSOCIATE accept  {association.calling_ae} <-- {association.called_ae}"

    def _on_reject(self, association: Association, pdu_model: Pdu, decoded, problems: list[str | Problem]) -> str:
        association.response_pdu = pdu_model.index
        reason = "malformed"
        if conforms(decoded, RejectBody):
            negotiation.apply_reject(association, decoded)
            reason = decoded.text
        association.ended_by = AssociationEnd.REJECTED
        association.end_time = pdu_model.timestamp
        pdu_model.kind = "reject"
        return f"A-ASSOCIATE reject  {association.calling_ae} <-- {association.called_ae} ({reason})"

    def _on_release_request(self, association: Association, pdu_model: Pdu, decoded, problems: list[str | Problem]) -> str:
        return "A-RELEASE request"

    def _on_release_response(self, association: Association, pdu_model: Pdu, decoded, problems: list[str | Problem]) -> str:
        association.end_reason = "released normally"
        association.ended_by = AssociationEnd.RELEASED
        association.end_time = pdu_model.timestamp
        return "A-RELEASE response"

    def _on_abort(self, association: Association, pdu_model: Pdu, decoded, problems: list[str | Problem]) -> str:
        body = decoded if conforms(decoded, AbortBody) else None
        negotiation.apply_abort(association, body)
        if association.state is not AssociationState.RELEASED:  # an abort after a release ends nothing
            association.ended_by = AssociationEnd.ABORTED
            association.end_time = pdu_model.timestamp
        return "ABORT " + (body.text if body is not None else "(malformed)")

    _HANDLERS = {PduType.A_ASSOCIATE_RQ: _on_request, PduType.A_ASSOCIATE_AC: _on_accept,
                 PduType.A_ASSOCIATE_RJ: _on_reject, PduType.A_RELEASE_RQ: _on_release_request,
                 PduType.A_RELEASE_RP: _on_release_response, PduType.A_ABORT: _on_abort}

    def _report(self, direction: int, pdu_model: Pdu, violation: Violation | None, problems: list[str | Problem],
                capture_problems: list[Problem]) -> None:
        events = self.events
        frame, association, index = pdu_model.last_frame, pdu_model.association, pdu_model.index
        if violation is not None:
            events.append(Finding(Severity.ERROR, Group.SEQUENCE, f"state.{violation.value}",
                                  {"violation": violation, "state": self.violation_state,
                                   "side": Side(direction)},
                                  frame, association, index, rule="protocol-order"))
        for problem in problems:
            events.append(Finding(Severity.ERROR, Group.MALFORMED, "pdu.malformed", _params(problem),
                                  frame, association, index, rule="pdu"))
        for problem in capture_problems:
            # the capture, not the peer, lost the rest of this PDU (the gap has its own item)
            events.append(Finding(Severity.NOTE, Group.CAPTURE, "pdu.not-captured", _params(problem),
                                  frame, association, index, rule="pdu"))

    def _pdata(self, direction: int, framed: FramedPdu, pdu_model: Pdu, association: Association,
               pdu_frames: tuple[int, int, float, float]) -> str:
        parts: list[str] = []
        assembler = self.assemblers[direction]
        for number, pdv in enumerate(framed.pdvs):
            context = association.contexts.get(pdv.context_id)
            if context is None:
                context = PresentationContext(pdv.context_id, guessed=True)
                association.contexts[pdv.context_id] = context
                if not association.picked_up_midway and not association.negotiation_cut:
                    self.events.append(Finding(Severity.ERROR, Group.PROTOCOL, "pdv.context-not-negotiated",
                                               {"context_id": pdv.context_id}, pdu_model.last_frame,
                                               association.index, pdu_model.index, rule="pdv-context"))
            elif context.result not in (0, None):
                self.events.append(Finding(Severity.ERROR, Group.PROTOCOL, "pdv.context-rejected",
                                           {"context_id": pdv.context_id, "result": context.result},
                                           pdu_model.last_frame, association.index, pdu_model.index,
                                           rule="pdv-context"))
            # A message's frames and times are those of the PDUs that carry it.
            events = assembler.add_pdv(pdv, framed.commands.get(number), pdu_model.index, association.index,
                                       self.connection.index, pdu_frames, framed.complete,
                                       command_cut=number in framed.cut_commands)
            described = False
            for event in events:
                text = self._message_event(direction, event, pdu_model)
                if text and event.kind == "command":
                    parts.append(text)
                    described = True
            if not described and not pdv.is_command:
                if pdv.is_last:
                    parts.append(f"{uid_label(context.abstract_syntax) or 'Data set'} (last fragment)"
                                 if context.abstract_syntax else "Data set (last fragment)")
                else:
                    parts.append("PDV Fragment")
        summary = "P-DATA, " + ", ".join(dict.fromkeys(parts)) if parts else "P-DATA"
        return summary

    def _message_event(self, direction: int, event, pdu_model: Pdu | None) -> str:
        message = event.message
        if message is None:
            return ""
        association = self.association
        if event.kind == "problem":
            self.events.append(Finding(Severity.ERROR, Group.MALFORMED, "dimse.malformed", _params(event.problem),
                                       message.last_frame, message.association,
                                       pdu_model.index if pdu_model else None,
                                       message.index if message.index >= 0 else None, rule="dimse"))
            return ""
        if event.kind == "command":
            if message.index < 0:
                context = association.contexts.get(message.context_id) if association else None
                if context is not None:
                    message.transfer_syntax = context.transfer_syntax
                    if not context.abstract_syntax and message.affected_sop_class:
                        context.abstract_syntax = message.affected_sop_class
                numbering = self.numbering
                message.index = numbering.messages
                numbering.messages += 1
                self.events.append(MessageStarted(message))
                if association is not None:
                    association.message_count += 1
                self._pair(message)
            return self._describe(message)
        if event.kind == "complete":
            if message.request is not None:
                # Only now is the response's last byte known (a data set may follow the command).
                message.response_time = max(0.0, message.end_time - self._request_end(message))
            if message.index >= 0:
                self.events.append(MessageComplete(message))
        return ""

    def _pair(self, message: Message) -> None:
        if message.is_request and message.message_id is not None:
            self.requests[(message.association, message.direction, message.message_id)] = message
            return
        if message.responded_to is None:
            return
        request = self.requests.get((message.association, 1 - message.direction, message.responded_to))
        if request is None:
            return
        message.request = request.index
        request.responses.append(message.index)
        message.first_byte_time = max(0.0, message.start_time - request.end_time)
        message.response_time = max(0.0, message.end_time - request.end_time)

    def _request_end(self, response: Message) -> float:
        request = self.requests.get((response.association, 1 - response.direction, response.responded_to))
        return request.end_time if request is not None else response.start_time

    def _describe(self, message: Message) -> str:
        name = message.command_name
        if message.is_request:
            text = f"{name} ID={message.message_id}" if message.message_id is not None else name
            sop = message.affected_sop_class
            if sop:
                text += f" {uid_label(sop)}"
            destination = message.command.get("MoveDestination")
            if destination:
                text += f" to {destination}"
            return text
        text = f"{name} ID={message.responded_to}" if message.responded_to is not None else name
        if message.status is not None:
            _category, meaning = self.status_meaning(message.command_field, message.status,
                                                     message.affected_sop_class)
            text += f" ({meaning})" if message.status else " (Success)"
        return text + _sub_operations(message.command)


def _cut_associate(association: Association, framed: FramedPdu) -> None:
    """An A-ASSOCIATE-RQ or -AC the capture cut: its contexts are not known (so a PDV on one is no
    protocol error); each AE title is kept when its 16 bytes were captured (body bytes 4-20, 20-36)."""
    association.negotiation_cut = True
    body = framed.partial_body
    for name, start in (("called_ae", 4), ("calling_ae", 20)):
        title = body[start : start + 16]
        if len(title) == 16 and not getattr(association, name) and all(0x20 <= byte < 0x7F for byte in title):
            setattr(association, name, title.decode("ascii").strip())
