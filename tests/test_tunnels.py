"""Captures from a mirror port arrive inside tunnels and tags (issue 25): remote SPAN (ERSPAN I, II
and III, with and without the platform subheader), GRE carrying Ethernet or IP, VXLAN and Geneve,
MPLS (IP directly, or an Ethernet pseudowire with its control word), Cisco TrustSec metadata (SGT),
IPv4 and IPv6 with an Authentication Header.  Each shape is built here from a recorded fixture's own
frames (the DICOM bytes untouched), and must give exactly the clean capture's associations,
messages, statuses, PDUs and stream bytes; tshark, where installed, must see the same DICOM PDUs.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from capture_tools import FIXTURES, RawFrame, read_frames, write_pcap
from conftest import analyze_path

FIXTURE = "store_dcmtk.pcapng"
OUTER_MACS = bytes.fromhex("0200000000aa0200000000bb")
OUTER_SRC, OUTER_DST = bytes([192, 168, 50, 1]), bytes([192, 168, 50, 2])


def _ipv4(protocol: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 7, 0x4000, 64, protocol, 0, OUTER_SRC, OUTER_DST)
    return header + payload


def _outer(ip_packet: bytes) -> bytes:
    return OUTER_MACS + b"\x08\x00" + ip_packet


def _gre(protocol: int, inner: bytes, sequence: int | None = None, key: int | None = None) -> bytes:
    flags = (0x2000 if key is not None else 0) | (0x1000 if sequence is not None else 0)
    header = struct.pack("!HH", flags, protocol)
    if key is not None:
        header += struct.pack("!I", key)
    if sequence is not None:
        header += struct.pack("!I", sequence)
    return _outer(_ipv4(47, header + inner))


def _udp(port: int, payload: bytes) -> bytes:
    return _outer(_ipv4(17, struct.pack("!HHHH", 50000, port, 8 + len(payload), 0) + payload))


def _ip_of(frame: bytes) -> bytes:
    return frame[14:]  # the fixture's frames are untagged Ethernet


def _to_ipv6_with_ah(frame: bytes) -> bytes:
    ip = _ip_of(frame)
    header_length = (ip[0] & 0x0F) * 4
    tcp = ip[header_length:struct.unpack("!H", ip[2:4])[0]]
    ah = struct.pack("!BBHII", 6, 4, 0, 0x1234, 1) + bytes(12)  # next header TCP, (4 + 2) * 4 = 24 bytes
    src = b"\x20\x01\x0d\xb8" + bytes(8) + ip[12:16]
    dst = b"\x20\x01\x0d\xb8" + bytes(8) + ip[16:20]
    header = struct.pack("!IHBB16s16s", 0x60000000, len(ah) + len(tcp), 51, 64, src, dst)
    return frame[:12] + b"\x86\xdd" + header + ah + tcp


SHAPES = {
    "erspan-1": lambda f, n: _gre(0x88BE, f),
    "erspan-2": lambda f, n: _gre(0x88BE, struct.pack("!HHI", 0x1000, 0x0001, 0) + f, sequence=n),
    "erspan-3": lambda f, n: _gre(0x22EB, struct.pack("!HHIHH", 0x2000, 0x0001, n, 0, 0) + f, sequence=n),
    "erspan-3-platform": lambda f, n: _gre(0x22EB, struct.pack("!HHIHH", 0x2000, 0x0001, n, 0, 1) + bytes(8) + f,
                                           sequence=n),
    "gre-ethernet": lambda f, n: _gre(0x6558, f, key=5),
    "gre-ip": lambda f, n: _gre(0x0800, _ip_of(f)),
    "vxlan": lambda f, n: _udp(4789, struct.pack("!II", 0x08000000, 100 << 8) + f),
    "geneve": lambda f, n: _udp(6081, struct.pack("!BBHI", 1, 0, 0x6558, 100 << 8) + bytes(4) + f),
    "mpls-ip": lambda f, n: OUTER_MACS + b"\x88\x47" + struct.pack("!II", 16 << 12, (17 << 12) | 0x100 | 64)
    + _ip_of(f),
    "mpls-pseudowire": lambda f, n: OUTER_MACS + b"\x88\x47" + struct.pack("!I", (18 << 12) | 0x100 | 64)
    + bytes(4) + f,
    "cisco-sgt": lambda f, n: f[:12] + struct.pack("!HBBHH", 0x8909, 1, 1, 0x0001, 42) + f[12:],
    "ipv4-ah": lambda f, n: f[:14] + _ipv4_ah(_ip_of(f)),
}


def _ipv4_ah(ip: bytes) -> bytes:
    header_length = (ip[0] & 0x0F) * 4
    payload = ip[header_length:struct.unpack("!H", ip[2:4])[0]]
    ah = struct.pack("!BBHII", 6, 4, 0, 0x1234, 1) + bytes(12)
    header = bytearray(ip[:header_length])
    header[9] = 51
    struct.pack_into("!H", header, 2, header_length + len(ah) + len(payload))
    return bytes(header) + ah + payload


def _shape(tmp_path, name: str, wrap) -> str:
    frames = [RawFrame(frame.ts, wrap(frame.data, number), frame.link_type)
              for number, frame in enumerate(read_frames(FIXTURES / FIXTURE))]
    return str(write_pcap(tmp_path / f"{name}.pcap", frames))


def _facts(analysis) -> dict:
    return {
        "associations": [(a.calling_ae, a.called_ae, str(a.state), a.message_count) for a in analysis.associations],
        "messages": [(m.command_field, m.status, m.message_id, m.dataset_length, m.complete) for m in analysis.messages],
        "pdus": [(p.pdu_type, p.length, p.first_frame, p.last_frame) for p in analysis.pdus],
        "streams": [tuple(c.read(d, 0, c.streams[d].end, analysis.buffers) for d in (0, 1))
                    for c in analysis.connections],
        "gaps": sum(len(c.streams[d].gaps) for c in analysis.connections for d in (0, 1)),
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = _shape(tmp_path_factory.mktemp("clean"), "clean", lambda frame, number: frame)
    return path, _facts(analyze_path(path))


@pytest.mark.parametrize("name", sorted(SHAPES) + ["ipv6-ah"])
def test_every_tunnel_gives_the_clean_analysis(tmp_path, clean, name):
    clean_path, expected = clean
    wrap = _to_ipv6_with_ah if name == "ipv6-ah" else SHAPES[name]
    path = _shape(tmp_path, name, (lambda f, n: wrap(f)) if name == "ipv6-ah" else wrap)
    got = _facts(analyze_path(path))
    assert expected["associations"] and got == expected
    if shutil.which("tshark") and name not in TSHARK_NEEDS_DECODE_AS:
        assert _tshark_pdus(path) == _tshark_pdus(clean_path)


# tshark 4.0 does not guess that an MPLS stack ends in an Ethernet pseudowire (it needs
# "Decode As" or a preference); dicomtui takes the first nibble after the stack as RFC 4385 says.
TSHARK_NEEDS_DECODE_AS = {"mpls-pseudowire"}


def _tshark_pdus(path: str) -> int:
    out = subprocess.run(["tshark", "-r", path, "-d", "tcp.port==104,dicom", "-Y", "dicom", "-T", "fields",
                          "-e", "frame.number"], capture_output=True, text=True, timeout=120)
    return len(out.stdout.split())
