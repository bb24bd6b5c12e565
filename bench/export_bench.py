"""Export benchmark: dicomtui --export against tshark --export-objects dicom on one capture.

    python bench/export_bench.py [--capture FILE] [--size-mb 200] [--object-kb 512]
                                 [--tshark-timeout 600] [--keep]

Generates the capture with bench/make_capture.py unless it exists, then runs
``dicomtui --export`` as a subprocess (wall time, MB/s of capture, objects
written, peak RSS of the child) and ``tshark --export-objects dicom`` on the
same file.  Not a timed test: the figures depend on the machine; record them in
the README / docs/export.md with the machine they were measured on.

Peak RSS (``ru_maxrss`` of the child) counts the pages of the memory-mapped
capture the process touched: file-backed, shared with the page cache and
reclaimable.  So the child also reports its anonymous memory (``RssAnon`` from
/proc, sampled before the summary and at exit), which is what the export
itself holds.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Runs the CLI in a child and reports its anonymous-memory peak, sampled at exit.
CHILD = r"""
import sys, atexit
peak = [0]
def sample():
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith('RssAnon:'):
                    peak[0] = max(peak[0], int(line.split()[1]))
    except OSError:
        pass
import dicomtui.core.views.export as export
original = export.print_summary
def summary(*args, **kwargs):
    sample()
    return original(*args, **kwargs)
export.print_summary = summary
from dicomtui.cli import main
status = main(sys.argv[1:])
sample()
print(f'anon-rss-kb {peak[0]}', file=sys.stderr)
sys.exit(status)
"""


def run_dicomtui(capture: Path, outdir: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, "--export", str(outdir), str(capture)],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    anon = next((int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("anon-rss-kb")), 0)
    return {"status": done.returncode, "seconds": elapsed, "objects": len(list(outdir.iterdir())),
            "peak_rss_kb": peak if peak > before else before, "anon_rss_kb": anon,
            "report": "\n".join(line for line in done.stderr.splitlines() if not line.startswith("anon-rss"))}


def run_tshark(capture: Path, outdir: Path, timeout: float) -> dict:
    tshark = shutil.which("tshark")
    if tshark is None:
        return {"skipped": "tshark not installed"}
    start = time.perf_counter()
    try:
        done = subprocess.run([tshark, "-r", str(capture), "-d", "tcp.port==11112,dicom", "-q",
                               "--export-objects", f"dicom,{outdir}"], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout, "objects": len(list(outdir.iterdir()))}
    return {"status": done.returncode, "seconds": time.perf_counter() - start,
            "objects": len(list(outdir.iterdir()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", type=Path, default=Path(tempfile.gettempdir()) / "dicomtui-bench.pcap")
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--object-kb", type=int, default=512)
    parser.add_argument("--tshark-timeout", type=float, default=600)
    parser.add_argument("--no-tshark", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the exported files")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the exports are written (default: the temp folder; /dev/shm takes the "
                             "disk out of the measurement)")
    args = parser.parse_args(argv)
    if not args.capture.exists():
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(args.capture), "--size-mb",
                        str(args.size_mb), "--object-kb", str(args.object_kb)], check=True)
    size = args.capture.stat().st_size
    work = Path(tempfile.mkdtemp(prefix="dicomtui-bench-", dir=args.workdir))
    try:
        ours = run_dicomtui(args.capture, work / "dicomtui")
        mb = size / 1e6
        print(f"capture: {args.capture} {mb:.1f} MB")
        print(f"dicomtui --export: {ours['seconds']:.2f} s, {mb / ours['seconds']:.1f} MB/s, "
              f"{ours['objects']} objects, exit {ours['status']}, peak RSS {ours['peak_rss_kb'] / 1024:.1f} MiB "
              f"(anonymous {ours['anon_rss_kb'] / 1024:.1f} MiB; the rest is the mapped capture)")
        if ours["status"] != 0:
            print(ours["report"])
        if not args.no_tshark:
            theirs = run_tshark(args.capture, work / "tshark", args.tshark_timeout)
            if "skipped" in theirs:
                print(f"tshark: {theirs['skipped']}")
            elif "timeout" in theirs:
                print(f"tshark --export-objects dicom: did not finish in {theirs['timeout']:.0f} s "
                      f"({theirs['objects']} objects so far)")
            else:
                print(f"tshark --export-objects dicom: {theirs['seconds']:.2f} s, "
                      f"{mb / theirs['seconds']:.1f} MB/s, {theirs['objects']} objects, exit {theirs['status']}; "
                      f"dicomtui is {theirs['seconds'] / ours['seconds']:.1f}x faster")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"exports kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
