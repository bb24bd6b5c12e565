"""DICOM over TLS captured live, the key log written by the peer while the capture runs.

The key log file does not exist when dicomtui starts; Python's ``ssl`` in the peer creates it and
writes each secret as the handshake goes, after some of the records they decrypt have already
been captured.  Everything must still be decrypted: the association's PDUs appear as on plaintext.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_live_capture import _in_ns, _start_dicomtui, _stop, _tool_available, netns  # noqa: F401 (fixture)

PEER = Path(__file__).resolve().parent / "live_tls_peer.py"


@pytest.mark.skipif(not _tool_available("tcpdump"), reason="tcpdump not installed")
@pytest.mark.parametrize("version", ["12", "13"])
def test_a_key_log_written_during_a_live_capture_decrypts_it(tmp_path, netns, version):  # noqa: F811
    keys = tmp_path / "keys.log"
    process, out, err = _start_dicomtui(netns, "-i", "lo", "-f", "tcp port 2762", "--capture-tool", "tcpdump",
                                        "--summary", "--tls-keylog", str(keys))
    try:
        peer = subprocess.run(_in_ns(netns, sys.executable, str(PEER), version, str(keys)), capture_output=True,
                              text=True, timeout=60)
        assert "store 0x0000, store 0x0000" in peer.stdout, peer.stderr
        out.wait_for(lambda line: "A-RELEASE response" in line, 30)
    finally:
        _stop(process, err)
    lines = [line for _time, line in out.lines]
    assert sum("C-STORE-RSP" in line for line in lines) == 2 and sum("C-STORE-RQ" in line for line in lines) == 2
    assert keys.exists()
