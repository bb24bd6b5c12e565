"""Issue 17 (hostile input, round two) and issue 18 item 4 (damaged capture tails).

Every input is built from the issue's description by ``hostile_inputs`` (small
instances of what ``bench/hostile_probe.py`` measures at full size).  The rule:
no traceback, no hang, memory bounded by the limits, a clear message and a
non-zero exit where something was not done, and nothing silently lost.
"""

from __future__ import annotations

import gzip
import struct
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_inputs as inputs  # noqa: E402
import hostile_tools as tools  # noqa: E402

from dicomtui.core.base.limits import Limits  # noqa: E402
from dicomtui.cli import main, make_host  # noqa: E402
from dicomtui.core.pipeline import AnalysisConfig  # noqa: E402
from dicomtui.core.pipeline import analyze as _analyze_with  # noqa: E402
from dicomtui.core.protocol.framing import PduStreamParser  # noqa: E402
from dicomtui.core.wire.capture import CaptureError, iter_records, open_source  # noqa: E402


def analyze(paths: list[str], config: AnalysisConfig | None = None):
    return _analyze_with(paths, config or AnalysisConfig(), make_host(load_installed=False))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# -- 1: resynchronisation is a loop ----------------------------------------------------------


def test_resync_storm_in_a_capture_is_decoded_without_recursion(tmp_path, capsys):
    path = _write(tmp_path, "storm.pcap", inputs.resync_storm(1500))
    status, out, err = _cli(capsys, "--summary", path)
    assert status == 0 and "Traceback" not in err
    assert out.count("A-RELEASE request") == 1500


def test_framer_resynchronises_iteratively_on_any_number_of_bad_headers():
    storm = (tools.release_rq() + b"\x09\x00\x00\x00\x00\x04") * 20_000
    for start_in_resync, chunk in ((True, len(storm)), (True, 7), (False, 4096)):
        parser = PduStreamParser(Limits(), start_in_resync=start_in_resync)
        events = []
        prefix = b"" if start_in_resync else b"\x09\x00\x00\x00\x00\x00"
        data = prefix + storm
        for start in range(0, len(data), chunk):
            events += parser.feed(start, data[start : start + chunk])
        events += parser.finish()
        releases = [event for event in events if getattr(event, "pdu_type", None) == 5]
        assert len(releases) == 20_000
        assert all(pdu.complete for pdu in releases)


# -- 2 and 18.4: damaged pcapng blocks and capture tails -------------------------------------


@pytest.mark.parametrize("block_type, length", [(6, 12), (6, 16), (6, 28), (3, 12), (2, 16), (1, 12), (1, 16)])
def test_pcapng_last_block_shorter_than_its_fixed_part_is_a_warning(tmp_path, capsys, block_type, length):
    path = _write(tmp_path, "short.pcapng", inputs.pcapng_short_last_block(block_type, length))
    status, out, err = _cli(capsys, "--summary", path)
    assert status == 0 and "Traceback" not in err
    assert f"block of type {block_type}" in err and "shorter than its fixed part" in err
    assert "A-RELEASE response" in out  # everything before the damaged block was analysed


def test_damaged_section_header_after_good_records_keeps_the_records(tmp_path, capsys):
    path = _write(tmp_path, "shb.pcapng", inputs.pcapng_damaged_shb_after_records())
    status, out, err = _cli(capsys, "--summary", path)
    assert status == 0
    assert "section header at byte" in err and "stopped there" in err
    assert "A-RELEASE response" in out


def test_damaged_first_section_header_is_still_not_a_capture(tmp_path, capsys):
    data = bytearray(inputs.pcapng_good())
    data[8:12] = b"\xde\xad\xbe\xef"
    status, _out, err = _cli(capsys, "--summary", _write(tmp_path, "bad.pcapng", bytes(data)))
    assert status == 1 and "byte-order magic" in err


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_truncated_gzip_capture_is_analysed_up_to_the_damage(tmp_path, capsys, container):
    plain = inputs.pcapng_good(repeat=20) if container == "pcapng" else tools.conversation(
        [tools.associate_rq(), *tools.echo_rq(), tools.release_rq()] * 20,
        [tools.associate_ac(), None, tools.release_rp()] * 20)
    whole = gzip.compress(plain)
    for keep in (0.5, 0.9):
        path = _write(tmp_path, f"cut.{container}.gz", whole[: int(len(whole) * keep)])
        status, out, err = _cli(capsys, "--summary", path)
        assert status == 0 and "Traceback" not in err
        assert "damaged gzip data after" in err and "analysed what came before" in err
        assert "A-ASSOCIATE request" in out


def test_corrupt_gzip_member_keeps_what_inflated_before_the_damage(tmp_path, capsys):
    plain = tools.conversation([tools.associate_rq(), *tools.echo_rq(), tools.release_rq()] * 200,
                               [tools.associate_ac(), None, tools.release_rp()] * 200)
    whole = bytearray(gzip.compress(plain, compresslevel=1))
    whole[len(whole) // 2 :] = b"\xff" * (len(whole) - len(whole) // 2)
    status, out, err = _cli(capsys, "--summary", _write(tmp_path, "corrupt.pcap.gz", bytes(whole)))
    assert status == 0 and "damaged gzip data after" in err
    assert "A-ASSOCIATE request" in out


def test_gzip_with_nothing_readable_is_a_clean_error(tmp_path, capsys):
    status, _out, err = _cli(capsys, "--summary", _write(tmp_path, "x.pcap.gz", b"\x1f\x8b\x08\x00garbage"))
    assert status == 1 and "damaged gzip data" in err and "Traceback" not in err


def test_gzip_spooling_stops_at_max_spool_bytes_with_a_note(tmp_path, capsys):
    plain = tools.conversation([tools.associate_rq(), *tools.echo_rq(), tools.release_rq()] * 200,
                               [tools.associate_ac(), None, tools.release_rp()] * 200)
    path = _write(tmp_path, "big.pcap.gz", gzip.compress(plain))
    status, out, err = _cli(capsys, "-o", "max_spool_bytes:20000", "--summary", path)
    assert status == 0
    assert "stopped after 20000 bytes, the max_spool_bytes limit" in err
    assert "A-ASSOCIATE request" in out
    source = open_source(str(path), 20000)
    try:
        assert len(source.data) == 20000
        assert len(list(iter_records(source))) > 10
    finally:
        source.close()


def test_gzip_bomb_spools_only_up_to_the_limit(tmp_path):
    path = _write(tmp_path, "bomb.pcap.gz", inputs.gzip_bomb(32 << 20))
    analysis = analyze([str(path)], AnalysisConfig(limits=Limits(max_spool_bytes=4 << 20)))
    try:
        assert len(analysis.sources[0].data) == 4 << 20
        assert any("max_spool_bytes" in note.message for note in analysis.notes)
    finally:
        for source in analysis.sources:
            source.close()


def test_truncated_plain_pcapng_enhanced_packet_is_a_warning(tmp_path, capsys):
    data = inputs.pcapng_good()
    status, out, err = _cli(capsys, "--summary", _write(tmp_path, "cut.pcapng", data[:-10]))
    assert status == 0 and "truncated pcapng block" in err and "A-RELEASE request" in out


def test_capture_error_is_still_raised_for_non_captures(tmp_path):
    with pytest.raises(CaptureError):
        list(iter_records(open_source(str(_write(tmp_path, "x.pcap", b"not a capture at all")))))


# -- 3: timestamps no container can hold ----------------------------------------------------


@pytest.mark.parametrize("builder", [inputs.pcapng_far_future, inputs.pcapng_negative_offset],
                         ids=["year-38000", "tsoffset-minus-4e9"])
def test_pcap_export_of_unrepresentable_timestamps_says_so(tmp_path, capsys, builder):
    import dpkt

    path = _write(tmp_path, "odd-time.pcapng", builder())
    out = tmp_path / "out"
    status, _out, err = _cli(capsys, "--export", out, "--export-format", "pcap", path)
    assert status == 3 and "Traceback" not in err
    assert "have timestamps dicom.pcap cannot hold" in err
    with open(out / "dicom.pcap", "rb") as handle:
        frames = list(dpkt.pcap.Reader(handle))
    assert len(frames) == len(inputs.echo_frames())  # every frame is there, at the nearest time


@pytest.mark.parametrize("file_format", ["csv", "json"])
@pytest.mark.parametrize("builder", [inputs.pcapng_far_future, inputs.pcapng_negative_offset],
                         ids=["year-38000", "tsoffset-minus-4e9"])
def test_transaction_export_of_unrepresentable_timestamps(tmp_path, capsys, builder, file_format):
    path = _write(tmp_path, "odd-time.pcapng", builder())
    out = tmp_path / "out"
    status, _out, err = _cli(capsys, "--export", out, "--export-format", f"transactions-{file_format}", path)
    assert status == 0 and "Traceback" not in err
    text = (out / f"transactions.{file_format}").read_text()
    assert "C-ECHO" in text


# -- 4: a command with a UID longer than any UID ----------------------------------------------


def test_long_uid_with_raised_max_command_exports_with_an_artificial_uid(tmp_path, capsys):
    import pydicom

    from dicomtui.plugins.export import part10

    path = _write(tmp_path, "long-uid.pcap", inputs.long_uid_store(70_000))
    out = tmp_path / "out"
    status, _out, err = _cli(capsys, "-o", "max_command:200000", "--export", out, path)
    assert status == 3 and "Traceback" not in err
    assert "SOP instance UID is 70000 characters" in err
    (written,) = list(out.iterdir())
    dataset = pydicom.dcmread(written)
    assert dataset.file_meta.MediaStorageSOPInstanceUID == f"{part10.ARTIFICIAL_DATASET_INSTANCE_ROOT}.1"
    assert dataset.PatientName == "LONG^UID"


# -- 5: folders and links -------------------------------------------------------------------


def test_planted_symlinks_fail_their_object_only(tmp_path, capsys):
    path = _write(tmp_path, "two.pcap", inputs.two_stores())
    out = tmp_path / "out"
    first = _cli(capsys, "--export", out, path)
    assert first[0] == 0
    names = sorted(item.name for item in out.iterdir())
    assert len(names) == 2
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (out / names[0]).unlink()
    (out / names[0]).symlink_to(tmp_path / "dangling-target")  # dangling
    # Without --overwrite: the link is something already there, so the new file is NAME~2.
    status, _stdout, err = _cli(capsys, "--export", out, path)
    assert status == 0 and "Traceback" not in err
    assert not (tmp_path / "dangling-target").exists()
    # With --overwrite: refused for that object, written for the other, exit 3.
    (out / names[1]).unlink()
    (out / names[1]).symlink_to(victim)
    status, _stdout, err = _cli(capsys, "--overwrite", "--export", out, path)
    assert status == 3 and "Traceback" not in err
    assert "symbolic link" in err and "error:" in err
    assert victim.read_bytes() == b"keep" and not (tmp_path / "dangling-target").exists()
    assert (out / names[1]).is_symlink()
    assert not any(item.name.startswith(".") for item in out.iterdir())


def _run_as_nobody(function) -> tuple[int, str]:
    """Run ``function()`` (returns an exit status) in a forked child with uid/gid 65534."""
    import os

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        status = 99
        try:
            os.close(read_end)
            sys.stderr = os.fdopen(write_end, "w")
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            status = function()
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            print(f"child failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            sys.stderr.flush()
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as handle:
        err = handle.read().decode("utf-8", "replace")
    _pid, raw = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(raw), err


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="needs root to become an unprivileged user")
@pytest.mark.parametrize("mode", [0o333, 0o555])
def test_export_into_a_folder_the_user_cannot_read_or_write(mode):
    import os
    import shutil
    import tempfile

    import dicomtui.core.api.export  # noqa: F401  (imported before dropping privileges)
    import dicomtui.core.views  # noqa: F401
    import dicomtui.core.views.export  # noqa: F401
    import dicomtui.plugins.export.part10  # noqa: F401

    work = Path(tempfile.mkdtemp(prefix="dicomtui-perm-"))
    try:
        work.chmod(0o755)
        path = _write(work, "two.pcap", inputs.two_stores())
        path.chmod(0o644)
        out = work / "out"
        out.mkdir(mode=mode)
        out.chmod(mode)
        main(["--summary", str(path)])  # warm every lazy import while still root
        status, err = _run_as_nobody(lambda: main(["--export", str(out), str(path)]))
        assert "Traceback" not in err and "child failed" not in err, err
        if mode == 0o333:  # may write, may not list: the export works
            assert status == 0, err
            assert "wrote 2 file(s)" in err
        else:  # may not write: every object fails, each says why, exit 3
            assert status == 3, err
            assert err.count("Permission denied") == 2
    finally:
        for root, dirs, _files in os.walk(work):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
        shutil.rmtree(work)


# -- 13: interrupted export -----------------------------------------------------------------


def test_interrupted_export_leaves_no_file_with_a_complete_looking_name(tmp_path, capsys, monkeypatch):
    from dicomtui.plugins.export import part10

    path = _write(tmp_path, "large.pcap", inputs.large_store(4 << 20))
    calls = {"n": 0}
    original = part10._write_all

    def interrupted(descriptor, pieces):
        calls["n"] += 1
        if calls["n"] == 1:  # the file's header is written: the interrupt comes mid-file
            raise KeyboardInterrupt
        return original(descriptor, pieces)

    monkeypatch.setattr(part10, "_write_all", interrupted)
    out = tmp_path / "out"
    status, _out, err = _cli(capsys, "--export", out, path)
    assert status == 130 and "interrupted" in err
    assert list(out.iterdir()) == []  # neither a truncated .dcm nor a temporary file
    monkeypatch.setattr(part10, "_write_all", original)
    status, _out, _err = _cli(capsys, "--export", out, path)
    assert status == 0
    (written,) = list(out.iterdir())
    assert written.suffix == ".dcm" and written.stat().st_size > 4 << 20


@pytest.mark.parametrize("exporter", ["part10", "dicom-json", "pcap", "transactions-csv", "transactions-json"])
def test_every_exporter_writes_through_temporary_names(tmp_path, capsys, monkeypatch, exporter):
    """Interrupt the rename of the first file: no exporter leaves a file under its real name."""
    import os

    from dicomtui.core.api import export

    path = _write(tmp_path, "two.pcap", inputs.two_stores())
    renamed = []

    def interrupt(source, target):
        renamed.append(target)
        raise KeyboardInterrupt

    monkeypatch.setattr(export.os, "replace", interrupt)
    out = tmp_path / "out"
    status, _out, _err = _cli(capsys, "--export", out, "--export-format", exporter, path)
    assert status == 130 and renamed
    assert list(out.iterdir()) == []
    monkeypatch.setattr(export.os, "replace", os.replace)


# -- 6: deflate bombs --------------------------------------------------------------------------


def test_deflate_bomb_costs_every_consumer_only_a_bounded_inflation(tmp_path, capsys, monkeypatch):
    from dicomtui.core.base import inflate
    from dicomtui.core.protocol import datasets

    produced = []
    original = inflate.inflate_bounded

    def spy(data, limit):
        result = original(data, limit)
        produced.append((limit, len(result.data)))
        return result

    monkeypatch.setattr(datasets, "inflate_bounded", spy)  # the one inflate call (the codec's)
    path = _write(tmp_path, "bombs.pcap", inputs.deflate_bombs(3, 64 << 20))
    for args in (["--summary"], ["--expert"], ["--export", tmp_path / "p10"],
                 ["-o", "max_inflated_bytes:4194304", "--export", tmp_path / "dj", "--export-format", "dicom-json"]):
        produced.clear()
        status, _out, err = _cli(capsys, *args, path)
        assert "Traceback" not in err
        # The expert rule inflates at most its check size (1 MB), the exporter at most the limit.
        assert all(size <= limit <= 4 << 20 for limit, size in produced), (args, produced)
    assert status == 0 or "inflates beyond" in err
    analysis = analyze([str(path)], AnalysisConfig(limits=Limits(max_inflated_bytes=8 << 20, max_elements=5000)))
    try:
        produced.clear()
        decoded = analysis.decode_dataset(next(m for m in analysis.messages if m.has_dataset))
        assert produced == [(8 << 20, 8 << 20)]
        assert any("inflates beyond" in problem for problem in decoded.problems)
        assert any("more than 5000 elements" in problem for problem in decoded.problems)
    finally:
        for source in analysis.sources:
            source.close()


def test_inflated_size_is_also_bounded_by_max_dataset_bytes():
    from dicomtui.plugins.dataset import decode_dataset

    bomb = inputs.deflate_bomb_dataset(16 << 20)
    decoded = decode_dataset(bomb, tools.DEFLATED_LE, Limits(max_dataset_bytes=1 << 20))
    assert any("inflates beyond the 1048576-byte limit" in problem for problem in decoded.problems)


def test_pydicom_stops_after_max_elements():
    from dicomtui.plugins.dataset import decode_dataset

    tiny_elements = struct.pack("<HHI", 0x0009, 0x1000, 0) * 200_000  # implicit LE, 8 bytes each
    decoded = decode_dataset(tiny_elements, tools.IMPLICIT_LE, Limits(max_elements=1000))
    assert any("more than 1000 elements" in problem for problem in decoded.problems)
    assert len(decoded.dataset) <= 1001


# -- 14: library warnings ---------------------------------------------------------------------


def test_library_warnings_outside_the_decoder_become_one_escaped_summary_line(tmp_path, capsys, monkeypatch):
    from pydicom.misc import warn_and_log

    from dicomtui.core.views import summary as views  # where the command line reads summary_lines

    original = views.summary_lines

    def summary_with_warnings(analysis, *args):  # (time format, -Y rows: issue 13)
        for number in range(5):  # as a view reading pydicom values lazily would
            warn_and_log(f"Invalid value for VR UI: '1.2.\x1b[31m{number}'")
        yield from original(analysis, *args)

    monkeypatch.setattr(views, "summary_lines", summary_with_warnings)
    path = _write(tmp_path, "two.pcap", inputs.two_stores())
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as outside pytest, whatever -W the run was given
        status, _out, err = _cli(capsys, "--summary", path)
    assert status == 0
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and "reported 5 problem(s)" in lines[0], (err, warnings.showwarning)
    assert "\x1b" not in err and "\\x1b[31m" in err


def test_invalid_values_become_an_expert_note_and_an_export_note(tmp_path, capsys):
    path = _write(tmp_path, "invalid-ui.pcap", inputs.invalid_ui_store())
    status, out, err = _cli(capsys, "--expert", path)
    assert status == 0 and "UserWarning" not in err
    assert "value(s) pydicom reports as invalid: Invalid value for VR UI" in out
    status, _out, err = _cli(capsys, "--export", tmp_path / "dj", "--export-format", "dicom-json", path)
    assert "UserWarning" not in err and "pydicom reported 1 problem(s)" in err


# -- 7, 8: --json streams, byte-identical to json.dump ---------------------------------------

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.pcap*")))
def test_streamed_json_is_byte_identical_to_safe_json(name):
    import io

    from dicomtui.core.base.safe_text import safe_json
    from dicomtui.core.views import analysis_json, write_analysis_json

    analysis = analyze([str(FIXTURES / name)])
    try:
        expected = safe_json(analysis_json(analysis), indent=1)  # what --json wrote before streaming
        streamed = io.StringIO()
        write_analysis_json(analysis, streamed)
        assert streamed.getvalue() == expected
    finally:
        for source in analysis.sources:
            source.close()


def test_indented_encoder_matches_json_dumps_on_arbitrary_values():
    import json

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from dicomtui.core.views import encode_indented

    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
    values = st.recursive(scalars, lambda children: st.lists(children, max_size=4) | st.tuples(children) |
                          st.dictionaries(keys, children, max_size=4), max_leaves=20)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values, st.integers(min_value=0, max_value=3))
    def check(value, level):
        expected = json.dumps(value, indent=1).replace("\n", "\n" + " " * level)
        assert encode_indented(value, level) == expected

    check()


# -- 9: detection is incremental --------------------------------------------------------------


def test_detection_keeps_its_first_bytes_incrementally(tmp_path, monkeypatch):
    from dicomtui.core.pipeline import engine

    calls = []
    original = engine.classify_connection

    def spy(first_bytes, ports, dicom_ports, heuristic):
        calls.append((id(first_bytes[0]), len(first_bytes[0]) + len(first_bytes[1])))
        return original(first_bytes, ports, dicom_ports, heuristic)

    monkeypatch.setattr(engine, "classify_connection", spy)
    path = _write(tmp_path, "almost.pcap", inputs.almost_dicom(2, 4096))
    analysis = analyze([str(path)])
    try:
        assert analysis.connections == []  # not DICOM, decided at 4,096 bytes
        assert len(calls) == 2 * 4096
        # One buffer per connection, grown by one byte per segment (never rebuilt from all held segments).
        assert len({buffer for buffer, _size in calls}) <= 2
        assert [size for _buffer, size in calls[:4096]] == list(range(1, 4097))
    finally:
        for source in analysis.sources:
            source.close()


def test_gzip_bomb_stops_at_the_expansion_ratio(tmp_path, monkeypatch):
    from dicomtui.core.wire import capture

    monkeypatch.setattr(capture, "RATIO_CHECK_AFTER", 4 << 20)  # 64 MB in use; smaller here for speed
    path = _write(tmp_path, "bomb.pcap.gz", inputs.gzip_bomb(32 << 20))
    analysis = analyze([str(path)])
    try:
        spooled = len(analysis.sources[0].data)
        assert (4 << 20) < spooled < (8 << 20)
        assert any("more than 500:1 (a gzip bomb?)" in note.message for note in analysis.notes)
    finally:
        for source in analysis.sources:
            source.close()
    allowed = analyze([str(path)], AnalysisConfig(limits=Limits(max_gzip_ratio=10_000)))
    try:
        assert len(allowed.sources[0].data) == (32 << 20) + 24
    finally:
        for source in allowed.sources:
            source.close()
