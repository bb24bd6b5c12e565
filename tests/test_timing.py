"""Message times (docs/timing.md) on real dcmtk traffic: the response whose 12-byte header came
alone and whose rest waited ~40 ms for the peer's delayed ACK counts in full."""

import json

from capture_tools import FIXTURES

from dicomtui.cli import main


def _frame_times(analysis):
    """Capture time of every frame, read independently with dpkt."""
    import dpkt

    with open(FIXTURES / "store_dcmtk.pcapng", "rb") as handle:
        return [ts for ts, _data in dpkt.pcapng.Reader(handle)]


def test_store_dcmtk_response_times_run_to_the_last_byte(analyze_fixture):
    analysis = analyze_fixture("store_dcmtk.pcapng")
    times = _frame_times(analysis)
    responses = [m for m in analysis.messages if m.command_name == "C-STORE-RSP"]
    assert len(responses) == 3
    for response in responses:
        request = analysis.messages[response.request]
        # The response's header frame and its completing frame, from the capture itself.
        assert response.first_frame < response.last_frame
        assert abs(response.start_time - times[response.first_frame - 1]) < 1e-6
        assert abs(response.end_time - times[response.last_frame - 1]) < 1e-6
        assert abs(request.end_time - times[request.last_frame - 1]) < 1e-6
        assert abs(response.first_byte_time - (response.start_time - request.end_time)) < 1e-9
        assert abs(response.response_time - (response.end_time - request.end_time)) < 1e-9
        # dcmtk's header-then-rest: the header follows the request within 1 ms, the rest ~40 ms later.
        assert response.first_byte_time < 0.001
        assert 0.035 < response.response_time < 0.060
        assert abs(request.transfer_time - (request.end_time - request.start_time)) < 1e-9


def test_slow_response_rule_and_filter_see_the_stall(analyze_fixture, plugin_host, tmp_path, capsys):
    from conftest import analyze_path

    analysis = analyze_path(FIXTURES / "store_dcmtk.pcapng", plugin_host,
                            options={"slow_response_seconds": "0.03"})
    slow = [item for item in analysis.expert if item.rule.endswith("timing") and "completed" in item.message]
    assert len(slow) == 4  # C-ECHO-RSP and three C-STORE-RSPs each took > 30 ms
    from test_tui_filter import shown

    assert len(shown(analysis, "response_time > 0.03")) == 4  # the PDUs completing those responses
    assert shown(analysis, "first_byte_time > 0.03") == []
    assert len(shown(analysis, "transfer_time > 0.03")) >= 4


def test_json_carries_all_three_times(capsys):
    assert main(["--json", str(FIXTURES / "store_dcmtk.pcapng")]) == 0
    document = json.loads(capsys.readouterr().out)
    responses = [m for m in document["messages"] if m["command"] == "C-STORE-RSP"]
    assert all(0.035 < m["response_time"] < 0.06 and m["first_byte_time"] < 0.001 for m in responses)
    assert all(m["transfer_time"] >= 0 for m in document["messages"])


def test_capture_without_the_handshake_still_times_and_says_the_scale_is_unknown(tmp_path, plugin_host):
    from capture_tools import read_frames, write_pcap
    from conftest import analyze_path

    from dicomtui.core.model.timing import timing_report

    frames = read_frames(FIXTURES / "store_dcmtk.pcapng")
    path = write_pcap(tmp_path / "midway.pcap", frames[22:])  # association 1 from its ACK of the SYN/ACK on
    analysis = analyze_path(path, plugin_host)
    report = timing_report(analysis)
    tcp = report.connections[0]
    assert tcp.handshake_rtt is None and not tcp.scale_known
    # Unscaled windows would look tiny: no window-full or window-limited verdicts without the scale.
    assert all(figures.window_full == 0 and not figures.stall_count("window") for figures in tcp.directions)
    assert tcp.side_rtt("server") >= 0  # the smallest data/ACK sample stands in
    assert report.causes and report.causes[0].name == "nagle"
    assert main(["--stats", str(path)]) == 0


def test_segment_record_budget_is_a_limit_with_a_note(tmp_path, plugin_host):
    from conftest import analyze_path

    from dicomtui.core.base.limits import Limits

    analysis = analyze_path(FIXTURES / "timing_loss.pcap", plugin_host, limits=Limits(max_segment_record=100))
    # The budget is checked every 256 frames: recording stops there, and says so.
    records = [connection.segments for connection in analysis.connections]
    assert all(record.truncated for record in records)
    assert sum(len(record) for record in records) <= 256
    notes = [item for item in analysis.expert if "max_segment_record" in item.message]
    assert len(notes) == 1
