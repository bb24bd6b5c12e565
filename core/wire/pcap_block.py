"""Blocks of pcap records decoded at once, column-wise, with numpy (the engine's bulk path).

A Python loop that touches every frame costs about a microsecond a frame; a
227 MB capture has 220,000 frames.  Here only the record chain is walked in
Python (``capture_format.walk_record_offsets``: the next record's place depends on this one's
length, which no vector operation can follow), and everything else a frame
has for TCP reassembly, its time, Ethernet, IPv4 and TCP header fields, is
read for a whole block at once by gathering the first 70 bytes of every record
(``decode_block``).

Pure functions over a buffer: no connection state, no DICOM.  The engine
decides what to do with the columns (core/pipeline/bulk.py); frames that are
not untagged Ethernet/IPv4/TCP without options it cannot handle in bulk get
``simple`` False and go through the reference parser.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np


RECORD_HEADER = 16
HEADERS = 54  # Ethernet (14) + IPv4 without options (20) + TCP header (20; options follow)
GATHERED = RECORD_HEADER + HEADERS
PAYLOAD_BASE = 34  # Ethernet + IPv4 header: the TCP header starts here in a simple frame


def _layout(endian: str) -> np.dtype:
    """The first 70 bytes of a record holding an Ethernet/IPv4/TCP frame, as numpy fields."""
    order = "<" if endian == "<" else ">"
    return np.dtype([
        ("seconds", order + "u4"), ("fraction", order + "u4"), ("caplen", order + "u4"), ("origlen", order + "u4"),
        ("macs", "V12"), ("ethertype", ">u2"),
        ("version_ihl", "u1"), ("tos", "u1"), ("total_length", ">u2"), ("ident", ">u2"), ("fragment", ">u2"),
        ("ttl", "u1"), ("protocol", "u1"), ("checksum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
        ("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("data_offset", "u1"),
        ("flags", "u1"), ("window", ">u2"), ("tcp_checksum", ">u2"), ("urgent", "V2"),
    ])


_LAYOUTS = {endian: _layout(endian) for endian in ("<", ">")}
_FOUR_TUPLE = slice(RECORD_HEADER + 26, RECORD_HEADER + 38)  # src, dst, sport, dport: contiguous


@dataclass(slots=True)
class FrameBlock:
    """Columns of consecutive records (numpy arrays, one entry a frame)."""

    body: np.ndarray  # file offset of the frame (after the record header)
    caplen: np.ndarray
    ts: np.ndarray  # seconds, float64: the same arithmetic as the per-frame path
    simple: np.ndarray  # untagged Ethernet/IPv4/TCP, no SYN/FIN/RST, not a fragment, lengths consistent
    flags: np.ndarray
    seq: np.ndarray
    ack: np.ndarray
    window: np.ndarray
    length: np.ndarray  # TCP payload length (simple frames)
    payload: np.ndarray  # file offset of the payload (simple frames)
    flow: np.ndarray  # index into ``flows`` of each frame's (src, sport, dst, dport)
    flows: list[tuple[bytes, int, bytes, int]]
    identity: np.ndarray  # IP identification << 16 | TCP checksum (uint64; see core/wire/duplicates.py)

    def head(self, count: int) -> "FrameBlock":
        """The first ``count`` frames (``flows`` is kept whole: the indices stay valid)."""
        return FrameBlock(self.body[:count], self.caplen[:count], self.ts[:count], self.simple[:count],
                          self.flags[:count], self.seq[:count], self.ack[:count], self.window[:count],
                          self.length[:count], self.payload[:count], self.flow[:count], self.flows,
                          self.identity[:count])


def decode_block(data, offsets: list[int], endian: str, resolution: float) -> FrameBlock:
    """Read the headers of the records at ``offsets`` (from ``walk_record_offsets``) column-wise."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    starts = np.array(offsets, dtype=np.int64)
    # Every 70-byte window of the file as a view (no copy); taking the rows at ``starts`` copies
    # just those.  A record within 70 bytes of the end of the file (a frame shorter than the
    # headers) has no full window: its row is read by hand, zero-padded.
    windows = np.lib.stride_tricks.sliding_window_view(buffer, GATHERED)
    raw = windows[np.minimum(starts, len(windows) - 1)]
    for row in np.flatnonzero(starts >= len(windows)).tolist():
        start = offsets[row]
        raw[row] = np.frombuffer(bytes(data[start: start + GATHERED]).ljust(GATHERED, b"\0"), dtype=np.uint8)
    fields = raw.view(_LAYOUTS[endian])[:, 0]
    caplen = fields["caplen"].astype(np.int64)
    total_length = fields["total_length"].astype(np.int64)
    data_offset = fields["data_offset"].astype(np.int64)
    header_words = data_offset >> 4
    flags = fields["flags"]
    # The per-frame path's test, term for term (engine.CaptureEngine.run_pcap).
    simple = ((caplen >= HEADERS) & (fields["ethertype"] == 0x0800) & (fields["version_ihl"] == 0x45)
              & (fields["protocol"] == 6) & ((flags & 0x07) == 0) & ((fields["fragment"] & 0x3FFF) == 0)
              & (data_offset >> 2 >= 20) & (data_offset >> 2 <= total_length - 20) & (total_length <= caplen - 14))
    length = total_length - 20 - header_words * 4
    body = starts + RECORD_HEADER
    ts = fields["seconds"].astype(np.float64) + fields["fraction"].astype(np.float64) * resolution
    keys = np.ascontiguousarray(raw[:, _FOUR_TUPLE]).view("V12")[:, 0]
    unique, flow = np.unique(keys, return_inverse=True)
    flows = []
    for key in unique.tolist():
        src, dst, sport, dport = struct.unpack("!4s4sHH", key)
        flows.append((src, sport, dst, dport))
    return FrameBlock(body=body, caplen=caplen, ts=ts, simple=simple, flags=flags,
                      seq=fields["seq"].astype(np.int64), ack=fields["ack"].astype(np.int64),
                      window=fields["window"], length=np.where(simple, length, 0),
                      payload=body + PAYLOAD_BASE + header_words * 4, flow=flow.reshape(-1), flows=flows,
                      identity=fields["ident"].astype(np.uint64) << np.uint64(16)
                      | fields["tcp_checksum"].astype(np.uint64))
