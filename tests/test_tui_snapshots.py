"""SVG snapshots of the main screens (pytest-textual-snapshot).

Regenerate after an intended visual change with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and review the SVGs in tests/__snapshots__/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_tools import wait_for_workers
from dicomtui.core.model.analysis import AnalysisConfig
from dicomtui.cli import make_host
from dicomtui.tui.app import DicomApp

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

pytest.importorskip("pytest_textual_snapshot")


def make_app(name: str) -> DicomApp:
    return DicomApp([str(FIXTURES / name)], AnalysisConfig(), make_host(load_installed=False))


def settle_then(*keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        app.filter_bar.cursor_blink = False
        for _ in range(3):
            await pilot.pause(0.02)
            await wait_for_workers(app)
        for key in keys:
            await pilot.press(key)
            for _ in range(2):
                await pilot.pause(0.02)
                await wait_for_workers(app)
        await pilot.pause(0.05)
    return run_before


def test_main_screen_80x24(snap_compare):
    assert snap_compare(make_app("echo_dcmtk.pcap"), terminal_size=(80, 24), run_before=settle_then("j", "j"))


def test_data_set_tree_and_expert_pane_120x40(snap_compare):
    keys = ("colon", "1", "2", "enter", "tab", *["j"] * 12)
    assert snap_compare(make_app("store_dcmtk.pcapng"), terminal_size=(120, 40), run_before=settle_then(*keys))


def test_failure_rows_and_invalid_filter_80x24(snap_compare):
    keys = ("colon", "1", "8", "enter", "slash", *"status =")
    assert snap_compare(make_app("reject_abort.pcap"), terminal_size=(80, 24), run_before=settle_then(*keys))


def test_associations_view_100x30(snap_compare):
    assert snap_compare(make_app("reject_abort.pcap"), terminal_size=(100, 30), run_before=settle_then("a", "j"))


def test_help_screen_80x24(snap_compare):
    assert snap_compare(make_app("echo_dcmtk.pcap"), terminal_size=(80, 24), run_before=settle_then("question_mark"))
