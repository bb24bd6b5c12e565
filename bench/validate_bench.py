"""Validation benchmark: stored objects checked per second with dciodvfy, with and without the cache.

    python bench/validate_bench.py [--repeat 10] [--workers 0] [--capture FILE ...]

Takes every C-STORE-RQ of the given captures (by default the recorded fixtures that carry
objects: validate_*, store_dcmtk, store_ts, store_testfiles: 30 objects, 27 distinct),
validates the list ``--repeat`` times over, and prints objects per second for:

- no cache: a new in-memory cache each pass, nothing on disk: every object runs dciodvfy
  (one process per object, ``--workers`` at once; 0 is one per core), also with 1 worker;
- disk cache: a new in-memory cache each pass over a warm on-disk cache (a second run of
  ``dicomtui --validate`` over the same captures);
- memory cache: the same in-process cache every pass (the TUI, a batch worker).

Copies of one object inside a pass are validated once (the runner waits for the first
copy's result), so "no cache" counts objects, not dciodvfy runs; the dciodvfy runs are
printed too.  Not a timed test: figures depend on the machine, compare ratios of one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dicomtui.cli import make_host
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.plugins.validate.cache import ValidationCache
from dicomtui.plugins.validate.runner import default_workers, validate_messages
from dicomtui.plugins.validate.tool import find_tools

HERE = Path(__file__).resolve().parent  # run from an installed dicomtui (pip install -e '.[validate]')

FIXTURES = HERE.parent / "fixtures"
DEFAULT_CAPTURES = ["validate_defects_dcmtk.pcap", "validate_clean_dcmtk.pcap", "validate_a900_pynetdicom.pcap",
                    "validate_mismatch_pynetdicom.pcap", "store_dcmtk.pcapng", "store_ts_pynetdicom.pcap",
                    "store_testfiles_pynetdicom.pcap"]
MAX_BYTES = 512 << 20


def passes(analyses, repeat: int, tools, workers: int, make_cache) -> tuple[float, int, int]:
    """(seconds, objects, dciodvfy runs) for ``repeat`` passes over every stored object."""
    objects = runs = 0
    started = time.perf_counter()
    for _ in range(repeat):
        cache = make_cache()
        for analysis, indexes in analyses:
            done = validate_messages(analysis, indexes, tools, cache, workers, MAX_BYTES)
            objects += len(done.results)
            runs += done.ran
    return time.perf_counter() - started, objects, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--capture", action="append", default=[])
    args = parser.parse_args()
    tools = find_tools()
    workers = args.workers or default_workers()
    host = make_host()
    analyses = []
    for name in args.capture or [str(FIXTURES / name) for name in DEFAULT_CAPTURES]:
        analysis = analyze([name], AnalysisConfig(), host)
        indexes = [message.index for message in analysis.messages
                   if message.command_field == 1 and message.has_dataset]
        analyses.append((analysis, indexes))
    total = sum(len(indexes) for _analysis, indexes in analyses)
    print(f"dciodvfy {tools.version}; {total} stored objects in {len(analyses)} captures; "
          f"{args.repeat} passes; {workers} workers")
    rows = []
    seconds, objects, runs = passes(analyses, args.repeat, tools, workers, lambda: ValidationCache(None))
    rows.append((f"no cache, {workers} workers", seconds, objects, runs))
    seconds, objects, runs = passes(analyses, args.repeat, tools, 1, lambda: ValidationCache(None))
    rows.append(("no cache, 1 worker", seconds, objects, runs))
    with tempfile.TemporaryDirectory(prefix="dicomtui-validate-bench-") as folder:
        passes(analyses, 1, tools, workers, lambda: ValidationCache(Path(folder)))  # warm the disk
        seconds, objects, runs = passes(analyses, args.repeat, tools, workers, lambda: ValidationCache(Path(folder)))
        rows.append(("disk cache (warm), fresh memory", seconds, objects, runs))
    shared = ValidationCache(None)
    passes(analyses, 1, tools, workers, lambda: shared)
    seconds, objects, runs = passes(analyses, args.repeat, tools, workers, lambda: shared)
    rows.append(("memory cache (warm)", seconds, objects, runs))
    base = rows[0][2] / rows[0][1]
    print(f"{'':34} {'seconds':>8} {'objects':>8} {'dciodvfy runs':>14} {'objects/s':>10} {'x no cache':>10}")
    for name, seconds, objects, runs in rows:
        rate = objects / seconds
        print(f"{name:34} {seconds:8.2f} {objects:8d} {runs:14d} {rate:10.1f} {rate / base:10.1f}")
    for analysis, _indexes in analyses:
        analysis.close()


if __name__ == "__main__":
    main()
