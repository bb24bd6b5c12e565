"""Issue 17 (hostile input, round two) and issue 18 item 4 (damaged capture tails).

Every input is built from the issue's description by ``hostile_inputs`` (small
instances of what ``bench/hostile_probe.py`` measures at full size).  The rule:
no traceback, no hang, memory bounded by the limits, a clear message and a
non-zero exit where something was not done, and nothing silently lost.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_inputs as inputs  # noqa: E402
import hostile_tools as tools  # noqa: E402

from dicomtui.core.analysis import AnalysisConfig, analyze  # noqa: E402
from dicomtui.core.capture import CaptureError, iter_records, open_source  # noqa: E402
from dicomtui.core.cli import main  # noqa: E402
from dicomtui.core.limits import Limits  # noqa: E402
from dicomtui.plugins.pdu_stream import PduStreamParser  # noqa: E402


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
    path = _write(tmp_path, "bomb.pcap.gz", inputs.gzip_bomb(64 << 20))
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
