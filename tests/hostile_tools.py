"""Building hostile captures from real encodings: pynetdicom encodes, the tests distort.

Every PDU here starts as pynetdicom's encoding (A-ASSOCIATE-RQ/AC, P-DATA-TF
carrying pynetdicom-encoded DIMSE commands); the tests then repeat items,
patch lengths or values, and wrap the streams in a capture with
``fuzz.harnesses.conversation_capture`` (one TCP connection on port 104).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, A_RELEASE_RP, A_RELEASE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    A_RELEASE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz.harnesses import conversation_capture  # noqa: E402

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"


def _associate(calling: str, called: str, contexts: list[tuple[int, str, list[str]]], accept: bool):
    primitive = A_ASSOCIATE()
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    items = []
    for context_id, abstract, syntaxes in contexts:
        context = PresentationContext()
        context.context_id = context_id
        context.abstract_syntax = abstract
        context.transfer_syntax = syntaxes
        if accept:
            context.result = 0
        items.append(context)
    if accept:
        primitive.presentation_context_definition_results_list = items
        primitive.result = 0
    else:
        primitive.presentation_context_definition_list = items
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = 16384
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.2"
    primitive.user_information = [maximum, implementation]
    pdu = A_ASSOCIATE_AC() if accept else A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def associate_rq(calling: str = "STORESCU", called: str = "ANY-SCP",
                 contexts: list[tuple[int, str, list[str]]] | None = None) -> bytes:
    return _associate(calling, called, contexts or [(1, VERIFICATION, [IMPLICIT_LE])], False)


def associate_ac(calling: str = "STORESCU", called: str = "ANY-SCP",
                 contexts: list[tuple[int, str, list[str]]] | None = None) -> bytes:
    return _associate(calling, called, contexts or [(1, VERIFICATION, [IMPLICIT_LE])], True)


def release_rq() -> bytes:
    pdu = A_RELEASE_RQ()
    pdu.from_primitive(A_RELEASE())
    return pdu.encode()


def release_rp() -> bytes:
    primitive = A_RELEASE()
    primitive.result = "affirmative"
    pdu = A_RELEASE_RP()
    pdu.from_primitive(primitive)
    return pdu.encode()


def pdata(pdvs: list[tuple[int, bytes]]) -> bytes:
    """A P-DATA-TF from pynetdicom; each PDV is (context id, message control header + data)."""
    pdu = P_DATA_TF()
    pdu.presentation_data_value_items = []
    from pynetdicom.pdu_items import PresentationDataValueItem

    for context_id, value in pdvs:
        item = PresentationDataValueItem()
        item.presentation_context_id = context_id
        item.presentation_data_value = value
        pdu.presentation_data_value_items.append(item)
    return pdu.encode()


def _message_pdus(message, context_id: int) -> list[bytes]:
    out = []
    message._set_command_group_length()  # as pynetdicom's primitive_to_message does
    for primitive in message.encode_msg(context_id, 16384):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        out.append(pdu.encode())
    return out


def echo_rq(message_id: int = 1, context_id: int = 1) -> list[bytes]:
    message = C_ECHO_RQ()
    message.command_set.CommandField = 0x0030
    message.command_set.MessageID = message_id
    message.command_set.AffectedSOPClassUID = VERIFICATION
    message.command_set.CommandDataSetType = 0x0101
    return _message_pdus(message, context_id)


def echo_command_set(message_id: int = 1) -> bytes:
    """The C-ECHO-RQ command set bytes alone (inside pynetdicom's first PDV)."""
    pdu = echo_rq(message_id)[0]
    length = struct.unpack_from("!I", pdu, 6)[0]
    return pdu[12 : 10 + length]


def store_rq(dataset_bytes: bytes, instance: str = "1.2.3.4.5", context_id: int = 1,
             message_id: int = 1) -> list[bytes]:
    message = C_STORE_RQ()
    command = message.command_set
    command.CommandField = 0x0001
    command.MessageID = message_id
    command.AffectedSOPClassUID = CT_IMAGE
    command.AffectedSOPInstanceUID = instance
    command.Priority = 0
    command.CommandDataSetType = 0x0001
    from io import BytesIO

    message.data_set = BytesIO(dataset_bytes)
    return _message_pdus(message, context_id)


def implicit_dataset(**values) -> bytes:
    """A small data set encoded by pydicom in implicit VR little endian."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    dataset = Dataset()
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = True
    write_dataset(buffer, dataset)
    return buffer.getvalue()


def conversation(client: list[bytes | None], server: list[bytes | None]) -> bytes:
    """A capture: client PDU n, then server PDU n, for each n (None: nothing from that side)."""
    segments: list[tuple[int, int, bytes]] = []
    for index in range(max(len(client), len(server))):
        for direction, pdus in ((0, client), (1, server)):
            if index < len(pdus) and pdus[index] is not None:
                segments.append((direction, 0, pdus[index]))
    return conversation_capture(segments)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- the command line, in this process ------------------------------------------------------------


def headless_modes() -> list[str]:
    """Every mode option of the command line that prints (``--export`` takes a folder: its own tests)."""
    import argparse

    from dicomtui.cli import build_parser

    parser = build_parser()
    group = next(group for group in parser._mutually_exclusive_groups
                 if any(action.dest == "summary" for action in group._group_actions))
    return [action.option_strings[0] for action in group._group_actions
            if isinstance(action, argparse._StoreTrueAction)]


def run_main(capture, *args: str) -> tuple[int, bytes, bytes]:
    """``dicomtui ARGS`` in this process: (exit status, stdout, stderr); ``capture`` is pytest's ``capfdbinary``.

    Python warnings and log records (WARNING and up) are printed to stderr as they
    would be without pytest (the ``default`` filter; logging's last-resort handler),
    so a library message quoting capture text is checked too.  Much faster than a
    subprocess per run.
    """
    import logging
    import warnings

    from dicomtui.cli import main

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    capture.readouterr()
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = show
            status = main(list(args))
    finally:
        logging.getLogger().removeHandler(handler)
    sys.stdout.flush()
    sys.stderr.flush()
    out, err = capture.readouterr()
    return status, out, err
