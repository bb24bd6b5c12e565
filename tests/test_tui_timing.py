"""The timing screens at 80x24, with NO_COLOR: statistics, ladder (Enter jumps to the PDU), plots."""

from __future__ import annotations

import os

from test_tui_app import make_app, run_async, settle

from dicomtui.tui.ladder_screen import LadderScreen
from dicomtui.tui.plots_screen import PlotsScreen
from dicomtui.tui.stats_screen import StatsScreen


def screen_text(app) -> str:
    """What the terminal shows, as plain text (the SVG screenshot's text)."""
    import html
    import re

    svg = app.export_screenshot()
    return html.unescape("".join(re.findall(r">([^<>]*)</text>", svg))).replace("\xa0", " ")


@run_async
async def test_statistics_then_ladder_then_the_pdu(plugin_host, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app("timing_scp_sleep.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("t")
        await settle(app, pilot)
        assert isinstance(app.screen, StatsScreen)
        text = screen_text(app)
        assert "Dominant cause" in text and "SCP processing" in text
        await pilot.press("3")  # response times by command
        await settle(app, pilot)
        table = app.screen.query_one("#stats-table")
        assert table.row_count == 1 and "C-STORE" in str(table.get_row_at(0)[0])
        await pilot.press("6", "right", "s")  # TCP table sorted by handshake RTT
        await settle(app, pilot)
        assert app.screen.sorted_by == (1, True)
        await pilot.press("2", "enter")  # the association's budget row -> its ladder
        await settle(app, pilot)
        assert isinstance(app.screen, LadderScreen)
        text = screen_text(app)
        assert "SCU TIMINGSCU" in text and "-->|" in text and "|<--" in text
        ladder = app.screen
        rows = ladder.rows
        target = next(number for number, row in enumerate(rows) if "C-STORE-RSP" in row.label)
        for _ in range(target):
            await pilot.press("j")
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, LadderScreen)
        assert app.packet_list.selected_pdu == rows[target].pdu


@run_async
async def test_ladder_per_message_collapses_runs(plugin_host):
    app = make_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", "9", "enter")  # a C-STORE-RQ of association 1
        await settle(app, pilot)
        await pilot.press("L")
        await settle(app, pilot)
        assert isinstance(app.screen, LadderScreen) and app.screen.association == 1
        assert any(row.count == 3 and "P-DATA x3" in row.label for row in app.screen.rows)
        await pilot.press("m")
        await settle(app, pilot)
        labels = [row.label for row in app.screen.rows]
        assert sum("C-STORE-RQ" in label for label in labels) == 3
        assert any("[40." in label or "[4" in label for label in labels if "RSP" in label)


@run_async
async def test_plots_draw_at_80x24_without_colour(plugin_host, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app("timing_rcvbuf.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", "3", "enter")
        await settle(app, pilot)
        await pilot.press("o")
        await settle(app, pilot, rounds=5)
        assert isinstance(app.screen, PlotsScreen) and app.screen.scoped
        text = screen_text(app)
        assert "Throughput" in text and "Response time" in text and "3 responses" in text
        await pilot.press("a")
        await settle(app, pilot)
        assert not app.screen.scoped
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, PlotsScreen)
    assert os.environ.get("NO_COLOR") == "1"
