"""Item 1 of issue 24: reordering, needless resends and loss told apart as tshark does.

Captures built from a fixture's frames (tests/tcp_disorder.py) whose data segments were only
reordered (each byte once), only duplicated (resent after the receiver's ACK), or dropped after
the capture point and resent; per kind, the frames we flag must be the ones tshark flags
(tcp.analysis.out_of_order, .retransmission, .fast_retransmission, .spurious_retransmission,
.lost_segment), and the findings must name the right diagnosis.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import tcp_disorder
from capture_tools import FIXTURES, load_make_capture

from dicomtui.cli import main, make_host
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.wire.tcp_analysis import analyse_connection

KINDS = ("out_of_order", "retransmission", "fast_retransmission", "spurious_retransmission", "lost_segment")
LOOPBACK = FIXTURES / "store_large_segments.pcap"  # 29 µs handshake RTT: most late fills are "retransmissions"

BUILDS = {
    "reordered-50ms-rtt": lambda out: tcp_disorder.reordered(out, every=5, distance=3),
    "reordered-loopback": lambda out: tcp_disorder.reordered(out, every=3, distance=3, source=LOOPBACK),
    "reordered-adjacent": lambda out: tcp_disorder.reordered(out, every=4, distance=1),
    "duplicated": tcp_disorder.duplicated,
    "dropped-and-resent": tcp_disorder.dropped_and_resent,
}


def _ours(path) -> dict[str, list[int]]:
    analysis = analyze([str(path)], AnalysisConfig(), make_host())
    found = {kind: [] for kind in KINDS}
    for connection in analysis.connections:
        for figures in analyse_connection(connection).directions:
            for frame, kind in figures.flagged:
                found[kind].append(frame)
    return {kind: sorted(frames) for kind, frames in found.items()}


def _tshark(path) -> dict[str, list[int]]:
    fields = ["frame.number", "tcp.len", *(f"tcp.analysis.{kind}" for kind in KINDS)]
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp.analysis.flags && tcp.len > 0", "-T", "fields",
                          *(arg for field in fields for arg in ("-e", field))],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    found = {kind: [] for kind in KINDS}
    for line in out.splitlines():
        frame, _length, *flags = line.split("\t")
        kinds = {kind for kind, flag in zip(KINDS, flags) if flag}
        if kinds & {"fast_retransmission", "spurious_retransmission"}:
            kinds.discard("retransmission")  # tshark sets its general flag on those too
        for kind in kinds:
            found[kind].append(int(frame))
    return {kind: sorted(frames) for kind, frames in found.items()}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("name", sorted(BUILDS))
def test_each_kind_is_the_frames_tshark_flags(name, tmp_path):
    path = BUILDS[name](tmp_path / f"{name}.pcap")
    assert _ours(path) == _tshark(path)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("messy", [0.01, 0.1])
def test_each_kind_matches_tshark_on_the_generator_s_messy_transfers(messy, tmp_path):
    path = tmp_path / "messy.pcap"
    with open(path, "wb") as out:
        load_make_capture().generate(out, 1.5, 48, 4, 1, 16384, 536, messy=messy)
    ours = _ours(path)
    assert ours == _tshark(path)
    assert all(ours[kind] for kind in ("out_of_order", "fast_retransmission", "spurious_retransmission"))


def _findings(path, capsys) -> tuple[str, str]:
    assert main(["--expert", str(path)]) == 0
    expert = capsys.readouterr().out
    assert main(["--stats", str(path)]) == 0
    return expert, capsys.readouterr().out


@pytest.mark.parametrize("name", ["reordered-50ms-rtt", "reordered-loopback"])
def test_reordering_alone_is_not_called_packet_loss(name, tmp_path, capsys):
    expert, stats = _findings(BUILDS[name](tmp_path / "r.pcap"), capsys)
    assert "reordering on" in expert and "arrived out of order" in expert
    assert "packet loss" not in expert and "lost on the path" not in expert
    assert "packet loss" not in stats


def test_a_late_fill_is_not_called_loss_but_said_to_be_ambiguous(tmp_path, capsys):
    expert, stats = _findings(BUILDS["reordered-loopback"](tmp_path / "r.pcap"), capsys)
    # On loopback tshark's one-RTT threshold is 29 µs: a segment reordered by three is a
    # "retransmission" to it, although no byte was sent twice.
    assert "filled a hole later than a round trip" in expert and "cannot tell" in expert
    assert "late segments (reordering or upstream loss)" in stats


def test_duplicates_are_needless_resends_not_loss(tmp_path, capsys):
    expert, stats = _findings(BUILDS["duplicated"](tmp_path / "u.pcap"), capsys)
    assert "needless resends on" in expert and "spurious retransmissions" in expert
    assert "packet loss" not in expert and "packet loss" not in stats


def test_a_real_drop_is_packet_loss(tmp_path, capsys):
    expert, stats = _findings(BUILDS["dropped-and-resent"](tmp_path / "x.pcap"), capsys)
    assert "packet loss on" in expert and "1 fast retransmission(s)" in expert
    assert "retransmissions (packet loss)" in stats
