"""The live pieces without a network: the stream reader, the block files, the incremental engine, the CLI.

Recorded fixtures are fed in arbitrary chunks, as a pipe delivers them; what
comes out must equal what reading the file gives.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from capture_tools import FIXTURES, read_frames
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.pipeline.incremental import IncrementalAnalysis
from dicomtui.core.views import analysis_json
from dicomtui.core.wire.capture import CaptureError
from dicomtui.core.wire.capture_stream import CaptureFileWriter, CaptureSpool, CaptureStreamParser
from dicomtui.core.wire.capture_tool import (
    CaptureRequest,
    CaptureToolError,
    _explain,
    find_tool,
    tool_argv,
)

CAPTURES = ["echo_dcmtk.pcap", "store_dcmtk.pcapng", "qr_pynetdicom.pcap", "reject_abort.pcap",
            "store_large_segments.pcap", "multi_iface.pcapng", "negotiation_pynetdicom.pcap"]


def _chunks(data: bytes, seed: int):
    rng = random.Random(seed)
    position = 0
    while position < len(data):
        size = rng.choice((1, 3, 17, 100, 1500, 9000, 65536))
        yield data[position : position + size]
        position += size


def _feed_all(path: Path, host, seed: int = 1, segment_bytes: int = 1 << 20) -> IncrementalAnalysis:
    live = IncrementalAnalysis(AnalysisConfig(), host, path.name, spool=CaptureSpool(segment_bytes))
    for chunk in _chunks(path.read_bytes(), seed):
        live.feed(chunk)
        live.poll()
    live.finish()
    return live


def _without_files(document: dict) -> dict:
    document["capture"]["files"] = []
    return document


@pytest.mark.parametrize("name", CAPTURES)
def test_fed_in_pieces_equals_reading_the_file(name, plugin_host, tmp_path):
    path = FIXTURES / name
    # Small spool segments: blocks land in many segments, as in a long capture.
    live = _feed_all(path, plugin_host, seed=len(name), segment_bytes=4096)
    try:
        assert live.spool.file_index > 0 or path.stat().st_size < 8192
        document = _without_files(analysis_json(live.analysis))
        # What was captured, saved (as the UI's save and -w write it) and read back, gives the same document.
        saved = tmp_path / "saved.pcapng"
        live.spool.save(str(saved))
        assert document == _without_files(analysis_json(analyze([str(saved)], AnalysisConfig(), plugin_host)))
        reference = _without_files(analysis_json(analyze([str(path)], AnalysisConfig(), plugin_host)))
        if name.endswith(".pcapng"):
            assert document == reference
        else:
            # pcap records became pcapng blocks: the same times through another resolution, so times and
            # the timing shares computed from microsecond differences agree to rounding only.
            _assert_close(document, reference)
    finally:
        live.close()


def _assert_close(ours, theirs, path: str = "") -> None:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        assert ours.keys() == theirs.keys(), path
        for key in ours:
            _assert_close(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(ours, list) and isinstance(theirs, list):
        assert len(ours) == len(theirs), path
        for position, (mine, other) in enumerate(zip(ours, theirs)):
            _assert_close(mine, other, f"{path}[{position}]")
    elif isinstance(ours, float) and isinstance(theirs, float):
        assert abs(ours - theirs) <= max(1e-5, 2e-2 * abs(theirs)), path  # ratios of rounded times
    else:
        assert ours == theirs, path


def test_results_appear_before_the_end(plugin_host):
    """The C-ECHO request and response are reported once their frames are in, long before the release."""
    path = FIXTURES / "echo_dcmtk.pcap"
    frames = read_frames(path)
    data = path.read_bytes()
    live = IncrementalAnalysis(AnalysisConfig(), plugin_host, "echo")
    try:
        # Feed the file up to the end of frame 14 (the first C-ECHO-RSP), record by record.
        live.feed(data[:24])
        offset, frame = 24, 0
        seen = []
        while frame < 14:
            caplen = int.from_bytes(data[offset + 8 : offset + 12], "little")
            live.feed(data[offset : offset + 16 + caplen])
            offset += 16 + caplen
            frame += 1
            update = live.poll()
            seen += [(frame, message.command_name) for message in update.messages]
        assert ("C-ECHO-RQ" in [name for _frame, name in seen]) and seen[-1] == (14, "C-ECHO-RSP")
        assert live.analysis.associations[0].state == "established"
        assert any(item.rule == "live" for item in live.provisional), "open association noted as provisional"
        assert len(frames) > 20
        live.feed(data[offset:])
        final = live.finish()
        assert final.final and live.provisional == []
        assert live.analysis.associations[0].state == "released"
    finally:
        live.close()


def test_parser_rejects_what_is_not_a_capture():
    parser = CaptureStreamParser("pipe")
    parser.feed(b"hello world, not a capture")
    with pytest.raises(CaptureError, match="not a pcap or pcapng"):
        parser.next_block()


def test_gzip_pipe_is_inflated_on_the_fly(tmp_path):
    import gzip

    data = gzip.compress((FIXTURES / "echo_dcmtk.pcap").read_bytes())
    result = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--summary", "-"], input=data,
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().count("\n") == 8


def test_a_pipe_cut_inside_a_block_is_reported(tmp_path):
    data = (FIXTURES / "echo_dcmtk.pcap").read_bytes()[:-30]
    result = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--summary", "-"], input=data,
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0
    assert b"ended inside a block" in result.stderr
    assert b"Traceback" not in result.stderr


def test_ring_buffer_files_are_each_a_capture_and_read_back_as_one(tmp_path, plugin_host):
    source = FIXTURES / "store_dcmtk.pcapng"
    writer = CaptureFileWriter(str(tmp_path / "ring.pcapng"), filesize_kb=20, files=0)
    parser = CaptureStreamParser("x")
    parser.feed(source.read_bytes())
    while (block := parser.next_block()) is not None:
        writer.add(block)
    writer.close()
    paths = writer.kept_paths
    assert len(paths) > 3
    for path in paths:
        assert os.path.getsize(path) <= 20_000 or len(read_frames(Path(path))) == 1
        assert read_frames(Path(path)), f"{path} holds packets"
    assert sum(len(read_frames(Path(path))) for path in paths) == len(read_frames(source))
    whole = _without_files(analysis_json(analyze([str(source)], AnalysisConfig(), plugin_host)))
    ring = _without_files(analysis_json(analyze(paths, AnalysisConfig(), plugin_host)))
    assert ring == whole


def test_ring_buffer_keeps_the_newest_files(tmp_path):
    writer = CaptureFileWriter(str(tmp_path / "ring.pcapng"), filesize_kb=10, files=2)
    parser = CaptureStreamParser("x")
    parser.feed((FIXTURES / "store_dcmtk.pcapng").read_bytes())
    while (block := parser.next_block()) is not None:
        writer.add(block)
    writer.close()
    assert len(writer.paths) > 3
    assert writer.kept_paths == writer.paths[-2:]
    assert sorted(str(path) for path in tmp_path.iterdir()) == sorted(writer.paths[-2:])


# -- the capture tool ------------------------------------------------------------------------


def test_argv_for_each_tool():
    request = CaptureRequest(interfaces=["lo", "eth0"], capture_filter="tcp port 104", snaplen=1500)
    assert tool_argv("dumpcap", "/usr/bin/dumpcap", request) == [
        "/usr/bin/dumpcap", "-q", "-w", "-", "-i", "lo", "-i", "eth0", "-s", "1500", "-f", "tcp port 104"]
    argv = tool_argv("tcpdump", "/usr/bin/tcpdump", CaptureRequest(["any"], "tcp port 104"))
    assert argv[:5] == ["/usr/bin/tcpdump", "-U", "--immediate-mode", "-w", "-"]
    assert argv[-3:] == ["-i", "any", "tcp port 104"]


def test_no_capture_tool_is_one_line_with_the_fix(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("dicomtui.core.wire.capture_tool.SEARCH_DIRECTORIES", ())
    with pytest.raises(CaptureToolError) as caught:
        find_tool()
    message = str(caught.value)
    assert "\n" not in message and "dumpcap" in message and "tcpdump" in message and "apt install" in message


def test_tool_messages_are_explained():
    dumpcap = ('dumpcap: You do not have permission to capture on device "lo".\n(socket: Operation not '
               'permitted)\nPlease check to make sure you have sufficient permissions.')
    message = _explain("dumpcap", "/usr/bin/dumpcap", dumpcap, ["lo"])
    assert "wireshark group" in message and "setcap" in message and "\n" not in message
    message = _explain("tcpdump", "/usr/bin/tcpdump", "tcpdump: nosuch: No such device exists", ["nosuch"])
    assert message.startswith("there is no interface named 'nosuch'")


def _cli(*arguments: str, user: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    prefix = []
    if user is not None:
        prefix = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"]
    return subprocess.run(prefix + [sys.executable, "-m", "dicomtui.cli", *arguments], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "HOME": "/tmp"}, check=False)


@pytest.mark.parametrize("tool", ["dumpcap", "tcpdump"])
def test_missing_interface_is_one_line(tool, capsys):
    try:
        find_tool(tool)
    except CaptureToolError:
        pytest.skip(f"{tool} not installed")
    from dicomtui.cli import main

    assert main(["-i", "nosuch0", "--capture-tool", tool, "--summary"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("dicomtui: there is no interface named 'nosuch0'")


@pytest.mark.parametrize("tool", ["dumpcap", "tcpdump"])
def test_capture_without_permission_says_how_to_get_it(tool):
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user")
    try:
        find_tool(tool)
    except CaptureToolError:
        pytest.skip(f"{tool} not installed")
    result = _cli("-i", "lo", "--capture-tool", tool, "--summary", "-a", "duration:2", user="nobody")
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dicomtui: no permission to capture on lo") or last.startswith("dicomtui: you may not run")
    assert "setcap" in last and "Traceback" not in result.stderr


def test_list_interfaces(capsys):
    from dicomtui.cli import main

    try:
        find_tool()
    except CaptureToolError:
        pytest.skip("no capture tool")
    assert main(["-D"]) == 0
    assert "lo" in capsys.readouterr().out


@pytest.mark.parametrize("arguments,complaint", [
    (["-w", "x.pcapng", "a.pcap"], "only apply to a live capture"),
    (["-i", "lo", "-b", "files:3", "-w", "x.pcapng"], "needs -b filesize"),
    (["-i", "lo", "-b", "filesize:10"], "needs -w"),
    (["-i", "lo", "-a", "filesize:10"], "duration:SEC or packets:N"),
    (["-i", "lo", "a.pcap"], "do not go together"),
    (["--follow", "x", "-f", "tcp"], "apply to capturing"),
])
def test_live_options_are_checked(arguments, complaint, capsys):
    from dicomtui.cli import main

    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 2 and complaint in capsys.readouterr().err


def test_jsonl_of_a_file(capsys):
    from dicomtui.cli import main

    assert main(["--jsonl", str(FIXTURES / "echo_dcmtk.pcap")]) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [item["object"] for item in objects]
    assert kinds.count("pdu") == 8 and kinds.count("message") == 4 and kinds[-1] == "end"
    pdu = next(item for item in objects if item["object"] == "pdu")
    assert pdu["type"] == 1 and pdu["type_name"] == "A-ASSOCIATE-RQ"


def test_follow_a_finished_file_with_packet_autostop(capsys):
    from dicomtui.cli import main

    assert main(["--follow", str(FIXTURES / "store_dcmtk.pcapng"), "-c", "20", "--summary"]) == 0
    assert "autostop after 20 packets: 20 packets" in capsys.readouterr().err


# -- retention ------------------------------------------------------------------------------


def _bench_capture(path: Path, size_mb: int = 2) -> Path:
    subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "bench" / "make_capture.py"),
                    str(path), "--size-mb", str(size_mb), "--object-kb", "4", "--associations", "20",
                    "--max-pdu", "2000"], check=True, capture_output=True, timeout=120)
    return path


def test_retention_bounds_the_index_and_the_spool(tmp_path, plugin_host):
    from dicomtui.core.api.export import ExportOptions
    from dicomtui.core.base.limits import Limits
    from dicomtui.core.views.export import exporters

    capture = _bench_capture(tmp_path / "long.pcap", size_mb=1)
    limits = Limits(live_max_pdus=400, live_spool_mb=1)
    live = IncrementalAnalysis(AnalysisConfig(limits=limits), plugin_host, "long",
                               spool=CaptureSpool(128 << 10, str(tmp_path)))
    reference = analyze([str(capture)], AnalysisConfig(), plugin_host)
    try:
        most_rows = most_bytes = 0
        for chunk in _chunks(capture.read_bytes(), 7):
            live.feed(chunk)
            update = live.poll()
            pdus = live.analysis.pdus
            most_rows = max(most_rows, len(pdus) - pdus.base)
            most_bytes = max(most_bytes, live.spool.bytes_kept)
        live.finish()
        dropped = live.retention.dropped
        analysis = live.analysis
        assert dropped.pdus > 0 and dropped.segments > 0 and dropped.messages > 0 and dropped.associations > 0
        assert len(analysis.pdus) == len(reference.pdus), "row numbers are kept"
        assert analysis.pdus.base == dropped.pdus
        # Bounded: the limit plus what arrives between two polls.
        assert most_rows < 400 + 200
        assert most_bytes < (1 << 20) + 3 * (128 << 10)
        assert most_bytes > 1 << 19, "the spool limit, not only the PDU limit, was reached"
        assert len([path for path in Path(live.spool.directory).iterdir()]) <= 12
        assert not [item for item in analysis.expert if item.group.value == "plugin"], "rules coped with drops"
        assert update.dropped is dropped
        # What is kept still reads back byte-exact: export the retained objects and compare with the file.
        kept = [message.index for message in analysis.messages if message.has_dataset and message.complete]
        assert len(kept) > 20
        part10 = exporters(plugin_host)["part10"]
        live_result = part10.export(analysis, str(tmp_path / "live"), ExportOptions(messages=kept))
        file_result = part10.export(reference, str(tmp_path / "file"), ExportOptions(messages=kept))
        assert len(live_result.written) == len(kept) and live_result.complete
        for (live_path, _), (file_path, _) in zip(sorted(live_result.written), sorted(file_result.written)):
            assert Path(live_path).name == Path(file_path).name
            assert Path(live_path).read_bytes() == Path(file_path).read_bytes()
    finally:
        live.close()
    assert not Path(live.spool.directory).exists()


@pytest.mark.parametrize("export_format", ["pcap", "transactions-csv", "dicom-json"])
def test_whole_capture_exporters_run_on_what_was_captured(export_format, tmp_path, capsys):
    from dicomtui.cli import main

    out = tmp_path / "out"
    assert main(["--follow", str(FIXTURES / "store_dcmtk.pcapng"), "-a", "duration:1", "--export", str(out),
                 "--export-format", export_format]) == 0, capsys.readouterr().err
    assert [path.name for path in out.iterdir()]
