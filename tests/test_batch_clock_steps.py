"""Batch mode over a capture whose clock steps back (issue 25): the same answer as the single pass.

The single pass finds a step back of more than CLOCK_STEP_BACK over the whole frame sequence and
moves every later time on by it (core/pipeline/engine.py).  Batch mode decodes each flow group
over that group's frames only, so a group must not look for steps in its own frames (a group
with no frame just after the step would not see it, or see it later): the steps are found once
over every frame in the global order (batch/clock.py) and handed to each group's engine.

The captures are a day of many short associations stamped from the recorded fixtures
(bench/make_day.py), with the clock set back 2 s at one or two frames; as one file, and as ring
files (cut with batch_tools.split_capture) with the step inside the second file, near its end
(the third file's first times then come before the second's last: the files interleave), and at
the second file's first frame (the single pass merges by time: there is then no step at all).
The reference is the single pass over the same files (``--json``); the batch's tables must
hold the same connections, associations, messages (times included) and findings, with exactly
one ``capture.clock_step_back`` finding per step the single pass reports, at the same frame.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from array import array
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from batch_tools import assert_same_as_single, deal_capture, local_batch, read_table, single_json, split_capture
from capture_tools import RawFrame, read_frames, write_pcap, write_pcapng
from dicomtui.batch import clock, split

BENCH = Path(__file__).resolve().parent.parent / "bench"
STEP = 2.0
CODE = "capture.clock_step_back"


def _make_day():
    spec = importlib.util.spec_from_file_location("make_day", BENCH / "make_day.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_day"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def day_frames(tmp_path_factory) -> list[RawFrame]:
    """About 60 associations over ~15 s of PACS-port traffic (many connections, so many groups)."""
    path = tmp_path_factory.mktemp("day") / "day.pcap"
    with open(path, "wb") as out:
        _make_day().generate(out, 60, seed=11, rate=4.0, devices=20)
    frames = read_frames(path)
    assert len(frames) > 1500
    return frames


def stepped(frames: list[RawFrame], at: list[int]) -> list[RawFrame]:
    """The frames with the clock set back STEP seconds at each 0-based index of ``at``."""
    out = []
    back = 0.0
    steps = set(at)
    for index, frame in enumerate(frames):
        if index in steps:
            back += STEP
        out.append(RawFrame(frame.ts - back, frame.data, frame.link_type))
    return out


def batch_equals_single(tmp_path, capsys, files: list[Path], groups: int = 3, workers: int = 1) -> dict:
    expected = single_json(files, capsys)
    outcome = local_batch(tmp_path / "out", files, groups=groups, workers=workers)
    assert not outcome.problems
    assert outcome.counts["messages"] == len(expected["messages"]) > 100
    assert_same_as_single(tmp_path / "out", expected)
    wanted = [(item["frame"], item["message"]) for item in expected["expert"] if item["code"] == CODE]
    got = sorted((row["frame"], row["message"]) for row in read_table(tmp_path / "out", "expert")
                 if row["code"] == CODE)
    assert got == sorted(wanted)
    record = json.loads(next((tmp_path / "out").glob("runs/*/run.json")).read_text())
    assert (record["first_time"], record["last_time"]) == (expected["capture"]["first_time"],
                                                           expected["capture"]["last_time"])
    return expected


def _steps(expected: dict) -> list[int]:
    return [item["frame"] for item in expected["expert"] if item["code"] == CODE]


@pytest.mark.parametrize("fractions", [(0.45,), (0.3, 0.7)], ids=["one-step", "two-steps"])
def test_one_file_with_steps_back(tmp_path, capsys, day_frames, fractions):
    at = [int(len(day_frames) * fraction) for fraction in fractions]
    path = write_pcap(tmp_path / "stepped.pcap", stepped(day_frames, at))
    expected = batch_equals_single(tmp_path, capsys, [path], groups=4)
    assert _steps(expected) == [index + 1 for index in at]  # frame numbers are 1-based


def test_through_a_dask_cluster(tmp_path, capsys, day_frames):
    at = [len(day_frames) // 3]
    path = write_pcap(tmp_path / "stepped.pcap", stepped(day_frames, at))
    expected = batch_equals_single(tmp_path, capsys, [path], groups=5, workers=2)
    assert _steps(expected) == [at[0] + 1]


def _ring(tmp_path, frames: list[RawFrame], cuts: list[int]) -> list[Path]:
    path = write_pcap(tmp_path / "whole.pcap", frames)
    files = split_capture(path, tmp_path / "ring", cuts)
    path.unlink()
    return files


def test_ring_with_the_step_inside_the_second_file(tmp_path, capsys, day_frames):
    """Early in the second file: its times pass the time before the step again before it ends,
    so the files do not interleave and the step keeps its frame number."""
    third = len(day_frames) // 3
    at = [third + 10]
    files = _ring(tmp_path, stepped(day_frames, at), [third, 2 * third])
    expected = batch_equals_single(tmp_path, capsys, files)
    assert _steps(expected) == [at[0] + 1]


def test_ring_with_the_step_in_the_middle_of_the_second_file(tmp_path, capsys, day_frames):
    """Mid-way: the second file ends before its times pass the time before the step, so its
    last ordering key is that time and the third file's first frames are merged in before the
    step (in the single pass too): the step is found at its place in the merged order."""
    third = len(day_frames) // 3
    at = [third + third // 2]
    files = _ring(tmp_path, stepped(day_frames, at), [third, 2 * third])
    expected = batch_equals_single(tmp_path, capsys, files)
    assert len(_steps(expected)) == 1 and _steps(expected)[0] > at[0] + 1


def test_ring_with_steps_in_two_files_one_near_the_end_of_its_file(tmp_path, capsys, day_frames):
    """The second step comes a few frames before the second file ends, so that file's last
    ordering key is the time before the step and the third file's first frames sort before it:
    the files interleave, and the single pass reads them merged by time."""
    third = len(day_frames) // 3
    at = [third // 2, 2 * third - 20]
    files = _ring(tmp_path, stepped(day_frames, at), [third, 2 * third])
    expected = batch_equals_single(tmp_path, capsys, files)
    assert len(_steps(expected)) == 2


def test_ring_with_the_step_at_a_file_boundary(tmp_path, capsys, day_frames):
    """The clock steps back at the second file's first frame: read as one capture the files are
    merged by time, so (as in the single pass) there is no step at all."""
    third = len(day_frames) // 3
    files = _ring(tmp_path, stepped(day_frames, [third]), [third, 2 * third])
    expected = batch_equals_single(tmp_path, capsys, files)
    assert _steps(expected) == []


def test_two_mirror_ports_dealt_from_one_stepped_capture(tmp_path, capsys, day_frames):
    """The frames dealt at random to two pcapng files (two capture ports of one machine whose
    clock stepped back twice): the files interleave throughout, and pcapng is indexed frame by
    frame (not by fast_index)."""
    at = [len(day_frames) // 4, (3 * len(day_frames)) // 4]
    whole = write_pcapng(tmp_path / "whole.pcapng", stepped(day_frames, at))
    files = deal_capture(whole, tmp_path / "dealt", 2, seed=7)
    whole.unlink()
    # In time order, as the batch arranges its inputs: where two files hold frames of the same time,
    # the single pass takes the one of the file given first.
    files.sort(key=lambda path: read_frames(path)[0].ts)
    expected = batch_equals_single(tmp_path, capsys, files, groups=4)
    # Merged by time, each file's frames after a step come before the other file's last frames
    # before it: each file steps back on its own, two steps per step of the clock.
    assert len(_steps(expected)) == 4
    # The merged order also puts segments before the peer bytes they acknowledge: one note for
    # the capture, not one per flow group that held some.
    assert [item["code"] for item in expected["expert"]].count("capture.direction_skew") == 1


def test_the_column_wise_index_finds_the_same_runs_as_the_per_frame_loop(tmp_path, monkeypatch, day_frames):
    """batch/fast_index.py's timestamps, and so the runs where the clock may have stepped, are the
    per-frame loop's."""
    third = len(day_frames) // 3
    path = write_pcap(tmp_path / "stepped.pcap", stepped(day_frames, [third, 2 * third]))
    fast = split.index_file(0, str(path), 3, str(tmp_path), "hash")
    with monkeypatch.context() as patch:
        patch.setattr(split, "index_columns", lambda *args: False)
        slow = split.index_file(0, str(path), 3, str(tmp_path), "hash")
    assert fast["summary"] == slow["summary"] and fast["summary"].clock_runs == 2
    assert fast["clock"] == slow["clock"]
    keys = fast["keys"]
    times = array("d", (frame.ts for frame in read_frames(path)))
    assert clock.deep_runs(keys, times) == clock._deep_runs_python(keys, times) == fast["clock"]
    clean = write_pcap(tmp_path / "clean.pcap", day_frames)
    assert split.index_file(0, str(clean), 3, str(tmp_path), "hash")["clock"] == []
