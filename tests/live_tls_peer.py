"""A pynetdicom SCP and SCU over TLS for tests/test_tls_live.py (run inside its network namespace):
the association of fixtures/record_tls.py, its key log written to the path given.

    python tests/live_tls_peer.py 12|13 KEYLOG
"""

import importlib.util
import ssl
import sys
from pathlib import Path

RECORDER = Path(__file__).resolve().parent.parent / "fixtures" / "record_tls.py"
spec = importlib.util.spec_from_file_location("record_tls", RECORDER)
record_tls = importlib.util.module_from_spec(spec)
spec.loader.exec_module(record_tls)

certs = {path.name: path for path in (RECORDER.parent / "tls" / "certs").iterdir()}
limits = {"minimum": ssl.TLSVersion.TLSv1_3} if sys.argv[1] == "13" else {"maximum": ssl.TLSVersion.TLSv1_2}
print(record_tls.run_association(record_tls.TLS_PORT, record_tls.server_context(certs),
                                 record_tls.client_context(certs, Path(sys.argv[2]), **limits)))
