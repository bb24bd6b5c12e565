"""Running a privilege-separated capture tool (dumpcap, else tcpdump) whose output we read.

dicomtui never opens raw sockets itself: like termshark it starts Wireshark's
``dumpcap`` (or ``tcpdump`` where dumpcap is missing), which holds the capture
privilege and writes the capture to a pipe.  dumpcap writes pcapng, tcpdump
writes pcap; ``capture_stream`` reads either as it arrives.

This module is the only place that knows the tools' command lines and their
error messages: it builds the argv, turns the tools' complaints (no such
interface, no permission) into one-line errors that say how to fix them,
lists interfaces (``-D``), collects the dropped-packet count, and stops the
tool cleanly so no child process outlives dicomtui.

Stopping: the tool runs in its own session (a Ctrl-C in the terminal reaches
dicomtui only, which then stops the tool and drains the pipe, so nothing is
lost).  ``stop`` sends SIGTERM, both tools then write out what they hold and
exit; a tool that has not exited within a few seconds is killed.  If dicomtui
itself dies, the tool gets SIGTERM from the kernel (parent-death signal) or,
for a tool with file capabilities where the kernel clears that setting, a
broken pipe on its next write.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass, field

TOOLS = ("dumpcap", "tcpdump")
SEARCH_DIRECTORIES = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/sbin", "/bin")
STOP_TIMEOUT = 5.0
READY_TIMEOUT = 10.0

PERMISSION_FIX = {
    "dumpcap": "add your user to the wireshark group (sudo usermod -aG wireshark $USER, then log in again; on "
               "Debian/Ubuntu first sudo dpkg-reconfigure wireshark-common and answer Yes), or let dumpcap "
               "capture: sudo setcap cap_net_raw,cap_net_admin=eip {path}",
    "tcpdump": "run dicomtui as root, or let tcpdump capture: sudo setcap cap_net_raw,cap_net_admin=eip {path} "
               "(or install dumpcap and join the wireshark group)",
}


class CaptureToolError(Exception):
    """Live capture cannot start or failed.  The message is one line for the user, with the fix."""


@dataclass(slots=True)
class CaptureRequest:
    """What to capture (tshark's options)."""

    interfaces: list[str] = field(default_factory=list)
    capture_filter: str = ""
    snaplen: int = 0  # 0: the tool's default (262144)
    tool: str = ""  # "dumpcap" or "tcpdump"; "" picks dumpcap when installed


def find_tool(preferred: str = "") -> tuple[str, str]:
    """(name, path) of the capture tool to use; raises CaptureToolError when none is installed."""
    names = (preferred,) if preferred else TOOLS
    for name in names:
        path = shutil.which(name)
        if path is None:
            for directory in SEARCH_DIRECTORIES:  # sbin is often not on an ordinary user's PATH
                candidate = os.path.join(directory, name)
                if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                    path = candidate
                    break
        if path is not None:
            return name, path
    if preferred:
        raise CaptureToolError(f"{preferred} is not installed (live capture uses dumpcap or tcpdump)")
    raise CaptureToolError("live capture needs dumpcap (Wireshark's capture tool) or tcpdump, and neither is "
                           "installed: sudo apt install wireshark-common (or tcpdump); dnf install wireshark-cli")


def list_interfaces(preferred: str = "") -> list[str]:
    """The tool's ``-D`` output, one interface per line (``1. eth0``)."""
    name, path = find_tool(preferred)
    try:
        done = subprocess.run([path, "-D"], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL, check=False)
    except PermissionError:
        raise CaptureToolError(f"you may not run {path}: " + PERMISSION_FIX[name].format(path=path)) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CaptureToolError(f"{name} -D failed: {exc}") from None
    lines = [line.rstrip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 and not lines:
        raise CaptureToolError(_explain(name, path, done.stderr, []) or
                               f"{name} -D failed: {_first_line(done.stderr)}")
    return lines


def _known_interfaces() -> set[str]:
    try:
        return {name for _index, name in socket.if_nameindex()} | {"any"}
    except OSError:
        return set()


def check_interfaces(request: CaptureRequest, tool: str, path: str) -> None:
    """A clear error for an interface that does not exist, before the tool says it less clearly."""
    known = _known_interfaces()
    for interface in request.interfaces:
        if interface in known or interface.isdigit():
            continue
        # Not a network device: maybe one of the tool's own sources (nflog, dbus-system, ...).
        try:
            listed = list_interfaces(tool)
        except CaptureToolError:
            listed = []
        names = {re.sub(r"^\d+\.\s*", "", line).split(" ", 1)[0] for line in listed}
        if interface not in names:
            choices = ", ".join(sorted(known - {"any"})) or "none found"
            raise CaptureToolError(f"there is no interface named {interface!r} (interfaces here: {choices}, any; "
                                   "dicomtui -D lists them)")
    if tool == "tcpdump" and len(request.interfaces) > 1:
        raise CaptureToolError("tcpdump captures on one interface at a time: use -i any, or install dumpcap "
                               "(wireshark-common), which captures on several")


def tool_argv(tool: str, path: str, request: CaptureRequest) -> list[str]:
    """The command line that captures ``request`` and writes it to standard output."""
    interfaces = request.interfaces or ["any"]
    if tool == "dumpcap":
        argv = [path, "-q", "-w", "-"]
        for interface in interfaces:
            argv += ["-i", interface]
        if request.snaplen:
            argv += ["-s", str(request.snaplen)]
        if request.capture_filter:
            argv += ["-f", request.capture_filter]
        return argv
    # -U: write each packet as it arrives (not a buffer at a time); nanosecond timestamps.
    # --immediate-mode: hand over each packet at once, not when the kernel's buffer block fills.
    argv = [path, "-U", "--immediate-mode", "-w", "-", "--time-stamp-precision=nano", "-i", interfaces[0]]
    if request.snaplen:
        argv += ["-s", str(request.snaplen)]
    if request.capture_filter:
        argv += [request.capture_filter]
    return argv


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "no message"


def _explain(tool: str, path: str, stderr: str, interfaces: list[str]) -> str:
    """A one-line message with the fix for what the tool complained about, or ''."""
    lower = stderr.lower()
    if "permission" in lower or "operation not permitted" in lower:
        where = f" on {', '.join(interfaces)}" if interfaces else ""
        return f"no permission to capture{where} with {tool}: " + PERMISSION_FIX[tool].format(path=path)
    if "no such device" in lower or "there is no device" in lower:
        return f"there is no interface named {', '.join(map(repr, interfaces))} (dicomtui -D lists them)"
    if "syntax error" in lower or "can't parse filter" in lower or "invalid capture filter" in lower \
            or "filter expression" in lower:
        # dumpcap says "Capturing on ..." first and gives the reason in parentheses two lines on.
        reason = re.search(r"valid capture filter \((.+)\)", stderr)
        return "invalid capture filter: " + (reason.group(1) if reason else _first_line(
            "\n".join(line for line in stderr.splitlines() if not line.startswith("Capturing on"))))
    return ""


_DUMPCAP_DROPS = re.compile(r"Packets received/dropped on interface '[^']*': (\d+)/(\d+)")
_TCPDUMP_DROPS = re.compile(r"(\d+) packets? dropped by kernel")


class CaptureProcess:
    """One running capture tool; ``stdout`` is the capture stream."""

    def __init__(self, request: CaptureRequest) -> None:
        self.request = request
        self.tool, self.path = find_tool(request.tool)
        check_interfaces(request, self.tool, self.path)
        self.argv = tool_argv(self.tool, self.path, request)
        self.process: subprocess.Popen | None = None
        self.stderr_lines: list[str] = []
        self.dropped: int | None = None  # packets the kernel or the tool dropped, when reported
        self._ready = threading.Event()
        self._capturing = False
        self._stderr_thread: threading.Thread | None = None
        self._stopping = False

    @property
    def stdout(self):
        return self.process.stdout if self.process is not None else None

    def start(self, wait_ready: bool = True) -> None:
        try:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, preexec_fn=_die_with_parent, bufsize=0)
        except PermissionError:
            raise CaptureToolError(f"you may not run {self.path}: "
                                   + PERMISSION_FIX[self.tool].format(path=self.path)) from None
        except OSError as exc:
            raise CaptureToolError(f"cannot start {self.path}: {exc.strerror or exc}") from None
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="capture-tool-stderr", daemon=True)
        self._stderr_thread.start()
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the tool says it is capturing; raise the tool's complaint if it exited instead."""
        self._ready.wait(timeout)
        if not self._capturing:
            # stderr ended (or stayed silent) without "capturing": the tool is exiting with a complaint.
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is not None:
            self._stderr_thread.join(2)
            message = self.failure_message()
            self.wait()
            raise CaptureToolError(message)

    def failure_message(self) -> str:
        if self._stderr_thread is not None:
            self._stderr_thread.join(2)
        stderr = "\n".join(self.stderr_lines)
        return _explain(self.tool, self.path, stderr, self.request.interfaces) or \
            f"{self.tool} failed (exit status {self.process.returncode}): {_first_line(stderr)}"

    def _read_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if len(self.stderr_lines) < 200:
                self.stderr_lines.append(line)
            if line.startswith("Capturing on") or "listening on" in line:
                self._capturing = True
                self._ready.set()
            match = _DUMPCAP_DROPS.search(line)
            if match:
                self.dropped = (self.dropped or 0) + int(match.group(2))
            match = _TCPDUMP_DROPS.search(line)
            if match:
                self.dropped = int(match.group(1))
        self._ready.set()

    def request_statistics(self) -> None:
        """Ask tcpdump for its counts now (SIGUSR1); dumpcap reports drops when it stops."""
        if self.tool == "tcpdump" and self.process is not None and self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGUSR1)
            except OSError:
                pass

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """Ask the tool to finish (SIGTERM), wait for it; kill it if it hangs.  Returns its exit status.

        The caller keeps reading ``stdout`` to its end (the tool writes out what it holds).
        """
        process = self.process
        if process is None:
            return None
        self._stopping = True
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
            except OSError:
                pass
        return process.returncode

    def wait(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Reap the tool (after ``stdout`` reached its end); kill it if it does not exit in ``timeout``."""
        process = self.process
        if process is None:
            return None
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(2)
        for stream in (process.stdout, process.stderr):
            try:
                stream.close()
            except (OSError, AttributeError):
                pass
        return process.returncode

    def failed(self) -> bool:
        """True when the tool exited on its own with an error (not because we stopped it)."""
        process = self.process
        if process is None or self._stopping:
            return False
        try:
            process.wait(2)  # its output ended: it is exiting
        except subprocess.TimeoutExpired:
            return False
        return process.returncode != 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
