"""De-identify a whole capture: the analysis in, a new capture (and optionally Part 10 files) out.

The engine has already put every TCP stream back together and found every PDU
and DIMSE message.  This module rewrites them and regenerates the traffic:

1. every complete DIMSE message: its command set (instance UIDs, AE titles on
   request) and its data set (the profile, in the transfer syntax it travelled in)
   are rewritten, then cut into as many P-DATA-TF PDUs as its fragments had on the
   wire (never over the receiver's maximum PDU length);
2. every other PDU: A-ASSOCIATE-RQ/AC rewritten (AE titles, user identity), the
   rest (RJ, release, abort) carried as they were;
3. each PDU goes out at the capture time of the frame that completed the original
   bytes, in the original order across connections, inside a freshly generated TCP
   connection (handshake, segments, ACKs, FIN or RST) with the same ports and
   (mapped on request) addresses.

What cannot be rewritten with confidence is left out and counted in the report: an
incomplete message (a gap, or the capture ended), a PDU cut by a gap, a data set
that does not parse, an unknown PDU type, bytes between PDUs, non-DICOM traffic.
"""

from __future__ import annotations

import struct
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from dicomtui.core.base.errors import DecodeError
from dicomtui.core.base.wording import counted
from dicomtui.core.protocol.datasets import guess_transfer_syntax
from dicomtui.core.wire.packet import format_address

from .deidentify import CodecError, DatasetCodec, Deidentifier
from .mapping import Pseudonymizer
from .netwrite import TcpFlow, ethernet_macs, split_endpoint, synthetic_mac
from .pdus import command_dataset, pdata_pdus, rewrite_associate, rewrite_command
from .profile import Profile
from .report import AnonymizeReport

C_STORE_RQ = 0x0001
IDENTIFIER_COMMANDS = frozenset((0x0020, 0x8020, 0x0021, 0x8021, 0x0010, 0x8010))  # FIND, MOVE, GET
P_DATA = 4
KEPT_AS_IS = frozenset((3, 5, 6, 7))  # A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT: no identifying fields


@dataclass(slots=True)
class AnonymizeSettings:
    options: frozenset[str] = frozenset()
    map_network: bool = False
    map_ae: bool = False
    time_shift: float = 0.0  # seconds added to every timestamp
    strip_pixel_data: bool = False
    secret: bytes | None = None  # None: a new random secret (replacements differ between runs)

    def as_json(self) -> dict:
        return {"anonymize_network": self.map_network, "anonymize_ae": self.map_ae,
                "time_shift_seconds": self.time_shift, "strip_pixel_data": self.strip_pixel_data}


@dataclass(slots=True)
class RewrittenMessage:
    message: object
    command: bytes
    dataset: bytes | None = None
    transfer_syntax: str = ""
    sop_class: str = ""
    sop_instance: str = ""


@dataclass(order=True, slots=True)
class Event:
    """One PDU to send: ordered by capture frame, then time, then place in its stream."""

    frame: float
    timestamp: float
    connection: int
    direction: int
    offset: tuple = ()
    payload: bytes = field(default=b"", compare=False)


class CaptureAnonymizer:
    def __init__(self, analysis, settings: AnonymizeSettings, keep_datasets: bool = False) -> None:
        self.analysis = analysis
        self.keep_datasets = keep_datasets
        self.settings = settings
        self.profile = Profile(settings.options)
        self.pseudo = Pseudonymizer(settings.secret)
        self.deid = Deidentifier(self.profile, self.pseudo, settings.strip_pixel_data, settings.map_ae)
        self.report = AnonymizeReport(self.profile.edition, sorted(settings.options), settings.as_json(),
                                      changes=self.deid.changes)
        self.messages: dict[int, RewrittenMessage] = {}
        self.events: list[Event] = []
        self.rewritten = False

    # -- DIMSE messages ----------------------------------------------------------------------

    def rewrite_messages(self) -> None:
        if self.rewritten:
            return
        self.rewritten = True
        with warnings.catch_warnings():
            # pydicom warns about every invalid value it meets; the analysis already reported them
            warnings.simplefilter("ignore")
            for message in self.analysis.messages:
                rewritten = self._message(message)
                if rewritten is not None:
                    self.messages[message.index] = rewritten
        for warning, count in sorted(self.deid.pixel_warnings.items()):
            if "YES" in warning:
                self.report.warnings.append(
                    f"{count} object(s) kept pixel data marked BurnedInAnnotation YES: identifying text is "
                    "burned into the image; use --strip-pixel-data or clean the pixels before sharing")
            else:
                self.report.warnings.append(
                    f"{count} object(s) kept their pixel data ({warning}): burned-in annotations, if any, "
                    "are not removed; check the images or use --strip-pixel-data")

    def _message(self, message) -> RewrittenMessage | None:
        dropped = self.report.dropped
        if not message.complete:
            dropped["incomplete DIMSE messages (gap in the capture, or it ended mid-message)"] += 1
            return None
        try:
            command = command_dataset(bytes(message.command_bytes))
        except CodecError:
            dropped["DIMSE messages whose command set does not parse"] += 1
            return None
        rewritten = RewrittenMessage(message, b"")
        if message.has_dataset:
            data = self.analysis.dataset_bytes(message)
            if data is None:
                dropped["DIMSE messages whose data set the capture lacks"] += 1
                return None
            syntax = message.transfer_syntax or guess_transfer_syntax(data)
            codec = DatasetCodec(syntax, self.analysis.config.limits)
            try:
                dataset = codec.read(data)
            except CodecError:
                dropped["DIMSE messages whose data set does not parse (message left out)"] += 1
                return None
            try:
                self.deid.apply(dataset, composite=message.command_field == C_STORE_RQ)
                rewritten.dataset = codec.write(dataset)
            except Exception:  # noqa: BLE001  (a value pydicom cannot convert: leave the message out)
                dropped["DIMSE messages whose data set cannot be de-identified (message left out)"] += 1
                return None
            rewritten.transfer_syntax = syntax
            rewritten.sop_class = str(dataset.get("SOPClassUID", "") or message.affected_sop_class)
            rewritten.sop_instance = str(dataset.get("SOPInstanceUID", "") or "")
            kind = ("query/retrieve identifiers" if message.command_field in IDENTIFIER_COMMANDS
                    else "stored objects (C-STORE data sets)" if message.command_field == C_STORE_RQ
                    else "other data sets (N-services, ...)")
            self.report.objects[kind] += 1
        try:
            rewritten.command = rewrite_command(command, self.pseudo, self.settings.map_ae, self.deid.clean_text,
                                                self.deid.changes)
        except Exception:  # noqa: BLE001  (as above, for the command set)
            dropped["DIMSE messages whose command set does not parse"] += 1
            return None
        self.report.objects["command sets"] += 1
        return rewritten

    # -- PDUs as events --------------------------------------------------------------------

    def _max_pdu(self, association_index: int, direction: int) -> int:
        if not 0 <= association_index < len(self.analysis.associations):
            return 0
        association = self.analysis.associations[association_index]
        limit = association.acceptor_max_pdu if direction == 0 else association.requestor_max_pdu
        return limit or 0

    def build_events(self) -> None:
        analysis = self.analysis
        dropped = self.report.dropped
        for pdu in analysis.pdus:
            if pdu.pdu_type == P_DATA:
                if not pdu.complete:
                    dropped["P-DATA-TF PDUs cut by a gap or the capture end"] += 1
                continue
            if not pdu.complete:
                dropped["PDUs cut by a gap or the capture end"] += 1
                continue
            data = analysis.pdu_bytes(pdu)
            if data is None:
                dropped["PDUs the capture lacks bytes of"] += 1
                continue
            data = bytes(data)
            if pdu.pdu_type in (1, 2):
                try:
                    data = rewrite_associate(data, self.pseudo, self.settings.map_ae, self.deid.changes)
                except (DecodeError, struct.error, UnicodeError):
                    dropped["A-ASSOCIATE PDUs that do not parse"] += 1
                    continue
                self.report.objects["associations"] += pdu.pdu_type == 1
            elif pdu.pdu_type not in KEPT_AS_IS:
                dropped["PDUs of unknown type"] += 1
                continue
            self.events.append(Event(pdu.last_frame, pdu.timestamp, pdu.connection, pdu.direction,
                                     (pdu.stream_offset, 0), data))
        for rewritten in self.messages.values():
            self._message_events(rewritten)
            if not self.keep_datasets:
                rewritten.dataset = None  # the events hold the bytes now; only --export needs them again
        self._count_unparsed()

    def _count_unparsed(self) -> None:
        """Stream bytes that no PDU covers (resynchronised over: not DICOM): never copied, counted."""
        covered: Counter = Counter()
        for connection, direction, length in zip(self.analysis.pdus.column("connection"),
                                                 self.analysis.pdus.column("direction"),
                                                 self.analysis.pdus.column("length")):
            covered[(connection, direction)] += length + 6
        unparsed = 0
        for connection in self.analysis.connections:
            for direction, stream in enumerate(connection.streams):
                missing = sum(gap.length for gap in stream.gaps)
                unparsed += max(0, stream.end - missing - covered[(connection.index, direction)])
        if unparsed:
            self.report.dropped["bytes of DICOM streams outside any PDU (not DICOM, or cut by a gap)"] += unparsed

    def _message_events(self, rewritten: RewrittenMessage) -> None:
        message = rewritten.message
        analysis = self.analysis
        limit = self._max_pdu(message.association, message.direction)
        first = analysis.pdus[message.first_pdu]
        command_offset = next((pdv.stream_offset for pdv in first.pdvs if pdv.is_command), first.stream_offset)
        for number, payload in enumerate(pdata_pdus(message.context_id, rewritten.command, True, 1, limit)):
            self.events.append(Event(first.last_frame, first.timestamp, message.connection, message.direction,
                                     (command_offset, number), payload))
        if rewritten.dataset is None:
            return
        fragments = message.dataset_fragments
        stream = analysis.connections[message.connection].streams[message.direction]
        pdus = pdata_pdus(message.context_id, rewritten.dataset, False, len(fragments), limit)
        for number, payload in enumerate(pdus):
            fragment = fragments[min(number * len(fragments) // len(pdus), len(fragments) - 1)]
            _first, last_frame, _t0, last_time = stream.frames_for(fragment.stream_offset,
                                                                   fragment.stream_offset + fragment.length)
            self.events.append(Event(last_frame, last_time, message.connection, message.direction,
                                     (fragment.stream_offset, number), payload))

    def order_events(self) -> list[Event]:
        """Capture order, with each direction of a connection kept in stream order.

        A segment that arrived out of order can complete a later range in an earlier
        frame; carrying the running maximum forward keeps a stream's bytes in order.
        """
        by_stream: dict[tuple[int, int], list[Event]] = defaultdict(list)
        for event in self.events:
            by_stream[(event.connection, event.direction)].append(event)
        for events in by_stream.values():
            events.sort(key=lambda event: event.offset)
            frame, timestamp = 0.0, 0.0
            for event in events:
                frame = event.frame = max(frame, event.frame)
                timestamp = event.timestamp = max(timestamp, event.timestamp)
        return sorted(self.events)

    # -- packets ---------------------------------------------------------------------------

    def endpoint_macs(self) -> tuple[dict[str, bytes], int]:
        """MAC per IP address seen on the DICOM connections' Ethernet frames; and how many such frames."""
        from dicomtui.plugins.export.pcap import dicom_frames

        macs: dict[str, bytes] = {}
        frames = 0
        for _number, record, frame, segment, _connection, _direction in dicom_frames(self.analysis):
            frames += 1
            pair = ethernet_macs(frame, record.link_type)
            if pair is None:
                continue
            source = split_endpoint(format_address(segment.family, segment.src, segment.sport))[0]
            macs.setdefault(source, pair[1])
        return macs, frames

    def packets(self, ordered: list[Event]):
        """Yield (timestamp, Ethernet frame) in capture order; each payload is released once sent."""
        analysis = self.analysis
        macs, dicom_frame_count = self.endpoint_macs()
        # SPAN copies were set aside before TCP: the regenerated traffic carries each packet once.
        copies = getattr(analysis, "span_duplicates", 0)
        if copies:
            self.report.figures["span_duplicates_sent_once"] = copies
        non_dicom = analysis.frame_count - dicom_frame_count - copies
        if non_dicom > 0:
            self.report.dropped["frames not part of a DICOM connection (non-DICOM traffic)"] += non_dicom
        flows: dict[int, TcpFlow] = {}
        last_event: dict[int, Event] = {}
        for event in ordered:
            last_event[event.connection] = event
        out: list[tuple[float, bytes]] = []
        shift = self.settings.time_shift
        for event in ordered:
            flow = flows.get(event.connection)
            if flow is None:
                flow = flows[event.connection] = self._flow(analysis.connections[event.connection], macs, out)
                flow.open(min(event.timestamp, analysis.connections[event.connection].first_time or event.timestamp))
            flow.send(event.timestamp, event.direction, event.payload)
            event.payload = b""
            if last_event[event.connection] is event:
                connection = analysis.connections[event.connection]
                flow.close(max(event.timestamp, connection.last_time), connection.closed_by)
            for timestamp, frame in out:
                yield timestamp + shift, frame
            out.clear()

    def _flow(self, connection, macs: dict[str, bytes], sink: list) -> TcpFlow:
        client, client_port = split_endpoint(connection.client)
        server, server_port = split_endpoint(connection.server)
        client_mac = macs.get(client) or synthetic_mac(client)
        server_mac = macs.get(server) or synthetic_mac(server)
        if self.settings.map_network:
            client, server = self.pseudo.ip(client), self.pseudo.ip(server)
            client_mac, server_mac = self.pseudo.mac(client_mac), self.pseudo.mac(server_mac)
        return TcpFlow((client, client_port), (server, server_port), client_mac, server_mac, sink)

    # -- the whole run ---------------------------------------------------------------------

    def run(self):
        """Yield the frames of the de-identified capture; the report's figures are set once all are out."""
        started = time.perf_counter()
        if not self.settings.time_shift:
            self.report.warnings.append(
                "packet timestamps are the original capture times (they date the exchange, and so the "
                "study): --anonymize-time-shift SECONDS moves them")
        self.rewrite_messages()
        self.build_events()
        ordered = self.order_events()
        pdu_count = len(ordered)
        connections = len({event.connection for event in ordered})
        frames = 0
        for frame in self.packets(ordered):
            frames += 1
            yield frame
        analysis = self.analysis
        self.report.figures.update({
            "input": (f"{counted(analysis.frame_count, 'frame', separator='')}, {counted(len(analysis.connections), 'DICOM connection', separator='')}, "
                      f"{counted(len(analysis.associations), 'association', separator='')}, {counted(len(analysis.pdus), 'PDU', separator='')}, "
                      f"{len(analysis.messages)} DIMSE messages"),
            "output": (f"{counted(frames, 'frame', separator='')}, {counted(connections, 'connection', separator='')}, "
                       f"{counted(pdu_count, 'PDU', separator='')}, {counted(len(self.messages), 'DIMSE message', separator='')}"),
            "rewrite_seconds": round(time.perf_counter() - started, 3),
        })


def write_capture(frames, path: str) -> int:
    """Write Ethernet frames as pcapng (``.pcapng``) or pcap (anything else); returns bytes written."""
    from dicomtui.core.wire.capture_format import PcapngRecordWriter, PcapRecordWriter

    with open(path, "wb") as stream:
        if path.lower().endswith(".pcapng"):
            writer = PcapngRecordWriter(stream, [1])
        else:
            writer = PcapRecordWriter(stream, 1, nanoseconds=False)
        for timestamp, frame in frames:
            writer.write(frame, timestamp, len(frame), 1)
        return writer.bytes


__all__ = ["AnonymizeSettings", "CaptureAnonymizer", "Counter", "write_capture"]
