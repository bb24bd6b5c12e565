"""IP fragments in batch mode: every fragment of a datagram in the flow group of its datagram.

The index puts a frame in the flow group of its TCP port pair (``split.flow_group``).  An IP
fragment other than the first carries no TCP header, and the single pass puts the datagram back
together (core/wire/fragments.py) before TCP sees it: so every fragment of a datagram must reach
the engine of the group of the datagram's port pair, in the capture's frame order, or batch mode
loses the segment (false gaps, PDUs "not captured", connections that "began before the capture").

While indexing, each file keeps its TCP fragments apart (``FragmentPart``: the frames, the
datagram each belongs to, and for a first fragment whose TCP ports were captured, its group);
they may need the first fragment of another file (a ring buffer cuts a datagram anywhere, and
the first fragment may come before or after the others).  ``plan_fragments`` (one small task,
only for runs that hold fragments) numbers them in the merged frame order as ``split`` numbers
frames, and gives each fragment the group of the first fragment of its datagram nearest to it in
that order (a datagram's key, addresses and identification, is reused only after 65,536
datagrams between the same hosts, so the nearest first fragment is its own).  A fragment whose
datagram's first fragment is nowhere in the run goes to a group fixed by the datagram's key, the
same for all its fragments: that group's reassembler holds them as the single pass's does, and
counts the datagram as not completed once, as the single pass does.  Each decode task then takes
its rows of every file's fragments into its part of that file, in file order (``with_fragments``).
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field

from dicomtui.core.wire.packet import IpFragment

from .clock import interleaving, number_in_capture

TCP = 6
FRAME_COLUMNS = ("positions", "keys", "timestamps", "offsets", "caplens", "origlens", "link_types")


@dataclass(slots=True)
class FragmentPart:
    """One file's TCP fragments, in file order: the frames (a ``split.GroupPart``), and per frame the
    datagram's key and, for a first fragment whose ports were captured, its flow group (else -1)."""

    frames: object  # split.GroupPart
    datagrams: list = field(default_factory=list)  # bytes: family, addresses, identification
    first_groups: array = field(default_factory=lambda: array("h"))

    def __len__(self) -> int:
        return len(self.datagrams)


def datagram_key(fragment: IpFragment) -> bytes:
    """What the reassembler keys a datagram by (family, addresses, identification), as bytes."""
    return bytes((fragment.family,)) + fragment.addresses + fragment.ident.to_bytes(4, "big")


def first_fragment_group(data, offset: int, caplen: int, fragment: IpFragment, groups: int, flow_group) -> int:
    """The flow group of a first fragment whose TCP ports were captured, else -1."""
    if fragment.offset or fragment.payload_offset + 4 > min(caplen, fragment.payload_end):
        return -1
    at = offset + fragment.payload_offset
    sport = int.from_bytes(data[at: at + 2], "big")
    dport = int.from_bytes(data[at + 2: at + 4], "big")
    half = len(fragment.addresses) // 2
    return flow_group(fragment.addresses[:half], sport, fragment.addresses[half:], dport, groups)


def orphan_group(datagram: bytes, groups: int) -> int:
    """The group of the fragments of a datagram whose first fragment is not in the run."""
    return zlib.crc32(datagram) % groups


def plan_fragments(summaries, fragments_of: dict[int, FragmentPart], bases: dict[int, int],
                   keys_of: dict[int, array], groups: int) -> dict[int, array]:
    """Per file with fragments, the flow group of each of its fragments (``FragmentPart`` order).

    ``fragments_of[i]``: file i's fragments; ``keys_of``: the ordering keys of the files that
    interleave with a file that has fragments (a Dask task: the keys stay on the workers until here)."""
    overlapping_of = interleaving(summaries, fragments_of, keys_of)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with the batch extra
        return _plan_rows(fragments_of, bases, overlapping_of, groups)
    return _plan_columns(np, fragments_of, bases, overlapping_of, groups)


def _plan_columns(np, fragments_of, bases, overlapping_of, groups: int) -> dict[int, array]:
    """``plan_fragments`` column-wise: frame numbers by ``searchsorted``, every fragment's nearest first
    fragment of its datagram by one sort of (datagram, frame number)."""
    ids: dict[bytes, int] = {}
    numbers, datagram_ids, first_groups, sizes = [], [], [], []
    for index, part in fragments_of.items():
        frames = part.frames
        number = np.frombuffer(frames.positions, dtype=np.uint64).astype(np.int64) + (bases[index] + 1)
        keys = np.frombuffer(frames.keys, dtype=np.float64)
        for other, other_keys in overlapping_of[index].items():
            number += np.searchsorted(np.frombuffer(other_keys, dtype=np.float64), keys,
                                      side="right" if other < index else "left")
        numbers.append(number)
        datagram_ids.append(np.fromiter((ids.setdefault(datagram, len(ids)) for datagram in part.datagrams),
                                        dtype=np.int64, count=len(part)))
        first_groups.append(np.frombuffer(part.first_groups, dtype=np.int16).astype(np.int64))
        sizes.append(len(part))
    number, datagram, first_group = (np.concatenate(numbers), np.concatenate(datagram_ids),
                                     np.concatenate(first_groups))
    # (datagram, frame number) as one sortable integer: frame numbers are far below 2**40
    combined = datagram << 40 | number
    firsts = np.flatnonzero(first_group >= 0)
    order = firsts[np.argsort(combined[firsts], kind="stable")]
    first_keys, first_datagrams, first_numbers = combined[order], datagram[order], number[order]
    at = np.searchsorted(first_keys, combined, side="left")
    after = np.minimum(at, len(order) - 1) if len(order) else at
    before_at = np.maximum(at - 1, 0)
    assigned = np.full(len(number), -1, dtype=np.int64)
    if len(order):
        has_after = (at < len(order)) & (first_datagrams[after] == datagram)
        has_before = (at > 0) & (first_datagrams[before_at] == datagram)
        # the nearer one; of two as near, the earlier
        take_before = has_before & (~has_after | (number - first_numbers[before_at] <= first_numbers[after] - number))
        assigned = np.where(take_before, first_group[order[before_at]],
                            np.where(has_after, first_group[order[after]], -1))
    names = {identity: datagram_key for datagram_key, identity in ids.items()}
    for row in np.flatnonzero(assigned < 0).tolist():
        assigned[row] = orphan_group(names[int(datagram[row])], groups)
    plan = {}
    start = 0
    for index, size in zip(fragments_of, sizes):
        plan[index] = array("h", assigned[start:start + size].astype(np.int16).tobytes())
        start += size
    return plan


def _plan_rows(fragments_of, bases, overlapping_of, groups: int) -> dict[int, array]:
    """``plan_fragments`` one fragment at a time (without numpy)."""
    numbered: dict[bytes, list[tuple[int, int]]] = {}  # datagram -> [(frame number, group)] of first fragments
    rows: list[tuple[int, int, bytes, int]] = []  # (file, row, datagram, frame number)
    for index, part in fragments_of.items():
        overlapping = overlapping_of[index]
        frames = part.frames
        for row, (position, key, datagram, group) in enumerate(zip(frames.positions, frames.keys, part.datagrams,
                                                                   part.first_groups)):
            number = number_in_capture(index, position, key, bases[index], overlapping)
            rows.append((index, row, datagram, number))
            if group >= 0:
                numbered.setdefault(datagram, []).append((number, group))
    for firsts in numbered.values():
        firsts.sort()
    plan = {index: array("h", bytes(2 * len(part))) for index, part in fragments_of.items()}
    for index, row, datagram, number in rows:
        firsts = numbered.get(datagram)
        if not firsts:
            plan[index][row] = orphan_group(datagram, groups)
            continue
        at = bisect_left(firsts, (number, -1))
        if at == len(firsts) or (at and number - firsts[at - 1][0] <= firsts[at][0] - number):
            at -= 1  # the nearer one; of two as near, the earlier
        plan[index][row] = firsts[at][1]
    return plan


def with_fragments(part, fragments: FragmentPart | None, plan: array | None, group: int):
    """``part`` (a file's frames of ``group``) with that group's fragments of the file, in file order."""
    if fragments is None or plan is None:
        return part
    rows = [row for row, assigned in enumerate(plan) if assigned == group]
    if not rows:
        return part
    frames = fragments.frames
    merged = type(part)()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with the batch extra
        order = sorted([(position, 0, row) for row, position in enumerate(part.positions)]
                       + [(frames.positions[row], 1, row) for row in rows])
        for name in FRAME_COLUMNS:
            mine, theirs, out = getattr(part, name), getattr(frames, name), getattr(merged, name)
            out.extend(mine[row] if side == 0 else theirs[row] for _position, side, row in order)
        return merged
    taken = np.array(rows, dtype=np.int64)
    columns = {name: np.concatenate((np.frombuffer(getattr(part, name), dtype=getattr(part, name).typecode),
                                     np.frombuffer(getattr(frames, name), dtype=getattr(frames, name).typecode)[taken]))
               for name in FRAME_COLUMNS}
    order = np.argsort(columns["positions"], kind="stable")
    for name in FRAME_COLUMNS:
        getattr(merged, name).frombytes(columns[name][order].tobytes())
    return merged
