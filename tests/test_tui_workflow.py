"""The TUI's workflow view (W) on the recorded workflow captures, driven through Textual's Pilot."""

from __future__ import annotations

from capture_tools import FIXTURES
from dicomtui.core.model.analysis import AnalysisConfig
from dicomtui.tui.app import DicomApp
from dicomtui.tui.workflow_screen import WorkflowScreen
from tui_tools import run_async, wait_for_workers


async def settle(app, pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.pause(0.02)
        await wait_for_workers(app)
    await pilot.pause(0.02)


def open_app(name, plugin_host) -> DicomApp:
    return DicomApp([str(FIXTURES / name)], AnalysisConfig(), plugin_host)


@run_async
async def test_workflow_view_lists_stages_and_enter_goes_to_the_report(plugin_host):
    app = open_app("wf_all_good.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("W")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, WorkflowScreen)
        assert [row.stage for row in screen.shown] == ["", "scheduled", "performed", "stored", "committed"]
        assert not any(row.problem for row in screen.shown)
        await pilot.press("j", "j", "j", "j", "enter")  # the committed row: its N-EVENT-REPORT
        await settle(app, pilot)
        assert not isinstance(app.screen, WorkflowScreen)
        [commitment] = app.analysis.workflow.commitments
        report = app.analysis.messages[commitment.reports[0]]
        assert report.command_name == "N-EVENT-REPORT-RQ"
        assert app.packet_list.selected_pdu == report.first_pdu


@run_async
async def test_workflow_view_marks_problems_and_escape_closes(plugin_host):
    app = open_app("wf_commit_reverse_refused.pcap", plugin_host)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("W")
        await settle(app, pilot)
        screen = app.screen
        committed = [row for row in screen.shown if row.stage == "committed"]
        assert len(committed) == 1 and committed[0].problem and "REFUSED" in committed[0].text
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, WorkflowScreen)


@run_async
async def test_workflow_view_on_a_capture_without_workflow(plugin_host):
    app = open_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("W")
        await settle(app, pilot)
        assert isinstance(app.screen, WorkflowScreen) and app.screen.shown == []
        await pilot.press("enter", "q")
        await settle(app, pilot)
        assert not isinstance(app.screen, WorkflowScreen)
