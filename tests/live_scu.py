"""A pynetdicom SCU for the live-capture tests, driven step by step through stdin.

    python live_scu.py HOST PORT FILE...

Associates, sends a C-ECHO and prints ``ECHOED``; then waits for a line on
stdin with the association still open (so a test can check that results
appear while it is open), sends a C-STORE of every FILE, prints ``STORED``,
releases and prints ``DONE``.
"""

import sys

from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import Verification

host, port, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
datasets = [dcmread(path) for path in files]
ae = AE(ae_title="LIVESCU")
ae.add_requested_context(Verification)
for dataset in datasets:
    ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
association = ae.associate(host, port, ae_title="STORESCP")
if not association.is_established:
    print("NOT ESTABLISHED", flush=True)
    sys.exit(1)
status = association.send_c_echo()
print("ECHOED", status.Status, flush=True)
sys.stdin.readline()
for dataset in datasets:
    status = association.send_c_store(dataset)
    print("STORE", status.Status if status else "none", flush=True)
print("STORED", flush=True)
association.release()
print("DONE", flush=True)
