"""Expert rules across associations: storage commitment, MPPS and worklist (issue 26).

They read the workflow model (``analysis.workflow``, core/model/workflow.py) once per
capture and report what sites actually hit: a commitment accepted and never reported
(after ``commitment_wait_seconds``), the report's association refused by TCP or rejected by
the modality (AE title, SCP role), instances the archive failed to commit (with the Failure
Reason's meaning), a report the modality did not accept, instances stored but never
committed or committed but never stored, a procedure step left IN PROGRESS (after
``mpps_complete_seconds``), DISCONTINUED (with its reason) or COMPLETED naming images never
stored, and a worklist query that matched nothing (with the keys that filtered).  Every
finding carries a ``workflow.*`` code; where the workflow went well, nothing is reported.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.model import Group, Severity
from dicomtui.core.model.workflow import FAILURE_ADVICE, failure_reason_text

from .common import first_pdu_of_type, option, quoted

A_RELEASE_RQ = 5
MAX_ITEMS_PER_COMMITMENT = 20  # failed instances reported one by one; the rest in one line
SHOWN_UIDS = 5


@hookimpl
def dicomtui_register_rule_options(register):
    register("commitment_wait_seconds", "300",
             "seconds after a storage commitment request without report before it counts as unanswered "
             "(before that, and while live, it is a note)")
    register("mpps_complete_seconds", "3600",
             "seconds after an MPPS N-CREATE without N-SET COMPLETED/DISCONTINUED before it counts as not "
             "completed (before that, a note)")


@hookimpl
def dicomtui_check_provisional(analysis, report):
    """Live: the same findings on the capture so far (a commitment not reported yet is a note until
    the wait passes); replaced at every poll, settled by ``dicomtui_check_analysis`` at the end."""
    dicomtui_check_analysis(analysis, report)


@hookimpl
def dicomtui_check_analysis(analysis, report):
    workflow = analysis.workflow
    if workflow.empty:
        return
    for commitment in workflow.commitments:
        _commitment(analysis, workflow, commitment, report)
    _stored_not_committed(analysis, workflow, report)
    for procedure in workflow.procedures:
        _procedure(analysis, workflow, procedure, report)
    for query in workflow.empty_queries:
        _empty_worklist(analysis, query, report)


def _uids(uids: list[str]) -> str:
    shown = ", ".join(uids[:SHOWN_UIDS])
    return shown + (f" and {len(uids) - SHOWN_UIDS} more" if len(uids) > SHOWN_UIDS else "")


def _message_frame(analysis, index: int | None) -> int:
    if index is None:
        return 0
    message = analysis.messages[index]
    return message.last_frame or message.first_frame


# -- storage commitment -------------------------------------------------------------------------------


def _commitment(analysis, workflow, commitment, report) -> None:
    request = analysis.messages[commitment.request]
    who = f"{quoted(commitment.scu_ae)} → {quoted(commitment.scp_ae)}"
    frame = _message_frame(analysis, request.responses[-1] if request.responses else commitment.request)
    where = {"association": commitment.association, "message_index": commitment.request}
    state = commitment.state
    if state == "unanswered":
        waited = max(0.0, workflow.capture_end - commitment.request_time)
        wait = option(analysis, "commitment_wait_seconds", 300.0)
        reverse = commitment.reverse
        if reverse is not None and reverse.outcome == "unanswered":
            seen = (f"; the archive's connection from {reverse.client} to {reverse.server} got no answer (SYN "
                    "unanswered: a firewall dropping it, or a wrong address for the modality)")
        elif reverse is not None and reverse.outcome == "closed empty":
            seen = (f"; the archive's connection from {reverse.client} to {reverse.server} was accepted and "
                    "closed without an A-ASSOCIATE (not a DICOM port, or a proxy refusing it)")
        else:
            seen = ""
        advice = ("an N-ACTION-RSP with success only means the request was accepted; check the archive's "
                  "commitment queue and log, that it knows where to report to (the modality's AE title, host "
                  "and port), and whether it reports on the request's association (then the modality must "
                  "keep it open) or on a new one")
        if waited >= wait:
            report.add(Severity.WARNING, Group.WORKFLOW,
                       f"storage commitment {who} (Transaction UID {commitment.transaction_uid}, "
                       f"{len(commitment.requested)} instances) was never reported: no N-EVENT-REPORT in the "
                       f"{waited:.0f} s after the request{seen} — {advice}", frame, **where,
                       code="workflow.commitment_unanswered")
        else:
            report.add(Severity.NOTE, Group.WORKFLOW,
                       f"storage commitment {who} (Transaction UID {commitment.transaction_uid}, "
                       f"{len(commitment.requested)} instances) not reported yet: the capture ends {waited:.1f} s "
                       f"after the request, less than the {wait:g} s wait (-o commitment_wait_seconds){seen} — "
                       f"the report may come later; if it never does, {advice}", frame, **where,
                       code="workflow.commitment_unanswered")
    elif state == "reverse_refused":
        reverse = commitment.reverse
        report.add(Severity.ERROR, Group.WORKFLOW,
                   f"storage commitment {who} (Transaction UID {commitment.transaction_uid}): the archive's "
                   f"connection from {reverse.client} to the modality at {reverse.server} for the report was "
                   f"refused (TCP RST): nothing listens there — check that the modality's storage commitment "
                   f"SCP is running and that the port the archive has configured for {quoted(commitment.scu_ae)} "
                   f"is the one it listens on (a firewall may also reset)", reverse.frame, **where,
                   code="workflow.commitment_reverse_refused")
    elif state == "reverse_rejected":
        reverse = commitment.reverse
        if reverse.outcome == "rejected":
            reverse_association = analysis.associations[reverse.association]
            text = (f"storage commitment {who} (Transaction UID {commitment.transaction_uid}): the modality "
                    f"rejected the archive's association for the report ({reverse.detail or 'rejected'}; called "
                    f"AE {quoted(reverse_association.called_ae)}, calling AE "
                    f"{quoted(reverse_association.calling_ae)}) — check the AE title and port the archive has "
                    f"configured for the modality (it asked as {quoted(commitment.scu_ae)}), that the modality "
                    f"accepts {quoted(reverse_association.calling_ae)} as a calling AE, and that it offers "
                    f"Storage Commitment Push Model with the SCP role for the archive")
        elif reverse.outcome == "aborted":
            text = (f"storage commitment {who} (Transaction UID {commitment.transaction_uid}): the archive's "
                    f"association for the report was aborted before the report ({reverse.detail}) — the "
                    f"modality's or archive's log says why")
        else:
            text = (f"storage commitment {who} (Transaction UID {commitment.transaction_uid}): the archive "
                    f"opened an association to the modality but sent no report on it"
                    + (f": {reverse.detail}" if reverse.detail else "")
                    + " — the modality must accept SCP/SCU Role Selection with the SCP role for Storage "
                    "Commitment Push Model (PS3.4 J.3.3.1), or the archive report on the request's association")
        report.add(Severity.ERROR, Group.WORKFLOW, text, reverse.frame, reverse.association, None,
                   commitment.request, code="workflow.commitment_reverse_rejected")
    elif state == "failed_items":
        report_index = commitment.reports[-1]
        report_frame = _message_frame(analysis, report_index)
        for sop_class, instance, reason in commitment.failed[:MAX_ITEMS_PER_COMMITMENT]:
            advice = FAILURE_ADVICE.get(reason, "the archive's log says why")
            report.add(Severity.ERROR, Group.WORKFLOW,
                       f"storage commitment {who} (Transaction UID {commitment.transaction_uid}): instance "
                       f"{instance} not committed: {failure_reason_text(reason)}"
                       + (f" (0x{reason:04X})" if reason is not None else "") + f" — {advice}; the modality must "
                       "not delete it", report_frame, analysis.messages[report_index].association, None,
                       report_index, code="workflow.commitment_failed_items")
        more = len(commitment.failed) - MAX_ITEMS_PER_COMMITMENT
        if more > 0:
            report.add(Severity.ERROR, Group.WORKFLOW,
                       f"storage commitment {who} (Transaction UID {commitment.transaction_uid}): {more} more "
                       "instances not committed (see the report's Failed SOP Sequence)", report_frame,
                       analysis.messages[report_index].association, None, report_index,
                       code="workflow.commitment_failed_items")
    if commitment.reports and commitment.report_status != 0:  # a failure, or no answer at all (None)
        _report_not_accepted(analysis, commitment, who, report)
    _committed_not_stored(analysis, workflow, commitment, who, report)


def _report_not_accepted(analysis, commitment, who: str, report) -> None:
    report_index = commitment.reports[0]
    message = analysis.messages[report_index]
    status = ("no N-EVENT-REPORT-RSP" if commitment.report_status is None
              else f"N-EVENT-REPORT-RSP status 0x{commitment.report_status:04X}")
    text = f"storage commitment {who} (Transaction UID {commitment.transaction_uid}): the modality did not " \
           f"accept the report ({status})"
    if commitment.report_on_same_association:
        release = first_pdu_of_type(analysis, message.association, A_RELEASE_RQ)
        raced = release is not None and release.direction == 0 and release.timestamp <= message.start_time
        text += (" sent on the request's own association" + (
            ", after the modality's A-RELEASE-RQ (the release raced the report)" if raced else "")
            + " — many modalities take the report only on a new association the archive opens to their SCP "
            "(and release at once after the N-ACTION-RSP): configure the archive to report on a new "
            "association, or the modality to wait for the report")
    else:
        text += " — the modality's log says why; until it accepts the report it keeps the images"
    report.add(Severity.WARNING, Group.WORKFLOW, text, _message_frame(analysis, report_index), message.association,
               None, report_index, code="workflow.commitment_report_not_accepted")


def _committed_not_stored(analysis, workflow, commitment, who: str, report) -> None:
    missing = [instance for _class, instance in commitment.requested if instance and instance not in workflow.stored]
    if not missing:
        return
    if commitment.scu_ae not in workflow.storing_aes:
        return  # the capture holds none of this modality's stores: it does not span the session
    report.add(Severity.WARNING, Group.WORKFLOW,
               f"storage commitment {who} (Transaction UID {commitment.transaction_uid}) names "
               f"{len(missing)} instance(s) never stored in this capture: {_uids(missing)} — the store may "
               "precede the capture or have gone to another archive or port, or the modality stored them under "
               "other UIDs (then the archive fails them with 0x0112)",
               _message_frame(analysis, commitment.request), commitment.association, None, commitment.request,
               code="workflow.committed_not_stored")


def _stored_not_committed(analysis, workflow, report) -> None:
    """Per (modality, archive) pair that asked for commitment: stores before its last request, in none."""
    by_pair: dict[tuple[str, str], list] = {}
    for commitment in workflow.commitments:
        by_pair.setdefault((commitment.scu_ae, commitment.scp_ae), []).append(commitment)
    if not by_pair:
        return
    requested = {instance for commitment in workflow.commitments for _class, instance in commitment.requested}
    stores_by_pair: dict[tuple[str, str], list] = {}  # one pass over the stores, not one per pair
    for instance, stored in workflow.stored.items():
        association = analysis.associations[stored.association]
        key = (association.calling_ae.strip(), association.called_ae.strip())
        if key in by_pair:
            stores_by_pair.setdefault(key, []).append((instance, stored))
    for (scu, scp), commitments in by_pair.items():
        last_request = max(commitment.request_time for commitment in commitments)
        left_out = [(instance, stored) for instance, stored in stores_by_pair.get((scu, scp), ())
                    if stored.time <= last_request and instance not in requested and stored.status == 0]
        if left_out:
            first_store = left_out[0][1]
            report.add(Severity.WARNING, Group.WORKFLOW,
                       f"{len(left_out)} instance(s) stored by {quoted(scu)} to {quoted(scp)} before its storage "
                       f"commitment requests are in none of them: {_uids([uid for uid, _ in left_out])} — the "
                       "modality will not delete them (or, worse, deletes them unverified); check which images "
                       "its commitment request includes", analysis.messages[first_store.message].last_frame,
                       first_store.association, None, first_store.message, code="workflow.stored_not_committed")


# -- procedure steps ---------------------------------------------------------------------------------


def _procedure(analysis, workflow, procedure, report) -> None:
    first = procedure.create if procedure.create is not None else procedure.sets[0]
    last = procedure.sets[-1] if procedure.sets else first
    message = analysis.messages[last]
    who = f"{quoted(procedure.scu_ae)} → {quoted(procedure.scp_ae)}"
    what = f"procedure step {procedure.sop_instance_uid}" + (
        f" (accession {quoted(procedure.accession_number)})" if procedure.accession_number else "")
    status = procedure.final_status
    if status == "IN PROGRESS":
        waited = max(0.0, workflow.capture_end - (procedure.start_time or workflow.capture_end))
        wait = option(analysis, "mpps_complete_seconds", 3600.0)
        advice = ("the RIS shows the exam as still running and will not bill or report it: check that the "
                  "modality sends N-SET COMPLETED or DISCONTINUED (to this RIS, for this SOP Instance UID) when "
                  "the exam ends, and the RIS's log for a refused N-SET")
        if waited >= wait:
            report.add(Severity.WARNING, Group.WORKFLOW,
                       f"MPPS {who}: {what} is still IN PROGRESS {waited:.0f} s after its N-CREATE — {advice}",
                       _message_frame(analysis, last), message.association, None, last,
                       code="workflow.mpps_not_completed")
        else:
            report.add(Severity.NOTE, Group.WORKFLOW,
                       f"MPPS {who}: {what} is still IN PROGRESS when the capture ends ({waited:.1f} s after its "
                       f"N-CREATE, less than -o mpps_complete_seconds={wait:g}) — the exam may still run; if no "
                       f"N-SET follows, {advice}", _message_frame(analysis, last), message.association, None, last,
                       code="workflow.mpps_not_completed")
    elif status == "DISCONTINUED":
        reason = procedure.discontinuation_reason or "no reason code given"
        report.add(Severity.WARNING, Group.WORKFLOW,
                   f"MPPS {who}: {what} was DISCONTINUED: {reason} — the RIS keeps the order open or cancels it; "
                   "images already stored belong to an exam the RIS considers not done",
                   _message_frame(analysis, last), message.association, None, last, code="workflow.mpps_discontinued")
    if status in ("COMPLETED", "DISCONTINUED") and procedure.performed_instances:
        missing = [uid for uid in procedure.performed_instances if uid not in workflow.stored]
        if missing and procedure.scu_ae in workflow.storing_aes:
            report.add(Severity.WARNING, Group.WORKFLOW,
                       f"MPPS {who}: {what} {status} names {len(missing)} performed instance(s) never stored in "
                       f"this capture: {_uids(missing)} — the RIS expects images the archive may not have: "
                       "they may have been stored under other UIDs, deleted at the modality, sent to another "
                       "archive, or before the capture", _message_frame(analysis, last), message.association,
                       None, last, code="workflow.mpps_instances_not_stored")


# -- worklist ---------------------------------------------------------------------------------------


def _empty_worklist(analysis, query, report) -> None:
    request = analysis.messages[query.request]
    association = analysis.associations[request.association]
    keys = ", ".join(f"{path.replace('ScheduledProcedureStepSequence>', '')}={quoted(value)}"
                     for path, value in query.keys) or "none (a universal query)"
    report.add(Severity.WARNING, Group.WORKFLOW,
               f"worklist query by {quoted(association.calling_ae.strip())} to "
               f"{quoted(association.called_ae.strip())} (message ID {request.message_id}) matched nothing; "
               f"keys that filtered: {keys} — the RIS schedules each item for a station AE title, modality and "
               "date: compare these with the scheduled item (a station AE title other than the modality's, a "
               "date in another time zone or format, a modality code the RIS does not use)",
               _message_frame(analysis, query.response), request.association, None, query.request,
               code="workflow.worklist_no_match")
