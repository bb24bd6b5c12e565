"""Each direction on its own capture interface, the clocks 2 ms apart (issue 25): built from the
recorded store_dcmtk.pcapng by putting the server's frames on a second interface whose times are
2 ms late (or early) and merging by time, as mergecap does.  Segments then appear before the peer
bytes they acknowledge.  Reassembly waits for a late segment by capture time (10 ms), not by a
count of frames, and a segment waits for the peer bytes it acknowledges, so the DICOM is the clean
capture's: the same associations, messages, statuses, PDUs, stream bytes and data sets, no gap, no
protocol error; the measured lateness is reported.  (tshark, for comparison, mis-sequences these.)

The skew is corrected for timing: the late side's times are moved back by the lateness measured on
the connection, so response times, PDU times and the TCP analysis agree with the clean capture's (to
the acknowledging side's turnaround, tens of microseconds on loopback) and no resend is called
needless because an acknowledgement was recorded before what it acknowledges.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from capture_tools import FIXTURES, RawFrame, read_frames
from conftest import analyze_path

from dicomtui.core.model import Severity
from dicomtui.core.model.timing import exchanges
from dicomtui.core.wire.tcp_analysis import analyse_connection

FIXTURE = "store_dcmtk.pcapng"
SERVER_PORT = 104


def _block(block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", block_type, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _two_interfaces(path, frames: list[tuple[int, RawFrame]]) -> None:
    parts = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    parts += [_block(1, struct.pack("<HHI", 1, 0, 262144)) for _interface in range(2)]
    for interface, frame in frames:
        ts = round(frame.ts * 1e6)
        parts.append(_block(6, struct.pack("<IIIII", interface, ts >> 32, ts & 0xFFFFFFFF, len(frame.data),
                                           len(frame.data)) + frame.data))
    path.write_bytes(b"".join(parts))


def _from_server(frame: RawFrame) -> bool:
    return frame.data[12:14] == b"\x08\x00" and struct.unpack("!H", frame.data[34:36])[0] == SERVER_PORT


def _skewed(frames: list[RawFrame], skew: float) -> list[tuple[int, RawFrame]]:
    placed = [(1, RawFrame(frame.ts + skew, frame.data, frame.link_type)) if _from_server(frame) else (0, frame)
              for frame in frames]
    return sorted(placed, key=lambda item: item[1].ts)  # merged by time, as mergecap does


def _clean_and_skewed(tmp_path, skew: float):
    """The fixture on two interfaces as recorded, and with the server's interface ``skew`` s late."""
    frames = [RawFrame(float(f.ts), f.data, f.link_type) for f in read_frames(FIXTURES / FIXTURE)]
    clean_path, skewed_path = tmp_path / "clean.pcapng", tmp_path / "skewed.pcapng"
    _two_interfaces(clean_path, [(int(_from_server(frame)), frame) for frame in frames])
    _two_interfaces(skewed_path, _skewed(frames, skew))
    return clean_path, skewed_path


def _facts(analysis) -> dict:
    return {
        "associations": [(a.calling_ae, a.called_ae, str(a.state), a.message_count) for a in analysis.associations],
        "messages": [(m.command_name, m.message_id, m.responded_to, m.status, m.dataset_length, m.complete)
                     for m in analysis.messages],
        "pdus": sorted((p.direction, p.stream_offset, p.pdu_type, p.length) for p in analysis.pdus),
        "streams": [tuple(c.read(d, 0, c.streams[d].end, analysis.buffers) for d in (0, 1))
                    for c in analysis.connections],
        "gaps": sum(len(c.streams[d].gaps) for c in analysis.connections for d in (0, 1)),
        "datasets": [analysis.dataset_bytes(m) for m in analysis.messages if m.has_dataset],
    }


@pytest.mark.parametrize("skew", [0.002, -0.002])
def test_two_interfaces_two_ms_apart_give_the_clean_dicom(tmp_path, skew):
    clean_path, skewed_path = _clean_and_skewed(tmp_path, skew)
    clean, skewed = analyze_path(clean_path), analyze_path(skewed_path)
    expected = _facts(clean)
    assert expected["associations"] and expected["gaps"] == 0
    assert _facts(skewed) == expected
    errors = [item.message for item in skewed.expert if item.severity >= Severity.ERROR]
    assert not errors
    (note,) = [item for item in skewed.expert if item.code == "capture.direction_skew"]
    lateness = float(note.message.split("by up to ")[1].split(" ms")[0])
    assert 1.9 <= lateness <= 2.0
    assert "on 2 connection(s)" in note.message


def _timing(analysis) -> dict:
    return {
        "responses": [(e.command, e.response_time, e.first_byte) for e in exchanges(analysis)],
        "pdu_times": sorted((p.direction, p.stream_offset, p.timestamp) for p in analysis.pdus),
        "rtt": [analyse_connection(c).handshake_rtt for c in analysis.connections],
        "resent": [sum(d.resent for d in analyse_connection(c).directions) for c in analysis.connections],
    }


@pytest.mark.parametrize("skew", [0.002, -0.002])
def test_the_skew_is_corrected_for_timing(tmp_path, skew):
    clean_path, skewed_path = _clean_and_skewed(tmp_path, skew)
    clean, skewed = analyze_path(clean_path), analyze_path(skewed_path)
    expected, got = _timing(clean), _timing(skewed)
    assert got["resent"] == expected["resent"] == [0, 0]
    assert not [item for item in skewed.expert if item.code.startswith("slowness.")
                and item.code not in {i.code for i in clean.expert}]
    # Uncorrected, every response time would be 2 ms off and the PDUs of one side 2 ms late.
    for (command, response, first_byte), (clean_command, clean_response, clean_first) in zip(
            got["responses"], expected["responses"], strict=True):
        assert command == clean_command
        assert abs(response - clean_response) < 50e-6 and abs(first_byte - clean_first) < 50e-6
    # The first interface's clock as recorded; each connection's correction is what it measured by then
    # (an acknowledgement's turnaround under the skew: up to 100 µs here).
    offset = got["pdu_times"][0][2] - expected["pdu_times"][0][2]
    for (direction, stream_offset, time), (_d, _o, clean_time) in zip(got["pdu_times"], expected["pdu_times"],
                                                                      strict=True):
        assert abs(time - offset - clean_time) < 100e-6, (direction, stream_offset)
    for rtt, clean_rtt in zip(got["rtt"], expected["rtt"], strict=True):
        assert abs(rtt - clean_rtt) < 50e-6
    for connection in skewed.connections:  # TCP rows, corrected, in causal order
        late = connection.segments.corrected()
        assert any(late.late) and late is not connection.segments


@pytest.mark.parametrize("skew", [0.002, -0.002])
def test_tshark_on_the_same_shape_loses_pdus_and_calls_resends(tmp_path, skew):
    """tshark, for comparison, on the same two captures: it decodes fewer DICOM frames from the
    skewed one than from the clean one and flags spurious retransmissions and ACKed-unseen segments
    (its TCP analysis takes recorded times as they are); dicomtui gives the clean capture's PDUs."""
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    clean_path, skewed_path = _clean_and_skewed(tmp_path, skew)

    def tshark(path, display_filter: str) -> int:
        out = subprocess.run(["tshark", "-r", str(path), "-d", f"tcp.port=={SERVER_PORT},dicom", "-Y", display_filter,
                              "-T", "fields", "-e", "frame.number"], capture_output=True, text=True, check=True)
        return len(out.stdout.split())

    assert tshark(skewed_path, "dicom") < tshark(clean_path, "dicom")
    assert tshark(skewed_path, "tcp.analysis.spurious_retransmission") > 0
    assert tshark(clean_path, "tcp.analysis.flags") == 0
    ours, clean = analyze_path(skewed_path), analyze_path(clean_path)
    assert sorted((p.direction, p.stream_offset, p.pdu_type) for p in ours.pdus) == \
        sorted((p.direction, p.stream_offset, p.pdu_type) for p in clean.pdus)


def test_an_acknowledgement_no_constant_skew_explains_corrects_nothing(tmp_path):
    """One ACK number that runs ahead (a corrupted segment) in a capture with no skew: the server's
    own quick ACKs of the client's bytes rule out moving the server back by its lead, so the TCP
    analysis corrects nothing (and finds no needless resend); a real skew is still measured."""
    from dicomtui.core.wire.tcp_record import ROW, measured_lateness

    clean_path, skewed_path = _clean_and_skewed(tmp_path, 0.002)
    clean, skewed = analyze_path(clean_path), analyze_path(skewed_path)
    rows = list(ROW.iter_unpack(clean.connections[1].segments.data))
    assert measured_lateness(rows) == [0.0, 0.0]
    # The client's pure ACK of the server's first data, its ACK number pushed one data segment on
    # and recorded before that segment: a lead no constant skew of the server can explain.
    server = 1 - rows[0][7]
    data = [i for i, row in enumerate(rows) if row[7] == server and row[4] > 0]
    late_segment, next_segment = rows[data[0]], rows[data[1]]
    client_seq = [row for row in rows[:data[0]] if row[7] != server][-1][2]
    acknowledged = (next_segment[2] + next_segment[4]) % (1 << 32)
    # (time, frame, seq, ack, length, window, flags, direction): a pure ACK 2 ms before the segment
    forged = (late_segment[0] - 0.002, late_segment[1], client_seq, acknowledged, 0, late_segment[5], 0x10,
              1 - server)
    assert measured_lateness(rows[:data[0]] + [forged] + rows[data[0]:]) == [0.0, 0.0]
    skewed_rows = list(ROW.iter_unpack(skewed.connections[1].segments.data))
    assert 0.0019 < max(measured_lateness(skewed_rows)) <= 0.002
