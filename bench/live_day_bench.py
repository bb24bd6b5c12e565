"""Live capture of a PACS port under a day's mix, sent by real peers as fast as they go.

    python bench/live_day_bench.py [--seconds 30] [--clients 4] [--port 11112] [--tool dumpcap]

Starts dcmtk's ``storescp`` on loopback, then ``dicomtui -i lo -f "tcp port PORT" --jsonl`` (its
capture tool: dumpcap, or tcpdump), then ``--clients`` shell loops that each run, over and over
until ``--seconds`` have passed, the day's mix with dcmtk's own tools (by absolute path, not the
console scripts pynetdicom installs in a venv): C-ECHO (half of the runs), a single-object C-STORE
(CT_small.dcm from pydicom's test files), a C-FIND (which storescp refuses: an A-ASSOCIATE-RJ), in
the proportions of bench/make_day.py.  Then it stops dicomtui with SIGINT and prints:

- associations the clients opened (counted from their runs) and associations dicomtui saw;
- packets dropped as dumpcap or tcpdump report them;
- associations per second over the run, and dicomtui's CPU seconds and peak RSS: the
  associations per second one core sustains is runs / (dicomtui CPU seconds) when it kept up.

Needs root or capture rights, and dcmtk (Debian package).  Machines here are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ECHOSCU, STORESCU, FINDSCU, STORESCP = "/usr/bin/echoscu", "/usr/bin/storescu", "/usr/bin/findscu", "/usr/bin/storescp"


def client_loop(port: int, until: float, dicom_file: str, index: int) -> str:
    """A shell loop: each pass picks echo (50 %), store (30 %) or a refused find (20 %) and logs it."""
    return f"""
n=0
while [ $(date +%s) -lt {int(until)} ]; do
  r=$(( (n * 7 + {index} * 3) % 10 ))
  if [ $r -lt 5 ]; then {ECHOSCU} -aet MOD{index:04d} -aec STORESCP 127.0.0.1 {port} && echo echo
  elif [ $r -lt 8 ]; then {STORESCU} -aet MOD{index:04d} -aec STORESCP 127.0.0.1 {port} {dicom_file} && echo store
  else {FINDSCU} -aet MOD{index:04d} -aec STORESCP -S -k QueryRetrieveLevel=STUDY 127.0.0.1 {port} >/dev/null 2>&1; echo find
  fi
  n=$((n + 1))
done
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=11112)
    parser.add_argument("--tool", default="dumpcap", choices=("dumpcap", "tcpdump"))
    args = parser.parse_args()
    for tool in (ECHOSCU, STORESCU, FINDSCU, STORESCP):
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} missing: apt-get install dcmtk")
    from pydicom.data import get_testdata_file

    dicom_file = get_testdata_file("CT_small.dcm")
    work = Path(tempfile.mkdtemp(prefix="dicomtui-live-day-"))
    scp = subprocess.Popen([STORESCP, "-od", str(work), "--ignore", str(args.port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = open(work / "out.jsonl", "wb")
    err = open(work / "err.txt", "wb")
    dicomtui = subprocess.Popen([sys.executable, "-m", "dicomtui.cli", "-i", "lo", "-f", f"tcp port {args.port}",
                                 "--capture-tool", args.tool, "--jsonl"], stdout=out, stderr=err)
    time.sleep(3)  # the capture tool is up (dumpcap prints its banner first)
    started = time.time()
    until = started + args.seconds
    clients = [subprocess.Popen(["bash", "-c", client_loop(args.port, until, dicom_file, index)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
               for index in range(args.clients)]
    runs: dict[str, int] = {}
    for client in clients:
        for line in client.communicate()[0].decode().split():
            runs[line] = runs.get(line, 0) + 1
    elapsed = time.time() - started
    time.sleep(2)  # the last packets through the capture tool
    dicomtui.send_signal(signal.SIGINT)
    _pid, _status, usage = os.wait4(dicomtui.pid, 0)
    scp.terminate()
    scp.wait()
    out.close()
    err.close()
    associations = set()
    dropped = None
    with open(work / "out.jsonl") as lines:
        for line in lines:
            record = json.loads(line)
            if record.get("object") == "association":
                associations.add(record.get("id"))
            elif record.get("object") == "end":
                dropped = record.get("dropped")
    summary = (work / "err.txt").read_text().strip().splitlines()
    opened = sum(runs.values())
    cpu = usage.ru_utime + usage.ru_stime
    print(f"clients: {args.clients} loops for {elapsed:.1f} s: {opened} associations opened "
          f"({', '.join(f'{k} {v}' for k, v in sorted(runs.items()))}), {opened / elapsed:.0f} a second")
    print(f"dicomtui --jsonl ({args.tool}): {len(associations)} associations in its output, "
          f"packets dropped by the capture: {dropped}; "
          f"CPU {cpu:.1f} s ({opened / cpu:.0f} associations per CPU second), peak RSS {usage.ru_maxrss / 1024:.0f} MB")
    print("dicomtui said: " + " | ".join(line for line in summary if "packets" in line or "warning" in line))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if len(associations) >= opened else 1


if __name__ == "__main__":
    sys.exit(main())
