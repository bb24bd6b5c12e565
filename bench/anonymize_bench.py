"""De-identification benchmark: ``dicomtui --anonymize`` on the bundled fixtures and on a generated capture.

    python bench/anonymize_bench.py [--capture FILE] [--size-mb 50] [--object-kb 512] [--runs 3]

For every fixture in fixtures/ and for the generated capture (bench/make_capture.py,
made unless FILE exists) it runs the CLI in a child process and prints: wall time
(median of --runs, interpreter start-up included), input and output size, MB/s of
input, peak RSS of the child, and from the JSON report the objects de-identified and
attributes changed.  Not a timed test: figures depend on the machine (compare the
ratios within one run on a shared VM).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures"


def run_once(capture: Path, out: Path) -> tuple[float, dict, int]:
    if out.exists():
        out.unlink()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--anonymize", str(out), str(capture),
                           "--json"], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dicomtui failed on {capture}: {done.stderr}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, json.loads(done.stdout), peak_kb


def measure(capture: Path, runs: int, workdir: Path) -> dict:
    out = workdir / (capture.stem + "-anon.pcapng")
    times, report, peak = [], {}, 0
    for _ in range(runs):
        elapsed, report, peak = run_once(capture, out)
        times.append(elapsed)
    size = capture.stat().st_size
    return {"capture": capture.name, "seconds": statistics.median(times), "in_bytes": size,
            "out_bytes": out.stat().st_size, "mb_per_s": size / 1e6 / statistics.median(times),
            "peak_rss_mb": peak / 1024, "objects": sum(report["objects"].values()),
            "attributes_changed": report["attributes_changed"], "rewrite_seconds": report["figures"]["rewrite_seconds"],
            "dropped": sum(report["dropped"].values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", type=Path, default=Path(tempfile.gettempdir()) / "dicomtui-anon-bench.pcap")
    parser.add_argument("--size-mb", type=float, default=50)
    parser.add_argument("--object-kb", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-fixtures", action="store_true")
    args = parser.parse_args(argv)
    if not args.capture.exists():
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(args.capture), "--size-mb",
                        str(args.size_mb), "--object-kb", str(args.object_kb)], check=True)
    captures = [] if args.no_fixtures else sorted(path for path in FIXTURES.iterdir()
                                                  if path.suffix in (".pcap", ".pcapng"))
    captures.append(args.capture)
    print(f"{'capture':<30} {'seconds':>8} {'rewrite s':>9} {'in MB':>8} {'out MB':>8} {'MB/s':>7} "
          f"{'objects':>7} {'attrs':>6} {'dropped':>7} {'peakRSS MB':>10}")
    with tempfile.TemporaryDirectory() as work:
        for capture in captures:
            row = measure(capture, args.runs, Path(work))
            print(f"{row['capture']:<30} {row['seconds']:>8.3f} {row['rewrite_seconds']:>9.3f} "
                  f"{row['in_bytes'] / 1e6:>8.2f} {row['out_bytes'] / 1e6:>8.2f} {row['mb_per_s']:>7.1f} "
                  f"{row['objects']:>7} {row['attributes_changed']:>6} {row['dropped']:>7} "
                  f"{row['peak_rss_mb']:>10.0f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
