"""The terminal UI driven through Textual's Pilot: selection, filter, tree, bytes, expert, export."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from capture_tools import FIXTURES, read_frames, rebuild, tcp_of, write_pcap
from dicomtui.core.model.analysis import AnalysisConfig
from dicomtui.tui.app import DicomApp, LoadProgress
from dicomtui.tui.associations import AssociationsScreen
from dicomtui.tui.detail_tree import NodeData
from dicomtui.tui.screens import ExportRequest, HelpScreen
from tui_tools import wait_for_workers

from tui_tools import run_async  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def make_app(name_or_path, plugin_host, tmp_path=None) -> DicomApp:
    path = name_or_path if isinstance(name_or_path, (str, Path)) and Path(name_or_path).is_absolute() \
        else FIXTURES / name_or_path
    preferences = (tmp_path / "config.toml") if tmp_path else None
    return DicomApp([str(path)], AnalysisConfig(), plugin_host, preferences_path=preferences)


async def settle(app, pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.pause(0.02)
        await wait_for_workers(app)
    await pilot.pause(0.02)


def tree_nodes(tree):
    found = []

    def walk(node):
        for child in node.children:
            found.append(child)
            walk(child)
    walk(tree.root)
    return found


def labels(tree):
    return [str(node.label) for node in tree_nodes(tree)]


async def move_tree_cursor_to(app, pilot, predicate):
    """Put the detail tree's cursor on the first visible node whose label satisfies ``predicate``."""
    tree = app.detail_tree
    tree.focus()
    for line in range(tree.last_line + 1):
        node = tree.get_node_at_line(line)
        if node is not None and predicate(str(node.label)):
            tree.cursor_line = line
            await settle(app, pilot, 1)
            return node
    raise AssertionError("no such node")


@run_async
async def test_rows_appear_and_selecting_fills_tree_and_bytes(plugin_host):
    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        packets = app.packet_list
        assert packets.row_count == 8
        assert "A-ASSOCIATE request" in packets.render_line(1).text
        await pilot.press("j", "j")
        await settle(app, pilot)
        assert app.current_pdu == 2
        assert any("Command: C-ECHO-RQ" in label for label in labels(app.detail_tree))
        assert len(app.bytes_view.data) == app.analysis.pdus[2].total_length
        await pilot.press("G")
        assert packets.cursor == 7
        await pilot.press("g")
        assert packets.cursor == 0


@run_async
async def test_mouse_click_selects_a_row(plugin_host):
    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.click("#packets", offset=(10, 4))  # header is line 0: line 4 is the fourth PDU
        await settle(app, pilot)
        assert app.packet_list.cursor == 3


@run_async
async def test_filter_bar_marks_invalid_input_and_applies_valid_filter(plugin_host):
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"status ==")
        await pilot.pause(0.3)  # validation waits for a pause in typing
        bar = app.filter_bar
        assert bar.has_class("-invalid")
        await pilot.press("enter")  # refused: still open, nothing crashed
        assert bar.has_class("-visible") and app.display_filter is None
        bar.value = ""
        await pilot.press(*"status.failure", "enter")
        await settle(app, pilot)
        assert not bar.has_class("-visible")
        assert list(app.packet_list.rows) == [17, 20]
        assert app.current_pdu == 17
        await pilot.press("escape")  # clears the filter, keeps the selection
        await settle(app, pilot)
        assert app.packet_list.rows is None
        assert app.current_pdu == 17


@run_async
async def test_dataset_node_highlights_its_bytes_in_the_data_set(plugin_host):
    app = make_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"12", "enter")  # last fragment of the CT data set
        await settle(app, pilot)
        assert app.current_pdu == 11
        await move_tree_cursor_to(app, pilot, lambda label: label.startswith("(0008,0016) SOP Class UID"))
        view = app.bytes_view
        assert view.title == "data set of the C-STORE-RQ in PDUs 9-12"  # numbers the packet list shows
        assert view.data[view.start:view.start + 4] == struct.pack("<HH", 0x0008, 0x0016)
        assert view.end - view.start == 8 + 26  # explicit VR header + value
        await move_tree_cursor_to(app, pilot, lambda label: label.startswith("P-DATA-TF"))
        assert app.bytes_view.title == "PDU 12"


@run_async
async def test_single_fragment_data_set_and_command_highlight_inside_the_pdu(plugin_host):
    app = make_app("qr_pynetdicom.pcap", plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"4", "enter")  # C-FIND identifier in one PDV
        await settle(app, pilot)
        node = await move_tree_cursor_to(app, pilot, lambda label: label.startswith("(0008,0052)"))
        view = app.bytes_view
        assert view.title == "PDU 4"
        assert view.data[view.start:view.start + 4] == struct.pack("<HH", 0x0008, 0x0052)
        assert isinstance(node.data, NodeData)
        await pilot.press("colon", *"3", "enter")  # C-FIND-RQ command
        await settle(app, pilot)
        await move_tree_cursor_to(app, pilot, lambda label: label.startswith("(0000,0100) CommandField"))
        assert app.bytes_view.title == "PDU 3"
        assert view.data[view.start:view.start + 4] == struct.pack("<HH", 0x0000, 0x0100)


@run_async
async def test_subtree_toggle_flattens_sequences(plugin_host):
    app = make_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"18", "enter")  # RT Plan: sequences
        await settle(app, pilot)
        nested = labels(app.detail_tree)
        assert not any(label.startswith(">") for label in nested)
        await pilot.press("f")
        await settle(app, pilot)
        flat = labels(app.detail_tree)
        assert any(label.startswith("> Item 1") for label in flat)
        assert any(label.startswith(">> (") for label in flat)


@run_async
async def test_expert_item_jumps_to_its_packet(plugin_host):
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        expert = app.expert_pane
        assert expert.items
        error = expert.root.children[0].children[0]
        item = error.data
        expert.focus()
        expert.select_node(error)
        await settle(app, pilot)
        assert app.packet_list.selected_pdu == app.expert_pdu(item)
        app.packet_list.focus()
        await pilot.press("g", "e")
        await settle(app, pilot)
        first = min(p for p in (app.expert_pdu(i) for i in app.analysis.expert) if p is not None)
        assert app.packet_list.selected_pdu == (first if first > 0 else
                                                sorted({app.expert_pdu(i) for i in app.analysis.expert} - {None})[1])


@run_async
async def test_associations_view_filters_the_packet_list(plugin_host):
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        assert isinstance(app.screen, AssociationsScreen)
        await pilot.press("j", "enter")
        await settle(app, pilot)
        assert app.display_filter.text == "assoc == 1"
        rows = list(app.packet_list.rows)
        assert rows and all(app.analysis.pdus[row].association == 1 for row in rows)


@run_async
async def test_goto_and_search(plugin_host):
    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", "5", "enter")
        assert app.packet_list.cursor == 4
        await pilot.press("ctrl+g", "f", "2", "5", "enter")  # frame 25: the A-RELEASE response
        assert app.packet_list.cursor == 7
        await pilot.press("g", "s", *"release", "enter")
        await settle(app, pilot)
        assert app.packet_list.cursor == 6
        await pilot.press("n")
        await settle(app, pilot)
        assert app.packet_list.cursor == 7
        await pilot.press("N")
        await settle(app, pilot)
        assert app.packet_list.cursor == 6


@run_async
async def test_export_selected_and_all_objects(plugin_host, tmp_path):
    app = make_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"15", "enter")  # MR data set
        await settle(app, pilot)
        await pilot.press("x")
        await settle(app, pilot)
        folder = app.screen.query_one("#export-folder")
        folder.value = str(tmp_path / "selected")
        await pilot.press("enter")
        await settle(app, pilot)
        written = sorted((tmp_path / "selected").iterdir())
        assert len(written) == 1 and written[0].read_bytes()[128:132] == b"DICM"
        app.exports.chosen(ExportRequest("part10", str(tmp_path / "all"), "all"))
        await settle(app, pilot)
        assert len(list((tmp_path / "all").iterdir())) == 3


@run_async
async def test_help_screen_and_command_palette(plugin_host):
    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "CommandPalette"


def test_every_palette_entry_runs_an_action_a_key_runs():
    """The command palette is a table of actions: each must exist, and be one a key binding runs
    (so the palette and the keys cannot drift apart)."""
    from dicomtui.tui.app import PALETTE, DicomApp

    bound = {binding.action for binding in DicomApp.BINDINGS}
    for title, _help, action in PALETTE:
        name = action.split("(")[0]
        assert callable(getattr(DicomApp, f"action_{name}", None)), title
        assert action in bound, title


@run_async
async def test_palette_entry_runs_its_action(plugin_host):
    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        commands = {command.title: command for command in app.get_system_commands(app.screen)}
        await commands["Associations"].callback()
        await settle(app, pilot)
        assert type(app.screen).__name__ == "AssociationsScreen"


@run_async
async def test_preferences_screen_saves_toml(plugin_host, tmp_path):
    app = make_app("echo_dcmtk.pcap", plugin_host, tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        app.screen.query_one("#pref-export_min_size").value = "4096"
        app.screen.query_one("#pref-subtree_style").value = "flat"
        app.screen.query_one("#prefs-save").press()
        await settle(app, pilot)
        text = (tmp_path / "config.toml").read_text()
        assert "export_min_size = 4096" in text and 'subtree_style = "flat"' in text
        assert app.detail_tree.flat


@run_async
async def test_capture_text_is_shown_literally(plugin_host, tmp_path):
    frames = read_frames(FIXTURES / "echo_dcmtk.pcap")
    hostile = b"[red]X\x1b[2J[/] "  # markup and an escape sequence as a calling AE title
    assert len(hostile) <= 16
    changed = []
    for frame in frames:
        parts = tcp_of(frame)
        if parts is not None and bytes(parts[2].data).startswith(b"\x01\x00"):
            data = bytearray(parts[2].data)
            data[26:42] = hostile.ljust(16, b" ")
            frame = rebuild(frame, payload=bytes(data))
        changed.append(frame)
    path = write_pcap(tmp_path / "hostile.pcap", changed)
    app = make_app(str(path), plugin_host)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        row = app.packet_list.render_line(1).text
        assert "[red]X\\x1b[2J[/]" in row
        assert "\x1b" not in row
        assert any("[red]X\\x1b[2J[/]" in label for label in labels(app.detail_tree))


@run_async
async def test_capture_error_ends_the_app_with_status_1(plugin_host, tmp_path):
    bad = tmp_path / "not_a_capture.pcap"
    bad.write_text("hello, I am not a capture\n")
    app = make_app(str(bad), plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
    assert app.return_code == 1
    assert app.load_error


@run_async
async def test_first_rows_appear_before_indexing_completes(plugin_host, tmp_path):
    capture = tmp_path / "big.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_capture.py"), str(capture), "--size-mb", "30",
                    "--object-kb", "64"], check=True, capture_output=True)
    seen: list[tuple[bool, int]] = []

    class Recording(DicomApp):
        def on_load_progress(self, message: LoadProgress) -> None:
            super().on_load_progress(message)
            seen.append((message.finished, self.packet_list.row_count))

    app = Recording([str(capture)], AnalysisConfig(), plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert any(not finished and rows > 0 for finished, rows in seen), seen
        assert seen[-1][0] is True
        assert app.packet_list.row_count == len(app.analysis.pdus)


@run_async
async def test_keys_typed_in_a_burst_reach_the_bar(plugin_host):
    from textual import events

    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        for key, character in [("colon", ":"), ("1", "1"), ("8", "8"), ("enter", None)]:
            app.post_message(events.Key(key, character))  # no pause between keys (tmux, paste, fast typing)
        await settle(app, pilot)
        assert app.packet_list.cursor == 17


@run_async
async def test_toasts_show_capture_and_typed_text_literally(plugin_host):
    """Notifications carry expert messages and what the user typed: never parsed as markup.

    (Textual 8 parses a toast's text as markup unless told not to; a rich Text there crashed
    the app when `e` jumped to an expert item.)
    """
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.packet_list.focus()
        await pilot.press("g", "e")
        await pilot.pause(0.3)
        await settle(app, pilot)
        await pilot.press("s", *"[bold red]x[/", "enter")
        await pilot.pause(0.3)
        await settle(app, pilot)
        notifications = list(app._notifications)
        # Pilot's headless screen does not draw toasts: render each one as the terminal would.
        from textual.widgets._toast import Toast

        rendered = [str(Toast(notification).render()) for notification in notifications]
        assert any("[bold red]x[/" in text and "not found" in text for text in rendered)
        assert any(text.startswith(("error:", "warning:", "note:", "chat:")) for text in rendered)
    assert app.return_code in (None, 0)
