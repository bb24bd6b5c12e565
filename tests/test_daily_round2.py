"""Issue 24, daily use round two: what a new user hit (warnings, Ctrl-C, export default, figures, setup)."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pydicom
import pytest
from capture_tools import read_frames, rebuild, tcp_of, write_pcap

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
IMPLICIT_LE = "1.2.840.10008.1.2"


def _invalid_ui_dataset() -> bytes:
    value = b"1.2.abc\0"  # letters in a UID: pydicom warns when it converts the value
    return struct.pack("<HHI", 0x0008, 0x0018, len(value)) + value


# -- 4: only pydicom's own warnings about the value decoded are data problems -------------------


def test_warnings_raised_elsewhere_during_a_decode_are_not_data_problems(monkeypatch):
    from dicomtui.plugins.dataset import decode_dataset

    original = pydicom.filereader.read_dataset

    def read_with_a_noisy_neighbour(*args, **kwargs):
        # What the garbage collector or another thread may raise while the decoder runs.
        warnings.warn("unclosed file <_io.BufferedReader name='capture.pcap'>", ResourceWarning)
        warnings.warn("something about this program, not the capture", UserWarning)
        return original(*args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_dataset", read_with_a_noisy_neighbour)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        decoded = decode_dataset(_invalid_ui_dataset(), IMPLICIT_LE)
    assert [text.split(".")[0] for text in decoded.warnings] == ["Invalid value for VR UI: '1"]


def test_decoding_on_two_threads_at_once_leaves_the_process_warning_state_alone(monkeypatch):
    from dicomtui.core.protocol.datasets import parse_dataset

    original = pydicom.filereader.read_dataset
    first_inside, second_inside, second_may_leave = threading.Event(), threading.Event(), threading.Event()

    def read_in_turns(*args, **kwargs):
        if threading.current_thread().name == "first":
            first_inside.set()
            second_inside.wait(30)
        elif threading.current_thread().name == "second":
            second_inside.set()
            second_may_leave.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_dataset", read_in_turns)
    parse_dataset(_invalid_ui_dataset(), IMPLICIT_LE)  # installs what is installed once
    shown, filters = warnings.showwarning, list(warnings.filters)
    first = threading.Thread(target=parse_dataset, args=(_invalid_ui_dataset(), IMPLICIT_LE), name="first")
    second = threading.Thread(target=parse_dataset, args=(_invalid_ui_dataset(), IMPLICIT_LE), name="second")
    first.start()
    assert first_inside.wait(30)
    second.start()
    first.join(30)  # the first leaves its block while the second is still in its own
    second_may_leave.set()
    second.join(30)
    assert warnings.showwarning is shown and warnings.filters == filters


@pytest.mark.parametrize("mode", [["--summary"], ["--json"], ["--jsonl"], ["--expert"], ["--stats"],
                                  ["--flow", "0"], ["--export", "OUT"], ["--export", "OUT", "--export-format",
                                                                        "dicom-json"]])
def test_no_mode_leaves_a_capture_file_to_the_garbage_collector(mode, tmp_path):
    mode = [str(tmp_path / "out") if part == "OUT" else part for part in mode]
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "always::ResourceWarning", "-m",
                           "dicomtui.cli", *mode, str(FIXTURES / "store_dcmtk.pcapng")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr


from tui_tools import run_async  # noqa: E402


# -- 5: Ctrl-C quits; no toast shows markup as text ---------------------------------------------



def _file_app(name, plugin_host):
    from dicomtui.core.pipeline import AnalysisConfig
    from dicomtui.tui.app import DicomApp

    return DicomApp([str(FIXTURES / name)], AnalysisConfig(), plugin_host)


async def _settle(app, pilot) -> None:
    for _ in range(3):
        await pilot.pause(0.02)
        await app.workers.wait_for_complete()


async def _until(pilot, predicate, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await pilot.pause(0.05)


def _toast_texts(app) -> list[str]:
    return [notification.title + ": " + notification.message for notification in app._notifications]


@run_async
async def test_ctrl_c_quits_the_file_ui_from_the_list_and_from_the_filter_bar(plugin_host):
    for keys in (["ctrl+c"], ["slash", "d", "ctrl+c"]):
        app = _file_app("echo_dcmtk.pcap", plugin_host)
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(app, pilot)
            await pilot.press(*keys)
            await _until(pilot, lambda: app._exit or not app.is_running)
            assert not any("[b]" in text for text in _toast_texts(app)), _toast_texts(app)
        assert app.return_code in (None, 0)


@run_async
async def test_ctrl_c_in_the_live_ui_stops_the_capture_and_quits(tmp_path, plugin_host):
    from dicomtui.core.pipeline import AnalysisConfig
    from dicomtui.core.pipeline.live import LiveOptions
    from dicomtui.tui.live import LiveDicomApp

    growing = tmp_path / "growing.pcapng"
    growing.write_bytes((FIXTURES / "store_dcmtk.pcapng").read_bytes())
    app = LiveDicomApp(LiveOptions(follow=str(growing), poll_interval=0.05), AnalysisConfig(), plugin_host)
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: app.packet_list.row_count >= 3)
        await pilot.press("ctrl+c")
        await _until(pilot, lambda: app._exit or not app.is_running)
        assert app.session_done.wait(30), "the capture was stopped"
        assert not any("[b]" in text for text in _toast_texts(app)), _toast_texts(app)
    app.stop_and_wait()
    app.close_spools()


@run_async
async def test_textual_s_own_toasts_are_rendered_not_shown_as_markup(plugin_host, tmp_path):
    from textual import events

    app = _file_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        # What the command palette's "Save screenshot" ends with.
        app._on_delivery_complete(events.DeliveryComplete(key="k", path=tmp_path / "shot.svg", name="screenshot"))
        app.action_help_quit()
        await pilot.pause(0.05)
        texts = _toast_texts(app)
        assert any("Saved screenshot to" in text for text in texts), texts
        assert not any("[$" in text or "[b]" in text or "[/" in text for text in texts), texts


MARKUP_TAG = re.compile(r"\[/?[a-z$@#][a-z0-9_$@#. =-]*\]")


def _texts_in(node) -> list[str]:
    """The literal text parts of a str expression (constants and f-string constants)."""
    import ast

    return [part.value for part in ast.walk(node) if isinstance(part, ast.Constant) and isinstance(part.value, str)]


def test_no_notification_in_the_ui_is_written_in_markup():
    """Toasts are plain text (tui/notify.py): a tag in a message would be shown as it is written."""
    import ast

    found = []
    for path in sorted((ROOT / "tui").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("notify", "notify_plain", "show")):
                continue
            for argument in list(node.args[:1]) + [k.value for k in node.keywords if k.arg in ("title", "message")]:
                found += [f"{path.name}:{node.lineno}: {text!r}" for text in _texts_in(argument)
                          if MARKUP_TAG.search(text)]
    assert found == []


# -- 6: x then Enter on a response exports the object it answers --------------------------------


@run_async
async def test_export_on_a_c_store_rsp_writes_the_request_s_object_and_says_so(plugin_host, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = _file_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        response = next(message for message in app.analysis.messages if message.command_name == "C-STORE-RSP")
        app.navigator.jump(response.last_pdu)
        await _settle(app, pilot)
        await pilot.press("x")
        await _until(pilot, lambda: type(app.screen).__name__ == "ExportScreen")
        await pilot.press("enter")
        await _until(pilot, lambda: any(n.title == "Export" for n in app._notifications))
        written = sorted((tmp_path / "dicomtui-export").glob("*.dcm"))
        assert len(written) == 1, written
        toast = next(n.message for n in app._notifications if n.title == "Export")
        assert "wrote 1 file(s)" in toast and "C-STORE-RQ" in toast and "C-STORE-RSP" in toast, toast


# -- 8: what is copied and counted reads right ----------------------------------------------------


@run_async
async def test_copying_a_marked_row_copies_its_number_not_the_mark(plugin_host, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    app = _file_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        app.packet_list.focus()
        await pilot.press("m")  # mark the first row
        await _settle(app, pilot)
        assert 0 in app.packet_list.marked
        app.packet_list.cursor = 0  # m may have moved on
        found = app.values.focused()
        assert found is not None
        assert "No.: 1\n" in found[1] and "*" not in found[1].split("\n")[0], found[1]
        assert "Marked: yes" in found[1]


@run_async
async def test_the_status_line_says_1_association(plugin_host):
    from dicomtui.tui.main_screen import StatusBar

    app = _file_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        status = str(app.main_screen.query_one(StatusBar).render())
        assert "1 association " in status + " " and "1 associations" not in status, status


def test_counted_words():
    from dicomtui.core.base.wording import counted

    assert [counted(n, "association") for n in (0, 1, 2, 12345)] == [
        "0 associations", "1 association", "2 associations", "12,345 associations"]


def test_the_summary_time_column_stays_aligned_past_99999_seconds(plugin_host):
    from dicomtui.core.pipeline import analyze
    from dicomtui.core.views import summary_lines

    with analyze([str(FIXTURES / "echo_dcmtk.pcap")], None, plugin_host) as analysis:
        # As if the capture had started 28 hours earlier: its rows straddle 99,999.99 s -> 100,000.0x s.
        analysis.first_time = analysis.pdus[0].timestamp - 99_999.99
        lines = list(summary_lines(analysis, "r"))
    columns = {line.index("->") for line in lines}
    assert len(columns) == 1, lines


# -- 10: durations in ms with fixed decimals, epoch times as dates -------------------------------


def test_durations_over_a_second_are_not_in_scientific_notation(plugin_host):
    from dicomtui.core.base.time_format import milliseconds
    from dicomtui.core.pipeline import analyze
    from dicomtui.core.views.timing import stats_lines
    from dicomtui.tui.stats_screen import _ms

    assert [milliseconds(value) for value in (3.0, 3.7, 5.05, 0.0437)] == ["3000.0", "3700.0", "5050.0", "43.7"]
    assert _ms(3.7) == "3700.0"
    with analyze([str(FIXTURES / "timing_scp_sleep.pcap")], None, plugin_host) as analysis:
        text = "\n".join(stats_lines(analysis))
    assert not re.search(r"\d[eE][+-]\d", text), text


def test_report_cells_show_epoch_times_as_dates_and_no_float_in_scientific_notation():
    pytest.importorskip("duckdb")
    from dicomtui.batch.report import csv_text, text_table

    columns = ["first_time", "response_time", "bytes_per_second"]
    rows = [(1796590000.25, 3.2, 12345678.9)]
    for text in (text_table(columns, rows), csv_text(columns, rows)):
        assert not re.search(r"\d[eE][+-]\d", text), text
        assert "2026-12-06 20:46:40.250000" in text, text
        assert "12345678.900000" in text


# -- 9: an unknown filter field suggests the nearest known names ------------------------------


@pytest.mark.parametrize("text,suggested", [("dimse.command == 1", "command"), ("calling_aet == X", "calling_ae"),
                                            ("PatientNmae == X", "PatientName"),
                                            ("dicom.pdv.flagz == 1", "dicom.pdv.flags")])
def test_an_unknown_filter_field_suggests_the_nearest_names(text, suggested):
    from dicomtui.core.views.filter import FilterError, compile_filter

    with pytest.raises(FilterError) as raised:
        compile_filter(text)
    hint = re.search(r"(did you mean|nearest:) ([^;(?]*)", str(raised.value))
    assert hint is not None and suggested in hint.group(2).replace(",", " ").split(), str(raised.value)


def test_a_field_nothing_resembles_gets_no_guess():
    from dicomtui.core.views.filter import FilterError, compile_filter

    with pytest.raises(FilterError) as raised:
        compile_filter("xyzzy == 1")
    assert str(raised.value) == "unknown field 'xyzzy'"


# -- 13: the anonymize report does not contradict itself ------------------------------------------


@pytest.mark.parametrize("options", [[], ["--anonymize-option", "retain-uids"]])
def test_the_anonymize_report_says_once_which_options_were_applied(tmp_path, options):
    done = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--anonymize", str(tmp_path / "out.pcap"),
                           *options, str(FIXTURES / "store_dcmtk.pcapng")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = done.stdout + done.stderr
    assert "with all options" not in report, report
    applied = [line for line in report.splitlines() if line.startswith("options applied: ")]
    assert len(applied) == 1, report
    assert ("retain-uids" in applied[0]) == bool(options), applied
    assert ("Basic Profile alone" in applied[0]) != bool(options), applied


# -- 14: every install line in the documentation works from a clone ---------------------------

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").glob("*/README.md"))]


def _pip_commands():
    import shlex

    for path in DOCUMENTS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for command in re.split(r"&&|;", line.split("#", 1)[0]):
                words = command.split()
                if "pip" in words and "install" in words:
                    yield f"{path.name}:{number}", shlex.split(command)[shlex.split(command).index("install") + 1:]


def test_install_lines_name_the_checkout_not_a_package_index_name():
    """dicomtui is not on PyPI: `pip install 'dicomtui[batch]'` fails on a fresh machine."""
    found = [where for where, arguments in _pip_commands()
             if any(re.fullmatch(r"dicomtui(\[[^\]]*\])?", argument) for argument in arguments)]
    assert found == []


def test_every_package_directory_is_in_pyproject():
    """`pip install .` (not editable) ships only the listed packages: the TLS plugin was left out
    once, and only a fresh clone's test run saw it (ModuleNotFoundError)."""
    root = Path(__file__).resolve().parent.parent
    text = (root / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(dicomtui[\w.]*)"', text.split("packages = [", 1)[1].split("]", 1)[0]))
    found = {"dicomtui"} | {
        "dicomtui." + ".".join(init.parent.relative_to(root).parts)
        for folder in ("core", "plugins", "tui", "batch", "cli") for init in (root / folder).rglob("__init__.py")}
    assert found - listed == set()


def test_no_message_in_the_code_names_an_index_install_of_dicomtui():
    """The same for what the program prints (the --validate hint said pip install 'dicomtui[validate]')."""
    root = Path(__file__).resolve().parent.parent
    found = [f"{path.relative_to(root)}:{number}"
             for folder in ("core", "plugins", "tui", "batch", "cli") for path in (root / folder).rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"pip install ['\"]?dicomtui\[", line)]
    assert found == []


def test_no_install_line_combines_an_editable_dicomtui_with_a_plugin_that_needs_it():
    """pip (23.2) then looks for the plugin's `dicomtui` requirement on the index and fails."""
    found = []
    for where, arguments in _pip_commands():
        editable_root = any(previous == "-e" and re.fullmatch(r"\.(\[[^\]]*\])?", argument)
                            for previous, argument in zip(arguments, arguments[1:]))
        if editable_root and any(argument.startswith("./examples/") for argument in arguments):
            found.append(where)
    assert found == []


def test_the_batch_hint_names_an_install_that_works():
    from dicomtui.batch import cli as batch_cli

    source = Path(batch_cli.__file__).read_text()
    assert "dicomtui[batch]" not in source and "'.[batch]'" in source


# -- 15: tests and recording scripts call the DICOM tool they mean ------------------------------

DICOM_TOOLS = ("storescu", "storescp", "echoscu", "findscu", "movescu", "getscu", "qrscp")


def test_dicom_tools_are_called_by_path_or_module_never_by_bare_name():
    """pynetdicom (in the test extra) installs storescu, echoscu, findscu, storescp... console scripts that
    shadow dcmtk's inside the venv: a bare name runs whichever comes first on PATH."""
    names = "|".join(DICOM_TOOLS)
    in_python = re.compile(rf"""["']({names})["']""")
    in_shell = re.compile(rf"""(^|[\s;|&(`])({names})(?=\s|$)""")
    found = []
    for folder in ("tests", "fixtures", "bench", "tools"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path == Path(__file__):
                continue
            if path.suffix == ".py":
                lines = path.read_text().splitlines()
                pattern = in_python
            elif path.suffix == ".sh":
                lines = [line.split("#", 1)[0] for line in path.read_text().splitlines()]
                pattern = in_shell
            else:
                continue
            for number, line in enumerate(lines, 1):
                for match in pattern.finditer(line):
                    before = line[:match.start(match.lastindex)]
                    if not re.search(r"-m pynetdicom\s*$", before):
                        found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


# -- item 2: nothing measured is "not measured", not a verdict ------------------------------------


def _associate_requests_only(path: Path) -> Path:
    """Four handshakes and A-ASSOCIATE-RQs (each in two segments 3 µs apart), nothing answered."""
    frames = read_frames(FIXTURES / "echo_dcmtk.pcap")
    out = []
    for number in range(4):
        shift = number * 0.01
        for frame in frames[:3]:
            tcp = tcp_of(frame)[2]
            out.append(rebuild(frame, ts=float(frame.ts) + shift,
                               **({"dport": tcp.dport + number} if tcp.sport == 11112 else {"sport": tcp.sport + number})))
        tcp = tcp_of(frames[3])[2]
        payload = bytes(tcp.data)
        out.append(rebuild(frames[3], payload=payload[:100], sport=tcp.sport + number,
                           ts=float(frames[3].ts) + shift))
        out.append(rebuild(frames[3], payload=payload[100:], seq_shift=100, sport=tcp.sport + number,
                           ts=float(frames[3].ts) + shift + 0.000003))
    return write_pcap(path, out)


def test_stats_with_nothing_measured_gives_no_verdict_and_no_rate(tmp_path, capsys):
    from dicomtui.cli import main

    capture = _associate_requests_only(tmp_path / "rq.pcap")
    assert main(["--stats", str(capture)]) == 0
    out = capsys.readouterr().out
    assert "dominant cause: not measured" in out
    assert "advice:" not in out and "MB/s" not in out and "kB/s" not in out
    assert "not measured" in out.split("Throughput and PDU sizes")[1]


def test_a_rate_needs_64_kib_over_10_ms():
    from dicomtui.core.wire.tcp_analysis import measured_rate

    assert measured_rate(211, 0.000003) is None
    assert measured_rate(10 * 1024 * 1024, 0.001) is None
    assert measured_rate(64 * 1024, 0.010) == 64 * 1024 / 0.010


# -- item 11: dumpcap's reason for refusing a capture filter ----------------------------------------


def test_dumpcap_s_reason_for_a_bad_capture_filter_is_the_message():
    from dicomtui.core.wire.capture_tool import _explain

    stderr = ("Capturing on 'Loopback: lo'\n"
              "dumpcap: Invalid capture filter \"tcp port banana\" for interface 'lo'.\n\n"
              "That string isn't a valid capture filter (unknown port 'banana').\n"
              "See the User's Guide for a description of the capture filter syntax.")
    assert _explain("dumpcap", "/usr/bin/dumpcap", stderr, ["lo"]) == "invalid capture filter: unknown port 'banana'"


@run_async
async def test_no_horizontal_scrollbar_glyph_above_the_status_line(plugin_host):
    """Item 7: the expert pane's (and the detail tree's) horizontal scrollbar thumb is drawn with
    partial blocks that read as a stray "▌" above the status line; the panes scroll without it."""
    app = _file_app("store_dcmtk.pcapng", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("e")  # opens the expert pane on the first finding
        for _ in range(12):
            await pilot.press("j")
        await pilot.pause(0.3)
        for widget in app.screen.query("*"):
            if widget.display and widget.id in ("expert", "details"):
                assert widget.scrollbar_size_horizontal == 0 or not widget.show_horizontal_scrollbar, widget.id
