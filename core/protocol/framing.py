"""Framing one direction of a DICOM byte stream into PDUs and PDVs (sans-IO).

The parser is fed the stream in order, in pieces of any size, plus gaps.  It
holds at most a PDU header, a PDV header, one non-P-DATA PDU body (bounded by
``max_control_pdu``) and one command PDV (bounded by ``max_command``); the data
set bytes of P-DATA are never held, only their stream ranges, so memory does
not depend on object or PDU size.  Work is O(n) in bytes fed: data bytes are
skipped by arithmetic, header bytes are touched once, and resynchronisation
scans each byte once, but for a candidate header the bytes so far cannot judge:
the last ``UNDECIDED_TAIL`` bytes (518) are scanned again when more arrive (its
window is bounded by ``RESYNC_WINDOW``).

After a gap the parser keeps its place if the lost bytes fell inside a PDV's
data (lengths say where the next header is); otherwise it resynchronises on the
next PDU header whose grammar its captured bytes show (``detect.judge_pdu_header``:
a header in bytes the capture lost is never guessed from the data bytes after
it), instead of giving up on the connection.  What a gap cuts off is kept: a
control PDU's captured body start (an A-ASSOCIATE's AE titles) and a command's
whole elements (a response's status).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from dicomtui.core.base.limits import Limits
from dicomtui.core.protocol.detect import ASSOCIATE_JUDGED_BYTES, PDV_CHAIN_REACH, judge_pdu_header
from dicomtui.core.protocol.findings import Problem
from dicomtui.core.protocol.records import Pdv
from dicomtui.core.wire.tcp import Gap

RESYNC_WINDOW = 1 << 16
# A candidate header waits for at most this many bytes before it is judged (the PDV chain's reach,
# an A-ASSOCIATE's fixed fields): the undecided tail a scan keeps.
UNDECIDED_TAIL = max(PDV_CHAIN_REACH + 6, ASSOCIATE_JUDGED_BYTES)


@dataclass(slots=True)
class FramedPdu:
    """A PDU found in the stream (complete, or cut by a gap / the end of the capture)."""

    stream_offset: int
    pdu_type: int
    length: int
    end_offset: int  # stream offset after the last byte that belongs to it
    body: bytes | None = None  # non-P-DATA bodies
    pdvs: list[Pdv] = field(default_factory=list)
    commands: dict[int, bytes] = field(default_factory=dict)  # pdv index -> command bytes
    cut_commands: set[int] = field(default_factory=set)  # pdv indexes whose command bytes are a captured prefix
    partial_body: bytes = b""  # a control PDU's body as far as it was captured, when a gap cut it
    complete: bool = True
    problems: list[Problem] = field(default_factory=list)  # the sender's: the PDU is malformed
    capture_problems: list[Problem] = field(default_factory=list)  # the capture's: part of it was not recorded


@dataclass(frozen=True, slots=True)
class StreamProblem:
    stream_offset: int
    problem: Problem
    malformed: bool = True


_HEADER, _BODY, _PDV_HEADER, _PDV_DATA, _SKIP, _RESYNC = range(6)
_NO_EVENTS: tuple = ()


class PduStreamParser:
    def __init__(self, limits: Limits | None = None, start_in_resync: bool = False) -> None:
        self.limits = limits or Limits()
        self.position = 0  # stream offset of the next byte expected
        self.state = _RESYNC if start_in_resync else _HEADER
        self.buffer = bytearray()  # header / body / command / resync window bytes
        self.buffer_start = 0  # stream offset of buffer[0] (resync)
        self.current: FramedPdu | None = None
        self.pdu_remaining = 0
        self.pdv_remaining = 0
        self.pdv_is_command = False
        self.command_overflow = False
        self.skip_remaining = 0
        self.events: list[FramedPdu | StreamProblem] = []
        self.resync_skipped = 0
        self.resync_after_gap = False  # the bytes being skipped follow a gap (their PDU header was not captured)

    # -- input -----------------------------------------------------------------------------

    def feed(self, stream_offset: int, data) -> list:
        """Consume ``data`` (bytes or memoryview) starting at ``stream_offset``."""
        if self.state == _PDV_DATA and stream_offset == self.position and not self.pdv_is_command:
            size = len(data)
            if size < self.pdv_remaining:
                # Inside a data PDV, as most bytes of a big transfer are: only count them.
                self.pdv_remaining -= size
                self.pdu_remaining -= size
                self.position += size
                return _NO_EVENTS
        if stream_offset > self.position:
            # The reassembler reports gaps itself; this only guards against misuse.
            self.gap(Gap(self.position, stream_offset - self.position, 0, "discontinuity"))
        view = memoryview(data)
        if stream_offset < self.position:
            view = view[self.position - stream_offset :]
        index = 0
        size = len(view)
        while index < size:
            index = self._step(view, index, size)
        self.position += size
        return self._take_events()

    def skippable(self) -> int:
        """How many next bytes ``skip`` may take: those that end strictly inside a data PDV's
        value (or a PDU being skipped), which ``feed`` would only count."""
        if self.state == _PDV_DATA and not self.pdv_is_command:
            return self.pdv_remaining - 1
        if self.state == _SKIP:
            return self.skip_remaining - 1
        return 0

    def skip(self, length: int) -> None:
        """Account for ``length`` next bytes without seeing them (``length <= skippable()``).

        The same state change as ``feed`` of those bytes, which would find no
        boundary in them and produce no event.
        """
        if self.state == _PDV_DATA:
            self.pdv_remaining -= length
            self.pdu_remaining -= length
        else:
            self.skip_remaining -= length
        self.position += length

    def _take_events(self) -> list:
        events, self.events = self.events, []
        return events

    def gap(self, gap: Gap) -> list:
        length = gap.length
        state = self.state
        current = self.current
        if state == _PDV_DATA and length <= self.pdv_remaining and not self.pdv_is_command:
            # Lost bytes inside a data PDV: lengths still say where the next header is.
            current.complete = False
            current.capture_problems.append(Problem("framing.gap-bytes", {"length": length}))
            self.pdv_remaining -= length
            self.pdu_remaining -= length
            self.position += length
            if self.pdv_remaining == 0:
                self._end_pdv()
            return self._take_events()
        self._keep_captured()
        if state in (_PDV_DATA, _PDV_HEADER, _BODY) and current is not None and length <= self.pdu_remaining:
            # The gap ends inside this PDU: skip to its end, we know where that is.
            current.complete = False
            current.capture_problems.append(Problem("framing.gap-bytes", {"length": length}))
            self.position += length
            self.pdu_remaining -= length
            self.buffer.clear()
            self.state = _SKIP
            self.skip_remaining = self.pdu_remaining
            if self.skip_remaining == 0:
                self._finish_pdu()
            return self._take_events()
        if state == _SKIP and length <= self.skip_remaining:
            self.skip_remaining -= length
            self.position += length
            if current is not None:
                current.complete = False
            if self.skip_remaining == 0:
                self._finish_pdu()
            return self._take_events()
        # Otherwise the next PDU header position is unknown: close what we have and resync.
        if state == _RESYNC:
            self.resync_skipped += len(self.buffer)
        if current is not None:
            current.complete = False
            current.capture_problems.append(Problem("framing.gap-rest", {}))
            self._emit_current()
        self.position += length
        self.buffer.clear()
        self.state = _RESYNC
        self.resync_after_gap = True
        return self._take_events()

    def _keep_captured(self) -> None:
        """Before a gap (or the end) cuts the current PDU: keep what was captured of a control PDU's
        body or of a command (the AE titles of an A-ASSOCIATE, a response's status), marked as cut."""
        current = self.current
        if current is None:
            return
        if self.state == _BODY and self.buffer:
            current.partial_body = bytes(self.buffer)
        elif self.state == _PDV_DATA and self.pdv_is_command and not self.command_overflow and current.pdvs:
            index = len(current.pdvs) - 1
            current.commands[index] = bytes(self.buffer)
            current.cut_commands.add(index)

    def finish(self) -> list:
        """End of stream: report a PDU cut short by the end of the capture."""
        self._keep_captured()
        if self.current is not None:
            self.current.complete = False
            self.current.capture_problems.append(Problem("framing.capture-ended", {}))
            self._emit_current()
        elif self.state == _HEADER and self.buffer:
            self.events.append(StreamProblem(self.position - len(self.buffer),
                                             Problem("framing.header-cut", {"length": len(self.buffer)}), False))
        elif self.state == _RESYNC and self.buffer:
            self._scan(final=True)
            if self.current is not None:
                self.current.complete = False
                self.current.capture_problems.append(Problem("framing.capture-ended", {}))
                self._emit_current()
            if self.state == _RESYNC:
                self.resync_skipped += len(self.buffer)
        if self.resync_skipped:
            self._report_resync()
        self.buffer.clear()
        return self._take_events()

    # -- the state machine -----------------------------------------------------------------

    def _step(self, view: memoryview, index: int, size: int) -> int:
        state = self.state
        stream_offset = self.position + index
        if state == _PDV_DATA:
            take = min(self.pdv_remaining, size - index)
            if self.pdv_is_command and not self.command_overflow:
                self.buffer += view[index : index + take]
            self.pdv_remaining -= take
            self.pdu_remaining -= take
            if self.pdv_remaining == 0:
                self._end_pdv()
            return index + take
        if state == _HEADER:
            if not self.buffer and size - index >= 6:
                # The whole header is in this piece (nearly always): no buffering.
                self._start_pdu(stream_offset, bytes(view[index : index + 6]))
                return index + 6
            need = 6 - len(self.buffer)
            take = min(need, size - index)
            self.buffer += view[index : index + take]
            if len(self.buffer) == 6:
                header = bytes(self.buffer)
                self.buffer.clear()
                self._start_pdu(stream_offset + take - 6, header)
            return index + take
        if state == _PDV_HEADER:
            if not self.buffer and size - index >= 6:
                self.pdu_remaining -= 6
                self._start_pdv(stream_offset, bytes(view[index : index + 6]))
                return index + 6
            need = 6 - len(self.buffer)
            take = min(need, size - index)
            self.buffer += view[index : index + take]
            self.pdu_remaining -= take
            if len(self.buffer) == 6:
                header = bytes(self.buffer)
                self.buffer.clear()
                self._start_pdv(stream_offset + take - 6, header)
            return index + take
        if state == _BODY:
            take = min(self.pdu_remaining, size - index)
            self.buffer += view[index : index + take]
            self.pdu_remaining -= take
            if self.pdu_remaining == 0:
                self.current.body = bytes(self.buffer)
                self.buffer.clear()
                self._finish_pdu()
            return index + take
        if state == _SKIP:
            take = min(self.skip_remaining, size - index)
            self.skip_remaining -= take
            if self.skip_remaining == 0:
                self._finish_pdu()
            return index + take
        # _RESYNC
        return self._resync(view, index, size)

    def _start_pdu(self, stream_offset: int, header: bytes) -> None:
        pdu_type = header[0]
        length = struct.unpack_from("!I", header, 2)[0]
        if not 1 <= pdu_type <= 7:
            self.events.append(StreamProblem(stream_offset, Problem("framing.unknown-pdu-type",
                                                                    {"pdu_type": pdu_type})))
            self._enter_resync(header[1:], stream_offset + 1)
            return
        if length > self.limits.max_pdu_length:
            self.events.append(StreamProblem(stream_offset, Problem(
                "framing.pdu-too-long", {"pdu_type": pdu_type, "length": length,
                                         "limit": self.limits.max_pdu_length})))
            self._enter_resync(header[1:], stream_offset + 1)
            return
        pdu = FramedPdu(stream_offset, pdu_type, length, stream_offset + 6 + length)
        if header[1] != 0:
            pdu.problems.append(Problem("framing.reserved-byte", {"value": header[1]}))
        self.current = pdu
        self.pdu_remaining = length
        if length == 0:
            if pdu_type != 4:
                pdu.problems.append(Problem("framing.empty-pdu", {}))
                pdu.body = b""
            self._finish_pdu()
        elif pdu_type == 4:
            self._enter_pdv_header()
        elif length > self.limits.max_control_pdu:
            pdu.problems.append(Problem("framing.control-pdu-too-long", {
                "pdu_type": pdu_type, "length": length, "limit": self.limits.max_control_pdu}))
            self.state = _SKIP
            self.skip_remaining = length
        else:
            self.state = _BODY

    def _start_pdv(self, stream_offset: int, header: bytes) -> None:
        item_length, context_id, flags = struct.unpack("!IBB", header)
        pdu = self.current
        if item_length < 2 or item_length - 2 > self.pdu_remaining:
            pdu.problems.append(Problem("framing.invalid-pdv-length", {
                "length": item_length, "stream_offset": stream_offset, "left": self.pdu_remaining + 2}))
            self.state = _SKIP
            self.skip_remaining = self.pdu_remaining
            if self.skip_remaining == 0:
                self._finish_pdu()
            return
        if len(pdu.pdvs) >= self.limits.max_pdvs_per_pdu:
            pdu.problems.append(Problem("framing.too-many-pdvs", {"limit": self.limits.max_pdvs_per_pdu}))
            self.state = _SKIP
            self.skip_remaining = self.pdu_remaining
            return
        is_command = bool(flags & 1)
        pdu.pdvs.append(Pdv(stream_offset + 6, item_length - 2, context_id, is_command, bool(flags & 2), flags))
        self.pdv_remaining = item_length - 2
        self.pdv_is_command = is_command
        self.command_overflow = is_command and self.pdv_remaining > self.limits.max_command
        if self.command_overflow:
            pdu.problems.append(Problem("framing.command-too-long", {
                "length": self.pdv_remaining, "limit": self.limits.max_command}))
        self.state = _PDV_DATA
        if self.pdv_remaining == 0:
            self._end_pdv()

    def _end_pdv(self) -> None:
        pdu = self.current
        if self.pdv_is_command and not self.command_overflow:
            pdu.commands[len(pdu.pdvs) - 1] = bytes(self.buffer)
        self.buffer.clear()
        self.pdv_is_command = False
        self.command_overflow = False
        if self.pdu_remaining <= 0:
            self._finish_pdu()
        else:
            self._enter_pdv_header()

    def _enter_pdv_header(self) -> None:
        if self.pdu_remaining < 6:
            self.current.problems.append(Problem("framing.pdv-header-cut", {"left": self.pdu_remaining}))
            self.state = _SKIP
            self.skip_remaining = self.pdu_remaining
        else:
            self.state = _PDV_HEADER

    def _finish_pdu(self) -> None:
        self._emit_current()
        self.state = _HEADER

    def _emit_current(self) -> None:
        if self.current is not None:
            self.events.append(self.current)
        self.current = None
        self.pdu_remaining = 0
        self.pdv_remaining = 0

    # -- resynchronisation -----------------------------------------------------------------

    def _enter_resync(self, pending: bytes, stream_offset: int) -> None:
        """Look for the next PDU header from ``stream_offset`` on (``pending``: bytes already read there).

        Only records where to look: ``_scan`` (run when more bytes arrive, or by the
        replay loop that called us) does the looking, so resynchronising never recurses.
        """
        self.state = _RESYNC
        self.buffer = bytearray(pending)
        self.buffer_start = stream_offset

    def _resync(self, view: memoryview, index: int, size: int) -> int:
        if not self.buffer:
            self.buffer_start = self.position + index
        take = min(size - index, RESYNC_WINDOW)
        self.buffer += view[index : index + take]
        self._scan()
        return index + take

    def _scan(self, final: bool = False) -> None:
        """Find a plausible PDU header in the window and run what follows it through the states.

        Release and abort PDUs are judged on their 10 bytes; other candidates need
        12 (a P-DATA-TF header with its first PDV header), so bytes near the end
        of the window wait for more data unless the stream has ended (``final``).

        A loop, not recursion: when the replayed bytes lead back into
        resynchronisation (a plausible header followed by junk, hundreds of times
        in a crafted stream), the scan continues in the same window from where the
        state machine gave up.  Every byte of the window is scanned at most twice
        (once as a candidate, once replayed) and the window is not copied again.
        """
        window = bytes(self.buffer)
        base = self.buffer_start
        size = len(window)
        cursor = 0
        self.buffer = bytearray()
        while True:
            found, undecided = _find_header(window, cursor, final, self.limits.max_control_pdu)
            if found < 0:
                # Keep the undecided tail (at most UNDECIDED_TAIL bytes); drop the rest.
                keep_from = max(cursor, min(undecided, max(0, size - UNDECIDED_TAIL))) if not final else size
                self.resync_skipped += keep_from - cursor
                self.buffer = bytearray(window[keep_from:])
                self.buffer_start = base + keep_from
                self.state = _RESYNC
                return
            self.resync_skipped += found - cursor
            if self.resync_skipped:
                self._report_resync(at=base + found)
            self.state = _HEADER
            # Replay the window from the header through the normal states.  position is
            # where the caller's view continues, so the replay gets its own and restores it.
            saved_position = self.position
            self.position = base
            view = memoryview(window)
            index = found
            while index < size and self.state != _RESYNC:
                index = self._step(view, index, size)
            self.position = saved_position
            if self.state != _RESYNC:
                return
            # A replayed header was not valid: _enter_resync said where to look next.
            cursor = self.buffer_start - base
            self.buffer = bytearray()

    def position_of_window(self, index: int) -> int:
        return self.buffer_start + index

    def _report_resync(self, at: int | None = None) -> None:
        params = {"length": self.resync_skipped, "before": at}
        if self.resync_after_gap:
            params["after_gap"] = True
        self.events.append(StreamProblem(at if at is not None else self.position, Problem(
            "framing.resync-skipped", params), False))
        self.resync_skipped = 0
        self.resync_after_gap = False


def _find_header(window: bytes, position: int, final: bool, max_control_pdu: int) -> tuple[int, int]:
    """(offset of the first PDU header at or after ``position`` where the PDU grammar holds
    (``detect.judge_pdu_header``) or -1, offset of the first candidate whose bytes so far cannot
    tell or len(window)).  At the end of the stream (``final``) such a candidate is not taken: a PDU
    is never guessed from bytes that cannot show its grammar."""
    size = len(window)
    while position + 6 <= size:
        byte = window[position]
        if 1 <= byte <= 7 and window[position + 1] == 0:
            verdict = judge_pdu_header(window, position, max_control_pdu)
            if verdict is None and not final:
                return -1, position
            if verdict:  # (at the end of the stream a candidate the bytes cannot judge is not taken)
                return position, size
        position += 1
    return -1, size

