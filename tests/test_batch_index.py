"""The batch index's column-wise path (batch/fast_index.py) gives the per-frame loop's index,
field for field: on every fixture, on generated transfers, and on Ethernet pcaps whose frames
are not plain IPv4/TCP (VLAN tags, IPv6, IPv4 options, fragments, short or inconsistent
headers, frames shorter than the gathered headers at the end of the file, damage)."""

from __future__ import annotations

import struct
import tempfile

import pytest

pytest.importorskip("numpy")

from capture_tools import FIXTURES, RawFrame, load_make_capture, read_frames, to_ipv6, to_vlan, write_pcap
from dicomtui.batch import split

FIELDS = ("positions", "keys", "timestamps", "offsets", "caplens", "origlens", "link_types")


def both_ways(path, groups: int, monkeypatch) -> tuple[dict, dict]:
    spool = tempfile.gettempdir()
    taken = []
    with monkeypatch.context() as patch:
        real = split.index_columns
        patch.setattr(split, "index_columns", lambda *args: taken.append(real(*args)) or taken[-1])
        fast = split.index_file(0, str(path), groups, spool, "hash")
    fast["columns"] = taken == [True]  # whether the column-wise path did it (not part of the index)
    with monkeypatch.context() as patch:
        patch.setattr(split, "index_columns", lambda *args: False)
        slow = split.index_file(0, str(path), groups, spool, "hash")
    return fast, slow


def assert_same_index(path, monkeypatch, groups=(1, 3, 8)) -> None:
    for count in groups:
        fast, slow = both_ways(path, count, monkeypatch)
        fast.pop("columns")
        if "problem" in slow:
            assert fast == slow
            continue
        assert fast["summary"] == slow["summary"]
        assert fast["keys"] == slow["keys"]
        for mine, theirs in zip(fast["parts"], slow["parts"], strict=True):
            for name in FIELDS:
                assert getattr(mine, name) == getattr(theirs, name), (path, count, name)
        assert fast["fragments"] == slow["fragments"], (path, count)  # IP fragments, kept apart
        assert fast["untimed"] == slow["untimed"]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.pcap*")) + sorted((FIXTURES / "fuzz-regressions").iterdir()),
                         ids=lambda path: path.name)
def test_fixtures(path, monkeypatch):
    assert_same_index(path, monkeypatch)


def test_a_messy_generated_transfer(tmp_path, monkeypatch):
    path = tmp_path / "messy.pcap"
    load_make_capture().main([str(path), "--size-mb", "2", "--object-kb", "16", "--associations", "3",
                              "--messy", "0.05"])
    fast, slow = both_ways(path, 4, monkeypatch)
    assert fast["summary"].frames > 1000 and fast["columns"]
    assert_same_index(path, monkeypatch, groups=(4,))


def _odd_frames() -> list[RawFrame]:
    frames = read_frames(FIXTURES / "qr_pynetdicom.pcap")
    odd = []
    for number, frame in enumerate(frames[:60]):
        kind = number % 10
        data = frame.data
        if kind == 1:
            frame = to_vlan(frame)
        elif kind == 2:
            frame = to_ipv6(frame)
        elif kind == 3 and len(data) >= 34:  # IPv4 header length 6 words (an option), the general walk
            frame = RawFrame(frame.ts, data[:14] + bytes([0x46]) + data[15:], 1)
        elif kind == 4 and len(data) >= 34:  # a non-first fragment: not TCP for either path
            frame = RawFrame(frame.ts, data[:20] + struct.pack("!H", 0x0010) + data[22:], 1)
        elif kind == 5:  # cut short: fewer bytes than the headers
            frame = RawFrame(frame.ts, data[:40], 1)
        elif kind == 6 and len(data) >= 54:  # TCP data offset 4 words: no segment
            frame = RawFrame(frame.ts, data[:46] + bytes([0x40]) + data[47:], 1)
        elif kind == 7 and len(data) >= 54:  # total length 0
            frame = RawFrame(frame.ts, data[:16] + b"\0\0" + data[18:], 1)
        elif kind == 8:  # time going backwards (running maximum keys)
            frame = RawFrame(frame.ts - 5, data, 1)
        odd.append(frame)
    odd.append(RawFrame(frames[60].ts, frames[60].data[:30], 1))  # the last record: under 70 bytes
    return odd


def test_frames_that_are_not_plain_ipv4_tcp(tmp_path, monkeypatch):
    path = write_pcap(tmp_path / "odd.pcap", _odd_frames())
    fast, _slow = both_ways(path, 3, monkeypatch)
    assert fast["summary"].frames == 61 and fast["columns"]
    assert_same_index(path, monkeypatch)
    assert_same_index(write_pcap(tmp_path / "odd-be-ns.pcap", _odd_frames(), nano=True, big_endian=True),
                      monkeypatch)


def test_a_damaged_record_chain_goes_to_the_per_frame_loop(tmp_path, monkeypatch):
    path = write_pcap(tmp_path / "cut.pcap", read_frames(FIXTURES / "qr_pynetdicom.pcap"))
    path.write_bytes(path.read_bytes()[:-25])
    fast, _slow = both_ways(path, 3, monkeypatch)
    assert any("truncated" in note for note in fast["summary"].notes) and not fast["columns"]
    assert_same_index(path, monkeypatch)
    tiny = tmp_path / "tiny.pcap"
    tiny.write_bytes(path.read_bytes()[:24 + 16 + 20])  # one record cut inside its body
    assert_same_index(tiny, monkeypatch)
    header_only = tmp_path / "header.pcap"
    header_only.write_bytes(path.read_bytes()[:24])
    assert_same_index(header_only, monkeypatch)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_ip_fragments_are_kept_apart_alike(tmp_path, monkeypatch, family):
    """Both paths keep every TCP fragment apart (batch/fragments.py), with its datagram and, for a
    first fragment, its flow group; none reaches a group's part before the plan."""
    from test_fragments import _fragmented, _ipv4_fragments, _ipv6_fragments

    path = _fragmented(tmp_path, family, _ipv4_fragments if family == "ipv4" else _ipv6_fragments,
                       lambda parts: parts[::-1])
    fast, _slow = both_ways(path, 3, monkeypatch)
    fragments = fast["fragments"]
    assert fast["columns"] and len(fragments) == fast["summary"].fragments > 40
    assert sum(len(part) for part in fast["parts"]) + len(fragments) == sum(1 for _ in read_frames(path))
    firsts = [group for group in fragments.first_groups if group >= 0]
    assert firsts and len(set(fragments.datagrams)) == len(firsts)  # one first fragment a datagram
    assert_same_index(path, monkeypatch)
