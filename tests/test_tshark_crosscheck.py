"""Cross-check against Wireshark: TCP payload bytes, PDU boundaries and DIMSE commands."""

import re
import subprocess

import pytest
from capture_tools import FIXTURES
from conftest import requires_tshark, stream_images

pytestmark = requires_tshark

# Fixtures whose TCP segments tshark reassembles in order (it has no trouble with these).
FIXTURE_NAMES = ["echo_dcmtk.pcap", "store_dcmtk.pcapng", "store_ts_pynetdicom.pcap", "qr_pynetdicom.pcap",
                 "reject_abort.pcap", "negotiation_pynetdicom.pcap", "store_large_segments.pcap",
                 "store_oddport.pcap"]
COMMAND = re.compile(r"\b([CN]-[A-Z]+(?:-[A-Z]+)?-(?:RQ|RSP))(?![-\w])(?: ID=(\d+))?")


def tshark(*args: str) -> str:
    return subprocess.run(["tshark", *args], capture_output=True, text=True, check=True, timeout=120).stdout


def decode_as(analysis) -> list[str]:
    ports = sorted({connection.server_port for connection in analysis.connections})
    return [arg for port in ports for arg in ("-d", f"tcp.port=={port},dicom")]


def tshark_streams(path) -> dict:
    """{(client, server): (client bytes, server bytes)} from tshark's follow,tcp,raw."""
    streams_seen = sorted({int(x) for x in tshark("-r", str(path), "-T", "fields", "-e", "tcp.stream").split()})
    result = {}
    for stream in streams_seen:
        text = tshark("-r", str(path), "-qz", f"follow,tcp,raw,{stream}")
        nodes = re.findall(r"Node (\d): (\S+)", text)
        client_bytes, server_bytes = bytearray(), bytearray()
        for line in text.splitlines():
            if not line or line.startswith(("=", "Follow", "Filter", "Node")):
                continue
            if line.startswith("\t"):
                server_bytes += bytes.fromhex(line.strip())
            else:
                client_bytes += bytes.fromhex(line.strip())
        endpoints = dict(nodes)
        result[(endpoints["0"], endpoints["1"])] = (bytes(client_bytes), bytes(server_bytes))
    return result


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_stream_bytes_match_tshark_follow(analyze_fixture, name):
    analysis = analyze_fixture(name)
    ours = stream_images(analysis)
    theirs = tshark_streams(FIXTURES / name)
    assert ours
    for (client, server), ((client_bytes, client_gaps), (server_bytes, server_gaps)) in ours.items():
        # tshark's node 0 is the side that sent the first packet: normally our client.
        if (client, server) in theirs:
            expected_client, expected_server = theirs[(client, server)]
        else:
            expected_server, expected_client = theirs[(server, client)]
        assert client_gaps == [] and server_gaps == []
        assert client_bytes == expected_client
        assert server_bytes == expected_server


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_pdu_boundaries_match_tshark(analyze_fixture, name):
    analysis = analyze_fixture(name)
    output = tshark("-r", str(FIXTURES / name), *decode_as(analysis), "-T", "fields", "-e", "frame.number",
                    "-e", "dicom.pdu.type", "-e", "dicom.pdu.len", "-E", "occurrence=a")
    theirs = []
    for line in output.splitlines():
        frame, types, lengths = (line.split("\t") + ["", ""])[:3]
        if not types:
            continue
        for pdu_type, length in zip(types.split(","), lengths.split(",")):
            theirs.append((int(frame), int(pdu_type, 16), int(length)))
    ours = [(pdu.last_frame, pdu.pdu_type, pdu.length) for pdu in analysis.pdus]
    assert ours == theirs


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_dimse_commands_match_tshark(analyze_fixture, name):
    """Per frame, the commands tshark names are the ones we decoded in that frame.

    tshark's info column is lossy: it merges repeated texts within a frame and omits
    the ID of some failure responses; and tshark 4.0 cannot decode some command sets
    on contexts whose data sets are not implicit VR LE ("P-DATA, Command").  Frames
    where we decoded more than it names must be such frames.
    """
    analysis = analyze_fixture(name)
    output = tshark("-r", str(FIXTURES / name), *decode_as(analysis), "-T", "fields", "-e", "frame.number",
                    "-e", "_ws.col.Info")
    theirs: dict[int, tuple[set, bool]] = {}
    for line in output.splitlines():
        frame, _tab, info = line.partition("\t")
        names = {(command, number) for command, number in COMMAND.findall(info)}
        theirs[int(frame)] = (names, bool(re.search(r"P-DATA, Command\b", info)))
    ours: dict[int, set] = {}
    for message in analysis.messages:
        frame = analysis.pdus[message.first_pdu].last_frame
        number = message.message_id if message.is_request else message.responded_to
        ours.setdefault(frame, set()).add((message.command_name, str(number)))
    assert ours
    for frame, decoded in ours.items():
        named, undecoded = theirs[frame]
        assert {command for command, _n in named} <= {command for command, _n in decoded}
        assert {(c, n) for c, n in named if n} <= decoded
        if {command for command, _n in decoded} - {command for command, _n in named}:
            assert undecoded, f"frame {frame}: tshark names {named}, we decoded {decoded}"
    for frame, (named, _undecoded) in theirs.items():
        if named:
            assert frame in ours
