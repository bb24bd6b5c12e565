"""The hostile captures of issue 17 (and issue 18 item 4), built from their descriptions.

Each builder returns the capture's bytes; sizes are parameters so that the
tests build small instances (fast, but past the same code paths) and
``bench/hostile_probe.py`` builds the full-size ones whose time and memory are
stated in docs/fuzzing.md.  Frames are packed with ``struct`` (the large inputs
have a million frames; dpkt objects would take minutes to build), DICOM PDUs
come from pynetdicom's encoders (``hostile_tools``).
"""

from __future__ import annotations

import gzip
import struct
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_tools as tools  # noqa: E402
from fuzz.harnesses import conversation_capture  # noqa: E402

ETHERNET = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def tcp_frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
              payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return ETHERNET + ip + tcp + payload


def pcap(frames, start: int = 1_700_000_000) -> bytes:
    parts = [PCAP_HEADER]
    for number, frame in enumerate(frames):
        parts.append(struct.pack("<IIII", start + number // 1000000, number % 1000000, len(frame), len(frame)))
        parts.append(frame)
    return b"".join(parts)


def _ip(number: int) -> bytes:
    return bytes([10, (number >> 16) & 0xFF, (number >> 8) & 0xFF, number & 0xFF])


# -- 1: resynchronisation, again and again --------------------------------------------------


def resync_storm(repeats: int = 400) -> bytes:
    """After a lost segment, ``repeats`` A-RELEASE-RQs each followed by a 6-byte invalid header.

    Each release is a plausible header the framer resynchronises on; the junk
    after it sends it back into resynchronisation (it used to recurse once per repeat).
    """
    junk = b"\x09\x00\x00\x00\x00\x04"
    storm = (tools.release_rq() + junk) * repeats
    return conversation_capture([(0, 0, tools.associate_rq()), (1, 0, tools.associate_ac()),
                                 (0, 1, b"\x04\x00" + b"X" * 98), (0, 0, storm)])


# -- 2, 3, 18.4: pcapng blocks ---------------------------------------------------------------


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _shb() -> bytes:
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(options: bytes = b"") -> bytes:
    return _block(1, struct.pack("<HHI", 1, 0, 262144) + options + (struct.pack("<HH", 0, 0) if options else b""))


def _epb(frame: bytes, timestamp_units: int, interface: int = 0) -> bytes:
    padding = b"\x00" * (-len(frame) % 4)
    return _block(6, struct.pack("<IIIII", interface, timestamp_units >> 32, timestamp_units & 0xFFFFFFFF,
                                 len(frame), len(frame)) + frame + padding)


def echo_frames() -> list[bytes]:
    """The frames of one C-ECHO conversation (pynetdicom's PDUs), as Ethernet frames."""
    data = tools.conversation([tools.associate_rq(), *tools.echo_rq(), tools.release_rq()],
                              [tools.associate_ac(), None, tools.release_rp()])
    frames, offset = [], 24
    while offset < len(data):
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        frames.append(data[offset + 16 : offset + 16 + caplen])
        offset += 16 + caplen
    return frames


def pcapng_good(timestamps_us: list[int] | None = None, idb_options: bytes = b"", repeat: int = 1) -> bytes:
    frames = echo_frames() * repeat
    stamps = timestamps_us or [1_700_000_000_000_000 + index for index in range(len(frames))]
    return _shb() + _idb(idb_options) + b"".join(_epb(frame, stamp) for frame, stamp in zip(frames, stamps))


def pcapng_short_last_block(block_type: int, length: int) -> bytes:
    """Good records, then a last block of ``block_type`` whose length (12 or 16) is below its fixed part."""
    body = b"\x00" * (length - 12)
    return pcapng_good() + struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def pcapng_damaged_shb_after_records() -> bytes:
    """Good records, then a section header block with a bad byte-order magic."""
    return pcapng_good() + _block(0x0A0D0D0A, struct.pack("<IHHq", 0xDEADBEEF, 1, 0, -1))


def pcapng_far_future() -> bytes:
    """Epoch microseconds of the year ~38000 (still within 64 bits)."""
    year_38000 = int((38000 - 1970) * 365.25 * 86400) * 1_000_000
    return pcapng_good([year_38000 + index for index in range(len(echo_frames()))])


def pcapng_negative_offset() -> bytes:
    """``if_tsoffset`` of -4e9 seconds: every timestamp before 1970."""
    option = struct.pack("<HHq", 14, 8, -4_000_000_000)
    return pcapng_good(idb_options=option)


def gzip_truncated(keep: float = 0.6) -> bytes:
    whole = gzip.compress(tools.conversation([tools.associate_rq(), *tools.echo_rq(), tools.release_rq()] * 20,
                                             [tools.associate_ac(), None, tools.release_rp()] * 20))
    return whole[: int(len(whole) * keep)]


def gzip_bomb(expanded: int = 6 << 30) -> bytes:
    """A pcap header, then ``expanded`` zero bytes, gzip-compressed (about 1000:1).

    One compressed 16 MB block is repeated (after a full flush deflate blocks do
    not refer back), so a 6 GB bomb is built in a second; its trailer's CRC is
    therefore wrong, which a reader can only notice after inflating all of it.
    """
    block = 1 << 24
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = compressor.compress(PCAP_HEADER) + compressor.flush(zlib.Z_FULL_FLUSH)
    chunk = compressor.compress(b"\x00" * block) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    return head + chunk * max(1, expanded // block) + tail


# -- 4: a command with a very long UID --------------------------------------------------------


def long_uid_store(uid_length: int = 70_000) -> bytes:
    instance = ("1." * (uid_length // 2))[:uid_length].rstrip(".") + "1"
    dataset = tools.implicit_dataset(PatientName="LONG^UID")
    return tools.conversation([tools.associate_rq(contexts=[(1, tools.CT_IMAGE, [tools.IMPLICIT_LE])]),
                               *tools.store_rq(dataset, instance=instance)],
                              [tools.associate_ac(contexts=[(1, tools.CT_IMAGE, [tools.IMPLICIT_LE])])])


def two_stores() -> bytes:
    """Two small C-STOREs (two objects to export)."""
    contexts = [(1, tools.CT_IMAGE, [tools.IMPLICIT_LE])]
    first = tools.store_rq(tools.implicit_dataset(PatientName="ONE"), instance="1.2.3.1", message_id=1)
    second = tools.store_rq(tools.implicit_dataset(PatientName="TWO"), instance="1.2.3.2", message_id=2)
    return tools.conversation([tools.associate_rq(contexts=contexts), *first, *second],
                              [tools.associate_ac(contexts=contexts)])


def large_store(size: int = 64 << 20) -> bytes:
    contexts = [(1, tools.CT_IMAGE, [tools.IMPLICIT_LE])]
    dataset = tools.implicit_dataset(PatientName="BIG") + struct.pack("<HHI", 0x7FE0, 0x0010, size) + \
        b"\x00" * size
    return tools.conversation([tools.associate_rq(contexts=contexts), *tools.store_rq(dataset)],
                              [tools.associate_ac(contexts=contexts)])


def invalid_ui_store() -> bytes:
    """A C-STORE whose data set has a UI value pydicom warns about."""
    contexts = [(1, tools.CT_IMAGE, [tools.IMPLICIT_LE])]
    dataset = tools.implicit_dataset(PatientName="WARN") + struct.pack("<HHI", 0x0020, 0x000D, 10) + b"1.2.abc.4 "
    return tools.conversation([tools.associate_rq(contexts=contexts), *tools.store_rq(dataset)],
                              [tools.associate_ac(contexts=contexts)])


# -- 6: deflate bombs -------------------------------------------------------------------------


def deflate_bomb_dataset(expanded: int) -> bytes:
    """Raw-deflated explicit VR LE: one small element, then ``expanded`` bytes of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 4) + b"BOMB"
    out = [compressor.compress(head)]
    block = b"\x00" * (1 << 22)
    for _ in range(expanded // len(block)):
        out.append(compressor.compress(block))
    out.append(compressor.flush())
    return b"".join(out)


def deflate_bombs(count: int = 1, expanded: int = 1 << 30) -> bytes:
    contexts = [(1, tools.CT_IMAGE, [tools.DEFLATED_LE])]
    bomb = deflate_bomb_dataset(expanded)
    client = [tools.associate_rq(contexts=contexts)]
    for number in range(count):
        client += tools.store_rq(bomb, instance=f"1.2.3.{number + 1}", message_id=number + 1)
    return tools.conversation(client, [tools.associate_ac(contexts=contexts)])


# -- 7, 8, 9, 11: many things -----------------------------------------------------------------


def associate_flood(connections: int = 200_000) -> bytes:
    """``connections`` connections, each one frame: a SYN carrying an A-ASSOCIATE-RQ."""
    request = tools.associate_rq()
    server = bytes([10, 99, 0, 1])
    frames = (tcp_frame(_ip(number // 60000 + 1), server, 1024 + number % 60000, 104, 1000, 0, 0x02, request)
              for number in range(connections))
    return pcap(frames)


def tiny_pdus(count: int = 1_000_000, per_segment: int = 1000) -> bytes:
    """One association, then ``count`` 12-byte P-DATA-TF PDUs (one empty data PDV each)."""
    contexts = [(1, tools.CT_IMAGE, [tools.IMPLICIT_LE])]
    tiny = struct.pack("!BBIIBB", 4, 0, 6, 2, 1, 0)
    client_ip, server_ip = _ip(1), _ip(2)
    frames = []
    seq = [1000, 50000]

    def send(direction: int, payload: bytes) -> None:
        ends = ((client_ip, server_ip, 40000, 104), (server_ip, client_ip, 104, 40000))[direction]
        frames.append(tcp_frame(*ends, seq[direction], seq[1 - direction], 0x18, payload))
        seq[direction] += len(payload)

    send(0, tools.associate_rq(contexts=contexts))
    send(1, tools.associate_ac(contexts=contexts))
    remaining = count
    while remaining:
        batch = min(per_segment, remaining)
        send(0, tiny * batch)
        remaining -= batch
    return pcap(frames)


def almost_dicom(connections: int = 1, segments: int = 4096) -> bytes:
    """Connections on non-DICOM ports whose one direction sends 1-byte segments that begin like a PDU.

    Detection waits for 4096 bytes (or 12 from each side); it used to rebuild
    its view of the first bytes from every held segment on each new one.
    """
    frames = []
    prefix = b"\x01\x00\x00\x00\x00\x44"
    for number in range(connections):
        client, server = _ip(2 * number + 1), _ip(2 * number + 2)
        sport, dport = 40000 + number, 5000 + number
        payload = (prefix + b"A" * segments)[:segments]
        for index in range(segments):
            frames.append(tcp_frame(client, server, sport, dport, 1000 + index, 0, 0x18, payload[index:index + 1]))
    return pcap(frames)


def out_of_order_holes(count: int = 200_000) -> bytes:
    """One DICOM connection whose client sends ``count`` 1-byte segments, each leaving a 1-byte hole."""
    client_ip, server_ip = _ip(1), _ip(2)
    request = tools.associate_rq()
    frames = [tcp_frame(client_ip, server_ip, 40000, 104, 999, 0, 0x02, b""),
              tcp_frame(client_ip, server_ip, 40000, 104, 1000, 0, 0x18, request)]
    base = 1000 + len(request) + 10
    frames += [tcp_frame(client_ip, server_ip, 40000, 104, base + 2 * index + 1, 0, 0x18, b"\x04")
               for index in range(count)]
    return pcap(frames)
