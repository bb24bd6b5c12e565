"""Benchmark of the terminal UI on a large generated capture (a measurement, not a timed test).

    python bench/tui_bench.py [--size-mb 200] [--max-pdu 16384] [--object-kb 512] [--capture PATH]

Generates a capture with ``bench/make_capture.py`` (unless ``--capture`` names
one), then runs the real ``DicomApp`` headless (Textual's ``run_test``, 120x40)
and reports:

- time to first rows: from starting the load worker until the packet list has
  its first rows (the first progress message that carries PDUs);
- time to a complete index: until the analysis worker reports it finished
  (expert rules included);
- scrolling: the mean time to render one full screen of packet-list rows at
  random positions (the Line API work per page, with an empty row cache);
- filtering: time for the display filter ``status != 0`` to scan every PDU
  (thread worker), and for a data set filter ``Modality == "CT"`` (decodes every
  data set once);
- peak RSS of the process (``ru_maxrss``), which includes Python, Textual and
  the index; the capture itself is memory-mapped and is counted only for the
  pages the pass touched.

Run it on an otherwise idle machine; the figures in docs/tui.md came from it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory; RssAnon excludes the memory-mapped capture's file pages (RssFile)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    """CPU time of this process (all threads): less at the mercy of a busy machine than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(capture: str) -> dict:
    from dicomtui.core.model.analysis import AnalysisConfig
    from dicomtui.cli import make_host
    from dicomtui.tui.app import DicomApp
    from dicomtui.tui.packet_list import PacketList

    figures: dict = {"rss_before_mb": rss_mb()}
    app = DicomApp([capture], AnalysisConfig(), make_host())
    cpu_before = cpu_seconds()
    async with app.run_test(size=(120, 40)) as pilot:
        while app.loaded_seconds is None:
            await pilot.pause(0.05)
        figures["index_cpu_s"] = cpu_seconds() - cpu_before
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        figures["first_rows_s"] = app.first_rows_seconds
        figures["index_s"] = app.loaded_seconds
        figures["pdus"] = len(app.analysis.pdus)
        figures["messages"] = len(app.analysis.messages)
        figures["rss_after_load_mb"] = rss_mb()
        figures["anon_after_load_mb"] = rss_mb("RssAnon")
        figures["file_after_load_mb"] = rss_mb("RssFile")

        packets: PacketList = app.packet_list
        height = packets.scrollable_content_region.height
        rng = random.Random(7)
        pages = 200
        started = time.perf_counter()
        for _ in range(pages):
            packets._row_cache.clear()
            packets.scroll_to(y=rng.randrange(max(1, packets.row_count - height)), animate=False, immediate=True)
            for y in range(height):
                packets.render_line(y)
        figures["page_render_ms"] = (time.perf_counter() - started) / pages * 1000
        figures["rows_per_page"] = height - 1

        for name, text in (("filter_status_s", "status != 0"), ("filter_dataset_s", 'Modality == "CT"')):
            started = time.perf_counter()
            cpu_started = cpu_seconds()
            app.apply_filter(text)
            await pilot.pause(0.05)
            while not app.filtering.status.startswith("(") or "scanned" in app.filtering.status \
                    or "scanning" in app.filtering.status:
                await pilot.pause(0.02)
            figures[name] = time.perf_counter() - started
            figures[name[:-2] + "_cpu_s"] = cpu_seconds() - cpu_started
            figures[name[:-2] + "_rows"] = packets.row_count
        app.apply_filter("")
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


def tshark_pass(capture: str, timeout: float) -> str:
    """Wall time of one tshark pass decoding every DICOM PDU of the file (the same-run baseline)."""
    if not shutil.which("tshark"):
        return "tshark not installed"
    started = time.perf_counter()
    try:
        subprocess.run(["tshark", "-r", capture, "-d", "tcp.port==11112,dicom", "-T", "fields", "-e",
                        "dicom.pdu.type"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"did not finish in {timeout:.0f} s"
    return f"{time.perf_counter() - started:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", help="use this capture instead of generating one")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--max-pdu", type=int, default=16384)
    parser.add_argument("--object-kb", type=int, default=512)
    parser.add_argument("--keep", action="store_true", help="keep the generated capture")
    parser.add_argument("--tshark-timeout", type=float, default=600)
    args = parser.parse_args()
    capture = args.capture
    generated = None
    if capture is None:
        generated = capture = f"/tmp/dicomtui-tui-bench-{args.size_mb}mb-{args.max_pdu}.pcap"
        if not os.path.exists(capture):
            subprocess.run([sys.executable, str(HERE / "make_capture.py"), capture, "--size-mb", str(args.size_mb),
                            "--max-pdu", str(args.max_pdu), "--object-kb", str(args.object_kb)], check=True)
    size = os.path.getsize(capture)
    figures = asyncio.run(measure(capture))
    print(f"capture              {capture} ({size / 1e6:.0f} MB, {figures['pdus']:,} PDUs, "
          f"{figures['messages']:,} messages)")
    print(f"time to first rows   {figures['first_rows_s']:.3f} s")
    print(f"time to full index   {figures['index_s']:.2f} s, process CPU {figures['index_cpu_s']:.2f} s "
          "(UI included) "
          f"(tshark, one pass over the same file: {tshark_pass(capture, args.tshark_timeout)})")
    print(f"page of rows         {figures['page_render_ms']:.2f} ms to render {figures['rows_per_page']} rows "
          "(random positions, cold row cache)")
    print(f"filter status != 0   {figures['filter_status_s']:.2f} s ({figures['filter_status_rows']:,} rows)")
    print(f"filter Modality==CT  {figures['filter_dataset_s']:.2f} s, CPU {figures['filter_dataset_cpu_s']:.2f} s "
          f"({figures['filter_dataset_rows']:,} rows)")
    print(f"RSS                  {figures['rss_before_mb']:.0f} MB before, {figures['rss_after_load_mb']:.0f} MB "
          f"after loading (anonymous {figures['anon_after_load_mb']:.0f} MB, file-backed incl. the mapped capture "
          f"{figures['file_after_load_mb']:.0f} MB), peak {figures['peak_rss_mb']:.0f} MB")
    if generated and not args.keep:
        os.unlink(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
