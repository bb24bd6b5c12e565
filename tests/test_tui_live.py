"""The live UI with the Pilot, fed from a growing capture file (``--follow``)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from capture_tools import FIXTURES, read_frames
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.pipeline.live import LiveOptions
from dicomtui.core.wire.capture_stream import CaptureStreamParser
from dicomtui.tui.associations import AssociationsScreen
from dicomtui.tui.live import LiveDicomApp, save_captured
from test_tui_app import run_async


def _blocks(path: Path) -> list[bytes]:
    """The capture's pcapng blocks, to append to the growing file a few at a time."""
    parser = CaptureStreamParser("x")
    parser.feed(path.read_bytes())
    blocks = []
    while (block := parser.next_block()) is not None:
        blocks.append(block.raw)
    return blocks


async def wait_until(pilot, predicate, timeout: float = 60.0) -> None:
    # A generous deadline costs nothing when the condition comes quickly; a loaded machine needs it.
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            app = pilot.app
            raise AssertionError(f"condition not reached: {app.session and app.session.status} {app.load_error} {app.packet_list.row_count}")
        await pilot.pause(0.05)


def _status(app) -> str:
    from dicomtui.tui.main_screen import StatusBar

    return str(app.main_screen.query_one(StatusBar).render())


@run_async
async def test_live_ui_grows_follows_filters_and_stops(tmp_path, plugin_host):
    source = FIXTURES / "store_dcmtk.pcapng"
    blocks = _blocks(source)
    growing = tmp_path / "growing.pcapng"
    # Section and interface blocks, then the first 12 packets (part of the C-ECHO association).
    headers = [raw for raw in blocks if raw[:4] in (b"\x0a\x0d\x0d\x0a", b"\x01\x00\x00\x00")]
    packets = [raw for raw in blocks if raw not in headers]
    growing.write_bytes(b"".join(headers + packets[:12]))
    app = LiveDicomApp(LiveOptions(follow=str(growing), poll_interval=0.05), AnalysisConfig(), plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        listed = app.packet_list
        await wait_until(pilot, lambda: listed.row_count >= 3)
        first = listed.row_count
        assert "capturing" in _status(app) and "follow" in _status(app)
        assert listed.cursor == listed.row_count - 1, "follows the newest row"
        # The open association's end-only findings show as provisional (the pane refreshes with the rows).
        await wait_until(pilot, lambda: any("provisional" in str(item.message) for item in app.expert_pane.items)
                         or app.analysis.associations[0].state in ("released",))
        # More packets arrive: the list grows and the cursor stays on the newest row.
        with growing.open("ab") as handle:
            handle.write(b"".join(packets[12:18]))
        await wait_until(pilot, lambda: listed.row_count > first)
        await wait_until(pilot, lambda: listed.cursor == listed.row_count - 1)
        # The user moves up: following stops, and new rows do not move the cursor.
        await pilot.press("up")
        held = listed.cursor
        with growing.open("ab") as handle:
            handle.write(b"".join(packets[18:21]))
        await wait_until(pilot, lambda: not app.follow)
        assert listed.cursor == held
        assert "follow off" in _status(app)
        # A display filter applies to rows that arrive after it.
        app.filtering.apply("type == A-ASSOCIATE-RQ")
        requests = sum(1 for pdu in app.analysis.pdus if pdu.pdu_type == 1)
        assert requests == 1
        await wait_until(pilot, lambda: listed.rows is not None and len(listed.rows) == requests)
        with growing.open("ab") as handle:
            handle.write(b"".join(packets[21:]))
        await wait_until(pilot, lambda: len(app.analysis.associations) == 2)
        await wait_until(pilot, lambda: listed.rows is not None and len(listed.rows) == 2)
        app.filtering.apply("")
        await pilot.pause(0.1)
        assert listed.cursor == held or not app.follow
        # The associations view refreshes while open.
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, AssociationsScreen))
        await wait_until(pilot, lambda: len(app.screen.shown) == 2)
        await pilot.press("escape")
        # l resumes following; ctrl+e stops the capture and settles the findings.
        await pilot.press("l")
        assert app.follow and listed.cursor == listed.row_count - 1
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: app.analysis.finished)
        assert "stopped" in _status(app)
        assert not any("provisional" in item.message for item in app.expert_pane.items)
        reference = analyze([str(source)], AnalysisConfig(), plugin_host)
        reference.close()  # the model stays readable; the file is not left to the garbage collector
        assert len(app.analysis.pdus) == len(reference.pdus)
        assert sorted(item.message for item in app.analysis.expert) == \
            sorted(item.message for item in reference.expert if "still being" not in item.message)
        # Save everything, and only DICOM: both read back.
        everything, dicom = tmp_path / "all.pcapng", tmp_path / "dicom.pcap"
        save_captured(app.incremental, str(everything), False, plugin_host, AnalysisConfig())
        save_captured(app.incremental, str(dicom), True, plugin_host, AnalysisConfig())
        assert len(read_frames(everything)) == len(read_frames(source))
        assert 0 < len(read_frames(dicom)) <= len(read_frames(source))
        with analyze([str(dicom)], AnalysisConfig(), plugin_host) as saved:
            assert len(saved.pdus) == len(reference.pdus)
        await pilot.press("q")
        await asyncio.sleep(0)
    app.stop_and_wait()
    app.close_spools()


def test_a_capture_piped_in_opens_the_ui_with_keys_from_the_terminal(tmp_path):
    """`... | dicomtui -` in a terminal: the UI opens on the pipe (keys from /dev/tty, like less)."""
    import shutil
    import subprocess
    import sys
    import uuid

    if shutil.which("tmux") is None:
        import pytest

        pytest.skip("tmux not installed")
    session = f"dicomtui-pipe-{uuid.uuid4().hex[:8]}"
    status_file = tmp_path / "status"
    command = (f"cat {FIXTURES / 'echo_dcmtk.pcap'} | env TERM=xterm-256color "
               f"PYTHONPATH={os.environ.get('PYTHONPATH', '')} {sys.executable} -m dicomtui.cli -; "
               f"echo $? > {status_file}; sleep 30")

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=False).stdout

    subprocess.run(["tmux", "new-session", "-d", "-e", f"XDG_CONFIG_HOME={os.environ['XDG_CONFIG_HOME']}", "-s", session, "-x", "120", "-y", "30", command], check=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ("A-RELEASE" in screen() and "stopped" in screen()):
            time.sleep(0.1)
        text = screen()
        assert "A-RELEASE response" in text and "stopped (end of input)" in text, text
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 20
        while not (status_file.exists() and status_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status_file.read_text().strip() == "0", screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
