"""Seed corpora for the fuzz targets, built from the recorded fixtures.

``python tests/fuzz/corpus.py [OUTDIR]`` (run.py calls it when a corpus is
missing) writes one folder per target:

- capture: the fixture files, and each cut to its first 16 and 64 frames
  (small seeds run fast, so the fuzzer mutates them more often);
- connection: each fixture connection's PDUs in order, as segments;
- pdu: each direction's PDU stream, and single PDUs, behind the mode bytes;
- dataset: each message's data set behind its transfer syntax selector;
- reassembly: a few operation sequences (in order, reordered, lost, acked).
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fuzz import harnesses  # noqa: E402

FIXTURES = HERE.parent.parent / "fixtures"
MAX_SEED = 64 * 1024


def _write(folder: Path, data: bytes) -> None:
    if not data:
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data[:MAX_SEED] if folder.name != "capture" else data)


def _cut_pcap(data: bytes, frames: int) -> bytes | None:
    """The first ``frames`` records of a little-endian microsecond pcap (others: None)."""
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        return None
    offset = 24
    for _ in range(frames):
        if offset + 16 > len(data):
            break
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        offset += 16 + caplen
    return data[:offset]


def build(outdir: Path) -> dict[str, int]:
    fixtures = sorted(FIXTURES.glob("*.pcap")) + sorted(FIXTURES.glob("*.pcapng"))
    fixtures += sorted((FIXTURES / "fuzz-regressions").glob("capture-*"))
    for path in fixtures:
        raw = path.read_bytes()
        if len(raw) <= 128 * 1024:
            _write(outdir / "capture", raw)
        for frames in (16, 64):
            cut = _cut_pcap(raw, frames)
            if cut:
                _write(outdir / "capture", cut)
        analysis = harnesses.analyse_bytes(raw)
        if analysis is None:
            continue
        # Re-open the buffers the harness closed: read PDU bytes from the file itself.
        for connection in range(len(analysis.connections)):
            segments = []
            streams = {0: bytearray(), 1: bytearray()}
            singles = []
            for pdu in analysis.pdus:
                if pdu.connection != connection:
                    continue
                stream = analysis.connections[connection].streams[pdu.direction]
                data = stream.read(pdu.stream_offset, pdu.stream_offset + pdu.total_length, [raw_view(raw, analysis)])
                if data is None:
                    continue
                data = bytes(data)
                segments.append((pdu.direction, 0, data))
                streams[pdu.direction] += data
                if len(data) <= 4096:
                    singles.append(data)
            _write(outdir / "connection", harnesses.encode_segments(segments)[:MAX_SEED])
            for direction, data in streams.items():
                _write(outdir / "pdu", bytes([direction, 16]) + bytes(data[:16384]))
            for data in singles:
                _write(outdir / "pdu", b"\x00\x3c" + data)
                _write(outdir / "pdu", b"\x00\x3c" + data[6:])  # the body alone (decoders, command sets)
        for message in analysis.messages:
            stream = analysis.connections[message.connection].streams[message.direction]
            if message.command_bytes:
                _write(outdir / "pdu", b"\x00\x3c" + message.command_bytes)
            parts = []
            for fragment in message.dataset_fragments:
                part = stream.read(fragment.stream_offset, fragment.stream_offset + fragment.length,
                                   [raw_view(raw, analysis)])
                if part is None:
                    parts = []
                    break
                parts.append(bytes(part))
            if parts:
                data = b"".join(parts)
                syntax = message.transfer_syntax
                selector = harnesses.SYNTAXES.index(syntax) if syntax in harnesses.SYNTAXES else 4
                _write(outdir / "dataset", bytes([selector]) + data[:MAX_SEED])
                if selector == 1:  # also as deflated (compressed by the harness)
                    _write(outdir / "dataset", bytes([0x80 | 3]) + data[:8192])
    for seed in _reassembly_seeds():
        _write(outdir / "reassembly", seed)
    for folder in ("connection",):
        for seed in (outdir / folder).iterdir() if (outdir / folder).is_dir() else ():
            _write(outdir / "export", seed.read_bytes())
    for seed in _resync_seeds():
        _write(outdir / "resync", seed)
    for path in sorted(FIXTURES.glob("*.pcapng")):
        raw = path.read_bytes()
        _write(outdir / "pcapng", b"\x00" + raw[:MAX_SEED])
        _write(outdir / "pcapng", b"\x02" + raw[:MAX_SEED])
    import hostile_inputs  # tests/: the hostile pcapng files of issue 17

    for seed in (hostile_inputs.pcapng_good(), hostile_inputs.pcapng_far_future(),
                 hostile_inputs.pcapng_negative_offset(), hostile_inputs.pcapng_damaged_shb_after_records(),
                 hostile_inputs.pcapng_short_last_block(6, 12), hostile_inputs.pcapng_short_last_block(3, 12)):
        _write(outdir / "pcapng", b"\x00" + seed)
        _write(outdir / "pcapng", b"\x01" + seed[28 + 20:])  # the packet blocks behind the harness's header
    return {folder.name: len(list(folder.iterdir())) for folder in sorted(outdir.iterdir()) if folder.is_dir()}


def raw_view(raw: bytes, analysis) -> bytes:
    # Single-file captures: source 0 is the file itself.
    return raw


def _resync_seeds() -> list[bytes]:
    """Token sequences for ``harnesses.resync_stream``: storms of releases and bad headers."""
    storm = b"\x00\x00\x01\x09" * 300
    mixed = b"".join(bytes([op, size]) for op, size in [(2, 10), (1, 3), (0, 0), (5, 1), (4, 2), (3, 4)]) + b"abcd"
    return [bytes([3, 255]) + storm, bytes([1, 5]) + mixed * 20, bytes([2, 255]) + mixed + storm[:400],
            bytes([0, 200]) + b"\x02\xff" * 50]


def _reassembly_seeds() -> list[bytes]:
    def op(kind: int, delta: int, length: int, extra: int = 0) -> bytes:
        return struct.pack("!BhHB", kind, delta, length, extra)

    head = bytes([7]) + struct.pack("!I", 0xFFFFF000)  # near the wrap-around
    in_order = op(5, 0, 0) + b"".join(op(0, 0, 100) for _ in range(20)) + op(6, 0, 0)
    reordered = op(5, 0, 0) + op(1, 100, 100) + op(1, 200, 50) + op(0, 0, 100) + op(0, 150, 10)
    lost = op(0, 0, 100) + op(1, 500, 100) + op(4, 700, 0) + b"".join(op(2, 900 + 10 * i, 10) for i in range(40))
    overlap = op(0, 0, 100) + op(1, -50, 200) + op(1, 20, 30) + op(7, 0, 64, 1) + op(0, 0, 10)
    return [head + in_order, head + reordered, head + lost, head + overlap, bytes([0]) + b"\0\0\0\0" + lost]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus"
    print(build(target))
