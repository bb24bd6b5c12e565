"""The engine fed as a capture grows: frames analysed as they arrive, results as soon as decided.

``IncrementalAnalysis`` is a thin layer over the same ``Analysis`` and
``CaptureEngine`` that read files; nothing in the per-frame pass differs.
The file pipeline's phases (``phases.analyze``) run here too, spread over
time: scan as frames arrive; close a connection's streams once it ended (and
all of them at ``finish``); check each message and association once its
facts are in; complete the model, check the rest and freeze at ``finish``.
Sans-IO: the caller feeds the bytes of a pcap/pcapng stream (``feed``) and asks
what is new (``poll``); a capture process, a followed file or a test drives it.

What ``poll`` reports, and when it is decided:

- PDUs: when their last byte is in (the PDU table only grows).
- Associations: when they start, and when they end (A-RELEASE-RP, A-ABORT,
  A-ASSOCIATE-RJ, or the connection's FIN/RST once no frame of it has come for
  ``CLOSE_GRACE_SECONDS``: the engine then closes it as the end of a file would).
- Messages: when complete (no data set, or its last data set fragment is in, or
  a later message follows on the same direction, or the connection closed).
- Findings: a decoder's as they happen; a rule's on a message once it is
  complete and answered (a request with its final response) or its association
  ended, on an association when it ended.  Findings that only the end can
  decide are ``provisional`` while live: the association rules run on the open
  associations, ``dicomtui_check_provisional`` on the capture so far (e.g. a storage
  commitment not reported yet), plus one note per open association, replaced at every poll.
  ``finish`` settles everything as ``analyze`` does for a file.

Bytes: every block is written to a ``CaptureSpool`` (mapped segments), and the
records point into it, so the index keeps offsets, never payload.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from dicomtui.core.model import Association, ExpertItem, Group, Message, Severity
from dicomtui.core.model.analysis import Analysis, AnalysisConfig, PluginCaller
from dicomtui.core.pipeline.engine import CaptureEngine
from dicomtui.core.pipeline.phases import complete_model, renumber
from dicomtui.core.pipeline.retention import Retention, RetentionCounts
from dicomtui.core.pipeline.rules import ExpertReport, report_failures
from dicomtui.core.wire.capture import CaptureSource
from dicomtui.core.wire.capture_stream import (
    PACKET,
    SPOOL_SEGMENT_BYTES,
    BlockFiles,
    CaptureSpool,
    CaptureStreamParser,
)

CLOSE_GRACE_SECONDS = 2.0
# The provisional findings (the association rules over every open association) are recomputed when an
# association starts or ends, else at most this often (and never more than a tenth of the time).
PROVISIONAL_INTERVAL = 1.0
ENDED_STATES = ("released", "aborted", "rejected", "incomplete")
PENDING_STATUSES = (0xFF00, 0xFF01)
# Facts only the complete-model phase (``dicomtui_complete_model``) establishes; rules on messages that
# depend on them run when the capture stops: a C-MOVE's sub-associations are linked then
# (plugins/linking.py), and a data set's transfer syntax is guessed then when no negotiation was seen.
LINKED_AT_END_COMMANDS = frozenset({0x0021})


@dataclass(slots=True)
class LiveUpdate:
    """What became known since the previous poll."""

    pdus: range = range(0)
    associations_started: list[Association] = field(default_factory=list)
    associations_ended: list[Association] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # complete messages (export-ready if whole)
    expert: list[ExpertItem] = field(default_factory=list)  # settled findings
    provisional: list[ExpertItem] = field(default_factory=list)  # end-only findings as they stand now
    frames: int = 0  # frames so far
    final: bool = False
    dropped: RetentionCounts | None = None  # what the retention limit dropped so far


class IncrementalAnalysis:
    def __init__(self, config: AnalysisConfig | None, plugins: PluginCaller,
                 name: str = "<live>", spool: CaptureSpool | None = None, packet_limit: int = 0) -> None:
        self.config = config or AnalysisConfig()
        self.plugins = plugins
        # Segments a fraction of the spool limit, so the limit can drop whole segments while one is written.
        limit = self.config.limits.live_spool_mb << 20
        self.spool = spool or CaptureSpool(max(1 << 20, min(SPOOL_SEGMENT_BYTES, limit // 8)))
        self.parser = CaptureStreamParser(name)
        self.listeners: list[BlockFiles] = []  # e.g. the -w writer: gets every block as it is read
        self.packet_limit = packet_limit  # autostop after this many packets (0: none)
        source = CaptureSource(name=name, data=b"", format="live")
        analysis = Analysis([source], self.config, self.plugins)
        analysis.buffers = self.spool.buffers  # the engine indexes these lists by record source
        analysis.views = self.spool.views
        analysis.bytes_total = 0
        self.analysis = analysis
        self.engine = CaptureEngine(analysis)
        limits = self.config.limits
        self.retention = Retention(analysis, self.spool, limits.live_max_pdus, limits.live_spool_mb << 20)
        for failure in self.plugins.failures:
            analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN,
                                              f"plugin {failure.plugin} failed in {failure.where}: {failure.error}",
                                              rule="plugins", code="plugin.failed"))
        self._report = ExpertReport(analysis)
        self._checkpoints: deque = deque()  # (monotonic time, frames so far) per batch
        self._pdus_seen = 0
        self._associations_seen = 0
        self._messages_seen = 0
        self._expert_seen = 0
        self._open_associations: dict[int, Association] = {}
        self._unfinished: dict[int, Message] = {}  # messages still receiving fragments
        self._unsettled: dict[int, Message] = {}  # complete, waiting for an answer before the rules run
        self._closed_connections: set[int] = set()
        self.provisional: list[ExpertItem] = []
        self._provisional_next = 0.0
        self.packets = 0
        self.finished = False

    # -- input -----------------------------------------------------------------------------

    @property
    def stopped_by_limit(self) -> bool:
        return bool(self.packet_limit) and self.packets >= self.packet_limit

    def feed(self, data: bytes) -> int:
        """Bytes of the capture stream, in any chunking; returns the frames analysed from them.

        Raises CaptureError when the stream is not a capture.
        """
        self.parser.feed(data)
        records = []
        spool = self.spool
        next_block = self.parser.next_block
        while (block := next_block()) is not None:
            if block.kind == PACKET:
                if self.stopped_by_limit:
                    continue
                self.packets += 1
            for listener in self.listeners:
                listener.add(block)
            segment, offset = spool.add(block)
            if block.packet is not None:
                timestamp, link_type, data_offset, caplen, origlen = block.packet
                records.append((segment, timestamp, link_type, offset + data_offset, caplen, origlen))
                if not spool.first_frames[segment]:
                    spool.first_frames[segment] = self.analysis.frame_count + len(records)
        if records:
            self._run(records)
        return len(records)

    def _run(self, records: list[tuple]) -> None:
        analysis = self.analysis
        if analysis.first_time is None:
            analysis.first_time = records[0][1]
        analysis.frame_count, analysis.last_time = self.engine.run(
            records, _no_tick, 1 << 30, start=analysis.frame_count)
        analysis.tcp_frame_count = self.engine.tcp_frames
        analysis.bytes_done = analysis.bytes_total = self.spool.bytes_kept
        self._checkpoints.append((time.monotonic(), analysis.frame_count))

    # -- output ----------------------------------------------------------------------------

    def poll(self, provisional: bool = True) -> LiveUpdate:
        """What is new since the last poll (see the module docstring for when each thing is decided)."""
        analysis = self.analysis
        self._close_ended_connections()
        update = LiveUpdate(frames=analysis.frame_count)
        update.pdus = range(self._pdus_seen, len(analysis.pdus))
        self._pdus_seen = len(analysis.pdus)
        for index in range(self._associations_seen, len(analysis.associations)):
            association = analysis.associations[index]
            update.associations_started.append(association)
            self._open_associations[index] = association
        self._associations_seen = len(analysis.associations)
        for index in range(self._messages_seen, len(analysis.messages)):
            self._unfinished[index] = analysis.messages[index]
        self._messages_seen = len(analysis.messages)
        ended = [association for association in self._open_associations.values() if self._ended(association)]
        for association in ended:
            del self._open_associations[association.index]
        update.associations_ended = ended
        self._finish_messages(update)
        self._run_rules(update, ended)
        update.expert = analysis.expert[self._expert_seen:]
        now = time.monotonic()
        opened_or_closed = bool(update.associations_started or ended)
        if provisional and (opened_or_closed or now >= self._provisional_next):
            self.provisional = self._provisional()
            done = time.monotonic()
            # At most every PROVISIONAL_INTERVAL, and never more than a tenth of the time.
            self._provisional_next = done + max(PROVISIONAL_INTERVAL, 10 * (done - now))
        update.provisional = self.provisional
        self._retain()
        self._expert_seen = len(analysis.expert)
        update.dropped = self.retention.dropped
        return update

    def _retain(self) -> None:
        """Apply the retention limit; forget pending work on what it dropped."""
        if not self.retention.enforce(self._open_associations, self._closed_connections):
            return
        first_message = self.analysis.messages.base
        for pending in (self._unfinished, self._unsettled):
            for index in [index for index in pending if index < first_message]:
                del pending[index]

    def _close_ended_connections(self) -> None:
        """Let the engine close connections that ended a while ago (their decoders finish)."""
        threshold = time.monotonic() - CLOSE_GRACE_SECONDS
        before = 0
        checkpoints = self._checkpoints
        while checkpoints and checkpoints[0][0] <= threshold:
            before = checkpoints.popleft()[1]
        if before:
            self._checkpoints.appendleft((threshold, before))
            if self.engine.close_ended(before, self.analysis.frame_count):
                self._closed_connections = {connection.index for connection in self.analysis.connections
                                            if connection.last_frame}

    def _ended(self, association: Association) -> bool:
        if association.state in ("released", "aborted", "rejected"):
            return True
        return association.state == "incomplete" and association.connection in self._closed_connections

    def _message_complete(self, message: Message) -> bool:
        if message.connection in self._closed_connections:
            return True
        if not message.has_dataset:
            return bool(message.command_bytes) or not message.complete
        fragments = message.dataset_fragments
        pdus = self.analysis.pdus
        if not fragments or message.last_pdu >= len(pdus):
            return False
        last = fragments[-1].stream_offset
        return any(pdv.stream_offset == last and pdv.is_last and not pdv.is_command
                   for pdv in pdus[message.last_pdu].pdvs)

    def _finish_messages(self, update: LiveUpdate) -> None:
        latest: dict[tuple[int, int], int] = {}
        for index, message in self._unfinished.items():
            latest[(message.connection, message.direction)] = max(
                latest.get((message.connection, message.direction), -1), index)
        for index, message in list(self._unfinished.items()):
            followed = latest[(message.connection, message.direction)] > index
            if followed or self._message_complete(message):
                del self._unfinished[index]
                update.messages.append(message)
                self._unsettled[index] = message

    def _settled(self, message: Message) -> bool:
        """Complete and answered (or its association over): the message rules see what the end would show."""
        if message.command_field in LINKED_AT_END_COMMANDS or (message.has_dataset and not message.transfer_syntax):
            return False
        association = self.analysis.associations[message.association] if message.association >= 0 else None
        if association is None or association.index not in self._open_associations:
            return True
        if not message.is_request:
            request = self.analysis.messages[message.request] if message.request is not None else None
            return request is None or request.index not in self._unsettled
        messages = self.analysis.messages
        return any(messages[index].status not in PENDING_STATUSES and messages[index].index not in self._unfinished
                   for index in message.responses)

    def _run_rules(self, update: LiveUpdate, ended: list[Association]) -> None:
        plugins = self.plugins
        report = self._report
        analysis = self.analysis
        already_failed = len(plugins.failures)
        for index, message in sorted(self._unsettled.items()):
            if not self._settled(message):
                continue  # checked at a later poll, or by finish
            del self._unsettled[index]
            plugins.hook.dicomtui_check_message(message=message, analysis=analysis, report=report)
        for association in ended:
            plugins.hook.dicomtui_check_association(association=association, analysis=analysis, report=report)
        self._report_failures(already_failed)

    def _report_failures(self, since: int) -> None:
        report_failures(self.analysis, since)

    def _provisional(self) -> list[ExpertItem]:
        """The association rules over the open associations, as they stand (not kept)."""
        analysis = self.analysis
        plugins = self.plugins
        report = self._report
        mark = len(analysis.expert)
        already_failed = len(plugins.failures)
        for association in list(self._open_associations.values()):
            plugins.hook.dicomtui_check_association(association=association, analysis=analysis, report=report)
        plugins.hook.dicomtui_check_provisional(analysis=analysis, report=report)
        items = analysis.expert[mark:]
        del analysis.expert[mark:]
        del plugins.failures[already_failed:]
        for association in self._open_associations.values():
            items.append(ExpertItem(
                Severity.NOTE, Group.CAPTURE,
                f"association {association.calling_ae or '?'} → {association.called_ae or '?'} is still open "
                f"({association.state}); its end-of-association findings settle when it ends or the capture stops",
                association.last_frame or association.first_frame, association.index, rule="live",
                code="live.association_open"))
        return items

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> LiveUpdate:
        """The capture stopped: settle everything as reading the saved file would."""
        analysis = self.analysis
        update = self.poll(provisional=False)
        self.engine.finish()
        remaining_messages = list(self._unsettled.values()) + list(self._unfinished.values())
        remaining_messages += analysis.messages[self._messages_seen:]
        remaining_associations = list(self._open_associations.values()) + \
            analysis.associations[self._associations_seen:]
        late = self.poll(provisional=False)  # what the engine's finish produced (PDUs, findings)
        update.pdus = range(update.pdus.start, late.pdus.stop)
        update.associations_started += late.associations_started
        update.messages += late.messages
        update.expert += late.expert
        # The file pipeline's phases from here: close streams (above), number for display, complete
        # the model, check (what was not checked live), freeze.
        if not self.spool_dropped:
            renumber(analysis)
        complete_model(analysis)
        failed_before = len(self.plugins.failures)
        report = self._report
        mark = len(analysis.expert)
        seen_messages = set()
        for message in sorted(remaining_messages, key=lambda message: message.index):
            if message.index in seen_messages:
                continue
            seen_messages.add(message.index)
            self.plugins.hook.dicomtui_check_message(message=message, analysis=analysis, report=report)
        seen_associations = set()
        for association in sorted(remaining_associations, key=lambda association: association.index):
            if association.index in seen_associations:
                continue
            seen_associations.add(association.index)
            self.plugins.hook.dicomtui_check_association(association=association, analysis=analysis, report=report)
        self.plugins.hook.dicomtui_check_analysis(analysis=analysis, report=report)
        self._report_failures(failed_before)
        for note in analysis.notes:
            analysis.expert.append(ExpertItem(Severity.WARNING, Group.CAPTURE, f"{note.source}: {note.message}",
                                              analysis.frame_count, rule="capture",
                                              code="capture.reader_note"))
        update.expert += analysis.expert[mark:]
        update.associations_ended = [association for association in remaining_associations]
        self._open_associations.clear()
        self._unfinished.clear()
        self._unsettled.clear()
        analysis.expert.sort(key=lambda item: (item.frame, -item.severity))
        analysis.release_pages()
        self.provisional = []
        update.provisional = []
        update.final = True
        update.frames = analysis.frame_count
        analysis.finished = True
        self.finished = True
        return update

    @property
    def spool_dropped(self) -> bool:
        return self.retention.dropped.any

    def close(self) -> None:
        self.spool.close()


def _no_tick(frame_number: int, offset: int, timestamp: float) -> None:
    pass
