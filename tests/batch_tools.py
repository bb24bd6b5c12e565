"""Helpers for batch tests: cut a recorded capture into rotated files, as a ring buffer does.

The pieces are byte-exact copies of the original's records (each file starts with the
original's file header, or for pcapng its section and interface blocks), so timestamps
and frames are exactly those of the recording.  Written independently of core/capture.py.
"""

from __future__ import annotations

import gzip
import json
import random
import struct
from pathlib import Path

PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
PACKET_BLOCKS = {2, 3, 6}


def _records(data: bytes) -> tuple[list[bytes], list[bytes | tuple[int, bytes]]]:
    """(file header blocks, items): items are record bytes, or (position, block) for a pcapng
    block that is not a packet (kept so interfaces stay numbered as in the original)."""
    if data[:4] == PCAPNG_SHB:
        endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        header: list[bytes] = []
        items: list = []
        offset = 0
        while offset + 12 <= len(data):
            block_type, length = struct.unpack_from(endian + "II", data, offset)
            block = data[offset: offset + length]
            if block_type in PACKET_BLOCKS:
                items.append(block)
            elif not items:
                header.append(block)
            else:
                items.append((block_type, block))
            offset += length
        return header, items
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    offset = 24
    items = []
    while offset + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, offset + 8)[0]
        items.append(data[offset: offset + 16 + caplen])
        offset += 16 + caplen
    return [data[:24]], items


def split_capture(path: Path, out_dir: Path, cuts: list[int], prefix: str = "ring",
                  compress: set[int] = frozenset()) -> list[Path]:
    """Cut ``path`` before each record number in ``cuts`` (0-based); file i gzip'd if i in ``compress``."""
    data = Path(path).read_bytes()
    header, items = _records(data)
    packets = [i for i, item in enumerate(items) if isinstance(item, bytes)]
    bounds = [0] + [packets[c] for c in sorted(set(cuts)) if 0 < c < len(packets)] + [len(items)]
    suffix = ".pcapng" if data[:4] == PCAPNG_SHB else ".pcap"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, (start, end) in enumerate(zip(bounds, bounds[1:])):
        # Interfaces defined mid-way in the original must be defined in every later file too.
        earlier = [item[1] for item in items[:start] if isinstance(item, tuple)]
        body = [item[1] if isinstance(item, tuple) else item for item in items[start:end]]
        blob = b"".join(header + earlier + body)
        target = out_dir / f"{prefix}_{number:05d}{suffix}"
        if number in compress:
            target = target.with_name(target.name + ".gz")
            blob = gzip.compress(blob)
        target.write_bytes(blob)
        written.append(target)
    return written


def random_cuts(path: Path, pieces: int, seed: int) -> list[int]:
    """``pieces - 1`` distinct cut points at random record boundaries."""
    _header, items = _records(Path(path).read_bytes())
    count = sum(isinstance(item, bytes) for item in items)
    rng = random.Random(seed)
    return sorted(rng.sample(range(1, count), min(pieces - 1, count - 1))) if count > 1 else []


def deal_capture(path: Path, out_dir: Path, files: int, seed: int, prefix: str = "dealt") -> list[Path]:
    """Deal the records to ``files`` files at random (each keeps the original's order): files
    whose time ranges interleave, as captures of two mirror ports of the same traffic do."""
    data = Path(path).read_bytes()
    header, items = _records(data)
    rng = random.Random(seed)
    bodies: list[list[bytes]] = [[] for _ in range(files)]
    for item in items:
        if isinstance(item, tuple):
            for body in bodies:
                body.append(item[1])
        else:
            bodies[rng.randrange(files)].append(item)
    suffix = ".pcapng" if data[:4] == PCAPNG_SHB else ".pcap"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, body in enumerate(bodies):
        target = out_dir / f"{prefix}_{number:05d}{suffix}"
        target.write_bytes(b"".join(header + body))
        written.append(target)
    return written


# -- comparing a batch with the single pass (needs the batch extra: imported when used) ----------

JSON_TABLES = ("connections", "associations", "messages", "expert")
JSON_TEXT_COLUMNS = {"connections": ("layer",), "associations": ("roles", "user_identity"), "messages": ("fields",)}


def single_json(paths, capsys) -> dict:
    """``dicomtui --json -r a -r b ...``: the files read as one capture in one process."""
    from dicomtui.cli import main

    argv = ["--json"]
    for path in paths:
        argv += ["-r", str(path)]
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def read_table(outdir: Path, table: str, run: str = "*") -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    for path in sorted(outdir.glob(f"runs/{run}/{table}/date=*/*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def as_json_rows(outdir: Path, table: str, run: str = "*") -> list[dict]:
    rows = read_table(outdir, table, run)
    for row in rows:
        for column in JSON_TEXT_COLUMNS.get(table, ()):
            row[column] = json.loads(row[column]) if row[column] is not None else None
    key = "index" if table == "messages" else "id"
    if table == "expert":
        return rows  # order is the document's (written in order, one run)
    return sorted(rows, key=lambda row: row[key])


def assert_same_as_single(outdir: Path, expected: dict, run: str = "*") -> None:
    for table in JSON_TABLES:
        rows = as_json_rows(outdir, table, run)
        wanted = expected[table]
        assert len(rows) == len(wanted), table
        if table == "expert":
            rows = sorted(rows, key=lambda row: json.dumps({k: row[k] for k in wanted[0]}, sort_keys=True))
            wanted = sorted(wanted, key=lambda row: json.dumps(row, sort_keys=True))
        for got, want in zip(rows, wanted):
            assert {key: got[key] for key in want} == want, (table, want)


def batch_order(outdir: Path, run: str = "*") -> list[Path]:
    """The inputs of a run in the order the batch arranged them (``run.json``), checked to be
    time order (by first timestamp; ties are decided by content)."""
    record = json.loads(next(Path(outdir).glob(f"runs/{run}/run.json")).read_text())
    inputs = record["inputs"]
    starts = [item["first_time"] for item in inputs if item["frames"]]
    assert starts == sorted(starts), starts
    return [Path(item["path"]) for item in inputs]


def local_batch(outdir, inputs, **kwargs):
    """``run_batch`` on a threaded local cluster, quietly."""
    from dicomtui.batch.runner import Progress, run_batch
    from dicomtui.cli import make_host

    kwargs.setdefault("workers", 2)
    return run_batch(str(outdir), [str(item) for item in inputs], make_host, processes=False,
                     progress=Progress(enabled=False), say=lambda text: None, **kwargs)
