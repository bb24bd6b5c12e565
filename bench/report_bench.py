"""The --html report on a day at a PACS port: page size and build time at sizes ten times apart.

    python bench/report_bench.py [--sizes 1000,10000] [--dir /var/tmp/dicomtui-report] [--repeat 1]

Builds day-shaped captures with bench/make_day.py (the recorded fixtures stamped into thousands
of short associations), then, in one process per size, analyses the day once and times, on the
same analysis: the page (``render_report``: content, redaction, charts, Jinja2), the ``--json``
document beside it (the other whole-capture view, as a yardstick), and writes the page to
``--dir``.  Prints per size: associations, page bytes, bytes per association, page seconds,
``--json`` seconds and their ratio, and how the page time grew from one size to the next.
Machines here are shared and noisy: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

PROBE = r"""
import io, json, sys, time
from dicomtui.cli import make_host
from dicomtui.core.pipeline import analyze
from dicomtui.core.views.document import write_analysis_json
from dicomtui.core.views.report import render_report

analysis = analyze([sys.argv[1]], plugins=make_host())
repeat = int(sys.argv[3])
page_s, json_s = [], []
for _ in range(repeat):
    started = time.perf_counter()
    page = render_report(analysis)
    page_s.append(time.perf_counter() - started)
    started = time.perf_counter()
    write_analysis_json(analysis, io.StringIO(), None)
    json_s.append(time.perf_counter() - started)
with open(sys.argv[2], "w", encoding="utf-8") as stream:
    stream.write(page)
print(json.dumps({"associations": len(analysis.associations), "bytes": len(page.encode("utf-8")),
                  "page_s": min(page_s), "json_s": min(json_s)}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--dir", default="/var/tmp/dicomtui-report")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for size in (int(text) for text in args.sizes.split(",")):
        capture = folder / f"day{size}.pcap"
        if not capture.exists():
            subprocess.run([sys.executable, str(HERE / "make_day.py"), str(capture), "--associations", str(size)],
                           check=True, stdout=subprocess.DEVNULL)
        output = subprocess.run([sys.executable, "-c", PROBE, str(capture), str(folder / f"day{size}.html"),
                                 str(args.repeat)], check=True, capture_output=True, text=True)
        figures = json.loads(output.stdout.strip().splitlines()[-1])
        results.append(figures)
        print(f"{figures['associations']:>7} associations: page {figures['bytes'] / 1e6:.2f} MB "
              f"({figures['bytes'] / figures['associations']:.0f} B/association), built in {figures['page_s']:.2f} s; "
              f"--json document {figures['json_s']:.2f} s (page/json {figures['page_s'] / figures['json_s']:.2f})")
    for before, after in zip(results, results[1:]):
        print(f"{before['associations']} -> {after['associations']} associations: page time x"
              f"{after['page_s'] / before['page_s']:.1f}, size x{after['bytes'] / before['bytes']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
