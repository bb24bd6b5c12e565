"""Display-filter cost on data sets: a data-set filter (first run and repeated) against pydicom.

    python bench/filter_bench.py [--capture FILE] [--objects 400] [--object-kb 512]

Without --capture it writes a capture of ``--objects`` C-STOREs with
bench/make_capture.py.  It analyses it, then times, in one run:

- ``status != 0`` over every PDU (no data set is looked at);
- ``Modality == "CT"`` over every PDU, twice, each time with a fresh compile
  and a fresh PacketIndex, exactly as the filter worker does when the user
  applies the filter again;
- the yardstick: pydicom reading each of the same data sets from bytes
  (``dcmread`` of the data set with its transfer syntax) and reading Modality.

A measurement, not a test: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scan(analysis, text: str) -> tuple[float, int]:
    from dicomtui.core.views.filter import compile_filter
    from dicomtui.core.views.index import PacketIndex

    started = time.perf_counter()
    display_filter = compile_filter(text)
    index = PacketIndex(analysis)
    rows = sum(1 for pdu in analysis.pdus if display_filter.matches(index, pdu))
    return time.perf_counter() - started, rows


def pydicom_yardstick(analysis) -> tuple[float, int]:
    import pydicom
    from pydicom.filereader import read_dataset
    from pydicom.uid import UID

    blobs = []
    for message in analysis.messages:
        if message.has_dataset:
            data = analysis.dataset_bytes(message)
            if data is not None:
                blobs.append((data, UID(message.transfer_syntax or pydicom.uid.ImplicitVRLittleEndian)))
    started = time.perf_counter()
    found = 0
    for data, syntax in blobs:
        dataset = read_dataset(io.BytesIO(data), syntax.is_implicit_VR, syntax.is_little_endian)
        found += dataset.get("Modality") == "CT"
    return time.perf_counter() - started, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture")
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--object-kb", type=int, default=512)
    parser.add_argument("--template", default="CT_small.dcm",
                        help="DICOM file (or pydicom test file name) every object copies; '' for the "
                             "synthetic CT header of make_capture.py")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from dicomtui.cli import make_host
    from dicomtui.core.pipeline import AnalysisConfig, analyze

    path = args.capture
    scratch = None
    if path is None:
        import make_capture

        handle = tempfile.NamedTemporaryFile(prefix="dicomtui-filter-bench-", suffix=".pcap", delete=False)
        scratch = path = handle.name
        template = args.template or None
        if template and not os.path.exists(template):
            from pydicom.data import get_testdata_file

            template = get_testdata_file(template)
        per_object_kb = (os.path.getsize(template) / 1024 + 1) if template else args.object_kb
        size_mb = args.objects * per_object_kb * 1.12 / 1024
        with handle:
            make_capture.generate(handle, size_mb, args.object_kb, 1, 1, 16384, 1448, template)
    try:
        analysis = analyze([path], AnalysisConfig(), make_host())
        datasets = sum(1 for message in analysis.messages if message.has_dataset)
        print(f"capture: {os.path.getsize(path) >> 20} MiB, {len(analysis.pdus):,} PDUs, {datasets} data sets")
        seconds, rows = scan(analysis, "status != 0")
        print(f"status != 0              {seconds:6.2f} s ({rows} rows)")
        for attempt in ("first", "repeated"):
            seconds, rows = scan(analysis, 'Modality == "CT"')
            print(f"Modality == \"CT\" {attempt:<8} {seconds:6.2f} s ({rows} rows)")
        seconds, found = pydicom_yardstick(analysis)
        print(f"pydicom read_dataset     {seconds:6.2f} s ({found} CT)")
    finally:
        if scratch:
            os.unlink(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
