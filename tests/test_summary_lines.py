"""``summary_lines`` (read from the PDU table's columns) makes the same lines as ``summary_line``
of each ``Pdu``, in every time format and for a filtered subset."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.cli import make_host
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.views import summary_line, summary_lines

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HOST = make_host()


@pytest.mark.parametrize("name", ["qr_pynetdicom.pcap", "store_dcmtk.pcapng", "reject_abort.pcap"])
@pytest.mark.parametrize("time_format", ["r", "a", "ad", "d", "dd", "e", "u", "ud"])
def test_column_lines_equal_per_pdu_lines(name, time_format):
    analysis = analyze([str(FIXTURES / name)], AnalysisConfig(), HOST)
    pdus = list(analysis.pdus)
    assert pdus
    expected = [summary_line(analysis, pdu, time_format, pdus[number - 1].timestamp if number else None)
                for number, pdu in enumerate(pdus)]
    assert list(summary_lines(analysis, time_format)) == expected
    shown = list(range(0, len(pdus), 3))
    previous, expected_shown = None, []
    for number in shown:
        reference = previous if time_format == "dd" else (pdus[number - 1].timestamp if number else None)
        expected_shown.append(summary_line(analysis, pdus[number], time_format, reference))
        previous = pdus[number].timestamp
    assert list(summary_lines(analysis, time_format, shown)) == expected_shown


@pytest.mark.parametrize("name", ["qr_pynetdicom.pcap", "store_dcmtk.pcapng", "reject_abort.pcap",
                                  "store_large_segments.pcap"])
def test_column_pdu_json_equals_per_pdu_json(name):
    from dicomtui.core.views import pdu_json, pdu_json_rows

    analysis = analyze([str(FIXTURES / name)], AnalysisConfig(), HOST)
    expected = [pdu_json(pdu) for pdu in analysis.pdus]
    rows = list(pdu_json_rows(analysis))
    assert rows == expected
    # the same types too (the encoder writes True as true, 1 as 1)
    assert [[type(value) for value in row.values()] for row in rows] == \
        [[type(value) for value in row.values()] for row in expected]
