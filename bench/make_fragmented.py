"""Make a capture's shapes for benchmarking IP fragments and SPAN copies of them (issue 25).

    python bench/make_fragmented.py IN.pcap OUT.pcap [--size 600] [--doubled]

IN is an Ethernet/IPv4 pcap (``bench/make_capture.py`` writes one).  Every IPv4 TCP frame whose IP
payload is larger than ``--size`` bytes becomes IP fragments of at most that many bytes (a VPN hop
with a small MTU), 5 µs apart; with ``--doubled`` every frame is recorded twice, the copy 0.05-0.9 ms
later (a mirror port).  Then ``bench/engine_bench.py --capture OUT.pcap --baseline REV`` times the
analysis of each shape in this tree and another.  Not a test; prints what it wrote.
"""

from __future__ import annotations

import argparse
import heapq
import random
import struct

import dpkt


def fragments(data: bytes, size: int, ident: int) -> list[bytes]:
    if data[12:14] != b"\x08\x00":
        return [data]
    ip = data[14:]
    header_length = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    payload = ip[header_length:total]
    if ip[9] != 6 or len(payload) <= size:
        return [data]
    size -= size % 8
    parts = []
    for start in range(0, len(payload), size):
        chunk = payload[start:start + size]
        more = start + size < len(payload)
        header = bytearray(ip[:header_length])
        struct.pack_into("!HHH", header, 2, header_length + len(chunk), ident, (0x2000 if more else 0) | start // 8)
        parts.append(data[:14] + bytes(header) + chunk)
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=600, help="largest fragment payload (bytes)")
    parser.add_argument("--doubled", action="store_true", help="every frame recorded twice (SPAN copies)")
    args = parser.parse_args(argv)
    jitter = random.Random(25)
    frames = fragmented = 0
    with open(args.input, "rb") as handle, open(args.output, "wb") as out:
        reader = dpkt.pcap.Reader(handle)
        writer = dpkt.pcap.Writer(out, linktype=reader.datalink(), nano=True)
        pending: list[tuple[float, int, bytes]] = []  # copies waiting for their time
        order = 0
        for number, (ts, data) in enumerate(reader):
            parts = fragments(bytes(data), args.size, number & 0xFFFF)
            fragmented += len(parts) > 1
            for index, part in enumerate(parts):
                when = ts + index * 0.000005
                while pending and pending[0][0] <= when:
                    copy_ts, _order, copy = heapq.heappop(pending)
                    writer.writepkt(copy, copy_ts)
                    frames += 1
                writer.writepkt(part, when)
                frames += 1
                if args.doubled:
                    order += 1
                    heapq.heappush(pending, (when + jitter.uniform(0.00005, 0.0009), order, part))
        while pending:
            copy_ts, _order, copy = heapq.heappop(pending)
            writer.writepkt(copy, copy_ts)
            frames += 1
    print(f"{args.output}: {frames} frames, {fragmented} segments fragmented"
          + (", every frame twice" if args.doubled else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
