"""TLS decryption cost: the analysis pass over a large TLS transfer beside its plaintext twin, one run.

    sudo .venv/bin/python fixtures/record_tls.py bench     # records the captures (once; root)
    python bench/tls_bench.py [--folder /tmp/dicomtui-tls-bench]

The captures (``fixtures/record_tls.py``'s ``bench`` scenario): one pynetdicom association
storing 20 CT objects of 4 MB each, over plain TCP, TLS 1.2 ECDHE-AES-128-GCM and TLS 1.3
AES-256-GCM, with the key logs Python's ``ssl`` wrote.  Each is analysed (no rules) in a fresh
child process, in one run, and the wire MB/s, CPU seconds and the ratio to plaintext are printed;
also the TLS captures without their key log (records framed and counted, nothing decrypted).
On a shared machine only the ratios measured in the same run mean much.  Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time, resource
from dicomtui.core.pipeline import analyze, AnalysisConfig
from dicomtui.cli import make_host
from dicomtui.cli.builtins import DECODING_PLUGINS
path, keylog = sys.argv[1], sys.argv[2]
options = {"tls.keylog_file": keylog} if keylog else {}
host = make_host(builtins=DECODING_PLUGINS)
start, cpu = time.perf_counter(), time.process_time()
analysis = analyze([path], AnalysisConfig(options=options), host)
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
payload = sum(c.streams[0].end + c.streams[1].end for c in analysis.connections)
print(json.dumps({"wall": wall, "cpu": cpu, "messages": len(analysis.messages), "inner_bytes": payload,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(path: Path, keylog: str) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), keylog], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{path.name}: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default=os.environ.get("TLS_BENCH_OUT", "/tmp/dicomtui-tls-bench"))
    args = parser.parse_args()
    folder = Path(args.folder)
    cases = [("plaintext", "bench_plain.pcap", ""),
             ("TLS 1.2 AES-128-GCM, key log", "bench_tls12_gcm.pcap", "bench_tls12_gcm.keys"),
             ("TLS 1.3 AES-256-GCM, key log", "bench_tls13.pcap", "bench_tls13.keys"),
             ("TLS 1.2, no key log", "bench_tls12_gcm.pcap", ""),
             ("TLS 1.3, no key log", "bench_tls13.pcap", "")]
    missing = [name for _label, name, _keys in cases if not (folder / name).exists()]
    if missing:
        print(f"missing {', '.join(missing)} in {folder}: run  sudo .venv/bin/python fixtures/record_tls.py bench",
              file=sys.stderr)
        return 1
    base = None
    print(f"{'capture':32} {'MB':>7} {'wall s':>7} {'cpu s':>7} {'MB/s':>7} {'x plain':>8} {'msgs':>5} {'RSS MB':>7}")
    for label, name, keys in cases:
        size = (folder / name).stat().st_size / 1e6
        figures = run(folder / name, str(folder / keys) if keys else "")
        rate = size / figures["cpu"]
        if base is None:
            base = figures["cpu"] / size
        print(f"{label:32} {size:7.1f} {figures['wall']:7.2f} {figures['cpu']:7.2f} {rate:7.1f} "
              f"{figures['cpu'] / size / base:8.2f} {figures['messages']:5d} {figures['rss_mb']:7.0f}")
    print("MB/s: capture-file megabytes per CPU second; x plain: CPU seconds per MB over the plaintext's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
