"""The engine's fast path against the reference path: the same analysis, byte for byte.

The fast path (``AnalysisConfig.fast_path``, on by default) walks a pcap's
records itself, handles in-order segments of known connections inline and lets
the PDU framer skip the inside of data set fragments.  The reference path sends
every frame through ``CaptureEngine.frame`` and every segment to the decoder.
Both must produce the same model: connections and their chunk maps and gaps,
every segment's timing record row (issue 12), PDUs with their PDVs, messages
with their data set fragments, findings.

Inputs: every pcap fixture (real recordings), those fixtures with segments
reordered, duplicated, overlapped and dropped by hypothesis, and messy
generated transfers (``bench/make_capture.py --messy``) with small PDUs so PDU
boundaries fall everywhere.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
from pathlib import Path

import dpkt
import pytest
from capture_tools import load_make_capture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomtui.cli import make_host
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.views import analysis_json

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PCAP_FIXTURES = sorted(path.name for path in FIXTURES.glob("*.pcap"))
HOST = make_host()



make_capture = load_make_capture()


def fingerprint(analysis) -> dict:
    """Everything the model holds, in plain values (bytes of data sets as digests)."""
    document = analysis_json(analysis)
    document["streams"] = [
        [(list(chunks.stream_offsets), list(chunks.file_offsets), list(chunks.lengths), list(chunks.frames),
          list(chunks.sources), list(chunks.timestamps), chunks.end) for chunks in connection.streams]
        for connection in analysis.connections
    ]
    document["segment_records"] = [
        (bytes(connection.segments.data), connection.segments.swap, connection.segments.truncated,
         connection.segments.syn_options) if connection.segments is not None else None
        for connection in analysis.connections
    ]
    document["pdvs"] = [pdu.pdvs for pdu in analysis.pdus]
    document["columns"] = [(pdu.stream_offset, pdu.first_frame, pdu.last_frame, pdu.timestamp, pdu.kind)
                           for pdu in analysis.pdus]
    document["datasets"] = []
    for message in analysis.messages:
        data = analysis.dataset_bytes(message) if message.has_dataset else None
        document["datasets"].append((message.dataset_fragments, message.first_pdu, message.last_pdu,
                                     hashlib.sha256(data).hexdigest() if data is not None else None))
    return document


BLOCK_SIZES = {"default": None, "small": (3, 17, 1), "medium": (64, 512, 8)}  # first, largest, per connection


def _paths(path: Path, small_blocks: bool | str = False) -> list[dict]:
    """Fingerprints of the bulk path, the per-frame fast path and the reference path.

    ``small_blocks``: True or "small" makes every block edge fall inside a PDU, a handshake
    or a retransmission; "medium" lets connections go inactive and active again inside a block.
    """
    from dicomtui.core.pipeline import bulk

    configs = [AnalysisConfig(bulk_min_bytes=0), AnalysisConfig(bulk_min_bytes=1 << 62),
               AnalysisConfig(fast_path=False)]
    results = []
    for config in configs:
        saved = bulk.FIRST_BLOCK_FRAMES, bulk.BLOCK_FRAMES, bulk.MIN_CONNECTION_FRAMES
        sizes = BLOCK_SIZES["small" if small_blocks is True else (small_blocks or "default")]
        if sizes is not None:
            bulk.FIRST_BLOCK_FRAMES, bulk.BLOCK_FRAMES, bulk.MIN_CONNECTION_FRAMES = sizes
        try:
            analysis = analyze([str(path)], config, HOST)
        finally:
            bulk.FIRST_BLOCK_FRAMES, bulk.BLOCK_FRAMES, bulk.MIN_CONNECTION_FRAMES = saved
        try:
            results.append(fingerprint(analysis))
        finally:
            for source in analysis.sources:
                source.close()
    return results


def both_paths(path: Path, small_blocks: bool | str = False) -> tuple[dict, dict]:
    """(fast, reference) fingerprints, after checking the bulk and per-frame fast paths agree."""
    bulk, per_frame, reference = _paths(path, small_blocks)
    assert bulk == per_frame, "the bulk path differs from the per-frame fast path"
    return per_frame, reference


@pytest.mark.parametrize("name", PCAP_FIXTURES)
def test_fast_path_equals_reference_on_every_pcap_fixture(name):
    fast, reference = both_paths(FIXTURES / name)
    assert fast == reference
    fast, reference = both_paths(FIXTURES / name, small_blocks=True)
    assert fast == reference


def test_fast_path_is_taken_and_skips_the_framer(tmp_path, monkeypatch):
    """The check above is only worth something if the fast path runs: count the framer's calls."""
    capture = tmp_path / "transfer.pcap"
    with open(capture, "wb") as out:
        make_capture.generate(out, 1.0, 64, 3, 1, 16384, 1448)
    from dicomtui.core.protocol.framing import PduStreamParser

    calls = {"feed": 0, "skip": 0}
    feed, skip = PduStreamParser.feed, PduStreamParser.skip

    def counting_feed(self, *args):
        calls["feed"] += 1
        return feed(self, *args)

    def counting_skip(self, *args):
        calls["skip"] += 1
        return skip(self, *args)

    monkeypatch.setattr(PduStreamParser, "feed", counting_feed)
    monkeypatch.setattr(PduStreamParser, "skip", counting_skip)
    analysis = analyze([str(capture)], AnalysisConfig(), HOST)
    segments = sum(len(stream.lengths) for connection in analysis.connections for stream in connection.streams)
    assert calls["skip"] > 0
    # About one feed per PDU (16 KiB PDUs in 1448-byte segments), not one per segment.
    assert calls["feed"] < segments / 4


# -- messy versions of real recordings -------------------------------------------------------


def _frames(path: Path) -> tuple[list[tuple[float, bytes]], int]:
    with open(path, "rb") as handle:
        reader = dpkt.pcap.Reader(handle)
        return [(ts, bytes(buf)) for ts, buf in reader], reader.datalink()


def _write(frames: list[tuple[float, bytes]], link_type: int) -> bytes:
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, linktype=link_type)
    for ts, buf in frames:
        writer.writepkt(buf, ts)
    return out.getvalue()


def _payload_frames(frames: list[tuple[float, bytes]]) -> list[int]:
    """Indexes of Ethernet/IPv4/TCP frames that carry payload."""
    found = []
    for index, (_ts, buf) in enumerate(frames):
        eth = dpkt.ethernet.Ethernet(buf)
        if isinstance(eth.data, dpkt.ip.IP) and isinstance(eth.data.data, dpkt.tcp.TCP) and eth.data.data.data:
            found.append(index)
    return found


def _split(buf: bytes, at: int) -> tuple[bytes, bytes] | None:
    """Two frames carrying the first ``at`` and the rest of a frame's TCP payload."""
    eth = dpkt.ethernet.Ethernet(buf)
    ip, tcp = eth.data, eth.data.data
    payload = bytes(tcp.data)
    if not 0 < at < len(payload):
        return None
    parts = []
    for seq, piece in ((tcp.seq, payload[:at]), ((tcp.seq + at) & 0xFFFFFFFF, payload[at:])):
        new_tcp = dpkt.tcp.TCP(bytes(tcp))
        new_tcp.seq, new_tcp.data, new_tcp.sum = seq, piece, 0
        new_ip = dpkt.ip.IP(bytes(ip))
        new_ip.data, new_ip.len, new_ip.sum = new_tcp, 0, 0
        new_ip.len = len(new_ip)
        eth.data = new_ip
        parts.append(bytes(eth))
    return parts[0], parts[1]


def messy_copy(frames: list[tuple[float, bytes]], seed: int, rate: float) -> list[tuple[float, bytes]]:
    """The frames with payload frames delayed, duplicated, split, and (rarely) dropped."""
    rng = random.Random(seed)
    payload = set(_payload_frames(frames))
    keyed = []
    for index, (ts, buf) in enumerate(frames):
        position = float(index)
        if index in payload and rng.random() < rate:
            choice = rng.random()
            if choice < 0.4:
                position += rng.randint(1, 12) + 0.5  # reordered
            elif choice < 0.7:
                keyed.append((position + rng.randint(0, 30) + 0.25, ts, buf))  # retransmitted
            elif choice < 0.9:
                parts = _split(buf, rng.randint(1, 1400))
                if parts is not None:  # repacketized: the halves arrive swapped, the whole again later
                    keyed.append((position + 0.1, ts, parts[1]))
                    keyed.append((position + 0.2, ts, parts[0]))
                    position += rng.randint(1, 5) + 0.3
            else:
                continue  # lost to the capture
        keyed.append((position, ts, buf))
    keyed.sort(key=lambda item: item[0])
    return [(ts, buf) for _position, ts, buf in keyed]


MESSY_SOURCES = ["store_ts_pynetdicom.pcap", "store_large_segments.pcap", "qr_pynetdicom.pcap",
                 "store_testfiles_pynetdicom.pcap"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(MESSY_SOURCES), seed=st.integers(0, 2**32 - 1),
       rate=st.sampled_from([0.02, 0.1, 0.3]))
def test_fast_path_equals_reference_on_messy_real_recordings(tmp_path, name, seed, rate):
    frames, link_type = _frames(FIXTURES / name)
    capture = tmp_path / f"messy-{seed}-{rate}.pcap"
    capture.write_bytes(_write(messy_copy(frames, seed, rate), link_type))
    fast, reference = both_paths(capture, small_blocks=("default", "small", "medium")[seed % 3])
    assert fast == reference


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), rate=st.sampled_from([0.0, 0.03, 0.2]),
       max_pdu=st.sampled_from([64, 1000, 4096, 16384]), mss=st.sampled_from([100, 1448, 9000]))
def test_fast_path_equals_reference_on_generated_transfers(tmp_path, seed, rate, max_pdu, mss):
    capture = tmp_path / "transfer.pcap"
    with open(capture, "wb") as out:
        make_capture.generate(out, 0.15, 8, seed, 2, max_pdu, mss, messy=rate)
    fast, reference = both_paths(capture, small_blocks=("default", "small", "medium")[seed % 3])
    assert fast == reference
    assert fast["messages"], "the generated transfer has messages"


def test_messy_generated_capture_exports_every_object_exactly(tmp_path):
    """make_capture --messy loses nothing: the same data sets as the in-order capture."""
    digests = []
    for rate in (0.0, 0.05):
        capture = tmp_path / f"transfer-{rate}.pcap"
        with open(capture, "wb") as out:
            make_capture.generate(out, 0.3, 16, 5, 1, 4096, 1448, messy=rate)
        analysis = analyze([str(capture)], AnalysisConfig(), HOST)
        assert not any(connection.streams[0].gaps or connection.streams[1].gaps
                       for connection in analysis.connections)
        digests.append([hashlib.sha256(analysis.dataset_bytes(message)).hexdigest()
                        for message in analysis.messages if message.has_dataset])
    # The messy capture spends more bytes on frames, so its size target may hold one object less.
    assert digests[0] and len(digests[1]) >= len(digests[0]) - 1
    assert digests[1] == digests[0][: len(digests[1])]


def test_pcap_walk_stops_where_the_record_reader_stops(tmp_path):
    """A cut last record: both paths note it once and keep the frames before it."""
    data = (FIXTURES / "echo_dcmtk.pcap").read_bytes()
    capture = tmp_path / "cut.pcap"
    capture.write_bytes(data[:-7])
    fast = analyze([str(capture)], AnalysisConfig(), HOST)
    reference = analyze([str(capture)], AnalysisConfig(fast_path=False), HOST)
    assert [note.message for note in fast.notes] == [note.message for note in reference.notes]
    assert len(fast.notes) == 1
    assert fingerprint(fast) == fingerprint(reference)
    huge = bytearray(data)
    struct.pack_into("<I", huge, 24 + 8, 1 << 30)  # first record claims a gigabyte
    capture.write_bytes(bytes(huge))
    fast = analyze([str(capture)], AnalysisConfig(), HOST)
    assert fast.frame_count == 0 and len(fast.notes) == 1


# -- the bulk path (core/pipeline/bulk.py) ------------------------------------------------------


def _bulk_share(capture: Path) -> tuple[float, dict]:
    """Share of frames the bulk path took, and the analysis' fingerprint."""
    from dicomtui.core.pipeline import bulk

    counts = {}
    run = bulk.BulkRunner.run

    def counting_run(self, *args, **kwargs):
        result = run(self, *args, **kwargs)
        counts["bulk"] = self.bulk_frames
        return result

    bulk.BulkRunner.run = counting_run
    try:
        analysis = analyze([str(capture)], AnalysisConfig(bulk_min_bytes=0), HOST)
    finally:
        bulk.BulkRunner.run = run
    return counts.get("bulk", 0) / analysis.frame_count, fingerprint(analysis)


def test_bulk_path_takes_the_in_order_frames(tmp_path):
    """On an in-order transfer nearly every frame goes in bulk (else the checks above prove little)."""
    capture = tmp_path / "transfer.pcap"
    with open(capture, "wb") as out:
        make_capture.generate(out, 2.0, 64, 3, 2, 16384, 1448)
    share, fast = _bulk_share(capture)
    assert share > 0.8
    bulk, per_frame, reference = _paths(capture)
    assert bulk == per_frame == reference == fast


def _rewrite_pcap(data: bytes, endian: str, nanoseconds: bool) -> bytes:
    """The same little-endian microsecond pcap in another byte order and/or time resolution."""
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = bytearray(struct.pack(endian + "IHHiIII", magic, *struct.unpack_from("<HHiIII", data, 4)))
    offset = 24
    while offset + 16 <= len(data):
        seconds, micros, caplen, origlen = struct.unpack_from("<IIII", data, offset)
        out += struct.pack(endian + "IIII", seconds, micros * 1000 if nanoseconds else micros, caplen, origlen)
        out += data[offset + 16: offset + 16 + caplen]
        offset += 16 + caplen
    return bytes(out)


@pytest.mark.parametrize("endian,nanoseconds", [(">", False), ("<", True), (">", True)])
def test_bulk_path_reads_every_pcap_byte_order_and_resolution(tmp_path, endian, nanoseconds):
    capture = tmp_path / "rewritten.pcap"
    capture.write_bytes(_rewrite_pcap((FIXTURES / "store_large_segments.pcap").read_bytes(), endian, nanoseconds))
    fast, reference = both_paths(capture, small_blocks=True)
    assert fast == reference
    assert fast["messages"]


def test_bulk_path_stops_at_a_damaged_record_in_the_middle(tmp_path):
    """The block walk stops before a record claiming a gigabyte; the per-frame loop reports it once."""
    data = bytearray((FIXTURES / "store_large_segments.pcap").read_bytes())
    offset, records = 24, 0
    while records < 40:
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
        records += 1
    struct.pack_into("<I", data, offset + 8, 1 << 30)
    capture = tmp_path / "damaged.pcap"
    capture.write_bytes(bytes(data))
    analyses = [analyze([str(capture)], config, HOST) for config in (
        AnalysisConfig(bulk_min_bytes=0), AnalysisConfig(fast_path=False))]
    assert [analysis.frame_count for analysis in analyses] == [40, 40]
    assert [[note.message for note in analysis.notes] for analysis in analyses][0] == \
        [note.message for note in analyses[1].notes]
    assert len(analyses[0].notes) == 1
    assert fingerprint(analyses[0]) == fingerprint(analyses[1])


@pytest.mark.parametrize("tail", [b"", b"\x00" * 7, b"\xff" * 40])
def test_bulk_path_reads_a_short_last_frame(tmp_path, tail):
    """A last record shorter than the 70 bytes the block reads (a cut-short frame, an odd
    link-layer runt) is read from its own bytes, not from a window shifted back."""
    data = (FIXTURES / "store_large_segments.pcap").read_bytes()
    record = struct.pack("<IIII", 1_700_000_000, 123_456, len(tail), len(tail)) + tail
    capture = tmp_path / "short-last.pcap"
    capture.write_bytes(data + record)
    fast, reference = both_paths(capture, small_blocks=True)
    assert fast == reference


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 40))
def test_bulk_path_equals_reference_on_corrupted_bytes(tmp_path, seed, flips):
    """Random bytes overwritten anywhere (record headers, link, IP and TCP headers, payload):
    the bulk path neither raises nor disagrees with the per-frame and reference paths."""
    data = bytearray((FIXTURES / "store_large_segments.pcap").read_bytes())
    rng = random.Random(seed)
    for _ in range(flips):
        position = rng.randrange(24, len(data))
        data[position] = rng.randrange(256)
    capture = tmp_path / f"corrupt-{seed}.pcap"
    capture.write_bytes(bytes(data))
    fast, reference = both_paths(capture, small_blocks=seed % 2 == 0)
    assert fast == reference


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_bulk_path_resumes_after_reordering_and_retransmission(tmp_path, rate):
    """On a messy transfer the bulk path takes most frames: a connection goes the per-frame way
    while reassembly holds segments, and back to bulk when its state is the expected one."""
    capture = tmp_path / "messy.pcap"
    with open(capture, "wb") as out:
        make_capture.generate(out, 3.0, 64, 11, 1, 16384, 1448, messy=rate)
    share, fast = _bulk_share(capture)
    assert share > 0.6
    for sizes in ("default", "medium"):
        bulk, per_frame, reference = _paths(capture, sizes)
        assert bulk == per_frame == reference == fast if sizes == "default" else bulk == per_frame == reference


@pytest.mark.parametrize("limits", [{"max_segment_record": 50}, {"max_segment_record": 1000},
                                    {"max_connections": 2}])
def test_bulk_path_keeps_the_record_budget_and_eviction_exact(tmp_path, limits):
    """The segment-record budget and connection eviction strike at an exact frame: blocks that
    could cross them go frame by frame, so every path stops recording at the same segment."""
    from dataclasses import replace

    from dicomtui.core.base.limits import Limits

    capture = tmp_path / "two.pcap"
    with open(capture, "wb") as out:
        make_capture.generate(out, 1.0, 32, 5, 3, 4096, 1448, messy=0.02)
    results = []
    for config in (AnalysisConfig(bulk_min_bytes=0), AnalysisConfig(bulk_min_bytes=1 << 62),
                   AnalysisConfig(fast_path=False)):
        config.limits = replace(Limits(), **limits)
        results.append(fingerprint(analyze([str(capture)], config, HOST)))
    assert results[0] == results[1] == results[2]


def test_bulk_path_on_interleaved_connections(tmp_path):
    """Forty associations sending at once (their frames interleaved): the bulk path sizes its
    blocks for the connections and agrees with the other paths."""
    sequential = tmp_path / "sequential.pcap"
    with open(sequential, "wb") as out:
        make_capture.generate(out, 3.0, 32, 9, 40, 4096, 1448)
    frames, link_type = _frames(sequential)
    by_port: dict[int, list] = {}
    for ts, buf in frames:
        tcp = dpkt.ethernet.Ethernet(buf).data.data
        by_port.setdefault(tcp.sport if tcp.dport == 11112 else tcp.dport, []).append((ts, buf))
    streams = [iter(stream) for stream in by_port.values()]
    interleaved = []
    while streams:
        for stream in list(streams):
            item = next(stream, None)
            if item is None:
                streams.remove(stream)
            else:
                interleaved.append((1_700_000_000 + len(interleaved) * 1e-5, item[1]))
    capture = tmp_path / "interleaved.pcap"
    capture.write_bytes(_write(interleaved, link_type))
    for sizes in ("default", "medium"):
        bulk, per_frame, reference = _paths(capture, sizes)
        assert bulk == per_frame == reference
        assert len(bulk["messages"]) >= 80
