"""IP fragments put back together (issue 25): behind a VPN or tunnel with a small MTU, every large TCP
segment arrives as several IP fragments.  The shapes here are built from a recorded fixture's frames:
each IPv4 data segment cut into fragments of at most 600 bytes, in order, in reverse order, with one
fragment sent twice and overlapping, and as IPv6 with fragment headers; the streams must be the
clean capture's byte for byte, with no gap, and the same associations and messages.  A fragment
missing from the capture leaves a gap and a plain statement, not an invention.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess

import pytest
from capture_tools import FIXTURES, RawFrame, read_frames, write_pcap
from conftest import analyze_path

from dicomtui.core.wire.fragments import FragmentReassembler

FIXTURE = "store_dcmtk.pcapng"


def _ipv4_fragments(frame: bytes, size: int, ident: int) -> list[bytes]:
    ip = frame[14:]
    header_length = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    payload = ip[header_length:total]
    if len(payload) <= size:
        return [frame]
    parts = []
    for start in range(0, len(payload), size):
        chunk = payload[start:start + size]
        more = start + size < len(payload)
        header = bytearray(ip[:header_length])
        struct.pack_into("!HHH", header, 2, header_length + len(chunk), ident, (0x2000 if more else 0) | start // 8)
        parts.append(frame[:14] + bytes(header) + chunk)
    return parts


def _ipv6_fragments(frame: bytes, size: int, ident: int) -> list[bytes]:
    ip = frame[14:]
    header_length = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    payload = ip[header_length:total]
    src = b"\x20\x01\x0d\xb8" + bytes(8) + ip[12:16]
    dst = b"\x20\x01\x0d\xb8" + bytes(8) + ip[16:20]
    parts = []
    for start in range(0, len(payload), size):
        chunk = payload[start:start + size]
        more = start + size < len(payload)
        fragment = struct.pack("!BBHI", 6, 0, start | (1 if more else 0), ident)
        header = struct.pack("!IHBB16s16s", 0x60000000, len(fragment) + len(chunk), 44, 64, src, dst)
        parts.append(frame[:12] + b"\x86\xdd" + header + fragment + chunk)
    if len(parts) == 1:  # whole: no fragment header needed, as a sender would send it
        header = struct.pack("!IHBB16s16s", 0x60000000, len(payload), 6, 64, src, dst)
        return [frame[:12] + b"\x86\xdd" + header + payload]
    return parts


def _fragmented(tmp_path, name: str, cut, order=lambda parts: parts, drop_one: bool = False) -> str:
    frames = []
    dropped = False
    for number, frame in enumerate(read_frames(FIXTURES / FIXTURE)):
        parts = order(cut(frame.data, 600, 1000 + number))
        if drop_one and len(parts) > 1 and not dropped and number > 40:
            parts = parts[1:]
            dropped = True
        frames += [RawFrame(frame.ts, part, frame.link_type) for part in parts]
    return str(write_pcap(tmp_path / f"{name}.pcap", frames))


def _facts(analysis) -> dict:
    return {
        "associations": [(a.calling_ae, a.called_ae, str(a.state), a.message_count) for a in analysis.associations],
        "messages": [(m.command_field, m.status, m.message_id, m.dataset_length, m.complete) for m in analysis.messages],
        "pdus": [(p.pdu_type, p.length) for p in analysis.pdus],
        "streams": [tuple(c.read(d, 0, c.streams[d].end, analysis.buffers) for d in (0, 1))
                    for c in analysis.connections],
        "gaps": sum(len(c.streams[d].gaps) for c in analysis.connections for d in (0, 1)),
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = _fragmented(tmp_path_factory.mktemp("clean"), "clean", lambda frame, size, ident: [frame])
    return path, _facts(analyze_path(path))


def _duplicated_overlap(parts: list[bytes]) -> list[bytes]:
    return parts + parts[:1] if len(parts) > 1 else parts  # the first fragment again, after the rest


SHAPES = {
    "ipv4-in-order": (_ipv4_fragments, lambda parts: parts),
    "ipv4-reversed": (_ipv4_fragments, lambda parts: parts[::-1]),
    "ipv4-shuffled-duplicate": (_ipv4_fragments, lambda parts: _duplicated_overlap(
        random.Random(len(parts)).sample(parts, len(parts)))),
    "ipv6-in-order": (_ipv6_fragments, lambda parts: parts),
    "ipv6-reversed": (_ipv6_fragments, lambda parts: parts[::-1]),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_fragmented_segments_give_the_clean_streams(tmp_path, clean, name):
    clean_path, expected = clean
    cut, order = SHAPES[name]
    path = _fragmented(tmp_path, name, cut, order)
    analysis = analyze_path(path)
    got = _facts(analysis)
    assert expected["associations"] and got == expected
    assert any("put back together" in item.message for item in analysis.expert)
    if shutil.which("tshark") and name == "ipv4-in-order":
        dicom = subprocess.run(["tshark", "-r", path, "-d", "tcp.port==104,dicom", "-Y", "dicom", "-T", "fields",
                                "-e", "dicom.pdu.type"], capture_output=True, text=True, timeout=120).stdout
        assert dicom.split()  # tshark (ip.defragment on by default) sees the DICOM too


def test_a_missing_fragment_is_a_gap_and_said_so(tmp_path, clean):
    _clean_path, expected = clean
    analysis = analyze_path(_fragmented(tmp_path, "missing", _ipv4_fragments, drop_one=True))
    got = _facts(analysis)
    assert got["gaps"] >= 1 and got["associations"] == expected["associations"][: len(got["associations"])]
    assert any("could not be completed" in item.message for item in analysis.expert)


def test_the_reassembler_bounds_what_it_holds():
    reassembler = FragmentReassembler(max_datagrams=2, timeout=1.0)
    for ident in range(5):
        assert reassembler.add(("a", ident), 0, True, 0, 0, 8, ts=0.0) is None
    assert len(reassembler.pending) == 2 and reassembler.dropped == 3
    assert reassembler.add(("a", 99), 8, True, 0, 0, 8, ts=5.0) is None  # the old ones time out
    assert len(reassembler.pending) == 1
    pieces = [reassembler.add(("b", 1), 16, False, 0, 100, 8, ts=5.0),
              reassembler.add(("b", 1), 0, True, 0, 200, 16, ts=5.0)]
    assert pieces == [None, [(0, 0, 200, 16), (16, 0, 100, 8)]]
