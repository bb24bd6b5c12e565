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

    __slots__ = ("data", "extend", "syn_options", "swap", "truncated")

    def __init__(self) -> None:
        self.data = bytearray()
        self.extend = self.data.extend  # the engine calls this for every segment
        self.syn_options: list[dict[str, int] | None] = [None, None]  # per TCP direction
        self.swap = 0
        self.truncated = False  # the record budget ran out: later segments are missing

    def __len__(self) -> int:
        return len(self.data) // ROW_SIZE

    def nbytes(self) -> int:
        return len(self.data)

    def stop(self) -> None:
        """Record no more segments (memory budget reached)."""
        self.truncated = True
        self.extend = _discard

    def rows(self) -> Iterator[SegmentRow]:
        swap = self.swap
        for time, frame, seq, ack, length, window, flags, direction in ROW.iter_unpack(self.data):
            yield SegmentRow(time, frame, seq, ack, length, window, flags, direction ^ swap)

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


def _discard(_row: bytes) -> None:
    return None
