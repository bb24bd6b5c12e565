"""Timestamps a capture cannot be trusted with (issue 25): pcapng simple packet blocks carry no time,
and a capture's clock can be set back while it runs (an NTP step).  Built from the recorded
store_dcmtk.pcapng: every server frame as a simple packet block; the frames from the second
association's first C-STORE on moved 2 s back.  The DICOM must be the clean capture's; no duration,
response time or budget may be negative or absurd (the SPB frames once had time 0: "SCP processing
150 % of 3593187258.889 s"); a step back is reported with its frame, size and a code, and no
duration spans it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from capture_tools import FIXTURES, RawFrame, read_frames, write_pcap
from conftest import analyze_path
from tui_tools import run_async, wait_for_workers

from dicomtui.core.model.analysis import AnalysisConfig
from dicomtui.core.model.timing import exchanges, srt_tables, timing_report
from dicomtui.core.views.document import analysis_json
from dicomtui.core.views.timing import stats_lines
from dicomtui.tui.app import DicomApp

FIXTURE = "store_dcmtk.pcapng"
SERVER_PORT = 104


def _block(block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", block_type, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _pcapng_with_simple_blocks(path, frames: list[RawFrame], untimed) -> None:
    """One Ethernet interface; frames for which ``untimed(frame)`` holds as simple packet blocks."""
    parts = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
             _block(1, struct.pack("<HHI", 1, 0, 262144))]
    for frame in frames:
        if untimed(frame):
            parts.append(_block(3, struct.pack("<I", len(frame.data)) + frame.data))
        else:
            ts = round(frame.ts * 1e6)
            parts.append(_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame.data),
                                               len(frame.data)) + frame.data))
    path.write_bytes(b"".join(parts))


def _from_server(frame: RawFrame) -> bool:
    return frame.data[12:14] == b"\x08\x00" and struct.unpack("!H", frame.data[34:36])[0] == SERVER_PORT


def _facts(analysis) -> dict:
    return {
        "associations": [(a.calling_ae, a.called_ae, str(a.state), a.message_count) for a in analysis.associations],
        "messages": [(m.command_name, m.message_id, m.responded_to, m.status, m.complete)
                     for m in analysis.messages],
        "pdus": [(p.pdu_type, p.length, p.first_frame, p.last_frame) for p in analysis.pdus],
        "datasets": [analysis.dataset_bytes(m) for m in analysis.messages if m.has_dataset],
    }


def _durations(document: dict) -> list[float]:
    """Every duration and response time in the timing section."""
    timing = document["timing"]
    values = [timing["total_seconds"]]
    values += [cause["seconds"] for cause in timing["causes"]]
    for association in timing["associations"]:
        values.append(association["duration"])
        values += list(association["budget"].values())
        values += association["think_gaps"]
    values += [exchange["response_time"] for exchange in timing["exchanges"] if exchange["response_time"] is not None]
    return values


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    frames = [RawFrame(float(f.ts), f.data, f.link_type) for f in read_frames(FIXTURES / FIXTURE)]
    path = tmp_path_factory.mktemp("clock") / "clean.pcapng"
    _pcapng_with_simple_blocks(path, frames, lambda frame: False)
    analysis = analyze_path(path)
    return frames, analysis


@pytest.mark.parametrize("leading", [False, True], ids=["server-frames", "and-the-first-three"])
def test_simple_packet_blocks_have_no_time_and_make_no_duration(tmp_path, clean, leading):
    frames, expected = clean
    first = set(id(frame) for frame in frames[:3]) if leading else set()

    def untimed_frame(frame):
        return _from_server(frame) or id(frame) in first

    path = tmp_path / "spb.pcapng"
    _pcapng_with_simple_blocks(path, frames, untimed_frame)
    analysis = analyze_path(path)
    assert _facts(analysis) == _facts(expected)
    untimed = sum(untimed_frame(frame) for frame in frames)
    (note,) = [note.message for note in analysis.notes if "simple packet blocks" in note.message]
    assert note.startswith(f"{untimed} packet(s)")
    document, clean_document = analysis_json(analysis), analysis_json(expected)
    if not leading:
        assert document["capture"]["first_time"] == clean_document["capture"]["first_time"]
    total = clean_document["timing"]["total_seconds"]
    assert all(0 <= value <= total + 1e-6 for value in _durations(document))


def test_a_clock_step_back_is_reported_and_spans_no_duration(tmp_path, clean):
    frames, expected = clean
    store = next(pdu for pdu in expected.pdus if "C-STORE-RQ" in pdu.summary)
    at = store.first_frame  # frame numbers are 1-based
    stepped = [RawFrame(f.ts - 2.0 if number >= at else f.ts, f.data, f.link_type)
               for number, f in enumerate(frames, 1)]
    path = write_pcap(tmp_path / "stepped.pcap", stepped, nano=True)
    analysis = analyze_path(path)
    assert _facts(analysis) == _facts(expected)
    (step,) = [item for item in analysis.expert if item.code == "capture.clock_step_back"]
    assert step.frame == at and "2.000 s" in step.message
    document, clean_document = analysis_json(analysis), analysis_json(expected)
    total = clean_document["timing"]["total_seconds"]
    assert all(0 <= value <= total + 1e-6 for value in _durations(document))
    # No think time or wait invented across the step (it once read as "the SCU waits between objects").
    assert not [item for item in analysis.expert if "waits" in item.message and "SCU" in item.message]
    if shutil.which("tshark"):
        # tshark, for comparison: the same DICOM, and its one negative time delta at the step is
        # all it says (its SRT would span the step; dicomtui names it and moves the times on).
        out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e",
                              "frame.time_delta"], capture_output=True, text=True, check=True).stdout
        negative = [int(line.split("\t")[0]) for line in out.splitlines() if line.split("\t")[1].startswith("-")]
        assert negative == [at]
        dicom = subprocess.run(["tshark", "-r", str(path), "-d", "tcp.port==104,dicom", "-Y", "dicom"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
        assert len(dicom) > 0


def test_simple_packet_block_frames_are_marked_untimed_and_left_out_of_response_times(tmp_path, clean):
    """Every server frame a simple packet block: those frames are marked "time unknown", and every
    answered request (its response ends in one) is counted apart, not given a response time."""
    frames, expected = clean
    path = tmp_path / "spb.pcapng"
    _pcapng_with_simple_blocks(path, frames, _from_server)
    analysis = analyze_path(path)
    server_frames = [number for number, frame in enumerate(frames, 1) if _from_server(frame)]
    assert list(analysis.untimed_frames) == server_frames
    assert not analysis.time_known(server_frames[0]) and analysis.time_known(1)
    found = exchanges(analysis)
    answered = [e for e in exchanges(expected) if e.response_time is not None]
    assert len(found) == len(answered) > 0
    assert all(e.untimed and e.response_time is None and e.first_byte is None for e in found)
    rows = srt_tables(found)["command"]
    assert sum(row.untimed for row in rows) == len(answered) and not any(row.times for row in rows)
    assert sum(row.unanswered for row in rows) == 0
    text = "\n".join(stats_lines(analysis))
    assert f"({len(answered)} answered request(s) left out" in text
    # Every association has untimed PDUs: none is ranked by cause, and --stats says why.
    report = timing_report(analysis)
    assert report.untimed_associations == len(analysis.associations) and not report.causes
    assert f"({len(analysis.associations)} association(s) left out of the causes" in text
    assert timing_report(expected).untimed_associations == 0 and timing_report(expected).causes
    from dicomtui.tui.stats_screen import build_tables

    (by_command,) = [table for table in build_tables(analysis) if table.title.startswith("Response times by command (")]
    assert by_command.columns[-1][0] == "No time"
    assert sum(int(row[0][-1]) for row in by_command.rows) == len(answered)
    (clean_table,) = [table for table in build_tables(expected) if table.title.startswith("Response times by command (")]
    assert clean_table.columns[-1][0] == "No answer"
    assert not list(expected.untimed_frames) and all(not e.untimed for e in exchanges(expected))


@run_async
async def test_the_packet_list_shows_an_untimed_pdu_time_as_unknown(tmp_path, clean, plugin_host):
    frames, _expected = clean
    path = tmp_path / "spb.pcapng"
    _pcapng_with_simple_blocks(path, frames, _from_server)
    app = DicomApp([str(path)], AnalysisConfig(), plugin_host, preferences_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 30)) as pilot:
        for _ in range(4):
            await pilot.pause(0.05)
            await wait_for_workers(app)
        analysis = app.analysis
        times = {index: app.packet_list.cell_values(index)["time"] for index in range(len(analysis.pdus))}
        untimed = {index for index in times if analysis.pdus[index].direction == 1}
        assert untimed and all(times[index] == "?" for index in untimed)
        assert all(times[index] != "?" for index in times if index not in untimed)


def test_tshark_leaves_the_same_frames_without_a_time(tmp_path, clean):
    """tshark, for comparison: the simple packet block frames have no frame.time_relative (an empty
    field), the others do; dicomtui marks exactly those frames untimed, and both see the same DICOM."""
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    frames, expected = clean
    path = tmp_path / "spb.pcapng"
    _pcapng_with_simple_blocks(path, frames, _from_server)
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-E", "occurrence=f", "-e", "frame.number",
                          "-e", "frame.time_relative"], capture_output=True, text=True, check=True).stdout
    no_time = [int(line.split("\t")[0]) for line in out.splitlines() if not line.split("\t")[1].strip()]
    analysis = analyze_path(path)
    assert no_time and list(analysis.untimed_frames) == no_time
    dicom = subprocess.run(["tshark", "-r", str(path), "-d", "tcp.port==104,dicom", "-Y", "dicom"],
                           capture_output=True, text=True, check=True).stdout
    assert len(dicom.splitlines()) > 0 and len(analysis.pdus) == len(expected.pdus)


def test_a_live_read_marks_the_same_frames_untimed(tmp_path, clean, plugin_host):
    """The same capture fed in pieces to the live engine (a pipe): the same frames marked untimed,
    no clock step invented from a simple packet block's missing time."""
    from dicomtui.core.pipeline.incremental import IncrementalAnalysis

    frames, _expected = clean
    path = tmp_path / "spb.pcapng"
    _pcapng_with_simple_blocks(path, frames, _from_server)
    live = IncrementalAnalysis(AnalysisConfig(), plugin_host, "spb")
    data = path.read_bytes()
    try:
        for start in range(0, len(data), 700):
            live.feed(data[start : start + 700])
            live.poll()
        live.finish()
        analysis = live.analysis
        assert list(analysis.untimed_frames) == list(analyze_path(path).untimed_frames)
        assert not [item for item in analysis.expert if item.code == "capture.clock_step_back"]
    finally:
        live.close()


def test_tcp_analysis_measures_no_rtt_or_stall_to_or_from_an_untimed_frame(tmp_path, clean):
    """Every server frame a simple packet block: the server's ACKs and data have no time, so no RTT
    sample (the borrowed times gave 0 µs ones) and no stall (each ends at, starts from, or is
    released by an untimed frame) is measured; the clean capture has both.  With only the first
    frames untimed the rest is measured as in the clean capture."""
    from dicomtui.core.wire.tcp_analysis import analyse_connection

    frames, expected = clean

    def figures(analysis):
        found = []
        for connection in analysis.connections:
            result = analyse_connection(connection, untimed=analysis.untimed_between(connection.first_frame,
                                                                                      connection.last_frame))
            found.append(([len(d.rtt_samples) for d in result.directions], [len(d.stalls) for d in result.directions]))
        return found

    path = tmp_path / "spb.pcapng"
    _pcapng_with_simple_blocks(path, frames, _from_server)
    analysis = analyze_path(path)
    clean_figures = figures(expected)
    assert all(sum(samples) for samples, _stalls in clean_figures) and sum(sum(s) for _r, s in clean_figures)
    assert figures(analysis) == [([0, 0], [0, 0])] * len(clean_figures)
    # The SYN-ACKs have no time: no handshake RTT (the borrowed time made it 0.0 ms).
    assert all(analyse_connection(c, untimed=analysis.untimed_between(c.first_frame, c.last_frame)).handshake_rtt
               is None for c in analysis.connections)
    assert all(analyse_connection(c).handshake_rtt is not None for c in expected.connections)
    unfiltered = [analyse_connection(connection) for connection in analysis.connections]
    assert min(sample for result in unfiltered for sample in result.directions[0].rtt_samples) < 1e-6
    # The second connection's frames all timed: its figures are the clean capture's.
    first_connection_frames = {id(frame) for frame in frames[:20]}
    path = tmp_path / "first.pcapng"
    _pcapng_with_simple_blocks(path, frames, lambda frame: id(frame) in first_connection_frames and _from_server(frame))
    partial = analyze_path(path)
    assert figures(partial)[1] == clean_figures[1] and figures(partial)[0] != clean_figures[0]


def test_an_untimed_response_has_no_response_time_in_the_model(tmp_path, clean):
    """The responses ending in simple packet block frames have no first-byte or response time (the
    borrowed times' difference would be a number that means nothing); the clean capture's have."""
    frames, expected = clean
    path = tmp_path / "spb.pcapng"
    _pcapng_with_simple_blocks(path, frames, _from_server)
    analysis = analyze_path(path)
    responses = [message for message in analysis.messages if message.request is not None]
    assert responses and all(m.response_time is None and m.first_byte_time is None for m in responses)
    assert all(m.response_time is not None for m in expected.messages if m.request is not None)
    messages = analysis_json(analysis)["messages"]
    assert all(m["response_time"] is None for m in messages if m.get("request") is not None)
