"""The split: index every input file in parallel, then decode each flow group in parallel.

A flow is a TCP port pair (both directions, every connection that reuses it).  The
per-frame engine keeps state per flow and nothing across flows, so decoding the
frames of a set of flows, numbered as in the whole capture, gives exactly what the
single pass gives for those flows.  What is global is put back by ``merge``:

1. ``index_file`` (one task per input file): reads the record headers, parses the
   TCP header of each frame, assigns it to flow group ``crc32(port pair) % groups``
   and returns, per group, the frames' positions and file offsets (about 40 bytes a
   frame, the "shuffle"), plus the file's ordering keys.  TCP fragments of IP datagrams
   are kept apart (their group is the first fragment's, which may be in another file:
   ``fragments.plan_fragments``), and so are the positions of frames without a time of
   their own (pcapng simple packet blocks: the merge numbers them).
2. ``frame_numbers``: the single pass reads several files in ``heapq.merge`` order
   (by timestamp, ties by file order, a file's own order kept).  For inputs whose
   timestamps are not sorted that order is the stable sort by (running maximum of
   the timestamp within the file, file index, position); so a frame's number is its
   position plus the count of frames of earlier-sorting files, found by bisection in
   the files whose time ranges overlap its own (ring-buffer files do not overlap:
   a constant offset).
3. ``decode_group`` (one task per group): runs ``CaptureEngine`` over the group's
   frames in that order with those numbers, and records when (at which frame) each
   connection, association, PDU, message and finding was created, so that ``merge``
   can number them as the single pass would have.

Everything here is plain functions over files: no Dask (``runner`` schedules them).
"""

from __future__ import annotations

import itertools
import mmap
import os
import pickle
import socket
import zlib
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from dicomtui.core.model.analysis import Analysis, AnalysisConfig
from dicomtui.core.pipeline.engine import CaptureEngine
from dicomtui.core.wire.capture import CaptureError, CaptureSource, iter_record_tuples, open_source
from dicomtui.core.wire.capture_format import UntimedTime
from dicomtui.core.wire.packet import SUPPORTED_LINK_TYPES, locate_fragment_at, parse_tcp_at
from dicomtui.core.wire.undecoded import link_type_name

from .clock import deep_runs
from .fast_index import index_columns
from .fragments import TCP, FragmentPart, datagram_key, first_fragment_group


def _portable_state(transform):
    """What a stream transform leaves for views and rules after a group (no keys, no ciphers):
    its ``snapshot()`` (core/wire/transform.py), or None."""
    snapshot = getattr(transform, "snapshot", None)
    try:
        return snapshot() if snapshot is not None else None
    except Exception:  # a plugin's snapshot must not stop the batch: its views lose the detail
        return None


def portable_connection(connection) -> None:
    """A connection a stream transform produced, made picklable: its inner bytes as bytes (they
    are not in the capture file), its transform state as the transform's snapshot."""
    if connection.transform_state is not None:
        connection.transform_state = _portable_state(connection.transform_state)
    for chunks in connection.streams:
        if chunks.store is not None:
            chunks.store = [bytes(piece) for piece in chunks.store]


def portable_transformed(item):
    from dataclasses import replace

    return replace(item, transform=_portable_state(item.transform))

FINISH = 1 << 62  # creation "frame" of what is added while closing connections at the end


@dataclass(slots=True)
class FileSummary:
    """What the driver needs of one indexed input (small: it travels to the client)."""

    index: int
    name: str  # the path as given (the capture's source name)
    read_path: str  # where the capture bytes are (an inflated copy for gzip input)
    frames: int = 0
    first_key: float = 0.0  # ordering keys (running maximum timestamp) of the first and last frame
    last_key: float = 0.0
    first_ts: float | None = None
    last_ts: float | None = None
    notes: list[str] = field(default_factory=list)
    # frames of a link type or encapsulation not taken off (core/wire/undecoded.py): kind -> (first position, frames)
    undecoded: dict[str, tuple[int, int]] = field(default_factory=dict)
    size: int = 0
    clock_runs: int = 0  # runs of frames where the clock may have stepped back (``clock.deep_runs``)
    fragments: int = 0  # TCP fragments of IP datagrams (``fragments.FragmentPart``)
    untimed: int = 0  # frames without a time of their own (pcapng simple packet blocks)


@dataclass(slots=True)
class GroupPart:
    """One file's frames of one flow group, in file order."""

    positions: array = field(default_factory=lambda: array("Q"))  # 0-based position in the file
    keys: array = field(default_factory=lambda: array("d"))  # ordering key (running maximum timestamp)
    timestamps: array = field(default_factory=lambda: array("d"))
    offsets: array = field(default_factory=lambda: array("Q"))
    caplens: array = field(default_factory=lambda: array("I"))
    origlens: array = field(default_factory=lambda: array("I"))
    link_types: array = field(default_factory=lambda: array("H"))

    def __len__(self) -> int:
        return len(self.positions)

    def add(self, position: int, key: float, ts: float, offset: int, caplen: int, origlen: int,
            link_type: int) -> None:
        """One more frame, after those already here (file order)."""
        self.positions.append(position)
        self.keys.append(key)
        self.timestamps.append(ts)
        self.offsets.append(offset)
        self.caplens.append(caplen)
        self.origlens.append(origlen)
        self.link_types.append(link_type)


class Unparsed:
    """What the index does with a frame ``parse_tcp_at`` found no TCP segment in: a TCP fragment of an
    IP datagram is kept apart (``fragments.FragmentPart``: its group is decided once the run's files
    are numbered); a link type or encapsulation not taken off is counted in ``summary.undecoded``
    when the single pass would count it (core/wire/undecoded.py): its frames go to no flow group, so
    the merge words the one warning."""

    __slots__ = ("summary", "fragments", "groups")

    def __init__(self, summary: FileSummary, groups: int) -> None:
        self.summary = summary
        self.fragments = FragmentPart(GroupPart())
        self.groups = groups

    def __call__(self, data, offset: int, caplen: int, link_type: int, position: int, key: float, ts: float,
                 origlen: int) -> None:
        if link_type not in SUPPORTED_LINK_TYPES:
            kind = link_type_name(link_type)
        else:
            found = locate_fragment_at(data, offset, caplen, link_type)
            if found is None:
                return
            if not isinstance(found, str):
                if found.protocol == TCP:
                    self._fragment(data, offset, caplen, link_type, position, key, ts, origlen, found)
                return
            kind = found
        counted = self.summary.undecoded.get(kind)
        self.summary.undecoded[kind] = (position, 1) if counted is None else (counted[0], counted[1] + 1)

    def _fragment(self, data, offset, caplen, link_type, position, key, ts, origlen, fragment) -> None:
        self.fragment(position, key, ts, offset, caplen, origlen, link_type, datagram_key(fragment),
                      first_fragment_group(data, offset, caplen, fragment, self.groups, flow_group))

    def fragment(self, position: int, key: float, ts: float, offset: int, caplen: int, origlen: int, link_type: int,
                 datagram: bytes, first_group: int) -> None:
        """Keep a TCP fragment apart (``fast_index`` reads plain IPv4 ones column-wise and comes here)."""
        part = self.fragments
        part.frames.add(position, key, ts, offset, caplen, origlen, link_type)
        part.datagrams.append(datagram)
        part.first_groups.append(first_group)


def flow_group(src: bytes, sport: int, dst: bytes, dport: int, groups: int) -> int:
    """The group of a port pair, the same for both directions and in every process."""
    a = src + sport.to_bytes(2, "big")
    b = dst + dport.to_bytes(2, "big")
    return zlib.crc32(a + b if a <= b else b + a) % groups


def _inflate(source: CaptureSource, spool_path: str) -> str:
    """Keep a gzip input's inflated bytes where every worker can map them."""
    tmp = spool_path + ".tmp"
    with open(tmp, "wb") as out:
        out.write(source.data)
    os.replace(tmp, spool_path)
    return spool_path


def index_file(index: int, name: str, groups: int, spool_dir: str, content_hash: str) -> dict:
    """Index one input: per flow group, its frames; and the file's ordering keys.

    Returns ``{"summary", "parts", "keys"}``, or ``{"problem": text}`` when the file is
    not a readable capture (the batch reports it and goes on).
    """
    try:
        source = open_source(name)
    except CaptureError as exc:
        return {"problem": str(exc)}
    try:
        read_path = name
        with open(name, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        if gzipped:
            os.makedirs(spool_dir, exist_ok=True)
            read_path = _inflate(source, os.path.join(spool_dir, content_hash + ".pcap"))
        summary = FileSummary(index, name, read_path, size=len(source.data))
        parts = [GroupPart() for _ in range(groups)]
        all_keys = array("d")
        all_times = array("d")  # every frame's timestamp, for the clock's steps back (then dropped)
        unparsed = Unparsed(summary, groups)
        untimed = array("Q")  # positions of the frames without a time of their own (array("d") drops the mark)
        if index_columns(source, groups, flow_group, unparsed, parts, summary, all_keys, all_times):
            return _indexed(summary, parts, all_keys, all_times, source, unparsed.fragments, untimed)
        data = source.data
        running = float("-inf")
        position = -1
        try:
            for _source, ts, link_type, offset, caplen, origlen in iter_record_tuples(source, index):
                position += 1
                if ts.__class__ is UntimedTime:
                    untimed.append(position)
                running = max(running, ts)
                all_keys.append(running)
                all_times.append(ts)
                if position == 0:
                    summary.first_ts = ts
                summary.last_ts = ts
                segment = parse_tcp_at(data, offset, caplen, link_type)
                if segment is None:
                    unparsed(data, offset, caplen, link_type, position, running, ts, origlen)
                    continue
                parts[flow_group(segment[1], segment[3], segment[2], segment[4], groups)].add(
                    position, running, ts, offset, caplen, origlen, link_type)
        except CaptureError as exc:
            return {"problem": str(exc)}
        summary.frames = position + 1
        return _indexed(summary, parts, all_keys, all_times, source, unparsed.fragments, untimed)
    finally:
        source.close()


def _indexed(summary: FileSummary, parts: list[GroupPart], all_keys: array, all_times: array,
             source: CaptureSource, fragments: FragmentPart, untimed: array) -> dict:
    if all_keys:
        summary.first_key, summary.last_key = all_keys[0], all_keys[-1]
    summary.notes = [note.message for note in source.notes]
    clock = deep_runs(all_keys, all_times)
    summary.clock_runs = len(clock)
    summary.fragments = len(fragments)
    summary.untimed = len(untimed)
    return {"summary": summary, "parts": parts, "keys": all_keys, "clock": clock,
            "fragments": fragments if len(fragments) else None, "untimed": untimed}


# -- numbering -------------------------------------------------------------------------------


def _before(a: FileSummary, b: FileSummary) -> bool:
    """Every frame of ``a`` comes before every frame of ``b`` in the merged order."""
    return a.last_key < b.first_key or (a.last_key == b.first_key and a.index < b.index)


def numbering_plan(summaries: list[FileSummary]) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Per file: frames of the files wholly before it, and the files it interleaves with."""
    files = [summary for summary in summaries if summary.frames]
    bases: dict[int, int] = {}
    overlaps: dict[int, list[int]] = {}
    for summary in files:
        base = 0
        mixed = []
        for other in files:
            if other.index == summary.index:
                continue
            if _before(other, summary):
                base += other.frames
            elif not _before(summary, other):
                mixed.append(other.index)
        bases[summary.index] = base
        overlaps[summary.index] = mixed
    return bases, overlaps


def frame_numbers(file_index: int, part: GroupPart, base: int, overlapping: dict[int, array]) -> array:
    """The frame number (1-based, in the whole merged capture) of each frame of ``part``."""
    if not overlapping:
        return array("Q", (base + position + 1 for position in part.positions))
    numbers = array("Q")
    for position, key in zip(part.positions, part.keys):
        number = base + position + 1
        for other, keys in overlapping.items():
            number += bisect_right(keys, key) if other < file_index else bisect_left(keys, key)
        numbers.append(number)
    return numbers


# -- decoding one group ----------------------------------------------------------------------


class _CreationLog:
    """When each model object was created: (frame, order) in the frame pass, (FINISH + the
    connection's first frame, order) while connections are closed at the end."""

    def __init__(self) -> None:
        self.frame = 0
        self.order = 0

    def key(self) -> tuple[int, int]:
        self.order += 1
        return (self.frame, self.order)

    def numbering(self, numbers):
        for number in numbers:
            self.frame = number
            yield number

    def file_order_numbering(self, present, bases):
        """``numbering`` of files that do not interleave: base + position + 1, file after file
        (``present`` in the order of ``bases``)."""
        for index, part in present:
            base = bases[index] + 1
            for position in part.positions:
                self.frame = number = base + position
                yield number


class _LoggedList(list):
    """A list that notes the creation key of everything appended."""

    def __init__(self, log: _CreationLog) -> None:
        super().__init__()
        self.log = log
        self.keys: list[tuple[int, int]] = []

    def append(self, item) -> None:
        self.keys.append(self.log.key())
        super().append(item)


def map_source(name: str, read_path: str) -> CaptureSource:
    """A capture file mapped read-only, named as the user gave it (no descriptor kept open)."""
    with open(read_path, "rb") as raw:
        data = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
    return CaptureSource(name=name, data=data)


def decode_group(group: int, files: list[tuple[str, str]], parts: list[GroupPart | None],
                 bases: dict[int, int], overlaps: dict[int, dict[int, array]], frame_count: int,
                 config: AnalysisConfig, make_host, disabled: set[str], out_path: str,
                 clock_steps=()) -> dict:
    """Decode one flow group's frames; the result is pickled to ``out_path`` (write, then rename).

    ``files`` are (name, read path) of every input of the run in order (source indices);
    ``parts[i]`` the group's frames in file ``i``; ``clock_steps`` the run's steps of the clock
    back (``clock.ClockStep``, found over every frame): the engine moves times on by them.
    """
    present = [(index, part) for index, part in enumerate(parts) if part]
    log = _CreationLog()
    if not any(overlaps.get(index) for index, _part in present):
        # Files that do not interleave (a ring buffer): one file after the other, in the order of
        # their first frame numbers (not their source indices, which need not follow time); stream it.
        present.sort(key=lambda item: bases[item[0]])
        numbers = log.file_order_numbering(present, bases)
        records = itertools.chain.from_iterable(
            zip(itertools.repeat(index), part.timestamps, part.link_types, part.offsets, part.caplens,
                part.origlens) for index, part in present)
        frames = sum(len(part) for _index, part in present)
    else:
        numbers, records = [], []
        for index, part in present:
            numbers.extend(frame_numbers(index, part, bases[index], overlaps.get(index, {})))
            records.extend(zip(itertools.repeat(index), part.timestamps, part.link_types, part.offsets,
                               part.caplens, part.origlens))
        order = sorted(range(len(numbers)), key=numbers.__getitem__)
        numbers = log.numbering([numbers[i] for i in order])
        records = [records[i] for i in order]
        frames = len(records)
    sources = [map_source(name, read_path) if parts[index] else CaptureSource(name=name, data=b"")
               for index, (name, read_path) in enumerate(files)]
    plugins = make_host(disabled=set(disabled))
    startup_failures = len(plugins.failures)
    analysis = Analysis(sources, config, plugins)
    analysis.connections = _LoggedList(log)
    analysis.associations = _LoggedList(log)
    analysis.messages = _LoggedList(log)
    analysis.expert = _LoggedList(log)
    pdu_keys: list[tuple[int, int]] = []
    pdu_append = analysis.pdus.append

    def logged_pdu_append(pdu):
        pdu_keys.append(log.key())
        return pdu_append(pdu)

    analysis.pdus.append = logged_pdu_append
    engine = CaptureEngine(analysis)
    engine.totals_reported = False  # the whole capture's counts: reported once by the merge, from every group's
    engine.run(records, lambda *_: None, 1 << 16, frame_numbers=numbers,
               clock_steps=[(step.frame, step.shift, step.time) for step in clock_steps])
    analysis.frame_count = frame_count

    def closing(first_frame: int) -> None:
        log.frame = FINISH + first_frame

    engine.finish(before_close=closing)
    del analysis.pdus.append
    connections = list(analysis.connections)
    transformed = [portable_transformed(item) for item in analysis.transformed]
    for connection in connections:
        portable_connection(connection)
    connection_keys = {connection.index: key for connection, key in zip(
        sorted(connections, key=lambda connection: connection.index), analysis.connections.keys)}
    result = {
        "group": group,
        "tcp_frames": engine.tcp_frames,
        "connections": [(connection_keys[connection.index], connection) for connection in connections],
        "associations": list(zip(analysis.associations.keys, analysis.associations)),
        "messages": list(zip(analysis.messages.keys, analysis.messages)),
        "expert": list(zip(analysis.expert.keys, analysis.expert)),
        "pdu_keys": pdu_keys,
        "pdus": analysis.pdus,
        "failures": [(failure.plugin, failure.where, str(failure.error))
                     for failure in plugins.failures[startup_failures:]],
        "evicted": engine.evicted,
        # segments held for the peer bytes they acknowledge: (count, longest wait, frame being read
        # when the first went on, that first one's frame), for the merge's one note
        "held": (engine.held_frames, engine.held_lateness, engine.held_first_at, engine.held_first_frame),
        "transformed": transformed,
        # for the merge's one note each: (fragments, datagrams completed, not completed); SPAN copies
        # set aside, (count, first frame, last frame) of whole segments and of fragments
        "fragment_totals": engine.fragment_totals(),
        "duplicate_totals": engine.duplicate_totals(),
        # connections that carried no byte (frame numbers are the run's): a refused report connection
        "connection_attempts": list(analysis.connection_attempts),
        "attempts_not_kept": analysis.attempts_not_kept,
    }
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as out:
        pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, out_path)
    for source in sources:
        source.close()
    return {"group": group, "frames": frames, "connections": len(connections),
            "messages": len(analysis.messages), "worker": f"{socket.gethostname()}:{os.getpid()}"}
