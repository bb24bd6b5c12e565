"""Control characters from a capture never reach a text output raw: every headless mode, every exporter.

A pynetdicom-encoded C-STORE whose AE titles, SOP instance UID and data set
values carry terminal escapes (OSC 52 clipboard write, OSC title, SGR, BEL,
DEL, 8-bit CSI as byte and as U+009B, bidi override, line separator) goes
through every headless mode of the command-line parser and every exporter the
plugin host registers (installed plugins included), in this process (``run_main``;
library warnings are printed to stderr as without pytest).  Every text file written
(anything but the known binary kinds) and everything printed must be free of
them: a user who ``cat``s a file must not have a sequence run.  A new mode or
exporter is covered without editing this test; a new binary file kind must be
named in ``BINARY_SUFFIXES``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_tools as tools  # noqa: E402
from hostile_tools import headless_modes, run_main  # noqa: E402

from dicomtui.cli import make_host
from dicomtui.core.views.export import exporters

# C0 (but newline), DEL, C1 as UTF-8, line/paragraph separators, bidi embeddings/overrides/isolates.
UNSAFE = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]")
BINARY_SUFFIXES = {".dcm", ".raw", ".partial", ".bin", ".pcap", ".pcapng"}
OSC52 = "\x1b]52;c;ZXZpbA==\x07"  # "write 'evil' to the clipboard"
HOSTILE_VALUE = f"A{OSC52}\x1b]0;title\x07\x1b[31m\u009b2J\u202e\u2028\x7fZ"


def assert_safe(data: bytes, where: str) -> None:
    match = UNSAFE.search(data.replace(b"\r\n", b"\n"))
    if match is not None:
        context = data[max(0, match.start() - 60) : match.end() + 60]
        raise AssertionError(f"raw control {match.group()!r} in {where}: {context!r}")


@pytest.fixture(scope="module")
def hostile_capture(tmp_path_factory) -> Path:
    dataset = tools.implicit_dataset(SpecificCharacterSet="ISO_IR 192", PatientName=HOSTILE_VALUE,
                                     PatientID="\x1b[2J\x07", StudyDescription=HOSTILE_VALUE,
                                     SOPInstanceUID="1.2.3\x1b[0m")
    contexts = [(1, tools.CT_IMAGE, [tools.IMPLICIT_LE])]
    request = bytearray(tools.associate_rq("CALLING", "CALLED", contexts))
    accept = bytearray(tools.associate_ac("CALLING", "CALLED", contexts))
    for pdu in (request, accept):  # pynetdicom refuses such titles: patched in, same length
        pdu[10:26] = b"\x1b]52;c;eA==\x07\x7f\x9b[m"[:16].ljust(16)
        pdu[26:42] = b"\x1b]0;t\x07\x1b[31mX\x08\x0d".ljust(16)
    client = [bytes(request), *tools.store_rq(dataset, instance="1.2.3.\x1b]0;x\x07.\x7f"), tools.release_rq()]
    server = [bytes(accept), None, None, tools.release_rp()]
    path = tmp_path_factory.mktemp("hostile-text") / "store_hostile_text.pcap"
    path.write_bytes(tools.conversation(client, server))
    return path


def test_every_headless_mode_is_listed():
    assert {"--summary", "--json", "--expert", "--list-plugins"} <= set(headless_modes())


@pytest.mark.parametrize("mode", headless_modes())
def test_headless_modes_print_no_raw_control_characters(hostile_capture, mode, capfdbinary):
    status, out, err = run_main(capfdbinary, mode, "-o", "dataset_check_bytes:100000000", str(hostile_capture))
    assert status == 0, err
    assert out, "nothing printed: the test would prove nothing"
    assert_safe(out, f"{mode} stdout")
    assert_safe(err, f"{mode} stderr")


@pytest.mark.parametrize("export_format", sorted(exporters(make_host())))
def test_every_exporter_writes_no_raw_control_characters(hostile_capture, export_format, tmp_path, capfdbinary):
    out = tmp_path / "out"
    status, printed, err = run_main(capfdbinary, "--export", str(out), "--export-format", export_format,
                                    "--include-commands", "--include-incomplete", str(hostile_capture))
    assert status in (0, 3), err
    assert_safe(printed, "export stdout")
    assert_safe(err, "export stderr")
    written = sorted(out.rglob("*"))
    assert written, f"{export_format} wrote nothing from the hostile capture"
    for path in written:
        if path.suffix not in BINARY_SUFFIXES:
            assert_safe(path.read_bytes(), f"{export_format}: {path.name}")


def test_text_exporters_keep_the_values_visible(hostile_capture, tmp_path, capfdbinary):
    """Escaped, not dropped: CSV shows the escape, JSON readers get the exact value back."""
    import json

    for export_format in ("transactions-csv", "transactions-json", "dicom-json"):
        status, _out, err = run_main(capfdbinary, "--export", str(tmp_path / export_format), "--export-format",
                                     export_format, str(hostile_capture))
        assert status == 0, err
    csv_text = (tmp_path / "transactions-csv" / "transactions.csv").read_text("utf-8")
    assert "1.2.3.\\x1b]0;x\\x07.\\x7f" in csv_text
    rows = json.loads((tmp_path / "transactions-json" / "transactions.json").read_text("utf-8"))
    assert rows[0]["sop_instance"] == "1.2.3.\x1b]0;x\x07.\x7f"
    document = json.loads(next((tmp_path / "dicom-json").glob("*.json")).read_text("utf-8"))
    assert document["00081030"]["Value"] == [HOSTILE_VALUE]


@pytest.mark.parametrize("mode", ["--summary", "--expert", "--jsonl", "--json"])
def test_live_modes_print_no_raw_control_characters(hostile_capture, mode, capfdbinary):
    """The live path (here a followed file) prints through the same guards as reading a file."""
    status, out, err = run_main(capfdbinary, mode, "--follow", str(hostile_capture), "-a", "duration:0.5")
    assert status == 0, err
    assert out, "nothing printed: the test would prove nothing"
    assert_safe(out, f"live {mode} stdout")
    assert_safe(err, f"live {mode} stderr")
