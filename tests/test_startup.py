"""Start-up imports only what the mode needs (issue 16).

Timing is the benchmark's business (bench/engine_bench.py); what a test can
pin down is which modules a mode loads: ``--summary`` must not import Textual,
pydicom (its data dictionary and codec), dpkt (pcap needs none of it) or the
rule and exporter plugins, and the copies that make that possible (pydicom's
UID registry read from its file, the group 0000 entries of its dictionary) must
equal pydicom's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtui.core.protocol.dimse import COMMAND_ELEMENTS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

PROBE = r"""
import contextlib, io, json, sys
from dicomtui.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(sys.argv[1:])
heavy = ("pydicom", "dpkt", "textual", "rich", "numpy", "dicomanonymizer", "cryptography", "jinja2")
loaded = sorted({name.split(".")[0] for name in sys.modules if name.split(".")[0] in heavy})
plugins = sorted(name for name in sys.modules if name.startswith("dicomtui.plugins."))
live = sorted(name for name in ("dicomtui.core.pipeline.live", "dicomtui.core.wire.capture_tool",
                                "subprocess") if name in sys.modules)
print(json.dumps({"status": status, "lines": len(out.getvalue().splitlines()), "heavy": loaded,
                  "plugins": plugins, "live": live}))
"""


def probe(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_summary_imports_no_ui_no_pydicom_no_dpkt_no_rules():
    found = probe("--summary", str(FIXTURES / "echo_dcmtk.pcap"))
    assert found["status"] == 0 and found["lines"] == 8
    assert found["heavy"] == []
    assert not [name for name in found["plugins"] if ".rules." in name or ".export." in name]
    assert found["live"] == []  # a file needs no live-capture machinery (nor subprocess)


def test_summary_with_fail_on_runs_the_rules():
    found = probe("--summary", "--fail-on", "error", str(FIXTURES / "reject_abort.pcap"))
    assert found["status"] == 4  # the capture's aborts are errors: the rules ran
    assert any(".rules." in name for name in found["plugins"])


@pytest.mark.parametrize("mode", [["--json"], ["--expert"]])
def test_modes_that_show_findings_still_load_the_rules(mode):
    found = probe(*mode, str(FIXTURES / "reject_abort.pcap"))
    assert any(".rules." in name for name in found["plugins"])
    # The TLS plugin is loaded, but a capture without TLS never needs cryptography (15 MB, 10 ms).
    assert any(".tls." in name for name in found["plugins"]) and "cryptography" not in found["heavy"]


def test_a_tls_capture_with_its_key_log_loads_cryptography():
    tls = FIXTURES / "tls"
    found = probe("--summary", "--tls-keylog", str(tls / "tls12_gcm.keys"), str(tls / "tls12_gcm.pcap"))
    assert found["status"] == 0 and found["lines"] > 8 and "cryptography" in found["heavy"]


def test_uid_registry_read_from_pydicoms_file_equals_pydicoms():
    # In a fresh interpreter: pynetdicom (imported by other tests) adds entries to pydicom's dict.
    check = ("import sys; from dicomtui.core.base.uids import uid_dictionary; from pydicom.uid import "
             "UID_dictionary; mine = uid_dictionary(); sys.exit(0 if mine == UID_dictionary and mine is not "
             "UID_dictionary and len(mine) > 400 else 1)")
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0


def test_command_elements_equal_pydicoms_group_0000():
    from pydicom.datadict import DicomDictionary

    expected = {tag: (entry[0], entry[4]) for tag, entry in DicomDictionary.items() if tag >> 16 == 0}
    assert COMMAND_ELEMENTS == expected


def test_part10_export_of_a_pcap_imports_no_ui_no_pydicom_no_dpkt(tmp_path):
    """Every exporter is registered for --export; only the chosen one may load its libraries
    (the Part 10 writer builds its file meta by hand, a pcap needs no dpkt)."""
    found = probe("--export", str(tmp_path / "out"), str(FIXTURES / "store_large_segments.pcap"))
    assert found["status"] == 0
    assert found["heavy"] == []
    assert any(".export." in name for name in found["plugins"])
