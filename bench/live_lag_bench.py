"""How long after a C-ECHO a live --jsonl line says so, per capture tool (issue 24, item 12).

    python bench/live_lag_bench.py dumpcap|tcpdump [--runs 15] [--port 11119]

Starts dcmtk's storescp on loopback and ``dicomtui -i lo --jsonl`` with the chosen capture tool,
runs dcmtk's echoscu ``--runs`` times, and prints how long after each echoscu returned the
C-ECHO-RSP message line came out of dicomtui (negative: before echoscu had exited).  Needs root
or capture rights and dcmtk.  dumpcap 4.0 has no immediate mode: libpcap hands it packets in
blocks, which is most of its lag.
"""
import json
import statistics
import subprocess
import sys
import threading
import time
import argparse
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("tool", choices=("dumpcap", "tcpdump"))
parser.add_argument("--runs", type=int, default=15)
parser.add_argument("--port", type=int, default=11119)
args = parser.parse_args()
tool = args.tool
scp = subprocess.Popen(["/usr/bin/storescp", str(args.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
d = subprocess.Popen([sys.executable, "-m", "dicomtui.cli", "-i", "lo", "-f", f"tcp port {args.port}", "--capture-tool", tool, "--jsonl"],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
arrivals = []
def reader():
    for line in d.stdout:
        rec = json.loads(line)
        if rec.get("object") == "message" and rec.get("command") == "C-ECHO-RSP":
            arrivals.append(time.time())
threading.Thread(target=reader, daemon=True).start()
time.sleep(3)
lags = []
for i in range(args.runs):
    n = len(arrivals)
    subprocess.run(["/usr/bin/echoscu", "127.0.0.1", str(args.port)], check=True)
    done = time.time()
    while len(arrivals) == n and time.time() - done < 3:
        time.sleep(0.002)
    if len(arrivals) > n:
        lags.append(arrivals[-1] - done)
    time.sleep(0.3)
d.send_signal(2); d.wait(10); scp.terminate()
print(tool, f"n={len(lags)} min {min(lags)*1000:.0f} ms median {statistics.median(lags)*1000:.0f} ms max {max(lags)*1000:.0f} ms")
