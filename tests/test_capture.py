"""Capture formats, link layers and bad input, on real fixture traffic."""

import gzip
import subprocess
import sys

import dpkt
import pytest
from capture_tools import (
    FIXTURES,
    read_frames,
    to_ipv6,
    to_null,
    to_raw,
    to_sll,
    to_sll2,
    to_vlan,
    write_pcap,
    write_pcapng,
)
from conftest import analyze_path

from dicomtui.core.wire.capture import CaptureError, iter_records, open_source
from dicomtui.cli import main, make_host
from dicomtui.core.wire.packet import parse_tcp

CAPTURES = ["echo_dcmtk.pcap", "store_dcmtk.pcapng", "qr_pynetdicom.pcap", "multi_iface.pcapng"]


def pdu_signature(analysis):
    return [(p.pdu_type, p.length, p.summary, p.first_frame, p.last_frame) for p in analysis.pdus]


@pytest.fixture(scope="module")
def echo_frames():
    return read_frames(FIXTURES / "echo_dcmtk.pcap")


@pytest.fixture(scope="module")
def echo_reference(analyze_fixture):
    return pdu_signature(analyze_fixture("echo_dcmtk.pcap"))


@pytest.mark.parametrize("name", CAPTURES)
def test_frames_match_dpkt_readers(name):
    path = FIXTURES / name
    source = open_source(str(path))
    ours = [(round(r.timestamp, 6), bytes(source.data[r.offset : r.offset + r.caplen]))
            for r in iter_records(source)]
    if name.endswith(".pcapng"):
        # dpkt's pcapng reader only knows the first interface; compare frame bytes and count.
        with open(path, "rb") as handle:
            blocks = []
            reader = dpkt.pcapng.Reader(handle)
            blocks = [bytes(buf) for _ts, buf in reader]
        assert [frame for _ts, frame in ours] == blocks
    else:
        theirs = [(round(f.ts, 6), f.data) for f in read_frames(path)]
        assert ours == theirs
    source.close()


@pytest.mark.parametrize("name", ["echo_dcmtk.pcap", "store_dcmtk.pcapng", "qr_pynetdicom.pcap"])
def test_tcp_segments_match_dpkt(name):
    for frame in read_frames(FIXTURES / name):
        segment = parse_tcp(frame.data, frame.link_type)
        eth = dpkt.ethernet.Ethernet(frame.data)
        ip = eth.data
        if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.tcp.TCP):
            assert segment is None
            continue
        tcp = ip.data
        assert (segment.sport, segment.dport, segment.seq, segment.ack, segment.flags) == (
            tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags)
        start = segment.payload_offset
        assert frame.data[start : start + segment.payload_length] == bytes(tcp.data)


@pytest.mark.parametrize("variant", ["us-le", "ns-le", "us-be", "ns-be", "pcapng", "gzip-pcap", "gzip-pcapng"])
def test_capture_formats_decode_identically(tmp_path, echo_frames, echo_reference, variant):
    path = tmp_path / "capture.bin"  # names never matter; magic bytes do
    if variant == "pcapng":
        write_pcapng(path, echo_frames)
    elif variant == "gzip-pcapng":
        write_pcapng(tmp_path / "plain", echo_frames)
        path.write_bytes(gzip.compress((tmp_path / "plain").read_bytes()))
    else:
        write_pcap(path, echo_frames, nano=variant.startswith("ns"), big_endian=variant.endswith("be"),
                   compress=variant == "gzip-pcap")
    assert pdu_signature(analyze_path(path)) == echo_reference


@pytest.mark.parametrize("convert", [to_sll, to_sll2, to_raw, to_null, to_vlan, lambda f: to_vlan(f, 2), to_ipv6],
                         ids=["sll", "sll2", "raw", "null", "802.1q", "qinq", "ipv6"])
def test_link_layers_decode_identically(tmp_path, echo_frames, echo_reference, convert):
    path = write_pcap(tmp_path / "x.pcap", [convert(frame) for frame in echo_frames])
    assert [s[:3] for s in pdu_signature(analyze_path(path))] == [s[:3] for s in echo_reference]


def test_pcapng_with_several_interfaces_and_link_types(tmp_path, echo_frames, echo_reference):
    # Alternate frames between an Ethernet and an SLL2 interface: one capture, two link types.
    mixed = [to_sll2(frame) if index % 2 else frame for index, frame in enumerate(echo_frames)]
    path = write_pcapng(tmp_path / "mixed.pcapng", mixed)
    assert [s[:3] for s in pdu_signature(analyze_path(path))] == [s[:3] for s in echo_reference]


def test_recorded_multi_interface_capture(analyze_fixture):
    analysis = analyze_fixture("multi_iface.pcapng")
    source = analysis.sources[0]
    link_types = {record.link_type for record in iter_records(source)}
    assert len(link_types) >= 2
    # dumpcap wrote every packet twice (lo and any), in per-interface runs rather than time order:
    # the copies are duplicates of the same TCP segments, not new connections.
    assert len(analysis.connections) == 2
    assert [a.state for a in analysis.associations] == ["released", "released"]
    assert [m.command_name for m in analysis.messages] == ["C-ECHO-RQ", "C-ECHO-RSP", "C-STORE-RQ", "C-STORE-RSP"]


def test_rotated_files_read_as_one_capture_in_time_order(tmp_path, echo_frames, echo_reference):
    half = len(echo_frames) // 2
    first = write_pcap(tmp_path / "part1.pcap", echo_frames[:half])
    second = write_pcap(tmp_path / "part2.pcap", echo_frames[half:])
    from dicomtui.core.pipeline import analyze

    analysis = analyze([str(second), str(first)], None, make_host())
    assert pdu_signature(analysis) == echo_reference


def test_standard_input_is_read(echo_reference):
    data = (FIXTURES / "echo_dcmtk.pcap").read_bytes()
    result = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--summary", "-"], input=data,
                            capture_output=True, check=True)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(echo_reference)
    assert "A-ASSOCIATE request ECHOSCU --> STORESCP" in lines[0]


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (b"hello world, not a capture", "not a pcap or pcapng"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
    (b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
    (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x00\x00\x00\x00", "bad byte-order magic"),
])
def test_unreadable_input_gives_one_line_error_and_exit_1(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    assert main(["--summary", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and expected in err
    with pytest.raises(CaptureError):
        analyze_path(path)


def test_missing_file_is_a_clean_error(capsys):
    assert main(["--summary", "/nonexistent/capture.pcap"]) == 1
    assert "cannot open" in capsys.readouterr().err


def test_truncated_last_record_is_a_warning_and_earlier_frames_count(tmp_path, capsys, echo_reference):
    data = (FIXTURES / "echo_dcmtk.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:-20])
    assert main(["--summary", str(path)]) == 0
    captured = capsys.readouterr()
    assert "truncated last record" in captured.err
    assert len(captured.out.splitlines()) == len(echo_reference)
    analysis = analyze_path(path)
    assert any("truncated last record" in item.message for item in analysis.expert)


def test_unsupported_link_type_is_an_expert_item(tmp_path, echo_frames):
    from capture_tools import RawFrame

    frames = [RawFrame(f.ts, f.data, 147) for f in echo_frames]  # LINKTYPE_USER0
    analysis = analyze_path(write_pcap(tmp_path / "user0.pcap", frames))
    assert len(analysis.pdus) == 0
    assert any(f"{len(frames)} frame(s) skipped" in item.message and "link type 147 (LINKTYPE_USER0)" in item.message
               for item in analysis.expert)


def test_snapshot_length_cut_becomes_a_gap(tmp_path, echo_frames):
    from capture_tools import RawFrame

    # Cut every frame to 80 bytes, as `tcpdump -s 80` would: payload beyond is a gap, not garbage.
    frames = [RawFrame(f.ts, f.data[:80], f.link_type) for f in echo_frames]
    analysis = analyze_path(write_pcap(tmp_path / "snap.pcap", frames))
    connection = analysis.connections[0]
    assert connection.streams[0].gaps
    assert any("snapshot length" in gap.reason for gap in connection.streams[0].gaps)
