"""The stream-transform seam (core/wire/transform.py): DICOM inside another layer on a TCP connection.

A test layer stands in for TLS here: every payload byte of a recorded fixture XORed with 0x5A
(length-preserving, so the inner stream offsets are the recorded ones).  Through a transform
registered by a plugin, the XORed capture must give exactly the analysis of the clean one —
associations, messages, PDUs, every gap — and byte-identical exported objects; without it, no
DICOM at all.  The wire bytes stay in ``Connection.wire_streams``.
"""

from __future__ import annotations

import json
from pathlib import Path

import dpkt
import pytest
from capture_tools import FIXTURES, data_frame_indices, read_frames, write_pcap
from conftest import analyze_path

from dicomtui import hookimpl
from dicomtui.cli import make_host
from dicomtui.core.views import analysis_json

KEY = 0x5A


def _xor(data: bytes) -> bytes:
    return bytes(byte ^ KEY for byte in data)


def xored_capture(name: str, out: Path, key: int = KEY, drop: tuple[int, ...] = (), reverse: tuple[int, ...] = ()
                  ) -> Path:
    """The fixture's frames, payloads XORed with ``key`` (0: the same frames, written the same way);
    ``drop``: frame indexes left out (lost segments); ``reverse``: indexes swapped with the next."""
    frames = []
    recorded = read_frames(FIXTURES / name)
    for index in reverse:
        recorded[index], recorded[index + 1] = recorded[index + 1], recorded[index]
    for index, frame in enumerate(recorded):
        if index in drop:
            continue
        eth = dpkt.ethernet.Ethernet(frame.data)
        tcp = eth.data.data if isinstance(eth.data, dpkt.ip.IP) else None
        if isinstance(tcp, dpkt.tcp.TCP) and tcp.data:
            raw = bytearray(frame.data)
            start = len(raw) - len(tcp.data)
            raw[start:] = bytes(byte ^ key for byte in raw[start:])
            frame = type(frame)(frame.ts, bytes(raw), frame.link_type)
        frames.append(frame)
    return write_pcap(out, frames)


class XorTransform:
    name = "XOR 0x5A (test layer)"

    def __init__(self) -> None:
        self.fed = [0, 0]

    def feed(self, direction: int, data) -> bytes:
        self.fed[direction] += len(data)
        return _xor(bytes(data))

    def gap(self, direction: int, length: int) -> int:
        return length  # byte for byte


class XorLayer:
    """A plugin offering the test layer: a stream whose first byte is an XORed A-ASSOCIATE-RQ."""

    @hookimpl
    def dicomtui_register_stream_transforms(self, register):
        def factory(first_bytes, ports):
            client = first_bytes[0]
            if len(client) >= 2 and client[0] ^ KEY == 0x01 and client[1] ^ KEY == 0x00:
                return XorTransform()
            return None

        register("xor-test", factory)


def _host():
    host = make_host()
    host.register(XorLayer(), name="xor_layer")
    return host


def _document(analysis) -> dict:
    document = json.loads(json.dumps(analysis_json(analysis), default=str))
    document["capture"].pop("files", None)
    for connection in document["connections"]:  # the layer itself is what differs
        connection.pop("transform")
        connection.pop("layer")
    return document


@pytest.mark.parametrize("name", ["store_dcmtk.pcapng", "qr_pynetdicom.pcap", "reject_abort.pcap",
                                  "store_ts_pynetdicom.pcap"])
def test_a_transformed_capture_decodes_as_the_clean_one(tmp_path, name):
    xored = xored_capture(name, tmp_path / "xored.pcap")
    clean = analyze_path(xored_capture(name, tmp_path / "clean.pcap", key=0))  # same timestamps' rounding
    inner = analyze_path(xored, host=_host())
    assert clean.associations and len(inner.associations) == len(clean.associations)
    assert _document(inner) == _document(clean)
    for connection in inner.connections:
        assert connection.transform == XorTransform.name
        for direction in (0, 1):
            wire, plain = connection.wire_streams[direction], connection.streams[direction]
            assert wire.end == plain.end  # byte for byte
            if plain.end:
                wire_bytes = wire.read(0, wire.end, inner.buffers)
                assert plain.read(0, plain.end, inner.buffers) == _xor(wire_bytes)
    # Without the layer's plugin the XORed bytes are nothing DICOM.
    assert not analyze_path(xored).associations


def test_lost_and_reordered_segments_through_a_transform(tmp_path):
    """The inner stream has the wire stream's holes (the layer maps them) and its reordering undone."""
    name = "store_dcmtk.pcapng"
    data = data_frame_indices(read_frames(FIXTURES / name))
    damage = {"drop": (data[len(data) // 2],), "reverse": (data[5], data[len(data) // 3])}
    clean = analyze_path(xored_capture(name, tmp_path / "clean.pcap", key=0, **damage))
    inner = analyze_path(xored_capture(name, tmp_path / "xored.pcap", **damage), host=_host())
    assert any(connection.streams[0].gaps for connection in clean.connections)
    assert _document(inner) == _document(clean)


def test_exported_objects_are_byte_identical_through_a_transform(tmp_path):
    xored = xored_capture("store_dcmtk.pcapng", tmp_path / "xored.pcap")
    clean_dir, inner_dir = tmp_path / "clean", tmp_path / "inner"
    from dicomtui.core.api.export import ExportOptions
    from dicomtui.core.views.export import exporters

    host = _host()
    part10 = exporters(host)["part10"]
    part10.export(analyze_path(FIXTURES / "store_dcmtk.pcapng", host=host), str(clean_dir), ExportOptions(), None)
    part10.export(analyze_path(xored, host=host), str(inner_dir), ExportOptions(), None)
    clean = {path.relative_to(clean_dir): path.read_bytes() for path in clean_dir.rglob("*") if path.is_file()}
    inner = {path.relative_to(inner_dir): path.read_bytes() for path in inner_dir.rglob("*") if path.is_file()}
    assert len(clean) >= 3 and inner == clean


def test_a_failing_transform_is_a_finding_not_a_crash(tmp_path):
    xored = xored_capture("echo_dcmtk.pcap", tmp_path / "xored.pcap")

    class Broken(XorTransform):
        def feed(self, direction, data):
            if self.fed[direction] > 100:
                raise ValueError("bad record")
            return super().feed(direction, data)

    class BrokenLayer:
        @hookimpl
        def dicomtui_register_stream_transforms(self, register):
            register("broken", lambda first, ports: Broken() if first[0][:1] == bytes([0x01 ^ KEY]) else None)

    host = make_host()
    host.register(BrokenLayer(), name="broken_layer")
    analysis = analyze_path(xored, host=host)
    assert any("stream transform" in item.message and "bad record" in item.message for item in analysis.expert)
