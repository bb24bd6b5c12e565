"""Issue 13: the UI and CLI in daily use (crashes, misleading displays, filters, Wireshark habits).

Each test names the numbered item it guards; every one failed before its fix.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from capture_tools import FIXTURES
from dicomtui.core.pipeline import AnalysisConfig
from dicomtui.tui.app import DicomApp, run_app
from dicomtui.tui.screens import ExportRequest, ExportScreen, PreferencesScreen

from tui_tools import run_async  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TUI = ROOT / "tui"


def make_app(name, plugin_host, tmp_path=None, **options) -> DicomApp:
    preferences = (tmp_path / "config.toml") if tmp_path else None
    config = AnalysisConfig(options={k: str(v) for k, v in options.items()})
    return DicomApp([str(FIXTURES / name)], config, plugin_host, preferences_path=preferences)


async def settle(app, pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.pause(0.02)
        await app.workers.wait_for_complete()
    await pilot.pause(0.02)


def render_toasts(app) -> list[str]:
    """Pilot's headless screen does not draw toasts: render each one as the terminal would."""
    from dataclasses import replace

    from textual.widgets._toast import Toast

    # (the title is drawn with the toast's component styles, which need a mounted toast: shown apart)
    return [notification.title + ": " + str(Toast(replace(notification, title="")).render())
            for notification in app._notifications]


# -- 1. every notification is plain text ----------------------------------------------------------

_PLAIN = (ast.Constant, ast.JoinedStr)


def _is_plain_text(node: ast.AST) -> bool:
    """An expression that is a str by construction: a literal, an f-string, str(...), or + of those."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_plain_text(node.left) and _is_plain_text(node.right)
    if isinstance(node, ast.IfExp):
        return _is_plain_text(node.body) and _is_plain_text(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str":
        return True
    return False


def notification_calls():
    """(file, line, message node, title node) of every notify call in the tui package, also those
    handed to a worker bridge (deliver / call_from_thread)."""
    for path in sorted(TUI.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        helper_calls = {id(inner) for function in ast.walk(tree)
                        if isinstance(function, ast.FunctionDef) and function.name in ("notify", "notify_plain")
                        for inner in ast.walk(function)}  # the helper itself passes its checked text on
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in helper_calls:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            args = list(node.args)
            if name in ("deliver", "call_from_thread") and args and isinstance(args[0], ast.Attribute) \
                    and args[0].attr in ("notify", "notify_plain"):
                args = args[1:]
            elif name not in ("notify", "notify_plain"):
                continue
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            message = args[0] if args else keywords.get("message")
            yield path.name, node.lineno, message, keywords.get("title"), keywords.get("markup")


def test_item1_every_notify_call_in_the_tui_passes_plain_text():
    calls = list(notification_calls())
    assert len(calls) > 20  # the scan sees the call sites (it is not vacuous)
    bad = [f"{name}:{line}" for name, line, message, title, markup in calls
           if message is None or not _is_plain_text(message) or (title is not None and not _is_plain_text(title))
           or (markup is not None and not (isinstance(markup, ast.Constant) and markup.value is False))]
    assert not bad, f"notify with something that is not plainly text: {bad}"


def test_item1_super_notify_only_in_the_one_helper():
    """Only DicomApp.notify reaches Textual's notify; everything else calls it."""
    found = []
    for path in sorted(TUI.glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "super().notify(" in line:
                found.append((path.name, number))
    assert len(found) == 1 and found[0][0] == "app.py"


@run_async
async def test_item1_export_toast_renders_after_a_successful_export(plugin_host, tmp_path):
    app = make_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.exports.chosen(ExportRequest("part10", str(tmp_path / "all [bold]x[/]"), "all"))
        await settle(app, pilot)
        await pilot.pause(0.2)
        rendered = render_toasts(app)
        assert any("wrote 3 file(s)" in text and "all [bold]x[/]" in text for text in rendered), rendered
        assert app.toasts.violations == []
        # a failed export names the folder literally (item 9: no markup in the path)
        blocker = tmp_path / "file [red]y"
        blocker.write_text("not a folder")
        app.exports.chosen(ExportRequest("part10", str(blocker), "all"))
        await settle(app, pilot)
        await pilot.pause(0.1)
        assert any("Export failed" in text and "file [red]y" in text for text in render_toasts(app))
    assert app.return_code in (None, 0)


@run_async
async def test_item1_runtime_check_records_a_rich_text_message(plugin_host):
    from rich.text import Text

    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.notify(Text("styled"))  # what crashed the real terminal before
        await pilot.pause(0.1)
        assert app.toasts.violations == ["message of type Text"]
        assert any("styled" in text for text in render_toasts(app))


@run_async
async def test_item7_at_most_two_toasts_stack(plugin_host):
    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for number in range(6):
            app.notify(f"toast {number}")
        await pilot.pause(0.05)
        assert [n.message for n in app._notifications] == ["toast 4", "toast 5"]


# -- 2. config.toml is validated ------------------------------------------------------------------


def test_item2_bad_values_in_the_file_are_one_warning_each_and_defaults_apply(tmp_path, monkeypatch):
    from dicomtui.cli import build_parser, make_config

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = tmp_path / "dicomtui" / "config.toml"
    path.parent.mkdir()
    path.write_text('slow_response_seconds = "abc"\nsubtree_style = "weird"\nports = "11112,banana"\n'
                    'export_min_size = 10\n')
    parser = build_parser()
    warnings: list[str] = []
    config = make_config(parser.parse_args(["x.pcap"]), parser, warnings)
    assert len(warnings) == 3
    for key, value in (("slow_response_seconds", '"abc"'), ("subtree_style", '"weird"'),
                       ("ports", '"11112,banana"')):
        assert any(str(path) in w and f"{key} = {value}" in w and "default" in w for w in warnings), warnings
    assert config.ports == frozenset({104, 2762, 11112})  # the default, not an error blaming --ports
    assert "slow_response_seconds" not in config.options and config.options["export_min_size"] == "10"


def test_item2_bad_ports_in_the_file_do_not_blame_the_ports_option(tmp_path):
    path = tmp_path / "dicomtui" / "config.toml"
    path.parent.mkdir()
    path.write_text('ports = "banana"\n')
    import os

    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--summary",
                             str(FIXTURES / "echo_dcmtk.pcap")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "--ports" not in result.stderr
    assert f"{path}: ports = \"banana\"" in result.stderr
    assert "A-ASSOCIATE" in result.stdout


def test_item2_bad_o_value_is_a_usage_error_naming_o(capsys):
    from dicomtui.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--summary", "-o", "slow_response_seconds:abc", str(FIXTURES / "echo_dcmtk.pcap")])
    assert exit_info.value.code == 2
    assert "-o: slow_response_seconds" in capsys.readouterr().err


@run_async
async def test_item2_preferences_and_associations_screens_survive_bad_values(plugin_host, tmp_path):
    (tmp_path / "config.toml").write_text('slow_response_seconds = "abc"\nsubtree_style = "weird"\n')
    app = make_app("reject_abort.pcap", plugin_host, tmp_path, slow_response_seconds="abc",
                   subtree_style="weird", export_min_size="x")
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert isinstance(app.screen, PreferencesScreen)
        assert app.screen.query_one("#pref-subtree_style").value == "nested"
        assert any("subtree_style" in text and "weird" in text for text in render_toasts(app))
        await pilot.press("escape")
        await pilot.press("a")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "AssociationsScreen"
    assert app.return_code in (None, 0)


# -- 3. a crash inside the UI is a non-zero exit ------------------------------------------------


def test_item3_a_crash_in_the_ui_exits_non_zero(plugin_host, monkeypatch):
    class Broken(DicomApp):
        def main_screen_ready(self, screen):
            super().main_screen_ready(screen)
            self.set_timer(0.2, self.explode)

        def explode(self):
            raise RuntimeError("deliberate crash")

        def run(self, **kwargs):
            return super().run(headless=True, **kwargs)

    status = run_app([str(FIXTURES / "echo_dcmtk.pcap")], AnalysisConfig(), plugin_host, app_class=Broken)
    assert status == 70


# -- 13-16. filters -------------------------------------------------------------------------------


def shown(analysis, text):
    from dicomtui.tui.filter import compile_filter
    from dicomtui.tui.index import PacketIndex

    index = PacketIndex(analysis)
    display_filter = compile_filter(text)
    return [pdu.index + 1 for pdu in analysis.pdus if display_filter.matches(index, pdu)]


def test_item13_dicom_alone_and_wireshark_field_names(analyze_fixture):
    analysis = analyze_fixture("reject_abort.pcap")
    assert shown(analysis, "dicom") == list(range(1, len(analysis.pdus) + 1))
    assert shown(analysis, "dicom.pdu.type == 3") == shown(analysis, "type == A-ASSOCIATE-RJ") == [2]
    assert shown(analysis, "dicom.assoc.reject") == [2]
    assert shown(analysis, "dicom.assoc.reject.reason == 7") == [2]  # called-AE-title-not-recognized
    assert shown(analysis, "dicom.assoc.abort") == [13, 36]
    assert shown(analysis, "dicom.status == 0xA700") == shown(analysis, "status == 0xA700") == [18]
    assert shown(analysis, 'dicom.assoc.ae.calling == "STATUSSCU" and dicom.pdu.type == 1') == [14]
    assert 1 in shown(analysis, "dicom.assoc.item.type == 0x20")
    assert 4 in shown(analysis, "dicom.assoc.item.type == 0x21")
    assert shown(analysis, "dicom.assoc.item.type == 0x52") == shown(analysis, "type == 1 or type == 2")
    assert 17 in shown(analysis, "dicom.tag == 0x00100010")  # PatientName in the RT Plan data set
    assert 14 in shown(analysis, 'dicom.pctx.abss.syntax contains "RT Plan"')
    flags = shown(analysis, "dicom.pdv.flags == 3")  # a whole command in one PDV
    assert 5 in flags and 12 not in flags and 12 in shown(analysis, "dicom.pdv.flags == 2")


def test_item13_wireshark_names_without_equivalent_are_refused_clearly():
    from dicomtui.tui.filter import FilterError, compile_filter

    with pytest.raises(FilterError, match="no dicomtui equivalent"):
        compile_filter("dicom.pdv.fragment.overlap")


def test_item14_command_set_keywords_work(analyze_fixture):
    analysis = analyze_fixture("qr_pynetdicom.pcap")
    assert shown(analysis, "command == C-MOVE-RSP and NumberOfCompletedSuboperations > 0") == [24, 28, 31]
    assert shown(analysis, "NumberOfFailedSuboperations > 0") == []
    assert shown(analysis, "NumberOfRemainingSuboperations == 1") == [24]
    assert shown(analysis, 'MoveDestination == "NOWHERE"') == [32, 33]  # the C-MOVE-RQ's command and identifier
    assert shown(analysis, "tag(0000,0900) == 0xA801") == shown(analysis, "status == 0xA801")


def test_item16_dataset_values_are_decoded_once_and_kept(analyze_fixture):
    from dicomtui.core.views.dataset_values import values_cache

    analysis = analyze_fixture("store_dcmtk.pcapng")
    cache = values_cache(analysis)
    cache.values.clear()  # the analysis is shared by the session: start from what no filter has read
    before = cache.parses
    first = shown(analysis, 'Modality == "CT"')
    parsed = cache.parses - before
    assert first and parsed == sum(1 for m in analysis.messages if m.has_dataset)
    assert shown(analysis, 'Modality == "CT"') == first
    assert shown(analysis, 'Modality == "CT" or Modality == "XA"') == first
    assert cache.parses - before == parsed  # the same filter (and its tags) again: no decoding
    # values agree with the full decode the detail pane uses
    message = next(m for m in analysis.messages if m.has_dataset)
    decoded = analysis.decode_dataset(message)
    assert cache.lookup(message, 0x00080060, frozenset()) == [decoded.dataset.Modality]


@run_async
async def test_item15_typing_a_long_filter_is_validated_cheaply(plugin_host, monkeypatch):
    from dicomtui.tui import filtering

    compiled = []
    real = filtering.compile_filter
    monkeypatch.setattr(filtering, "compile_filter", lambda text: compiled.append(len(text)) or real(text))
    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *("status != 1 and " * 3))
        await pilot.pause(0.3)
        assert len(compiled) <= 3  # not once per key (48 keys)
        app.filter_bar.value = "x" * 6874  # a value over the limit: refused at once, not parsed
        await pilot.pause(0.01)
        assert app.filter_bar.has_class("-invalid")
        app.filter_bar.value = "x" * 4096
        await pilot.pause(0.01)
        app.filter_bar.insert_text_at_cursor("y")  # a key past the limit is not taken
        await pilot.pause(0.05)
        assert len(app.filter_bar.value) == 4096 and app.filter_bar.has_class("-invalid")
        assert all(length <= 4096 for length in compiled)


# -- 6. expert severity on the right side ---------------------------------------------------------


def test_item6_pdata_in_flight_at_the_scps_abort_is_not_a_violation(analyze_fixture):
    from dicomtui.core.model import Severity

    analysis = analyze_fixture("abort_inflight_dcmtk.pcap")
    assert not [item for item in analysis.expert if "a protocol violation by" in item.message]
    assert not [item for item in analysis.expert if item.severity >= Severity.ERROR]
    notes = [item for item in analysis.expert if "in flight" in item.message]
    assert notes and all(item.severity == Severity.NOTE and "requestor" in item.message for item in notes)
    assert any(item.severity == Severity.WARNING and "aborted by the acceptor" in item.message
               for item in analysis.expert)


def test_item6_abort_after_a_completed_release_is_not_an_aborted_association(analyze_fixture):
    from dicomtui.core.model import Severity

    analysis = analyze_fixture("abort_after_release.pcap")
    association = analysis.associations[0]
    assert association.state == "released"
    assert "then A-ABORT" in association.end_reason
    texts = [item.message for item in analysis.expert]
    assert not any("gave up" in text or "timeout" in text for text in texts)
    assert any("released normally, then the requestor" in item.message and item.severity == Severity.NOTE
               for item in analysis.expert)


# -- 4. a partly captured PDU shows what is there ------------------------------------------------


def _capture_with_lost_segment(tmp_path) -> Path:
    """store_dcmtk.pcapng without one 1,448-byte segment inside the CT data set's first PDU."""
    from capture_tools import read_frames, tcp_of, write_pcap

    frames = read_frames(FIXTURES / "store_dcmtk.pcapng")
    assert len(tcp_of(frames[31])[2].data) == 1448
    del frames[31]
    return write_pcap(tmp_path / "lost_segment.pcap", frames)


def test_item4_core_reads_a_pdu_around_its_hole(tmp_path, plugin_host):
    from conftest import analyze_path
    from dicomtui.core.protocol.partial import pdata_pdvs

    analysis = analyze_path(_capture_with_lost_segment(tmp_path), plugin_host)
    pdu = analysis.pdus[9]
    assert not pdu.complete and analysis.pdu_bytes(pdu) is None
    data, holes = analysis.pdu_bytes_with_holes(pdu)
    assert holes == [(4202, 5650)] and len(data) == pdu.total_length
    whole = analyze_path(FIXTURES / "store_dcmtk.pcapng", plugin_host)
    original = whole.pdu_bytes(whole.pdus[9])
    assert data[:4202] == original[:4202] and data[5650:] == original[5650:]  # exact bytes around the hole
    pdvs, stopped = pdata_pdvs(data, holes)
    assert [(p.context_id, p.flags, p.captured) for p in pdvs] == [(1, 0, 4202 - 12)] and not stopped


@run_async
async def test_item4_partial_pdu_is_shown_with_its_hole_and_data_set_prefix(plugin_host, tmp_path):
    path = _capture_with_lost_segment(tmp_path)
    app = DicomApp([str(path)], AnalysisConfig(), plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"10", "enter")
        await settle(app, pilot)
        labels = [str(node.label) for node in _tree_nodes(app.detail_tree)]
        assert not any("not decoded: DecodeError" in label for label in labels)
        assert any(label.startswith("Not captured: bytes 4202-5649") for label in labels)
        assert any(label.startswith("Data set up to the hole") for label in labels)
        assert any(label.startswith("(0008,0060) Modality") and "CT" in label for label in labels)
        view = app.bytes_view
        assert len(view.data) == app.analysis.pdus[9].total_length and view.holes == [(4202, 5650)]
        assert "not captured" in view.border_title and "1448" in view.border_title
        # stepping through the findings: the gap lands on the damaged PDU, not the next response
        targets = {app.navigator.expert_pdu(item) for item in app.analysis.expert
                   if "gap" in item.message.lower() or "missing" in item.message}
        assert targets == {9}


def _tree_nodes(tree):
    found = []

    def walk(node):
        for child in node.children:
            found.append(child)
            walk(child)
    walk(tree.root)
    return found


# -- 8. values rendered as Wireshark does, and the same way everywhere ------------------------


def test_item8_undefined_length_sequence_is_labelled_and_spans_its_bytes():
    import struct

    from dicomtui.plugins.dataset import decode_dataset

    def element(group, number, value):
        return struct.pack("<HHI", group, number, len(value)) + value
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + element(0x10, 0x20, b"X ") + \
        struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    data = element(0x10, 0x10, b"A ") + struct.pack("<HHI", 0x10, 0x1002, 0xFFFFFFFF) + item + item + \
        struct.pack("<HHI", 0xFFFE, 0xE0DD, 0) + element(0x10, 0x30, b"20000101")
    for syntax in ("1.2.840.10008.1.2",):
        fields = decode_dataset(data, syntax).tree.children
        assert fields[0].offset == 0 and fields[0].length == 10  # the first element highlights too
        sequence = fields[1]
        assert sequence.value.startswith("SQ undefined length: 2 item(s)")
        assert (sequence.offset, sequence.offset + sequence.length) == (10, fields[2].offset)


def test_item8_no_python_lists_in_any_tree_and_ac_contexts_name_their_abstract_syntax(plugin_host):
    import re

    from conftest import analyze_path
    from dicomtui.tui.detail_tree import build_sections
    from dicomtui.tui.index import PacketIndex

    python_list = re.compile(r"\[\s*['\"\d(]")
    for name in ("echo_dcmtk.pcap", "qr_pynetdicom.pcap", "reject_abort.pcap", "store_dcmtk.pcapng",
                 "negotiation_pynetdicom.pcap"):
        analysis = analyze_path(FIXTURES / name, plugin_host)
        index = PacketIndex(analysis)
        for pdu in analysis.pdus:
            model, _data = build_sections(index, pdu.index)
            for root in model.roots:
                for _depth, field in root.walk():
                    assert not python_list.search(field.value), (name, pdu.index + 1, field.label, field.value)
                    if pdu.pdu_type == 2 and field.label == "Presentation context":
                        assert field.children[0].label.startswith("Abstract syntax"), (name, field.value)


# -- 5, 7. NO_COLOR and narrow terminals ---------------------------------------------------------


def test_item7_info_puts_the_status_and_reject_reason_first_when_narrow():
    from dicomtui.tui.packet_list import telling_first

    text = "P-DATA, C-STORE-RSP ID=1 (Refused: Out of resources)"
    assert telling_first(text, 80) == text
    assert telling_first(text, 28).startswith("C-STORE-RSP (Refused: Out of resources)")
    reject = ("A-ASSOCIATE reject  REJSCU <-- WRONG-AET (rejected-permanent, DICOM UL service-user: "
              "called-AE-title-not-recognized)")
    assert telling_first(reject, 28).startswith("A-ASSOCIATE reject: called-AE-title-not-recognized")
    last = "P-DATA, MR Image Storage (last fragment)"
    assert telling_first(last, 20) == "MR Image Storage (last fragment)"  # not a status: stays in place


@run_async
async def test_item5_no_color_failures_stand_out_and_show_their_status(plugin_host, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.no_color
        packets = app.packet_list
        packets.cursor_to(0)
        await settle(app, pilot)
        packets.scroll_to(y=10, animate=False, immediate=True)
        await pilot.pause(0.05)
        top = round(packets.scroll_y)
        failed = packets.render_line(17 - top + 1)  # PDU 18: C-STORE-RSP 0xA700
        normal = packets.render_line(16 - top + 1)
        assert "Refused" in failed.text and failed.text.lstrip().startswith("18")
        failed_style = [segment.style for segment in failed][0]
        normal_style = [segment.style for segment in normal][0]
        assert failed_style.bold and not failed_style.dim
        assert not normal_style.dim


# -- 9-12 ---------------------------------------------------------------------------------------


@run_async
async def test_item9_export_dialog_defaults_to_a_scope_with_something_in_it(plugin_host):
    app = make_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("x")  # PDU 1: an A-ASSOCIATE-RQ, no message
        await settle(app, pilot)
        assert isinstance(app.screen, ExportScreen)
        assert app.screen.query_one("#scope-all").value and not app.screen.query_one("#scope-selected").value
        await pilot.press("escape")
        await pilot.press("colon", *"15", "enter")
        await settle(app, pilot)
        await pilot.press("x")
        await settle(app, pilot)
        assert app.screen.query_one("#scope-selected").value


@run_async
async def test_item10_other_screens_do_not_offer_main_screen_keys(plugin_host):
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.check_action("open_bar", ("filter",))
        await pilot.press("a")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "AssociationsScreen"
        footer_keys = {binding.key for (_node, binding, enabled, _tip) in app.screen.active_bindings.values()
                       if enabled and binding.show}
        assert "slash" not in footer_keys and "e" not in footer_keys
        await pilot.press("slash", "e")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "AssociationsScreen"
        assert not app.filter_bar.has_class("-visible")


@run_async
async def test_item11_message_references_name_pdus_and_enter_follows_them(plugin_host):
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"18", "enter")
        await settle(app, pilot)
        from dicomtui.tui.tree_search import find_path, reveal

        tree = app.detail_tree
        texts = [f"{field.label}: {field.value}" for root in tree.model.roots for _depth, field in root.walk()]
        assert not any(re.search(r"message \d", text) for text in texts), texts
        assert any(text.startswith("Request: C-STORE-RQ in PDUs 16-17") for text in texts), texts
        assert reveal(tree, find_path(tree.model.roots, "Request", None))
        tree.focus()
        await pilot.pause(0.05)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.current_pdu == 15
        await pilot.press("backspace")
        await settle(app, pilot)
        assert app.current_pdu == 17


@run_async
async def test_item12_help_scrolls_with_j_and_reload_keeps_the_selection(plugin_host):
    from dicomtui.tui.screens import HelpScreen

    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"21", "enter")
        await settle(app, pilot)
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        from textual.containers import VerticalScroll

        scroll = app.screen.query_one(VerticalScroll)
        await pilot.press("j", "j", "j")
        await pilot.pause(0.05)
        assert scroll.scroll_y >= 3
        await pilot.press("k")
        await pilot.pause(0.05)
        assert scroll.scroll_y >= 2
        await pilot.press("escape", "ctrl+r")
        await settle(app, pilot, 6)
        assert app.current_pdu == 20 and app.packet_list.cursor == 20


# -- What a Wireshark user reaches for first --------------------------------------------------------


def _cli(*args):
    """The command in this process (a subprocess per call would cost a second of start-up each)."""
    import contextlib
    import io
    import types

    from dicomtui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exit_:
            status = exit_.code
    return types.SimpleNamespace(returncode=status, stdout=out.getvalue(), stderr=err.getvalue())


def test_time_formats_on_the_command_line():
    path = str(FIXTURES / "echo_dcmtk.pcap")
    relative = _cli("--summary", path).stdout.splitlines()
    utc = _cli("--summary", "-t", "ud", path).stdout.splitlines()
    epoch = _cli("--summary", "-t", "e", path).stdout.splitlines()
    delta = _cli("--summary", "-t", "dd", "-Y", "type == P-DATA", path).stdout.splitlines()
    assert len(relative) == len(utc) == 8 and len(delta) == 4
    assert re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ", utc[0])
    first_epoch = float(epoch[0].split()[1])
    assert abs(float(epoch[2].split()[1]) - first_epoch - float(relative[2].split()[1])
               + float(relative[0].split()[1])) < 2e-6
    assert float(delta[0].split()[1]) == 0.0
    assert abs(float(delta[1].split()[1]) - (float(relative[3].split()[1]) - float(relative[2].split()[1]))) < 2e-6
    bad = _cli("--summary", "-t", "x", path)
    assert bad.returncode == 2 and "-t:" in bad.stderr


def test_display_filter_in_every_headless_mode(tmp_path):
    import json

    path = str(FIXTURES / "reject_abort.pcap")
    summary = _cli("--summary", "-Y", "status.failure", path)
    assert [line.split()[0] for line in summary.stdout.splitlines()] == ["18", "21"]
    document = json.loads(_cli("--json", "-Y", "status.failure", path).stdout)
    assert [pdu["index"] for pdu in document["pdus"]] == [17, 20]
    assert {message["status"] for message in document["messages"]} == {0xA700, 0xC000}
    expert = _cli("--expert", "-Y", "dicom.assoc.reject", path).stdout.splitlines()
    assert len(expert) == 1 and "rejected" in expert[0]
    store = str(FIXTURES / "store_dcmtk.pcapng")
    result = _cli("--export", str(tmp_path / "mr"), "-Y", 'Modality == "MR"', store)
    assert result.returncode == 0 and [p.name[:14] for p in (tmp_path / "mr").iterdir()] == ["A001-M00004-C-"]
    result = _cli("--export", str(tmp_path / "echo"), "--export-format", "pcap", "-Y", "command == C-ECHO", store)
    again = _cli("--summary", str(tmp_path / "echo" / "dicom.pcap")).stdout.splitlines()
    assert [line.split("frames ")[1].split(None, 1)[1] for line in again] == [
        "P-DATA, C-ECHO-RQ ID=1 Verification SOP Class", "P-DATA, C-ECHO-RSP ID=1 (Success)"]
    bad = _cli("--summary", "-Y", "status ==", path)
    assert bad.returncode == 2 and "-Y: invalid filter" in bad.stderr


@run_async
async def test_time_format_key_and_preference(plugin_host, tmp_path):
    app = make_app("echo_dcmtk.pcap", plugin_host, tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("T", "T", "T", "T")  # r -> a -> ad -> u -> ud
        await settle(app, pilot)
        assert app.packet_list.time_format == "ud"
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", app.packet_list.render_line(1).text)
    assert 'time_format = "ud"' in (tmp_path / "config.toml").read_text()
    again = make_app("echo_dcmtk.pcap", plugin_host, tmp_path, time_format="ud")
    async with again.run_test(size=(120, 30)) as pilot:
        await settle(again, pilot)
        assert again.packet_list.time_format == "ud"


@run_async
async def test_marking_rows_and_exporting_marked_and_displayed(plugin_host, tmp_path):
    app = make_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"14", "enter")
        await settle(app, pilot)
        await pilot.press("m")
        await pilot.press("colon", *"17", "enter")
        await settle(app, pilot)
        await pilot.press("m")
        assert app.packet_list.marked == {13, 16}
        assert app.packet_list.render_line(14 - round(app.packet_list.scroll_y)).text.lstrip().startswith("*14")
        app.exports.chosen(ExportRequest("part10", str(tmp_path / "marked"), "marked"))
        await settle(app, pilot)
        assert len(list((tmp_path / "marked").iterdir())) == 2  # the MR and the RT Plan, not the CT
        app.apply_filter("command == C-ECHO")
        await settle(app, pilot)
        app.exports.chosen(ExportRequest("pcap", str(tmp_path / "shown"), "displayed"))
        await settle(app, pilot)
        assert app.toasts.violations == []
    shown = _cli("--summary", str(tmp_path / "shown" / "dicom.pcap")).stdout.splitlines()
    assert len(shown) == 2 and all("C-ECHO" in line for line in shown)


@run_async
async def test_request_response_and_move_navigation_and_findings(plugin_host):
    app = make_app("qr_pynetdicom.pcap", plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"15", "enter")  # C-MOVE-RQ
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert app.current_pdu == 23  # its first C-MOVE-RSP
        await pilot.press("r")
        await settle(app, pilot)
        assert app.current_pdu == 14  # back to the request
        await pilot.press("w")
        await settle(app, pilot)
        assert app.current_pdu == 16 and app.analysis.pdus[16].pdu_type == 1  # the sub-association
        await pilot.press("w")
        await settle(app, pilot)
        assert app.current_pdu == 14
        await pilot.press("backspace")
        await settle(app, pilot)
        assert app.current_pdu == 16
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"18", "enter")
        await settle(app, pilot)
        await pilot.press("F")
        await settle(app, pilot)
        assert app.focused is app.expert_pane
        item = app.expert_pane.cursor_node.data
        assert app.navigator.expert_pdu(item) == 17 and "0xA700" in item.message


@run_async
async def test_full_value_copy_columns_and_tree_search(plugin_host, tmp_path, monkeypatch):
    from dicomtui.tui.columns_screen import ColumnsScreen
    from dicomtui.tui.value_screen import ValueScreen

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    app = make_app("store_dcmtk.pcapng", plugin_host, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"12", "enter")
        await settle(app, pilot)
        app.detail_tree.focus()
        await pilot.press("s", *"0008,0018", "enter")  # search inside the tree: SOP Instance UID
        await settle(app, pilot)
        node = app.detail_tree.cursor_node
        assert str(node.label).startswith("(0008,0018) SOP Instance UID")
        uid = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
        await pilot.press("v")
        await settle(app, pilot)
        assert isinstance(app.screen, ValueScreen) and uid in app.screen.text
        await pilot.press("escape", "y")
        await settle(app, pilot)
        assert uid in (tmp_path / "cache" / "dicomtui" / "copied.txt").read_text()
        await pilot.press("c")
        await settle(app, pilot)
        assert isinstance(app.screen, ColumnsScreen)
        await pilot.press("down", "space", "down", "J", "enter")  # hide time; move source below destination
        await settle(app, pilot)
        assert app.packet_list.columns == ("no", "destination", "source", "assoc", "type", "info")
        assert "Destination" in app.packet_list.render_line(0).text.split("Source")[0]
    assert 'columns = "no,destination,source,assoc,type,info"' in (tmp_path / "config.toml").read_text()


@run_async
async def test_item3_enter_twice_on_a_palette_command_does_not_crash(plugin_host):
    """Found in the tmux walk: the palette dismissed itself twice and Textual raised ScreenStackError."""
    app = make_app("reject_abort.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        palette = app.screen
        assert type(palette).__name__ == "CommandPalette"
        # Two Enter keys handled before the first dismissal completes (what tmux delivered):
        palette.dismiss()
        app.pop_screen()
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
    assert app.return_code in (None, 0)
