"""The index of an Ethernet pcap file, read column-wise with numpy (``split.index_file``'s fast path).

``index_file`` parses every frame's TCP header in Python to put the frame in its flow group:
about 4 µs a frame, the largest share of the batch's CPU above a single pass (it reads the
headers once more than the single pass does).  Most ring-buffer files are Ethernet pcaps of
plain IPv4/TCP, whose header fields sit at fixed offsets: here they are gathered a block of
records at a time (as the engine's bulk path does, core/wire/pcap_block.py), the flow group
is computed once per distinct port pair, and only the frames that are not plain (VLAN tags,
IPv6, IPv4 options, short frames) go through ``parse_tcp_at`` one by one.

The result is the per-frame loop's, field for field: the same records (a file whose record
chain is damaged anywhere is left to the per-frame loop, which notes the damage), the same
timestamp arithmetic, and for plain frames the tests of ``parse_tcp_at``'s own fast branch.
"""

from __future__ import annotations

import socket
import struct
from array import array

from dicomtui.core.wire.capture import PCAP_HEADER_LENGTH, pcap_layout
from dicomtui.core.wire.packet import parse_tcp_at

try:  # numpy comes with the batch extra's pyarrow; without it the per-frame loop serves
    import numpy as np

    from dicomtui.core.wire.capture_format import walk_record_offsets as walk_records
except ImportError:  # pragma: no cover
    np = None

LINKTYPE_ETHERNET = 1
BLOCK = 1 << 16  # records per block: bounds the numpy columns (a few MB)
RECORD_HEADER = 16
GATHERED = RECORD_HEADER + 54  # record header, Ethernet, IPv4 without options, TCP without options


def _fields(endian: str):
    order = "<" if endian == "<" else ">"
    return np.dtype([
        ("seconds", order + "u4"), ("fraction", order + "u4"), ("caplen", order + "u4"), ("origlen", order + "u4"),
        ("macs", "V12"), ("ethertype", ">u2"), ("version_ihl", "u1"), ("tos", "u1"), ("total_length", ">u2"),
        ("ident", ">u2"), ("fragment", ">u2"), ("ttl", "u1"), ("protocol", "u1"), ("checksum", ">u2"),
        ("addresses", "V8"), ("ports", "V4"), ("seq", ">u4"), ("ack", ">u4"), ("data_offset", "u1"),
        ("rest", "V7"),
    ])


def index_columns(source, groups: int, flow_group, unparsed, parts, summary, all_keys: array,
                  all_times: array) -> bool:
    """Fill ``parts`` (one ``GroupPart`` a group), ``all_keys``, ``all_times`` (every frame's
    timestamp) and ``summary``'s frame fields for an Ethernet pcap; False (nothing filled) for
    any other file, or a damaged one.  Frames with no TCP segment go to ``unparsed`` (``split.Unparsed``:
    IP fragments, encapsulations not taken off)."""
    if np is None:
        return False
    layout = pcap_layout(source)
    if layout is None or layout[2] != LINKTYPE_ETHERNET:
        return False
    endian, resolution, link_type = layout
    data = source.data
    caplen_at = struct.Struct(endian + "I").unpack_from
    # The record chain first, whole: a damaged record anywhere sends the file to the per-frame loop.
    blocks = []
    offset = PCAP_HEADER_LENGTH
    while offset < len(data):
        offsets, offset = walk_records(data, offset, BLOCK, caplen_at)
        if not offsets:
            return False
        blocks.append(offsets)
    if offset != len(data):
        return False
    buffer = np.frombuffer(data, dtype=np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(buffer, GATHERED) if len(buffer) >= GATHERED else None
    layout_type = _fields(endian)
    group_of_flow: dict[bytes, int] = {}
    running = float("-inf")
    position = 0
    for offsets in blocks:
        starts = np.array(offsets, dtype=np.int64)
        raw = _gather(data, windows, starts, offsets)
        fields = raw.view(layout_type)[:, 0]
        caplen = fields["caplen"].astype(np.int64)
        ts = fields["seconds"].astype(np.float64) + fields["fraction"].astype(np.float64) * resolution
        keys = np.maximum.accumulate(np.concatenate(([running], ts)))[1:]
        running = float(keys[-1])
        body = starts + RECORD_HEADER
        origlen = fields["origlen"].astype(np.uint32)
        # parse_tcp_at's fast branch, term for term: these frames are TCP (or, when the header
        # lengths do not fit, nothing) without the general walk.
        plain = ((caplen >= 54) & (fields["ethertype"] == 0x0800) & (fields["version_ihl"] == 0x45)
                 & (fields["protocol"] == 6) & (fields["total_length"] != 0) & ((fields["fragment"] & 0x3FFF) == 0))
        header_words = (fields["data_offset"] >> 4).astype(np.int64)
        fits = (34 + header_words * 4 <= 14 + fields["total_length"].astype(np.int64)) & (header_words >= 5)
        group = np.full(len(offsets), -1, dtype=np.int64)
        tcp = np.flatnonzero(plain & fits)
        if len(tcp):
            flows = np.ascontiguousarray(raw[tcp, RECORD_HEADER + 26: RECORD_HEADER + 38]).view("V12")[:, 0]
            unique, inverse = np.unique(flows, return_inverse=True)
            lookup = np.array([_group(group_of_flow, key, groups, flow_group) for key in unique.tolist()],
                              dtype=np.int64)
            group[tcp] = lookup[inverse.reshape(-1)]
        # TCP fragments of plain IPv4 datagrams (a VPN hop's small MTU makes most frames such): what the
        # general walk and fragments.datagram_key / first_fragment_group give them, read from the columns.
        fragment_flags = fields["fragment"] & 0x3FFF
        ipv4_fragment = ((caplen >= 34) & (fields["ethertype"] == 0x0800) & (fields["version_ihl"] == 0x45)
                         & (fragment_flags != 0) & (fields["protocol"] == 6))
        if ipv4_fragment.any():
            datagrams = np.zeros((len(offsets), 13), dtype=np.uint8)  # datagram_key: family, addresses, 4-byte ident
            datagrams[:, 0] = socket.AF_INET
            datagrams[:, 1:9] = raw[:, RECORD_HEADER + 26: RECORD_HEADER + 34]
            datagrams[:, 11:13] = raw[:, RECORD_HEADER + 18: RECORD_HEADER + 20]
            datagram_of = datagrams.view("V13")[:, 0]
            ports_captured = np.minimum(caplen, 14 + fields["total_length"].astype(np.int64)) >= 38
            first_group = np.full(len(offsets), -1, dtype=np.int64)
            firsts = np.flatnonzero(ipv4_fragment & ((fields["fragment"] & 0x1FFF) == 0) & ports_captured)
            if len(firsts):
                flows = np.ascontiguousarray(raw[firsts, RECORD_HEADER + 26: RECORD_HEADER + 38]).view("V12")[:, 0]
                first_group[firsts] = [_group(group_of_flow, key, groups, flow_group) for key in flows.tolist()]
        for row in np.flatnonzero(~plain).tolist():  # the general walk, one frame at a time
            if ipv4_fragment[row]:
                unparsed.fragment(position + row, float(keys[row]), float(ts[row]), offsets[row] + RECORD_HEADER,
                                  int(caplen[row]), int(origlen[row]), link_type, datagram_of[row].tobytes(),
                                  int(first_group[row]))
                continue
            segment = parse_tcp_at(data, offsets[row] + RECORD_HEADER, int(caplen[row]), link_type)
            if segment is not None:
                group[row] = flow_group(segment[1], segment[3], segment[2], segment[4], groups)
            else:
                unparsed(data, offsets[row] + RECORD_HEADER, int(caplen[row]), link_type, position + row,
                         float(keys[row]), float(ts[row]), int(origlen[row]))
        for number, part in enumerate(parts):
            rows = np.flatnonzero(group == number)
            if not len(rows):
                continue
            part.positions.frombytes((rows + position).astype(np.uint64).tobytes())
            part.keys.frombytes(keys[rows].tobytes())
            part.timestamps.frombytes(ts[rows].tobytes())
            part.offsets.frombytes(body[rows].astype(np.uint64).tobytes())
            part.caplens.frombytes(caplen[rows].astype(np.uint32).tobytes())
            part.origlens.frombytes(origlen[rows].tobytes())
            part.link_types.frombytes(np.full(len(rows), link_type, dtype=np.uint16).tobytes())
        all_keys.frombytes(keys.tobytes())
        all_times.frombytes(ts.tobytes())
        if position == 0:
            summary.first_ts = float(ts[0])
        summary.last_ts = float(ts[-1])
        position += len(offsets)
    summary.frames = position
    return True


def _gather(data, windows, starts, offsets):
    """The first ``GATHERED`` bytes of each record (zero-padded where the file ends sooner)."""
    if windows is None:
        raw = np.zeros((len(offsets), GATHERED), dtype=np.uint8)
        short = range(len(offsets))
    else:
        raw = windows[np.minimum(starts, len(windows) - 1)]
        short = np.flatnonzero(starts >= len(windows)).tolist()
    for row in short:
        start = offsets[row]
        raw[row] = np.frombuffer(bytes(data[start: start + GATHERED]).ljust(GATHERED, b"\0"), dtype=np.uint8)
    return raw


def _group(cache: dict, key: bytes, groups: int, flow_group) -> int:
    group = cache.get(key)
    if group is None:
        src, dst, sport, dport = struct.unpack("!4s4sHH", key)
        group = cache[key] = flow_group(src, sport, dst, dport, groups)
    return group
