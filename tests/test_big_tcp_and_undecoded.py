"""IPv6 super-frames and encapsulations not taken off (issue 25).

Linux BIG TCP hands the capture IPv6 packets of more than 64 KiB: payload length 0 and the real length
in a hop-by-hop Jumbo Payload option (RFC 2675); with TCP segmentation offload the length may simply
be 0.  Both must give the clean analysis (store_dcmtk.pcapng carried over IPv6).  Frames in an
encapsulation the walk does not take off (PPPoE here, and GRE with a payload type it does not know)
are counted and named in one warning instead of vanishing.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from capture_tools import FIXTURES, RawFrame, read_frames, to_ipv6, write_pcap
from conftest import analyze_path

FIXTURE = "store_dcmtk.pcapng"


def _jumbo(frame: RawFrame, with_option: bool) -> RawFrame:
    data = frame.data
    if data[12:14] != b"\x86\xdd":
        return frame
    ip = bytearray(data[14:54])
    payload = data[54:]
    if not with_option:  # offload: the length left 0, the frame holds the rest
        ip[4:6] = b"\0\0"
        return RawFrame(frame.ts, data[:14] + bytes(ip) + payload, frame.link_type)
    next_header = ip[6]
    hop_by_hop = struct.pack("!BBBBI", next_header, 0, 0xC2, 4, 8 + len(payload))
    ip[4:6] = b"\0\0"
    ip[6] = 0
    return RawFrame(frame.ts, data[:14] + bytes(ip) + hop_by_hop + payload, frame.link_type)


def _facts(analysis) -> dict:
    return {
        "associations": [(a.calling_ae, a.called_ae, str(a.state), a.message_count) for a in analysis.associations],
        "messages": [(m.command_field, m.status, m.message_id, m.dataset_length, m.complete)
                     for m in analysis.messages],
        "pdus": [(p.pdu_type, p.length, p.first_frame, p.last_frame) for p in analysis.pdus],
        "streams": [tuple(c.read(d, 0, c.streams[d].end, analysis.buffers) for d in (0, 1))
                    for c in analysis.connections],
    }


@pytest.fixture(scope="module")
def ipv6_frames():
    return [to_ipv6(frame) for frame in read_frames(FIXTURES / FIXTURE)]


@pytest.mark.parametrize("with_option", [True, False], ids=["jumbo-option", "length-zero"])
def test_ipv6_super_frames_give_the_clean_analysis(tmp_path, ipv6_frames, with_option):
    clean = _facts(analyze_path(write_pcap(tmp_path / "ipv6.pcap", ipv6_frames)))
    path = write_pcap(tmp_path / "big.pcap", [_jumbo(frame, with_option) for frame in ipv6_frames])
    assert clean["associations"] and _facts(analyze_path(path)) == clean


def _pppoe(frame: RawFrame) -> RawFrame:
    data = frame.data
    if data[12:14] != b"\x08\x00":
        return frame
    ip = data[14:]
    header = struct.pack("!BBHHH", 0x11, 0, 0x1234, len(ip) + 2, 0x0021)  # session, PPP protocol IPv4
    return RawFrame(frame.ts, data[:12] + b"\x88\x64" + header + ip, frame.link_type)


def _gre_unknown(frame: RawFrame) -> RawFrame:
    inner = struct.pack("!HH", 0, 0x88BB) + frame.data  # a GRE payload type the walk does not know
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(inner), 1, 0x4000, 64, 47, 0, bytes([192, 168, 9, 1]),
                     bytes([192, 168, 9, 2]))
    return RawFrame(frame.ts, frame.data[:12] + b"\x08\x00" + ip + inner, frame.link_type)


@pytest.mark.parametrize("wrap,name", [(_pppoe, "PPPoE session (ethertype 0x8864)"),
                                       (_gre_unknown, "ethertype 0x88BB inside GRE")])
def test_frames_in_an_encapsulation_not_taken_off_are_counted_and_named(tmp_path, wrap, name):
    frames = read_frames(FIXTURES / FIXTURE)
    path = write_pcap(tmp_path / "wrapped.pcap", [wrap(frame) for frame in frames])
    analysis = analyze_path(path)
    assert not analysis.pdus
    (warning,) = [item for item in analysis.expert if item.code == "capture.unknown_encapsulation"]
    assert f"{len(frames)} frame(s) skipped" in warning.message and f"{name}: {len(frames)}" in warning.message
    if shutil.which("tshark") and wrap is _pppoe:
        # tshark takes PPPoE off; dicomtui names what it skipped instead of saying nothing.
        out = subprocess.run(["tshark", "-r", str(path), "-d", "tcp.port==104,dicom", "-Y", "dicom"],
                             capture_output=True, text=True, timeout=120)
        assert out.stdout.strip()


def test_an_unknown_link_type_is_named_and_counted(tmp_path):
    """In the same one warning as encapsulations (tests/test_undecoded_link_types.py mixes them)."""
    frames = [RawFrame(frame.ts, frame.data, 147) for frame in read_frames(FIXTURES / FIXTURE)]
    analysis = analyze_path(write_pcap(tmp_path / "user0.pcap", frames))
    (warning,) = [item for item in analysis.expert if item.code == "capture.unknown_encapsulation"]
    assert f"link type 147 (LINKTYPE_USER0): {len(frames)} (first frame 1)" in warning.message
    assert warning.frame == 1
