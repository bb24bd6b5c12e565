"""Helpers for tests: read fixture frames and write altered copies with dpkt.

Altered captures are built from real fixture frames only (re-encapsulated,
reordered, duplicated, dropped, cut); nothing is synthesised from scratch.
"""

from __future__ import annotations

import gzip
import importlib.util
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import dpkt

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BENCH = FIXTURES.parent / "bench"


def load_make_capture():
    """bench/make_capture.py as a module (the generator of large realistic transfers, used by the
    benchmarks and by tests that need more than the fixtures hold); it is a script, not a package."""
    spec = importlib.util.spec_from_file_location("make_capture", BENCH / "make_capture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class RawFrame:
    ts: float
    data: bytes
    link_type: int


def read_frames(path: Path) -> list[RawFrame]:
    """All frames of a capture via dpkt's own readers (the independent reference)."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
        handle.seek(0)
        if magic == b"\x0a\x0d\x0d\x0a":
            reader = dpkt.pcapng.Reader(handle)
            link = reader.datalink()
            return [RawFrame(ts, bytes(buf), link) for ts, buf in reader]
        reader = dpkt.pcap.Reader(handle)
        link = reader.datalink()
        return [RawFrame(ts, bytes(buf), link) for ts, buf in reader]


def write_pcap(path: Path, frames: list[RawFrame], nano: bool = False, big_endian: bool = False,
               compress: bool = False) -> Path:
    link = frames[0].link_type if frames else 1
    endian = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    parts = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, link)]
    for frame in frames:
        seconds = int(frame.ts)
        fraction = round((frame.ts - seconds) * (1e9 if nano else 1e6))
        parts.append(struct.pack(endian + "IIII", seconds, fraction, len(frame.data), len(frame.data)))
        parts.append(frame.data)
    data = b"".join(parts)
    if compress:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_pcapng(path: Path, frames: list[RawFrame]) -> Path:
    """pcapng with one interface per link type (dpkt's writer for the blocks)."""
    link_types: list[int] = []
    for frame in frames:
        if frame.link_type not in link_types:
            link_types.append(frame.link_type)
    with open(path, "wb") as handle:
        shb = dpkt.pcapng.SectionHeaderBlockLE()
        handle.write(bytes(shb))
        for link in link_types:
            handle.write(bytes(dpkt.pcapng.InterfaceDescriptionBlockLE(linktype=link, snaplen=262144)))
        for frame in frames:
            ts_us = round(frame.ts * 1e6)
            epb = dpkt.pcapng.EnhancedPacketBlockLE(
                iface_id=link_types.index(frame.link_type), ts_high=ts_us >> 32, ts_low=ts_us & 0xFFFFFFFF,
                caplen=len(frame.data), pkt_len=len(frame.data), pkt_data=frame.data)
            handle.write(bytes(epb))
    return path


# -- re-encapsulation of Ethernet frames ----------------------------------------------------


def ethernet_payload(frame: RawFrame) -> tuple[int, bytes]:
    eth = dpkt.ethernet.Ethernet(frame.data)
    return eth.type, bytes(eth.data)


def to_sll(frame: RawFrame) -> RawFrame:
    ethertype, payload = ethernet_payload(frame)
    header = struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, ethertype)
    return RawFrame(frame.ts, header + payload, 113)


def to_sll2(frame: RawFrame) -> RawFrame:
    ethertype, payload = ethernet_payload(frame)
    header = struct.pack("!HHIHBB8s", ethertype, 0, 1, 772, 0, 6, b"\0" * 8)
    return RawFrame(frame.ts, header + payload, 276)


def to_raw(frame: RawFrame) -> RawFrame:
    return RawFrame(frame.ts, ethernet_payload(frame)[1], 101)


def to_null(frame: RawFrame) -> RawFrame:
    ethertype, payload = ethernet_payload(frame)
    family = 2 if ethertype == 0x0800 else 30
    return RawFrame(frame.ts, struct.pack("<I", family) + payload, 0)


def to_vlan(frame: RawFrame, tags: int = 1) -> RawFrame:
    data = frame.data
    header, rest = data[:12], data[12:]
    for number in range(tags):
        tpid = 0x88A8 if (tags == 2 and number == 0) else 0x8100
        header += struct.pack("!HH", tpid, 100 + number)
    return RawFrame(frame.ts, header + rest, 1)


def to_ipv6(frame: RawFrame) -> RawFrame:
    """The same TCP segment carried over IPv6 (addresses mapped from the IPv4 ones)."""
    eth = dpkt.ethernet.Ethernet(frame.data)
    if not isinstance(eth.data, dpkt.ip.IP):
        return frame
    ip = eth.data
    tcp = ip.data
    segment = bytes(tcp)
    src = b"\xfd\x00" + b"\0" * 10 + ip.src
    dst = b"\xfd\x00" + b"\0" * 10 + ip.dst
    header = struct.pack("!IHBB16s16s", 0x60000000, len(segment), 6, 64, src, dst)
    new_eth = bytes(eth)[:12] + struct.pack("!H", 0x86DD) + header + segment
    return RawFrame(frame.ts, new_eth, 1)


# -- TCP-level edits -------------------------------------------------------------------------


def tcp_of(frame: RawFrame):
    eth = dpkt.ethernet.Ethernet(frame.data)
    ip = eth.data
    if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.tcp.TCP):
        return None
    return eth, ip, ip.data


def data_frame_indices(frames: list[RawFrame]) -> list[int]:
    indices = []
    for index, frame in enumerate(frames):
        parts = tcp_of(frame)
        if parts and len(parts[2].data):
            indices.append(index)
    return indices


def rebuild(frame: RawFrame, seq: int | None = None, payload: bytes | None = None, sport: int | None = None,
            dport: int | None = None, seq_shift: int = 0, ack_shift: int = 0, ts: float | None = None) -> RawFrame:
    eth, ip, tcp = tcp_of(frame)
    if payload is not None:
        tcp.data = payload
    if seq is not None:
        tcp.seq = seq
    tcp.seq = (tcp.seq + seq_shift) % (1 << 32)
    if tcp.flags & dpkt.tcp.TH_ACK:
        tcp.ack = (tcp.ack + ack_shift) % (1 << 32)
    if sport is not None:
        tcp.sport = sport
    if dport is not None:
        tcp.dport = dport
    tcp.sum = 0
    ip.data = tcp
    ip.len = ip.__hdr_len__ + len(ip.opts) + len(bytes(tcp))
    ip.sum = 0
    eth.data = ip
    return RawFrame(frame.ts if ts is None else ts, bytes(eth), frame.link_type)


def with_ts(frame: RawFrame, ts: float) -> RawFrame:
    return replace(frame, ts=ts)
