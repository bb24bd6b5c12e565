"""Engine benchmark: every headless mode as a ratio to a bare header walk of the same file.

    python bench/walk_bench.py [--rounds 5] [--size-mb 216] [--messy 0.03] [--workdir /dev/shm]
                                 [--capture FILE ...] [--tshark] [--no-json]

What it measures, in each round, one after the other on the same file (so a
busy machine slows all of them alike; the ratios are the figures to trust):

- **walk**: a child Python that maps the file and reads every pcap record
  header with ``struct`` (no link, IP or TCP parsing): the floor for any
  per-frame work in this language.  Timed from the child's start (interpreter
  start-up included, as for the others).
- **export**: ``dicomtui --export`` of every object (Part 10, byte-exact), wall
  time of the child; its peak RSS (``ru_maxrss``, includes the capture pages
  it touched) and anonymous RSS (what the export itself holds).
- **summary** and **json**: ``dicomtui --summary`` / ``--json`` into /dev/null.
- **floor**: a child that does what every mode must before any TCP or DICOM work:
  the ``--summary`` mode's imports, numpy, and the bulk path's record walk and
  column-wise header read over every frame (no connection table, no reassembly).
  It shows how much of each ratio this design cannot go under in this language.
- **start-up**: ``dicomtui --summary`` on a small capture (fixtures/echo_dcmtk.pcap):
  time to the first line of output, and to exit.
- **tshark** (``--tshark``): ``tshark --export-objects dicom`` once, on the first round.

Captures: by default an in-order recording and a messy one (reordered,
retransmitted and repacketized segments, ``make_capture.py --messy``) of the
same large multi-object transfer, generated once into the work folder.  The
median of each figure and of each per-round ratio is printed.  Not a timed
test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMALL_CAPTURE = HERE.parent / "fixtures" / "echo_dcmtk.pcap"

# The floor: map the file, read every record header, touch nothing else.
WALK = r"""
import mmap, struct, sys
with open(sys.argv[1], 'rb') as f:
    data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
unpack = struct.Struct('<IIII').unpack_from
offset, end, frames = 24, len(data), 0
while offset + 16 <= end:
    _s, _u, caplen, _o = unpack(data, offset)
    offset += 16 + caplen
    frames += 1
print(frames)
"""

# The floor of this design: what every pass over a large pcap does before any TCP or DICOM work —
# the --summary mode's imports, numpy, the record walk and the column-wise header read of the
# bulk path (core/wire/pcap_block.py), over every frame.  No mode can be faster than this.
FLOOR = r"""
import mmap, struct, sys
from dicomtui.cli import make_host
from dicomtui.core.pipeline import bulk
from dicomtui.core.wire.capture import PCAP_MAGICS
from dicomtui.core.wire.capture_format import walk_record_offsets as walk_records
from dicomtui.core.wire.pcap_block import decode_block
with open(sys.argv[1], 'rb') as f:
    data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
endian, resolution = PCAP_MAGICS[bytes(data[:4])]
caplen = struct.Struct(endian + 'I').unpack_from
offset, frames = 24, 0
while offset < len(data):
    offsets, offset = walk_records(data, offset, bulk.BLOCK_FRAMES, caplen)
    if not offsets:
        break
    decode_block(data, offsets, endian, resolution)
    frames += len(offsets)
print(frames)
"""

# The CLI in a child that reports its anonymous-memory peak at exit (RssAnon excludes the mapped capture).
CLI = r"""
import sys
from dicomtui.cli import main
status = main(sys.argv[1:])
try:
    with open('/proc/self/status') as status_file:
        for line in status_file:
            if line.startswith(('RssAnon:', 'VmHWM:')):
                print(line.split(':')[0], line.split()[1], file=sys.stderr)
except OSError:
    pass
sys.exit(status)
"""


# Children run as an installed program would: with compiled bytecode (this environment may set
# PYTHONDONTWRITEBYTECODE, which would make every start-up compile every module).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], stdout=subprocess.DEVNULL, env: dict | None = None) -> dict:
    """Wall and CPU time, exit status, stderr and (``CLI`` children) peak and anonymous RSS of a child."""
    cpu = _cpu()
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env or ENV)
    _out, err = child.communicate()
    elapsed = time.perf_counter() - started
    figures = {"seconds": elapsed, "cpu": _cpu() - cpu, "status": child.returncode,
               "stderr": err.decode(errors="replace")}
    for line in figures["stderr"].splitlines():
        if line.startswith("RssAnon "):
            figures["anon_kb"] = int(line.split()[1])
        elif line.startswith("VmHWM "):
            figures["peak_kb"] = int(line.split()[1])
    return figures


def first_output(argv: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """Seconds to the first line on stdout and to the child's exit, and its CPU seconds."""
    cpu = _cpu()
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env or ENV)
    child.stdout.readline()
    first = time.perf_counter() - started
    child.stdout.read()
    child.wait()
    return first, time.perf_counter() - started, _cpu() - cpu


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI, *args]


def one_round(capture: Path, work: Path, with_json: bool, env: dict, walk: dict) -> dict:
    """Every mode once with the code on ``env``'s PYTHONPATH; ``walk`` is this round's walk."""
    figures: dict = {"walk": walk["seconds"], "walk_cpu": walk["cpu"]}
    floor = timed([sys.executable, "-c", FLOOR, str(capture)], env=env)
    if floor["status"] == 0:
        figures["floor"], figures["floor_cpu"] = floor["seconds"], floor["cpu"]
    out = work / "export"
    export = timed(cli("--export", str(out), str(capture)), env=env)
    figures["export"], figures["export_cpu"] = export["seconds"], export["cpu"]
    figures["export_status"] = export["status"]
    figures["objects"] = len(list(out.iterdir())) if out.exists() else 0
    figures["export_peak_mb"] = export.get("peak_kb", 0) / 1024
    figures["export_anon_mb"] = export.get("anon_kb", 0) / 1024
    if export["status"] != 0:
        figures["export_error"] = export["stderr"][-2000:]
    shutil.rmtree(out, ignore_errors=True)
    summary = timed(cli("--summary", str(capture)), env=env)
    figures["summary"], figures["summary_cpu"] = summary["seconds"], summary["cpu"]
    if with_json:
        document = timed(cli("--json", str(capture)), env=env)
        figures["json"], figures["json_cpu"] = document["seconds"], document["cpu"]
    figures["startup_first"], figures["startup_exit"], figures["startup_cpu"] = first_output(
        [sys.executable, "-m", "dicomtui.cli", "--summary", str(SMALL_CAPTURE)], env=env)
    return figures


def tshark_export(capture: Path, work: Path, timeout: float) -> str:
    tshark = shutil.which("tshark")
    if tshark is None:
        return "not installed"
    out = work / "tshark"
    started = time.perf_counter()
    try:
        subprocess.run([tshark, "-r", str(capture), "-d", "tcp.port==11112,dicom", "-q",
                        "--export-objects", f"dicom,{out}"], check=False, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"did not finish in {timeout:.0f} s"
    finally:
        objects = len(list(out.iterdir())) if out.exists() else 0
        shutil.rmtree(out, ignore_errors=True)
    return f"{time.perf_counter() - started:.2f} s ({objects} objects)"


def report(name: str, capture: Path, rounds: list[dict], tshark: str | None) -> None:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def ratio(key: str) -> str:
        values = sorted(r[key] / r["walk"] for r in rounds)
        cpu = sorted(r[key + "_cpu"] / r["walk_cpu"] for r in rounds)
        return (f"{statistics.median(values):.2f}x the walk (range {values[0]:.2f}-{values[-1]:.2f}); "
                f"CPU {median(key + '_cpu'):.3f} s = {statistics.median(cpu):.2f}x")

    size = capture.stat().st_size / 1e6
    print(f"\n== {name}: {capture} ({size:.0f} MB), median of {len(rounds)} rounds")
    print(f"walk (mmap + struct of record headers)  {median('walk'):.3f} s (CPU {median('walk_cpu'):.3f} s)")
    if all("floor" in r for r in rounds):
        print(f"floor (imports, walk, header columns)   {median('floor'):.3f} s = {ratio('floor')}")
    print(f"export                                  {median('export'):.3f} s = {ratio('export')}; "
          f"{rounds[0]['objects']} objects, exit {rounds[0]['export_status']}, "
          f"peak RSS {median('export_peak_mb'):.0f} MiB (anonymous {median('export_anon_mb'):.0f} MiB)")
    print(f"--summary                               {median('summary'):.3f} s = {ratio('summary')}")
    if "json" in rounds[0]:
        print(f"--json                                  {median('json'):.3f} s = {ratio('json')}")
    print(f"start-up (--summary, {SMALL_CAPTURE.name})    first line {median('startup_first'):.3f} s, "
          f"exit {median('startup_exit'):.3f} s, CPU {median('startup_cpu'):.3f} s")
    if tshark is not None:
        print(f"tshark --export-objects dicom           {tshark}")
    for r in rounds:
        if "export_error" in r:
            print("export failed:", r["export_error"])
            break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", type=Path, action="append", default=[],
                        help="measure this capture (repeatable) instead of the generated pair")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mb", type=float, default=216, help="size of the generated captures (MiB)")
    parser.add_argument("--messy", type=float, default=0.03, help="reorder/retransmit rate of the messy capture")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where captures and exports go (default: the temp folder; /dev/shm takes the "
                             "disk out of the measurement)")
    parser.add_argument("--tshark", action="store_true", help="also time tshark --export-objects once per capture")
    parser.add_argument("--tshark-timeout", type=float, default=600)
    parser.add_argument("--no-json", action="store_true")
    parser.add_argument("--compare", metavar="PYTHONPATH", default=None,
                        help="also run every mode with dicomtui imported from this path (e.g. an export of "
                             "an older commit: mkdir -p /tmp/old/dicomtui && git archive main | tar -x -C "
                             "/tmp/old/dicomtui), in the same rounds")
    args = parser.parse_args(argv)
    base = args.workdir or Path(tempfile.gettempdir())
    captures: list[tuple[str, Path]] = [(path.name, path) for path in args.capture]
    if not captures:
        for name, rate in (("in order", 0.0), ("messy", args.messy)):
            path = base / f"dicomtui-engine-bench-{args.size_mb:g}-{rate:g}.pcap"
            if not path.exists():
                subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(path), "--size-mb",
                                str(args.size_mb), "--messy", str(rate)], check=True)
            captures.append((name, path))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="dicomtui-engine-bench-", dir=base))
    variants = [("this tree", ENV)]
    if args.compare:
        variants.append((f"compared ({args.compare})", {**ENV, "PYTHONPATH": args.compare}))
    for _name, env in variants:  # compile bytecode once, as an install does
        subprocess.run([sys.executable, "-m", "dicomtui.cli", "--summary", str(SMALL_CAPTURE)], env=env,
                       stdout=subprocess.DEVNULL, check=False)
    try:
        results = {(name, variant): [] for name, _ in captures for variant, _env in variants}
        for _ in range(args.rounds):
            for name, path in captures:
                walk = timed([sys.executable, "-c", WALK, str(path)])
                for variant, env in variants:
                    results[(name, variant)].append(one_round(path, work, not args.no_json, env, walk))
        for name, path in captures:
            tshark = tshark_export(path, work, args.tshark_timeout) if args.tshark else None
            for variant, _env in variants:
                report(f"{name}, {variant}", path, results[(name, variant)], tshark)
        print(f"\nload average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
              "(the machine is shared: compare the ratios, not the seconds)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
