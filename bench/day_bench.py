"""A day at a PACS port: cost per association, beside tshark, at sizes ten times apart.

    python bench/day_bench.py [--sizes 1000,10000] [--dir /var/tmp/dicomtui-day] [--modes summary,jsonl,...]
                              [--repeat 1] [--keep]

Builds day-shaped captures with bench/make_day.py (the recorded fixtures stamped: ~45 %
C-ECHO, queries with C-MOVE and sub-associations or C-GET, single-object stores, rejects and
aborts; each copy with its own addresses, ports, ISNs and start time), in ``--dir`` (a normal
disk folder, not tmpfs: exports are written there too), then for each size runs, each as its
own process:

- ``tshark -r DAY -d tcp.port==104,dicom`` (its plain read, one line per frame, to /dev/null)
- ``dicomtui --summary``, ``--jsonl``, ``--expert``, ``--export DIR`` (objects into ``--dir``)
- ``tui``: the real DicomApp headless (Textual's run_test) until the index is complete, and the
  time to its first rows

and prints, per mode: wall seconds, µs per association, the ratio to tshark's read of the same
file in the same run, peak RSS (MB) and KB per association above the same mode's peak on a
one-association capture; then, per mode, how the time grew from one size to the next (10x
associations should be at most ~10x the time).  Machines here are shared and noisy: compare
the ratios within one run, not seconds across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("summary", "jsonl", "expert", "export", "tui")

TUI_PROBE = r"""
import asyncio, json, sys, time
from dicomtui.cli import make_host
from dicomtui.core.model.analysis import AnalysisConfig
from dicomtui.tui.app import DicomApp
from dicomtui.tui.associations import AssociationsScreen

slices = []  # when each slice of the associations view was added (the first is what opens it)
_add_rows = AssociationsScreen._add_rows
def _timed_add_rows(self, *args):
    _add_rows(self, *args)
    slices.append(time.perf_counter())
AssociationsScreen._add_rows = _timed_add_rows

async def main():
    app = DicomApp([sys.argv[1]], AnalysisConfig(), make_host())
    figures = {}
    async with app.run_test(size=(120, 40)) as pilot:
        while app.loaded_seconds is None:
            await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        figures.update(first_rows_s=app.first_rows_seconds, index_s=app.loaded_seconds)
        started = time.perf_counter()
        await pilot.press("a")
        while not isinstance(app.screen, AssociationsScreen) or not app.screen.shown:
            await pilot.pause(0.01)
        while len(app.screen.shown) < len(app.analysis.associations):
            await pilot.pause(0.01)
        figures["associations_view_s"] = slices[0] - started  # the screen with its first rows
        figures["associations_all_s"] = slices[-1] - started
        await pilot.press("escape")
        for name, text in (("filter_ae_s", 'calling_ae == "MOD0007"'), ("filter_status_s", "status != 0")):
            started = time.perf_counter()
            app.apply_filter(text)
            await pilot.pause(0.02)
            while not app.filtering.status.startswith("(") or "scann" in app.filtering.status:
                await pilot.pause(0.01)
            figures[name] = time.perf_counter() - started
            app.apply_filter("")
    print(json.dumps(figures))

asyncio.run(main())
"""


def run(command: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS in KB, stdout if captured) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) not in (0, 3, 4):
        raise SystemExit(f"{' '.join(command)} exited with {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, output


def dicomtui_command(mode: str, capture: Path, workdir: Path) -> list[str]:
    exe = [sys.executable, "-m", "dicomtui.cli"]
    if mode == "export":
        out = workdir / "export"
        shutil.rmtree(out, ignore_errors=True)
        return exe + ["--export", str(out), str(capture)]
    if mode == "tui":
        return [sys.executable, "-c", TUI_PROBE, str(capture)]
    return exe + [f"--{mode}", str(capture)]


def measure(mode: str, capture: Path, workdir: Path) -> dict:
    command = dicomtui_command(mode, capture, workdir)
    wall, cpu, rss, output = run(command, stdout=subprocess.PIPE if mode == "tui" else subprocess.DEVNULL)
    figures = {"wall": wall, "cpu": cpu, "rss_kb": rss}
    if mode == "tui":
        probe = json.loads(output.strip().splitlines()[-1])
        figures.update(probe)
        figures["wall"] = probe["index_s"]  # the index, not Textual's start and stop
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--dir", default="/var/tmp/dicomtui-day")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--keep", action="store_true", help="keep the generated captures")
    parser.add_argument("--workflow-weight", type=float, default=0.0,
                        help="add worklist/MPPS/store/commitment copies to the day (make_day.py's option; "
                             "e.g. 10 for about a tenth of the associations)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    modes = [mode for mode in args.modes.split(",") if mode]
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    have_tshark = shutil.which("tshark") is not None

    # The fixed cost of each mode (interpreter, imports, Textual): its peak on one association.
    one = workdir / "day-1.pcap"
    subprocess.run([sys.executable, str(HERE / "make_day.py"), str(one), "--associations", "1"],
                   check=True, stderr=subprocess.DEVNULL)
    base_rss = {mode: measure(mode, one, workdir)["rss_kb"] for mode in modes}

    results: dict[int, dict[str, dict]] = {}
    for size in sizes:
        suffix = f"-wf{args.workflow_weight:g}" if args.workflow_weight else ""
        capture = workdir / f"day-{size}{suffix}.pcap"
        plan_path = workdir / f"day-{size}{suffix}.json"
        if not capture.exists() or not plan_path.exists():
            subprocess.run([sys.executable, str(HERE / "make_day.py"), str(capture), "--associations", str(size),
                            "--json-plan", str(plan_path), "--workflow-weight", str(args.workflow_weight)],
                           check=True, stderr=subprocess.DEVNULL)
        plan = json.loads(plan_path.read_text())
        associations = plan["associations"]
        rows = results[size] = {}
        if have_tshark:
            wall, cpu, rss, _ = run(["tshark", "-r", str(capture), "-d", "tcp.port==104,dicom"])
            rows["tshark"] = {"wall": wall, "cpu": cpu, "rss_kb": rss}
        for mode in modes:
            rows[mode] = measure(mode, capture, workdir)
        print(f"\n{capture}: {associations:,} associations, {plan['frames']:,} frames, "
              f"{plan['bytes'] / 1e6:.1f} MB")
        print(f"{'mode':<9} {'seconds':>8} {'µs/assoc':>9} {'x tshark':>9} {'peak MB':>8} {'KB/assoc':>9}")
        tshark = rows.get("tshark")
        for mode, figures in rows.items():
            ratio = f"{figures['wall'] / tshark['wall']:.2f}" if tshark else "-"
            above = f"{(figures['rss_kb'] - base_rss[mode]) / associations:.1f}" if mode in base_rss else "-"
            extra = (f"  (first rows {figures['first_rows_s']:.2f} s, associations view "
                     f"{figures['associations_view_s']:.2f} s, all rows {figures['associations_all_s']:.2f} s, filter on an AE title {figures['filter_ae_s']:.2f} s, "
                     f"on status {figures['filter_status_s']:.2f} s)") if mode == "tui" else ""
            print(f"{mode:<9} {figures['wall']:8.2f} {figures['wall'] / associations * 1e6:9.0f} {ratio:>9} "
                  f"{figures['rss_kb'] / 1024:8.0f} {above:>9}{extra}")
        if not args.keep:
            capture.unlink()
            plan_path.unlink()
    if len(sizes) > 1:
        print("\ngrowth of the time (and of tshark's) from one size to the next:")
        for small, large in zip(sizes, sizes[1:]):
            factor = large / small
            cells = [f"{mode} {results[large][mode]['wall'] / results[small][mode]['wall']:.1f}x"
                     for mode in results[large]]
            print(f"  {small:,} -> {large:,} associations ({factor:.0f}x): " + ", ".join(cells))
    shutil.rmtree(workdir / "export", ignore_errors=True)
    one.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
