"""The ladder's times say what they are (issue 24, item 3): the last byte as the packet list shows it,
the wait before a row's first byte, and what the row took — so a Nagle stall inside a PDU shows on
that PDU's row, not as "+0.3" on the next.  One precision for PDU and message rows."""

from __future__ import annotations

from capture_tools import FIXTURES
from conftest import analyze_path

from dicomtui.core.model.ladder import LAST_BYTE, TOOK, WAIT, ladder_by_message, ladder_by_pdu, row_times
from dicomtui.core.views.timing import flow_lines


def test_rows_show_the_packet_lists_time_and_the_stall_where_it_is():
    analysis = analyze_path(FIXTURES / "timing_nagle.pcap")
    rows = ladder_by_pdu(analysis, 0, collapse=False)
    for row in rows:
        pdu = analysis.pdus[row.pdu]
        assert row_times(analysis, row)[0] == f"{analysis.frame_time(pdu.timestamp):.6f}"  # the packet list's time
    stalled = [row for row in rows if row.took >= 0.040]
    assert stalled and all(0 <= row.delta < 0.005 for row in stalled)  # the 40 ms is in "took", not in "wait"
    text = flow_lines(analysis, 0)
    assert LAST_BYTE in text[2] and WAIT in text[2] and TOOK in text[2] and "Nagle" in text[1]


def test_pdu_and_message_rows_print_with_one_precision():
    analysis = analyze_path(FIXTURES / "store_dcmtk.pcapng")
    for rows in (ladder_by_pdu(analysis, 1), ladder_by_message(analysis, 1)):
        for last_byte, wait, took in (row_times(analysis, row) for row in rows):
            assert len(last_byte.split(".")[1]) == 6 and len(wait.split(".")[1]) == 1 and len(took.split(".")[1]) == 1
