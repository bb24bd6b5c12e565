"""Frames to TCP segments: link layer, IPv4/IPv6 and TCP headers.

A lean header walk with ``struct``, because it runs once per frame of the
capture; tests compare every segment it finds with dpkt's Ethernet/SLL/SLL2/
Loopback/IP/IP6/TCP classes on the fixtures (tests/test_packet.py).  Only what
reassembly needs is extracted; payload stays in the capture map as an offset.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

# Link types (pcap LINKTYPE_* values).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# Some platforms write DLT_RAW with their own value.
LINKTYPE_RAW_ALIASES = (12, 14)

SUPPORTED_LINK_TYPES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    12: "raw IP",
    14: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
}

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10

IPV6_EXTENSION_HEADERS = (0, 43, 60, 135, 139, 140)
IPV6_FRAGMENT = 44
IP_AUTHENTICATION_HEADER = 51  # RFC 4302: its length is in 4-byte units, minus 2

# Tunnels and tags a mirror port's capture arrives in (remote SPAN, data-centre overlays, MPLS
# cores, Cisco TrustSec): each is taken off and the walk goes on inside, at most this deep.
MAX_ENCAPSULATIONS = 6
ETHERTYPE_MPLS = (0x8847, 0x8848)
ETHERTYPE_CISCO_METADATA = 0x8909  # Cisco TrustSec SGT (CMD)
ETHERTYPE_TRANSPARENT_ETHERNET = 0x6558  # GRE or Geneve carrying an Ethernet frame
ETHERTYPE_ERSPAN_II = 0x88BE  # type I when GRE has no sequence number, type II when it has
ETHERTYPE_ERSPAN_III = 0x22EB
IP_PROTOCOL_IPV4, IP_PROTOCOL_IPV6, IP_PROTOCOL_GRE, IP_PROTOCOL_UDP = 4, 41, 47, 17
UDP_PORT_VXLAN, UDP_PORT_GENEVE = 4789, 6081
ETHERNET = -1  # in the walk below: "an Ethernet header starts here"
_BELOW_LINK = frozenset((*ETHERTYPE_MPLS, ETHERTYPE_CISCO_METADATA))
_TUNNEL = "tunnel"  # _locate_ip_tcp's mark for an IP payload that is not TCP
_FRAGMENT = "fragment"  # ... and for a fragment of an IP datagram
_UNKNOWN = "unknown"  # _locate_tcp's mark (when asked) for an encapsulation it cannot take off
# Encapsulations met on mirror ports that the walk does not take off: frames in them are counted and
# named (core/pipeline/engine.py), never dropped in silence.  Other non-IP frames (ARP, LLDP...)
# are simply not TCP.
UNDECODED_ETHERTYPES = {
    0x8863: "PPPoE discovery", 0x8864: "PPPoE session", 0x88E7: "802.1ah provider backbone (PBB)",
    0x88E5: "MACsec (802.1AE)", 0x8903: "Cisco FabricPath", 0x8926: "Cisco VN-Tag", 0x893F: "802.1BR E-Tag",
    0x88B5: "local experimental", 0x88B6: "local experimental",
}
IPV6_HOP_BY_HOP = 0
IPV6_JUMBO_OPTION = 0xC2  # RFC 2675: the payload length of a jumbogram (BIG TCP: payload length 0)

_u16 = struct.Struct("!H").unpack_from
_tcp_header = struct.Struct("!HHIIBBHH").unpack_from
# Ethernet + IPv4 without options + TCP in one unpack: the common case, tried first.  The IP
# identification and the TCP checksum come along: with the header fields they tell one packet
# recorded twice (core/wire/duplicates.py) from a retransmission.
ETHERNET_IPV4_TCP = struct.Struct("!12xHBxHHHxB2x4s4sHHIIBBHH")
_ethernet_ipv4_tcp = ETHERNET_IPV4_TCP.unpack_from


class TcpSegment(NamedTuple):
    """The parts of one frame that TCP reassembly needs.

    ``payload_offset`` is relative to the start of the frame.  ``payload_length``
    is what the frame carried; ``missing_length`` is what the IP header says was
    sent but the snapshot length cut off.
    """

    family: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    payload_offset: int
    payload_length: int
    missing_length: int
    window: int = 0  # the advertised receive window field, unscaled
    # What tells this packet from a resend of the same bytes: IPv4's identification (high 16
    # bits) and the TCP checksum (low 16); IPv6 has no identification (bit 32 set instead).
    identity: int = 0


def _network_layer(frame, link_type: int) -> tuple[int, int] | None:
    """(ethertype-like family, offset of the IP header) or None for non-IP frames."""
    if link_type == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        ethertype = _u16(frame, 12)[0]
        offset = 14
        while ethertype in ETHERTYPE_VLAN_TAGS and len(frame) >= offset + 4:
            ethertype = _u16(frame, offset + 2)[0]
            offset += 4
        return ethertype, offset
    if link_type == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        return _u16(frame, 14)[0], 16
    if link_type == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None
        return _u16(frame, 0)[0], 20
    if link_type in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            return None
        family = struct.unpack_from("<I" if link_type == LINKTYPE_NULL else "!I", frame, 0)[0]
        if family > 0xFFFF:  # a BSD null header written in the other byte order
            family = struct.unpack_from(">I" if link_type == LINKTYPE_NULL else "<I", frame, 0)[0]
        if family == socket.AF_INET or family == 2:
            return ETHERTYPE_IPV4, 4
        if family in (10, 24, 28, 30):  # AF_INET6 on Linux, BSDs, macOS
            return ETHERTYPE_IPV6, 4
        return None
    if link_type in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) or link_type in LINKTYPE_RAW_ALIASES:
        if not frame:
            return None
        version = frame[0] >> 4
        return (ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0), 0
    return None


def parse_tcp_at(buffer, offset: int, caplen: int, link_type: int) -> tuple | None:
    """``parse_tcp`` for the frame at ``buffer[offset:offset + caplen]``, without slicing it.

    Returns a tuple in ``TcpSegment``'s field order (the engine unpacks it).

    The engine calls this once per frame; the common case (untagged Ethernet,
    IPv4 without options) is read with one ``unpack_from`` at the offset; tests
    check it gives what the general walk gives.
    """
    if link_type == LINKTYPE_ETHERNET and caplen >= 54:
        (ethertype, version_ihl, total_length, ident, fragment, protocol, src, dst, sport, dport, seq, ack,
         data_offset, flags, window, checksum) = _ethernet_ipv4_tcp(buffer, offset)
        if ethertype == ETHERTYPE_IPV4 and version_ihl == 0x45 and protocol == 6 and total_length \
                and not fragment & 0x3FFF:
            payload_offset = 34 + (data_offset >> 4) * 4
            ip_end = 14 + total_length
            if payload_offset > ip_end or (data_offset >> 4) < 5:
                return None
            sent_length = ip_end - payload_offset
            captured_length = max(0, min(sent_length, caplen - payload_offset))
            # A plain tuple in TcpSegment's field order: building the NamedTuple costs more per frame.
            return (socket.AF_INET, src, dst, sport, dport, seq, ack, flags, payload_offset, captured_length,
                    sent_length - captured_length, window, ident << 16 | checksum)
    return _parse_tcp_general(memoryview(buffer)[offset : offset + caplen], link_type)


def parse_tcp(frame, link_type: int) -> TcpSegment | None:
    """Find the TCP segment in a frame, or None if it is not TCP over IP.

    ``frame`` may be a memoryview into the capture map; nothing is copied except
    the addresses.
    """
    found = parse_tcp_at(frame, 0, len(frame), link_type)
    return found if found is None or isinstance(found, TcpSegment) else TcpSegment._make(found)


def _parse_tcp_general(frame, link_type: int) -> TcpSegment | None:
    """Every link layer, VLAN tags, IPv4 options, IPv6 extension headers: the full walk."""
    found = _locate_tcp(frame, link_type)
    if found is None:
        return None
    family, src, dst, tcp_offset, ip_end, ident = found
    size = len(frame)
    sport, dport, seq, ack, data_offset, flags, window, checksum = _tcp_header(frame, tcp_offset)
    payload_offset = tcp_offset + (data_offset >> 4) * 4
    if payload_offset > ip_end or (data_offset >> 4) < 5:
        return None
    sent_length = ip_end - payload_offset
    captured_length = max(0, min(sent_length, size - payload_offset))
    return TcpSegment(family, src, dst, sport, dport, seq, ack, flags, payload_offset, captured_length,
                      sent_length - captured_length, window, ident << 16 | checksum)


def tcp_options_at(buffer, offset: int, caplen: int, link_type: int) -> dict[str, int]:
    """The TCP options of the frame at ``buffer[offset:offset + caplen]`` that matter for timing.

    Keys present only when the option is: ``mss``, ``window_scale`` (shift count,
    capped at 14 as RFC 7323 says), ``sack_permitted`` (1), ``timestamp`` (TSval).
    The engine asks only for SYN segments (window scale and MSS are only valid there).
    """
    frame = memoryview(buffer)[offset : offset + caplen]
    found = _locate_tcp(frame, link_type)
    options: dict[str, int] = {}
    if found is None:
        return options
    tcp_offset = found[3]
    end = min(len(frame), tcp_offset + (frame[tcp_offset + 12] >> 4) * 4)
    position = tcp_offset + 20
    while position < end:
        kind = frame[position]
        if kind == 0:
            break
        if kind == 1:
            position += 1
            continue
        if position + 1 >= end:
            break
        length = frame[position + 1]
        if length < 2 or position + length > end:
            break
        if kind == 2 and length == 4:
            options["mss"] = _u16(frame, position + 2)[0]
        elif kind == 3 and length == 3:
            options["window_scale"] = min(frame[position + 2], 14)
        elif kind == 4:
            options["sack_permitted"] = 1
        elif kind == 8 and length == 10:
            options["timestamp"] = struct.unpack_from("!I", frame, position + 2)[0]
        position += length
    return options


def _ethernet(frame, offset: int) -> tuple[int, int] | None:
    """(ethertype, offset after it) of an Ethernet header at ``offset``, VLAN tags skipped."""
    if len(frame) < offset + 14:
        return None
    ethertype = _u16(frame, offset + 12)[0]
    offset += 14
    while ethertype in ETHERTYPE_VLAN_TAGS and len(frame) >= offset + 4:
        ethertype = _u16(frame, offset + 2)[0]
        offset += 4
    return ethertype, offset


def _below_link(frame, ethertype: int, offset: int) -> tuple[int, int] | None:
    """Take off what sits between a link layer and IP on a mirror port's frame: MPLS labels (with
    an Ethernet pseudowire and its control word), Cisco TrustSec metadata.  (ethertype, offset)."""
    size = len(frame)
    for _depth in range(MAX_ENCAPSULATIONS):
        if ethertype in ETHERTYPE_MPLS:
            while True:  # labels until the bottom of the stack (RFC 3032)
                if size < offset + 4:
                    return None
                bottom = frame[offset + 2] & 0x01
                offset += 4
                if bottom:
                    break
            if size <= offset:
                return None
            version = frame[offset] >> 4
            if version == 4:
                return ETHERTYPE_IPV4, offset
            if version == 6:
                return ETHERTYPE_IPV6, offset
            if version == 0 and size >= offset + 4 + 14:  # a pseudowire control word (RFC 4385), then Ethernet
                offset += 4
            found = _ethernet(frame, offset)
            if found is None:
                return None
            ethertype, offset = found
        elif ethertype == ETHERTYPE_CISCO_METADATA:
            if size < offset + 4:
                return None
            offset += 2 + frame[offset + 1] * 4  # version, length in 4-byte units, the options
            if size < offset + 2:
                return None
            ethertype = _u16(frame, offset)[0]
            offset += 2
        else:
            return ethertype, offset
    return None


def _inside_tunnel(frame, protocol: int, offset: int, end: int) -> tuple[int, int] | None:
    """What an IP packet's payload at ``offset`` carries when it is a tunnel: (ethertype or
    ``ETHERNET``, offset), or None when it is no tunnel this walk knows."""
    size = min(len(frame), end)
    if protocol == IP_PROTOCOL_IPV4:
        return ETHERTYPE_IPV4, offset
    if protocol == IP_PROTOCOL_IPV6:
        return ETHERTYPE_IPV6, offset
    if protocol == IP_PROTOCOL_GRE:  # RFC 2784/2890: flags, protocol, optional checksum, key, sequence
        if size < offset + 4:
            return None
        flags, inner = _u16(frame, offset)[0], _u16(frame, offset + 2)[0]
        offset += 4 + 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
        if inner == ETHERTYPE_TRANSPARENT_ETHERNET:
            return ETHERNET, offset
        if inner == ETHERTYPE_ERSPAN_II:
            # ERSPAN type I has no sequence number and no header of its own; type II an 8-byte one.
            return ETHERNET, offset + (8 if flags & 0x1000 else 0)
        if inner == ETHERTYPE_ERSPAN_III:
            if size < offset + 12:
                return None
            optional = _u16(frame, offset + 10)[0] & 0x0001  # O: a platform-specific subheader follows
            return ETHERNET, offset + 12 + (8 if optional else 0)
        return inner, offset
    if protocol == IP_PROTOCOL_UDP:
        if size < offset + 16:
            return None
        dport = _u16(frame, offset + 2)[0]
        if dport == UDP_PORT_VXLAN:  # RFC 7348: 8 bytes, then the Ethernet frame
            return ETHERNET, offset + 16
        if dport == UDP_PORT_GENEVE:  # RFC 8926: 8 bytes and the options, then the protocol type's payload
            options = (frame[offset + 8] & 0x3F) * 4
            inner = _u16(frame, offset + 10)[0]
            offset += 16 + options
            return (ETHERNET, offset) if inner == ETHERTYPE_TRANSPARENT_ETHERNET else (inner, offset)
    return None


class IpFragment(NamedTuple):
    """A fragment of an IP datagram (IPv4, or IPv6 with a fragment header); offsets are the frame's."""

    family: int
    addresses: bytes  # source and destination, as the datagram's key
    ident: int
    protocol: int
    offset: int  # of this fragment's bytes in the datagram's payload
    more: bool
    payload_offset: int
    payload_end: int  # as the IP header says (the frame may hold less: a snapshot length)


def locate_fragment_at(buffer, offset: int, caplen: int, link_type: int) -> IpFragment | str | None:
    """The IP fragment in the frame at ``buffer[offset:offset + caplen]``; for a frame that is none,
    the name of an encapsulation the walk cannot take off (``UNDECODED_ETHERTYPES``, a tunnel's
    unknown payload), else None (not TCP: ARP, UDP, ...)."""
    found = _locate_tcp(memoryview(buffer)[offset : offset + caplen], link_type, fragments=True)
    if found is None:
        return None
    if found[0] is _UNKNOWN:
        return found[1]
    if found[0] is not _FRAGMENT:
        return None
    return IpFragment(*found[1:])


def _locate_tcp(frame, link_type: int, fragments: bool = False) -> tuple[int, bytes, bytes, int, int, int] | None:
    """(family, source, destination, offset of the TCP header, end of the IP payload, IP identification
    (0x10000 for IPv6, which has none)) or None.

    The TCP segment may sit inside tunnels and tags (``_below_link``, ``_inside_tunnel``): the
    addresses are the innermost IP header's, the conversation the endpoints had.
    """
    layer = _network_layer(frame, link_type)
    if layer is None:
        return None
    ethertype, offset = layer
    tunnel = ""  # the tunnel the walk is inside (for naming what it cannot take off)
    for _depth in range(MAX_ENCAPSULATIONS):
        if ethertype in _BELOW_LINK:
            below = _below_link(frame, ethertype, offset)
            if below is None:
                return (_UNKNOWN, "an MPLS or Cisco metadata payload") if fragments else None
            ethertype, offset = below
        found = _locate_ip_tcp(frame, ethertype, offset)
        if found is None or found[0] is not _TUNNEL:
            if found is not None and found[0] is _FRAGMENT:
                return found if fragments else None
            if found is None and fragments and ethertype not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
                name = UNDECODED_ETHERTYPES.get(ethertype)
                if name is not None:
                    return (_UNKNOWN, f"{name} (ethertype 0x{ethertype:04X})" + (f" inside {tunnel}" if tunnel else ""))
                if tunnel:
                    return (_UNKNOWN, f"ethertype 0x{ethertype:04X} inside {tunnel}")
            return found
        _tag, protocol, payload, ip_end = found
        inner = _inside_tunnel(frame, protocol, payload, ip_end)
        if protocol == IP_PROTOCOL_GRE:
            tunnel = "GRE"
        elif inner is not None and protocol == IP_PROTOCOL_UDP:
            tunnel = "VXLAN/Geneve"
        if inner is None:
            return None
        ethertype, offset = inner
        if ethertype == ETHERNET:
            inner = _ethernet(frame, offset)
            if inner is None:
                return None
            ethertype, offset = inner
    return None


def _locate_ip_tcp(frame, ethertype: int, offset: int):
    """``_locate_tcp``'s answer for an IP header at ``offset``; ("tunnel", protocol, payload offset,
    end) when the payload is not TCP but may be a tunnel; None for anything else."""
    size = len(frame)
    if ethertype == ETHERTYPE_IPV4:
        if size < offset + 20:
            return None
        version_ihl = frame[offset]
        if version_ihl >> 4 != 4:
            return None
        header_length = (version_ihl & 0x0F) * 4
        if header_length < 20:
            return None
        fragment = _u16(frame, offset + 6)[0]
        if fragment & 0x3FFF:  # more-fragments flag or a fragment offset: core/wire/fragments.py
            total_length = _u16(frame, offset + 2)[0]
            return (_FRAGMENT, socket.AF_INET, bytes(frame[offset + 12 : offset + 20]), _u16(frame, offset + 4)[0],
                    frame[offset + 9], (fragment & 0x1FFF) * 8, bool(fragment & 0x2000), offset + header_length,
                    offset + total_length)
        total_length = _u16(frame, offset + 2)[0]
        if total_length == 0:  # TCP segmentation offload leaves it zero
            total_length = size - offset
        protocol = frame[offset + 9]
        tcp_offset = offset + header_length
        ip_end = offset + total_length
        if protocol == IP_AUTHENTICATION_HEADER and size >= tcp_offset + 8:
            protocol, tcp_offset = frame[tcp_offset], tcp_offset + (frame[tcp_offset + 1] + 2) * 4
        if protocol != 6:
            return (_TUNNEL, protocol, tcp_offset, ip_end)
        src = bytes(frame[offset + 12 : offset + 16])
        dst = bytes(frame[offset + 16 : offset + 20])
        family = socket.AF_INET
        ident = _u16(frame, offset + 4)[0]
    elif ethertype == ETHERTYPE_IPV6:
        if size < offset + 40 or frame[offset] >> 4 != 6:
            return None
        payload_length = _u16(frame, offset + 4)[0]
        next_header = frame[offset + 6]
        src = bytes(frame[offset + 8 : offset + 24])
        dst = bytes(frame[offset + 24 : offset + 40])
        tcp_offset = offset + 40
        if payload_length == 0:  # a jumbogram (Linux BIG TCP): the length is in a hop-by-hop option
            payload_length = _jumbo_length(frame, offset) if next_header == IPV6_HOP_BY_HOP else size - tcp_offset
        ip_end = tcp_offset + payload_length
        while next_header in IPV6_EXTENSION_HEADERS or next_header in (IPV6_FRAGMENT, IP_AUTHENTICATION_HEADER):
            if size < tcp_offset + 8:
                return None
            if next_header == IPV6_FRAGMENT:
                fragment = _u16(frame, tcp_offset + 2)[0]
                if fragment & 0xFFF9:  # offset or M flag: a real fragment (core/wire/fragments.py)
                    ident = struct.unpack_from("!I", frame, tcp_offset + 4)[0]
                    return (_FRAGMENT, socket.AF_INET6, src + dst, ident, frame[tcp_offset], fragment & 0xFFF8,
                            bool(fragment & 1), tcp_offset + 8, ip_end)
                next_header, tcp_offset = frame[tcp_offset], tcp_offset + 8
            elif next_header == IP_AUTHENTICATION_HEADER:
                next_header, tcp_offset = frame[tcp_offset], tcp_offset + (frame[tcp_offset + 1] + 2) * 4
            else:
                next_header, tcp_offset = frame[tcp_offset], tcp_offset + (frame[tcp_offset + 1] + 1) * 8
        if next_header != 6:
            return (_TUNNEL, next_header, tcp_offset, ip_end)
        family = socket.AF_INET6
        ident = 0x10000  # no identification in IPv6
    else:
        return None
    if size < tcp_offset + 20:
        return None
    return family, src, dst, tcp_offset, ip_end, ident


def _jumbo_length(frame, offset: int) -> int:
    """The Jumbo Payload option's length in the hop-by-hop header after the IPv6 header at ``offset``
    (RFC 2675; it counts the hop-by-hop header too); what the frame holds when there is none."""
    size = len(frame)
    start = offset + 40
    if size >= start + 8:
        end = min(size, start + (frame[start + 1] + 1) * 8)
        position = start + 2
        while position + 2 <= end:
            kind = frame[position]
            if kind == 0:  # Pad1
                position += 1
                continue
            if kind == IPV6_JUMBO_OPTION and frame[position + 1] == 4 and position + 6 <= end:
                return struct.unpack_from("!I", frame, position + 2)[0]
            position += 2 + frame[position + 1]
    return size - start


def format_address(family: int, address: bytes, port: int) -> str:
    """``10.0.0.1:104`` or ``[::1]:104``."""
    text = socket.inet_ntop(family, address)
    return f"[{text}]:{port}" if family == socket.AF_INET6 else f"{text}:{port}"
