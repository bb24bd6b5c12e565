"""The DICOM JSON exporter (``dicom-json``): each data set as PS3.18 Annex F JSON.

One ``.json`` file per data set, named like the Part 10 exporter's files.  The
data set bytes are parsed by the shared data-set codec
(``dicomtui.core.protocol.datasets``: bounded inflate, character sets) in the
transfer syntax of the message, and written with ``Dataset.to_json_dict``; a
value that does not convert (an IS of "1A") is written as UN bytes and named
in the summary rather than losing the object.  Binary values (OB, OW, OF, UN, ...) up to
``json_bulk_threshold`` bytes (``-o json_bulk_threshold:BYTES``, default 64 KiB)
are inline base64 (``InlineBinary``); larger ones go to a ``.bulk-N.bin`` file
next to the JSON, referenced by a relative ``BulkDataURI``, so a 500 MB
multi-frame image does not become 700 MB of base64.

Unlike Part 10 export this holds one decoded object in memory at a time.
"""

from __future__ import annotations

import os

from dicomtui import hookimpl
from dicomtui.core.api.export import (
    SKIP_TOO_SMALL,
    WRITES_OBJECTS,
    ExportOptions,
    ExportResult,
    OutputFolder,
    Progress,
    error_text,
    object_name,
)
from dicomtui.core.base.library_warnings import pydicom_warnings
from dicomtui.core.base.limits import Limits
from dicomtui.core.base.safe_text import safe_json, safe_text

from .part10 import SKIP_NO_SYNTAX, selected_messages

DEFAULT_BULK_THRESHOLD = 64 * 1024


def parse_dataset(data: bytes, transfer_syntax: str, limits: Limits | None = None):
    """The pydicom Dataset of raw data-set bytes, through the shared codec, every value converted.

    Returns ``(dataset, notes)``: ``notes`` names values kept as raw bytes because they do not
    convert, and sums up pydicom's warnings about values.  Raises ValueError when the data set does not parse (or inflates past the limit).
    """
    # Imported here: loading this exporter (every --export registers it) must not cost pydicom's
    # import (0.2 s) when another format is chosen.
    from dicomtui.core.protocol import datasets as codec

    parsed = codec.parse_dataset(data, transfer_syntax, limits or Limits())
    if parsed.dataset is None or parsed.problems:
        raise ValueError("; ".join(parsed.problems) or "data set does not parse")
    kept = codec.convert_all(parsed)
    if parsed.warnings:  # pydicom's complaints about values, collected by the codec: said, not printed
        kept.append(f"pydicom reported {len(parsed.warnings)} problem(s) with values, e.g. "
                    f"{safe_text(parsed.warnings[0])[:200]}")
    return parsed.dataset, kept


class DicomJsonExporter:
    name = "dicom-json"
    capabilities = frozenset({WRITES_OBJECTS})
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

            with pydicom_warnings():  # the codec records pydicom's warnings (they become notes)
                dataset, kept_raw = parse_dataset(data, message.transfer_syntax, analysis.config.limits)
                document = dataset.to_json_dict(bulk_data_threshold=threshold,
                                                bulk_data_element_handler=bulk_handler)
        except Exception as exc:  # pydicom raises many kinds on malformed data sets
            result.skipped.append((message.index, f"not decodable as {message.transfer_syntax}: "
                                                  f"{type(exc).__name__}: {exc}"))
            return
        result.notes += [f"message {message.index}: {note}" for note in kept_raw]
        # Bulk files first, so the URIs in the JSON name the files as actually claimed.
        renamed = {}
        bulk_paths = []
        try:
            for bulk_name, value in bulk:
                path, stream = folder.open_new(bulk_name)
                with stream:
                    stream.write(value)
                bulk_paths.append(path)
                renamed[bulk_name] = path.name
                result.bytes_written += len(value)
            if renamed:
                _rewrite_uris(document, renamed)
            encoded = safe_json(document, indent=1, ensure_ascii=False).encode("utf-8")
            path, stream = folder.open_new(name)
            with stream:
                stream.write(encoded)
        except OSError as exc:
            # Bulk files without their JSON would be orphans: the object is not exported at all.
            for bulk_path in bulk_paths:
                _remove(bulk_path)
            result.errors.append(f"message {message.index}: {error_text(exc)}")
            return
        result.bytes_written += len(encoded)
        result.written.append((str(path), message.index))


def _remove(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


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
