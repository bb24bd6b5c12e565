"""IP fragments that are themselves SPAN copies (issue 25): a capture behind a VPN (every large segment
in IP fragments) taken from a mirror port that records every frame twice.  Built from a recorded
fixture's frames: its data segments cut into fragments (IPv4, and IPv6 fragment headers) as in
test_fragments.py, then doubled as in test_span_duplicates.py: every frame again 0.05-0.9 ms later on
one interface (also on a slow link, where a fragment's copy comes before the datagram's next
fragment), the capture merged with a 0.4 ms late copy of itself by mergecap on one interface or two,
or a routed copy (a VLAN tag, the TTL or hop limit one less).  Each must give the clean fragmented
capture's associations, messages, statuses, PDUs, stream bytes, data sets byte for byte, timing and
findings, with one note counting the copies (fragments and whole segments together): each datagram
put back together once, no retransmission, no loss, no datagram left incomplete.

tshark (ip.defragment on) decodes the same DICOM PDUs from the doubled captures, but puts every
datagram back together twice and calls the second a retransmission (the last test).
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess

import pytest
from capture_tools import FIXTURES, RawFrame, read_frames, write_pcap
from conftest import analyze_path
from test_fragments import FIXTURE, _ipv4_fragments, _ipv6_fragments
from test_span_duplicates import _doubled, _facts, _mergecap_copy

from dicomtui.core.pipeline.engine import fragment_identity
from dicomtui.core.wire.duplicates import DUPLICATE_WINDOW, DuplicateFilter
from dicomtui.core.wire.packet import IpFragment

CUTS = {"ipv4": _ipv4_fragments, "ipv6": _ipv6_fragments}


def _fragmented_frames(cut, slow_link: bool) -> list[RawFrame]:
    """The fixture's frames, data segments in fragments of at most 600 bytes.  Back to back, a
    datagram's fragments are 5 µs apart (squeezed before the next frame); on a slow link (a 10 Mb/s
    VPN hop: 600 bytes take ~0.5 ms) 0.5 ms apart, every frame 3 ms after the one before it."""
    source = read_frames(FIXTURES / FIXTURE)
    frames = []
    for number, frame in enumerate(source):
        parts = cut(frame.data, 600, 1000 + number)
        if slow_link:
            start, step = float(frame.ts) + 0.003 * number, 0.0005
        else:
            following = float(source[number + 1].ts) if number + 1 < len(source) else float(frame.ts) + 1
            start, step = float(frame.ts), min(0.000005, (following - float(frame.ts)) / (len(parts) + 1))
        frames += [RawFrame(start + index * step, part, frame.link_type) for index, part in enumerate(parts)]
    return frames


def _routed(frame: bytes) -> bytes:
    """The frame as a router sends it on: a VLAN tag, the TTL (IPv4, checksum redone) or hop limit
    (IPv6) one less, new MAC addresses."""
    ethertype = frame[12:14]
    ip = bytearray(frame[14:])
    if ethertype == b"\x86\xdd":
        ip[7] -= 1
    else:
        header_length = (ip[0] & 0x0F) * 4
        ip[8] -= 1
        ip[10:12] = b"\0\0"
        total = sum(struct.unpack(f"!{header_length // 2}H", bytes(ip[:header_length])))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        ip[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return bytes.fromhex("0200000000cc0200000000dd") + b"\x81\x00\x00\x64" + ethertype + bytes(ip)


def _shape(tmp_path, family: str, shape: str):
    """(clean capture, doubled capture) of one shape."""
    frames = _fragmented_frames(CUTS[family], slow_link=shape == "slow-link")
    clean = write_pcap(tmp_path / "clean.pcap", frames, nano=True)
    if shape.startswith("mergecap"):
        if not shutil.which("mergecap") or not shutil.which("editcap"):
            pytest.skip("mergecap/editcap (Wireshark) not installed")
        return _mergecap_copy(tmp_path, clean, 0.0004, shape.endswith("interfaces"))
    if shape == "routed":
        doubled = _doubled(frames, lambda index: 0.0002, _routed)
    else:  # "jittered", "slow-link": each copy 0.05-0.9 ms after its original
        jitter = random.Random(25)
        delays = [jitter.uniform(0.00005, 0.0009) for _frame in frames]
        doubled = _doubled(frames, lambda index: delays[index])
    return clean, write_pcap(tmp_path / f"{shape}.pcap", doubled, nano=True)


def _copies_note(analysis) -> list:
    return [item for item in analysis.expert if item.code == "capture.span_duplicates"]


SHAPES = ["jittered", "slow-link", "mergecap", "mergecap-two-interfaces", "routed"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("family", sorted(CUTS))
def test_fragment_copies_are_set_aside_and_the_analysis_is_the_clean_one(tmp_path, family, shape):
    clean_path, path = _shape(tmp_path, family, shape)
    clean, doubled = analyze_path(clean_path), analyze_path(path)
    expected, got = _facts(clean), _facts(doubled)
    assert expected["associations"] and expected["datasets"] and not expected["gaps"]
    assert got == expected
    assert not _copies_note(clean)
    (note,) = _copies_note(doubled)
    # Every frame of the clean capture (fragments, whole segments) came twice: each copy counted once.
    assert doubled.frame_count == 2 * clean.frame_count
    assert note.message.startswith(f"{clean.frame_count} frame(s) ")
    assert doubled.span_duplicates == clean.frame_count
    # The same findings otherwise: each datagram put back together once (the fragment note's counts are
    # the clean ones), nothing about resends, lost segments or datagrams left incomplete.
    assert [item.message for item in doubled.expert if item is not note] == [item.message for item in clean.expert]
    (fragments,) = [item for item in doubled.expert if item.code == "capture.ip_fragments"]
    assert "could not be completed" not in fragments.message


def test_a_slow_link_interleaves_copies_with_the_next_fragments(tmp_path):
    """The slow-link shape is what it claims: some fragment's copy comes before the next fragment of
    its own datagram (so a copy reaches the reassembler while the datagram is pending)."""
    _clean, path = _shape(tmp_path, "ipv4", "slow-link")
    seen = []
    for frame in read_frames(path):
        ip = frame.data[14:]
        if struct.unpack("!H", ip[6:8])[0] & 0x3FFF:
            seen.append((struct.unpack("!H", ip[4:6])[0], struct.unpack("!H", ip[6:8])[0] & 0x1FFF))
    interleaved = [index for index in range(2, len(seen))
                   if seen[index - 1] == seen[index - 2] and seen[index][0] == seen[index - 1][0]
                   and seen[index][1] > seen[index - 1][1]]
    assert interleaved


def test_a_fragment_again_after_the_window_is_no_copy(tmp_path):
    """The copy filter's window holds for fragments too: the first fragment of each datagram sent
    again 50 ms later (no SPAN copy) is not set aside; its datagram is not completed again, and it
    is said so."""
    frames = _fragmented_frames(_ipv4_fragments, slow_link=False)
    again = []
    for frame in frames:
        ip = frame.data[14:]
        flags = struct.unpack("!H", ip[6:8])[0]
        if flags & 0x2000 and not flags & 0x1FFF:
            again.append(RawFrame(frame.ts + 10 * DUPLICATE_WINDOW, frame.data, frame.link_type))
    merged = sorted(frames + again, key=lambda frame: frame.ts)
    analysis = analyze_path(write_pcap(tmp_path / "late.pcap", merged, nano=True))
    assert not _copies_note(analysis)
    (fragments,) = [item for item in analysis.expert if item.code == "capture.ip_fragments"]
    assert f"{len(again)} datagram(s) could not be completed" in fragments.message


def test_a_fragment_with_other_bytes_is_no_copy():
    """Same datagram, offset and length but other payload bytes (an overlap that rewrites): no copy."""
    data = memoryview(b"\0" * 32 + b"ABCDEFGH" + b"\0" * 8 + b"abcdefgh" + b"\0" * 8)
    fragment = IpFragment(2, b"\1" * 8, 7, 6, 0, True, 0, 8)
    copies = DuplicateFilter([data])
    key = fragment_identity(fragment)
    assert not copies.is_copy(key, 0.0, 0, 32, 8, 1)
    assert not copies.is_copy(key, 0.0001, 0, 48, 8, 2)  # other bytes
    assert copies.is_copy(key, 0.0002, 0, 48, 8, 3)  # the latest one's bytes again: a copy of it
    assert not copies.is_copy(fragment_identity(fragment._replace(offset=8)), 0.0003, 0, 32, 8, 4)  # elsewhere


@pytest.mark.parametrize("family", sorted(CUTS))
def test_every_path_sets_the_same_fragment_copies_aside(tmp_path, family):
    """The bulk path (blocks as small as 3 frames), the per-frame fast path and the reference path agree."""
    from test_engine_fast_path import both_paths

    _clean, path = _shape(tmp_path, family, "jittered")
    for small in (False, True, "medium"):
        fast, reference = both_paths(path, small_blocks=small)
        assert fast == reference


def test_tshark_reassembles_each_datagram_twice_and_calls_the_second_a_retransmission(tmp_path):
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    clean_path, path = _shape(tmp_path, "ipv4", "jittered")

    def tshark(capture, display_filter, field="frame.number"):
        out = subprocess.run(["tshark", "-r", str(capture), "-d", "tcp.port==104,dicom", "-Y", display_filter,
                              "-T", "fields", "-e", field], capture_output=True, text=True, timeout=120)
        return out.stdout.split()

    # The same DICOM PDUs from both.
    assert sorted(tshark(path, "dicom", "dicom.pdu.type")) == sorted(tshark(clean_path, "dicom", "dicom.pdu.type"))
    clean_datagrams = len(tshark(clean_path, "ip.fragment.count"))
    assert clean_datagrams == _copies_and_datagrams(clean_path)[1] > 0
    # tshark puts each datagram back together twice; dicomtui once (with one note for the copies).
    assert len(tshark(path, "ip.fragment.count")) == 2 * clean_datagrams
    assert tshark(path, "ip.fragment.count and tcp.analysis.retransmission")
    assert _copies_and_datagrams(path)[1] == clean_datagrams


def _copies_and_datagrams(path) -> tuple[int, int]:
    """(copies set aside, datagrams put back together) by dicomtui."""
    analysis = analyze_path(path)
    (fragments,) = [item for item in analysis.expert if item.code == "capture.ip_fragments"]
    return analysis.span_duplicates, int(fragments.message.split(": ")[1].split()[0])
