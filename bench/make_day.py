"""Stamp a day of PACS-port traffic from the recorded fixtures: many short associations.

    python bench/make_day.py OUT.pcap --associations 10000 [--seed N] [--rate 2.0] [--devices 200]

What a capture from a hospital PACS port looks like is not one big transfer but thousands of short
associations: C-ECHO heartbeats, queries, C-MOVEs with their store sub-associations, C-GETs,
single-object stores, a few rejects and aborts.  This script builds such a capture only from real
recorded traffic: each *unit* below is one or more TCP connections of a fixture recorded between
dcmtk and pynetdicom peers (fixtures/record_fixtures.sh), and every copy of a unit gets

* its own device address (10.1.x.y, one of ``--devices``) and its own client ports, the PACS at
  10.0.0.2 port 104; a C-MOVE's store sub-association goes from the PACS to the device's own SCP
  (port 104 on the device), as a real Q/R SCP opens it;
* its own initial sequence numbers (random) in both directions of each connection;
* the device's AE title as calling AE (echo and store units, where no other message names it);
* a start time: copies arrive at ``--rate`` associations a second on average (exponential gaps),
  so copies overlap in time as devices do; frames keep their recorded spacing within a copy.

IPv4 header and TCP checksums are updated for the rewritten fields (RFC 1624), so they are as
right or wrong as in the recording (loopback captures carry unfilled offloaded checksums).
``UNITS`` gives the mix (by associations: ~45 % C-ECHO, ~20 % queries with C-MOVE and
sub-association or C-GET, ~20 % single-object stores, ~2 % rejected or aborted).  The output
depends only on the arguments.  ``--json-plan FILE`` writes how many copies of each unit went in,
which the tests use to check that the analysis of the day equals the sum of the units analysed
alone.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import dpkt

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

PACS_IP = bytes([10, 0, 0, 2])
PACS_PORT = 104
DEVICE_PORT = 104  # the device's own store SCP, where a C-MOVE's sub-association goes
START_TIME = 1_704_067_200.0  # 2024-01-01 00:00:00 UTC


@dataclass(frozen=True)
class UnitSpec:
    """A recorded piece of traffic to copy: which fixture, which of its connections (by the
    server port and the order of their SYNs), and how often it comes in the mix."""

    name: str
    fixture: str
    connections: tuple[int, ...] | None  # indexes of the fixture's connections in SYN order; None: all
    weight: float
    rewrite_calling_ae: bool  # the device's AE title as calling AE (no other message names it)


UNITS = (
    UnitSpec("echo", "echo_dcmtk.pcap", None, 45, True),
    UnitSpec("store", "store_oddport.pcap", None, 20, True),
    UnitSpec("find_move", "qr_pynetdicom.pcap", (0, 1), 5, False),  # C-FIND x2, C-MOVE + sub-association
    UnitSpec("get", "qr_pynetdicom.pcap", (2,), 10, False),
    UnitSpec("echo_store3", "store_dcmtk.pcapng", None, 4, True),  # C-ECHO, then 3 objects
    UnitSpec("reject_abort", "reject_abort.pcap", None, 1, False),  # 5 associations, rejects and aborts
)
# Off unless asked (--workflow-weight): worklist C-FIND, MPPS N-CREATE / N-SET, 2 stores, a storage
# commitment and its report on the association the archive opens back to the device (port 104 there).
# Every copy carries the recorded UIDs, so copies share Transaction and SOP Instance UIDs.
WORKFLOW_UNIT = UnitSpec("workflow", "wf_all_good.pcap", None, 0, False)
REVERSE_PORTS = (11113, 26011)  # recorded server ports of connections the PACS opens to the device


@dataclass
class TemplateFrame:
    offset: float  # seconds after the unit's first frame
    data: bytes  # the Ethernet frame as recorded
    ip: int  # offset of the IPv4 header
    tcp: int  # offset of the TCP header
    connection: int  # index into Template.servers
    from_client: bool
    ae_patch: int  # offset of a 16-byte calling AE field in this frame, or -1


@dataclass
class Template:
    spec: UnitSpec
    frames: list[TemplateFrame]
    servers: list[int]  # recorded server port of each connection
    associations: int  # A-ASSOCIATE-RQs in the unit


def _read(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(4)
        handle.seek(0)
        reader = dpkt.pcapng.Reader(handle) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(handle)
        if reader.datalink() != dpkt.pcap.DLT_EN10MB:
            raise SystemExit(f"{path}: only Ethernet fixtures can be stamped")
        return [(ts, bytes(buf)) for ts, buf in reader]


def load_template(spec: UnitSpec) -> Template:
    records = _read(FIXTURES / spec.fixture)
    order: dict[tuple[int, int], int] = {}  # (client port, server port) -> connection in SYN order
    servers: list[int] = []
    parsed = []
    for ts, data in records:
        eth = dpkt.ethernet.Ethernet(data)
        if not isinstance(eth.data, dpkt.ip.IP) or not isinstance(eth.data.data, dpkt.tcp.TCP):
            continue
        tcp = eth.data.data
        if tcp.flags & dpkt.tcp.TH_SYN and not tcp.flags & dpkt.tcp.TH_ACK:
            order.setdefault((tcp.sport, tcp.dport), len(servers))
            if len(servers) < len(order):
                servers.append(tcp.dport)
        parsed.append((ts, data, eth, tcp))
    wanted = range(len(servers)) if spec.connections is None else spec.connections
    renumber = {old: new for new, old in enumerate(wanted)}
    frames: list[TemplateFrame] = []
    first = None
    seen_payload: set[tuple[int, bool]] = set()
    associations = 0
    for ts, data, eth, tcp in parsed:
        if (tcp.sport, tcp.dport) in order:
            connection, from_client = order[(tcp.sport, tcp.dport)], True
        elif (tcp.dport, tcp.sport) in order:
            connection, from_client = order[(tcp.dport, tcp.sport)], False
        else:
            continue  # a connection whose SYN was not recorded: not stamped
        if connection not in renumber:
            continue
        first = ts if first is None else first
        ip_offset = 14
        tcp_offset = ip_offset + (data[ip_offset] & 0x0F) * 4
        payload = tcp_offset + (data[tcp_offset + 12] >> 4) * 4
        ae_patch = -1
        key = (connection, from_client)
        if len(data) > payload and key not in seen_payload:
            seen_payload.add(key)
            # The first bytes of a direction: an A-ASSOCIATE-RQ (client) or -AC (server) carries
            # the calling AE title at bytes 26..42 of the PDU (PS3.8 9.3.2, 9.3.3).
            if from_client and data[payload] == 1:
                associations += 1
            if spec.rewrite_calling_ae and data[payload] in (1, 2) and len(data) >= payload + 42:
                ae_patch = payload + 26
        frames.append(TemplateFrame(ts - first, data, ip_offset, tcp_offset, renumber[connection],
                                    from_client, ae_patch))
    return Template(spec, frames, [servers[i] for i in wanted], associations)


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _adjust(checksum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') over the 16-bit words that changed."""
    total = (~checksum) & 0xFFFF
    for index in range(0, len(old), 2):
        total += (~((old[index] << 8) | old[index + 1])) & 0xFFFF
        total += (new[index] << 8) | new[index + 1]
    return (~_fold(total)) & 0xFFFF


class DayWriter:
    def __init__(self, stream) -> None:
        self.stream = stream
        self.frames = 0
        self.bytes = 24
        stream.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))

    def write(self, ts: float, data: bytes) -> None:
        seconds = int(ts)
        micros = int(round((ts - seconds) * 1e6))
        if micros == 1_000_000:
            seconds, micros = seconds + 1, 0
        self.stream.write(struct.pack("<IIII", seconds, micros, len(data), len(data)))
        self.stream.write(data)
        self.frames += 1
        self.bytes += 16 + len(data)


def _stamp(frame: TemplateFrame, client_ip: bytes, client_port: int, server_ip: bytes,
           server_port: int, isn: tuple[int, int], calling_ae: bytes | None) -> bytes:
    """The recorded frame with this copy's addresses, ports, sequence numbers and AE title."""
    data = bytearray(frame.data)
    ip, tcp = frame.ip, frame.tcp
    old_ips = bytes(data[ip + 12:ip + 20])
    new_ips = client_ip + server_ip if frame.from_client else server_ip + client_ip
    data[ip + 12:ip + 20] = new_ips
    ip_checksum = struct.unpack_from(">H", data, ip + 10)[0]
    struct.pack_into(">H", data, ip + 10, _adjust(ip_checksum, old_ips, new_ips))
    old_tcp = bytes(data[tcp:tcp + 12])
    sport, dport, seq, ack = struct.unpack_from(">HHII", data, tcp)
    if frame.from_client:
        sport, dport = client_port, server_port
        seq, ack = (seq + isn[0]) & 0xFFFFFFFF, (ack + isn[1]) & 0xFFFFFFFF
    else:
        sport, dport = server_port, client_port
        seq, ack = (seq + isn[1]) & 0xFFFFFFFF, (ack + isn[0]) & 0xFFFFFFFF
    if not data[tcp + 13] & 0x10:  # no ACK flag: the acknowledgment field is not in use
        ack = struct.unpack_from(">I", old_tcp, 8)[0]
    struct.pack_into(">HHII", data, tcp, sport, dport, seq, ack)
    new_tcp = bytes(data[tcp:tcp + 12])
    old_ae = new_ae = b""
    if calling_ae is not None and frame.ae_patch >= 0:
        start = frame.ae_patch
        old_ae = bytes(data[start:start + 16])
        data[start:start + 16] = calling_ae
        new_ae = calling_ae
        if (start - tcp) % 2:  # checksum words are aligned to the TCP header
            old_ae, new_ae = bytes(data[start - 1:start]) + old_ae, bytes(data[start - 1:start]) + new_ae
            old_ae, new_ae = old_ae + bytes(data[start + 16:start + 17]), new_ae + bytes(data[start + 16:start + 17])
    tcp_checksum = struct.unpack_from(">H", data, tcp + 16)[0]
    tcp_checksum = _adjust(tcp_checksum, old_ips + old_tcp + old_ae, new_ips + new_tcp + new_ae)
    struct.pack_into(">H", data, tcp + 16, tcp_checksum)
    return bytes(data)


def generate(out, associations: int, seed: int = 1, rate: float = 2.0, devices: int = 200,
             only: str | None = None, workflow_weight: float = 0.0) -> dict:
    """Write the day to the binary stream ``out``; return the plan (copies per unit, totals).

    ``only`` names one unit: the day is then copies of that unit alone (the tests analyse
    one copy of each unit to know what the day must add up to).
    """
    rng = random.Random(seed)
    units = UNITS + ((UnitSpec(WORKFLOW_UNIT.name, WORKFLOW_UNIT.fixture, None, workflow_weight, False),)
                     if workflow_weight > 0 or only == WORKFLOW_UNIT.name else ())
    templates = [load_template(spec) for spec in units if only is None or spec.name == only]
    if not templates:
        raise ValueError(f"no unit named {only!r}")
    weights = [t.spec.weight / max(1, t.associations) for t in templates]
    copies = {t.spec.name: 0 for t in templates}
    made = 0
    time = START_TIME
    next_port = [32768 + rng.randrange(4096) for _ in range(devices)]
    plan_copies = []
    while made < associations:
        template = rng.choices(templates, weights)[0]
        copies[template.spec.name] += 1
        made += template.associations
        time += rng.expovariate(rate / max(1, template.associations))
        device = rng.randrange(devices)
        device_ip = bytes([10, 1, device >> 8, device & 0xFF])
        calling_ae = f"MOD{device:04d}".encode().ljust(16) if template.spec.rewrite_calling_ae else None
        endpoints = []
        for recorded_server_port in template.servers:
            port = next_port[device]
            next_port[device] = 32768 + (port - 32768 + 1) % 28000
            isn = (rng.getrandbits(32), rng.getrandbits(32))
            if recorded_server_port in REVERSE_PORTS:  # the move destination or commitment SCP: the device's
                endpoints.append((PACS_IP, port, device_ip, DEVICE_PORT, isn))
            else:
                endpoints.append((device_ip, port, PACS_IP, PACS_PORT, isn))
        plan_copies.append((time, template, endpoints, calling_ae))
    # Frames of all copies in time order; a copy's frames keep their order on equal times.
    order = []
    for copy_index, (start, template, _endpoints, _ae) in enumerate(plan_copies):
        for frame_index, frame in enumerate(template.frames):
            order.append((start + frame.offset, copy_index, frame_index))
    order.sort()
    writer = DayWriter(out)
    for ts, copy_index, frame_index in order:
        _start, template, endpoints, calling_ae = plan_copies[copy_index]
        frame = template.frames[frame_index]
        client_ip, client_port, server_ip, server_port, isn = endpoints[frame.connection]
        writer.write(ts, _stamp(frame, client_ip, client_port, server_ip, server_port, isn, calling_ae))
    return {"associations": made, "copies": copies, "frames": writer.frames, "bytes": writer.bytes,
            "first_time": order[0][0] if order else None, "last_time": order[-1][0] if order else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--associations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=2.0, help="associations a second on average")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--json-plan", help="write the plan (copies of each unit) to this file")
    parser.add_argument("--workflow-weight", type=float, default=0.0,
                        help="share of associations (as the weights above, 0: none) in copies of "
                             "fixtures/wf_all_good.pcap: worklist, MPPS, stores, storage commitment")
    args = parser.parse_args(argv)
    with open(args.out, "wb") as out:
        plan = generate(out, args.associations, args.seed, args.rate, args.devices,
                        workflow_weight=args.workflow_weight)
    if args.json_plan:
        Path(args.json_plan).write_text(json.dumps(plan, indent=1))
    print(f"{args.out}: {plan['associations']} associations, {plan['frames']} frames, "
          f"{plan['bytes'] / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
