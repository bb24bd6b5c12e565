"""The capture clock's steps back, found once over every frame of a run (not per flow group).

The single pass (core/pipeline/engine.py, ``CaptureEngine.run``) reads the frames in the
merged order and keeps ``newest``, the latest time so far; a frame more than CLOCK_STEP_BACK
older than it is a step back: from there on every time is moved on by the step (the shift
is the sum of the steps), so no duration spans it.  A flow group's frames alone cannot show
this (a group with no frame just after the step would see it later, or never), so the batch
finds the steps here and hands each group's engine the list of (frame, shift, time).

Why a few numbers per file are enough.  In the merged order the frames are sorted by their
file's running maximum timestamp (the ordering key, ``split``'s docstring), so a frame whose
time is its key (``t == key``: the latest of its file so far) is the latest of the whole
capture so far and can never be a step; after it ``newest`` is its (shifted) time.  Only a
frame below its key can step, and only after the frames of the same key, which are contiguous
in the merged order and begin in each file with the frame that set the key.  So the steps are
those of each file's runs of equal key that hold a frame well below the key (``deep_runs``,
found while indexing; a clean capture has none), simulated here with the engine's own
arithmetic in the merged order (key, file, position), and numbered as ``split`` numbers
frames.  Runs whose frames are all within DEEP of the key cannot step (``newest`` is at most
the key's shifted time there), and they do not change what the engine does at a step.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from dicomtui.core.wire.capture_format import CLOCK_STEP_BACK

# A run of equal key is kept when a frame lies this far below the key: half the step threshold,
# far above the rounding of the shifted times (about 1e-6 s), far below the threshold itself.
DEEP = CLOCK_STEP_BACK / 2


@dataclass(slots=True)
class KeyRun:
    """One file's frames of one ordering key that dip well below it: positions ``start`` on."""

    key: float
    start: int  # position in the file of the frame that set the key
    times: array  # raw timestamp of each frame of the run, in file order


@dataclass(slots=True)
class ClockStep:
    frame: int  # number in the whole capture
    step: float  # seconds the clock went back
    shift: float  # what later times are moved on by (every step so far)
    time: float  # the step frame's own time (the latest time before it)


def deep_runs(keys: array, times: array) -> list[KeyRun]:
    """The runs of equal key of one file (``keys``: running maximum of ``times``) holding a
    frame more than DEEP below the key."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with the batch extra
        return _deep_runs_python(keys, times)
    key_column = np.frombuffer(keys, dtype=np.float64)
    time_column = np.frombuffer(times, dtype=np.float64)
    deep = np.flatnonzero(time_column < key_column - DEEP)
    runs = []
    for key in np.unique(key_column[deep]).tolist():
        start, end = bisect_left(keys, key), bisect_right(keys, key)
        runs.append(KeyRun(key, start, array("d", times[start:end])))
    return runs


def _deep_runs_python(keys: array, times: array) -> list[KeyRun]:
    runs: list[KeyRun] = []
    for key, time in zip(keys, times):
        if time < key - DEEP and (not runs or runs[-1].key != key):
            start, end = bisect_left(keys, key), bisect_right(keys, key)
            runs.append(KeyRun(key, start, array("d", times[start:end])))
    return runs


def number_in_capture(index: int, position: int, key: float, base: int, overlapping: dict[int, array]) -> int:
    """The frame number (1-based, in the whole run) of the frame at ``position`` of file ``index``
    with ordering key ``key`` (``split.frame_numbers`` for one frame)."""
    number = base + position + 1
    for other, keys in overlapping.items():
        number += bisect_right(keys, key) if other < index else bisect_left(keys, key)
    return number


def clock_steps(runs_of: dict[int, list[KeyRun]], bases: dict[int, int],
                overlapping: dict[int, dict[int, array]]) -> list[ClockStep]:
    """Every step back of the run, in frame order: ``runs_of[i]`` file i's ``deep_runs``,
    ``overlapping[i]`` the ordering keys of the files that interleave with file i."""
    blocks = sorted((run.key, index, run) for index, runs in runs_of.items() for run in runs)
    steps: list[ClockStep] = []
    shift = 0.0
    for _key, index, run in blocks:
        # What CaptureEngine.run does over these frames, operation for operation (so the shifted
        # times are the single pass's to the last bit); the first frame, at the key, is the latest
        # of the capture so far.
        newest = float("-inf")
        for offset, ts in enumerate(run.times):
            if shift:
                ts += shift
            if ts < newest - CLOCK_STEP_BACK:
                step = newest - ts
                shift += step
                frame = number_in_capture(index, run.start + offset, run.key, bases[index],
                                          overlapping.get(index, {}))
                steps.append(ClockStep(frame, step, shift, newest))
            elif ts > newest:
                newest = ts
    steps.sort(key=lambda step: step.frame)
    return steps


def interleaving(summaries, indices, keys_of: dict[int, array]) -> dict[int, dict[int, array]]:
    """For each file of ``indices``, the ordering keys of the other files whose frames interleave
    with its own (``split.FileSummary``: ``index`` = the file's place in time order; files that
    merely follow one another do not)."""
    by_index = {summary.index: summary for summary in summaries}

    def before(a, b) -> bool:
        return a.last_key < b.first_key or (a.last_key == b.first_key and a.index < b.index)

    found = {}
    for index in indices:
        mine = by_index[index]
        found[index] = {other.index: keys_of[other.index] for other in summaries
                        if other.index != index and other.frames
                        and not before(other, mine) and not before(mine, other)}
    return found


def plan_clock(summaries, runs_of: dict[int, list[KeyRun]], bases: dict[int, int],
               keys_of: dict[int, array]) -> list[ClockStep]:
    """``clock_steps`` of a run from its files' summaries (``split.FileSummary``), their deep runs,
    and the ordering keys of the files that interleave with a file that has any (a Dask task: the
    keys stay on the workers until here)."""
    return clock_steps(runs_of, bases, interleaving(summaries, runs_of, keys_of))
