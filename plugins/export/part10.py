"""The Part 10 exporter (``part10``, the default): every data set as a DICOM file, byte-exact.

Each data set the capture carried (C-STORE and sub-operation stores, C-FIND /
C-GET / C-MOVE identifiers and responses, N-* data sets) becomes one file:
128-byte preamble, ``DICM``, a group 0002 meta header, then the data set bytes
exactly as they travelled in the PDVs.  Nothing is re-encoded: a deflated data
set stays deflated, as PS3.10 stores it, and the meta header names the transfer
syntax negotiated for the message's presentation context.

The data set is streamed from the capture map to the file fragment by fragment
(``Analysis.dataset_pieces``), so memory stays bounded by one PDV whatever
the size of the object or the capture.

Meta header (PS3.10 7.1): Media Storage SOP Class/Instance UID from the
command's Affected (or Requested) SOP Class/Instance UID, falling back to the
request's and to the presentation context's abstract syntax; an artificial
instance UID under dicomtui's own root when the command names none (a C-FIND
identifier has none).  Implementation Class UID and Version Name are
dicomtui's; Source Application Entity Title is the AE that sent the message.
The header is built by hand (it is seven elements, and per-object pydicom
writing would dominate exports of many small objects); tests cross-check it
with ``pydicom.filewriter.write_file_meta_info``.
"""

from __future__ import annotations

import os
import struct

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
from dicomtui.core.base.uids import (
    ARTIFICIAL_COMMAND_INSTANCE_ROOT,
    ARTIFICIAL_COMMAND_SOP_CLASS,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    PROJECT_UID_ROOT,
)

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
# Instance UIDs made up for data sets whose command names none (e.g. C-FIND identifiers).
ARTIFICIAL_DATASET_INSTANCE_ROOT = PROJECT_UID_ROOT + ".3"
PREAMBLE = bytes(128) + b"DICM"
MAX_UID_LENGTH = 64  # PS3.5 9.1; the meta header's 16-bit lengths could not hold the longest anyway

SKIP_NO_SYNTAX = "incomplete: transfer syntax unknown (association negotiation not captured)"


# -- the meta header -----------------------------------------------------------------------


def _text(value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + pad if len(raw) % 2 else raw


def _short(element: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _clean_ae(title: str) -> str:
    """An AE title fit for (0002,0016): printable ASCII without backslash, at most 16 characters."""
    return "".join(ch for ch in title if " " <= ch <= "~" and ch != "\\").strip()[:16]


def meta_header(sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str = "") -> bytes:
    """Preamble, ``DICM`` and the group 0002 elements, in Explicit VR Little Endian."""
    elements = (
        struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\x00\x01"
        + _short(0x0002, b"UI", _text(sop_class, b"\x00"))
        + _short(0x0003, b"UI", _text(sop_instance, b"\x00"))
        + _short(0x0010, b"UI", _text(transfer_syntax, b"\x00"))
        + _short(0x0012, b"UI", _text(IMPLEMENTATION_CLASS_UID, b"\x00"))
        + _short(0x0013, b"SH", _text(IMPLEMENTATION_VERSION_NAME, b" "))
    )
    source_ae = _clean_ae(source_ae)
    if source_ae:
        elements += _short(0x0016, b"AE", _text(source_ae, b" "))
    group_length = struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(elements))
    return PREAMBLE + group_length + elements


def _uid(value) -> str:
    return str(value or "").rstrip("\x00 ").strip()


def media_storage_uids(analysis, message) -> tuple[str, str]:
    """(SOP Class UID, SOP Instance UID) for the meta header of a message's data set."""
    sop_class = _uid(message.affected_sop_class)
    sop_instance = _uid(message.affected_sop_instance)
    if message.request is not None and 0 <= message.request < len(analysis.messages):
        request = analysis.messages[message.request]
        sop_class = sop_class or _uid(request.affected_sop_class)
    if not sop_class and 0 <= message.association < len(analysis.associations):
        context = analysis.associations[message.association].contexts.get(message.context_id)
        sop_class = _uid(context.abstract_syntax) if context else ""
    if not sop_instance:
        sop_instance = f"{ARTIFICIAL_DATASET_INSTANCE_ROOT}.{message.index + 1}"
    return sop_class or ARTIFICIAL_COMMAND_SOP_CLASS, sop_instance


def sender_ae(analysis, message) -> str:
    if 0 <= message.association < len(analysis.associations):
        association = analysis.associations[message.association]
        return association.calling_ae if message.direction == 0 else association.called_ae
    return ""


def selected_messages(analysis, options: ExportOptions):
    if options.messages is None:
        return analysis.messages
    wanted = set(options.messages)
    return [message for message in analysis.messages if message.index in wanted]


# -- the exporter --------------------------------------------------------------------------


class PartTenExporter:
    name = "part10"
    capabilities = frozenset({WRITES_OBJECTS})
    description = "DICOM Part 10 files: every data set byte-exact, with a meta header (default)"

    def export(self, analysis, outdir: str, options: ExportOptions, progress: Progress | None = None
               ) -> ExportResult:
        folder = OutputFolder(outdir, options.overwrite)
        result = ExportResult()
        work = []
        for message in selected_messages(analysis, options):
            if options.include_commands and (message.command_bytes or not message.complete):
                work.append((message, True))
            if message.has_dataset:
                work.append((message, False))
        total = len(work)
        since_release = 0
        for done, (message, is_command) in enumerate(work, 1):
            since_release += message.dataset_length
            if since_release > RELEASE_EVERY:
                analysis.release_pages()  # memory stays bounded by objects, not the capture
                since_release = 0
            if is_command:
                self._export_command(analysis, message, folder, options, result)
            else:
                self._export_dataset(analysis, message, folder, options, result)
            if progress is not None:
                progress(done, total)
        if progress is not None and not total:
            progress(0, 0)
        result.replaced = list(folder.replaced)
        return result

    def _export_dataset(self, analysis, message, folder: OutputFolder, options: ExportOptions,
                        result: ExportResult) -> None:
        complete = message.complete
        if not complete and not options.include_incomplete:
            result.skipped.append((message.index, f"incomplete: {message.incomplete_reason or 'not captured whole'}"))
            return
        if complete and message.dataset_length < options.min_size:
            result.skipped.append((message.index, SKIP_TOO_SMALL))
            return
        header = b""
        if options.meta_header:
            if not message.transfer_syntax:
                result.skipped.append((message.index, SKIP_NO_SYNTAX))
                return
            if len(message.transfer_syntax) > MAX_UID_LENGTH:
                result.skipped.append((message.index, "incomplete: the negotiated transfer syntax is longer than "
                                                      "a UID can be; no meta header can name it"))
                return
            sop_class, sop_instance = media_storage_uids(analysis, message)
            if len(sop_class) > MAX_UID_LENGTH:
                result.inexact.append(f"message {message.index + 1}: its SOP class UID is {len(sop_class)} "
                                      f"characters (UIDs have at most {MAX_UID_LENGTH}); the meta header names "
                                      f"{ARTIFICIAL_COMMAND_SOP_CLASS} instead")
                sop_class = ARTIFICIAL_COMMAND_SOP_CLASS
            if len(sop_instance) > MAX_UID_LENGTH:
                result.inexact.append(f"message {message.index + 1}: its SOP instance UID is {len(sop_instance)} "
                                      f"characters (UIDs have at most {MAX_UID_LENGTH}); the meta header has an "
                                      "artificial one instead")
                sop_instance = f"{ARTIFICIAL_DATASET_INSTANCE_ROOT}.{message.index + 1}"
            header = meta_header(sop_class, sop_instance, message.transfer_syntax, sender_ae(analysis, message))
        extension = "dcm" if options.meta_header else "raw"
        self._write(folder, message, "", extension, header, analysis.dataset_pieces(message),
                    complete, options, result)

    def _export_command(self, analysis, message, folder: OutputFolder, options: ExportOptions,
                        result: ExportResult) -> None:
        complete = bool(message.command_bytes) and "CommandField" in message.command
        if not complete and not options.include_incomplete:
            result.skipped.append((message.index, "incomplete: command set not captured whole"))
            return
        header = b""
        if options.meta_header:
            instance = f"{ARTIFICIAL_COMMAND_INSTANCE_ROOT}.{message.index + 1}"
            header = meta_header(ARTIFICIAL_COMMAND_SOP_CLASS, instance, IMPLICIT_VR_LITTLE_ENDIAN,
                                 sender_ae(analysis, message))
        extension = "dcm" if options.meta_header else "raw"
        self._write(folder, message, "command", extension, header, iter(([message.command_bytes],)),
                    complete, options, result)

    def _write(self, folder: OutputFolder, message, kind: str, extension: str, header: bytes, piece_lists,
               complete: bool, options: ExportOptions, result: ExportResult) -> None:
        """Write ``header`` then every list of pieces (a list ending in None: the capture lacks the rest).

        A file that cannot be written (refused, no permission, disk full) is an error of
        this object only; the export goes on with the next.
        """
        try:
            path, written, missing = self._write_file(folder, object_name(message, kind, extension,
                                                                          partial=not complete),
                                                      header, piece_lists)
        except OSError as exc:
            result.errors.append(f"message {message.index + 1}: {error_text(exc)}")
            return
        if missing and complete:
            # The model said whole, the capture map disagrees: never pass it off as complete.
            if not options.include_incomplete:
                _remove(path)
                result.skipped.append((message.index, "incomplete: bytes missing from the capture"))
                return
            try:
                partial_path = folder.claim(object_name(message, kind, extension, partial=True))
                os.replace(path, partial_path)
            except OSError as exc:
                _remove(path)
                result.errors.append(f"message {message.index + 1}: {error_text(exc)}")
                return
            path, complete = partial_path, False
        result.bytes_written += written
        if complete:
            result.written.append((str(path), message.index))
        else:
            result.written.append((str(path), message.index))
            result.partial.append((str(path), message.index))


    @staticmethod
    def _write_file(folder: OutputFolder, name: str, header: bytes, piece_lists):
        """(path, bytes written, whether the capture lacked bytes); the file is whole or absent."""
        path, stream = folder.open_new(name)
        written = len(header)
        missing = False
        with stream:
            stream.write(header)
            stream.flush()
            descriptor = stream.fileno()
            batch: list = []  # segments of several fragments in one writev (a fragment is ~11 segments)
            for pieces in piece_lists:
                if pieces and pieces[-1] is None:
                    # Bytes the capture lacks: what follows would be misplaced, so stop here.
                    missing = True
                    pieces = pieces[:-1]
                batch += pieces
                while len(batch) >= WRITE_BATCH:
                    written += _write_all(descriptor, batch[:WRITE_BATCH])
                    del batch[:WRITE_BATCH]
                if missing:
                    break
            written += _write_all(descriptor, batch)
        return path, written, missing


RELEASE_EVERY = 32 << 20  # as the pass (phases.RELEASE_INTERVAL)
WRITE_BATCH = 1024  # segments per writev call (IOV_MAX on Linux and the BSDs)


def _write_all(descriptor: int, pieces: list) -> int:
    """Write memoryviews of the capture straight to the file, no joined copy in between; returns bytes."""
    total = sum(map(len, pieces))
    done = os.writev(descriptor, pieces) if pieces else 0
    if done < total:  # a short write (disk nearly full, signals): finish piece by piece
        rest = memoryview(b"".join(pieces))[done:]
        while rest:
            rest = rest[os.write(descriptor, rest):]
    return total


def _remove(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@hookimpl
def dicomtui_register_exporters(register) -> None:
    register(PartTenExporter())
