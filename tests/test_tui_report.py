"""The UI's report key (H): the dialog, the page of what is loaded, the toast saying where it went."""

from __future__ import annotations

import os

from capture_tools import FIXTURES
from dicomtui.tui.app import DicomApp
from dicomtui.tui.report_flow import ReportScreen, default_path
from textual.widgets import Checkbox
from tui_tools import run_async, wait_for_workers


async def settle(app, pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        await wait_for_workers(app)
        await pilot.pause(0.05)


@run_async
async def test_report_key_writes_the_page_and_says_where(plugin_host, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = DicomApp([str(FIXTURES / "reject_abort.pcap")], host=plugin_host)
    toasts = []
    original = app.notify
    app.notify = lambda message, **kwargs: (toasts.append(message), original(message, **kwargs))[1]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("H")
        await settle(app, pilot)
        assert isinstance(app.screen, ReportScreen)
        path = app.screen.query_one("#report-path").value
        assert path == str(tmp_path / "dicomtui-report-reject_abort.html")
        await pilot.press("tab", "space")  # the first checkbox: replace AE titles
        assert app.screen.query_one("#report-map-ae", Checkbox).value
        assert str(app.screen.query_one("#report-map-ae", Checkbox).label) == "replace AE titles: yes"
        await pilot.press("tab", "tab", "tab", "enter")  # on to Write
        await settle(app, pilot, 6)
        assert not isinstance(app.screen, ReportScreen)
        page = (tmp_path / "dicomtui-report-reject_abort.html").read_text()
        assert "REJSCU" not in page and "AE titles replaced" in page  # the switch applied
        assert "called-AE-title-not-recognized" in page
        assert any(message.startswith(f"Report written to {path}") for message in toasts), toasts
        # again: the default name moves on, the first page stays
        await pilot.press("H")
        await settle(app, pilot)
        assert app.screen.query_one("#report-path").value.endswith("dicomtui-report-reject_abort~2.html")
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, ReportScreen)
        assert os.listdir(tmp_path) == ["dicomtui-report-reject_abort.html"]


@run_async
async def test_report_to_an_unwritable_place_says_so(plugin_host, tmp_path):
    app = DicomApp([str(FIXTURES / "echo_dcmtk.pcap")], host=plugin_host)
    toasts = []
    original = app.notify
    app.notify = lambda message, **kwargs: (toasts.append(message), original(message, **kwargs))[1]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("H")
        await settle(app, pilot)
        app.screen.query_one("#report-path").value = str(tmp_path / "no" / "such" / "folder" / "r.html")
        await pilot.press("enter")
        await settle(app, pilot, 6)
        assert any(message.startswith("Report not written") for message in toasts), toasts


def test_default_path_skips_taken_names(tmp_path):
    assert default_path(["/x/day.pcapng.gz"], str(tmp_path)) == str(tmp_path / "dicomtui-report-day.html")
    (tmp_path / "dicomtui-report-day.html").write_text("")
    assert default_path(["/x/day.pcapng.gz"], str(tmp_path)).endswith("dicomtui-report-day~2.html")
