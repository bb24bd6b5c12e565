"""The DICOM JSON exporter (``dicom-json``): each data set as PS3.18 Annex F JSON.

One ``.json`` file per data set, named like the Part 10 exporter's files.  The
data set bytes are parsed with pydicom in the transfer syntax negotiated for the
message (deflated data sets are inflated first) and written with
``Dataset.to_json_dict``.  Binary values (OB, OW, OF, UN, ...) up to
``json_bulk_threshold`` bytes (``-o json_bulk_threshold:BYTES``, default 64 KiB)
are inline base64 (``InlineBinary``); larger ones go to a ``.bulk-N.bin`` file
next to the JSON, referenced by a relative ``BulkDataURI``, so a 500 MB
multi-frame image does not become 700 MB of base64.

Unlike Part 10 export this holds one decoded object in memory at a time.
"""

from __future__ import annotations

import json
import warnings
import zlib
from io import BytesIO

from dicomtui import hookimpl
from dicomtui.core.api.export import (
    ExportOptions,
    ExportResult,
    OutputFolder,
    Progress,
    object_name,
)
from dicomtui.core.base.limits import Limits
from pydicom.filereader import read_dataset

from .part10 import SKIP_NO_SYNTAX, SKIP_TOO_SMALL, selected_messages

DEFLATED = "1.2.840.10008.1.2.1.99"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_BIG = "1.2.840.10008.1.2.2"
DEFAULT_BULK_THRESHOLD = 64 * 1024


def parse_dataset(data: bytes, transfer_syntax: str, max_inflated: int = Limits().max_inflated_bytes):
    """The pydicom Dataset of raw data-set bytes in a transfer syntax.

    A deflated data set inflating past ``max_inflated`` bytes (a deflate bomb) raises ValueError.
    """
    if transfer_syntax == DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        data = inflater.decompress(data, max_inflated)
        if inflater.unconsumed_tail:
            raise ValueError(f"deflated data set inflates beyond the {max_inflated}-byte limit")
    implicit = transfer_syntax == IMPLICIT_LITTLE
    little = transfer_syntax != EXPLICIT_BIG
    dataset = read_dataset(BytesIO(data), implicit, little)
    # to_json_dict needs the encoding for values pydicom left undecoded.
    dataset.set_original_encoding(implicit, little, dataset.get("SpecificCharacterSet", "ISO_IR 6"))
    return dataset


class DicomJsonExporter:
    name = "dicom-json"
    description = "DICOM JSON (PS3.18 Annex F), one file per data set; large binary values as bulk files"

    def export(self, analysis, outdir: str, options: ExportOptions, progress: Progress | None = None
               ) -> ExportResult:
        folder = OutputFolder(outdir, options.overwrite)
        result = ExportResult()
        threshold = analysis.config.option("json_bulk_threshold", DEFAULT_BULK_THRESHOLD)
        work = [message for message in selected_messages(analysis, options) if message.has_dataset]
        for done, message in enumerate(work, 1):
            self._export_one(analysis, message, folder, options, threshold, result)
            if progress is not None:
                progress(done, len(work))
        if progress is not None and not work:
            progress(0, 0)
        result.replaced = list(folder.replaced)
        return result

    def _export_one(self, analysis, message, folder: OutputFolder, options: ExportOptions, threshold: int,
                    result: ExportResult) -> None:
        if not message.complete:
            # A data set with a hole cannot be parsed reliably, so even --include-incomplete skips it.
            result.skipped.append((message.index, f"incomplete: {message.incomplete_reason or 'not captured whole'}"))
            return
        if message.dataset_length < options.min_size:
            result.skipped.append((message.index, SKIP_TOO_SMALL))
            return
        if not message.transfer_syntax:
            result.skipped.append((message.index, SKIP_NO_SYNTAX))
            return
        data = analysis.dataset_bytes(message)
        if data is None:
            result.skipped.append((message.index, "incomplete: bytes missing from the capture"))
            return
        try:
            bulk: list[tuple[str, bytes]] = []
            name = object_name(message, "", "json")

            def bulk_handler(element) -> str:
                bulk_name = f"{name[:-5]}.bulk-{len(bulk) + 1}.bin"
                bulk.append((bulk_name, element.value))
                return bulk_name

            with warnings.catch_warnings():  # pydicom's warnings quote values from the capture
                warnings.simplefilter("ignore")
                dataset = parse_dataset(data, message.transfer_syntax, analysis.config.limits.max_inflated_bytes)
                document = dataset.to_json_dict(bulk_data_threshold=threshold,
                                                bulk_data_element_handler=bulk_handler)
        except Exception as exc:  # pydicom raises many kinds on malformed data sets
            result.skipped.append((message.index, f"not decodable as {message.transfer_syntax}: "
                                                  f"{type(exc).__name__}"))
            return
        # Bulk files first, so the URIs in the JSON name the files as actually claimed.
        renamed = {}
        for bulk_name, value in bulk:
            path, stream = folder.open_new(bulk_name)
            with stream:
                stream.write(value)
            renamed[bulk_name] = path.name
            result.bytes_written += len(value)
        if renamed:
            _rewrite_uris(document, renamed)
        encoded = json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8")
        path, stream = folder.open_new(name)
        with stream:
            stream.write(encoded)
        result.bytes_written += len(encoded)
        result.written.append((str(path), message.index))


def _rewrite_uris(node, renamed: dict[str, str]) -> None:
    if isinstance(node, dict):
        uri = node.get("BulkDataURI")
        if isinstance(uri, str) and uri in renamed:
            node["BulkDataURI"] = renamed[uri]
        for value in node.values():
            _rewrite_uris(value, renamed)
    elif isinstance(node, list):
        for value in node:
            _rewrite_uris(value, renamed)


@hookimpl
def dicomtui_register_exporters(register) -> None:
    register(DicomJsonExporter())
