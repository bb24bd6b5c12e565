"""DIMSE status codes in words: PS3.7 Annex C and the service tables of PS3.4."""

from __future__ import annotations

from dicomtui import hookimpl

SUCCESS, PENDING, CANCEL, WARNING, FAILURE = "success", "pending", "cancel", "warning", "failure"

# PS3.7 Annex C (general statuses, mostly from the N-services)
GENERAL = {
    0x0000: (SUCCESS, "Success"),
    0x0001: (WARNING, "Requested optional attributes are not supported"),
    0x0107: (WARNING, "Attribute list error"),
    0x0116: (WARNING, "Attribute value out of range"),
    0x0105: (FAILURE, "No such attribute"),
    0x0106: (FAILURE, "Invalid attribute value"),
    0x0110: (FAILURE, "Processing failure"),
    0x0111: (FAILURE, "Duplicate SOP Instance"),
    0x0112: (FAILURE, "No such SOP Instance"),
    0x0113: (FAILURE, "No such event type"),
    0x0114: (FAILURE, "No such argument"),
    0x0115: (FAILURE, "Invalid argument value"),
    0x0117: (FAILURE, "Invalid object instance"),
    0x0118: (FAILURE, "No such SOP Class"),
    0x0119: (FAILURE, "Class-instance conflict"),
    0x0120: (FAILURE, "Missing attribute"),
    0x0121: (FAILURE, "Missing attribute value"),
    0x0122: (FAILURE, "Refused: SOP Class not supported"),
    0x0123: (FAILURE, "No such action"),
    0x0124: (FAILURE, "Refused: Not authorized"),
    0x0210: (FAILURE, "Duplicate invocation"),
    0x0211: (FAILURE, "Unrecognized operation"),
    0x0212: (FAILURE, "Mistyped argument"),
    0x0213: (FAILURE, "Resource limitation"),
    0xFE00: (CANCEL, "Cancel"),
    0xFF00: (PENDING, "Pending"),
    0xFF01: (PENDING, "Pending: one or more Optional Keys were not supported"),
}

C_STORE, C_GET, C_FIND, C_MOVE = 0x0001, 0x0010, 0x0020, 0x0021

# PS3.4 service-specific tables, by request command field (responses have bit 15 set).
SERVICE = {
    C_STORE: {  # B.2.3
        0xB000: (WARNING, "Coercion of data elements"),
        0xB006: (WARNING, "Elements discarded"),
        0xB007: (WARNING, "Data set does not match SOP Class"),
    },
    C_FIND: {  # C.4.1.1.4
        0xA900: (FAILURE, "Identifier does not match SOP Class"),
        0xFE00: (CANCEL, "Matching terminated due to Cancel request"),
        0xFF00: (PENDING, "Matches are continuing; current match supplied"),
        0xFF01: (PENDING, "Matches are continuing; warning that one or more Optional Keys were not supported"),
    },
    C_MOVE: {  # C.4.2.1.5
        0xA701: (FAILURE, "Refused: Out of resources, unable to calculate number of matches"),
        0xA702: (FAILURE, "Refused: Out of resources, unable to perform sub-operations"),
        0xA801: (FAILURE, "Refused: Move destination unknown"),
        0xA900: (FAILURE, "Identifier does not match SOP Class"),
        0xB000: (WARNING, "Sub-operations complete, one or more failures or warnings"),
        0xFE00: (CANCEL, "Sub-operations terminated due to Cancel indication"),
        0xFF00: (PENDING, "Sub-operations are continuing"),
    },
    C_GET: {  # C.4.3.1.4
        0xA701: (FAILURE, "Refused: Out of resources, unable to calculate number of matches"),
        0xA702: (FAILURE, "Refused: Out of resources, unable to perform sub-operations"),
        0xA900: (FAILURE, "Identifier does not match SOP Class"),
        0xB000: (WARNING, "Sub-operations complete, one or more failures or warnings"),
        0xFE00: (CANCEL, "Sub-operations terminated due to Cancel indication"),
        0xFF00: (PENDING, "Sub-operations are continuing"),
    },
}

# Ranges that the standard defines per service ("A7xx", "Cxxx", ...).
RANGES = {
    C_STORE: [((0xA700, 0xA7FF), (FAILURE, "Refused: Out of resources")),
              ((0xA900, 0xA9FF), (FAILURE, "Error: Data set does not match SOP Class")),
              ((0xC000, 0xCFFF), (FAILURE, "Error: Cannot understand"))],
    C_FIND: [((0xA700, 0xA7FF), (FAILURE, "Refused: Out of resources")),
             ((0xC000, 0xCFFF), (FAILURE, "Failed: Unable to process"))],
    C_MOVE: [((0xC000, 0xCFFF), (FAILURE, "Failed: Unable to process"))],
    C_GET: [((0xC000, 0xCFFF), (FAILURE, "Failed: Unable to process"))],
}


def status_category(status: int) -> str:
    """Category by value alone (PS3.7 C.1): used when no table names the code."""
    if status == 0x0000:
        return SUCCESS
    if status in (0xFF00, 0xFF01):
        return PENDING
    if status == 0xFE00:
        return CANCEL
    if status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF:
        return WARNING
    return FAILURE


def describe_status(command_field: int, status: int) -> tuple[str, str]:
    service = command_field & 0x7FFF
    if status in SERVICE.get(service, {}):
        return SERVICE[service][status]
    for (low, high), meaning in RANGES.get(service, []):
        if low <= status <= high:
            return meaning
    if status in GENERAL:
        return GENERAL[status]
    category = status_category(status)
    return category, f"{category.capitalize()} (0x{status:04X}, not in the standard's tables)"


@hookimpl
def dicomtui_status_meaning(command_field: int, status: int, sop_class: str):
    return describe_status(command_field, status)
