"""Expert rule for DIMSE response statuses: failures, warnings and cancels, in words.

Each item names the status meaning (from the status plugin), the peer's
Error Comment when it sent one, the object concerned and what to check next.
C-MOVE's "move destination unknown" (0xA801) has its own rule in ``rules.query``.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.base.uids import uid_label
from dicomtui.core.model import Group, Severity

from .common import quoted

C_STORE, C_GET, C_FIND, C_MOVE = 0x0001, 0x0010, 0x0020, 0x0021
MOVE_DESTINATION_UNKNOWN = 0xA801

SEVERITY_BY_CATEGORY = {"failure": Severity.ERROR, "warning": Severity.WARNING, "cancel": Severity.NOTE}


def status_advice(service: int, status: int, command: dict) -> str:
    """What to check next for one status (PS3.4 / PS3.7 meanings, practical first steps)."""
    if status == 0xFE00:
        return "the operation stopped because the requestor sent C-CANCEL"
    if service in (C_MOVE, C_GET) and 0xB000 <= status <= 0xBFFF:
        failed = command.get("NumberOfFailedSuboperations")
        warned = command.get("NumberOfWarningSuboperations")
        counts = f" ({failed} failed, {warned} with warnings)" if failed is not None or warned is not None else ""
        where = "on the sub-association to the move destination" if service == C_MOVE else "in this association"
        return (f"some sub-operations did not succeed{counts}: look at the C-STORE responses {where} "
                "for the failing instances (Failed SOP Instance UID List names them)")
    if 0xA700 <= status <= 0xA7FF:
        return ("the SCP is out of resources (disk space, memory, database or licences): check its storage "
                "and log, then retry")
    if 0xA900 <= status <= 0xA9FF or status == 0xB007:
        if service in (C_FIND, C_MOVE, C_GET):
            return ("the identifier does not fit the information model: check the Query/Retrieve Level and "
                    "that the keys belong to that level")
        return ("the data set does not match its SOP Class: check the SOP Class UID in the data set against "
                "the command, and validate the object (dicomtui --validate runs dciodvfy on it)")
    if 0xC000 <= status <= 0xCFFF:
        return ("the SCP could not process the request: its log says which element it did not accept; "
                "export the object (dicomtui --export) and validate it")
    if status == 0xB000 and service == C_STORE:
        return ("the SCP changed some elements while storing (e.g. reconciled patient data): compare what was "
                "sent with what it stored")
    if status == 0xB006:
        return "the SCP stored the object but discarded some elements: check which ones matter to you"
    advice = {
        0x0110: "the SCP failed while processing: its log says why",
        0x0111: "the SCP already holds an object with this SOP Instance UID and refuses a duplicate: check its "
                "duplicate-handling policy, or whether the sender reuses UIDs",
        0x0122: "the SCP does not support this SOP class on this service: enable it on the SCP",
        0x0124: "the SCP's access control refuses this peer: check its configuration for the calling AE title",
        0x0212: "the command carries a wrongly typed argument: check the requestor's DICOM stack",
        0x0211: "the SCP does not know this operation: check it supports this DIMSE service",
        0x0213: "the SCP hit a resource limit: check its load and log, then retry",
        0x0210: "the same Message ID was used twice while the first was still outstanding",
    }.get(status)
    if advice:
        return advice
    return "the SCP's log says why"


@hookimpl
def dicomtui_check_message(message, analysis, report):
    if message.is_request or message.status is None or message.status == 0:
        return
    service = message.command_field & 0x7FFF
    if service == C_MOVE and message.status == MOVE_DESTINATION_UNKNOWN:
        return  # rules.query reports it with the destination's name
    category, meaning = analysis.status_meaning(message.command_field, message.status, message.affected_sop_class)
    severity = SEVERITY_BY_CATEGORY.get(category)
    if severity is None:
        return  # success, pending
    command = message.command
    parts = [f"{message.command_name} status 0x{message.status:04X} ({category}): {meaning}"]
    comment = command.get("ErrorComment")
    if comment:
        parts.append(f"Error Comment {quoted(str(comment))}")
    error_id = command.get("ErrorID")
    if error_id is not None:
        parts.append(f"Error ID {error_id}")
    offending = command.get("OffendingElement")
    if offending:
        parts.append(f"offending element {offending}")
    if message.affected_sop_class and service == C_STORE:
        instance = message.affected_sop_instance
        parts.append(f"for {uid_label(message.affected_sop_class)}" + (f" {instance}" if instance else ""))
    if message.responded_to is not None:
        parts.append(f"answering message ID {message.responded_to}")
    text = "; ".join(parts) + " — " + status_advice(service, message.status, command)
    report.add(severity, Group.RESPONSE_STATUS, text, message.last_frame or message.first_frame,
               message.association, message.last_pdu, message.index, code=f"status.{category}")
