"""A live session: bytes from a capture tool, a followed file or a pipe, into an IncrementalAnalysis.

The I/O half of live capture (``incremental`` is the sans-IO half).  One loop
reads whatever the source has (``select`` with a short timeout, so a stop
request or an autostop is noticed within ``poll_interval``), feeds it, and
hands each ``LiveUpdate`` to the caller: the headless printers, the exporter or
the TUI's worker.

Stopping, whatever the reason (``stop()`` from another thread or a signal
handler, ``-a duration:SEC``, ``-a packets:N``/``-c N``, the tool exiting, the
end of a pipe): the capture tool is asked to finish (SIGTERM), the pipe is
read to its end, so nothing it captured is lost, the tool is reaped (no child
process is left), the ``-w`` files are flushed and closed, and the analysis is
settled (``IncrementalAnalysis.finish``).
"""

from __future__ import annotations

import os
import select
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from dicomtui.core.pipeline.incremental import IncrementalAnalysis, LiveUpdate
from dicomtui.core.wire.capture import CaptureError, CaptureNote
from dicomtui.core.wire.capture_stream import GZIP_MAGIC, CaptureFileWriter
from dicomtui.core.wire.capture_tool import CaptureProcess, CaptureRequest

READ_SIZE = 1 << 20
QUICK_POLL = 0.03  # after new bytes, report within this (a burst is still batched, not one poll per packet)
DRAIN_TIMEOUT = 5.0


@dataclass(slots=True)
class LiveOptions:
    """The live-capture part of the command line."""

    request: CaptureRequest | None = None  # capture with a tool
    follow: str = ""  # --follow FILE
    pipe_fd: int | None = None  # "-" (standard input)
    write: str = ""  # -w FILE
    ring_filesize_kb: int = 0  # -b filesize:KB
    ring_files: int = 0  # -b files:N
    duration: float = 0.0  # -a duration:SEC
    packets: int = 0  # -a packets:N, -c N
    poll_interval: float = 0.2

    @property
    def name(self) -> str:
        if self.follow:
            return self.follow
        if self.pipe_fd is not None:
            return "<stdin>"
        interfaces = self.request.interfaces if self.request else []
        return "live:" + ",".join(interfaces or ["any"])


@dataclass(slots=True)
class LiveStatus:
    """What the status line shows."""

    capturing: bool = False
    tool: str = ""
    source: str = ""
    packets: int = 0
    pdus: int = 0
    packets_per_second: float = 0.0
    pdus_per_second: float = 0.0
    dropped: int | None = None  # by the kernel or the capture tool, when it says
    stop_reason: str = ""
    error: str = ""
    written: list[str] = field(default_factory=list)


class _Gunzip:
    """Undo gzip on the fly when a pipe carries a compressed capture."""

    def __init__(self) -> None:
        self.decided = False
        self.inflater = None
        self.head = b""

    def __call__(self, data: bytes) -> bytes:
        if not self.decided:
            self.head += data
            if len(self.head) < 2 and data:
                return b""
            self.decided = True
            data, self.head = self.head, b""
            if data[:2] == GZIP_MAGIC:
                self.inflater = zlib.decompressobj(wbits=31)
        if self.inflater is None:
            return data
        try:
            return self.inflater.decompress(data)
        except zlib.error as exc:
            raise CaptureError(f"damaged gzip data: {exc}") from None


class LiveSession:
    """Run a live capture into ``incremental`` until stopped; see the module docstring."""

    def __init__(self, options: LiveOptions, incremental: IncrementalAnalysis) -> None:
        self.options = options
        self.incremental = incremental
        self.process: CaptureProcess | None = None
        self.writer: CaptureFileWriter | None = None
        self.status = LiveStatus(source=options.name)
        self._stop = threading.Event()
        self._fd: int | None = None
        self._file = None
        self._gunzip = _Gunzip()
        self._rate_mark: tuple[float, int, int] | None = None
        if options.packets:
            incremental.packet_limit = options.packets

    # -- control ---------------------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to stop (any thread, or a signal handler)."""
        if not self.status.stop_reason:
            self.status.stop_reason = reason
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        """Open the source (start the capture tool).  Raises CaptureToolError or CaptureError."""
        options = self.options
        if options.write:
            self.writer = CaptureFileWriter(options.write, options.ring_filesize_kb, options.ring_files)
            self.incremental.listeners.append(self.writer)
        if options.request is not None:
            self.process = CaptureProcess(options.request)
            self.process.start()
            self.status.tool = self.process.tool
            self._fd = self.process.stdout.fileno()
        elif options.follow:
            try:
                self._file = open(options.follow, "rb")
            except OSError as exc:
                raise CaptureError(f"{options.follow}: cannot open: {exc.strerror or exc}") from None
            self._fd = self._file.fileno()
        else:
            self._fd = options.pipe_fd if options.pipe_fd is not None else 0
        self.status.capturing = True
        self._rate_mark = (time.monotonic(), 0, 0)

    # -- the loop --------------------------------------------------------------------------

    def run(self, on_update: Callable[[LiveUpdate], None] | None = None) -> LiveUpdate:
        """Read, analyse and report until stopped; returns the final (settled) update."""
        if self._fd is None:
            self.start()
        options = self.options
        started = time.monotonic()
        deadline = started + options.duration if options.duration else None
        next_poll = started
        last_poll = started
        try:
            while not self._stop.is_set():
                timeout = max(0.0, min(options.poll_interval, next_poll - time.monotonic()))
                if deadline is not None:
                    timeout = max(0.0, min(timeout, deadline - time.monotonic()))
                fed = self.incremental.packets
                ended = self._read_available(timeout)
                now = time.monotonic()
                if self.incremental.packets != fed:
                    next_poll = min(next_poll, last_poll + QUICK_POLL)
                if self.incremental.stopped_by_limit:
                    self.stop(f"autostop after {options.packets} packets")
                elif deadline is not None and now >= deadline:
                    self.stop(f"autostop after {options.duration:g} s")
                elif ended:
                    self.stop(self._end_reason())
                if now >= next_poll or self._stop.is_set():
                    self._poll(on_update)
                    last_poll = now
                    next_poll = now + options.poll_interval
        finally:
            self._shutdown()
        final = self.incremental.finish()
        if self.process is not None:
            self.status.dropped = self._dropped()
        self._update_status(final)
        self.status.capturing = False
        if on_update is not None:
            on_update(final)
        return final

    def _end_reason(self) -> str:
        if self.process is not None:
            if self.process.failed():
                self.status.error = self.process.failure_message()
                return f"{self.process.tool} failed: {self.status.error}"  # the --jsonl line shows only this
            return f"{self.process.tool} exited"
        return "end of input"

    def _read_available(self, timeout: float) -> bool:
        """Read what the source has within ``timeout``; True at the end of a pipe."""
        fd = self._fd
        if self._file is not None:  # a followed file: read to its current end, then wait
            data = os.read(fd, READ_SIZE)
            if data:
                self._feed(data)
                return False
            time.sleep(timeout)
            return False
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return False
        data = os.read(fd, READ_SIZE)
        if not data:
            return True
        self._feed(data)
        return False

    def _feed(self, data: bytes) -> None:
        data = self._gunzip(data)
        if data:
            self.incremental.feed(data)

    def _poll(self, on_update) -> None:
        update = self.incremental.poll()
        if self.writer is not None:
            self.writer.flush()
        if self.process is not None:
            self.process.request_statistics()
            self.status.dropped = self._dropped()
        self._update_status(update)
        if on_update is not None:
            on_update(update)

    def _dropped(self) -> int | None:
        from_blocks = sum(self.incremental.parser.dropped.values()) if self.incremental.parser.dropped else None
        from_tool = self.process.dropped if self.process is not None else None
        values = [value for value in (from_blocks, from_tool) if value is not None]
        return max(values) if values else None

    def _update_status(self, update: LiveUpdate) -> None:
        status = self.status
        analysis = self.incremental.analysis
        status.packets = analysis.frame_count
        status.pdus = len(analysis.pdus)
        now = time.monotonic()
        mark_time, mark_packets, mark_pdus = self._rate_mark or (now, 0, 0)
        elapsed = now - mark_time
        if elapsed >= 1.0:
            status.packets_per_second = (status.packets - mark_packets) / elapsed
            status.pdus_per_second = (status.pdus - mark_pdus) / elapsed
            self._rate_mark = (now, status.packets, status.pdus)
        if self.writer is not None:
            status.written = self.writer.kept_paths

    def _shutdown(self) -> None:
        """Stop the tool, read its pipe to the end, reap it, close the -w files."""
        process = self.process
        try:
            if process is not None and process.process is not None and self._fd is not None:
                process.stop()
                deadline = time.monotonic() + DRAIN_TIMEOUT
                while time.monotonic() < deadline:
                    try:
                        if self._read_available(0.2):
                            break
                    except CaptureError:
                        break
                process.wait()
                if process.failed() and not self.status.error:
                    self.status.error = process.failure_message()
            elif self._file is not None:
                try:
                    while data := os.read(self._fd, READ_SIZE):  # what was written up to the stop
                        self._feed(data)
                except CaptureError:
                    pass
                self._file.close()
                self._file = None
        finally:
            if self.writer is not None:
                self.writer.close()
            leftover = self.incremental.parser.buffered
            if leftover:
                self.incremental.analysis.sources[0].notes.append(
                    CaptureNote(self.options.name, f"the input ended inside a block ({leftover} bytes); "
                                                   "they were not analysed"))
