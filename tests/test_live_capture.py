"""Live capture end to end: real peers in a network namespace, captured through dumpcap and tcpdump.

dcmtk's storescp (bit-preserving) receives; a pynetdicom SCU (tests/live_scu.py)
associates, sends a C-ECHO and then holds the association open until told to
go on, so the tests can check that results appear while it is open.  The
results streamed live are compared with a second reading of the saved ``-w``
file (and of the ring-buffer files, read as one capture), the objects exported
live with what storescp stored, byte for byte.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCU = Path(__file__).resolve().parent / "live_scu.py"
STORESCP = "/usr/bin/storescp"
PORT = 11112

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or not os.path.exists(STORESCP),
    reason="needs root (network namespace), iproute2 and dcmtk")


def _tool_available(name: str) -> bool:
    return shutil.which(name) is not None or os.path.exists(f"/usr/sbin/{name}")


@pytest.fixture
def netns():
    name = f"dtlive-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


class Lines:
    """A pipe's lines, read by a thread, waited for with a timeout."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            self.queue.put((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))
        self.queue.put(None)

    def wait_for(self, predicate, timeout: float = 60.0) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while True:
            for when, line in self.lines:
                if predicate(line):
                    return when, line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; lines so far: {[line for _when, line in self.lines][-20:]}")
            try:
                item = self.queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                self.queue.put(None)
                for when, line in self.lines:
                    if predicate(line):
                        return when, line
                raise AssertionError(f"stream ended; lines: {[line for _when, line in self.lines][-20:]}")
            self.lines.append(item)

    def rest(self, timeout: float = 30.0) -> list[str]:
        self.thread.join(timeout)
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.lines.append(item)
        return [line for _when, line in self.lines]


def _in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def _environment() -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start_storescp(ns: str, folder: Path) -> subprocess.Popen:
    process = subprocess.Popen(_in_ns(ns, STORESCP, "+B", "-aet", "STORESCP", "-od", str(folder), str(PORT)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        listening = subprocess.run(_in_ns(ns, "ss", "-Hltn", f"sport = :{PORT}"), capture_output=True, text=True, check=False)
        if "LISTEN" in listening.stdout:
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError("storescp did not start")


def _start_dicomtui(ns: str, *arguments: str) -> tuple[subprocess.Popen, Lines, Lines]:
    process = subprocess.Popen(_in_ns(ns, sys.executable, "-m", "dicomtui.cli", *arguments),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_environment())
    out, err = Lines(process.stdout), Lines(process.stderr)
    err.wait_for(lambda line: "capturing on" in line or "dicomtui:" in line, 20)
    assert process.poll() is None, err.rest()
    return process, out, err


def _test_files() -> list[str]:
    from pydicom.data import get_testdata_file

    return [get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm"), get_testdata_file("rtplan.dcm")]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop(process: subprocess.Popen, err: Lines) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()


def _objects(lines: list[str]) -> dict[str, list[dict]]:
    objects: dict[str, list[dict]] = {}
    for line in lines:
        item = json.loads(line)
        kind = item["object"] if item["object"] != "association" else "association-" + item["event"]
        objects.setdefault(kind, []).append(item)
    return objects


def _comparable(objects: dict[str, list[dict]]) -> dict:
    """What must agree between the live stream and a reading of the saved file."""
    def without(item, *keys):
        return {key: value for key, value in item.items() if key not in keys}

    return {
        "pdus": sorted(json.dumps(without(pdu, "index", "object"), sort_keys=True) for pdu in objects.get("pdu", [])),
        "messages": sorted(json.dumps(without(message, "index", "object", "request", "responses"), sort_keys=True)
                           for message in objects.get("message", [])),
        "associations": sorted(json.dumps(without(association, "object", "event"), sort_keys=True)
                               for association in objects.get("association-end", [])),
        "expert": sorted(json.dumps(without(item, "pdu", "object", "message_index"), sort_keys=True)
                         for item in objects.get("expert", [])),
        "frames": objects["end"][0]["capture"]["frames"],
    }


@pytest.mark.parametrize("tool", ["dumpcap", "tcpdump"])
def test_live_capture_streams_while_open_and_equals_the_saved_file(tmp_path, netns, tool):
    if not _tool_available(tool):
        pytest.skip(f"{tool} not installed")
    received = tmp_path / "received"
    received.mkdir()
    saved = tmp_path / "live.pcapng"
    ring = ["-b", "filesize:10", "-b", "files:1000"] if tool == "tcpdump" else []
    scp = _start_storescp(netns, received)
    try:
        process, out, err = _start_dicomtui(netns, "-i", "lo", "-f", f"tcp port {PORT}", "--capture-tool", tool,
                                            "--jsonl", "-w", str(saved), *ring)
        children = _children(process.pid)
        assert children, "the capture tool runs as a child process"
        scu = subprocess.Popen(_in_ns(netns, sys.executable, str(SCU), "127.0.0.1", str(PORT), *_test_files()),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=_environment())
        scu_out = Lines(scu.stdout)
        echoed_at, _line = scu_out.wait_for(lambda line: line.startswith("ECHOED"), 30)
        first_row_at, _line = out.wait_for(lambda line: '"object": "pdu"' in line, 60)
        shown_at, _line = out.wait_for(lambda line: '"C-ECHO-RSP"' in line and '"object": "message"' in line, 60)
        # The association is still open: the SCU waits for our go-ahead.
        assert scu.poll() is None
        print(f"{tool}: first row {first_row_at - echoed_at:+.3f} s, C-ECHO-RSP message {shown_at - echoed_at:+.3f} s "
              "relative to the SCU seeing its C-ECHO response")
        assert shown_at - echoed_at < 1.0, f"C-ECHO shown {shown_at - echoed_at:.3f} s after it happened"
        scu.stdin.write(b"go\n")
        scu.stdin.flush()
        scu_out.wait_for(lambda line: line == "DONE", 60)
        assert scu.wait(30) == 0
        out.wait_for(lambda line: '"event": "end"' in line and '"object": "association"' in line, 60)
        assert _stop(process, err) == 0, err.rest()
        lines = out.rest()
        for child in children:
            assert not _alive(child), f"capture tool {child} left running"
    finally:
        scp.terminate()
        scp.wait(10)
    live = _objects(lines)
    assert live["end"][0]["stop_reason"] == "interrupted"
    assert first_row_at <= shown_at
    commands = [message["command"] for message in live["message"]]
    assert commands.count("C-STORE-RQ") == 3 and commands.count("C-STORE-RSP") == 3
    # What was shown live equals a reading of the saved capture afterwards.
    if ring:
        files = sorted(tmp_path.glob("live_*.pcapng"))
        assert len(files) > 2, "the ring buffer rotated"
        assert live["end"][0]["written"] == [str(path) for path in files]
        arguments = [item for path in files for item in ("-r", str(path))]
    else:
        assert saved.exists()
        arguments = [str(saved)]
    reread = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--jsonl", *arguments], capture_output=True,
                            text=True, env=_environment(), timeout=60, check=False)
    assert reread.returncode == 0, reread.stderr
    assert _comparable(live) == _comparable(_objects(reread.stdout.splitlines()))


def test_live_export_records_every_object_byte_exact(tmp_path, netns):
    if not _tool_available("dumpcap") and not _tool_available("tcpdump"):
        pytest.skip("no capture tool")
    import pydicom

    received = tmp_path / "received"
    received.mkdir()
    out_dir = tmp_path / "out"
    scp = _start_storescp(netns, received)
    try:
        # The autostop is only a safety net: the test stops the capture itself once the objects are there.
        process, out, err = _start_dicomtui(netns, "-i", "lo", "-a", "duration:120", "--export", str(out_dir))
        scu = subprocess.run(_in_ns(netns, sys.executable, str(SCU), "127.0.0.1", str(PORT), *_test_files()),
                             input=b"go\n", capture_output=True, timeout=60, env=_environment(), check=False)
        assert scu.returncode == 0, scu.stderr
        # Objects are written while the capture is still running (before the autostop).
        deadline = time.monotonic() + 60
        while len(list(out_dir.glob("*.dcm"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None
        assert len(list(out_dir.glob("*.dcm"))) == 3
        assert _stop(process, err) == 0, err.rest()
    finally:
        scp.terminate()
        scp.wait(10)
    assert not list(out_dir.glob(".*.dicomtui-partial-*")), "temporary files left behind"

    def dataset_bytes(path: Path) -> tuple[str, bytes]:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        with open(path, "rb") as handle:
            handle.seek(132)
            group_length = int.from_bytes(handle.read(12)[8:12], "little")
            handle.seek(132 + 12 + group_length)
            return dataset.file_meta.MediaStorageSOPInstanceUID, handle.read()

    stored = dict(dataset_bytes(path) for path in received.iterdir())
    exported = dict(dataset_bytes(path) for path in out_dir.glob("*.dcm"))
    assert len(stored) == 3
    assert exported == stored


def test_follow_reads_a_file_another_process_writes(tmp_path, netns):
    if not _tool_available("tcpdump"):
        pytest.skip("tcpdump not installed")
    received = tmp_path / "received"
    received.mkdir()
    growing = tmp_path / "growing.pcap"
    scp = _start_storescp(netns, received)
    writer = subprocess.Popen(_in_ns(netns, "tcpdump", "-Z", "root", "-i", "lo", "-U", "--immediate-mode", "-w",
                                     str(growing), "tcp", "port", str(PORT)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        Lines(writer.stderr).wait_for(lambda line: "listening on" in line, 20)
        follow = subprocess.Popen([sys.executable, "-m", "dicomtui.cli", "--follow", str(growing), "--summary"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_environment())
        out = Lines(follow.stdout)
        scu = subprocess.Popen(_in_ns(netns, sys.executable, str(SCU), "127.0.0.1", str(PORT), *_test_files()),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=_environment())
        Lines(scu.stdout).wait_for(lambda line: line.startswith("ECHOED"), 30)
        out.wait_for(lambda line: "C-ECHO-RSP" in line, 60)
        assert scu.poll() is None
        scu.communicate(b"go\n", timeout=60)
        out.wait_for(lambda line: "A-RELEASE response" in line, 60)
        follow.send_signal(signal.SIGINT)
        assert follow.wait(20) == 0
        lines = out.rest()
    finally:
        writer.send_signal(signal.SIGINT)
        writer.wait(10)
        scp.terminate()
        scp.wait(10)
    assert sum("C-STORE-RQ" in line for line in lines) == 3


def test_real_command_in_tmux_shows_the_c_echo_within_a_second(tmp_path, netns):
    """`dicomtui -i lo -f "tcp port 11112"` in a terminal: echoscu's C-ECHO appears on screen at once."""
    if shutil.which("tmux") is None or not os.path.exists("/usr/bin/echoscu"):
        pytest.skip("needs tmux and dcmtk's echoscu")
    if not (_tool_available("dumpcap") or _tool_available("tcpdump")):
        pytest.skip("no capture tool")
    received = tmp_path / "received"
    received.mkdir()
    scp = _start_storescp(netns, received)
    session = f"dicomtui-live-{uuid.uuid4().hex[:8]}"
    status_file = tmp_path / "status"
    pythonpath = os.environ.get("PYTHONPATH", "")
    command = (f"ip netns exec {netns} env TERM=xterm-256color PYTHONPATH={pythonpath} {sys.executable} -m "
               f"dicomtui.cli -i lo -f 'tcp port {PORT}'; echo $? > {status_file}; sleep 30")

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=False).stdout

    def wait_screen(text: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in screen():
                return time.monotonic()
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not on screen:\n{screen()}")

    subprocess.run(["tmux", "new-session", "-d", "-e", f"XDG_CONFIG_HOME={os.environ['XDG_CONFIG_HOME']}", "-s", session, "-x", "120", "-y", "30", command], check=True)
    try:
        wait_screen("capturing")
        echo = subprocess.run(_in_ns(netns, "/usr/bin/echoscu", "-aec", "STORESCP", "127.0.0.1", str(PORT)),
                              capture_output=True, timeout=30, check=False)
        echoed = time.monotonic()
        assert echo.returncode == 0, echo.stderr
        shown = wait_screen("C-ECHO-RSP", 10)
        print(f"C-ECHO on screen {shown - echoed:.3f} s after echoscu returned")
        assert shown - echoed < 1.0
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 20
        while not (status_file.exists() and status_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status_file.read_text().strip() == "0", screen()
        assert "Traceback" not in screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
        scp.terminate()
        scp.wait(10)
