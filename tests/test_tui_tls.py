"""The TUI on DICOM over TLS: K loads a key log and reloads; the tree shows a TLS line."""

from __future__ import annotations

from pathlib import Path

from dicomtui.core.model.analysis import AnalysisConfig
from dicomtui.tui.app import DicomApp
from dicomtui.tui.associations import association_detail
from dicomtui.tui.keylog_screen import KeyLogScreen
from tui_tools import run_async, wait_for_workers

TLS = Path(__file__).resolve().parent.parent / "fixtures" / "tls"


async def settle(app, pilot, rounds: int = 4) -> None:
    for _ in range(rounds):
        await pilot.pause(0.05)
        await wait_for_workers(app)
    await pilot.pause(0.05)


def _labels(tree) -> list[str]:
    found = []

    def walk(node):
        for child in node.children:
            found.append(str(child.label))
            walk(child)
    walk(tree.root)
    return found


@run_async
async def test_k_loads_a_key_log_and_the_tree_shows_the_tls_line(plugin_host, tmp_path):
    app = DicomApp([str(TLS / "tls13_keyupdate.pcap")], AnalysisConfig(), plugin_host,
                   preferences_path=tmp_path / "config.toml")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.packet_list.row_count == 0  # encrypted: no DICOM without the key log
        await pilot.press("K")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, KeyLogScreen)
        await pilot.press(*"/nonexistent/keys", "enter")  # refused: the dialog stays
        await settle(app, pilot, 1)
        assert isinstance(app.screen, KeyLogScreen)
        field = app.screen.query_one("#keylog-path")
        field.value = str(TLS / "tls13_keyupdate.keys")
        await pilot.press("enter")
        await settle(app, pilot, 8)
        assert not isinstance(app.screen, KeyLogScreen)
        assert app.config.options["tls.keylog_file"] == str(TLS / "tls13_keyupdate.keys")
        assert app.packet_list.row_count == 14
        await pilot.press("j")
        await settle(app, pilot)
        app.detail_tree.root.children[0].expand()  # the PDU overview: its fields are added when opened
        await settle(app, pilot)
        labels = _labels(app.detail_tree)
        tls = [label for label in labels if label.startswith("TLS")]
        assert tls and "TLS 1.3 (TLS_AES_256_GCM_SHA384)" in tls[0] and "decrypted with the key log" in tls[0]
        assert app.bytes_view.border_title.startswith("PDU 2, from the TLS 1.3 records of frame(s) 14")
        analysis = app.analysis
        detail = association_detail(analysis, analysis.associations[0], None, 1.0).plain
        assert "TLS 1.3 (TLS_AES_256_GCM_SHA384)" in detail and "decrypted with the key log" in detail
        await pilot.press("K")
        await settle(app, pilot, 1)
        await pilot.press("escape")  # cancel: nothing changes
        await settle(app, pilot, 1)
        assert app.packet_list.row_count == 14
