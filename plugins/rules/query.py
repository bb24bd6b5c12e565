"""Expert rules for Query/Retrieve: C-FIND queries that matched nothing, C-MOVE destinations.

From the Wireshark DICOM wiki: when a C-FIND returns nothing, compare the keys
of the request with what the SCP holds; "over-defined queries, different tag
parsing (esp. trailing spaces in strings) or compound elements '^' are things
to pay attention to".  For C-MOVE, the Q/R SCP opens a new association to the
move destination using its own configuration for that AE title, which is why
"move destination unknown" is a configuration problem on the SCP.

The identifier is parsed by the shared data-set codec (bounded to a small
size) and its values read raw, because converted values have their trailing
spaces stripped.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.base.library_warnings import pydicom_warnings
from dicomtui.core.model import Group, Severity
from dicomtui.core.model.workflow import WORKLIST_FIND
from dicomtui.core.protocol.datasets import element_vr, parse_dataset
from pydicom.datadict import keyword_for_tag

from .common import peers, quoted

C_FIND_RQ, C_MOVE_RQ, C_MOVE_RSP = 0x0020, 0x0021, 0x8021
MOVE_DESTINATION_UNKNOWN = 0xA801
MAX_IDENTIFIER_BYTES = 64 * 1024
NOT_MATCHING_KEYS = {"QueryRetrieveLevel", "SpecificCharacterSet", "TimezoneOffsetFromUTC"}
# PS3.4 C.2.2.2.4: wildcard matching is defined for these VRs only.
WILDCARD_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}
TEXT_VRS = WILDCARD_VRS | {"DA", "DT", "TM", "UI", "AS", "DS", "IS"}
RANGE_VRS = {"DA", "TM", "DT"}
OVER_DEFINED_KEYS = 3


@hookimpl
def dicomtui_check_message(message, analysis, report):
    if message.command_field == C_FIND_RQ:
        _find_without_matches(message, analysis, report)
    elif message.command_field == C_MOVE_RSP and message.status == MOVE_DESTINATION_UNKNOWN:
        _move_destination_unknown(message, analysis, report)
    elif message.command_field == C_MOVE_RQ:
        _move_sub_association_missing(message, analysis, report)


# -- C-FIND ------------------------------------------------------------------------------


def _find_without_matches(message, analysis, report) -> None:
    if not message.responses or message.affected_sop_class == WORKLIST_FIND:
        # An empty worklist is rules.workflow's (workflow.worklist_no_match), with the keys nested in the
        # Scheduled Procedure Step Sequence that filtered; said here too, it was said twice and read as
        # "a universal query".
        return
    responses = [analysis.messages[index] for index in message.responses]
    if len(responses) != 1 or responses[0].status != 0:
        return  # matches came back, or it failed (rules.status reports failures)
    keys = identifier_keys(analysis, message)
    if keys is None:
        return
    matching = [(keyword, vr, values) for keyword, vr, values in keys
                if keyword not in NOT_MATCHING_KEYS and any(value for value in values)]
    hints, severity = query_hints(matching)
    shown = ", ".join(f"{keyword}={quoted(chr(92).join(values))}" for keyword, _vr, values in matching) or \
        "no matching keys (universal query)"
    association = analysis.associations[message.association]
    text = (f"C-FIND (message ID {message.message_id}) in association {peers(association)} matched nothing; "
            f"matching keys: {shown}")
    if hints:
        text += " — " + "; ".join(hints)
    else:
        text += (" — if a match was expected, compare these keys with what the SCP holds and with the responses "
                 "to earlier queries")
    response = responses[0]
    report.add(severity, Group.QUERY, text, response.last_frame or message.last_frame, message.association,
               response.last_pdu, message.index, code="query.find_no_matches")


def identifier_keys(analysis, message) -> list[tuple[str, str, list[str]]] | None:
    """(keyword, VR, raw values with their spaces) of the identifier's top-level text elements."""
    data = analysis.dataset_bytes(message, MAX_IDENTIFIER_BYTES)
    if not data:
        return None
    parsed = parse_dataset(data, "" if message.syntax_guessed else message.transfer_syntax,
                           analysis.config.limits)
    dataset = parsed.dataset
    if dataset is None:
        return None  # the data set does not parse; nothing to say about its keys
    keys = []
    try:
        with pydicom_warnings():
            for tag in list(dataset.keys()):
                raw = dataset.get_item(tag)
                vr = element_vr(dataset, tag, unknown=None)
                if vr is None:
                    continue
                value = getattr(raw, "value", None)
                if vr not in TEXT_VRS or not isinstance(value, (bytes, bytearray)):
                    continue
                text = bytes(value).rstrip(b"\0").decode("latin-1")
                keyword = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
                keys.append((keyword, vr, _values(text)))
    except Exception:
        return None
    return keys


def _values(text: str) -> list[str]:
    """Split a multi-valued text and remove the single pad space an even length may need."""
    if len(text) % 2 == 0 and text.endswith(" "):
        text = text[:-1]
    return text.split("\\") if text else [""]


def query_hints(matching: list[tuple[str, str, list[str]]]) -> tuple[list[str], Severity]:
    """Advice for a query that matched nothing, and how serious it looks."""
    hints: list[str] = []
    severity = Severity.NOTE
    for keyword, vr, values in matching:
        for value in values:
            if value != value.strip(" "):
                hints.append(f"{keyword} {quoted(value)} has leading or trailing spaces: SCPs differ in whether "
                             "spaces are significant, try the value without them")
                severity = Severity.WARNING
            if vr not in WILDCARD_VRS and ("*" in value or "?" in value):
                if vr in RANGE_VRS:
                    better = "use a range such as 20240101-20240131 or 20240101- instead"
                elif vr == "UI":
                    better = "give complete UIDs, several separated by backslashes (list matching), instead"
                else:
                    better = "give the exact value instead"
                hints.append(f"{keyword} {quoted(value)} uses a wildcard, which is not defined for VR {vr} "
                             f"(the SCP treats it literally or rejects it): {better}")
                severity = Severity.WARNING
            if vr == "PN" and "^" in value:
                hints.append(f"{keyword} {quoted(value)} has '^' components: SCPs differ in how they match "
                             "name components (e.g. 'DOE^JOHN' against 'DOE^JOHN^^^' or a wildcard within one "
                             "component); try only the family name with a wildcard, e.g. "
                             f"{quoted(value.split('^')[0].rstrip('*') + '*')}")
    if len(matching) >= OVER_DEFINED_KEYS:
        hints.append(f"{len(matching)} matching keys must all match at once (an over-defined query): "
                     "leave keys out one at a time to find the one that excludes the expected records")
    return hints, severity


# -- C-MOVE ------------------------------------------------------------------------------


def _move_destination_unknown(message, analysis, report) -> None:
    request = analysis.messages[message.request] if message.request is not None else None
    destination = str(request.command.get("MoveDestination", "")).strip() if request is not None else ""
    association = analysis.associations[message.association]
    scp = association.called_ae or "the Q/R SCP"
    named = f"move destination {quoted(destination)}" if destination else "the move destination"
    comment = message.command.get("ErrorComment")
    comment_text = f" (Error Comment {quoted(str(comment))})" if comment else ""
    report.add(Severity.ERROR, Group.RESPONSE_STATUS,
               f"C-MOVE refused with status 0xA801: {named} is unknown to {scp}{comment_text} — configure the "
               f"AE title {quoted(destination) if destination else ''} with the host/IP address and port of the "
               f"receiving system on {scp} (the Q/R SCP opens its own association to it), or correct the "
               "destination AE title the requestor sends; AE titles are case-sensitive and at most 16 characters",
               message.last_frame or message.first_frame, message.association, message.last_pdu, message.index,
               code="query.move_destination_unknown")


def _move_sub_association_missing(message, analysis, report) -> None:
    if not message.responses:
        return
    final = analysis.messages[message.responses[-1]]
    completed = final.command.get("NumberOfCompletedSuboperations")
    if final.status not in (0x0000, 0xB000) or not isinstance(completed, int) or completed <= 0:
        return
    if analysis.relations.sub_associations(message.index):
        return
    destination = str(message.command.get("MoveDestination", "")).strip()
    report.add(Severity.NOTE, Group.CAPTURE,
               f"C-MOVE (message ID {message.message_id}) to {quoted(destination)} completed {completed} "
               "sub-operation(s), but the sub-association that carried them is not in this capture — it runs "
               "from the Q/R SCP to the destination: capture at the Q/R SCP's end (or the destination's) to see it",
               final.last_frame, message.association, final.last_pdu, message.index,
               code="query.move_sub_association_missing")
