"""What a validator's finding means at the archive, in words for a PACS engineer.

dciodvfy says what is wrong with an object; an engineer called for a "network problem"
needs what the receiving archive is likely to do with it.  The classes below follow
dciodvfy's own wording; the likely outcomes are what PS3.4 B.2.3 allows an SCP (refuse,
or store with coercion or without checking) and what archives commonly do.
"""

from __future__ import annotations

import re

_MISSING = re.compile(r"Missing attribute Type (\w+) (?:Required|Conditional) Element=<(\w+)>")
_EMPTY = re.compile(r"Empty attribute \(no value\) Type (\w+) (?:Required|Conditional) Element=<(\w+)>")
_VR_VALUE = re.compile(r"Value invalid for this VR - \((0x[0-9a-f]{4},0x[0-9a-f]{4})\) (\w\w) ([^-]*?)\s+\w\w ")
_WRONG_VR = re.compile(r"Invalid Value Representation (\w\w) \((\w\w) Required\) Element=<(\w+)>")
_UID_ROOT = re.compile(r"Illegal root for UID .* in \((0x[0-9a-f]{4},0x[0-9a-f]{4})\) (.+)$")
_ENUM = re.compile(r"Unrecognized enumerated value <([^>]*)> for value \d+ of attribute <([^>]*)>")


def short_reason(error: str) -> str:
    """"lacks Type 1 FrameOfReferenceUID" from dciodvfy's line, else the line itself (shortened)."""
    found = _MISSING.search(error)
    if found:
        return f"lacks Type {found.group(1)} {found.group(2)}"
    found = _EMPTY.search(error)
    if found:
        return f"has Type {found.group(1)} {found.group(2)} empty"
    found = _VR_VALUE.search(error)
    if found:
        return f"has a value invalid for its VR in {found.group(3).strip()} {found.group(1)} ({found.group(2)})"
    found = _UID_ROOT.search(error)
    if found:
        return f"has a UID with an unregistered root in {found.group(2).strip()} ({found.group(1)})"
    found = _WRONG_VR.search(error)
    if found:
        return f"has {found.group(3)} in VR {found.group(1)} ({found.group(2)} required)"
    found = _ENUM.search(error)
    if found:
        return f"has {found.group(1)!r}, not an allowed value, in {found.group(2)}"
    text = error.split(" - ", 1)[1] if error.startswith(("Error - ", "Warning - ")) else error
    return text if len(text) <= 120 else text[:117] + "..."


def reasons(errors: list[str], limit: int = 3) -> list[str]:
    """The first ``limit`` distinct short reasons, specific ones first (dciodvfy repeats some lines and
    adds a summary line such as "Dicom dataset contains invalid data values for Value Representations")."""
    distinct = list(dict.fromkeys(short_reason(error) for error in errors))
    specific = [reason for reason in distinct if not reason.startswith("Dicom dataset contains")]
    return (specific or distinct)[:limit]


def likely_outcome(errors: list[str]) -> str:
    """What an archive is likely to do with an object that has these dciodvfy errors."""
    joined = "\n".join(errors)
    if "read failed" in joined or "Bad Value Length" in joined:
        return ("the object does not read as DICOM past some point: an archive refuses it as unreadable "
                "(0xC000 cannot understand, or 0xA900) or stores a truncated object")
    if re.search(r"Missing attribute Type 1 |Empty attribute \(no value\) Type 1 ", joined):
        return ("an archive that checks what it receives refuses it (0xA900 data set does not match SOP "
                "class, or 0xC000); one that does not stores an object viewers, queries or later moves "
                "may mishandle — fix it at the sending device (its configuration or its vendor)")
    if "Value invalid for this VR" in joined or "Value Representation" in joined:
        return ("an archive may refuse it (0xC000 cannot understand), or store it with the value dropped "
                "or coerced (0xB000) — then queries on that attribute miss it")
    if re.search(r"Missing attribute Type (1C|2|2C) ", joined):
        return ("most archives store it anyway; strict ones refuse it (0xA900), and viewers or "
                "reconciliation that need the attribute may mishandle it")
    if "enumerated value" in joined:
        return "most archives store it; viewers that act on the value may show the object wrongly"
    return ("most archives store it as it is; a strict archive or a later migration may refuse it — "
            "check with the archive's conformance statement")


def consistency_outcome(lines: list[str]) -> str:
    joined = "\n".join(lines)
    if "Duplicate SOPInstanceUID" in joined:
        return ("one SOP Instance UID names different objects: an archive keeps one of them (the first, or "
                "the last) and the others are lost, or it refuses them as duplicates; the sender must give "
                "each object its own UID")
    if "Patient" in joined:
        return ("one study naming different patients: an archive files the objects under two patients, "
                "or holds the study for reconciliation; check the modality's worklist and the "
                "registration (RIS) for this study")
    if "Series" in joined:
        return ("one series whose objects disagree: an archive may split it or keep the first object's "
                "values; check the sending device's series handling")
    return ("the objects of one study disagree: an archive keeps one version of the study's attributes "
            "and the other objects' values are lost or the study is held for reconciliation")
