"""Fuzz targets as plain functions: bytes in, nothing out, an exception only for a bug.

The atheris scripts beside this module (``fuzz_*.py``) call these under
coverage-guided fuzzing; ``tests/test_hostile_regressions.py`` replays every
file in ``fixtures/fuzz-regressions/`` through them without atheris.  Each
target states what must hold for *any* input:

- ``capture``: the whole pipeline (capture reader, packet parsing, reassembly,
  detection, framing, PDU/DIMSE decoding, expert rules, summary and JSON views,
  on-demand PDU and data set decoding) raises nothing but ``CaptureError``, no
  plugin hook fails (a failure would be swallowed as an expert item, but it is
  still a bug), and the summary / expert text holds no control characters.
- ``connection``: the same pipeline on a well-formed Ethernet/IPv4/TCP capture
  of one DICOM conversation whose *stream bytes* come from the fuzzer (the
  capture reader is not in the way, so mutations reach the DICOM decoders),
  through the engine's bulk path with small blocks: its ``--json`` document
  equals the reference path's, and the column-wise TCP analysis equals the loop.
- ``pdu``: the PDU/PDV framer, every PDU body decoder, the command set decoder
  and the message assembler raise at most ``DecodeError`` where documented.
- ``dataset``: ``decode_dataset`` never raises, in any transfer syntax.
- ``reassembly``: ``DirectionReassembler`` delivers the right bytes exactly
  once, contiguously, gaps and data tiling [0, end), pending bounded.
- ``resync``: the PDU framer on streams dense in valid and invalid PDU headers
  (tokens), with little stack to spare: iterative, ordered, window bounded.
- ``pcapng``: the capture reader on pcapng blocks (behind a valid section
  header or not, gzip-compressed and cut short or not): only ``CaptureError``,
  every record inside the file, finite timestamps, notes without control characters.
- ``export``: every exporter on a fuzzed conversation: no exception, files only
  inside the folder, no temporary file left, results naming only real files.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import struct
import tempfile

from dicomtui.core.pipeline import AnalysisConfig, analyze  # noqa: I001
from dicomtui.core.wire.capture import CaptureError
from dicomtui.core.base.errors import DecodeError
from dicomtui.core.base.limits import Limits
from dicomtui.cli import make_host
from dicomtui.core.wire.tcp import DirectionReassembler, Gap, seq_delta

# Small limits so that fuzzing reaches the limit paths with small inputs.
FUZZ_LIMITS = dict(max_pdu_length=1 << 20, max_control_pdu=1 << 14, max_command=1 << 10, max_pdvs_per_pdu=64,
                   max_pending_segments=32, max_dataset_bytes=1 << 20, max_inflated_bytes=1 << 16,
                   max_sequence_depth=16, max_elements=5000, max_contexts=16)
MAX_DATASETS_DECODED = 16  # per capture input: the views decode on demand, the fuzzer samples
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")

_host = None
_scratch = None


class HarnessFailure(AssertionError):
    """A property the harness checks did not hold (a bug, like an exception)."""


def preload() -> None:
    """Import every module a target reaches (the fuzz scripts call this inside atheris's
    ``instrument_imports`` block: a module first imported later is not instrumented)."""
    import importlib

    from dicomtui.cli import BUILTIN_PLUGINS

    for plugin in BUILTIN_PLUGINS:
        plugin.load()
    for name in ("dicomtui.core.views", "dicomtui.core.pipeline.rules", "dicomtui.core.base.safe_text",
                 "dicomtui.core.protocol.framing", "dicomtui.core.protocol.messages", "dicomtui.core.protocol.dimse",
                 "dicomtui.core.protocol.negotiation", "dicomtui.plugins.dataset", "dicomtui.core.wire.capture",
                 "dicomtui.core.api.export", "dicomtui.core.views.export", "dicomtui.core.base.inflate",
                 "dicomtui.core.base.library_warnings", "dicomtui.core.protocol.datasets"):
        importlib.import_module(name)
    plugin_host()


def plugin_host() -> object:
    global _host
    if _host is None:
        _host = make_host(load_installed=False)
    return _host


def _scratch_path() -> str:
    global _scratch
    if _scratch is None:
        folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        handle, _scratch = tempfile.mkstemp(prefix="dicomtui-fuzz-", suffix=".pcap", dir=folder)
        os.close(handle)
        atexit.register(_remove_scratch, _scratch)
    return _scratch


def _remove_scratch(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _check_text(where: str, text: str) -> None:
    if CONTROL.search(text):
        raise HarnessFailure(f"control character in {where}: {text!r}")


# -- the whole pipeline -----------------------------------------------------------------------


def analyse_bytes(data: bytes, limits: Limits | None = None, bulk: bool = False, fast_path: bool = True):
    """Run the pipeline on a capture held in memory; returns the Analysis or None (CaptureError).

    ``bulk``: through the engine's bulk path, in blocks of a few frames (it normally takes only
    captures of 32 MiB or more); ``fast_path=False``: the reference path.
    """
    from dicomtui.core.views import analysis_json, summary_lines

    host = plugin_host()
    failures_before = len(host.failures)
    path = _scratch_path()
    with open(path, "wb") as handle:
        handle.write(data)
    config = AnalysisConfig(limits=limits or Limits(**FUZZ_LIMITS), fast_path=fast_path,
                            bulk_min_bytes=0 if bulk else AnalysisConfig().bulk_min_bytes)
    from dicomtui.core.pipeline import bulk as bulk_path

    saved = bulk_path.FIRST_BLOCK_FRAMES, bulk_path.BLOCK_FRAMES, bulk_path.MIN_CONNECTION_FRAMES
    if bulk:
        bulk_path.FIRST_BLOCK_FRAMES, bulk_path.BLOCK_FRAMES, bulk_path.MIN_CONNECTION_FRAMES = 3, 11, 1
    try:
        analysis = analyze([path], config, host)
    except CaptureError:
        return None
    finally:
        bulk_path.FIRST_BLOCK_FRAMES, bulk_path.BLOCK_FRAMES, bulk_path.MIN_CONNECTION_FRAMES = saved
    try:
        for line in summary_lines(analysis):
            _check_text("summary line", line)
        from dicomtui.core.base.safe_text import safe_text

        for item in analysis.expert:
            _check_text("expert item", safe_text(item.message))
        json.dumps(analysis_json(analysis))
        for pdu in analysis.pdus:
            try:
                analysis.decode_pdu(pdu)
            except DecodeError:
                pass
        decoded = 0
        for message in analysis.messages:
            if message.has_dataset and message.complete and decoded < MAX_DATASETS_DECODED:
                decoded += 1
                analysis.decode_dataset(message)
        if len(host.failures) > failures_before:
            failure = host.failures[failures_before]
            del host.failures[failures_before:]
            raise HarnessFailure(f"plugin {failure.plugin} failed in {failure.where}: {failure.error}")
    finally:
        for source in analysis.sources:
            source.close()
    return analysis


def capture(data: bytes) -> None:
    analyse_bytes(data)


# -- one synthetic DICOM conversation ---------------------------------------------------------

CLIENT_IP, SERVER_IP = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
CLIENT_PORT, SERVER_PORT = 40000, 104


def _frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
           payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0,
                      0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def conversation_capture(segments: list[tuple[int, int, bytes]]) -> bytes:
    """A pcap of one TCP connection (handshake, segments, FIN) on port 104.

    ``segments`` are (direction, flags, payload): direction 0 client, 1 server;
    flag 1 = drop this segment from the capture (a gap; the peer's ACK still
    says it was sent), flag 2 = record it after the next segment (reordering),
    flag 4 = record it twice (retransmission).
    """
    seq = [1000, 50000]
    frames: list[bytes] = []
    ends = [(CLIENT_IP, SERVER_IP, CLIENT_PORT, SERVER_PORT), (SERVER_IP, CLIENT_IP, SERVER_PORT, CLIENT_PORT)]
    frames.append(_frame(*ends[0], seq[0] - 1, 0, 0x02, b""))
    frames.append(_frame(*ends[1], seq[1] - 1, seq[0], 0x12, b""))
    frames.append(_frame(*ends[0], seq[0], seq[1], 0x10, b""))
    held: bytes | None = None
    split = []
    for direction, flags, payload in segments:  # keep within IPv4's 64 KB, as TCP would
        split += [(direction, flags if start == 0 else 0, payload[start : start + 32768])
                  for start in range(0, len(payload), 32768)]
    for direction, flags, payload in split:
        frame = _frame(*ends[direction], seq[direction], seq[1 - direction], 0x18, payload)
        seq[direction] += len(payload)
        ack = _frame(*ends[1 - direction], seq[1 - direction], seq[direction], 0x10, b"")
        if not flags & 1:
            if flags & 2 and held is None:
                held = frame
                frames.append(ack)
                continue
            frames.append(frame)
            if flags & 4:
                frames.append(frame)
        if held is not None and not flags & 2:
            frames.append(held)
            held = None
        frames.append(ack)
    if held is not None:
        frames.append(held)
    frames.append(_frame(*ends[0], seq[0], seq[1], 0x11, b""))
    frames.append(_frame(*ends[1], seq[1], seq[0] + 1, 0x11, b""))
    parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for number, frame in enumerate(frames):
        parts.append(struct.pack("<IIII", 1_700_000_000 + number // 1000, (number % 1000) * 1000, len(frame),
                                 len(frame)))
        parts.append(frame)
    return b"".join(parts)


def parse_segments(data: bytes) -> list[tuple[int, int, bytes]]:
    """Fuzz bytes to segments: [control byte][2-byte length][payload] repeated.

    Control byte: bit 0 direction, bits 1-3 the flags of ``conversation_capture``
    (shifted down by one); only 1 in 8 segments is dropped so streams stay mostly whole.
    """
    segments = []
    position = 0
    while position + 3 <= len(data) and len(segments) < 512:
        control = data[position]
        length = struct.unpack_from("!H", data, position + 1)[0] % 4096
        payload = data[position + 3 : position + 3 + length]
        position += 3 + length
        if not payload:
            continue
        flags = (control >> 1) & 0x7
        if flags & 1 and (control >> 4) != 0xF:
            flags &= ~1
        segments.append((control & 1, flags, payload))
    return segments


def encode_segments(segments: list[tuple[int, int, bytes]]) -> bytes:
    """The inverse of ``parse_segments`` for seeds (no flags)."""
    out = bytearray()
    for direction, _flags, payload in segments:
        for start in range(0, len(payload), 4000):
            piece = payload[start : start + 4000]
            out += struct.pack("!BH", direction, len(piece)) + piece
    return bytes(out)


def connection(data: bytes) -> None:
    segments = parse_segments(data)
    if segments:
        from dicomtui.core.views import analysis_json

        capture_bytes = conversation_capture(segments)
        bulk = analyse_bytes(capture_bytes, bulk=True)
        reference = analyse_bytes(capture_bytes, fast_path=False)
        if (bulk is None) != (reference is None) or (
                bulk is not None and analysis_json(bulk) != analysis_json(reference)):
            raise HarnessFailure("the bulk path and the reference path disagree")
        if bulk is not None:
            _tcp_columns_agree(bulk)


def _tcp_columns_agree(analysis) -> None:
    """The column-wise TCP walk, allowed on every run of plain rows however short, equals the loop."""
    from dicomtui.core.wire import tcp_analysis

    saved = tcp_analysis.COLUMNS_MIN_ROWS, tcp_analysis.COLUMNS_MIN_RUN, tcp_analysis.COLUMNS_RETRY_ROWS
    tcp_analysis.COLUMNS_MIN_ROWS, tcp_analysis.COLUMNS_MIN_RUN, tcp_analysis.COLUMNS_RETRY_ROWS = 0, 2, 1
    try:
        for connection in analysis.connections:
            if tcp_analysis.analyse_connection(connection, vectorized=True) != \
                    tcp_analysis.analyse_connection(connection, vectorized=False):
                raise HarnessFailure("the column-wise TCP analysis and the loop disagree")
    finally:
        tcp_analysis.COLUMNS_MIN_ROWS, tcp_analysis.COLUMNS_MIN_RUN, tcp_analysis.COLUMNS_RETRY_ROWS = saved


# -- PDU framing and decoders -----------------------------------------------------------------


def pdu(data: bytes) -> None:
    from dicomtui.core.protocol import pdu as decoders
    from dicomtui.core.protocol.dimse import decode_command_set
    from dicomtui.core.protocol.messages import MessageAssembler
    from dicomtui.core.protocol.framing import FramedPdu, PduStreamParser

    if len(data) < 2:
        return
    mode, chunk = data[0], (data[1] % 61) + 1
    body = data[2:]
    limits = Limits(**FUZZ_LIMITS)
    table = {1: decoders.decode_associate_rq, 2: decoders.decode_associate_ac, 3: decoders.decode_associate_rj,
             4: decoders.decode_pdata, 5: lambda b: decoders.decode_release(b, 5),
             6: lambda b: decoders.decode_release(b, 6), 7: decoders.decode_abort}
    # Every body decoder on the raw bytes.
    for decoder in table.values():
        try:
            decoder(body)
        except DecodeError:
            pass
    try:
        decode_command_set(body)
    except DecodeError:
        pass
    # The framer on the bytes as a stream, in chunks, with a gap now and then.
    parser = PduStreamParser(limits, start_in_resync=bool(mode & 1))
    assembler = MessageAssembler(0, limits.max_command)
    events = []
    position = 0
    gap_every = (mode >> 1) & 7
    pieces = 0
    while position < len(body):
        piece = body[position : position + chunk]
        pieces += 1
        if gap_every and pieces % (gap_every + 3) == 0:
            events += parser.gap(Gap(parser.position, len(piece), 0, "fuzz"))
        else:
            events += parser.feed(parser.position, piece)
        position += len(piece)
    events += parser.finish()
    pdu_index = 0
    for event in events:
        if not isinstance(event, FramedPdu):
            continue
        pdu_index += 1
        if event.body is not None:
            if event.pdu_type not in table:
                raise HarnessFailure(f"framer produced a body for PDU type {event.pdu_type}")
            try:
                table[event.pdu_type](event.body)
            except DecodeError:
                pass
        for number, pdv in enumerate(event.pdvs):
            command = event.commands.get(number)
            if command is not None:
                if len(command) > limits.max_command:
                    raise HarnessFailure("command PDV held beyond max_command")
                try:
                    decode_command_set(command)
                except DecodeError:
                    pass
            assembler.add_pdv(pdv, command, pdu_index, 0, 0, (1, 1, 0.0, 0.0), event.complete)
        if len(event.pdvs) > limits.max_pdvs_per_pdu:
            raise HarnessFailure("more PDVs kept than max_pdvs_per_pdu")
        if len(parser.buffer) > max(limits.max_control_pdu, limits.max_command, 1 << 16) + 12:
            raise HarnessFailure(f"framer buffer grew to {len(parser.buffer)} bytes")
    assembler.finish()


# -- data sets --------------------------------------------------------------------------------

SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "",
            "1.2.3.4.5", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5")


def dataset(data: bytes) -> None:
    from dicomtui.plugins.dataset import decode_dataset

    if not data:
        return
    syntax = SYNTAXES[data[0] % len(SYNTAXES)]
    payload = data[1:]
    if syntax == "1.2.840.10008.1.2.1.99" and data[0] & 0x80:
        import zlib

        compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        payload = compressor.compress(payload) + compressor.flush()
    decoded = decode_dataset(payload, syntax, Limits(**FUZZ_LIMITS))
    stack = [decoded.tree]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        _check_text("data set tree value", node.value)
        stack.extend(node.children)
    if count > FUZZ_LIMITS["max_elements"] * 3 + 10:
        raise HarnessFailure(f"tree of {count} nodes beyond max_elements")


# -- TCP reassembly ---------------------------------------------------------------------------


class _CheckingSink:
    """Checks each delivery against the expected byte pattern and contiguity."""

    def __init__(self, file: bytearray, isn: list) -> None:
        self.file = file
        self.isn = isn  # [sequence number of stream offset 0] once known
        self.end = 0
        self.data_bytes = 0
        self.gap_bytes = 0

    def on_data(self, stream_offset, source, file_offset, length, frame, ts) -> None:
        if stream_offset != self.end:
            raise HarnessFailure(f"data at {stream_offset}, expected {self.end} (overlap or hole)")
        if length <= 0:
            raise HarnessFailure(f"empty delivery at {stream_offset}")
        got = bytes(self.file[file_offset : file_offset + length])
        if got != _expected((self.isn[0] + stream_offset) & 0xFFFFFFFF, length):
            raise HarnessFailure(f"wrong bytes delivered at stream offset {stream_offset}")
        self.end += length
        self.data_bytes += length

    def on_gap(self, gap: Gap) -> None:
        if gap.stream_offset != self.end or gap.length <= 0:
            raise HarnessFailure(f"gap {gap} does not start at {self.end}")
        self.end += gap.length
        self.gap_bytes += gap.length


_CYCLE = 251
_TABLE = bytes(i % _CYCLE for i in range(_CYCLE + 70000))


def _expected(seq: int, length: int) -> bytes:
    """The bytes a segment starting at sequence number ``seq`` carries: seq mod 251, wrapping at 2**32."""
    first = min(length, (1 << 32) - seq)
    parts = []
    while length:
        start = seq % _CYCLE
        parts.append(_TABLE[start : start + first])
        length -= first
        seq = 0
        first = length
    return b"".join(parts)


def reassembly(data: bytes) -> None:
    """Operations from bytes: each 6-byte record is [op][seq delta:2][length:2][extra]."""
    if len(data) < 5:
        return
    max_pending = (data[0] % 16) + 1
    isn = struct.unpack_from("!I", data, 1)[0]
    file = bytearray()
    base: list = [None]
    sink = _CheckingSink(file, base)
    reassembler = DirectionReassembler(sink, max_pending)
    cursor = isn
    position = 5
    frame = 0
    while position + 6 <= len(data):
        op, delta, length, extra = struct.unpack_from("!BhHB", data, position)
        position += 6
        frame += 1
        kind = op % 8
        if kind <= 3:  # a segment somewhere near the cursor (a few bytes back or ahead)
            seq = (cursor + delta) & 0xFFFFFFFF
            length = length % 3000
            if length == 0:
                continue
            if base[0] is None and not reassembler.started:
                base[0] = seq
            offset = len(file)
            file += _expected(seq, length)
            reassembler.segment(seq, 0, offset, length, frame, float(frame))
            if kind == 0:
                cursor = (seq + length) & 0xFFFFFFFF
        elif kind == 4:  # the peer acknowledges something
            reassembler.acknowledged((cursor + delta) & 0xFFFFFFFF, frame, float(frame))
        elif kind == 5 and not reassembler.started:
            seq = (cursor + delta) & 0xFFFFFFFF
            reassembler.syn(seq)
            base[0] = (seq + 1) & 0xFFFFFFFF
            cursor = base[0]
        elif kind == 6:
            reassembler.fin((cursor + delta) & 0xFFFFFFFF)
        elif kind == 7 and extra & 1 and reassembler.started:
            reassembler.missing(length % 3000, frame, "fuzz")
        if len(reassembler.pending) > max_pending:
            raise HarnessFailure(f"{len(reassembler.pending)} pending segments, limit {max_pending}")
        if reassembler.started and sink.end != reassembler.next_offset:
            raise HarnessFailure(f"sink at {sink.end}, reassembler at {reassembler.next_offset}")
        if reassembler.started and base[0] is not None and \
                seq_delta(reassembler.next_seq, (base[0] + reassembler.next_offset) & 0xFFFFFFFF) != 0:
            raise HarnessFailure("next_seq and next_offset disagree")
    reassembler.finish(frame + 1)
    if reassembler.pending:
        raise HarnessFailure("segments still pending after finish")
    if sink.data_bytes + sink.gap_bytes != sink.end or sink.end != reassembler.next_offset:
        raise HarnessFailure("data and gaps do not tile the stream")
    if sink.data_bytes != reassembler.bytes_delivered:
        raise HarnessFailure("bytes_delivered disagrees with what was delivered")


# -- the framer's resynchronisation ------------------------------------------------------------

_RELEASE_RQ = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"


def resync_stream(data: bytes) -> bytes:
    """Tokens to a stream dense in plausible and implausible PDU headers.

    Each token is [op][n]: 0 an A-RELEASE-RQ, 1 an invalid 6-byte header (type 0x08-0xff,
    or a length over the limit), 2 a P-DATA-TF with one PDV of n bytes, 3 n raw bytes of
    the input, 4 an A-ABORT, 5 a P-DATA-TF header whose PDV header disagrees with it.
    """
    out = bytearray()
    position = 0
    while position + 2 <= len(data) and len(out) < 1 << 18:
        op, size = data[position] % 6, data[position + 1]
        position += 2
        if op == 0:
            out += _RELEASE_RQ
        elif op == 1:
            out += bytes([8 + size % 248, 0]) + struct.pack("!I", 0xFFFFFFF0 if size & 1 else 4)
        elif op == 2:
            out += struct.pack("!BBIIBB", 4, 0, size + 6, size + 2, 1, size & 3) + bytes(size)
        elif op == 3:
            out += data[position : position + size]
            position += size
        elif op == 4:
            out += b"\x07\x00\x00\x00\x00\x04\x00\x00" + bytes([size % 3, size % 7])
        else:
            out += struct.pack("!BBIIBB", 4, 0, 20, 400 + size, 2, 9)
    return bytes(out)


def resync(data: bytes) -> None:
    """The framer on a stream of many PDU headers, valid or not, after a gap; iterative and bounded.

    Runs with little stack to spare, so resynchronisation that recursed per bad header
    would fail here.  Checks that PDUs come out in stream order, inside the stream, and
    that the resynchronisation window stays bounded.
    """
    import sys

    from dicomtui.core.protocol.framing import RESYNC_WINDOW, FramedPdu, PduStreamParser, StreamProblem

    if len(data) < 2:
        return
    mode, chunk = data[0], 1 + data[1] * 37
    stream = resync_stream(data[2:])
    parser = PduStreamParser(Limits(**FUZZ_LIMITS), start_in_resync=bool(mode & 1))
    events = []
    depth = len(__import__("inspect").stack(0))
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 60)
    try:
        position = 0
        if mode & 2:  # a gap first, as after a lost segment
            events += parser.gap(Gap(0, 100, 0, "fuzz"))
            position = 100
        for start in range(0, len(stream), chunk):
            events += parser.feed(position + start, stream[start : start + chunk])
            if len(parser.buffer) > RESYNC_WINDOW + max(FUZZ_LIMITS["max_control_pdu"], 12):
                raise HarnessFailure(f"framer buffer grew to {len(parser.buffer)} bytes")
        events += parser.finish()
    finally:
        sys.setrecursionlimit(saved)
    end = position + len(stream)
    last = -1
    for event in events:
        if isinstance(event, FramedPdu):
            if event.stream_offset < last or not 0 <= event.stream_offset < end:
                raise HarnessFailure(f"PDU at {event.stream_offset} out of order or outside [0, {end})")
            last = event.stream_offset
        elif not isinstance(event, StreamProblem):
            raise HarnessFailure(f"unexpected event {event!r}")


# -- pcapng blocks -------------------------------------------------------------------------------


def pcapng(data: bytes) -> None:
    """The capture reader on pcapng bytes: only CaptureError, every record inside the file.

    Input: [mode][blocks...]; mode bit 0 puts a valid section header and interface block in
    front (so mutations reach the packet blocks), bit 1 gzip-compresses the whole and cuts
    it short (the spooling path and its damaged-tail handling).
    """
    import gzip
    import math

    from dicomtui.core.wire.capture import CaptureSource, iter_records, open_source

    if not data:
        return
    mode, body = data[0], data[1:]
    if mode & 1:
        shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
        idb = struct.pack("<IIHHI", 1, 20, 1, 0, 262144) + struct.pack("<I", 20)
        body = shb + idb + body
    if mode & 2:
        path = _scratch_path()
        packed = gzip.compress(body, compresslevel=1)
        with open(path, "wb") as handle:
            handle.write(packed[: max(10, len(packed) * (1 + mode % 8) // 8)])
        try:
            source = open_source(path, 1 << 20)
        except CaptureError:
            return
    else:
        source = CaptureSource("fuzz.pcapng", body)
    try:
        size = len(source.data)
        for record in iter_records(source):
            if record.caplen < 0 or record.offset < 0 or record.offset + record.caplen > size:
                raise HarnessFailure(f"record outside the file: offset {record.offset}, caplen {record.caplen}")
            if not math.isfinite(record.timestamp):
                raise HarnessFailure(f"timestamp {record.timestamp}")
    except CaptureError:
        pass
    finally:
        source.close()
    for note in source.notes:
        _check_text("capture note", note.message)


# -- exporters ----------------------------------------------------------------------------------


def export(data: bytes) -> None:
    """Every exporter on one fuzzed conversation (the ``connection`` target's input format).

    Each must return a result (a failure of one file is an error in it, never an exception),
    write only inside its folder, leave no temporary file, and name in the result only files
    that exist; a Part 10 file starts with the preamble and DICM.
    """
    import shutil

    from dicomtui.core.api.export import ExportOptions
    from dicomtui.core.views.export import exporters

    segments = parse_segments(data)
    if not segments:
        return
    analysis = analyse_bytes(conversation_capture(segments))
    if analysis is None:
        return
    base = tempfile.mkdtemp(prefix="dicomtui-fuzz-export-", dir=os.path.dirname(_scratch_path()))
    try:
        # analyse_bytes closed the capture; export reads it again.
        from dicomtui.core.wire.capture import open_source

        analysis.sources = [open_source(_scratch_path())]
        analysis.buffers = [source.data for source in analysis.sources]
        analysis.views = [memoryview(buffer) for buffer in analysis.buffers]
        options = ExportOptions(include_commands=True, include_incomplete=bool(data[0] & 0x10))
        for name, exporter in sorted(exporters(plugin_host()).items()):
            folder = os.path.join(base, name)
            result = exporter.export(analysis, folder, options, None)
            present = set(os.listdir(folder)) if os.path.isdir(folder) else set()
            if any(entry.startswith(".") for entry in present):
                raise HarnessFailure(f"{name} left a temporary file: {sorted(present)}")
            for path, _index in result.written + result.partial:
                if os.path.dirname(path) != os.path.realpath(folder) or os.path.basename(path) not in present:
                    raise HarnessFailure(f"{name} reported {path}, which is not in its folder")
                if name == "part10" and path.endswith(".dcm"):
                    with open(path, "rb") as handle:
                        if handle.read(132)[128:] != b"DICM":
                            raise HarnessFailure(f"{path} has no Part 10 preamble")
            if result.errors and result.complete:
                raise HarnessFailure(f"{name}: errors but complete")
    finally:
        for source in analysis.sources:
            source.close()
        shutil.rmtree(base, ignore_errors=True)


TARGETS = {
    "capture": capture,
    "connection": connection,
    "pdu": pdu,
    "dataset": dataset,
    "reassembly": reassembly,
    "resync": resync,
    "pcapng": pcapng,
    "export": export,
}
