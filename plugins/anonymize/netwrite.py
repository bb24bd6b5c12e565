"""Regenerate TCP connections as clean packet sequences (dpkt builds the headers and checksums).

Each connection becomes: a three-way handshake, the payload of each direction cut
into MSS-sized segments with consecutive sequence numbers and the peer's current
acknowledgement number, a pure ACK from the receiver after each burst (so the
receive window never fills), and the close the original had (FIN exchange or RST).
Frames are Ethernet II; IPv4 headers carry a fresh identification and their
checksum; dpkt computes the TCP checksums over the pseudo-header (IPv4 and IPv6).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

import dpkt

ETHERNET = 1
SYN, FIN, RST, PSH, ACK = dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST, dpkt.tcp.TH_PUSH, dpkt.tcp.TH_ACK
WINDOW = 65535


def split_endpoint(text: str) -> tuple[str, int]:
    """``1.2.3.4:104`` / ``[::1]:104`` -> (address, port)."""
    address, _, port = text.rpartition(":")
    return address.strip("[]"), int(port)


@dataclass(slots=True)
class TcpFlow:
    """One regenerated connection; ``frames`` collects (timestamp, frame bytes)."""

    client: tuple[str, int]
    server: tuple[str, int]
    client_mac: bytes
    server_mac: bytes
    sink: list = field(default_factory=list)
    seq: list = field(default_factory=lambda: [0, 0])  # next sequence number per direction
    ip_id: int = 0
    version: int = 4
    mss: int = 1460
    templates: list = field(default_factory=list)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(f"{self.client}{self.server}".encode()).digest()
        self.seq = [int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:8], "big")]
        self.ip_id = digest[8] << 8
        self.version = ipaddress.ip_address(self.client[0]).version
        self.mss = 1460 if self.version == 4 else 1440
        # One Ethernet/IP/TCP object per direction, reused for every segment (dpkt recomputes
        # the lengths we set and both checksums each time it serialises).
        self.templates = [self._template(0), self._template(1)]

    def _template(self, direction: int):
        source, target = (self.client, self.server) if direction == 0 else (self.server, self.client)
        tcp = dpkt.tcp.TCP(sport=source[1], dport=target[1], win=WINDOW)
        src = ipaddress.ip_address(source[0]).packed
        dst = ipaddress.ip_address(target[0]).packed
        if self.version == 4:
            ip = dpkt.ip.IP(src=src, dst=dst, p=dpkt.ip.IP_PROTO_TCP, ttl=64, df=1, data=tcp)
            ether_type = dpkt.ethernet.ETH_TYPE_IP
        else:
            ip = dpkt.ip6.IP6(src=src, dst=dst, nxt=dpkt.ip.IP_PROTO_TCP, hlim=64, data=tcp)
            ip.extension_hdrs = {}
            ether_type = dpkt.ethernet.ETH_TYPE_IP6
        macs = (self.client_mac, self.server_mac) if direction == 0 else (self.server_mac, self.client_mac)
        return dpkt.ethernet.Ethernet(src=macs[0], dst=macs[1], type=ether_type, data=ip), ip, tcp

    def _frame(self, direction: int, flags: int, payload: bytes = b"", ack: bool = True) -> bytes:
        frame, ip, tcp = self.templates[direction]
        tcp.seq = self.seq[direction] & 0xFFFFFFFF
        tcp.ack = (self.seq[1 - direction] & 0xFFFFFFFF) if ack else 0
        tcp.flags = flags
        tcp.data = payload
        tcp.sum = 0
        if self.version == 4:
            self.ip_id = (self.ip_id + 1) & 0xFFFF
            ip.id = self.ip_id
            ip.len = 20 + 20 + len(payload)  # IPv4 and TCP headers without options, then the payload
            ip.sum = 0
        else:
            ip.plen = 20 + len(payload)
        ip.data = tcp
        frame.data = ip
        return bytes(frame)

    def _emit(self, timestamp: float, direction: int, flags: int, payload: bytes = b"", ack: bool = True) -> None:
        self.sink.append((timestamp, self._frame(direction, flags, payload, ack)))
        self.seq[direction] += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def open(self, timestamp: float) -> None:
        self._emit(timestamp, 0, SYN, ack=False)
        self._emit(timestamp, 1, SYN | ACK)
        self._emit(timestamp, 0, ACK)

    def send(self, timestamp: float, direction: int, payload: bytes) -> None:
        for start in range(0, len(payload), self.mss):
            chunk = payload[start: start + self.mss]
            last = start + self.mss >= len(payload)
            self._emit(timestamp, direction, ACK | (PSH if last else 0), chunk)
        self._emit(timestamp, 1 - direction, ACK)

    def close(self, timestamp: float, how: str) -> None:
        if how == "RST":
            self._emit(timestamp, 0, RST | ACK)
        elif how == "FIN":
            self._emit(timestamp, 0, FIN | ACK)
            self._emit(timestamp, 1, FIN | ACK)
            self._emit(timestamp, 0, ACK)


def ethernet_macs(frame: bytes, link_type: int) -> tuple[bytes, bytes] | None:
    """(destination, source) MAC of an Ethernet frame; None for other link types."""
    if link_type != ETHERNET or len(frame) < 14:
        return None
    return bytes(frame[0:6]), bytes(frame[6:12])


def synthetic_mac(address: str) -> bytes:
    """A locally administered MAC for an endpoint whose capture had no Ethernet header (e.g. Linux SLL)."""
    return b"\x02" + hashlib.sha256(address.encode()).digest()[:5]


__all__ = ["ETHERNET", "TcpFlow", "ethernet_macs", "split_endpoint", "synthetic_mac"]
