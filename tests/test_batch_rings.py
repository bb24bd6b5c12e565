"""Batch mode over ring buffers as the capture tools write them (issue 22).

``tcpdump -C`` names its files ``ring``, ``ring1``, ... ``ring10``: name order is not time
order.  The batch must place files by their contents (timestamps), never by their names,
and a rerun must never keep tables made from another arrangement or other options.  The
reference is always the single pass over the same files given with ``-r`` in time order.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
pytest.importorskip("duckdb")

from batch_tools import assert_same_as_single, batch_order, local_batch, read_table, single_json, split_capture
from capture_tools import FIXTURES, load_make_capture
from dicomtui.cli import main

needs_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
needs_editcap = pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (wireshark) is not installed")


def tcpdump_ring(capture: Path, out_dir: Path, megabytes: int = 1) -> list[Path]:
    """``tcpdump -r capture -C megabytes -w out_dir/ring``: the files in the order tcpdump wrote them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # As root tcpdump drops to its own user before opening the output: keep the current one.
    as_user = ["-Z", "root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    subprocess.run(["tcpdump", "-q", *as_user, "-r", str(capture), "-C", str(megabytes), "-w",
                    str(out_dir / "ring")], check=True, capture_output=True)
    files = [out_dir / "ring"] + sorted((p for p in out_dir.iterdir() if p.name != "ring"),
                                        key=lambda p: int(p.name[4:]))
    assert len(files) == len(list(out_dir.iterdir()))
    return files


def editcap_parts(capture: Path, out_dir: Path, packets: int, stem: str = "part", pcapng: bool = False) -> list[Path]:
    """``editcap -c packets``: ``stem_00000_<time>.pcap`` ... (dumpcap ``-b``'s naming), in time order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".pcapng" if pcapng else ".pcap"
    subprocess.run(["editcap", "-F", "pcapng" if pcapng else "pcap", "-c", str(packets), str(capture),
                    str(out_dir / (stem + suffix))], check=True, capture_output=True)
    return sorted(out_dir.iterdir())  # five-digit sequence numbers: here name order is time order


def as_tcpdump_names(files: list[Path], out_dir: Path) -> list[Path]:
    """Rename time-ordered files to tcpdump -C's scheme (ring, ring1, ... ring10, ...)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    renamed = []
    for number, path in enumerate(files):
        target = out_dir / ("ring" if number == 0 else f"ring{number}")
        shutil.move(path, target)
        renamed.append(target)
    return renamed


@pytest.fixture(scope="module")
def generated_capture(tmp_path_factory) -> Path:
    """About 11 MB of C-STOREs in four associations (bench/make_capture.py), some segments
    reordered and retransmitted: enough for tcpdump -C 1 to write ring ... ring10."""
    path = tmp_path_factory.mktemp("generated") / "stores.pcap"
    make_capture = load_make_capture()
    make_capture.main([str(path), "--size-mb", "11", "--object-kb", "24", "--associations", "4",
                       "--messy", "0.01"])
    return path


@needs_tcpdump
def test_tcpdump_ring_buffer_equals_the_single_pass(tmp_path, capsys, generated_capture):
    files = tcpdump_ring(generated_capture, tmp_path / "ring")
    assert len(files) > 10 and sorted(files) != files  # ring10 sorts before ring2
    expected = single_json(files, capsys)
    assert expected["messages"] == single_json([generated_capture], capsys)["messages"]
    outcome = local_batch(tmp_path / "out", [tmp_path / "ring"], groups=3)
    assert not outcome.problems
    assert outcome.counts["messages"] == len(expected["messages"]) > 100
    assert_same_as_single(tmp_path / "out", expected)


@needs_editcap
@pytest.mark.parametrize("name,packets", [("qr_pynetdicom.pcap", 9), ("timing_loss.pcap", 25)])
def test_editcap_parts_under_tcpdump_names_equal_the_single_pass(tmp_path, capsys, name, packets):
    parts = editcap_parts(FIXTURES / name, tmp_path / "parts", packets)
    files = as_tcpdump_names(parts, tmp_path / "ring")
    assert len(files) > 10
    expected = single_json(files, capsys)
    local_batch(tmp_path / "out", [tmp_path / "ring"], groups=3)
    assert_same_as_single(tmp_path / "out", expected)


@needs_editcap
def test_dumpcap_style_pcapng_names_and_reversed_names(tmp_path, capsys):
    """``editcap -F pcapng -c`` names files as ``dumpcap -b filesize:`` does (sequence number and
    time); then the same files named in reverse time order, and under names that sort at random."""
    files = editcap_parts(FIXTURES / "store_ts_pynetdicom.pcap", tmp_path / "dumpcap", 7, "ring", pcapng=True)
    assert len(files) > 10 and all(f.name.startswith("ring_0000") for f in files[:10])
    expected = single_json(files, capsys)
    local_batch(tmp_path / "out-dumpcap", [tmp_path / "dumpcap"], groups=3)
    assert_same_as_single(tmp_path / "out-dumpcap", expected)
    reversed_dir = tmp_path / "reversed"
    reversed_dir.mkdir()
    for number, path in enumerate(files):  # the newest file gets the smallest name
        shutil.copy(path, reversed_dir / f"capture_{len(files) - number:03d}.pcapng")
    local_batch(tmp_path / "out-reversed", [reversed_dir], groups=2)
    assert_same_as_single(tmp_path / "out-reversed", expected)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for number, path in enumerate(files):
        shutil.copy(path, shuffled / f"{(number * 7919) % 101:03d}-{number}.pcapng")
    local_batch(tmp_path / "out-shuffled", [str(shuffled / "*.pcapng")], groups=4, workers=1)
    assert_same_as_single(tmp_path / "out-shuffled", expected)


@needs_editcap
def test_run_files_cuts_runs_in_time_order(tmp_path, capsys):
    parts = editcap_parts(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "parts", 9)
    files = as_tcpdump_names(parts, tmp_path / "ring")
    outcome = local_batch(tmp_path / "out", [tmp_path / "ring"], run_files=4, groups=2)
    assert outcome.inputs == len(files) and len(outcome.run_ids) == -(-len(files) // 4)
    seen = []
    for run_id in outcome.run_ids:
        record = json.loads((tmp_path / "out" / "runs" / run_id / "run.json").read_text())
        own = [Path(item["path"]) for item in record["inputs"]]
        start = files.index(own[0])
        assert own == files[start:start + len(own)]  # consecutive in time, listed in time order
        seen += own
        assert_same_as_single(tmp_path / "out", single_json(own, capsys), run=run_id)
    assert sorted(seen) == sorted(files)


@needs_editcap
def test_a_rerun_over_correctly_named_copies_finds_the_tables_right(tmp_path, capsys):
    """The issue's sequence: a batch over tcpdump's names, then over copies renamed into time
    order, into the same OUTDIR; the tables must be those of the single pass."""
    parts = editcap_parts(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "parts", 9)
    files = as_tcpdump_names(parts, tmp_path / "ring")
    timed = tmp_path / "timed"
    timed.mkdir()
    for number, path in enumerate(files):
        shutil.copy(path, timed / f"ring_{number:03d}.pcap")
    expected = single_json(files, capsys)
    local_batch(tmp_path / "out", [tmp_path / "ring"], groups=3)
    again = local_batch(tmp_path / "out", [timed], groups=3)
    assert again.skipped == len(files)  # the same contents, the same options: nothing to redo
    assert_same_as_single(tmp_path / "out", expected)


def _ring(tmp_path) -> Path:
    split_capture(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "ring", [30, 60])
    return tmp_path / "ring"


def test_a_rerun_with_other_decoding_options_is_refused(tmp_path, capsys):
    ring = _ring(tmp_path)
    out = str(tmp_path / "out")
    assert main(["--batch", out, str(ring), "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["--batch", out, str(ring), "--workers", "1"]) == 0  # same options: skipped
    assert "nothing new" in capsys.readouterr().err
    for other in (["--no-heuristic"], ["-o", "max_pdu_length:100000"], ["--ports", "104"]):
        status = main(["--batch", out, str(ring), "--workers", "1", *other])
        err = capsys.readouterr().err
        assert status == 2, (other, err)
        assert "other decoding options" in err and "nothing new" not in err, other
    assert len(list((tmp_path / "out" / "runs").iterdir())) == 1


def test_a_run_made_in_name_order_is_not_kept(tmp_path, capsys):
    """A run committed by an earlier dicomtui (inputs in name order, no arrangement recorded)
    is not taken as the answer for the same inputs."""
    ring = _ring(tmp_path)
    local_batch(tmp_path / "out", [ring])
    record_path = next((tmp_path / "out").glob("runs/*/run.json"))
    record = json.loads(record_path.read_text())
    record.pop("arrangement", None)
    record["inputs"].reverse()  # as the name order of tcpdump's ring, ring1, ring10, ring2 would be
    record_path.write_text(json.dumps(record))
    status = main(["--batch", str(tmp_path / "out"), str(ring), "--workers", "1"])
    err = capsys.readouterr().err
    assert status == 2 and "nothing new" not in err
    assert "in another arrangement" in err and record["run_id"] in err


def test_a_new_input_inside_a_committed_run_is_a_warning(tmp_path, capsys):
    """A ring file that arrives after its neighbours were committed cannot join their capture:
    it is analysed on its own, and that is said on stderr and in input_problems."""
    files = split_capture(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "ring", [30, 60])
    late = tmp_path / "late"
    late.mkdir()
    shutil.move(files[1], late / files[1].name)
    assert main(["--batch", str(tmp_path / "out"), str(tmp_path / "ring"), "--workers", "1"]) == 0
    capsys.readouterr()
    status = main(["--batch", str(tmp_path / "out"), str(tmp_path / "ring"), str(late), "--workers", "1"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "warning" in err and files[1].name in err and "separate capture" in err
    rows = read_table(tmp_path / "out", "input_problems")
    assert [(Path(row["path"]).name, row["severity"]) for row in rows] == [(files[1].name, "warning")]


@needs_editcap
@pytest.mark.parametrize("order", ["forward", "backward"])
def test_pcapng_files_of_several_sections(tmp_path, capsys, order):
    """Ring files concatenated (``cat a.pcapng c.pcapng``: one file, two sections) next to the
    file of the time between them; backward, the file's own timestamps go back at the section
    boundary.  Merged in time, as the single pass merges them."""
    parts = editcap_parts(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "parts", 30, "ring", pcapng=True)
    assert len(parts) >= 4
    first, middle, last = parts[0], parts[1], parts[2:]
    joined_dir = tmp_path / "in"
    joined_dir.mkdir()
    sections = [first, *last] if order == "forward" else [*last, first]
    (joined_dir / "a-joined.pcapng").write_bytes(b"".join(path.read_bytes() for path in sections))
    shutil.copy(middle, joined_dir / "z-middle.pcapng")
    outcome = local_batch(tmp_path / "out", [joined_dir], groups=3)
    assert outcome.inputs == 2 and not outcome.problems
    arranged = batch_order(tmp_path / "out")
    expected = single_json(arranged, capsys)
    assert len(expected["messages"]) == len(single_json([FIXTURES / "qr_pynetdicom.pcap"], capsys)["messages"])
    assert_same_as_single(tmp_path / "out", expected)


def test_runs_are_cut_only_where_no_file_spans_the_cut():
    from dicomtui.batch.arrangement import cut_runs

    spans = {"a": (0, 10), "b": (10.5, 20), "c": (11, 30), "d": (21, 25), "e": (31, 40), "f": (41, 50)}
    ordered = sorted(spans, key=spans.get)

    def cut(size):
        return cut_runs(ordered, size, lambda name: spans[name][0], lambda name: spans[name][1])

    assert cut(0) == [ordered] and cut(10) == [ordered]
    assert cut(1) == [["a"], ["b", "c", "d"], ["e"], ["f"]]  # c overlaps b and d: one capture
    assert cut(2) == [["a", "b", "c", "d"], ["e", "f"]]  # not between b and c, which overlap
    assert cut_runs([], 3, None, None) == []


# dcmtk's tools by path: pynetdicom's console scripts of the same names shadow them in a venv.
STORESCP, STORESCU = "/usr/bin/storescp", "/usr/bin/storescu"
LIVE_TOOLS = ("ip", "dumpcap", STORESCP, STORESCU)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or any(shutil.which(t) is None for t in LIVE_TOOLS),
                    reason="needs root (a network namespace), iproute2, dumpcap and dcmtk")
def test_a_real_dumpcap_ring_buffer(tmp_path, capsys):
    """``dumpcap -b filesize:`` itself, on loopback in a network namespace, while dcmtk's storescu
    sends objects to storescp; then the same files under reversed names."""
    from pydicom.data import get_testdata_file

    ns = f"dtring-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    processes = []
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        received = tmp_path / "received"
        received.mkdir()
        ring = tmp_path / "ring"
        ring.mkdir()
        processes.append(subprocess.Popen(["ip", "netns", "exec", ns, STORESCP, "-aet", "STORESCP", "-od",
                                           str(received), "11112"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        dumpcap = subprocess.Popen(["ip", "netns", "exec", ns, "dumpcap", "-i", "lo", "-b", "filesize:40", "-w",
                                    str(ring / "ring.pcapng")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        processes.append(dumpcap)
        deadline = time.monotonic() + 20
        while not list(ring.iterdir()) and time.monotonic() < deadline:  # dumpcap opens its first file
            time.sleep(0.05)
        time.sleep(0.3)
        objects = [get_testdata_file(name) for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm")]
        for _round in range(4):
            subprocess.run(["ip", "netns", "exec", ns, STORESCU, "-aec", "STORESCP", "127.0.0.1", "11112",
                            *objects], check=True, capture_output=True, timeout=60)
        time.sleep(0.3)
        dumpcap.send_signal(signal.SIGINT)
        dumpcap.wait(timeout=20)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    files = sorted(ring.iterdir())
    # How many files dumpcap cuts depends on how loopback batched the segments (64 KiB super-
    # segments here): several is what matters; the reversed names below give the misorder.
    assert len(files) >= 3, [f.name for f in files]
    expected = single_json(files, capsys)
    assert sum(m["command"] == "C-STORE-RQ" for m in expected["messages"]) == 12
    local_batch(tmp_path / "out", [ring], groups=3)
    assert_same_as_single(tmp_path / "out", expected)
    reversed_dir = tmp_path / "reversed"
    reversed_dir.mkdir()
    for number, path in enumerate(files):
        shutil.copy(path, reversed_dir / f"ring_{len(files) - number:05d}.pcapng")
    local_batch(tmp_path / "out-reversed", [reversed_dir], groups=2, workers=1)
    assert_same_as_single(tmp_path / "out-reversed", expected)
