"""End to end: the real ``dicomtui`` command in tmux at 80x24, read back from the screen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DICOMTUI = Path(sys.executable).parent / "dicomtui"

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
    pytest.mark.skipif(not DICOMTUI.exists(), reason="dicomtui script not installed next to python"),
]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def run_in_tmux(tmp_path: Path, arguments: str, environment: str = "TERM=xterm-256color"):
    session = f"dicomtui-e2e-{uuid.uuid4().hex[:8]}"
    status_file = tmp_path / "status"
    # Textual draws on stderr, so it is not redirected: messages are read from the screen.
    command = f"env {environment} {DICOMTUI} {arguments}; echo $? > {status_file}; sleep 30"
    tmux("new-session", "-d", "-e", f"XDG_CONFIG_HOME={os.environ['XDG_CONFIG_HOME']}", "-s", session, "-x", "80", "-y", "24", command)
    return session, status_file


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


@pytest.mark.parametrize("environment", ["TERM=xterm-256color COLORTERM=", "TERM=xterm-256color NO_COLOR=1"])
def test_dicomtui_runs_at_80x24_and_quits(tmp_path, environment):
    session, status_file = run_in_tmux(tmp_path, str(FIXTURES / "echo_dcmtk.pcap"), environment)
    try:
        shown = wait_for(lambda: (text := screen(session)) and "A-RELEASE" in text and "8 PDUs" in text and text)
        assert "A-ASSOCIATE request ECHOSCU" in shown
        assert "C-ECHO-RQ" in shown
        lines = shown.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        tmux("send-keys", "-t", session, "j", "j")
        assert wait_for(lambda: "PDU 3" in screen(session))
        tmux("send-keys", "-t", session, "q")
        status = wait_for(lambda: status_file.exists() and status_file.read_text().strip())
        assert status == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_unreadable_capture_gives_a_clean_message_and_status_1(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_text("not a capture at all\n")
    session, status_file = run_in_tmux(tmp_path, str(bad))
    try:
        status = wait_for(lambda: status_file.exists() and status_file.read_text().strip())
        assert status == "1"
        text = screen(session)
        assert "dicomtui: " in text and "not a pcap or pcapng capture" in text
        assert "Traceback" not in text
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
