"""Direct tests of the core's units, each on its own (no CLI, no plugins host where none is needed).

- the association state table (``core.protocol.state``);
- ``ConnectionDecoder`` fed bytes of a recorded connection through a recording host;
- ``CaptureEngine`` over the frames of a fixture, with a stub decoder factory;
- ``ChunkMap`` (frames, pieces, holes) and ``PduTable`` (columns, PDVs, reorder).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from array import array

import pytest
from capture_tools import FIXTURES
from conftest import stream_images

from dicomtui.core.base.limits import Limits
from dicomtui.core.model import Association, ExpertItem, Pdu, Pdv
from dicomtui.core.model.analysis import Analysis, AnalysisConfig
from dicomtui.core.model.pdu_table import PduTable
from dicomtui.core.pipeline.apply import expert_item
from dicomtui.core.pipeline.engine import CaptureEngine
from dicomtui.core.pipeline.phases import open_capture
from dicomtui.core.protocol import pdu as pdu_decoders
from dicomtui.core.protocol.decoder import ConnectionDecoder
from dicomtui.core.protocol.events import (
    AssociationChanged,
    AssociationOpened,
    Finding,
    MessageComplete,
    MessageStarted,
    Numbering,
    PduFramed,
)
from dicomtui.core.protocol.state import (
    OPEN_STATES,
    AssociationState,
    PduType,
    Side,
    Violation,
    transition,
)
from dicomtui.core.wire.capture import merge_records
from dicomtui.core.wire.tcp import ChunkMap, Gap

S, P, V = AssociationState, PduType, Violation
REQ, ACC = Side.REQUESTOR, Side.ACCEPTOR


# -- the state table --------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "pdu", "side", "expected"), [
    (None, P.A_ASSOCIATE_RQ, REQ, (S.REQUESTED, None)),
    (S.RELEASED, P.A_ASSOCIATE_RQ, REQ, (S.REQUESTED, None)),
    (S.ESTABLISHED, P.A_ASSOCIATE_RQ, REQ, (S.REQUESTED, V.RQ_WHILE_OPEN)),
    (None, P.A_ASSOCIATE_RQ, ACC, (S.REQUESTED, V.RQ_FROM_ACCEPTOR)),
    (S.REQUESTED, P.A_ASSOCIATE_AC, ACC, (S.ESTABLISHED, None)),
    (S.ESTABLISHED, P.A_ASSOCIATE_AC, ACC, (S.ESTABLISHED, V.AC_WITHOUT_RQ)),
    (S.REQUESTED, P.A_ASSOCIATE_RJ, ACC, (S.REJECTED, None)),
    (S.ESTABLISHED, P.A_ASSOCIATE_RJ, ACC, (S.REJECTED, V.RJ_WITHOUT_RQ)),
    (S.ESTABLISHED, P.P_DATA_TF, REQ, (S.ESTABLISHED, None)),
    (S.REQUESTED, P.P_DATA_TF, REQ, (S.REQUESTED, V.DATA_BEFORE_AC)),
    (S.RELEASED, P.P_DATA_TF, ACC, (S.RELEASED, V.DATA_AFTER_END)),
    (S.ABORTED, P.P_DATA_TF, ACC, (S.ABORTED, V.DATA_AFTER_END)),
    (S.ESTABLISHED, P.A_RELEASE_RQ, REQ, (S.RELEASING, None)),
    (S.RELEASING, P.A_RELEASE_RP, ACC, (S.RELEASED, None)),
    (S.ESTABLISHED, P.A_RELEASE_RP, ACC, (S.RELEASED, V.RP_WITHOUT_RQ)),
    (S.REQUESTED, P.A_ABORT, ACC, (S.ABORTED, None)),
    (S.ESTABLISHED, 0x42, REQ, (S.ESTABLISHED, None)),  # unknown PDU type: no move
])
def test_state_table(state, pdu, side, expected):
    assert transition(state, pdu, side) == expected


def test_data_after_own_release_request_is_a_violation_of_that_side_only():
    assert transition(S.RELEASING, P.P_DATA_TF, REQ, release_requester=REQ) == (S.RELEASING,
                                                                                 V.DATA_AFTER_OWN_RELEASE_RQ)
    assert transition(S.RELEASING, P.P_DATA_TF, ACC, release_requester=REQ) == (S.RELEASING, None)


def test_a_second_accept_is_a_violation():
    assert transition(S.REQUESTED, P.A_ASSOCIATE_AC, ACC, answered=True) == (S.ESTABLISHED, V.AC_WITHOUT_RQ)


def test_every_state_and_pdu_type_has_a_next_state():
    for state, pdu, side in [*itertools.product(S, P, Side), (None, P.A_ASSOCIATE_RQ, REQ)]:
        next_state, violation = transition(state, pdu, side)
        assert isinstance(next_state, AssociationState)
        assert violation is None or isinstance(violation, Violation)
    assert S.ESTABLISHED in OPEN_STATES and S.RELEASED not in OPEN_STATES
    assert S.RELEASED == "released"  # string-valued: JSON and older plugins see the same text


# -- ConnectionDecoder --------------------------------------------------------------------------


class RecordingHost:
    """Feeds a decoder as the engine does and keeps the events it returns.

    The decoder's context (``DecoderContext``: read-only questions and the id space),
    plus the records the events carry, sorted by kind, as the pipeline would store them.
    """

    def __init__(self) -> None:
        self.numbering = Numbering()
        self.events: list = []

    def frames(self, direction, start, end):
        return (1, 1, 0.0, 0.0)

    def status_meaning(self, command_field, status, sop_class):
        return ("success" if status == 0 else "failure", f"0x{status:04X}")

    def take(self, events) -> None:
        assert isinstance(events, (list, tuple))
        self.events.extend(events)

    def _of(self, kind, attribute):
        return [getattr(event, attribute) for event in self.events if type(event) is kind]

    @property
    def pdus(self) -> list[Pdu]:
        return [event for event in self.events if type(event) is PduFramed]

    @property
    def associations(self) -> list[Association]:
        return self._of(AssociationOpened, "association")

    @property
    def messages(self) -> list:
        return self._of(MessageStarted, "message")

    @property
    def findings(self) -> list[ExpertItem]:
        return [expert_item(event) for event in self.events if type(event) is Finding]


class Connection:
    index = 0
    picked_up_midway = False
    closed_by = "FIN"


DECODERS = {1: pdu_decoders.decode_associate_rq, 2: pdu_decoders.decode_associate_ac,
            3: pdu_decoders.decode_associate_rj, 4: pdu_decoders.decode_pdata,
            5: lambda body: pdu_decoders.decode_release(body, 5),
            6: lambda body: pdu_decoders.decode_release(body, 6), 7: pdu_decoders.decode_abort}


def _echo_streams() -> tuple[bytes, bytes]:
    images = stream_images(_analysis("echo_dcmtk.pcap"))
    (client, _gaps), (server, _gaps2) = next(iter(images.values()))
    return client, server


def _analysis(name):
    from dicomtui.cli import make_host
    from dicomtui.core.pipeline import analyze

    return analyze([str(FIXTURES / name)], AnalysisConfig(), make_host(load_installed=False))


def _pdu_ends(stream: bytes) -> list[int]:
    ends, offset = [], 0
    while offset + 6 <= len(stream):
        offset += 6 + int.from_bytes(stream[offset + 2 : offset + 6], "big")
        ends.append(offset)
    return ends


def _interleave(decoder: ConnectionDecoder, host: RecordingHost, client: bytes, server: bytes,
                step: int) -> None:
    """Request, answer, request, answer... (echoscu waits for each answer), each PDU in ``step``-byte pieces."""
    streams = (client, server)
    ends = (_pdu_ends(client), _pdu_ends(server))
    starts = [0, 0]
    for number in range(max(len(ends[0]), len(ends[1]))):
        for direction in (0, 1):
            if number >= len(ends[direction]):
                continue
            end = ends[direction][number]
            for start in range(starts[direction], end, step):
                host.take(decoder.receive_data(direction, start,
                                               memoryview(streams[direction][start : min(end, start + step)])))
            starts[direction] = end


def test_connection_decoder_on_a_real_echo_association():
    client, server = _echo_streams()
    host = RecordingHost()
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(), DECODERS, host)
    # Replayed in protocol order: the whole client stream first would put the C-ECHO-RQs
    # before the A-ASSOCIATE-AC, which the state table rightly flags (next test).
    _interleave(decoder, host, client, server, 7)
    host.take(decoder.finish())
    types = [pdu.pdu_type for pdu in host.pdus]
    assert sorted(types) == sorted([1, 2, 4, 4, 4, 4, 5, 6])
    (association,) = host.associations
    assert association.state is AssociationState.RELEASED and association.calling_ae == "ECHOSCU"
    assert [m.command_name for m in host.messages].count("C-ECHO-RQ") == 2
    assert all(m.request is not None for m in host.messages if not m.is_request)
    assert not host.findings


def test_connection_decoder_reports_violations_from_the_table():
    client, server = _echo_streams()
    host = RecordingHost()
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(), DECODERS, host)
    host.take(decoder.receive_data(0, 0, client))  # everything the client sent before any answer
    host.take(decoder.receive_data(1, 0, server))
    host.take(decoder.finish())
    texts = [item.message for item in host.findings]
    assert any(text.startswith("P-DATA-TF before the association was accepted") for text in texts)
    assert all(item.rule == "protocol-order" for item in host.findings)
    # Data before the accept; then, the client having asked for release, an accept out of
    # place, and (the accept having moved it back to established) a release answer out of place.
    assert [item.code for item in host.findings] == [
        *[f"state.{Violation.DATA_BEFORE_AC.value}"] * 2, f"state.{Violation.AC_WITHOUT_RQ.value}",
        f"state.{Violation.RP_WITHOUT_RQ.value}"]


def test_connection_decoder_with_a_replacement_pdu_decoder_keeps_association_state():
    """A site's decoder returning its own classes (same attributes) must not lose the negotiation."""

    class OwnAssociate:
        def __init__(self, inner):
            for name in ("calling_ae", "called_ae", "application_context", "contexts", "user", "problems"):
                setattr(self, name, getattr(inner, name))

    replaced = dict(DECODERS)
    replaced[1] = lambda body: OwnAssociate(pdu_decoders.decode_associate_rq(body))
    replaced[2] = lambda body: OwnAssociate(pdu_decoders.decode_associate_ac(body))
    client, server = _echo_streams()
    host = RecordingHost()
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(), replaced, host)
    _interleave(decoder, host, client, server, 1 << 16)
    host.take(decoder.finish())
    (association,) = host.associations
    assert association.calling_ae == "ECHOSCU" and association.called_ae == "STORESCP"
    assert association.contexts and all(context.accepted for context in association.contexts.values())
    assert association.acceptor_max_pdu


def test_connection_decoder_gap_inside_a_pdu_is_a_capture_note():
    client, server = _echo_streams()
    host = RecordingHost()
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(), DECODERS, host)
    host.take(decoder.receive_data(0, 0, client[:20]))
    host.take(decoder.receive_gap(0, Gap(20, 30, 1, "test")))
    host.take(decoder.receive_data(0, 50, client[50:]))
    host.take(decoder.finish())
    notes = [item for item in host.findings if item.rule == "pdu"]
    assert notes and notes[0].message == "30 bytes missing from the capture (TCP gap)"
    assert notes[0].code == "pdu.not-captured"
    assert notes[0].severity.label == "note"


def test_connection_decoder_returns_typed_events_in_protocol_order():
    """h11-style: the decoder changes nothing outside itself; each call returns what it caused."""
    client, server = _echo_streams()
    host = RecordingHost()
    host.numbering = Numbering(pdus=10, associations=3, messages=7)  # other connections came first
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(), DECODERS, host)
    assert decoder.receive_data(0, 0, client[:3]) == ()  # no PDU yet: nothing happened
    host.take(decoder.receive_data(0, 3, client[3:_pdu_ends(client)[0]]))
    assert [type(event) for event in host.events] == [AssociationOpened, PduFramed]
    host.events.clear()
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(), DECODERS, host)
    host.numbering = decoder.numbering = Numbering(pdus=10, associations=3, messages=7)
    _interleave(decoder, host, client, server, 5)
    host.take(decoder.finish())
    # Records carry the indices the analysis will give them, in the order they come.
    assert [pdu.index for pdu in host.pdus] == list(range(10, 18))
    (association,) = host.associations
    assert association.index == 3 and all(pdu.association == 3 for pdu in host.pdus)
    assert [message.index for message in host.messages] == [7, 8, 9, 10]
    assert (host.numbering.pdus, host.numbering.associations, host.numbering.messages) == (18, 4, 11)
    changes = [(event.before, event.after) for event in host.events if type(event) is AssociationChanged]
    assert changes == [(S.REQUESTED, S.ESTABLISHED), (S.ESTABLISHED, S.RELEASING), (S.RELEASING, S.RELEASED)]
    completed = [event.message.index for event in host.events if type(event) is MessageComplete]
    assert sorted(completed) == [7, 8, 9, 10]
    # Every message is started before the PDU that ends it is framed, and completed after its start.
    order = {id(event): position for position, event in enumerate(host.events)}
    started = {event.message.index: order[id(event)] for event in host.events if type(event) is MessageStarted}
    for event in host.events:
        if type(event) is MessageComplete:
            assert order[id(event)] > started[event.message.index]


def test_connection_decoder_with_an_outbox_puts_the_same_events_there_as_they_come():
    """The engine's mode: events go to the outbox one by one (nothing accumulates in a call)."""

    class Outbox(list):
        def __bool__(self) -> bool:  # as the engine's: always empty, each event applied on append
            return False

    client, server = _echo_streams()
    returned = RecordingHost()
    _interleave(ConnectionDecoder(Connection(), AnalysisConfig(), DECODERS, returned), returned, client, server, 3)
    host, outbox = RecordingHost(), Outbox()
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(), DECODERS, host, outbox=outbox)
    _interleave(decoder, host, client, server, 3)
    assert host.events == [] and decoder.events is outbox
    assert [type(event) for event in outbox] == [type(event) for event in returned.events]
    assert [event.summary for event in outbox if type(event) is PduFramed] == \
        [pdu.summary for pdu in returned.pdus]


def _findings_of(client: bytes, server: bytes, gap: Gap | None = None) -> list[Finding]:
    host = RecordingHost()
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(), DECODERS, host)
    _interleave(decoder, host, client, server, 1 << 16)
    if gap is not None:
        host.take(decoder.receive_gap(0, gap))
    host.take(decoder.finish())
    return [event for event in host.events if type(event) is Finding]


def _patched(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new):]


def test_decoder_findings_are_codes_worded_above_the_core():
    """Every kind of finding the decoder makes is a code with parameters, worded by the catalogue.

    Damaged copies of a real echo association reach each kind; the items the pipeline
    stores keep code and parameters, and the catalogue's sentence for them is the
    item's message, so a view can word the same item its own way.
    """
    from dicomtui.cli import make_host
    from dicomtui.core.pipeline import analyze
    from dicomtui.core.pipeline.finding_text import FINDING_TEXT, PROBLEM_TEXT, phrase

    client, server = _echo_streams()
    rq_end = _pdu_ends(client)[0]  # the first P-DATA-TF (C-ECHO-RQ) follows the A-ASSOCIATE-RQ
    damaged = {
        "pdv.context-not-negotiated": (_patched(client, rq_end + 10, b"\x09"), server),
        "pdv.context-rejected": (client, _patched(server, 105, b"\x03")),  # the AC's result for context 1
        "dimse.malformed": (_patched(client, rq_end + 16, b"\xff\xff\x00\x00"), server),  # group length's length
        "pdu.malformed": (_patched(client, 1, b"\xff"), server),  # the reserved byte after the PDU type
        "framing.invalid-header": (_patched(client, 0, b"\x09"), server),
        "framing.skipped": (_patched(client, 0, b"\x09"), server),
        "state.data-before-ac": (client, b""),
    }
    seen: dict[str, Finding] = {}
    problems: set[str] = set()
    for expected, (sent, answered) in [*damaged.items(), ("tcp.gap", (client[:20], b""))]:
        findings = _findings_of(sent, answered, Gap(20, 30, 1, "test") if expected == "tcp.gap" else None)
        assert expected in {finding.code for finding in findings}, expected
        seen.update((finding.code, finding) for finding in findings)
        problems.update(finding.params["problem"] for finding in findings if "problem" in finding.params)
    assert {"tcp.gap", "pdu.not-captured"} <= set(seen)
    for code, finding in seen.items():
        assert code in FINDING_TEXT and isinstance(finding.params, dict)
        assert phrase(code, finding.params) == expert_item(finding).message != code
        assert finding.params.get("problem") in (None, *PROBLEM_TEXT)
    assert {"framing.unknown-pdu-type", "framing.reserved-byte", "framing.gap-bytes",
            "dimse.malformed-command"} <= problems
    assert phrase("site.own-code", {"detail": "x"}) == "site.own-code: x"  # a replacement decoder's own code
    host = make_host(load_installed=False)
    stored = 0
    for name in ("abort_inflight_dcmtk.pcap", "reject_abort.pcap"):
        for item in analyze([str(FIXTURES / name)], AnalysisConfig(), host).expert:
            if item.params is not None:
                stored += 1
                assert item.code in FINDING_TEXT and phrase(item.code, item.params) == item.message
    assert stored


def test_every_code_the_protocol_core_emits_has_a_wording():
    """A new Problem or Finding code in the core without a sentence in the catalogue fails here."""
    import re

    from dicomtui.core.pipeline.finding_text import FINDING_TEXT, PROBLEM_TEXT

    core = Path(__file__).resolve().parent.parent / "core" / "protocol"
    problem_codes, finding_codes = set(), set()
    for path in core.glob("*.py"):
        text = path.read_text()
        problem_codes.update(re.findall(r'Problem\(\s*"([a-z.-]+)"', text))
        finding_codes.update(re.findall(r'Finding\([^"]*?"([a-z.-]+)"', text, re.S))
        finding_codes.update(re.findall(r'"(framing\.[a-z-]+)" if', text))
    assert len(problem_codes) >= 25 and problem_codes <= set(PROBLEM_TEXT), problem_codes - set(PROBLEM_TEXT)
    assert len(finding_codes) >= 7 and finding_codes <= set(FINDING_TEXT), finding_codes - set(FINDING_TEXT)
    assert {f"state.{violation.value}" for violation in Violation} <= set(FINDING_TEXT)


# -- CaptureEngine ----------------------------------------------------------------------------------


class StubHost:
    """A plugin host that supplies one decoder factory and nothing else."""

    failures: list = []
    current_plugin = ""

    def __init__(self) -> None:
        self.fed: dict[int, list[tuple[int, int, int]]] = {}
        self.finished = 0
        self.hook = self._Hooks(self)

    class _Silent:
        def __call__(self, **kwargs):
            return []

        def first(self, **kwargs):
            return None

        def registrations(self, **kwargs):
            return []

    class _Decoders(_Silent):
        def __init__(self, host) -> None:
            self.host = host

        def first(self, **kwargs):
            return self.host.call_first("dicomtui_make_connection_decoder", **kwargs)

    class _Hooks:  # host.hook.NAME: every hook registers nothing, answers nothing, but the decoder factory
        def __init__(self, host) -> None:
            self.dicomtui_make_connection_decoder = StubHost._Decoders(host)

        def __getattr__(self, name):
            return StubHost._Silent()

    def call_first(self, hook_name, **kwargs):  # the one hook this stub answers
        if hook_name != "dicomtui_make_connection_decoder":
            return None
        host, fed = self, self.fed.setdefault(kwargs["connection"].index, [])

        class Decoder:
            def receive_data(self, direction, stream_offset, data):
                fed.append((direction, stream_offset, len(data)))

            def receive_gap(self, direction, gap):
                fed.append((direction, gap.stream_offset, -gap.length))

            def finish(self):
                host.finished += 1

        return Decoder()


def test_capture_engine_feeds_each_direction_in_order_to_the_decoder():
    sources = open_capture([str(FIXTURES / "qr_pynetdicom.pcap")])
    host = StubHost()
    analysis = Analysis(sources, AnalysisConfig(), host)
    engine = CaptureEngine(analysis)
    frames, _last = engine.run(merge_records(sources), lambda *args: None)
    engine.finish()
    assert frames > 0 and engine.tcp_frames == frames
    assert len(analysis.connections) == host.finished == len(host.fed) == 3  # Q/R + C-MOVE sub-association
    for connection in analysis.connections:
        fed = host.fed[connection.index]
        for direction in (0, 1):
            offsets = [(offset, length) for d, offset, length in fed if d == direction]
            position = 0
            for offset, length in offsets:
                assert offset == position  # in order, no overlap, no hole
                position += length
            assert position == connection.streams[direction].end
    clients = {connection.server_port for connection in analysis.connections}
    assert clients == {11112, 11113}


# -- ChunkMap -----------------------------------------------------------------------------------------


def _chunk_map() -> tuple[ChunkMap, list[memoryview]]:
    buffer = bytes(range(256)) * 4
    chunks = ChunkMap()
    chunks.append(0, 0, 100, 10, 1, 0.5)  # stream 0..10 = file 100..110
    chunks.append(10, 0, 300, 20, 2, 0.6)  # stream 10..30 = file 300..320
    chunks.add_gap(Gap(30, 5, 3, "lost"))  # stream 30..35 missing
    chunks.append(35, 0, 500, 5, 4, 0.8)
    return chunks, [memoryview(buffer)]


def test_chunk_map_reads_across_segments_and_stops_at_holes():
    chunks, views = _chunk_map()
    data = views[0]
    assert chunks.read(5, 15, views) == bytes(data[105:110]) + bytes(data[300:305])
    assert chunks.read(0, 30, views) == bytes(data[100:110]) + bytes(data[300:320])
    assert chunks.read(25, 38, views) is None  # crosses the gap
    assert chunks.read(35, 40, views) == bytes(data[500:505])
    pieces = chunks.pieces(28, 37, views)
    assert bytes(pieces[0]) == bytes(data[318:320]) and pieces[-1] is None
    assert chunks.end == 40 and chunks.gaps[0].length == 5


def test_chunk_map_frames_for_ranges():
    chunks, _views = _chunk_map()
    assert chunks.frames_for(0, 5) == (1, 1, 0.5, 0.5)
    assert chunks.frames_for(5, 15) == (1, 2, 0.5, 0.6)
    assert chunks.frames_for(36, 37) == (4, 4, 0.8, 0.8)
    assert ChunkMap().frames_for(0, 1) == (0, 0, 0.0, 0.0)


# -- PduTable -----------------------------------------------------------------------------------------


def _pdu(connection: int, last_frame: int, pdvs=()) -> Pdu:
    return Pdu(index=-1, connection=connection, direction=1, stream_offset=1000 + last_frame, pdu_type=4,
               length=len(pdvs) * 10, first_frame=last_frame, last_frame=last_frame, timestamp=last_frame / 10,
               association=2, pdvs=tuple(pdvs), summary="P-DATA", complete=last_frame != 3, kind="data")


def test_pdu_table_round_trips_rows_and_pdvs():
    table = PduTable()
    pdvs = (Pdv(1006, 4, 1, True, True, 3), Pdv(1016, 100, 3, False, False, 0))
    for frame in (1, 2, 3):
        assert table.append(_pdu(0, frame, pdvs if frame == 2 else ())) == frame - 1
    assert len(table) == 3
    row = table[1]
    assert (row.index, row.last_frame, row.pdvs, row.summary, row.kind) == (1, 2, pdvs, "P-DATA", "data")
    assert table[-1].complete is False and table[0].pdvs == ()
    assert table.last_frames() == array("I", [1, 2, 3])
    assert [pdu.index for pdu in table] == [0, 1, 2]
    with pytest.raises(IndexError):
        table[3]
    with pytest.raises(KeyError):
        table.column("summary")


def test_pdu_table_reorder_and_remap_keep_rows_whole():
    table = PduTable()
    pdvs = (Pdv(1006, 4, 1, True, True, 3),)
    table.append(_pdu(5, 9, pdvs))
    table.append(_pdu(6, 4))
    table.reorder([1, 0])
    assert [pdu.last_frame for pdu in table] == [4, 9]
    assert table[1].pdvs == pdvs and table[0].pdvs == ()
    table.remap_connections({5: 1, 6: 0})
    assert [pdu.connection for pdu in table] == [0, 1]


def test_pdu_table_reorders_a_window_in_place():
    """Rows outside the window keep their place and PDVs; inside, whole rows move."""
    import random

    rng = random.Random(7)
    for _ in range(60):
        rows = []
        for number in range(rng.randrange(1, 30)):
            pdvs = tuple(Pdv(10_000 * number + 10 * k, k + 1, 2 * k + 1, bool(k % 2), k == 0, (k % 2) | (k == 0) * 2)
                         for k in range(rng.randrange(0, 4)))
            rows.append(_pdu(number % 3, 100 + number, pdvs))
        table = PduTable()
        for row in rows:
            table.append(row)
        low = rng.randrange(len(rows))
        high = rng.randrange(low, len(rows)) + 1
        window = list(range(low, high))
        rng.shuffle(window)
        table.reorder(window, low)
        expected = rows[:low] + [rows[old] for old in window] + rows[high:]
        assert [(pdu.last_frame, pdu.pdvs, pdu.connection, pdu.complete) for pdu in table] == \
            [(pdu.last_frame, pdu.pdvs, pdu.connection, pdu.complete) for pdu in expected]


def test_renumber_puts_pdus_in_frame_order_and_follows_them_everywhere(plugin_host):
    """A PDU completed late (its direction held back) is moved; whatever named it follows it."""
    from dicomtui.core.pipeline.phases import Pipeline, renumber

    config = AnalysisConfig()
    sources = open_capture([str(FIXTURES / "store_testfiles_pynetdicom.pcap")], config.limits)
    pipeline = Pipeline(Analysis(sources, config, plugin_host))
    pipeline.scan_sources(sources)
    pipeline.engine.finish()
    analysis = pipeline.analysis
    last_frames = analysis.pdus._last_frame
    # Hold one PDU back by a few rows, as a lost segment in its direction would.
    moved = 3
    last_frames[moved] = last_frames[moved + 4]
    key = [(pdu.connection, pdu.direction, pdu.stream_offset) for pdu in analysis.pdus]
    named = [(key[m.first_pdu], key[m.last_pdu]) for m in analysis.messages]
    requests = [key[a.request_pdu] if a.request_pdu is not None else None for a in analysis.associations]
    renumber(analysis)
    after = [(pdu.connection, pdu.direction, pdu.stream_offset) for pdu in analysis.pdus]
    assert sorted(after) == sorted(key) and after != key
    frames = list(analysis.pdus.last_frames())
    assert frames == sorted(frames)
    assert after[:moved] == key[:moved] and after[moved + 5:] == key[moved + 5:]  # only the window moved
    assert [(after[m.first_pdu], after[m.last_pdu]) for m in analysis.messages] == named
    assert [after[a.request_pdu] if a.request_pdu is not None else None
            for a in analysis.associations] == requests


def test_limits_reach_the_decoder():
    decoder = ConnectionDecoder(Connection(), AnalysisConfig(limits=Limits(max_command=64)), DECODERS,
                                RecordingHost())
    assert decoder.assemblers[0].max_command == 64


def test_pipeline_scans_in_pieces_like_one_pass(plugin_host):
    """Records fed in two calls (as a live capture would) give the analysis one pass gives."""
    from dicomtui.core.pipeline import Pipeline, analyze
    from dicomtui.core.views import analysis_json

    path = str(FIXTURES / "qr_pynetdicom.pcap")
    whole = analyze([path], AnalysisConfig(), plugin_host)
    sources = open_capture([path])
    pipeline = Pipeline(Analysis(sources, AnalysisConfig(), plugin_host))
    records = merge_records(sources)
    pipeline.scan(itertools.islice(records, 37))
    assert pipeline.analysis.frame_count == 37
    pipeline.scan(records)
    for phase in (pipeline.close, pipeline.complete, pipeline.check, pipeline.freeze):
        phase()
    assert pipeline.analysis.finished
    assert analysis_json(pipeline.analysis) == analysis_json(whole)
