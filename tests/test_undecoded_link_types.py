"""Frames of a link type or encapsulation dicomtui does not take off, mixed with frames it does (issue 25).

A pcapng with two interfaces, the recorded DICOM on Ethernet and other traffic on an interface of a link
type the walk does not read (LINKTYPE_USER0, as a vendor's export writes, and a number nobody named),
some of the Ethernet frames in PPPoE besides: every skipped frame is counted, by kind, in one warning
(code ``capture.unknown_encapsulation``) that names the link types by number and LINKTYPE_ name, and
the DICOM of the Ethernet interface is all there (the clean capture's associations, messages, PDUs and
data sets).  Batch mode (the same frames as two files whose times interleave, and as the one pcapng)
gives the single pass's warning, count and first frame included.  The skipped frames are copies of
the fixture's own frames, relabelled.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess

import pytest
from capture_tools import FIXTURES, RawFrame, read_frames, write_pcap, write_pcapng
from conftest import analyze_path

FIXTURE = "store_dcmtk.pcapng"
USER0 = 147
UNNAMED = 4000  # no LINKTYPE_ value


def _facts(analysis) -> dict:
    return {
        "associations": [(a.calling_ae, a.called_ae, str(a.state), a.message_count) for a in analysis.associations],
        "messages": [(m.command_field, m.status, m.message_id, m.dataset_length, m.complete)
                     for m in analysis.messages],
        "pdus": [(p.pdu_type, p.length) for p in analysis.pdus],
        "datasets": [hashlib.sha256(analysis.dataset_bytes(m)).hexdigest() for m in analysis.messages
                     if m.has_dataset],
    }


def _pppoe(frame: RawFrame) -> RawFrame:
    ip = frame.data[14:]
    header = struct.pack("!BBHHH", 0x11, 0, 0x1234, len(ip) + 2, 0x0021)  # a PPPoE session carrying IPv4
    return RawFrame(frame.ts, frame.data[:12] + b"\x88\x64" + header + ip, frame.link_type)


def _mixed(tmp_path):
    """(clean Ethernet pcapng, mixed pcapng, the other interface's frames, the PPPoE frames)."""
    frames = read_frames(FIXTURES / FIXTURE)
    other = [RawFrame(frame.ts + 0.00001, frame.data, USER0 if number % 3 else UNNAMED)
             for number, frame in enumerate(frames[::2])]
    pppoe = [_pppoe(RawFrame(frame.ts + 0.00002, frame.data, frame.link_type)) for frame in frames[1:40:4]]
    mixed = sorted(frames + other + pppoe, key=lambda frame: frame.ts)
    return (write_pcapng(tmp_path / "clean.pcapng", frames), write_pcapng(tmp_path / "mixed.pcapng", mixed),
            other, pppoe, mixed)


def test_skipped_frames_of_every_kind_are_counted_in_one_warning_and_the_dicom_is_all_there(tmp_path):
    clean_path, path, other, pppoe, mixed = _mixed(tmp_path)
    clean, analysis = analyze_path(clean_path), analyze_path(path)
    assert _facts(clean)["datasets"] and _facts(analysis) == _facts(clean)
    (warning,) = [item for item in analysis.expert if item.code == "capture.unknown_encapsulation"]
    assert not [item for item in analysis.expert if "not supported" in item.message]
    user0 = [number for number, frame in enumerate(mixed, 1) if frame.link_type == USER0]
    unnamed = [number for number, frame in enumerate(mixed, 1) if frame.link_type == UNNAMED]
    wrapped = [number for number, frame in enumerate(mixed, 1) if frame.data[12:14] == b"\x88\x64"]
    assert warning.message.startswith(f"{len(other) + len(pppoe)} frame(s) skipped")
    assert f"link type {USER0} (LINKTYPE_USER0): {len(user0)} (first frame {user0[0]})" in warning.message
    assert f"link type {UNNAMED}: {len(unnamed)} (first frame {unnamed[0]})" in warning.message
    assert f"PPPoE session (ethertype 0x8864): {len(wrapped)} (first frame {wrapped[0]})" in warning.message
    assert warning.frame == min(user0[0], unnamed[0], wrapped[0])
    # Otherwise the clean capture's findings.
    assert [item.message for item in analysis.expert if item is not warning] == [item.message for item in clean.expert]
    if shutil.which("tshark"):
        # tshark shows the USER0 frames undissected ("DLT: 147") and takes PPPoE off: the same DICOM PDUs,
        # plus those in PPPoE; dicomtui names what it skipped instead.
        def pdus(capture):
            out = subprocess.run(["tshark", "-r", str(capture), "-d", "tcp.port==104,dicom", "-Y", "dicom",
                                  "-T", "fields", "-e", "frame.number"], capture_output=True, text=True, timeout=120)
            return len(out.stdout.split())
        assert pdus(path) >= pdus(clean_path) > 0


def test_batch_mode_gives_the_same_warning(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    from batch_tools import assert_same_as_single, batch_order, local_batch, single_json

    _clean, path, other, _pppoe_frames, mixed = _mixed(tmp_path)
    # The same frames as two files whose times interleave: the Ethernet interface, and the other one.
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_pcapng(inputs / "ethernet.pcapng", [frame for frame in mixed if frame.link_type == 1])
    write_pcap(inputs / "user0.pcap", [frame for frame in other if frame.link_type == USER0])
    write_pcap(inputs / "unnamed.pcap", [frame for frame in other if frame.link_type == UNNAMED])
    outcome = local_batch(tmp_path / "out", [inputs], groups=3)
    assert not outcome.problems
    expected = single_json(batch_order(tmp_path / "out"), capsys)
    (warning,) = [item for item in expected["expert"] if item["code"] == "capture.unknown_encapsulation"]
    assert warning["message"].startswith(f"{len(other) + len(_pppoe_frames)} frame(s) skipped")
    assert_same_as_single(tmp_path / "out", expected)
    # And the one pcapng with both interfaces.
    single = single_json([path], capsys)
    local_batch(tmp_path / "out-one", [path], groups=3)
    assert [item for item in single["expert"] if item["code"] == "capture.unknown_encapsulation"] == [warning]
    assert_same_as_single(tmp_path / "out-one", single)
