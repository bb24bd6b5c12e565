"""A stream is DICOM only where the PDU grammar holds (issue 25): PDU type, a length sane for the type,
the item structure (``detect.judge_pdu_header``).  fixtures/http_dicom_file.pcap is a recorded HTTP
server on port 11112 sending a DICOM file (fixtures/record_fixtures.sh, ``http_dicom``): it must not
become DICOM, neither from its start nor picked up mid-stream, where it used to become a
1.6-million-byte A-ASSOCIATE-AC.  Every PDU of every recorded fixture passes the grammar; no offset
of the DICOM files the fixtures carry reads as a PDU header.
"""

from __future__ import annotations

import shutil
import subprocess

import pydicom.data
import pytest
from capture_tools import FIXTURES, read_frames, write_pcap
from conftest import analyze_path

from dicomtui.core.protocol.detect import judge_pdu_header

HTTP = FIXTURES / "http_dicom_file.pcap"


def test_an_http_server_on_a_dicom_port_is_not_dicom():
    analysis = analyze_path(HTTP)
    assert not analysis.connections and not analysis.pdus and not analysis.associations
    (note,) = [item for item in analysis.expert if item.code == "capture.not_dicom_on_dicom_port"]
    assert "11112" in note.message and "GET /" in note.message


def test_picked_up_mid_stream_nothing_is_invented(tmp_path):
    """Without the handshake and the request the port still says DICOM: what follows is searched for
    PDU headers, and the file's bytes hold none that the grammar lets through."""
    frames = read_frames(HTTP)
    start = next(index for index, frame in enumerate(frames) if len(frame.data) > 200)  # the first data
    path = write_pcap(tmp_path / "http_mid.pcap", frames[start + 1:])
    analysis = analyze_path(path)
    assert not analysis.pdus and not analysis.associations
    assert any("not a DICOM PDU" in item.message for item in analysis.expert)


PCAP_FIXTURES = sorted(path.name for path in FIXTURES.glob("*.pcap*") if path.name != HTTP.name)


@pytest.mark.parametrize("name", PCAP_FIXTURES)
def test_every_recorded_pdu_passes_the_grammar(name):
    analysis = analyze_path(FIXTURES / name)
    for pdu in analysis.pdus:
        if not pdu.complete:
            continue
        connection = analysis.connections[pdu.connection]
        chunks = connection.streams[pdu.direction]
        data = connection.read(pdu.direction, pdu.stream_offset, min(chunks.end, pdu.stream_offset + 4096),
                               analysis.buffers)
        if data is None:
            continue
        # None only where the bytes run out before the grammar can tell (the stream's end).
        assert judge_pdu_header(data, 0, 1 << 20) is not False, (name, pdu.index, pdu.pdu_type)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm"])
def test_no_offset_of_a_dicom_file_reads_as_a_pdu(name):
    data = open(pydicom.data.get_testdata_file(name), "rb").read()
    assert not [offset for offset in range(len(data) - 6) if judge_pdu_header(data, offset, 1 << 20) is True]


def test_tshark_does_not_see_dicom_in_the_http_capture_either():
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    out = subprocess.run(["tshark", "-r", str(HTTP), "-d", "tcp.port==11112,dicom", "-Y", "dicom"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and not out.stdout.strip()
