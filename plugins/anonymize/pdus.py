"""Rewrite the DICOM upper layer: association PDUs, command sets and P-DATA-TF PDUs.

Every length the rewrite can change is recomputed from the new contents: the PDU
length, the user-information item length and its sub-item lengths, the PDV item
lengths and the command set's CommandGroupLength.  Pure functions over bytes.
"""

from __future__ import annotations

import struct

from dicomtui.core.base.errors import DecodeError
from pydicom.dataset import Dataset

from .deidentify import CodecError, DatasetCodec
from .mapping import Pseudonymizer

ASSOCIATE_RQ, ASSOCIATE_AC, P_DATA = 1, 2, 4
USER_INFORMATION, USER_IDENTITY_RQ, USER_IDENTITY_AC = 0x50, 0x58, 0x59
COMMAND_CODEC = DatasetCodec("1.2.840.10008.1.2")  # command sets are always implicit VR LE
COMMAND_GROUP_LENGTH = 0x00000000
# command elements that carry UIDs of instances (not of classes) or AE titles
COMMAND_INSTANCE_UIDS = (0x00001000, 0x00001001)  # Affected / Requested SOP Instance UID
COMMAND_AE_TITLES = (0x00000600, 0x00001030)  # Move Destination, Move Originator AE Title
ERROR_COMMENT = 0x00000902


def _ae_field(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def _items(body: bytes, start: int, end: int):
    offset = start
    while offset < end:
        if offset + 4 > end:
            raise DecodeError("truncated item header", offset)
        length = struct.unpack_from("!H", body, offset + 2)[0]
        if offset + 4 + length > end:
            raise DecodeError(f"item 0x{body[offset]:02x} runs past its container", offset)
        yield body[offset], body[offset + 4: offset + 4 + length]
        offset += 4 + length


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack("!BBH", item_type, 0, len(value)) + value


def _user_identity_rq(value: bytes, pseudo: Pseudonymizer) -> bytes:
    """0x58: the user name becomes a dummy; a passcode, Kerberos ticket, SAML or JWT is dropped."""
    if len(value) < 4:
        raise DecodeError("user identity item too short", 0)
    identity_type, response = value[0], value[1]
    primary_length = struct.unpack_from("!H", value, 2)[0]
    primary = value[4: 4 + primary_length]
    if identity_type in (1, 2):  # user name (and passcode)
        primary = pseudo.text(primary.decode("latin-1"), "LO").encode("ascii")
    else:
        primary = b""
    return bytes([identity_type, response]) + struct.pack("!H", len(primary)) + primary + b"\x00\x00"


def rewrite_associate(pdu: bytes, pseudo: Pseudonymizer, map_ae: bool, changes) -> bytes:
    """A-ASSOCIATE-RQ/AC with AE titles mapped (on request) and user identity blanked."""
    if len(pdu) < 74:
        raise DecodeError("A-ASSOCIATE PDU shorter than its fixed fields", 0)
    called, calling = pdu[10:26], pdu[26:42]
    if map_ae:
        called = _ae_field(pseudo.ae_title(called.decode("latin-1")))
        calling = _ae_field(pseudo.ae_title(calling.decode("latin-1")))
        changes[("AE titles (association)", "mapped")] += 2
    items = []
    for item_type, value in _items(pdu, 74, len(pdu)):
        if item_type == USER_INFORMATION:
            sub_items = []
            for sub_type, sub_value in _items(value, 0, len(value)):
                if sub_type == USER_IDENTITY_RQ:
                    sub_value = _user_identity_rq(sub_value, pseudo)
                    changes[("user identity (0x58)", "name replaced, secret removed")] += 1
                elif sub_type == USER_IDENTITY_AC and sub_value[2:]:
                    sub_value = b"\x00\x00"
                    changes[("user identity response (0x59)", "removed")] += 1
                sub_items.append(_item(sub_type, sub_value))
            value = b"".join(sub_items)
        items.append(_item(item_type, value))
    body = pdu[6:10] + called + calling + pdu[42:74] + b"".join(items)
    return struct.pack("!BBI", pdu[0], 0, len(body)) + body


def command_dataset(data: bytes) -> Dataset:
    return COMMAND_CODEC.read(data)


def rewrite_command(command: Dataset, pseudo: Pseudonymizer, map_ae: bool, clean_text, changes,
                    has_dataset: bool | None = None) -> bytes:
    """The command set with instance UIDs (and AE titles on request) mapped; group length recomputed."""
    for tag in COMMAND_INSTANCE_UIDS:
        if tag in command and command[tag].value:
            command[tag].value = pseudo.uid(str(command[tag].value))
            changes[(command[tag].keyword, "U")] += 1
    if map_ae:
        for tag in COMMAND_AE_TITLES:
            if tag in command and command[tag].value:
                command[tag].value = pseudo.ae_title(str(command[tag].value))
                changes[(command[tag].keyword, "mapped")] += 1
    if ERROR_COMMENT in command and command[ERROR_COMMENT].value:
        cleaned = clean_text(str(command[ERROR_COMMENT].value))
        if cleaned != command[ERROR_COMMENT].value:
            command[ERROR_COMMENT].value = cleaned
            changes[("ErrorComment", "C")] += 1
    if has_dataset is False and "CommandDataSetType" in command:
        command.CommandDataSetType = 0x0101
    if COMMAND_GROUP_LENGTH in command:
        del command[COMMAND_GROUP_LENGTH]
    body = COMMAND_CODEC.write(command)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def pdata_pdus(context_id: int, data: bytes, is_command: bool, pieces: int, max_pdu: int) -> list[bytes]:
    """``data`` as P-DATA-TF PDUs of one PDV each, in about ``pieces`` equal parts (as it was
    fragmented on the wire), none over the receiver's maximum PDU length (0: no limit)."""
    pieces = max(1, pieces)
    # Fragments of even length, as everyone sends them (Wireshark calls odd PDV lengths malformed).
    limit = ((max_pdu - 6) & ~1) if max_pdu and max_pdu > 7 else 0
    size = -(-len(data) // pieces) if data else 0
    size += size & 1
    if limit:
        size = min(size, limit) if size else 0
    chunks = [data[start: start + size] for start in range(0, len(data), size)] if size else [b""]
    pdus = []
    for number, chunk in enumerate(chunks):
        flags = (1 if is_command else 0) | (2 if number == len(chunks) - 1 else 0)
        pdv = struct.pack("!IBB", len(chunk) + 2, context_id, flags) + chunk
        pdus.append(struct.pack("!BBI", P_DATA, 0, len(pdv)) + pdv)
    return pdus


__all__ = ["CodecError", "command_dataset", "pdata_pdus", "rewrite_associate", "rewrite_command"]
