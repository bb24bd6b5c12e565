"""Cost of batch mode's handling of IP fragments, SPAN-copy notes and untimed frames (issue 25), two trees.

    python bench/batch_shapes_bench.py [--size-mb 40] [--files 3] [--groups 4] [--runs 3] [--baseline REV]

Makes a capture with ``make_capture.py`` (16 associations, 256 KiB objects) and its fragmented
shape (``make_fragmented.py``: every TCP segment over 600 bytes in IP fragments, the identification
the frame number modulo 65,536, so identifications recur across connections between the same
hosts), each cut into ``--files`` ring files at record boundaries (inside datagrams too).  Then, in
fresh child processes, baseline (``--baseline``, a git revision, exported with ``git archive``) and
this tree alternating, times the batch's stages in one process, without Dask:
``split.index_file`` of every file (this tree: frames without a TCP segment are looked at once more,
for fragments and untimed marks), the fragment plan (this tree: ``batch/fragments.py``), the decode
of every group (this tree: each group's fragments merged into its parts first) and the merge; and
prints each tree's counts of messages, findings and incomplete PDUs beside the single pass's (one
process, ``analyze``).  Prints the medians of each stage and this/baseline.  Compare ratios of one
run: the machine may be shared.  Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from batch_clock_bench import current_tree, stepped_ring, tree_from

HERE = Path(__file__).resolve().parent

CHILD = r"""
import os, sys, time, tempfile
from dicomtui.batch import split, merge
from dicomtui.cli import make_host
from dicomtui.core.model.analysis import AnalysisConfig
files, groups = sys.argv[1:-1], int(sys.argv[-1])
scratch = tempfile.mkdtemp()
t0 = time.process_time()
results = [split.index_file(i, name, groups, scratch, "h") for i, name in enumerate(files)]
t1 = time.process_time()
summaries = [result["summary"] for result in results]
bases, overlaps = split.numbering_plan(summaries)
keys = {s.index: r["keys"] for s, r in zip(summaries, results)}
parts = [[r["parts"][group] for r in results] for group in range(groups)]
if hasattr(split, "Unparsed"):
    from dicomtui.batch.fragments import plan_fragments, with_fragments
    fragments_of = {s.index: r["fragments"] for s, r in zip(summaries, results) if s.fragments}
    if fragments_of:
        plan = plan_fragments(summaries, fragments_of, bases, keys, groups)
        parts = [[with_fragments(r["parts"][group], r["fragments"], plan.get(i), group)
                  for i, r in enumerate(results)] for group in range(groups)]
t2 = time.process_time()
overlapping = {i: {o: keys[o] for o in overlaps[i]} for i in overlaps if overlaps[i]}
frame_count = sum(s.frames for s in summaries)
config = AnalysisConfig()
paths = [os.path.join(scratch, f"g{group}.pickle") for group in range(groups)]
for group in range(groups):
    split.decode_group(group, [(name, name) for name in files], parts[group], bases, overlapping, frame_count,
                       config, make_host, set(), paths[group], [])
t3 = time.process_time()
analysis = merge.merge_groups(summaries, paths, config, make_host, set(), {}, [])
t4 = time.process_time()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, frame_count, len(analysis.messages), len(analysis.expert),
      sum(not pdu.complete for pdu in analysis.pdus))
"""

SINGLE = r"""
import sys, time
from dicomtui.cli import make_host
from dicomtui.core.pipeline import AnalysisConfig, analyze
host = make_host()
t0 = time.process_time()
analysis = analyze(sys.argv[1:], AnalysisConfig(), host)
t1 = time.process_time()
print(len(analysis.messages), len(analysis.expert), sum(not pdu.complete for pdu in analysis.pdus), t1 - t0)
"""

STAGES = ("index", "fragment plan", "decode", "merge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=40)
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="main")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        capture = scratch / "capture.pcap"
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(capture), "--size-mb", str(args.size_mb),
                        "--associations", "16", "--object-kb", "256"], check=True, capture_output=True)
        fragmented = scratch / "fragmented.pcap"
        subprocess.run([sys.executable, str(HERE / "make_fragmented.py"), str(capture), str(fragmented)], check=True,
                       capture_output=True)
        trees = {"baseline": tree_from(args.baseline, scratch / "baseline"), "current": current_tree(scratch)}
        for label, source in (("clean", capture), ("fragmented", fragmented)):
            ring = stepped_ring(source, scratch / label, args.files, False)
            env = dict(os.environ, PYTHONPATH=str(trees["current"]))
            single = subprocess.run([sys.executable, "-c", SINGLE, *map(str, ring)], env=env, check=True,
                                    capture_output=True, text=True).stdout.split()
            print(f"{label} single pass (this tree): {single[0]} messages, {single[1]} findings, {single[2]} incomplete "
                  f"PDUs, analysis {float(single[3]):.3f} s CPU")
            table: dict[str, list[tuple[float, ...]]] = {"baseline": [], "current": []}
            for number in range(args.runs):
                for name, tree in trees.items():
                    env = dict(os.environ, PYTHONPATH=str(tree))
                    out = subprocess.run([sys.executable, "-c", CHILD, *map(str, ring), str(args.groups)], env=env,
                                         check=True, capture_output=True, text=True).stdout.split()
                    times = tuple(float(value) for value in out[:4])
                    table[name].append(times)
                    print(f"{label} run {number + 1} {name:<8} "
                          + "  ".join(f"{stage} {value:6.3f}" for stage, value in zip(STAGES, times))
                          + f" s CPU  {out[4]} frames: {out[5]} messages, {out[6]} findings, {out[7]} incomplete PDUs",
                          flush=True)
            for column, stage in enumerate(STAGES):
                base = statistics.median(row[column] for row in table["baseline"])
                now = statistics.median(row[column] for row in table["current"])
                ratio = f"{now / base:.3f}" if base else "-"
                print(f"{label} {stage}: median CPU baseline {base:.3f} s, current {now:.3f} s, "
                      f"current/baseline {ratio}")


if __name__ == "__main__":
    main()
