"""SPAN duplicates: one packet recorded twice by the capture, told apart from a resend.

A mirror port often writes every packet twice: both ports of a conversation mirrored to one
session, two SPAN sessions feeding one capture, or a routed copy of the packet seen on both
sides of a router (a VLAN tag added, the TTL one less, new MAC addresses).  The copies come a
fraction of a millisecond apart.  They are not retransmissions (the sender sent the packet
once) and not loss, so they are set aside before TCP sees them: reassembly, the segment record
and therefore every timing figure use the first copy only, and a count is reported.

A packet's identity here is what a router leaves alone and a resend changes: the addresses,
IPv4's identification (the sender numbers every packet it sends, resends included), the whole
TCP header's fields (ports, sequence and acknowledgement numbers, flags, window, and the
checksum, which covers the options and the payload) and the payload length; a copy must also
carry the same payload bytes (compared byte for byte), within ``DUPLICATE_WINDOW`` of the first in
time and ``DUPLICATE_FRAMES`` in the file.
IPv6 has no identification: there an identical TCP segment within the window is taken as a
copy (a resend within 5 ms that repeats every header byte, timestamps included, is the rare case
this could misjudge; its bytes are the same, so only a retransmission count would differ).

Sans-IO; the engine feeds every TCP frame's identity.  Cost: O(1) per frame (two dictionaries,
the packets of the current and the previous ``DUPLICATE_FRAMES`` frames, swapped every so many
frames), memory the packets of at most twice that many frames.  Forgetting goes by frame number,
not time, so what is remembered does not depend on which frames were shown to the filter (the
engine's bulk path shows it only a block's last frames) or on timestamps going backwards.
"""

from __future__ import annotations

DUPLICATE_WINDOW = 0.005  # seconds: SPAN copies come 0.05-0.9 ms apart; a resend's identity differs anyway
DUPLICATE_FRAMES = 1024  # a copy comes at most this many frames after its original
# SPAN duplication is a property of the capture set-up, there from its first frames: a filter that
# finds no copy among this many TCP frames stands down (``active``), which saves the per-frame
# paths its cost; the bulk path's block check (core/pipeline/bulk.py) keeps watching and wakes it.
PROBATION_FRAMES = 4096
HASH_MULTIPLIER = 0x9E3779B97F4A7C15  # odd: multiply-and-add over 64 bits mixes every field in
HASH_MASK = (1 << 64) - 1


def flow_hash(src: bytes, sport: int, dst: bytes, dport: int) -> int:
    """The first part of ``identity_hash``: a connection direction's addresses and ports."""
    value = int.from_bytes(src, "big") & HASH_MASK
    value = (value * HASH_MULTIPLIER + (int.from_bytes(dst, "big") & HASH_MASK)) & HASH_MASK
    return (value * HASH_MULTIPLIER + (sport << 16 | dport)) & HASH_MASK


def identity_hash(key: tuple) -> int:
    """A 64-bit digest of a packet's identity (``DuplicateFilter.is_copy``'s key).  The engine's bulk
    path computes the same over a block's columns to see whether a block may hold copies at all."""
    identity, src, dst, sport, dport, seq, ack, flags, window, length = key
    value = flow_hash(src, sport, dst, dport)
    for field in (seq, ack, flags << 16 | window, identity, length):
        value = (value * HASH_MULTIPLIER + field) & HASH_MASK
    return value


class DuplicateFilter:
    """Recognises the second (third...) copy of a packet seen within the window.

    ``views`` are the capture's buffers, for comparing payloads (source, offset).
    """

    __slots__ = ("views", "window", "frames", "current", "previous", "generation_start", "count",
                 "first_frame", "last_frame", "active", "seen")

    def __init__(self, views, window: float = DUPLICATE_WINDOW, frames: int = DUPLICATE_FRAMES) -> None:
        self.views = views
        self.window = window
        self.frames = frames
        self.current: dict = {}
        self.previous: dict = {}
        self.generation_start = 0  # frame number
        self.count = 0  # copies set aside
        self.active = True  # the engine asks only while True (see PROBATION_FRAMES)
        self.seen = 0  # the frame number from which the probation counts
        self.first_frame = 0  # the first of them (0: none)
        self.last_frame = 0

    def is_copy(self, key: tuple, ts: float, source: int, payload_offset: int, length: int, frame: int) -> bool:
        """Whether the packet ``key`` (see the module docstring) at ``ts`` was seen within the window;
        if not, it is remembered.  ``length`` captured payload bytes at ``payload_offset``."""
        if frame - self.generation_start >= self.frames:  # the older generation is too far back to match
            self.previous = self.current
            self.current = {}
            self.generation_start = frame
            if frame - self.seen >= PROBATION_FRAMES and not self.count:
                self.active = False  # no copy so far: no SPAN duplication in this capture
        earlier = self.current.get(key)
        if earlier is None:
            earlier = self.previous.get(key)
        if earlier is not None:
            earlier_ts, earlier_source, earlier_offset, earlier_length, earlier_frame = earlier
            if abs(ts - earlier_ts) <= self.window and frame - earlier_frame <= self.frames \
                    and earlier_length == length and (
                    not length or self.views[earlier_source][earlier_offset : earlier_offset + length]
                    == self.views[source][payload_offset : payload_offset + length]):
                self.count += 1
                if not self.first_frame:
                    self.first_frame = frame
                self.last_frame = frame
                return True
        self.current[key] = (ts, source, payload_offset, length, frame)
        return False

    def remember(self, key: tuple, ts: float, source: int, payload_offset: int, length: int, frame: int) -> None:
        """Note a packet taken without ``is_copy`` (the engine's bulk path), unless it is noted already."""
        if frame - self.generation_start >= self.frames:
            self.previous = self.current
            self.current = {}
            self.generation_start = frame
        if key not in self.current and key not in self.previous:
            self.current[key] = (ts, source, payload_offset, length, frame)

    def wake(self, frame: int) -> None:
        """Ask again from ``frame`` on (the bulk path saw two frames with one identity)."""
        if not self.active:
            self.active = True
            self.seen = frame

    def keys_since(self, frame: int) -> list[tuple]:
        """The packets remembered from ``frame`` on."""
        return [key for generation in (self.previous, self.current) for key, value in generation.items()
                if value[4] >= frame]
