"""Throughput of ``dicomtui --batch`` with 1 and 2 local Dask workers, against one plain pass.

    python bench/batch_bench.py [--size-mb 300] [--file-mb 20] [--associations 16] [--repeat 3]

Makes a capture with ``make_capture.py`` (several associations, so there are flows to
spread), cuts it into ring-buffer files of about ``--file-mb`` MB at record boundaries
(as dumpcap -b filesize does), then times, in turns, ``--repeat`` rounds of:

* one process, ``analyze`` over all the files read as one capture (what ``dicomtui -r a
  -r b ... --json`` does before printing): the reference per-core rate;
* ``--batch`` on a LocalCluster of 1 worker process, then on one of 2 (both clusters stay
  up; fresh OUTDIR each time), with the wall time of each stage, the CPU seconds of the
  workers and the client, the merge's own figure, the Parquet size and the workers' peak RSS;
* a probe of how many cores the machine gives us right now (2.0 on an idle 2-core machine);

then the whole commands in turns, start-up included: ``dicomtui --json -r ...`` against
``dicomtui --batch`` (its defaults, and ``--workers 2``), CPU of the process tree.

and prints MB/s and the 2-worker/1-worker ratio of each round.  The machine may be shared:
compare the ratios of one run, not absolute figures across runs.  Nothing is left behind unless
``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def split_pcap(path: Path, out_dir: Path, file_bytes: int) -> list[Path]:
    """Cut a pcap into files of about ``file_bytes`` at record boundaries (each with the file header)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    with open(path, "rb") as source:
        header = source.read(24)
        endian = "<" if header[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        number, out, written = 0, None, 0
        while True:
            record_header = source.read(16)
            if len(record_header) < 16:
                break
            caplen = struct.unpack(endian + "I", record_header[8:12])[0]
            body = source.read(caplen)
            if out is None or written >= file_bytes:
                if out is not None:
                    out.close()
                target = out_dir / f"ring_{number:05d}.pcap"
                files.append(target)
                out = open(target, "wb")
                out.write(header)
                written, number = 24, number + 1
            out.write(record_header)
            out.write(body)
            written += 16 + caplen
        if out is not None:
            out.close()
    return files


def _burn(count: int = 2_000_000) -> float:
    started = time.perf_counter()
    total = 0
    for number in range(count):
        total += number * number
    return time.perf_counter() - started


def available_parallelism() -> float:
    """How many cores this machine gives us right now: one CPU-bound loop's time, over the
    time of two run at once in two processes, times two (2.0 on an idle 2-core machine)."""
    import multiprocessing

    alone = min(_burn() for _ in range(2))
    with multiprocessing.Pool(2) as pool:
        started = time.perf_counter()
        pool.map(_burn, [2_000_000, 2_000_000])
        together = time.perf_counter() - started
    return round(2 * alone / together, 2)


def time_single(files: list[Path]) -> tuple[float, float, dict]:
    from dicomtui.cli import make_host
    from dicomtui.core.pipeline import analyze

    started, cpu = time.perf_counter(), time.process_time()
    analysis = analyze([str(path) for path in files], plugins=make_host())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = {"frames": analysis.frame_count, "connections": len(analysis.connections),
              "associations": len(analysis.associations), "messages": len(analysis.messages)}
    return seconds, cpu, counts


def _worker_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_batch(client, files_dir: Path, work: Path, tag: str) -> tuple[float, float, dict, dict]:
    """One --batch run on ``client``'s cluster: wall seconds, CPU seconds of the workers and
    of this (client) process, stage times, run figures."""
    from dicomtui.batch.runner import Progress, run_batch
    from dicomtui.cli import make_host

    out = work / f"out-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    before = sum(client.run(_worker_cpu).values())
    started, cpu = time.perf_counter(), time.process_time()
    outcome = run_batch(str(out), [str(files_dir)], make_host, scheduler=client.scheduler.address,
                        progress=Progress(enabled=False), say=lambda text: None)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    worker_cpu = sum(client.run(_worker_cpu).values()) - before
    record = json.loads(next(out.glob("runs/*/run.json")).read_text())
    table_bytes = sum(path.stat().st_size for path in out.glob("runs/*/*/*/*.parquet"))
    peak = max(client.run(_worker_peak_rss_mb).values())
    shutil.rmtree(out, ignore_errors=True)
    return seconds, worker_cpu + cpu, outcome.stage_seconds, {
        "parquet_MB": round(table_bytes / 1e6, 2), "worker_peak_rss_MB": round(peak),
        "merge_seconds": record["merge_seconds"], "frames": record["frames"], "groups": record["groups"],
        "decoded_by": len(record["decoded_by"]), **record["counts"]}


def command_cpu(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of the whole process tree: ``dicomtui``, and the Dask
    worker processes it starts and reaps) of one ``dicomtui`` command."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dicomtui.cli", *argv], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_commands(files: list[Path], files_dir: Path, work: Path, repeat: int) -> None:
    """The whole commands, start-up included, in turns: ``dicomtui --json -r ...`` against
    ``dicomtui --batch`` with its defaults and with ``--workers 2`` (issue 22's CPU target:
    the batch within 1.3x of the single pass)."""
    single_argv = ["--json"] + [item for path in files for item in ("-r", str(path))]
    runs: dict[str, list[tuple[float, float]]] = {"single": [], "batch": [], "batch --workers 2": []}
    for _round in range(repeat):
        runs["single"].append(command_cpu(single_argv))
        for name, extra in (("batch", []), ("batch --workers 2", ["--workers", "2"])):
            out = work / "out-command"
            shutil.rmtree(out, ignore_errors=True)
            runs[name].append(command_cpu(["--batch", str(out), str(files_dir), *extra]))
            shutil.rmtree(out, ignore_errors=True)
    single_cpu = min(cpu for _wall, cpu in runs["single"])
    print("whole commands, CPU of the process tree (best of the rounds; per round in brackets):")
    for name, measured in runs.items():
        best = min(cpu for _wall, cpu in measured)
        print(f"  dicomtui {name}: CPU {best:.2f} s ({', '.join(f'{cpu:.2f}' for _w, cpu in measured)}), "
              f"wall {', '.join(f'{wall:.2f}' for wall, _c in measured)} s; {best / single_cpu:.2f}x the single pass")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=300)
    parser.add_argument("--file-mb", type=float, default=20)
    parser.add_argument("--associations", type=int, default=16)
    parser.add_argument("--object-kb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dicomtui-batch-bench-", dir=args.workdir))
    try:
        capture = work / "big.pcap"
        subprocess.run([sys.executable, str(Path(__file__).with_name("make_capture.py")), str(capture),
                        "--size-mb", str(args.size_mb), "--associations", str(args.associations),
                        "--object-kb", str(args.object_kb)], check=True, stdout=subprocess.DEVNULL)
        files = split_pcap(capture, work / "ring", int(args.file_mb * 1e6))
        capture.unlink()
        total = sum(path.stat().st_size for path in files)
        print(f"input: {len(files)} files, {total / 1e6:,.1f} MB, {args.associations} associations; "
              f"cpus: {os.cpu_count()}; python {sys.version.split()[0]}")
        print(f"available parallelism before: {available_parallelism()} (2.0 = two idle cores)")
        from dask.distributed import Client, LocalCluster

        # Both clusters stay up and the three configurations take turns, so a change in what the
        # other users of the machine do hits them alike; each round also probes the machine.
        single, results, probes, ratios = [], {1: [], 2: []}, [], []
        started = time.perf_counter()
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as one, \
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as two, \
                Client(one) as client_one, Client(two) as client_two:
            startup = time.perf_counter() - started
            clients = {1: client_one, 2: client_two}
            for round_number in range(args.repeat):
                single.append(time_single(files))
                for workers in (1, 2):
                    results[workers].append(time_batch(clients[workers], work / "ring", work,
                                                       f"{workers}-{round_number}"))
                ratios.append(results[1][-1][0] / results[2][-1][0])
                probes.append(available_parallelism())
        counts = single[0][2]
        print(f"two LocalClusters (1 and 2 worker processes) started in {startup:.1f} s (not counted)")
        print(f"available parallelism after each round: {probes}")
        print(f"ratio 2 workers / 1 worker (throughput) per round: {[round(r, 2) for r in ratios]}")
        print(f"available parallelism after: {available_parallelism()}")
        mb = total / 1e6
        best_single = min(run[0] for run in single)
        single_cpu = min(run[1] for run in single)
        print(f"single pass (one process, the files read as one capture): {counts}")
        print(f"  wall {', '.join(f'{run[0]:.2f}' for run in single)} s -> {mb / best_single:,.1f} MB/s; "
              f"CPU {single_cpu:.2f} s -> {mb / single_cpu:,.1f} MB/s per core")
        best = {}
        for workers in (1, 2):
            runs = results[workers]
            fastest = min(runs, key=lambda run: run[0])
            best[workers] = fastest
            print(f"--batch on a LocalCluster of {workers} worker process{'es' if workers > 1 else ''}:")
            print(f"  wall {', '.join(f'{run[0]:.2f}' for run in runs)} s -> {mb / fastest[0]:,.1f} MB/s; "
                  f"CPU (workers + client) {fastest[1]:.2f} s -> {mb / fastest[1]:,.1f} MB/s per core")
            print(f"  stages (s): {fastest[2]}; {fastest[3]}")
        print(f"ratio 2 workers / 1 worker, throughput (best wall of each): {best[1][0] / best[2][0]:.2f}x")
        print(f"ratio batch (1 worker) / single pass, CPU per byte: {best[1][1] / single_cpu:.2f}x")
        time_commands(files, work / "ring", work, args.repeat)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
