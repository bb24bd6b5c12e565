"""DIMSE command sets: decoding (PS3.7 E) and command names.

Command sets are always implicit VR little endian and only hold group 0000,
so a small reader over ``struct`` decodes them; tests cross-check it against
pydicom's reader on every command set of the fixtures.  VRs and keywords are
pydicom's data dictionary's entries for group 0000, copied into
``COMMAND_ELEMENTS`` so that decoding commands does not import pydicom (its
import costs more than a small capture's whole analysis); a test checks the copy
against pydicom's dictionary, and a tag missing from it is looked up there.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping
from functools import lru_cache

from dicomtui.core.base.errors import DecodeError
from dicomtui.core.base.tree import Field
from dicomtui.core.base.uids import uid_with_name

# element -> (VR, keyword) of every group 0000 entry in pydicom's data dictionary (PS3.6/PS3.7 E.1).
COMMAND_ELEMENTS = {
    0x0000: ("UL", "CommandGroupLength"),
    0x0001: ("UL", "CommandLengthToEnd"),
    0x0002: ("UI", "AffectedSOPClassUID"),
    0x0003: ("UI", "RequestedSOPClassUID"),
    0x0010: ("SH", "CommandRecognitionCode"),
    0x0100: ("US", "CommandField"),
    0x0110: ("US", "MessageID"),
    0x0120: ("US", "MessageIDBeingRespondedTo"),
    0x0200: ("AE", "Initiator"),
    0x0300: ("AE", "Receiver"),
    0x0400: ("AE", "FindLocation"),
    0x0600: ("AE", "MoveDestination"),
    0x0700: ("US", "Priority"),
    0x0800: ("US", "CommandDataSetType"),
    0x0850: ("US", "NumberOfMatches"),
    0x0860: ("US", "ResponseSequenceNumber"),
    0x0900: ("US", "Status"),
    0x0901: ("AT", "OffendingElement"),
    0x0902: ("LO", "ErrorComment"),
    0x0903: ("US", "ErrorID"),
    0x1000: ("UI", "AffectedSOPInstanceUID"),
    0x1001: ("UI", "RequestedSOPInstanceUID"),
    0x1002: ("US", "EventTypeID"),
    0x1005: ("AT", "AttributeIdentifierList"),
    0x1008: ("US", "ActionTypeID"),
    0x1020: ("US", "NumberOfRemainingSuboperations"),
    0x1021: ("US", "NumberOfCompletedSuboperations"),
    0x1022: ("US", "NumberOfFailedSuboperations"),
    0x1023: ("US", "NumberOfWarningSuboperations"),
    0x1030: ("AE", "MoveOriginatorApplicationEntityTitle"),
    0x1031: ("US", "MoveOriginatorMessageID"),
    0x4000: ("LT", "DialogReceiver"),
    0x4010: ("LT", "TerminalType"),
    0x5010: ("SH", "MessageSetID"),
    0x5020: ("SH", "EndMessageID"),
    0x5110: ("LT", "DisplayFormat"),
    0x5120: ("LT", "PagePositionID"),
    0x5130: ("CS", "TextFormatID"),
    0x5140: ("CS", "NormalReverse"),
    0x5150: ("CS", "AddGrayScale"),
    0x5160: ("CS", "Borders"),
    0x5170: ("IS", "Copies"),
    0x5180: ("CS", "CommandMagnificationType"),
    0x5190: ("CS", "Erase"),
    0x51A0: ("CS", "Print"),
    0x51B0: ("US", "Overlays"),
}

COMMAND_NAMES = {
    0x0001: "C-STORE-RQ", 0x8001: "C-STORE-RSP",
    0x0010: "C-GET-RQ", 0x8010: "C-GET-RSP",
    0x0020: "C-FIND-RQ", 0x8020: "C-FIND-RSP",
    0x0021: "C-MOVE-RQ", 0x8021: "C-MOVE-RSP",
    0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP",
    0x0FFF: "C-CANCEL-RQ",
    0x0100: "N-EVENT-REPORT-RQ", 0x8100: "N-EVENT-REPORT-RSP",
    0x0110: "N-GET-RQ", 0x8110: "N-GET-RSP",
    0x0120: "N-SET-RQ", 0x8120: "N-SET-RSP",
    0x0130: "N-ACTION-RQ", 0x8130: "N-ACTION-RSP",
    0x0140: "N-CREATE-RQ", 0x8140: "N-CREATE-RSP",
    0x0150: "N-DELETE-RQ", 0x8150: "N-DELETE-RSP",
}
NO_DATASET = 0x0101
MAX_COMMAND_ELEMENTS = 256
_element_header = struct.Struct("<HHI").unpack_from


def command_name(command_field: int) -> str:
    return COMMAND_NAMES.get(command_field, f"unknown command 0x{command_field:04X}")


@lru_cache(maxsize=512)
def _tag_info(tag: int) -> tuple[str, str]:
    known = COMMAND_ELEMENTS.get(tag)
    if known is not None:
        return known
    from pydicom.datadict import dictionary_VR, keyword_for_tag

    try:
        return dictionary_VR(tag), keyword_for_tag(tag)
    except KeyError:
        return "UN", ""


def _value(vr: str, raw: bytes):
    if vr == "US":
        count = len(raw) // 2
        values = struct.unpack(f"<{count}H", raw[: count * 2])
        return values[0] if count == 1 else list(values)
    if vr == "UL":
        count = len(raw) // 4
        values = struct.unpack(f"<{count}I", raw[: count * 4])
        return values[0] if count == 1 else list(values)
    if vr == "AT":
        count = len(raw) // 4
        pairs = struct.unpack(f"<{count * 2}H", raw[: count * 4])
        return [f"({pairs[i]:04X},{pairs[i + 1]:04X})" for i in range(0, len(pairs), 2)]
    if vr in ("UI", "AE"):
        # The same SOP classes and AE titles repeat in every message: keep one copy.
        return sys.intern(raw.decode("ascii", "backslashreplace").rstrip("\x00 ").lstrip(" "))
    if vr in ("LO", "SH", "CS", "ST", "LT", "DA", "TM", "DT", "IS", "DS", "PN"):
        return raw.decode("ascii", "backslashreplace").rstrip("\x00 ").lstrip(" ")
    return raw.hex(" ")


def _elements(data: bytes):
    """(element number, VR, keyword, offset, length, value) for each element of a command set."""
    offset = 0
    count = 0
    size = len(data)
    while offset < size:
        if offset + 8 > size:
            raise DecodeError("command set ends inside an element header", offset)
        group, element, length = _element_header(data, offset)
        if group != 0x0000:
            raise DecodeError(f"element ({group:04X},{element:04X}) outside group 0000 in a command set", offset)
        if length > size - offset - 8:
            raise DecodeError(f"element (0000,{element:04X}) length {length} runs past the command set", offset)
        count += 1
        if count > MAX_COMMAND_ELEMENTS:
            raise DecodeError("command set has more elements than any DIMSE command defines", offset)
        vr, keyword = _tag_info(element)
        yield element, vr, keyword, offset, length, _value(vr, data[offset + 8 : offset + 8 + length])
        offset += 8 + length


def whole_elements(data: bytes) -> int:
    """How many first bytes of a command set's captured start hold whole elements (the rest was cut)."""
    offset = 0
    size = len(data)
    while offset + 8 <= size:
        length = _element_header(data, offset)[2]
        if length > size - offset - 8:
            break
        offset += 8 + length
    return offset


class CommandFields(Mapping):
    """A message's command elements by keyword, decoded from its bytes when read.

    Messages keep their command set's bytes (needed for display and export
    anyway) rather than a dict of every element: a capture of a few hundred
    thousand C-FINDs or C-ECHOs saves ~350 bytes a message.  The last decoded set
    is kept, so the several look-ups a rule makes in a row decode once.
    """

    __slots__ = ("_data",)
    _last: tuple[bytes | None, dict] = (None, {})

    def __init__(self, data: bytes) -> None:
        self._data = data

    @classmethod
    def decoded(cls, data: bytes, fields: dict) -> CommandFields:
        """Fields of ``data`` already decoded by the caller: kept as the last set, so reads do not decode again."""
        cls._last = (data, fields)
        return cls(data)

    def _fields(self) -> dict:
        last = CommandFields._last
        if last[0] is self._data:
            return last[1]
        try:
            fields = decode_command_fields(self._data)
        except DecodeError:
            fields = {}
        CommandFields._last = (self._data, fields)
        return fields

    def __getitem__(self, key: str):
        return self._fields()[key]

    def __iter__(self):
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())

    def __repr__(self) -> str:
        return f"CommandFields({self._fields()!r})"


def decode_command_fields(data: bytes) -> dict:
    """Command set bytes to ``{keyword: value}`` (the analysis pass; no display tree)."""
    return {keyword or f"(0000,{element:04X})": value for element, _vr, keyword, _o, _l, value in _elements(data)}


def decode_command_set(data: bytes) -> tuple[dict, Field]:
    """Command set bytes to ``{keyword: value}`` and a display tree (offsets relative to ``data``)."""
    fields: dict = {}
    children: list[Field] = []
    for element, vr, keyword, offset, length, value in _elements(data):
        fields[keyword or f"(0000,{element:04X})"] = value
        if vr == "UI" and isinstance(value, str):
            shown = uid_with_name(value)
        elif keyword == "CommandField" and isinstance(value, int):
            shown = f"0x{value:04X} ({command_name(value)})"
        elif vr in ("US", "UL") and isinstance(value, int) and keyword in ("Status", "CommandDataSetType"):
            shown = f"0x{value:04X}"
        elif isinstance(value, list):  # multi-valued: backslashes, as in the data set and Wireshark
            shown = "\\".join(str(item) for item in value)
        else:
            shown = repr(value) if isinstance(value, str) else str(value)
        children.append(Field(f"(0000,{element:04X}) {keyword or 'unknown'}", f"{vr} {length}: {shown}",
                              offset, 8 + length))
    field_value = fields.get("CommandField")
    title = command_name(field_value) if isinstance(field_value, int) else "command set"
    return fields, Field(f"Command: {title}", "", 0, len(data), tuple(children))
