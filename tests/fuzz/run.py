"""Run every fuzz target in turn for a while: ``python tests/fuzz/run.py --seconds 600``.

``--seconds`` is the total budget, split evenly over the targets (or over the
ones named with ``--only``).  One target runs at a time, in one process.  The
seed corpus is built from the fixtures on first use (tests/fuzz/corpus/, not
committed); libFuzzer adds what it finds there, so later runs start further.

A crash (an exception escaping a harness, a property failing, a hang past
``--timeout`` or memory past ``--rss-mb``) is written to tests/fuzz/crashes/;
the target is restarted for the rest of its time, so one run can report
several.  Reproduce one with ``python tests/fuzz/fuzz_<target>.py FILE``;
once fixed, copy it to fixtures/fuzz-regressions/<target>-<what>.bin, where
tests/test_hostile_regressions.py replays it on every test run.

Prints per target: executions, executions per second, new corpus units, crashes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ("capture", "connection", "pdu", "dataset", "reassembly", "resync", "pcapng", "export")
MAX_LEN = {"capture": 131072, "connection": 65536, "pdu": 32768, "dataset": 32768, "reassembly": 4096,
           "resync": 8192, "pcapng": 65536, "export": 32768}

_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_NEW_UNITS = re.compile(r"stat::new_units_added:\s*(\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_DONE = re.compile(r"^#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)", re.M)


def ensure_corpus(corpus: Path) -> None:
    if corpus.exists() and any(corpus.iterdir()):
        return
    sys.path.insert(0, str(HERE.parent))
    from fuzz.corpus import build

    print(f"building seed corpus in {corpus} ...", flush=True)
    print(f"  {build(corpus)}", flush=True)


def run_target(target: str, seconds: float, corpus: Path, crashes: Path, timeout: int, rss_mb: int,
               log_dir: Path) -> dict:
    corpus_dir = corpus / target
    corpus_dir.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + seconds
    totals = {"target": target, "executions": 0, "seconds": 0.0, "new_units": 0, "crashes": []}
    attempt = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining < 2:
            break
        attempt += 1
        log = log_dir / f"{target}-{attempt}.log"
        command = [sys.executable, str(HERE / f"fuzz_{target}.py"), str(corpus_dir),
                   f"-max_total_time={int(remaining)}", f"-timeout={timeout}", f"-rss_limit_mb={rss_mb}",
                   f"-max_len={MAX_LEN[target]}", f"-artifact_prefix={crashes}/{target}-",
                   "-print_final_stats=1", "-print_pcs=0"]
        started = time.monotonic()
        with open(log, "w") as handle:
            process = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
        elapsed = time.monotonic() - started
        text = log.read_text(errors="replace")
        executed = _EXECUTED.search(text)
        if executed:
            count = int(executed.group(1))
        else:  # a crash ends the run before the final stats: take the last progress line
            progress = _DONE.findall(text)
            count = int(progress[-1]) if progress else 0
        totals["executions"] += count
        totals["seconds"] += elapsed
        new_units = _NEW_UNITS.search(text)
        totals["new_units"] += int(new_units.group(1)) if new_units else 0
        artifact = _ARTIFACT.search(text)
        if artifact:
            totals["crashes"].append((artifact.group(1), _crash_summary(text), str(log)))
            print(f"  {target}: crash -> {artifact.group(1)} ({_crash_summary(text)})", flush=True)
            if len(totals["crashes"]) >= 20:
                break
        elif process.returncode != 0:
            print(f"  {target}: fuzzer exited with status {process.returncode}; see {log}", flush=True)
            break
    return totals


def _crash_summary(text: str) -> str:
    for pattern in (r"=== Uncaught Python exception: ===\n(.+)", r"ERROR: libFuzzer: (.+)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()[:200]
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="total time for all targets (default 600)")
    parser.add_argument("--only", action="append", choices=TARGETS, help="run only this target (repeatable)")
    parser.add_argument("--corpus", type=Path, default=HERE / "corpus")
    parser.add_argument("--crashes", type=Path, default=HERE / "crashes")
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take (a hang)")
    parser.add_argument("--rss-mb", type=int, default=2048, help="memory limit of the fuzzing process")
    args = parser.parse_args(argv)
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: pip install atheris (or pip install -e '.[fuzz]')", file=sys.stderr)
        return 2
    targets = args.only or list(TARGETS)
    ensure_corpus(args.corpus)
    share = args.seconds / len(targets)
    results = []
    for target in targets:
        print(f"fuzzing {target} for {share:.0f} s ...", flush=True)
        results.append(run_target(target, share, args.corpus, args.crashes, args.timeout, args.rss_mb,
                                  args.crashes / "logs"))
    print()
    print(f"{'target':<12} {'executions':>12} {'exec/s':>8} {'seconds':>8} {'new units':>10} {'crashes':>8}")
    for result in results:
        rate = result["executions"] / result["seconds"] if result["seconds"] else 0.0
        print(f"{result['target']:<12} {result['executions']:>12} {rate:>8.0f} {result['seconds']:>8.0f} "
              f"{result['new_units']:>10} {len(result['crashes']):>8}")
    total = sum(result["executions"] for result in results)
    crashes = [crash for result in results for crash in result["crashes"]]
    print(f"{'total':<12} {total:>12}{'':>38}{len(crashes):>8}")
    for path, summary, log in crashes:
        print(f"crash: {path}: {summary} (log {log})")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
