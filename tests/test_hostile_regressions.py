"""Every input a fuzzer once broke the program with, replayed through its harness.

Files in fixtures/fuzz-regressions/ are named ``<target>-<what>.bin``; the
target is one of tests/fuzz/harnesses.py's ``TARGETS``.  Each must now pass
its harness: no exception, every checked property holding.  The seed inputs
of the fuzzers (the fixtures) are replayed too, so a harness that breaks on
ordinary traffic fails here before anyone runs a fuzzer.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz import harnesses  # noqa: E402

REGRESSIONS = Path(__file__).resolve().parent.parent / "fixtures" / "fuzz-regressions"
FIXTURES = REGRESSIONS.parent


def _regression_files():
    return sorted(path for path in REGRESSIONS.glob("*.bin"))


@pytest.mark.parametrize("path", _regression_files(), ids=lambda path: path.name)
def test_fuzz_regression_input_passes_its_harness(path):
    target = path.name.split("-", 1)[0]
    assert target in harnesses.TARGETS, f"{path.name}: unknown target {target!r}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        harnesses.TARGETS[target](path.read_bytes())


def test_every_regression_file_names_a_target():
    for path in REGRESSIONS.iterdir():
        assert path.suffix == ".bin" and path.name.split("-", 1)[0] in harnesses.TARGETS, path.name


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.pcap")) + sorted(FIXTURES.glob("*.pcapng")),
                         ids=lambda path: path.name)
def test_fixture_captures_pass_the_capture_harness(path):
    assert harnesses.analyse_bytes(path.read_bytes()) is not None
