"""Frames cut by a snapshot length (issue 25): a capture taken with ``-s 96`` or ``-s 200`` holds each
frame's first bytes only.  Built here from recorded fixtures with ``editcap -s``.  What must hold:

- nothing invented: every PDU found is one the clean capture has, at the same stream offset, of
  the same type and length (a header lying in bytes that were not captured is never guessed from
  data bytes that follow; resynchronisation takes only a header whose grammar its captured bytes
  show); no association the clean capture lacks;
- nothing false said: no protocol error (state violations, contexts "never negotiated", malformed
  PDUs or messages), since the peers made none; every message that says it is complete has the
  clean message's data set byte for byte;
- what was captured is kept: with 200 bytes the AE titles, the commands, message IDs and statuses
  of the clean capture (commands are short enough; a cut command set is read up to its last whole
  element).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
from capture_tools import FIXTURES
from conftest import analyze_path

from dicomtui.core.model import Severity

FIXTURE_NAMES = ["store_dcmtk.pcapng", "qr_pynetdicom.pcap", "store_ts_pynetdicom.pcap",
                 "store_testfiles_pynetdicom.pcap", "store_large_segments.pcap"]

pytestmark = pytest.mark.skipif(not shutil.which("editcap"), reason="editcap (Wireshark) not installed")


def _cut(tmp_path, name: str, snaplen: int):
    clean = tmp_path / f"clean-{name}.pcap"
    subprocess.run(["editcap", "-F", "pcap", str(FIXTURES / name), str(clean)], check=True, capture_output=True)
    cut = tmp_path / f"cut-{snaplen}-{name}.pcap"
    subprocess.run(["editcap", "-F", "pcap", "-s", str(snaplen), str(clean), str(cut)], check=True,
                   capture_output=True)
    return clean, cut


def _pdus(analysis) -> set:
    return {(analysis.connections[p.connection].client, p.direction, p.stream_offset, p.pdu_type, p.length)
            for p in analysis.pdus}


def _messages(analysis) -> list:
    return [(m.command_name, m.message_id, m.responded_to, m.status) for m in analysis.messages]


def _datasets(analysis) -> dict:
    return {(analysis.connections[m.connection].client, m.direction, m.dataset_fragments[0].stream_offset):
            hashlib.sha256(analysis.dataset_bytes(m)).hexdigest()
            for m in analysis.messages if m.has_dataset and m.complete and m.dataset_fragments}


FALSE_BLAME = ("protocol", "sequence", "malformed", "negotiation")


@pytest.mark.parametrize("snaplen", [96, 200])
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_cut_capture_invents_nothing_and_blames_no_peer(tmp_path, name, snaplen):
    clean_path, cut_path = _cut(tmp_path, name, snaplen)
    clean, cut = analyze_path(clean_path), analyze_path(cut_path)
    assert _pdus(cut) <= _pdus(clean), "a PDU the peers never sent"
    assert len(cut.associations) <= len(clean.associations)
    errors = [item.message for item in cut.expert if item.severity >= Severity.ERROR
              and item.group.value in FALSE_BLAME and not [c for c in clean.expert if c.message == item.message]]
    assert not errors
    expected = _datasets(clean)
    for key, digest in _datasets(cut).items():
        assert expected[key] == digest
    # Snapshot-length gaps are said to be that, not loss.
    assert any("snapshot length" in item.message for item in cut.expert)


def _is_subsequence(part: list, whole: list) -> bool:
    remaining = iter(whole)
    return all(item in remaining for item in part)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_200_bytes_keep_the_ae_titles_commands_and_statuses(tmp_path, name):
    clean_path, cut_path = _cut(tmp_path, name, 200)
    clean, cut = analyze_path(clean_path), analyze_path(cut_path)
    assert [(a.calling_ae, a.called_ae) for a in cut.associations] == \
        [(a.calling_ae, a.called_ae) for a in clean.associations]
    if name == "qr_pynetdicom.pcap":
        # The Q/R SCP sends several C-FIND responses in one segment: all but the first lie in bytes
        # not captured.  Those are missing (nothing else is), and the rules say a final response may
        # be among the uncaptured bytes instead of blaming the SCP.
        assert _is_subsequence(_messages(cut), _messages(clean)) and len(cut.messages) < len(clean.messages)
        assert [item for item in cut.expert if item.code == "timing.response_not_captured"]
    else:
        assert _messages(cut) == _messages(clean)
    # An object whose bytes were cut is not complete (the complete ones, small C-FIND identifiers,
    # equal the clean capture's: the test above).
    assert all(not m.complete for m in cut.messages if m.command_name == "C-STORE-RQ")


def test_tshark_reads_the_cut_capture(tmp_path):
    """tshark, for comparison: it marks the frames cut and decodes fewer PDUs than the clean capture
    (dicomtui's count is between tshark's and the clean one's, none invented)."""
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    clean_path, cut_path = _cut(tmp_path, "store_dcmtk.pcapng", 200)

    def tshark_pdus(path):
        out = subprocess.run(["tshark", "-r", str(path), "-d", "tcp.port==104,dicom", "-Y", "dicom", "-T", "fields",
                              "-e", "dicom.pdu.type"], capture_output=True, text=True, timeout=120)
        return sum(len(line.split(",")) for line in out.stdout.split())

    ours = len(analyze_path(cut_path).pdus)
    assert tshark_pdus(cut_path) <= ours <= tshark_pdus(clean_path)
