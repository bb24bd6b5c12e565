"""Batch mode: rotated files analysed on Dask come out exactly as one capture read in one pass.

The reference is the single-process ``--json`` of the same traffic (the original
recording, or the same files given with ``-r``); the batch output is read back from its
Parquet files with pyarrow (independently of the DuckDB reports).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
pytest.importorskip("duckdb")

from batch_tools import (JSON_TABLES, assert_same_as_single, batch_order, deal_capture, local_batch, random_cuts, read_table,
                         single_json, split_capture)
from capture_tools import FIXTURES, RawFrame, read_frames, to_sll, write_pcap
from dicomtui.batch import runner
from dicomtui.cli import main

SPLIT_CASES = [
    ("qr_pynetdicom.pcap", 4, 11, 3),  # C-MOVE sub-associations: a link across connections and groups
    ("store_dcmtk.pcapng", 5, 7, 2),
    ("reject_abort.pcap", 3, 5, 4),
    ("store_large_segments.pcap", 4, 3, 5),
    ("wf_mixed.pcap", 4, 13, 3),  # workflow links across associations, a refused report connection
]


@pytest.mark.parametrize("name,pieces,seed,groups", SPLIT_CASES)
def test_rotated_files_equal_the_single_pass_over_the_recording(tmp_path, capsys, name, pieces, seed, groups):
    original = FIXTURES / name
    cuts = random_cuts(original, pieces, seed)
    files = split_capture(original, tmp_path / "ring", cuts, compress={1})  # one rotated file gzip'd
    expected = single_json(files, capsys)
    recording = single_json([original], capsys)
    # Cutting changes nothing but the file names: the same traffic decodes the same.
    for table in JSON_TABLES:
        assert expected[table] == recording[table] or table == "expert"
    outcome = local_batch(tmp_path / "out", [tmp_path / "ring"], groups=groups)
    assert outcome.inputs == pieces and not outcome.problems
    assert_same_as_single(tmp_path / "out", expected)
    assert outcome.counts["messages"] == len(recording["messages"]) > 0


def test_files_whose_time_ranges_interleave(tmp_path, capsys):
    """Two mirror ports' files of the same minutes: frames numbered in merged timestamp order."""
    files = deal_capture(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "dealt", 3, seed=5)
    files += split_capture(FIXTURES / "store_ts_pynetdicom.pcap", tmp_path / "ring", [30, 77])
    files = sorted(files)
    expected = single_json(files, capsys)
    local_batch(tmp_path / "out", files, groups=3)
    assert_same_as_single(tmp_path / "out", expected)


def test_damaged_and_odd_inputs_come_out_as_in_the_single_pass(tmp_path, capsys):
    """A ring file cut mid-record (copied while written), another link layer (Linux SLL) whose
    frames interleave in time with the ring's, and an unsupported link type: same notes,
    same findings, same frames."""
    files = split_capture(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "in", [40, 80])
    files[1].write_bytes(files[1].read_bytes()[:-25])
    frames = read_frames(FIXTURES / "echo_dcmtk.pcap")
    files.append(write_pcap(tmp_path / "in" / "sll.pcap", [to_sll(frame) for frame in frames]))
    files.append(write_pcap(tmp_path / "in" / "unknown.pcap", [RawFrame(f.ts, f.data, 147) for f in frames[:5]]))
    outcome = local_batch(tmp_path / "out", [tmp_path / "in"], groups=3)
    assert not outcome.problems
    # sll.pcap and unknown.pcap start with frames of the same timestamps: which comes first is
    # decided by the files' contents (the batch's arrangement), and the reference follows it.
    arranged = batch_order(tmp_path / "out")
    assert sorted(arranged) == sorted(files)
    expected = single_json(arranged, capsys)
    assert any("truncated" in item["message"] for item in expected["expert"])
    assert any("link type 147" in item["message"] for item in expected["expert"])
    assert_same_as_single(tmp_path / "out", expected)


def test_runs_of_a_few_files_are_each_one_capture(tmp_path, capsys):
    """--run-files: each run equals the single pass over its own files; together, every input once."""
    files = split_capture(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "ring", [10, 30, 50, 70, 95])
    outcome = local_batch(tmp_path / "out", [tmp_path / "ring"], run_files=2, groups=3)
    assert len(outcome.run_ids) == 3 and outcome.inputs == 6
    for run_id in outcome.run_ids:
        record = json.loads((tmp_path / "out" / "runs" / run_id / "run.json").read_text())
        own = [Path(item["path"]) for item in record["inputs"]]
        assert len(own) == 2
        assert_same_as_single(tmp_path / "out", single_json(own, capsys), run=run_id)
    assert sorted(row["path"] for row in read_table(tmp_path / "out", "inputs")) == [str(f) for f in files]


def test_default_local_cluster_through_the_command_line(tmp_path, capsys):
    """``dicomtui --batch OUT DIR`` with the defaults (a LocalCluster of worker processes)."""
    files = split_capture(FIXTURES / "negotiation_pynetdicom.pcap", tmp_path / "ring", [9, 25])
    expected = single_json(files, capsys)
    assert main(["--batch", str(tmp_path / "out"), str(tmp_path / "ring"), "--workers", "2"]) == 0
    err = capsys.readouterr().err
    assert "Dask dashboard: http" in err and "3 inputs" in err
    assert_same_as_single(tmp_path / "out", expected)


def test_rerun_skips_by_content_and_adds_only_new_inputs(tmp_path):
    ring = tmp_path / "ring"
    files = split_capture(FIXTURES / "store_dcmtk.pcapng", ring, [40])
    first = local_batch(tmp_path / "out", [ring])
    assert first.inputs == 2
    again = local_batch(tmp_path / "out", [ring])
    assert again.run_id is None and again.skipped == 2
    shutil.copy(files[0], tmp_path / "renamed.pcapng")  # same content, other name: still done
    renamed = local_batch(tmp_path / "out", [tmp_path / "renamed.pcapng"])
    assert renamed.run_id is None and renamed.skipped == 1
    echo = shutil.copy(FIXTURES / "echo_dcmtk.pcap", ring / "ring_00002.pcap")
    added = local_batch(tmp_path / "out", [ring])
    assert added.inputs == 1 and added.skipped == 2
    paths = {row["path"] for row in read_table(tmp_path / "out", "inputs")}
    assert paths == {str(path) for path in files} | {str(echo)}
    assert len(list((tmp_path / "out" / "runs").iterdir())) == 2


@pytest.mark.parametrize("workers", [2, 1])  # a Dask cluster; one worker's worth, in this process
def test_a_stopped_run_leaves_nothing_that_looks_complete_and_resumes(tmp_path, capsys, monkeypatch, workers):
    files = split_capture(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "ring", [20, 60, 90], compress={1})
    expected = single_json(files, capsys)

    def crash(*args, **kwargs):
        raise RuntimeError("killed while merging")

    monkeypatch.setattr(runner, "reduce_run", crash)
    with pytest.raises(RuntimeError):
        local_batch(tmp_path / "out", [tmp_path / "ring"], groups=3, workers=workers)
    assert not list((tmp_path / "out").glob("runs/*"))  # no table appears complete
    staged = list((tmp_path / "out").glob(".staging/*/groups/group-*.pickle"))
    assert len(staged) == 3
    monkeypatch.undo()
    resumed = local_batch(tmp_path / "out", [tmp_path / "ring"], groups=8, workers=workers)
    assert resumed.reused_groups == 3  # the staged plan (3 groups) is kept; nothing decoded twice
    assert_same_as_single(tmp_path / "out", expected)
    assert not list((tmp_path / "out" / ".staging").iterdir())


def test_unreadable_inputs_are_reported_and_the_rest_is_analysed(tmp_path, capsys):
    good = split_capture(FIXTURES / "echo_dcmtk.pcap", tmp_path / "in", [12])
    (tmp_path / "in" / "notes.pcap").write_bytes(b"this is not a capture at all")
    (tmp_path / "in" / "empty.pcap").write_bytes(b"")
    # A gzip stream that yields nothing (a truncated one is analysed up to the cut: issue 18 item 4).
    (tmp_path / "in" / "cut.pcap.gz").write_bytes(gzip.compress(good[0].read_bytes())[:12])
    expected = single_json(good, capsys)
    status = main(["--batch", str(tmp_path / "out"), str(tmp_path / "in" / "*.pcap*"), str(tmp_path / "nowhere"),
                   "--workers", "1"])
    assert status == 1
    err = capsys.readouterr().err
    assert "input problem" in err and "run " in err
    problems = {Path(row["path"]).name: row["problem"] for row in read_table(tmp_path / "out", "input_problems")}
    assert set(problems) == {"notes.pcap", "empty.pcap", "cut.pcap.gz", "nowhere"}
    assert "not a pcap or pcapng" in problems["notes.pcap"] and "gzip" in problems["cut.pcap.gz"]
    assert_same_as_single(tmp_path / "out", expected)


@pytest.fixture(scope="module")
def fixture_batch(tmp_path_factory):
    """The bundled fixtures cut into a ring buffer of 1-3 files each, analysed once."""
    root = tmp_path_factory.mktemp("batch")
    for number, path in enumerate(sorted(FIXTURES.glob("*.pcap*"))):
        split_capture(path, root / "captures", random_cuts(path, 1 + number % 3, number), prefix=path.stem)
    local_batch(root / "out", [root / "captures"])
    return root / "out"


def test_every_fixture_in_one_ring_buffer_equals_the_single_pass(fixture_batch, capsys):
    """Seventeen connections from nine recordings spread over the flow groups, one capture."""
    files = sorted(path for path in (fixture_batch.parent / "captures").iterdir())
    expected = single_json(files, capsys)
    assert len(expected["connections"]) > 10
    assert_same_as_single(fixture_batch, expected)


def test_reports_answer_the_questions(fixture_batch, capsys):
    assert main(["--report", str(fixture_batch)]) == 0
    text = capsys.readouterr().out
    for title in ("Failed requests by status and AE pair", "Rejected associations per day",
                  "Response time", "Objects stored per day and modality", "Top expert findings per day"):
        assert title in text
    assert "0xA700" in text and "called-AE-title-not-recognized" in text
    assert main(["--report", str(fixture_batch), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    failures = {(row["calling_ae"], row["called_ae"], row["command"], row["status"]): row["responses"]
                for row in document["failures"]}
    assert failures[("STATUSSCU", "DICOMTUI", "C-STORE-RSP", "0xA700")] == 1
    assert failures[("QRSCU", "QRSCP", "C-MOVE-RSP", "0xA801")] == 1
    # Every rejected association of the fixtures (REJSCU's wrong called AE title, the workflow captures'
    # archive refused by the modality...), counted from the associations table by hand.
    rejected: dict[tuple[str, str], int] = {}
    for row in read_table(fixture_batch, "associations"):
        if row["state"] == "rejected":
            key = (row["calling_ae"].strip(), row["called_ae"].strip())
            rejected[key] = rejected.get(key, 0) + 1
    assert ("REJSCU", "WRONG-AET") in rejected
    reported: dict[tuple[str, str], int] = {}
    for row in document["rejected"]:  # one row per day and AE pair
        key = (row["calling_ae"].strip(), row["called_ae"].strip())
        reported[key] = reported.get(key, 0) + row["associations"]
    assert reported == rejected
    volume: dict[str, int] = {}
    for row in document["modality_volume"]:  # one row per day and modality
        volume[row["modality"]] = volume.get(row["modality"], 0) + row["objects"]
    messages = read_table(fixture_batch, "messages")
    assert volume["CT"] == sum(1 for m in messages if m["command"] == "C-STORE-RQ" and m["modality"] == "CT") > 0
    percentiles = document["response_times"]
    assert any(row["command"] == "C-MOVE-RQ" and row["calling_ae"] == "QRSCU" for row in percentiles)


def test_sql_over_the_views(fixture_batch, capsys):
    sql = ("SELECT count(*) AS n, count(DISTINCT messages.run_id) AS runs FROM messages "
           "JOIN associations a ON a.run_id = messages.run_id AND a.id = messages.association")
    assert main(["--report", str(fixture_batch), "--sql", sql, "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "n,runs"
    assert int(lines[1].split(",")[0]) == len(read_table(fixture_batch, "messages"))
    assert main(["--report", str(fixture_batch), "--sql", "SELECT nonsense FROM nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dicomtui: ") and len(err.strip().splitlines()) == 1
    assert main(["--report", str(fixture_batch.parent / "absent")]) == 1


def test_missing_batch_extra_is_one_clear_line(monkeypatch, capsys, tmp_path):
    from dicomtui.batch import cli as batch_cli

    monkeypatch.setattr(batch_cli, "missing_modules", lambda: ["duckdb"])
    assert main(["--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("dicomtui: batch mode needs the batch extra (missing: duckdb); "
                    "install it with: pip install '.[batch]' in the dicomtui checkout")]


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two single-threaded worker processes, started as a user would."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    processes = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file),
         "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 90
        address = None
        while address is None and time.monotonic() < deadline:
            try:  # the scheduler may be half way through writing the file
                address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert address, "the dask scheduler did not start"
        for number in range(2):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                 "--name", f"test-worker-{number}", "--local-directory", str(tmp_path / f"w{number}"),
                 "--dashboard-address", "127.0.0.1:0"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_on_a_running_scheduler_with_two_worker_processes(tmp_path, capsys, dask_cluster):
    files = split_capture(FIXTURES / "qr_pynetdicom.pcap", tmp_path / "ring", [15, 50, 80], compress={2})
    expected = single_json(files, capsys)
    status = main(["--batch", str(tmp_path / "out"), str(tmp_path / "ring"), "--scheduler", dask_cluster,
                   "--groups", "4"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "Dask dashboard: http://127.0.0.1:" in err
    assert_same_as_single(tmp_path / "out", expected)
    # The flow groups were decoded in the two worker processes, not in this one.
    record = json.loads(next((tmp_path / "out").glob("runs/*/run.json")).read_text())
    pids = {int(worker.rsplit(":", 1)[1]) for worker in record["decoded_by"]}
    assert len(pids) == 2 and os.getpid() not in pids


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", "1s")
    ring = split_capture(FIXTURES / "echo_dcmtk.pcap", tmp_path / "ring", [])
    status = main(["--batch", str(tmp_path / "out"), str(ring[0]), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and err[0].startswith("dicomtui: ")
