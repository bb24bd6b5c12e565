"""Cost of finding the clock's steps back once for a batch (issue 25): index and decode stages of two trees.

    python bench/batch_clock_bench.py [--size-mb 60] [--files 3] [--groups 4] [--runs 3] [--baseline REV]

Makes a capture with ``make_capture.py`` (several associations), and a copy whose clock is set
back 2 s at a half and at five sixths of its frames, each cut into ``--files`` ring files at
record boundaries.  Then, in fresh child processes, baseline (``--baseline``, a git revision,
exported with ``git archive``) and current tree alternating, times the batch's stages in one
process, without Dask: ``split.index_file`` of every file (the current tree also keeps each
frame's timestamp there and looks for runs below the running maximum), the clock plan
(current tree, stepped capture only: ``batch/clock.py``), and ``split.decode_group`` of every
group (the current tree's engine moves times on by the given steps, the baseline's looks for
steps in each group's own frames).  Prints the medians of each stage and current/baseline.
Compare ratios of one run: the machine may be shared.  Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import os, sys, time, tempfile
from dicomtui.batch import split
from dicomtui.cli import make_host
from dicomtui.core.model.analysis import AnalysisConfig
files, groups = sys.argv[1:-1], int(sys.argv[-1])
scratch = tempfile.mkdtemp()
t0 = time.process_time()
results = [split.index_file(i, name, groups, scratch, "h") for i, name in enumerate(files)]
t1 = time.process_time()
summaries = [result["summary"] for result in results]
bases, overlaps = split.numbering_plan(summaries)
steps = []
if hasattr(split, "deep_runs"):
    from dicomtui.batch.clock import plan_clock
    runs_of = {s.index: r["clock"] for s, r in zip(summaries, results) if s.clock_runs}
    keys = {s.index: r["keys"] for s, r in zip(summaries, results)}
    steps = plan_clock(summaries, runs_of, bases, keys) if runs_of else []
t2 = time.process_time()
overlapping = {i: {o: results[o]["keys"] for o in overlaps[i]} for i in overlaps if overlaps[i]}
frame_count = sum(s.frames for s in summaries)
config = AnalysisConfig()
for group in range(groups):
    args = (group, [(name, name) for name in files], [r["parts"][group] for r in results], bases, overlapping,
            frame_count, config, make_host, set(), os.path.join(scratch, f"g{group}.pickle"))
    split.decode_group(*args, steps) if hasattr(split, "deep_runs") else split.decode_group(*args)
t3 = time.process_time()
print(t1 - t0, t2 - t1, t3 - t2, frame_count, len(steps))
"""


def tree_from(revision: str, scratch: Path) -> Path:
    package = scratch / "dicomtui"
    package.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(package)], input=archive, check=True)
    return scratch


def current_tree(scratch: Path) -> Path:
    """This tree importable as ``dicomtui`` (a symlink under ``scratch``)."""
    place = scratch / "current"
    place.mkdir()
    (place / "dicomtui").symlink_to(ROOT)
    return place


def records(data: bytes) -> list[tuple[int, int]]:
    """(offset, end) of each record of a little-endian microsecond pcap (make_capture's)."""
    offset, out = 24, []
    while offset + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        out.append((offset, offset + 16 + caplen))
        offset += 16 + caplen
    return out


def stepped_ring(capture: Path, out_dir: Path, files: int, steps: bool) -> list[Path]:
    """``capture`` cut into ``files`` files; with ``steps`` the clock set back 2 s at 1/2 and 5/6 of the
    frames (inside files: at a cut the files would merge by time, with no step)."""
    data = bytearray(capture.read_bytes())
    spans = records(bytes(data))
    if steps:
        for at in (len(spans) // 2, 5 * len(spans) // 6):
            for offset, _end in spans[at:]:
                seconds = struct.unpack_from("<I", data, offset)[0]
                struct.pack_into("<I", data, offset, seconds - 2)
    out_dir.mkdir(parents=True)
    cut = [len(spans) * number // files for number in range(files + 1)]
    written = []
    for number in range(files):
        first, last = spans[cut[number]][0], spans[cut[number + 1] - 1][1]
        path = out_dir / f"ring_{number:03d}.pcap"
        path.write_bytes(bytes(data[:24]) + bytes(data[first:last]))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=60)
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="HEAD")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        capture = scratch / "capture.pcap"
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(capture), "--size-mb", str(args.size_mb),
                        "--associations", "16", "--object-kb", "256"], check=True, capture_output=True)
        trees = {"baseline": tree_from(args.baseline, scratch / "baseline"), "current": current_tree(scratch)}
        for label, steps in (("clean", False), ("stepped", True)):
            ring = stepped_ring(capture, scratch / label, args.files, steps)
            table: dict[str, list[tuple[float, float, float]]] = {"baseline": [], "current": []}
            for number in range(args.runs):
                for name, tree in trees.items():
                    env = dict(os.environ, PYTHONPATH=str(tree))
                    out = subprocess.run([sys.executable, "-c", CHILD, *map(str, ring), str(args.groups)], env=env,
                                         check=True, capture_output=True, text=True).stdout.split()
                    index, plan, decode, frames, found = float(out[0]), float(out[1]), float(out[2]), int(out[3]), \
                        int(out[4])
                    table[name].append((index, plan, decode))
                    print(f"{label} run {number + 1} {name:<8} index {index:6.3f} s  clock plan {plan:6.3f} s  "
                          f"decode {decode:6.3f} s CPU  {frames} frames  {found} steps handed to the groups",
                          flush=True)
            for stage, column in (("index", 0), ("clock plan", 1), ("decode", 2)):
                base = statistics.median(row[column] for row in table["baseline"])
                now = statistics.median(row[column] for row in table["current"])
                ratio = f"{now / base:.3f}" if base else "-"
                print(f"{label} {stage}: median CPU baseline {base:.3f} s, current {now:.3f} s, "
                      f"current/baseline {ratio}")


if __name__ == "__main__":
    main()
