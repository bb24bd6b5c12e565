"""Resource limits: hostile lengths and counts are bounded, reported, and the rest decodes.

Each test builds its bytes from pynetdicom's encoders (see hostile_tools.py),
distorts them the way a broken or malicious peer would, and checks three
things: the program does not allocate what the bytes claim (tracemalloc
peaks), it says what it skipped (a problem or expert item), and what follows
the damage still decodes.
"""

from __future__ import annotations

import struct
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_tools as tools  # noqa: E402
from conftest import analyze_path  # noqa: E402

from dicomtui.core.base.errors import DecodeError
from dicomtui.core.base.limits import Limits
from dicomtui.core.wire.tcp import DirectionReassembler
from dicomtui.core.protocol import pdu as decoders
from dicomtui.plugins.dataset import decode_dataset
from dicomtui.core.protocol.dimse import decode_command_set
from dicomtui.core.protocol.framing import FramedPdu, PduStreamParser, StreamProblem
from dicomtui.core.pipeline.finding_text import problem_sentence

MB = 1 << 20


class Peak:
    """Peak Python allocation inside a ``with`` block, in bytes."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def frame_stream(data: bytes, limits: Limits | None = None, chunk: int = 1460):
    parser = PduStreamParser(limits or Limits())
    events = []
    for start in range(0, len(data), chunk):
        events += parser.feed(start, data[start : start + chunk])
    events += parser.finish()
    return parser, events


def expert_texts(analysis) -> list[str]:
    return [item.message for item in analysis.expert]


# -- PDU lengths -------------------------------------------------------------------------------


def test_pdu_length_claiming_4_gb_allocates_nothing_and_resyncs_on_the_next_pdu():
    bogus = b"\x04\x00" + struct.pack("!I", 0xFFFFFFF0) + b"\x00\x00\x10\x00\x01\x03" + b"\xee" * 4000
    stream = tools.associate_rq() + bogus + tools.release_rq()
    with Peak() as peak:
        parser, events = frame_stream(stream)
    assert peak.bytes < 1 * MB
    problems = [problem_sentence(event.problem) for event in events if isinstance(event, StreamProblem)]
    assert any("claims 4294967280 bytes" in text for text in problems)
    assert any("resynchronised" in text for text in problems)
    pdus = [event for event in events if isinstance(event, FramedPdu)]
    assert [pdu.pdu_type for pdu in pdus] == [1, 5]
    assert pdus[1].complete and pdus[1].stream_offset == len(stream) - 10


def test_pdu_length_claiming_4_gb_in_a_capture_is_an_expert_item_and_the_release_still_decodes(tmp_path):
    bogus = b"\x04\x00" + struct.pack("!I", 0xFFFFFFFF) + b"\xee" * 3000
    client = [tools.associate_rq(), *tools.echo_rq(), bogus, tools.release_rq()]
    server = [tools.associate_ac(), None, None, tools.release_rp()]
    analysis = analyze_path(tools.write(tmp_path, "4gb.pcap", tools.conversation(client, server)))
    assert any("claims 4294967295 bytes" in text for text in expert_texts(analysis))
    assert [pdu.type_name for pdu in analysis.pdus] == ["A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "P-DATA-TF",
                                                       "A-RELEASE-RQ", "A-RELEASE-RP"]
    assert analysis.messages[0].command_name == "C-ECHO-RQ"


def test_control_pdu_over_max_control_pdu_is_skipped_not_held():
    limits = Limits(max_control_pdu=4096)
    big = tools.associate_rq(contexts=[(2 * n + 1, f"1.2.3.{n}", [tools.IMPLICIT_LE]) for n in range(120)])
    assert len(big) > 4096
    with Peak() as peak:
        parser, events = frame_stream(big + tools.release_rq(), limits)
    assert peak.bytes < 256 * 1024
    pdus = [event for event in events if isinstance(event, FramedPdu)]
    assert pdus[0].body is None and "limit for control PDUs; body not decoded" in problem_sentence(pdus[0].problems[0])
    assert pdus[1].pdu_type == 5


def _many_contexts_rq(count: int) -> bytes:
    """pynetdicom's A-ASSOCIATE-RQ with its one presentation context item repeated ``count`` times."""
    encoded = tools.associate_rq()
    body = encoded[6:]
    items = []
    position = 68
    while position < len(body):
        length = struct.unpack_from("!H", body, position + 2)[0]
        items.append(body[position : position + 4 + length])
        position += 4 + length
    context = next(item for item in items if item[0] == 0x20)
    others = [item for item in items if item[0] != 0x20]
    new_body = body[:68] + others[0] + context * count + b"".join(others[1:])
    return b"\x01\x00" + struct.pack("!I", len(new_body)) + new_body


def test_associate_with_100k_presentation_contexts_decodes_at_most_max_contexts_quickly():
    pdu = _many_contexts_rq(100_000)
    started = time.perf_counter()
    with Peak() as peak:
        decoded = decoders.decode_associate_rq(pdu[6:])
    assert time.perf_counter() - started < 10  # ~0.3 s alone; generous for a loaded CI machine
    assert peak.bytes < 8 * MB
    assert len(decoded.contexts) == Limits().max_contexts
    assert any("100000 presentation context items; only the first 256 decoded" in p for p in decoded.problems)


def test_associate_with_100k_presentation_contexts_in_a_capture(tmp_path):
    pdu = _many_contexts_rq(100_000)
    capture = tools.conversation([pdu, tools.release_rq()], [tools.associate_ac(), tools.release_rp()])
    path = tools.write(tmp_path, "contexts.pcap", capture)
    # Default limits: a 5 MB A-ASSOCIATE-RQ is beyond max_control_pdu, skipped and reported.
    analysis = analyze_path(path)
    assert any("limit for control PDUs" in text for text in expert_texts(analysis))
    assert analysis.pdus[-1].type_name == "A-RELEASE-RP"
    # Raised control-PDU limit: decoded, contexts bounded by max_contexts.
    analysis = analyze_path(path, limits=Limits(max_control_pdu=8 * MB, max_contexts=64))
    association = analysis.associations[0]
    assert len(association.contexts) <= 64
    assert any("only the first" in text for text in expert_texts(analysis))
    assert association.state == "released"


def test_pdata_with_200k_tiny_pdvs_is_bounded_by_max_pdvs_per_pdu():
    one = tools.pdata([(1, b"\x00")])  # pynetdicom: a PDV with just its message control header
    pdv = one[6:]
    body = pdv * 200_000
    stream = b"\x04\x00" + struct.pack("!I", len(body)) + body + tools.release_rq()
    limits = Limits()
    started = time.perf_counter()
    with Peak() as peak:
        parser, events = frame_stream(stream, limits, chunk=65536)
    assert time.perf_counter() - started < 20
    pdus = [event for event in events if isinstance(event, FramedPdu)]
    assert len(pdus[0].pdvs) == limits.max_pdvs_per_pdu
    assert any(f"more than {limits.max_pdvs_per_pdu} PDVs" in problem_sentence(problem) for problem in pdus[0].problems)
    assert pdus[1].pdu_type == 5
    assert peak.bytes < 64 * MB  # the PDV records themselves, not the 1.2 MB body times anything
    # The on-demand decoder (the TUI's detail pane) is bounded too: listed up to the limit, shown
    # up to MAX_PDV_FIELDS.
    started = time.perf_counter()
    decoded = decoders.decode_pdata(body)
    assert time.perf_counter() - started < 10
    assert len(decoded.pdvs) == limits.max_pdvs_per_pdu
    assert len(decoded.tree.children) <= decoders.MAX_PDV_FIELDS + 2
    assert any("the rest not decoded" in problem for problem in decoded.problems)


def test_command_pdv_over_max_command_is_not_held(tmp_path):
    command = tools.echo_command_set()
    padding = 70_000
    huge = command + struct.pack("<HHI", 0x0000, 0x0902, padding) + b"x" * padding  # ErrorComment
    pdu = tools.pdata([(1, b"\x03" + huge)])
    limits = Limits()
    with Peak() as peak:
        parser, events = frame_stream(pdu + tools.release_rq(), limits)
    assert peak.bytes < 2 * limits.max_command + 256 * 1024
    framed = [event for event in events if isinstance(event, FramedPdu)]
    assert not framed[0].commands
    assert any(f"exceeds the {limits.max_command}-byte limit" in problem_sentence(problem)
               for problem in framed[0].problems)
    capture = tools.conversation([tools.associate_rq(), pdu, tools.release_rq()],
                                 [tools.associate_ac(), None, tools.release_rp()])
    analysis = analyze_path(tools.write(tmp_path, "command.pcap", capture))
    assert any("exceeds the 65536-byte limit" in text for text in expert_texts(analysis))
    message = analysis.messages[0]
    assert not message.complete and len(message.command_bytes) <= limits.max_command
    assert analysis.associations[0].state == "released"


def test_command_set_element_claiming_gigabytes_is_a_decode_error():
    command = tools.echo_command_set()
    lying = command + struct.pack("<HHI", 0x0000, 0x0902, 0xFFFFFFF0) + b"x" * 10
    with pytest.raises(DecodeError, match="runs past the command set"):
        decode_command_set(lying)


# -- data sets ---------------------------------------------------------------------------------


def _explicit_le_element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sxxI", group, element, vr, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def test_deflate_bomb_inflates_only_up_to_the_limit():
    # 1 GiB of zero pixel data deflates to ~1 MB; the limit stops inflation at 1 MiB here.
    header = _explicit_le_element(0x0008, 0x0018, b"UI", b"1.2.3.4\x00") + \
        struct.pack("<HH2sxxI", 0x7FE0, 0x0010, b"OB", 1 << 30)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [compressor.compress(header)]
    zeros = bytes(1 << 20)
    for _ in range(1024):
        parts.append(compressor.compress(zeros))
    parts.append(compressor.flush())
    bomb = b"".join(parts)
    assert len(bomb) < 2 * MB
    limits = Limits(max_inflated_bytes=1 * MB)
    with Peak() as peak:
        decoded = decode_dataset(bomb, tools.DEFLATED_LE, limits)
    assert peak.bytes < 16 * MB
    assert decoded.inflated
    assert any("inflates beyond the 1048576-byte limit" in problem for problem in decoded.problems)
    # The DICOM JSON exporter inflates with the same bound (it used to inflate without one).
    from dicomtui.plugins.export.dicom_json import parse_dataset

    with Peak() as peak, pytest.raises(ValueError, match="inflates beyond"):
        parse_dataset(bomb, tools.DEFLATED_LE, Limits(max_inflated_bytes=1 * MB))
    assert peak.bytes < 16 * MB


def test_default_inflate_limit_is_a_quarter_gigabyte():
    assert Limits().max_inflated_bytes == 1 << 28


def _nested_sequences(depth: int) -> bytes:
    """Implicit VR LE: ContentSequence items nested ``depth`` deep, undefined lengths."""
    sequence = struct.pack("<HHI", 0x0040, 0xA730, 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_end = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    sequence_end = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    leaf = struct.pack("<HHI", 0x0040, 0xA010, 8) + b"CONTAINS"
    return (sequence + item) * depth + leaf + (item_end + sequence_end) * depth


def test_sequences_nested_5000_deep_never_raise_recursion_error():
    data = _nested_sequences(5000)
    started = time.perf_counter()
    decoded = decode_dataset(data, tools.IMPLICIT_LE)  # must not raise
    assert time.perf_counter() - started < 30
    assert decoded.problems  # pydicom's recursion fails or the depth limit cuts the tree
    depth = 0
    node = decoded.tree
    while node.children:
        node = node.children[0]
        depth += 1
    assert depth <= 2 * Limits().max_sequence_depth + 4


def test_sequences_nested_within_the_limit_are_shown_whole():
    decoded = decode_dataset(_nested_sequences(10), tools.IMPLICIT_LE)
    assert not decoded.problems
    assert "CONTAINS" in decoded.tree.render_text()


def test_sequences_nested_past_max_sequence_depth_are_cut_and_reported():
    decoded = decode_dataset(_nested_sequences(100), tools.IMPLICIT_LE, Limits(max_sequence_depth=8))
    assert any("nested deeper than 8" in problem for problem in decoded.problems)


def test_element_length_claiming_gigabytes_allocates_nothing():
    data = _explicit_le_element(0x0008, 0x0018, b"UI", b"1.2.3.4\x00") + \
        struct.pack("<HH2sxxI", 0x7FE0, 0x0010, b"OB", 0xFFFFFFF0) + b"\x01" * 100
    with Peak() as peak:
        decoded = decode_dataset(data, tools.EXPLICIT_LE)
    assert peak.bytes < 4 * MB
    # Implicit VR: a 4-byte length on an ordinary tag.
    implicit = struct.pack("<HHI", 0x0010, 0x0010, 0xFFFFFFF0) + b"A^B"
    with Peak() as peak:
        decode_dataset(implicit, tools.IMPLICIT_LE)
        decode_dataset(implicit, "")  # guessed syntax
    assert peak.bytes < 4 * MB
    assert decoded.tree is not None


def test_data_set_with_more_elements_than_max_elements_is_cut():
    data = b"".join(struct.pack("<HHI", 0x0011, 0x1000 + n, 2) + b"ab" for n in range(3000))
    decoded = decode_dataset(data, tools.IMPLICIT_LE, Limits(max_elements=1000))
    assert decoded.element_count <= 1001
    assert any("more than 1000 elements" in problem for problem in decoded.problems)


# -- TCP ---------------------------------------------------------------------------------------


class _CountingSink:
    def __init__(self) -> None:
        self.data = 0
        self.gaps = 0
        self.end = 0

    def on_data(self, stream_offset, source, file_offset, length, frame, ts) -> None:
        assert stream_offset == self.end
        self.data += length
        self.end += length

    def on_gap(self, gap) -> None:
        assert gap.stream_offset == self.end
        self.gaps += 1
        self.end += gap.length


def test_endless_out_of_order_segments_keep_pending_bounded():
    sink = _CountingSink()
    limit = Limits().max_pending_segments
    reassembler = DirectionReassembler(sink, limit)
    reassembler.syn(999)
    # The first segment never comes; 200,000 segments behind it arrive, each out of order
    # (every pair swapped), so the buffer would grow forever without its bound.
    highest = 0
    for number in range(200_000):
        index = number ^ 1
        reassembler.segment(1000 + 100 + index * 100, 0, index * 100, 100, number + 1, 0.0)
        highest = max(highest, len(reassembler.pending))
    assert highest <= limit
    reassembler.finish(200_001)
    assert not reassembler.pending
    assert sink.data == 200_000 * 100
    assert sink.end == 100 + 200_000 * 100
    assert sink.gaps >= 1


def test_out_of_order_segments_in_a_capture_are_bounded_and_reported(tmp_path):
    """A capture whose segments all arrive before the one they follow: gaps, not memory."""
    from fuzz.harnesses import conversation_capture

    segments = [(0, 0, tools.associate_rq()), (1, 0, tools.associate_ac())]
    segments += [(0, 0b1000 if n == 0 else 0, pdu) for n, pdu in enumerate(tools.echo_rq() * 50)]
    segments[2] = (0, 1, segments[2][2])  # the first echo is lost
    capture = conversation_capture(segments)
    analysis = analyze_path(tools.write(tmp_path, "ooo.pcap", capture), limits=Limits(max_pending_segments=8))
    assert analysis.connections[0].streams[0].gaps
    assert len(analysis.messages) >= 40


# -- configuration -----------------------------------------------------------------------------


def test_every_limit_can_be_set_with_an_option():
    limits = Limits.from_options({"max_pdu_length": "0x1000", "max_contexts": "8", "ports": "104"})
    assert limits.max_pdu_length == 4096 and limits.max_contexts == 8
    assert limits.max_command == Limits().max_command
    with pytest.raises(ValueError, match="max_pdvs_per_pdu must be a whole number of items"):
        Limits.from_options({"max_pdvs_per_pdu": "many"})
    with pytest.raises(ValueError, match="must be positive"):
        Limits.from_options({"max_command": "0"})


def test_cli_option_sets_a_limit(capsys):
    from dicomtui.cli import main

    capture = Path(__file__).resolve().parent.parent / "fixtures" / "echo_dcmtk.pcap"
    assert main(["--expert", "-o", "max_control_pdu:16", str(capture)]) == 0
    assert "limit for control PDUs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--expert", "-o", "max_control_pdu:lots", str(capture)])


def test_port_scan_keeps_tracked_connections_bounded(tmp_path):
    """20,000 SYNs to ports 80/104 from distinct port pairs, then one real DICOM association."""
    from fuzz.harnesses import _frame

    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    records = []
    for number in range(20_000):
        frame = _frame(bytes([10, 9, number >> 8 & 255, number & 255]), bytes([10, 0, 0, 2]),
                       1024 + number % 50_000, 104 if number % 2 else 80, number, 0, 0x02, b"")
        records.append(struct.pack("<IIII", 1_600_000_000, 0, len(frame), len(frame)) + frame)
    conversation = tools.conversation([tools.associate_rq(), *tools.echo_rq(), tools.release_rq()],
                                      [tools.associate_ac(), None, tools.release_rp()])
    path = tools.write(tmp_path, "scan.pcap", header + b"".join(records) + conversation[24:])
    with Peak() as bounded:
        analysis = analyze_path(path, limits=Limits(max_connections=1000))
    # ~2 KB per tracked connection: without the limit this scan holds ~57 MB, with it ~12 MB.
    assert bounded.bytes < 24 * MB
    assert any("more than 1000 TCP connections open at once" in text for text in expert_texts(analysis))
    assert [message.command_name for message in analysis.messages] == ["C-ECHO-RQ"]
    assert analysis.associations[-1].state == "released"
