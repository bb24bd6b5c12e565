"""Engine benchmark: the analysis pass (no rules) of two dicomtui trees, alternating, in one run.

    python bench/engine_bench.py [--capture FILE] [--size-mb 100] [--runs 5]
                                 [--baseline REV] [--object-kb 512] [--max-pdu 16384]

Compares this tree with ``--baseline`` (a git revision, exported with ``git
archive`` into a scratch folder) on the same capture, each run in a fresh
child process, baseline and current alternating so the noise of a shared
machine hits both alike.  Prints per-run wall and CPU seconds (CPU time is
steadier when other processes compete for the cores), the medians, the ratios
and the µs per frame; also the size of the per-connection TCP segment record
(issue 12) when the current tree has one.  Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import sys, time, resource
try:
    from dicomtui.core.pipeline import analyze, AnalysisConfig
    try:
        from dicomtui.cli import make_host
    except ImportError:  # a baseline from before the composition root left core (issue 23)
        from dicomtui.core.cli import make_host
    host = make_host()
except ImportError:  # a baseline from before the layering (issue 10)
    from dicomtui.core.analysis import analyze, AnalysisConfig
    from dicomtui.core.plugins import PluginHost
    host = PluginHost()
t0 = time.perf_counter()
c0 = time.process_time()
analysis = analyze([sys.argv[1]], AnalysisConfig(), host, run_rules=False)
elapsed = time.perf_counter() - t0
cpu = time.process_time() - c0
record = 0
for connection in analysis.connections:
    segments = getattr(connection, "segments", None)
    if segments is not None:
        record += segments.nbytes()
print(elapsed, analysis.frame_count, record, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, cpu)
"""


def tree_from(revision: str, scratch: Path) -> Path:
    """``revision`` of this repository as an importable ``dicomtui`` package under ``scratch``."""
    package = scratch / "dicomtui"
    package.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(package)], input=archive, check=True)
    return scratch


def run(pythonpath: Path, capture: Path) -> tuple[float, int, int, int, float]:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    out = subprocess.run([sys.executable, "-c", CHILD, str(capture)], env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2]), int(out[3]), float(out[4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=Path(tempfile.gettempdir()) / "dicomtui-engine-bench.pcap")
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--object-kb", type=int, default=512)
    parser.add_argument("--max-pdu", type=int, default=16384)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare with (default HEAD)")
    args = parser.parse_args()
    if not args.capture.exists():
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(args.capture), "--size-mb",
                        str(args.size_mb), "--object-kb", str(args.object_kb), "--max-pdu", str(args.max_pdu)],
                       check=True)
    # The current tree: the first PYTHONPATH entry must hold it as `dicomtui` (a symlink will do).
    current = Path((os.environ.get("PYTHONPATH") or str(ROOT.parent)).split(os.pathsep)[0])
    with tempfile.TemporaryDirectory() as scratch:
        baseline = tree_from(args.baseline, Path(scratch))
        times: dict[str, list[float]] = {"baseline": [], "current": []}
        cpu_times: dict[str, list[float]] = {"baseline": [], "current": []}
        for number in range(args.runs):
            for name, path in (("baseline", baseline), ("current", current)):
                seconds, frames, record, rss, cpu = run(path, args.capture)
                times[name].append(seconds)
                cpu_times[name].append(cpu)
                print(f"run {number + 1} {name:<8} {seconds:6.3f} s wall {cpu:6.3f} s CPU  {frames} frames  "
                      f"segment record {record / 1e6:.1f} MB  peak RSS {rss / 1024:.0f} MiB", flush=True)
    for label, table in (("wall", times), ("CPU", cpu_times)):
        base, now = statistics.median(table["baseline"]), statistics.median(table["current"])
        print(f"{label}: median baseline ({args.baseline}) {base:.3f} s = {base / frames * 1e6:.2f} µs/frame; "
              f"current {now:.3f} s = {now / frames * 1e6:.2f} µs/frame; current/baseline {now / base:.3f}; "
              f"best of each {min(table['current']) / min(table['baseline']):.3f}")


if __name__ == "__main__":
    main()
