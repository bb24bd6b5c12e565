"""The column-wise TCP analysis (core/wire/tcp_columns.py) gives the loop's figures, to the sample.

Every connection of every capture fixture, the seven recorded slow-network scenarios
(stalls by window, Nagle and congestion, zero windows, window-full, RTT samples, loss)
and generated transfers, in order and messy: ``analyse_connection`` with the columns
allowed (from the first rows on) equals the loop alone.  A messy record goes
row by row where it is not plain and column-wise between; the tests also check the columns did
take runs, or they would prove nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from capture_tools import load_make_capture

from dicomtui.cli import make_host
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.wire import tcp_analysis, tcp_columns

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CAPTURES = sorted(path.name for path in FIXTURES.iterdir() if path.suffix in (".pcap", ".pcapng"))
HOST = make_host()


def _compare(path: Path, monkeypatch) -> int:
    """Compare both ways on every connection; returns how many runs the columns took."""
    monkeypatch.setattr(tcp_analysis, "COLUMNS_MIN_ROWS", 0)
    monkeypatch.setattr(tcp_analysis, "COLUMNS_MIN_RUN", 4)  # every run of plain rows, however short
    taken = {"count": 0}
    original = tcp_columns.continue_walk

    def counting(walk, record, start, stop):
        reached = original(walk, record, start, stop)
        taken["count"] += reached > start
        return reached

    monkeypatch.setattr(tcp_columns, "continue_walk", counting)
    analysis = analyze([str(path)], AnalysisConfig(), HOST)
    taken["count"] = 0  # the rules' own calls (timing) do not count
    for connection in analysis.connections:
        assert tcp_analysis.analyse_connection(connection, vectorized=True) == \
            tcp_analysis.analyse_connection(connection, vectorized=False), connection.index
    return taken["count"]


@pytest.mark.parametrize("name", CAPTURES)
def test_columns_equal_the_loop_on_every_fixture(name, monkeypatch):
    _compare(FIXTURES / name, monkeypatch)


def test_columns_take_the_clean_recorded_scenarios(monkeypatch):
    taken = sum(_compare(FIXTURES / name, monkeypatch) for name in CAPTURES if name.startswith("timing_"))
    assert taken >= 3


@pytest.mark.parametrize("messy", [0.0, 0.01, 0.05])
@pytest.mark.parametrize("mss", [536, 1448])
def test_columns_equal_the_loop_on_generated_transfers(tmp_path, monkeypatch, messy, mss):
    capture = tmp_path / "transfer.pcap"
    with open(capture, "wb") as out:
        load_make_capture().generate(out, 1.5, 48, 4, 3, 16384, mss, messy=messy)
    taken = _compare(capture, monkeypatch)
    assert taken >= 3  # (messy: runs between the retransmissions)
