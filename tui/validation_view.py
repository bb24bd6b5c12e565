"""The validation subtree under a stored object's data set: what dciodvfy and dcentvfy said about it.

Reads ``Analysis.validation`` (filled by ``--validate``, the ``validate`` preference or the
``V`` key) and the ``data.*`` findings of the message; draws nothing itself.  Validator
lines quote data-set values: the tree escapes every label and value it shows.
"""

from __future__ import annotations

from dicomtui.core.base.tree import Field
from dicomtui.core.base.wording import counted

C_STORE_RQ = 0x0001
MAX_LINES_SHOWN = 100


def validation_field(analysis, message) -> Field | None:
    """"Validation" for a C-STORE-RQ's data set: the result, or how to get one."""
    if message.command_field != C_STORE_RQ or not message.has_dataset:
        return None
    result = analysis.validation.for_message(message.index)
    if result is None:
        return Field("Validation", "not run — V validates this object (dciodvfy, the validate extra)")
    if result.skipped:
        return Field(f"Validation ({result.tool})", f"not validated: {result.skipped}")
    if result.failed:
        summary = f"the validator stopped: {result.failed}"
    else:
        summary = f"{counted(result.errors, 'error')}, {counted(result.warnings, 'warning')}"
        summary += f" — as {result.iod}" if result.iod else " — no IOD recognised"
    if result.validated_as:
        summary += f"; read as {result.validated_as}"
    # A problem is drawn in red after the value: a one-word mark, not the text again.
    children = [Field(f"Finding ({item.code})", item.message, problem=item.severity.label
                      if item.severity.label in ("error", "warning") else "")
                for item in analysis.expert if item.message_index == message.index and item.code.startswith("data.")]
    for response in message.responses:
        children += [Field(f"Finding ({item.code})", item.message, problem=item.severity.label)
                     for item in analysis.expert if item.message_index == response and item.code.startswith("data.refused")]
    ordered = sorted((line for line in result.lines if line.text != result.iod),
                     key=lambda line: {"error": 0, "warning": 1}.get(line.severity, 2))
    children += [Field(line.severity.capitalize(), _without_severity(line.text),
                       problem="error" if line.severity == "error" else "")
                 for line in ordered[:MAX_LINES_SHOWN]]
    if len(result.lines) > MAX_LINES_SHOWN:
        children.append(Field("…", f"{len(result.lines) - MAX_LINES_SHOWN} more lines (dicomtui --json --validate)"))
    for study in analysis.validation.studies_of(message.index):
        lines = tuple(Field(line.severity.capitalize(), _without_severity(line.text)) for line in study.lines)
        children.append(Field(f"Study consistency ({study.tool})",
                              f"{counted(len(study.messages), 'object')} of study {study.study_instance_uid}: "
                              f"{counted(study.errors, 'error')}", children=lines))
    label = f"Validation ({result.tool}{', cached' if result.cached else ''})"
    return Field(label, summary, children=tuple(children),
                 problem="IOD errors" if result.errors else "not checked" if result.failed else "")


def _without_severity(text: str) -> str:
    """dciodvfy's line without its leading "Error - " / "Warning - ": the node's label says it."""
    for prefix in ("Error - ", "Warning - "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text
