"""Issue 24, daily use round two: what a new user hit (warnings, Ctrl-C, export default, figures, setup)."""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pydicom
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
IMPLICIT_LE = "1.2.840.10008.1.2"


def _invalid_ui_dataset() -> bytes:
    value = b"1.2.abc\0"  # letters in a UID: pydicom warns when it converts the value
    return struct.pack("<HHI", 0x0008, 0x0018, len(value)) + value


# -- 4: only pydicom's own warnings about the value decoded are data problems -------------------


def test_warnings_raised_elsewhere_during_a_decode_are_not_data_problems(monkeypatch):
    from dicomtui.plugins.dataset import decode_dataset

    original = pydicom.filereader.read_dataset

    def read_with_a_noisy_neighbour(*args, **kwargs):
        # What the garbage collector or another thread may raise while the decoder runs.
        warnings.warn("unclosed file <_io.BufferedReader name='capture.pcap'>", ResourceWarning)
        warnings.warn("something about this program, not the capture", UserWarning)
        return original(*args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_dataset", read_with_a_noisy_neighbour)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        decoded = decode_dataset(_invalid_ui_dataset(), IMPLICIT_LE)
    assert [text.split(".")[0] for text in decoded.warnings] == ["Invalid value for VR UI: '1"]


def test_decoding_on_two_threads_at_once_leaves_the_process_warning_state_alone(monkeypatch):
    from dicomtui.core.protocol.datasets import parse_dataset

    original = pydicom.filereader.read_dataset
    first_inside, second_inside, second_may_leave = threading.Event(), threading.Event(), threading.Event()

    def read_in_turns(*args, **kwargs):
        if threading.current_thread().name == "first":
            first_inside.set()
            second_inside.wait(30)
        elif threading.current_thread().name == "second":
            second_inside.set()
            second_may_leave.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_dataset", read_in_turns)
    parse_dataset(_invalid_ui_dataset(), IMPLICIT_LE)  # installs what is installed once
    shown, filters = warnings.showwarning, list(warnings.filters)
    first = threading.Thread(target=parse_dataset, args=(_invalid_ui_dataset(), IMPLICIT_LE), name="first")
    second = threading.Thread(target=parse_dataset, args=(_invalid_ui_dataset(), IMPLICIT_LE), name="second")
    first.start()
    assert first_inside.wait(30)
    second.start()
    first.join(30)  # the first leaves its block while the second is still in its own
    second_may_leave.set()
    second.join(30)
    assert warnings.showwarning is shown and warnings.filters == filters


@pytest.mark.parametrize("mode", [["--summary"], ["--json"], ["--jsonl"], ["--expert"], ["--stats"],
                                  ["--flow", "0"], ["--export", "OUT"], ["--export", "OUT", "--export-format",
                                                                        "dicom-json"]])
def test_no_mode_leaves_a_capture_file_to_the_garbage_collector(mode, tmp_path):
    mode = [str(tmp_path / "out") if part == "OUT" else part for part in mode]
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "always::ResourceWarning", "-m",
                           "dicomtui.core.cli", *mode, str(FIXTURES / "store_dcmtk.pcapng")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr
