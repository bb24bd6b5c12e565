"""SPAN duplicates (issue 25): a mirror port that records every packet twice, 0.05-0.9 ms apart, on one
interface or two, or a routed copy of each packet (a VLAN tag added, the TTL one less).  Each shape
is built from a recorded fixture's own frames (mergecap of the capture with a time-shifted copy of
itself, where mergecap is installed); it must give the clean capture's associations, messages,
statuses, PDUs, stream bytes and data sets byte for byte, no retransmission or loss, timing figures
from one copy (the Nagle fixture keeps Nagle as the main cause), and one note counting the copies.
A real retransmission (a new IP identification) stays a retransmission.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess

import pytest
from capture_tools import FIXTURES, RawFrame, read_frames, write_pcap
from conftest import analyze_path

from dicomtui.core.views.document import analysis_json

STORE = "store_dcmtk.pcapng"
NAGLE = "timing_nagle.pcap"


def _routed(frame: bytes) -> bytes:
    """The frame as a router sends it on: a VLAN tag, the TTL one less, the IP checksum redone (raw
    IPv6, as the Nagle fixture is: the hop limit one less)."""
    if frame[0] >> 4 == 6:
        return frame[:7] + bytes([frame[7] - 1]) + frame[8:]
    if frame[12:14] != b"\x08\x00":
        return frame
    ip = bytearray(frame[14:])
    header_length = (ip[0] & 0x0F) * 4
    ip[8] -= 1
    ip[10:12] = b"\0\0"
    words = struct.unpack(f"!{header_length // 2}H", bytes(ip[:header_length]))
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    ip[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return bytes.fromhex("0200000000cc0200000000dd") + b"\x81\x00\x00\x64\x08\x00" + bytes(ip)


def _doubled(frames: list[RawFrame], delay, copy=lambda data: data) -> list[RawFrame]:
    """Every frame and its copy ``delay(index)`` seconds later, in time order (as mergecap merges)."""
    both = [(frame.ts, 0, index, frame) for index, frame in enumerate(frames)]
    both += [(frame.ts + delay(index), 1, index, RawFrame(frame.ts + delay(index), copy(frame.data), frame.link_type))
             for index, frame in enumerate(frames)]
    both.sort(key=lambda item: (item[0], item[1], item[2]))
    return [item[3] for item in both]


def _clean_pcap(tmp_path, name: str):
    frames = [RawFrame(float(frame.ts), frame.data, frame.link_type) for frame in read_frames(FIXTURES / name)]
    return write_pcap(tmp_path / f"clean-{name}.pcap", frames, nano=True)


def _mergecap_copy(tmp_path, clean, shift: float, two_interfaces: bool):
    """mergecap of the capture with itself shifted by ``shift`` (editcap -t): one or two interfaces."""
    kind = "pcapng" if two_interfaces else "pcap"
    shifted = tmp_path / f"shifted.{kind}"
    subprocess.run(["editcap", "-F", kind, "-t", str(shift), str(clean), str(shifted)], check=True,
                   capture_output=True)
    original = tmp_path / f"original.{kind}"
    subprocess.run(["editcap", "-F", kind, str(clean), str(original)], check=True, capture_output=True)
    merged = tmp_path / f"merged.{kind}"
    # -I none: each file's interface stays its own (mergecap would merge identical ones by default)
    subprocess.run(["mergecap", *(["-I", "none"] if two_interfaces else []), "-F", kind, "-w", str(merged),
                    str(original), str(shifted)], check=True, capture_output=True)
    if two_interfaces:
        assert "Number of interfaces in file: 2" in subprocess.run(
            ["capinfos", str(merged)], capture_output=True, text=True).stdout
    return original, merged


def _shape(tmp_path, name: str, shape: str):
    clean = _clean_pcap(tmp_path, name)
    frames = [RawFrame(float(frame.ts), frame.data, frame.link_type) for frame in read_frames(clean)]
    if shape in ("mergecap", "mergecap-two-interfaces"):
        if not shutil.which("mergecap") or not shutil.which("editcap"):
            pytest.skip("mergecap/editcap (Wireshark) not installed")
        # The clean reference in the same format (pcapng times are read as one integer: another rounding).
        return _mergecap_copy(tmp_path, clean, 0.0004, shape.endswith("interfaces"))
    if shape == "jittered":  # each copy 0.05-0.9 ms after its original
        jitter = random.Random(25)
        delays = [jitter.uniform(0.00005, 0.0009) for _frame in frames]
        doubled = _doubled(frames, lambda index: delays[index])
    else:  # "routed": the copy a router sent on, 0.2 ms later
        doubled = _doubled(frames, lambda index: 0.0002, _routed)
    return clean, write_pcap(tmp_path / f"{shape}.pcap", doubled, nano=True)


def _without_frames(value):
    """A JSON value with frame numbers left out (the copies shift them)."""
    if isinstance(value, dict):
        return {key: _without_frames(item) for key, item in value.items() if "frame" not in key and key != "flagged"}
    if isinstance(value, list):
        return [_without_frames(item) for item in value]
    return value


def _facts(analysis) -> dict:
    document = analysis_json(analysis)
    return {
        "associations": [(a.calling_ae, a.called_ae, str(a.state), a.message_count) for a in analysis.associations],
        "messages": [(m.command_field, m.status, m.message_id, m.dataset_length, m.complete)
                     for m in analysis.messages],
        "pdus": [(p.pdu_type, p.length) for p in analysis.pdus],
        "streams": [tuple(c.read(d, 0, c.streams[d].end, analysis.buffers) for d in (0, 1))
                    for c in analysis.connections],
        "gaps": sum(len(c.streams[d].gaps) for c in analysis.connections for d in (0, 1)),
        "datasets": [hashlib.sha256(analysis.dataset_bytes(m)).hexdigest() for m in analysis.messages
                     if m.has_dataset],
        "timing": _without_frames(document["timing"]),
        "tcp_frames": document["capture"]["tcp_frames"],
    }


def _copies_note(analysis) -> list:
    return [item for item in analysis.expert if item.code == "capture.span_duplicates"]


SHAPES = ["mergecap", "mergecap-two-interfaces", "jittered", "routed"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", [STORE, NAGLE])
def test_span_copies_are_set_aside_and_the_analysis_is_the_clean_one(tmp_path, name, shape):
    clean_path, path = _shape(tmp_path, name, shape)
    clean, doubled = analyze_path(clean_path), analyze_path(path)
    expected, got = _facts(clean), _facts(doubled)
    assert expected["associations"] and expected["datasets"] or name == NAGLE
    assert got == expected
    assert not _copies_note(clean)
    (note,) = _copies_note(doubled)
    assert f"{expected['tcp_frames']} frame(s)" in note.message
    # The same findings otherwise: nothing about resends or lost segments, the copies are neither.
    assert [item.message for item in doubled.expert if item is not note] == [item.message for item in clean.expert]
    if name == NAGLE:
        assert analysis_json(doubled)["timing"]["causes"][0]["name"] == "nagle"


def test_every_path_sets_the_same_copies_aside(tmp_path):
    """The bulk path (blocks as small as 3 frames, so copies straddle block edges), the per-frame fast
    path and the reference path agree on a doubled capture."""
    from test_engine_fast_path import both_paths

    _clean, path = _shape(tmp_path, STORE, "jittered")
    for small in (False, True, "medium"):
        fast, reference = both_paths(path, small_blocks=small)
        assert fast == reference


def test_a_real_retransmission_is_no_copy(tmp_path):
    """A resend carries a new IP identification: it stays a retransmission, however soon it comes
    (abort_inflight_dcmtk.pcap resends a 55,808-byte segment 4.8 ms later)."""
    analysis = analyze_path(FIXTURES / "abort_inflight_dcmtk.pcap")
    assert not _copies_note(analysis)
    directions = analysis_json(analysis)["timing"]["connections"][0]["directions"]
    assert sum(direction["retransmissions"] for direction in directions) == 1


def test_tshark_sees_the_same_dicom_but_calls_the_copies_retransmissions(tmp_path):
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    clean_path, path = _shape(tmp_path, STORE, "jittered")

    def tshark(capture, display_filter):
        out = subprocess.run(["tshark", "-r", str(capture), "-d", "tcp.port==104,dicom", "-Y", display_filter,
                              "-T", "fields", "-e", "frame.number"], capture_output=True, text=True, timeout=120)
        return len(out.stdout.split())

    assert tshark(path, "dicom") == tshark(clean_path, "dicom") > 0
    # tshark flags the copies (dicomtui sets them aside with one note instead).
    assert tshark(path, "tcp.analysis.retransmission or tcp.analysis.duplicate_ack") > 0
