"""Benchmark of live analysis (a measurement, not a timed test).

    python bench/live_bench.py [--size-mb 100] [--object-kb 4] [--max-pdu 2000] [--capture PATH]
                               [--max-pdus 100000] [--spool-mb 256] [--chunk-kb 64]
                               [--phases file,live,memory,retention]

Generates a capture with ``bench/make_capture.py`` (unless ``--capture`` names
one; small objects and small PDUs by default, the worst case for the index),
then, in this one process and run:

1. reads it as a file (``analyze``): the reference time;
2. feeds its bytes to ``IncrementalAnalysis`` in ``--chunk-kb`` pieces, polling
   after every piece (the live path minus the pipe: parser, spool, engine,
   incremental rules), with the default retention limits: throughput and the
   index's memory per PDU (tracemalloc over the whole analysis);
3. the same feed with ``--max-pdus`` / ``--spool-mb`` retention limits, printing
   the anonymous RSS, the retained rows and the spool size as the run goes:
   memory must level off while the capture goes on (bounded for long runs).

Ratios within one run are the figures to trust on a noisy machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rss_anon_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


def feed(path: Path, config, host, chunk: int, report_every: int = 0, measure_memory: bool = False):
    from dicomtui.core.pipeline.incremental import IncrementalAnalysis

    live = IncrementalAnalysis(config, host, path.name)
    rows = []
    handle = open(path, "rb")  # read as a pipe would deliver it: no copy of the capture in memory
    if measure_memory:
        tracemalloc.start()
    started = time.perf_counter()
    next_report = report_every
    position = 0
    while data := handle.read(chunk):
        live.feed(data)
        live.poll()
        position += len(data)
        if report_every and position >= next_report:
            pdus = live.analysis.pdus
            rows.append((position >> 20, len(pdus), len(pdus) - pdus.base, live.spool.bytes_kept >> 20,
                         rss_anon_mb()))
            next_report += report_every
    live.finish()
    elapsed = time.perf_counter() - started
    memory = None
    handle.close()
    if measure_memory:
        gc.collect()
        memory = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    return live, elapsed, rows, memory


def main() -> None:
    """Each measurement in its own process, so one's memory does not colour the next."""
    if "--phase" in sys.argv:
        return phase()
    phases = "file,live,memory,retention"
    arguments = list(sys.argv[1:])
    if "--phases" in arguments:
        at = arguments.index("--phases")
        phases = arguments[at + 1]
        del arguments[at : at + 2]
    for name in phases.split(","):
        subprocess.run([sys.executable, __file__, *arguments, "--phase", name], check=True)


def phase() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", required=True)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--object-kb", type=int, default=4)
    parser.add_argument("--max-pdu", type=int, default=2000)
    parser.add_argument("--capture")
    parser.add_argument("--max-pdus", type=int, default=100_000)
    parser.add_argument("--spool-mb", type=int, default=256)
    parser.add_argument("--chunk-kb", type=int, default=64)
    args = parser.parse_args()

    from dicomtui.core.base.limits import Limits
    from dicomtui.cli import make_host
    from dicomtui.core.pipeline import AnalysisConfig, analyze

    capture = Path(args.capture) if args.capture else Path(f"/tmp/dicomtui-live-bench-{args.size_mb}.pcap")
    if not capture.exists():
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(capture), "--size-mb", str(args.size_mb),
                        "--object-kb", str(args.object_kb), "--max-pdu", str(args.max_pdu), "--associations",
                        "40"], check=True)
    size = capture.stat().st_size
    host = make_host()
    chunk = args.chunk_kb << 10
    if args.phase == "file":
        print(f"capture: {capture} ({size / 1e6:.1f} MB)")
        started = time.perf_counter()
        reference = analyze([str(capture)], AnalysisConfig(), host)
        seconds = time.perf_counter() - started
        print(f"file analysis: {seconds:.2f} s, {size / 1e6 / seconds:.1f} MB/s, {reference.frame_count:,} frames, "
              f"{len(reference.pdus):,} PDUs, {len(reference.messages):,} messages; RssAnon {rss_anon_mb():.0f} MB")
        return
    if args.phase == "live":
        live, seconds, _rows, _memory = feed(capture, AnalysisConfig(), host, chunk)
        frames = live.analysis.frame_count
        print(f"live analysis (default limits, {args.chunk_kb} KB chunks, a poll after each): {seconds:.2f} s, "
              f"{size / 1e6 / seconds:.1f} MB/s, {frames / seconds:,.0f} frames/s, "
              f"{len(live.analysis.pdus) / seconds:,.0f} PDUs/s; RssAnon {rss_anon_mb():.0f} MB")
        live.close()
        return
    if args.phase == "memory":
        live, _seconds, _rows, memory = feed(capture, AnalysisConfig(), host, chunk, measure_memory=True)
        retained = len(live.analysis.pdus) - live.analysis.pdus.base
        table = live.analysis.pdus.bytes_used()
        print(f"index memory (tracemalloc: all the analysis holds): {memory / 1e6:.1f} MB for {retained:,} PDUs and "
              f"{len(live.analysis.messages):,} messages = {memory / max(1, retained):.0f} bytes per PDU with its "
              f"share of messages, connections and chunk maps; the PDU table alone "
              f"{table / max(1, retained):.0f} bytes per PDU")
        live.close()
        return
    limits = Limits(live_max_pdus=args.max_pdus, live_spool_mb=args.spool_mb)
    live, seconds, rows, _memory = feed(capture, AnalysisConfig(limits=limits), host, args.chunk_kb << 10,
                                        report_every=max(size // 12, 1))
    print(f"\nretention run (live_max_pdus={args.max_pdus:,}, live_spool_mb={args.spool_mb}): {seconds:.2f} s")
    print(f"{'read MB':>8} {'PDUs seen':>10} {'retained':>9} {'spool MB':>9} {'RssAnon MB':>11}")
    for read_mb, seen, kept, spool_mb, anon in rows:
        print(f"{read_mb:8d} {seen:10,d} {kept:9,d} {spool_mb:9d} {anon:11.1f}")
    dropped = live.retention.dropped
    print(f"dropped: {dropped.pdus:,} PDUs, {dropped.messages:,} messages, {dropped.associations:,} associations, "
          f"{dropped.segments} spool segments ({dropped.bytes / 1e6:.0f} MB)")
    live.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
