"""Run two dicomtui trees' CLIs on the same captures and diff their text outputs.

    python bench/compare_outputs.py OLD_PYTHONPATH NEW_PYTHONPATH [--workdir DIR] [CAPTURE...]

Each PYTHONPATH holds a ``dicomtui`` package (a symlink to a worktree).  With no
captures given, the fixtures are used, plus generated ones that reach the
decoder's findings: the hostile captures of ``tests/hostile_inputs.py`` (small
sizes) and the fixtures with TCP payload bytes flipped (fixed seeds).  For each
capture, ``--json``, ``--summary`` and ``--expert`` must be byte-identical
(stdout, stderr and exit status).  A refactoring that must not change any output
(issue 10) is checked with this; exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = (["--json"], ["--summary"], ["--expert"])


def _flipped(data: bytes, seed: int, flips: int) -> bytes:
    """``data`` with ``flips`` bytes changed past the pcap header (payload bytes mostly)."""
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(flips):
        at = rng.randrange(24, len(out))
        out[at] = rng.randrange(256)
    return bytes(out)


def generated(workdir: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    import hostile_inputs as hostile

    made = {
        "resync_storm.pcap": hostile.resync_storm(30),
        "long_uid_store.pcap": hostile.long_uid_store(2000),
        "two_stores.pcap": hostile.two_stores(),
        "invalid_ui_store.pcap": hostile.invalid_ui_store(),
        "deflate_bombs.pcap": hostile.deflate_bombs(1, 1 << 20),
        "associate_flood.pcap": hostile.associate_flood(40),
        "tiny_pdus.pcap": hostile.tiny_pdus(3000, 100),
        "almost_dicom.pcap": hostile.almost_dicom(2, 40),
        "out_of_order_holes.pcap": hostile.out_of_order_holes(300),
    }
    for fixture in sorted((ROOT / "fixtures").glob("*.pcap")):
        data = fixture.read_bytes()
        for seed in range(3):
            made[f"flip{seed}_{fixture.name}"] = _flipped(data, seed, 6 + 6 * seed)
    paths = []
    for name, data in made.items():
        path = workdir / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def run(pythonpath: str, args: list[str]) -> tuple[int, bytes, bytes]:
    env = dict(os.environ, PYTHONPATH=pythonpath, XDG_CONFIG_HOME=str(Path("/tmp/compare-outputs-config")))
    done = subprocess.run([sys.executable, "-m", "dicomtui.cli", *args], env=env, capture_output=True, check=False,
                          timeout=600)
    return done.returncode, done.stdout, done.stderr


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--workdir", default="/tmp/compare-outputs")
    parser.add_argument("captures", nargs="*")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.captures:
        captures = [Path(capture) for capture in args.captures]
    else:
        fixtures = ROOT / "fixtures"
        captures = sorted(fixtures.glob("*.pcap")) + sorted(fixtures.glob("*.pcapng"))
        captures += sorted((fixtures / "fuzz-regressions").glob("*.bin")) + generated(workdir)
    differing = 0
    findings = 0
    for capture in captures:
        for mode in MODES:
            old = run(args.old, [*mode, str(capture)])
            new = run(args.new, [*mode, str(capture)])
            if mode == ["--expert"]:
                findings += old[1].count(b"\n")
            if old != new:
                differing += 1
                print(f"DIFFERS {' '.join(mode)} {capture.name}: exit {old[0]} vs {new[0]}, "
                      f"{len(old[1])} vs {len(new[1])} bytes of output")
    print(f"{len(captures)} captures x {len(MODES)} modes compared, {differing} differ "
          f"({findings} expert lines on the old side)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
