"""Figures against what was injected, on real peers under real network conditions.

The recorded captures (fixtures/timing_*.pcap, made by fixtures/record_timing.py
in two network namespaces joined by a user-space delay/loss line) are checked
every run: the figures must come out within the stated tolerance of what was
injected (fixtures/timing_fixtures.json) and ``dicomtui --stats`` must name the
injected cause first.  The live tests run each scenario again in fresh
namespaces (root only) and check the same, so a change in the peers' or the
kernel's behaviour shows up too.  Where tshark has the same figure
(tcp.analysis.initial_rtt, ack_rtt, retransmissions, window_full, zero_window)
the figures must agree with it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
from capture_tools import FIXTURES
from conftest import requires_tshark

from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.cli import main
from dicomtui.core.model.timing import timing_report

sys.path.insert(0, str(FIXTURES / "netline"))

import netlab  # noqa: E402
import scenarios  # noqa: E402

MANIFEST = json.loads((FIXTURES / "timing_fixtures.json").read_text())
NAMES = sorted(entry["scenario"] for entry in MANIFEST.values())

# Tolerances (stated in docs/timing.md): the line adds up to ~1 ms of scheduling delay per
# packet, a Python SCP a few ms per request.
RTT_TOLERANCE = (0.10, 0.005)  # relative, absolute seconds (a busy 2-core machine delays the line)
NO_DELAY_RTT = 0.025  # nothing injected: the line's own scheduling on a busy machine, at most
SLEEP_TOLERANCE = (0.0, 0.040)  # the response time is the sleep plus at most 40 ms
DELAYED_ACK_RANGE = (0.035, 0.060)  # Linux delayed ACK: 40 ms minimum, a tick or two more


def within(measured: float, expected: float, tolerance: tuple[float, float]) -> bool:
    relative, absolute = tolerance
    return abs(measured - expected) <= relative * expected + absolute


@pytest.fixture(scope="module")
def recorded(plugin_host):
    cache = {}

    def run(name: str):
        if name not in cache:
            cache[name] = analyze([str(FIXTURES / f"timing_{name}.pcap")], AnalysisConfig(), plugin_host)
        return cache[name]

    return run


def check_figures(name: str, analysis, line: dict, slack: float = 0.0) -> None:
    """The figures of scenario ``name`` against what was injected (shared by recorded and live runs).

    ``slack`` (seconds) widens the time tolerances for live runs: on a loaded machine the
    line and the Python peers get scheduled late (load averages of 8 on 2 cores seen).
    """
    scenario = scenarios.scenarios()[name]
    report = timing_report(analysis)
    if scenario.expected_cause:
        assert report.causes and report.causes[0].name == scenario.expected_cause, \
            [(cause.name, round(cause.seconds, 3)) for cause in report.causes]
    tcp = report.connections[0]
    injected_rtt = 2 * scenario.delay_ms / 1000
    # Captured on the client's side: the whole round trip is between the capture point and the server.
    rtt_tolerance = (RTT_TOLERANCE[0], RTT_TOLERANCE[1] + slack)
    if injected_rtt:
        assert within(tcp.handshake_rtt, injected_rtt, rtt_tolerance), tcp.handshake_rtt
        assert within(tcp.server_side_rtt, injected_rtt, rtt_tolerance)
    else:
        assert tcp.handshake_rtt < NO_DELAY_RTT + slack, tcp.handshake_rtt
    assert tcp.client_side_rtt < 0.005 + slack
    if injected_rtt:
        assert within(tcp.directions[0].rtt_min, injected_rtt, rtt_tolerance)
    stores = [exchange for exchange in report.exchanges if exchange.command == "C-STORE"]
    if name == "scp_sleep":
        sleep = scenario.injected["scp_sleep"]
        assert len(stores) == scenario.injected["objects"]
        for exchange in stores:
            assert sleep <= exchange.response_time <= sleep + SLEEP_TOLERANCE[1] + slack, exchange.response_time
            assert sleep <= exchange.first_byte <= sleep + SLEEP_TOLERANCE[1] + slack
        processing = report.associations[0].budget["scp_processing"]
        assert within(processing, sleep * len(stores), (0.0, 0.1 + len(stores) * slack))
    if name == "delay":
        # Each C-STORE waits one round trip at least, and little more (a pynetdicom SCP is quick).
        for exchange in stores:
            assert injected_rtt <= exchange.response_time <= injected_rtt + 0.030 + slack, exchange.response_time
    if name == "rcvbuf":
        window = tcp.directions[0]
        # SO_RCVBUF 4096: the kernel doubles it and advertises about half; never more than 2 x 4096.
        assert 0 < window.max_window <= 2 * scenario.injected["rcvbuf"]
        assert window.stall_count("window") >= 10
        # The throughput is what the window allows per round trip, not more.
        assert window.throughput <= 1.2 * window.max_window / injected_rtt + 1
    if name == "loss":
        # Resent (any kind) or, resent quickly enough, what tshark calls out of order.
        resent = tcp.directions[0].resent + tcp.directions[0].out_of_order
        dropped = line["a_to_b"]["dropped_data"]
        # Every data segment the line dropped after the capture point is sent again; recovery may
        # resend a few more (a whole window after a timeout).
        assert dropped <= resent <= 2 * dropped + 2, (resent, dropped)
        assert tcp.directions[0].retransmission_seconds > 0
    if name == "scu_think":
        think = scenario.injected["think"]
        gaps = report.associations[0].think_gaps
        waits = [gap for gap in gaps if gap > think / 2]
        assert len(waits) == scenario.injected["objects"] - 1
        assert all(think <= gap <= think + 0.05 + slack for gap in waits), waits
    if name == "per_object":
        stored = [item for item in report.associations if item.objects == 1]
        assert len(stored) == scenario.injected["associations"]
    if name == "nagle":
        stalls = [stall for figures in tcp.directions for stall in figures.stalls if stall.cause == "nagle"]
        # One stall per object when the peers run undisturbed (the recorded fixture); live, on a loaded
        # machine, a peer descheduled past the delayed-ACK timer now and then writes the rest of a PDU
        # after the ACK came, and that object does not stall (13 of 14 seen once in five suite runs).
        misses = 0 if slack == 0 else 2
        assert len(stalls) >= scenario.injected["objects"] - misses, len(stalls)
        assert DELAYED_ACK_RANGE[0] <= statistics.median(stall.seconds for stall in stalls) <= \
            DELAYED_ACK_RANGE[1] + slack
        for exchange in stores:
            assert DELAYED_ACK_RANGE[0] <= exchange.response_time <= DELAYED_ACK_RANGE[1] + 0.030 + slack, \
                exchange.response_time


@pytest.mark.parametrize("name", NAMES)
def test_recorded_figures_match_what_was_injected(recorded, name):
    entry = MANIFEST[f"timing_{name}.pcap"]
    check_figures(name, recorded(name), entry["line"])


@pytest.mark.parametrize("name", NAMES)
def test_stats_names_the_injected_cause_first(name, capsys):
    if not MANIFEST[f"timing_{name}.pcap"]["expected_cause"]:
        pytest.skip("this scenario is about an expert rule, not one dominant cause")
    assert main(["--stats", str(FIXTURES / f"timing_{name}.pcap")]) == 0
    out = capsys.readouterr().out
    dominant = next(line for line in out.splitlines() if "dominant cause:" in line)
    label = {"network_latency": "network round trips", "scp_processing": "SCP processing",
             "window": "receive window", "retransmission": "retransmissions", "nagle": "Nagle",
             "scu_think": "SCU think time"}
    assert label[MANIFEST[f"timing_{name}.pcap"]["expected_cause"]] in dominant


@pytest.mark.parametrize("name", NAMES)
def test_expert_rule_names_the_cause(recorded, name):
    rule = {"delay": "where the time went: network round trips", "scp_sleep": "slow SCP responses",
            "rcvbuf": "limited by the receiver's TCP window", "loss": "packet loss on",
            "nagle": "Nagle/delayed-ACK stalls", "scu_think": "the SCU waits between objects",
            "per_object": "one association per object"}
    expected = rule[name]
    messages = [item.message for item in recorded(name).expert if item.rule == "rules.slowness"]
    assert any(expected in message for message in messages), messages


def test_json_timing_keys(capsys):
    assert main(["--json", str(FIXTURES / "timing_scp_sleep.pcap")]) == 0
    timing = json.loads(capsys.readouterr().out)["timing"]
    assert timing["causes"][0]["name"] == "scp_processing"
    assert {"command", "sop_class", "ae_pair"} <= set(timing["response_times"])
    row = timing["response_times"]["command"][0]
    assert {"count", "min", "mean", "median", "p95", "max", "failures"} <= set(row)
    association = timing["associations"][0]
    assert abs(sum(association["shares"].values()) - 1) < 1e-9
    assert abs(sum(association["budget"].values()) - association["duration"]) < 1e-6
    assert timing["connections"][0]["directions"][0]["ack_rtt_samples"] > 0


def test_flow_prints_a_ladder(capsys):
    assert main(["--flow", "0", "--flow-level", "message", str(FIXTURES / "timing_scp_sleep.pcap")]) == 0
    lines = capsys.readouterr().out.splitlines()
    stores = [line for line in lines if "C-STORE-RQ" in line]
    responses = [line for line in lines if "C-STORE-RSP" in line]
    assert len(stores) == len(responses) == 4
    assert all("-->|" in line for line in stores) and all("|<--" in line for line in responses)


# -- tshark agrees -----------------------------------------------------------------------------


def tshark_fields(name: str, display_filter: str, *fields: str) -> list[list[str]]:
    out = subprocess.run(["tshark", "-r", str(FIXTURES / f"timing_{name}.pcap"), "-Y", display_filter, "-T",
                          "fields", *(arg for field in fields for arg in ("-e", field))],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


@requires_tshark
@pytest.mark.parametrize("name", NAMES)
def test_tcp_figures_agree_with_tshark(recorded, name):
    analysis = recorded(name)
    report = timing_report(analysis)
    # One tshark run for the whole capture (a flag field prints 1 where tshark sets it).
    fields = ("frame.number", "tcp.srcport", "tcp.dstport", "tcp.len", "tcp.analysis.initial_rtt",
              "tcp.analysis.retransmission", "tcp.analysis.fast_retransmission",
              "tcp.analysis.spurious_retransmission", "tcp.analysis.out_of_order", "tcp.analysis.window_full",
              "tcp.analysis.zero_window", "tcp.analysis.ack_rtt")
    rows = [dict(zip(fields, row)) for row in tshark_fields(name, "tcp", *fields)]

    def flagged(*names):
        return [(row["tcp.srcport"], row["tcp.dstport"], row["frame.number"]) for row in rows
                if any(row.get(field) for field in names)]

    initial = [(row["tcp.srcport"], row["tcp.dstport"], row["tcp.analysis.initial_rtt"]) for row in rows
               if row.get("tcp.analysis.initial_rtt")]
    resent = [entry for entry, row in zip(flagged(*fields[5:9]), [r for r in rows if any(
        r.get(field) for field in fields[5:9])]) if int(row["tcp.len"] or 0) > 0]
    window_full = flagged("tcp.analysis.window_full")
    zero = flagged("tcp.analysis.zero_window")
    samples = [(row["tcp.srcport"], row["tcp.dstport"], row["tcp.analysis.ack_rtt"]) for row in rows
               if row.get("tcp.analysis.ack_rtt")]
    for tcp in report.connections:
        connection = analysis.connections[tcp.connection]
        mine = str(connection.client_port)

        def of_connection(rows):
            return [row for row in rows if mine in (row[0], row[1])]

        assert abs(float(of_connection(initial)[0][2]) - tcp.handshake_rtt) < 2e-6
        # Every data segment tshark calls a retransmission (of any kind, including its "out-of-order"
        # label for a quick resend) is one of ours, and no more (tests/test_tcp_disorder.py: per kind).
        ours = sorted(frame for figures in tcp.directions for frame in figures.frames(
            "retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order"))
        assert ours == sorted(int(row[2]) for row in of_connection(resent))
        assert sum(figures.window_full for figures in tcp.directions) == len(of_connection(window_full))
        assert sorted(frame for figures in tcp.directions for frame in figures.zero_window_frames) == \
            sorted(int(row[2]) for row in of_connection(zero))
        # ACK round trips, defined as tshark's ack_rtt (the ACK that ends exactly at a segment's end):
        # each of ours is one of tshark's; tshark also times the ACKs of the SYN/ACK and the FIN.
        resent_total = sum(f.retransmissions for f in tcp.directions)
        for figures in tcp.directions:
            # Data from the client is acknowledged by the server (its source port is the server port).
            acker = str(connection.server_port if figures.direction == 0 else connection.client_port)
            theirs = sorted(float(row[2]) for row in of_connection(samples) if row[0] == acker)
            # (With loss, tshark also times some ACKs its retransmission bookkeeping sees differently.)
            assert len(figures.rtt_samples) <= len(theirs) <= len(figures.rtt_samples) + 2 + resent_total
            unmatched = list(theirs)
            for sample in figures.rtt_samples:
                match = min(unmatched, key=lambda value: abs(value - sample))
                assert abs(match - sample) < 5e-6, (sample, match)
                unmatched.remove(match)


# -- live: the scenarios again, in fresh namespaces ---------------------------------------------

LIVE_REASON = netlab.available()
LIVE_SLACK = 0.1  # s: live runs share the machine with everything else


# The five network conditions of the issue run live; the two rule scenarios (scu_think, per_object)
# only from their recordings (they take longest and test rules, not the network).
LIVE_NAMES = ["delay", "scp_sleep", "rcvbuf", "loss", "nagle"]


@pytest.mark.skipif(bool(LIVE_REASON), reason=LIVE_REASON or "lab available")
@pytest.mark.parametrize("name", LIVE_NAMES)
def test_live_scenario(tmp_path, plugin_host, name):
    scenario = scenarios.scenarios()[name]
    problem = scenarios.missing(scenario)
    if problem:
        pytest.skip(problem)
    capture = tmp_path / f"{name}.pcap"
    line = scenarios.record(scenario, capture, tag=f"t{name[:4]}")
    analysis = analyze([str(capture)], AnalysisConfig(), plugin_host)
    check_figures(name, analysis, line, slack=LIVE_SLACK)
    assert not netlab.subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(
        f"dtlt{name[:4]}")  # the namespaces are gone
