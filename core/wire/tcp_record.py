"""The per-connection record of TCP segments, written by the engine's single pass.

Timing analysis (core/tcp_analysis.py) needs every segment's header facts —
time, frame, sequence and acknowledgement numbers, window, flags, lengths —
in both directions, long after the pass.  Keeping an object per segment would
cost ~200 bytes each; here each segment is one packed 28-byte row appended to
a ``bytearray`` (one ``struct.pack`` and one ``extend`` on the hot path), read
back column-wise with ``memoryview.cast`` or row-wise with ``iter_unpack``.

Directions are TCP directions (0 = the first frame's sender); ``swap`` maps
them to model directions (0 = client) once the connection is known as DICOM.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from typing import Iterator, NamedTuple

ROW = struct.Struct("<dIIIIHBB")  # time, frame, seq, ack, length sent, window field, flags, direction
ROW_SIZE = ROW.size
pack_row = ROW.pack


class SegmentRow(NamedTuple):
    time: float
    frame: int
    seq: int
    ack: int
    length: int  # TCP payload length as sent (the IP header's; a snapshot length may have cut the capture)
    window: int  # the window field as sent, not yet scaled
    flags: int
    direction: int  # model direction: 0 client -> server, 1 server -> client


class SegmentRecord:
    """Every TCP segment of one connection, packed; options of the SYNs seen."""

    __slots__ = ("data", "extend", "syn_options", "swap", "truncated", "late")

    def __init__(self) -> None:
        self.data = bytearray()
        self.extend = self.data.extend  # the engine calls this for every segment
        self.syn_options: list[dict[str, int] | None] = [None, None]  # per TCP direction
        self.swap = 0
        self.truncated = False  # the record budget ran out: later segments are missing
        # Per TCP direction, how much later than the other side's its frames were recorded: each
        # direction on its own capture interface, the clocks apart.  Measured by the engine (the
        # longest a peer's acknowledged bytes came after the acknowledgement); rows keep the
        # recorded times, timing takes this off (``corrected``).
        self.late = [0.0, 0.0]

    def __len__(self) -> int:
        return len(self.data) // ROW_SIZE

    def nbytes(self) -> int:
        return len(self.data)

    def drop_before_frame(self, frame: int) -> int:
        """Forget the rows of frames before ``frame`` (live retention); returns how many.

        Rows are in capture order, so the frames only grow: a bisection over rows.
        """
        low, high = 0, len(self)
        while low < high:
            middle = (low + high) // 2
            if ROW.unpack_from(self.data, middle * ROW_SIZE)[1] < frame:
                low = middle + 1
            else:
                high = middle
        if low:
            del self.data[: low * ROW_SIZE]  # in place: the engine's bound ``extend`` stays valid
        return low

    def stop(self) -> None:
        """Record no more segments (memory budget reached)."""
        self.truncated = True
        self.extend = _discard

    def rows(self) -> Iterator[SegmentRow]:
        swap = self.swap
        for time, frame, seq, ack, length, window, flags, direction in ROW.iter_unpack(self.data):
            yield SegmentRow(time, frame, seq, ack, length, window, flags, direction ^ swap)

    def lateness(self, direction: int) -> float:
        """How late model ``direction``'s frames were recorded against the other's (0: not measured)."""
        return self.late[direction ^ self.swap]

    def corrected(self) -> "SegmentRecord":
        """This record for timing, where the engine saw one direction recorded late: each late
        direction's times moved back by its lateness measured over every row (``measured_lateness``)
        and the rows in the order of the corrected times (stable), so every acknowledgement comes
        after the bytes it acknowledges; itself when no lateness was seen."""
        if not any(self.late):
            return self
        rows = list(ROW.iter_unpack(self.data))
        late = measured_lateness(rows)
        # One microsecond more (a pcap's resolution): the acknowledgement that measured the
        # lateness then follows the bytes it acknowledges rather than sharing their time.
        shift = [value + 1e-6 if value else 0.0 for value in late]
        rows.sort(key=lambda row: row[0] - shift[row[7]])
        copy = SegmentRecord()
        copy.data = bytearray(b"".join(pack_row(row[0] - shift[row[7]], *row[1:]) for row in rows))
        copy.syn_options, copy.swap, copy.truncated, copy.late = self.syn_options, self.swap, self.truncated, late
        copy.extend = _discard  # a view for analysis: nothing is recorded into it
        return copy

    def options(self, direction: int) -> dict[str, int] | None:
        """SYN options sent by the model ``direction`` (None: its SYN was not captured)."""
        return self.syn_options[direction ^ self.swap]

    def window_shift(self, direction: int) -> int:
        """The window scale that applies to windows advertised by ``direction``.

        RFC 7323: scaling is in effect only when both SYNs carried the option.  When
        the handshake was not captured the shift is unknown; 0 is assumed (windows
        then look smaller than they were; core/tcp_analysis.py says so).
        """
        mine, theirs = self.options(direction), self.options(1 - direction)
        if mine is None or theirs is None or "window_scale" not in mine or "window_scale" not in theirs:
            return 0
        return mine["window_scale"]

    def scale_known(self) -> bool:
        return self.syn_options[0] is not None and self.syn_options[1] is not None


def measured_lateness(rows: list[tuple]) -> list[float]:
    """Per TCP direction, the longest its bytes (or SYN) were recorded after the peer's
    acknowledgement of them: the least that direction's capture clock was late.

    For each direction the rows where its sequence space first reached each point (the SYN and
    the FIN count as one byte each); an acknowledgement recorded before the row that first
    reached it measures how late that row was.  Rows are packed tuples (time, frame, seq, ack,
    length, window, flags, TCP direction).
    """
    base: list[int | None] = [None, None]
    reach: list[list[int]] = [[], []]  # per direction: the highest relative end so far, per row that raised it
    times: list[list[float]] = [[], []]
    positions: list[list[int]] = [[], []]
    for position, (time, _frame, seq, _ack, length, _window, flags, direction) in enumerate(rows):
        if base[direction] is None:
            base[direction] = (seq - 1) % MODULO if flags & SYN else seq
        end = (seq - base[direction] + length + (1 if flags & (SYN | FIN) else 0)) % MODULO
        if end < HALF and (not reach[direction] or end > reach[direction][-1]):
            reach[direction].append(end)
            times[direction].append(time)
            positions[direction].append(position)
    late = [0.0, 0.0]
    least_gap = [float("inf"), float("inf")]  # per ACK sender: its quickest ACK after the bytes, as recorded
    for position, (time, _frame, _seq, ack, _length, _window, flags, direction) in enumerate(rows):
        peer = 1 - direction
        if not flags & ACK or base[peer] is None:
            continue
        acknowledged = (ack - base[peer]) % MODULO
        if acknowledged >= HALF:
            continue
        first = bisect_left(reach[peer], acknowledged)
        if first >= len(reach[peer]):
            continue
        if positions[peer][first] > position:
            lateness = times[peer][first] - time
            if 0 < lateness < LATE_WINDOW and lateness > late[peer]:
                late[peer] = lateness
        elif time - times[peer][first] < least_gap[direction]:
            least_gap[direction] = time - times[peer][first]
    # One constant skew must explain it: moved back, the late side's own ACKs must still follow the
    # bytes they acknowledge.  An ACK number that does not fit (a corrupted or forged segment) gives
    # a "lateness" no shift can honour: nothing is corrected then.
    for direction in (0, 1):
        if late[direction] and late[direction] - late[1 - direction] + 1e-6 > least_gap[direction]:
            return [0.0, 0.0]
    return late


LATE_WINDOW = 0.010  # core/wire/tcp.py LATE_SEGMENT_WAIT: longer is capture loss and a resend, not skew
MODULO, HALF, FIN, SYN, ACK = 1 << 32, 1 << 31, 0x01, 0x02, 0x10


def _discard(_row: bytes) -> None:
    return None
