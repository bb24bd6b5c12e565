"""Hostile values on the way out: terminal injection, path traversal, overwrites, passcodes.

The captures are real ones with patched bytes (fixture AE titles replaced by
escape sequences and markup, same lengths) or pynetdicom-encoded
conversations whose UIDs and AE titles are hostile.  The headless modes run
as a subprocess, as a user would run them, so that whatever reaches the
terminal (stdout *and* stderr, including library warnings) is checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_tools as tools  # noqa: E402
from capture_tools import FIXTURES  # noqa: E402

from dicomtui.core.api.export import OutputFolder, safe_component

# C0 and C1 controls except newline (and the tab some views use for alignment is not used either).
CONTROL_BYTES = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")
HOSTILE_CALLING = b"\x1b[31mRED\x1b]0;t\x07\x9b "  # 16 bytes: SGR, OSC title, 8-bit CSI
HOSTILE_CALLED = b"[bold red]x[/]  "  # 16 bytes of Rich markup
PASSCODE = b"s3cret"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONWARNINGS="default", DICOMTUI_PLUGINS="none")
    return subprocess.run([sys.executable, "-m", "dicomtui.cli", *args], capture_output=True,
                          timeout=120, env=environment, check=False)


def assert_no_control_bytes(data: bytes, where: str) -> None:
    match = CONTROL_BYTES.search(data)
    if match is not None:
        context = data[max(0, match.start() - 60) : match.end() + 60]
        raise AssertionError(f"control byte {match.group()!r} in {where}: {context!r}")


@pytest.fixture(scope="module")
def patched_echo(tmp_path_factory) -> Path:
    """echo_dcmtk.pcap with the A-ASSOCIATE-RQ's AE titles replaced (lengths kept)."""
    raw = bytearray((FIXTURES / "echo_dcmtk.pcap").read_bytes())
    position = raw.find(b"\x01\x00\x00\x00")
    while position >= 0 and raw[position + 10 : position + 26].rstrip(b" ") != b"STORESCP":
        position = raw.find(b"\x01\x00\x00\x00", position + 1)
    assert position >= 0, "A-ASSOCIATE-RQ not found in echo_dcmtk.pcap"
    raw[position + 10 : position + 26] = HOSTILE_CALLED
    raw[position + 26 : position + 42] = HOSTILE_CALLING
    path = tmp_path_factory.mktemp("hostile") / "echo_hostile_ae.pcap"
    path.write_bytes(bytes(raw))
    return path


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory) -> Path:
    """A C-STORE whose AE titles, instance UID and data set values are hostile."""
    dataset = tools.implicit_dataset(PatientName="\x1b[2J\x1b]8;;http://x\x07evil\x1b]8;;\x07",
                                     SOPInstanceUID="1.2.\x1b[31m3", PatientID="[link=file:///etc/passwd]x[/]")
    contexts = [(1, tools.CT_IMAGE, [tools.IMPLICIT_LE])]
    # pynetdicom refuses such AE titles, so they are patched into its encoding (same length).
    request = bytearray(tools.associate_rq("CALLING", "CALLED", contexts))
    accept = bytearray(tools.associate_ac("CALLING", "CALLED", contexts))
    for pdu in (request, accept):
        pdu[10:26] = b"../../x".ljust(16)
        pdu[26:42] = b"\x1b[31mEVIL\x1b]2;".ljust(16)
    client = [bytes(request), *tools.store_rq(dataset, instance="../../../../tmp/evil\x1b[0m"),
              tools.release_rq()]
    server = [bytes(accept), None, None, tools.release_rp()]
    path = tmp_path_factory.mktemp("hostile") / "store_hostile.pcap"
    path.write_bytes(tools.conversation(client, server))
    return path


# -- terminal injection ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--summary", "--expert", "--json", "--stats", "--flow 0"])
def test_hostile_ae_titles_never_reach_the_terminal_raw(patched_echo, mode):
    result = run_cli(*mode.split(), str(patched_echo))
    assert result.returncode == 0, result.stderr
    assert_no_control_bytes(result.stdout, f"{mode} stdout")
    assert_no_control_bytes(result.stderr, f"{mode} stderr")
    if mode == "--json":
        document = json.loads(result.stdout)
        # JSON keeps the exact value (escaped by the encoder), so tools downstream see the truth.
        assert document["associations"][0]["calling_ae"].startswith("\x1b[31mRED")
        assert document["associations"][0]["called_ae"] == "[bold red]x[/]"
    if mode == "--summary":
        text = result.stdout.decode()
        assert "\\x1b[31mRED" in text  # shown, visibly escaped
        assert "[bold red]x[/]" in text  # markup printed literally, never interpreted


@pytest.mark.parametrize("mode", ["--summary", "--expert", "--json", "--stats", "--flow 0"])
def test_hostile_values_in_commands_and_data_sets_never_reach_the_terminal_raw(hostile_store, mode):
    result = run_cli(*mode.split(), "-o", "dataset_check_bytes:100000000", str(hostile_store))
    assert result.returncode == 0, result.stderr
    assert_no_control_bytes(result.stdout, f"{mode} stdout")
    assert_no_control_bytes(result.stderr, f"{mode} stderr (library warnings included)")
    if mode == "--json":
        messages = json.loads(result.stdout)["messages"]
        assert messages[0]["sop_instance"] == "../../../../tmp/evil\x1b[0m"


def test_hostile_export_summary_and_names_are_safe(hostile_store, tmp_path):
    out = tmp_path / "out"
    result = run_cli("--export", str(out), str(hostile_store))
    assert_no_control_bytes(result.stdout + result.stderr, "export output")
    written = sorted(path.name for path in out.iterdir())
    assert written and all(re.fullmatch(r"[A-Za-z0-9._~-]+", name) for name in written), written


# -- path traversal ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "..", ".", "", "a\x00b", "x" * 5000, "~", "~/x",
                                  "..\\..\\x", "C:\\Windows\\x", "\u202ecod.exe", "a/../../b", "\x1b[31m"])
def test_output_folder_never_leaves_its_root(tmp_path, name):
    folder = OutputFolder(str(tmp_path / "out"))
    path = folder.claim(name)
    assert path.parent == (tmp_path / "out").resolve()
    assert len(path.name) <= 255
    assert re.fullmatch(r"[A-Za-z0-9._~-]+", path.name) and not path.name.startswith(".")
    opened_path, stream = folder.open_new(name)
    with stream:
        stream.write(b"x")
    assert opened_path.parent == (tmp_path / "out").resolve()


def test_output_folder_does_not_write_through_a_planted_symlink(tmp_path):
    target = tmp_path / "victim"
    target.write_bytes(b"keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "object.dcm").symlink_to(target)
    folder = OutputFolder(str(out))
    path, stream = folder.open_new("object.dcm")
    with stream:
        stream.write(b"new")
    assert path.name != "object.dcm" and target.read_bytes() == b"keep"
    replacing = OutputFolder(str(out), overwrite=True)
    with pytest.raises((OSError, ValueError)):  # the link resolves outside: refused, not followed
        replacing.open_new("object.dcm")[1].close()
    assert target.read_bytes() == b"keep"


def test_safe_component_is_bounded_and_plain():
    assert safe_component("../../etc/passwd") == "etc_passwd"
    assert safe_component("..") == "x"
    assert len(safe_component("1." * 1000, limit=64)) == 64


def test_export_of_hostile_uids_and_ae_titles_stays_inside_the_folder(hostile_store, tmp_path):
    base = tmp_path / "tree"
    base.mkdir()
    out = base / "out"
    for export_format in ("part10", "dicom-json", "transactions-csv", "transactions-json", "pcap"):
        result = run_cli("--export", str(out), "--export-format", export_format, "--include-commands",
                         str(hostile_store))
        assert result.returncode in (0, 3), result.stderr
    outside = [path for path in base.rglob("*") if out not in path.parents and path != out]
    assert outside == []
    assert not Path("/tmp/evil").exists()
    assert all(path.parent == out for path in out.rglob("*"))


def test_second_export_into_the_same_folder_keeps_the_first_and_says_so(tmp_path):
    capture = FIXTURES / "store_dcmtk.pcapng"
    if not capture.exists():
        pytest.skip("fixture not recorded")
    out = tmp_path / "out"
    first = run_cli("--export", str(out), str(capture))
    assert first.returncode == 0, first.stderr
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    second = run_cli("--export", str(out), str(capture))
    assert second.returncode == 0, second.stderr
    after = {path.name: path.read_bytes() for path in out.iterdir()}
    assert all(after[name] == data for name, data in before.items())  # nothing overwritten
    assert len(after) == 2 * len(before)
    assert b"already existed" in second.stderr and b"--overwrite" in second.stderr
    third = run_cli("--export", str(out), "--overwrite", str(capture))
    assert third.returncode == 0 and b"replaced" in third.stderr


# -- passcodes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def negotiation() -> Path:
    path = FIXTURES / "negotiation_pynetdicom.pcap"
    if not path.exists() or PASSCODE not in path.read_bytes():
        pytest.skip("negotiation_pynetdicom.pcap (user identity with passcode) not recorded")
    return path


@pytest.mark.parametrize("mode", ["--summary", "--expert", "--json", "--stats", "--flow 0"])
def test_passcode_never_appears_in_headless_output(negotiation, mode):
    result = run_cli(*mode.split(), str(negotiation))
    assert result.returncode == 0, result.stderr
    assert PASSCODE not in result.stdout and PASSCODE not in result.stderr
    if mode == "--json":
        identities = [a["user_identity"] for a in json.loads(result.stdout)["associations"] if a["user_identity"]]
        assert identities and all(identity["passcode"] == "********" for identity in identities)


@pytest.mark.parametrize("export_format", ["part10", "dicom-json", "transactions-csv", "transactions-json", "pcap"])
def test_passcode_never_appears_in_exported_files(negotiation, export_format, tmp_path):
    out = tmp_path / export_format
    result = run_cli("--export", str(out), "--export-format", export_format, "--include-commands",
                     str(negotiation))
    assert result.returncode in (0, 3), result.stderr
    for path in out.rglob("*"):
        assert PASSCODE not in path.read_bytes(), f"passcode in {path.name}"
    if export_format == "pcap":  # the frame is kept, the passcode bytes masked in place
        assert b"dicomtui" + b"\x00\x06" + b"*" * len(PASSCODE) in (out / "dicom.pcap").read_bytes()


def test_passcode_is_masked_in_the_decoded_tree(negotiation):
    from conftest import analyze_path

    analysis = analyze_path(negotiation)
    for pdu in analysis.pdus:
        if pdu.pdu_type == 1:
            text = analysis.decode_pdu(pdu).tree.render_text()
            assert "s3cret" not in text and "********" in text


# -- unreadable captures: a clear message and an exit status, never a traceback ----------------


@pytest.mark.parametrize("content, message", [
    (b"", b"empty file"),
    (b"\x1b[31mnot a capture at all", b"not a pcap or pcapng capture"),
    (b"\x1f\x8b\x08\x00broken gzip", b"damaged gzip data"),
    (b"\x0a\x0d\x0d\x0a\xff\xff\xff\xff\x4d\x3c\x2b\x1a", b"pcapng block"),
])
def test_unreadable_capture_exits_1_with_one_clear_line(tmp_path, content, message):
    path = tools.write(tmp_path, "bad\x1b[2J.pcap", content)
    result = run_cli("--summary", str(path))
    assert result.returncode == 1
    assert message in result.stderr and b"Traceback" not in result.stderr
    assert_no_control_bytes(result.stderr, "error message")


def test_truncated_capture_is_a_warning_and_the_rest_is_analysed(tmp_path):
    data = (FIXTURES / "echo_dcmtk.pcap").read_bytes()
    result = run_cli("--summary", str(tools.write(tmp_path, "cut.pcap", data[:-7])))
    assert result.returncode == 0
    assert b"truncated last record" in result.stderr and b"C-ECHO-RQ" in result.stdout
