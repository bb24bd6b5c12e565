"""Time, peak memory and outcome of the CLI on the hostile inputs of issue 17 (and 18 item 4).

    python bench/hostile_probe.py [--workdir DIR] [--timeout S] [--only NAME ...]

Builds each input (tests/hostile_inputs.py, full size) once into DIR, then runs
``python -m dicomtui.cli`` on it in each mode named below, one at a time,
and prints one line per run: wall seconds, CPU seconds (user + system; the
machine is shared, so CPU time is the steadier figure), peak RSS of the child (MB), exit status,
and whether a traceback appeared, with the last line of stderr.  The
dicomtui imported is whatever PYTHONPATH names, so the same script measures a
checkout before and after a change.  Figures go into docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import hostile_inputs as inputs  # noqa: E402

GB = 1 << 30

CASES = {
    # name: (file name, builder, [(mode label, extra args), ...])
    "resync": ("resync-storm.pcap", lambda: inputs.resync_storm(400), [("summary", ["--summary"])]),
    "pcapng-epb12": ("short-epb.pcapng", lambda: inputs.pcapng_short_last_block(6, 12), [("summary", ["--summary"])]),
    "pcapng-spb12": ("short-spb.pcapng", lambda: inputs.pcapng_short_last_block(3, 12), [("summary", ["--summary"])]),
    "pcapng-idb12": ("short-idb.pcapng", lambda: inputs.pcapng_short_last_block(1, 12), [("summary", ["--summary"])]),
    "pcapng-shb": ("damaged-shb.pcapng", inputs.pcapng_damaged_shb_after_records, [("summary", ["--summary"])]),
    "gzip-truncated": ("truncated.pcap.gz", inputs.gzip_truncated, [("summary", ["--summary"])]),
    "ts-future": ("year-38000.pcapng", inputs.pcapng_far_future,
                  [("pcap", ["--export", "{out}", "--export-format", "pcap"]),
                   ("csv", ["--export", "{out}", "--export-format", "transactions-csv"])]),
    "ts-negative": ("tsoffset-minus-4e9.pcapng", inputs.pcapng_negative_offset,
                    [("pcap", ["--export", "{out}", "--export-format", "pcap"]),
                     ("json", ["--export", "{out}", "--export-format", "transactions-json"])]),
    "long-uid": ("long-uid.pcap", inputs.long_uid_store,
                 [("export", ["-o", "max_command:200000", "--export", "{out}"])]),
    "warnings": ("invalid-ui.pcap", inputs.invalid_ui_store,
                 [("expert", ["--expert"]), ("export", ["--export", "{out}"]),
                  ("dicom-json", ["--export", "{out}", "--export-format", "dicom-json"])]),
    "deflate1": ("deflate-bomb-1gb.pcap", lambda: inputs.deflate_bombs(1, GB),
                 [("summary", ["--summary"]), ("expert", ["--expert"]), ("export", ["--export", "{out}"]),
                  ("dicom-json", ["--export", "{out}", "--export-format", "dicom-json"])]),
    "deflate5": ("deflate-bomb-5x1gb.pcap", lambda: inputs.deflate_bombs(5, GB), [("expert", ["--expert"])]),
    "flood": ("associate-flood-200k.pcap", lambda: inputs.associate_flood(200_000),
              [("summary", ["--summary"]), ("json", ["--json"])]),
    "tiny": ("tiny-pdus-1m.pcap", lambda: inputs.tiny_pdus(1_000_000),
             [("summary", ["--summary"]), ("expert", ["--expert"]), ("json", ["--json"]),
              ("export", ["--export", "{out}"])]),
    "almost1": ("almost-dicom-1.pcap", lambda: inputs.almost_dicom(1), [("summary", ["--summary"])]),
    "almost20": ("almost-dicom-20.pcap", lambda: inputs.almost_dicom(20), [("summary", ["--summary"])]),
    "ooo": ("out-of-order-200k.pcap", lambda: inputs.out_of_order_holes(200_000), [("summary", ["--summary"])]),
    "gzip-bomb": ("gzip-bomb-6gb.pcap.gz", lambda: inputs.gzip_bomb(6 * GB), [("summary", ["--summary"])]),
}


def run(args: list[str], timeout: float) -> tuple[float, float, str, bool, str]:
    errors = tempfile.TemporaryFile()  # not a pipe: a long traceback would fill it and block the child
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "dicomtui.cli", *args], stdout=subprocess.DEVNULL,
                               stderr=errors, start_new_session=True)
    deadline = started + timeout
    status = None
    while status is None:
        pid, raw, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            status = os.waitstatus_to_exitcode(raw)
            break
        if time.monotonic() > deadline:
            os.killpg(process.pid, 9)
            pid, raw, usage = os.wait4(process.pid, 0)
            status = "timeout"
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    errors.seek(0)
    stderr = errors.read().decode("utf-8", "replace")
    errors.close()
    process.returncode = 0  # reaped above
    lines = [line for line in stderr.splitlines() if line.strip()]
    return (elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, str(status), "Traceback" in stderr,
            (lines[-1] if lines else "")[:150])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/dicomtui-probe")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--only", nargs="*")
    options = parser.parse_args()
    workdir = Path(options.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name, (file_name, build, modes) in CASES.items():
        if options.only and name not in options.only:
            continue
        path = workdir / file_name
        if not path.exists():
            path.write_bytes(build())
        for label, extra in modes:
            out = workdir / f"out-{name}-{label}"
            if out.exists():
                subprocess.run(["rm", "-rf", str(out)], check=False)
            args = [part.replace("{out}", str(out)) for part in extra] + [str(path)]
            elapsed, cpu, rss, status, traceback, last = run(args, options.timeout)
            print(f"{name:15} {label:10} {path.stat().st_size / 1e6:8.2f} MB  {elapsed:7.2f} s  {cpu:7.2f} s CPU  "
                  f"{rss:7.0f} MB RSS  "
                  f"exit {status:7} {'TRACEBACK ' if traceback else ''}| {last}", flush=True)


if __name__ == "__main__":
    main()
