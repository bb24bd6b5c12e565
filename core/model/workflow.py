"""The workflow across associations: storage commitments, procedure steps and worklist items.

A PACS engineer asks "why did the modality not delete the images", "why is the exam still
IN PROGRESS", "why is the worklist empty"; the answers span associations and minutes:

- Storage Commitment Push (PS3.4 Annex J): an N-ACTION-RQ (action type 1) names the
  instances and a Transaction UID; the SCP's N-EVENT-REPORT-RQ (event type 1: all committed,
  2: some failed, with a Failure Reason each) carries the same Transaction UID, on the same
  association or on a new one the SCP opens to the SCU (in the SCP role, J.3.3.1).  Linked by
  Transaction UID; when no report came, the reverse attempt (a TCP connection refused, an
  association rejected, or accepted and left without a report) from the SCP's host to the
  SCU's host after the request is tied in by hosts and time.
- Modality Performed Procedure Step (Annex F): N-CREATE (IN PROGRESS) and N-SETs
  (COMPLETED / DISCONTINUED) keyed by the SOP Instance UID, on any association.
- Modality Worklist (Annex K): items from the C-FIND responses, keyed by Accession Number and
  Study Instance UID, linked to the C-STOREs whose data sets carry them.

Requests and responses are already paired by the decoder per association and direction
(``Message.request`` / ``responses``: an N-EVENT-REPORT the SCP sends may reuse a message ID
the SCU used, in the other direction).

Built after the scan from indexes: one pass over the messages (data sets decoded only for
the N-ACTION, N-EVENT-REPORT, N-CREATE, N-SET and worklist C-FIND messages, and the first
elements of C-STOREs only when worklist items or procedure steps are there to link),
dictionaries keyed by UID, and per (SCP host, SCU host) the reverse attempts sorted by
time, found by bisection: O((M + A) log A).  Pure: reads the analysis, writes nothing.
"""

from __future__ import annotations

import bisect
import io
import struct
from dataclasses import dataclass, field
from typing import Any

STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"
MPPS = "1.2.840.10008.3.1.2.3.3"
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
C_STORE_RQ, C_FIND_RQ = 0x0001, 0x0020
N_EVENT_REPORT_RQ, N_SET_RQ, N_ACTION_RQ, N_CREATE_RQ = 0x0100, 0x0120, 0x0130, 0x0140
PENDING = (0xFF00, 0xFF01)
MAX_DATASET_BYTES = 4 << 20  # a commitment of thousands of instances is well below this
STORE_HEAD_BYTES = 64 * 1024  # Accession Number and Study Instance UID come early in a data set
STUDY_INSTANCE_UID_TAG = 0x0020000D
REVERSE_SLACK = 1.0  # seconds: a reverse attempt may start a little before the request's response is seen
REVERSE_WINDOW = 3600.0  # seconds after the request in which an attempt from the archive's host counts

# PS3.4 J.3.3.1 / C.14.1.1: Failure Reason (0008,1197).
FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0112: "no such object instance",
    0x0119: "class-instance conflict",
    0x0122: "referenced SOP class not supported",
    0x0131: "duplicate transaction UID",
    0x0213: "resource limitation",
}
FAILURE_ADVICE = {
    0x0110: "the archive failed while committing: its log says why",
    0x0112: "the archive does not hold this instance: was it stored, to this archive, under this UID?",
    0x0119: "the request names another SOP class than the instance was stored with: the modality's "
            "reference is wrong",
    0x0122: "the archive does not support this SOP class for commitment",
    0x0131: "the Transaction UID was used before: the modality must make a new one per request",
    0x0213: "the archive ran out of a resource (disk, queue): retry later",
}


def failure_reason_text(reason: int | None) -> str:
    if reason is None:
        return "no reason given"
    return FAILURE_REASONS.get(reason, f"reason 0x{reason:04X}")


# -- what the model holds -------------------------------------------------------------------------


@dataclass(slots=True)
class ReverseAttempt:
    """How the SCP tried to reach the SCU with the report: a connection or an association."""

    outcome: str  # "refused", "unanswered", "closed empty", "rejected", "no report sent", "aborted"
    time: float
    frame: int
    client: str
    server: str
    association: int | None = None
    detail: str = ""  # e.g. the A-ASSOCIATE-RJ's reason, the refused role

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "time": self.time, "frame": self.frame, "client": self.client,
                "server": self.server, "association": self.association, "detail": self.detail}


@dataclass(slots=True)
class Commitment:
    transaction_uid: str
    request: int  # message index of the N-ACTION-RQ
    association: int
    scu_ae: str
    scp_ae: str
    scu_host: str
    scp_host: str
    request_time: float
    requested: list[tuple[str, str]] = field(default_factory=list)  # (SOP Class UID, SOP Instance UID)
    request_status: int | None = None  # the N-ACTION-RSP's status (None: no response seen)
    reports: list[int] = field(default_factory=list)  # message indexes of the N-EVENT-REPORT-RQs
    committed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str, int | None]] = field(default_factory=list)  # (class, instance, reason)
    report_time: float | None = None
    report_status: int | None = None  # the N-EVENT-REPORT-RSP's status (None: no response seen)
    report_on_same_association: bool = False
    reverse: ReverseAttempt | None = None
    state: str = "unanswered"

    @property
    def time_to_commit(self) -> float | None:
        return None if self.report_time is None else max(0.0, self.report_time - self.request_time)

    def as_json(self, analysis) -> dict[str, Any]:
        report_associations = sorted({analysis.messages[index].association for index in self.reports})
        return {
            "transaction_uid": self.transaction_uid,
            "state": self.state,
            "scu_ae": self.scu_ae, "scp_ae": self.scp_ae,
            "requested": [instance for _class, instance in self.requested],
            "committed": list(self.committed),
            "failed": [{"sop_instance_uid": instance, "sop_class_uid": sop_class, "reason": reason,
                        "reason_meaning": failure_reason_text(reason)} for sop_class, instance, reason in self.failed],
            "request": self.request, "request_association": self.association,
            "request_status": self.request_status, "request_time": self.request_time,
            "reports": list(self.reports), "report_associations": report_associations,
            "report_time": self.report_time, "report_status": self.report_status,
            "time_to_commit": self.time_to_commit,
            "reverse": self.reverse.as_json() if self.reverse else None,
        }


@dataclass(slots=True)
class ProcedureStep:
    sop_instance_uid: str
    create: int | None = None  # message index of the N-CREATE-RQ
    sets: list[int] = field(default_factory=list)  # N-SET-RQs, in capture order
    final_status: str = ""
    performed_instances: list[str] = field(default_factory=list)
    accession_number: str = ""
    study_instance_uid: str = ""
    discontinuation_reason: str = ""  # "CODE (scheme) meaning"
    scu_ae: str = ""
    scp_ae: str = ""
    start_time: float | None = None
    end_time: float | None = None  # of the N-SET that set COMPLETED or DISCONTINUED

    @property
    def time_to_complete(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return max(0.0, self.end_time - self.start_time)

    def as_json(self, analysis) -> dict[str, Any]:
        messages = ([self.create] if self.create is not None else []) + self.sets
        return {
            "sop_instance_uid": self.sop_instance_uid, "final_status": self.final_status,
            "performed_instances": list(self.performed_instances),
            "accession_number": self.accession_number, "study_instance_uid": self.study_instance_uid,
            "discontinuation_reason": self.discontinuation_reason or None,
            "scu_ae": self.scu_ae, "scp_ae": self.scp_ae,
            "create": self.create, "sets": list(self.sets),
            "associations": sorted({analysis.messages[index].association for index in messages}),
            "start_time": self.start_time, "end_time": self.end_time, "time_to_complete": self.time_to_complete,
        }


@dataclass(slots=True)
class WorklistItem:
    accession_number: str
    study_instance_uid: str
    responses: list[int] = field(default_factory=list)  # C-FIND-RSP message indexes that carried it
    scheduled_station: str = ""
    patient_id: str = ""
    stored: list[str] = field(default_factory=list)  # SOP Instance UIDs of C-STOREs carrying its keys
    stores: list[int] = field(default_factory=list)  # their C-STORE-RQ message indexes
    scheduled_time: float = 0.0  # of the first response

    def as_json(self, analysis) -> dict[str, Any]:
        return {
            "accession_number": self.accession_number, "study_instance_uid": self.study_instance_uid,
            "scheduled_station_ae": self.scheduled_station, "patient_id": self.patient_id,
            "stored": list(self.stored), "responses": list(self.responses), "stores": list(self.stores),
            "associations": sorted({analysis.messages[index].association for index in self.responses + self.stores}),
        }


@dataclass(slots=True)
class EmptyWorklistQuery:
    """A worklist C-FIND answered with success and no match, and the keys that filtered."""

    request: int
    response: int
    keys: list[tuple[str, str]]  # (keyword path, value) of the non-empty matching keys


@dataclass(slots=True)
class StoredInstance:
    message: int  # the C-STORE-RQ
    association: int
    sop_class: str
    time: float
    status: int | None


@dataclass(slots=True)
class Workflow:
    commitments: list[Commitment] = field(default_factory=list)
    procedures: list[ProcedureStep] = field(default_factory=list)
    worklist: list[WorklistItem] = field(default_factory=list)
    empty_queries: list[EmptyWorklistQuery] = field(default_factory=list)
    stored: dict[str, StoredInstance] = field(default_factory=dict)  # SOP Instance UID -> its (last) C-STORE
    storing_aes: set[str] = field(default_factory=set)  # calling AE titles of the associations with C-STOREs
    capture_end: float = 0.0

    @property
    def empty(self) -> bool:
        return not (self.commitments or self.procedures or self.worklist or self.empty_queries)

    def as_json(self, analysis) -> dict[str, Any]:
        return {
            "commitments": [commitment.as_json(analysis) for commitment in self.commitments],
            "procedures": [procedure.as_json(analysis) for procedure in self.procedures],
            "worklist": [item.as_json(analysis) for item in self.worklist],
            "empty_worklist_queries": [{"request": query.request, "response": query.response,
                                        "keys": {path: value for path, value in query.keys}}
                                       for query in self.empty_queries],
        }


# -- building it ----------------------------------------------------------------------------------


def host_of(address: str) -> str:
    """'10.0.0.1:104' -> '10.0.0.1', '[fe80::1]:104' -> '[fe80::1]'."""
    return address.rsplit(":", 1)[0]


def _dataset(analysis, message):
    if not message.has_dataset or not message.complete:
        return None
    try:
        parsed = analysis.decode_dataset(message, MAX_DATASET_BYTES)
    except Exception:  # a plugin's decoder must not stop the workflow model
        return None
    return getattr(parsed, "dataset", None)


def _text(dataset, keyword: str) -> str:
    if dataset is None:
        return ""
    try:
        value = dataset.get(keyword)
    except Exception:
        return ""
    if value is None or isinstance(value, (bytes, list)):
        return ""
    return str(value).strip()


def _items(dataset, keyword: str) -> list:
    if dataset is None:
        return []
    try:
        value = dataset.get(keyword)
        return list(value) if value is not None else []
    except Exception:
        return []


def _final_status_of(message, analysis) -> int | None:
    for index in reversed(message.responses):
        status = analysis.messages[index].status
        if status not in PENDING:
            return status
    return None


def _ok(status: int | None) -> bool:
    """Success or warning (PS3.7 C: 0x0000, 0x0001, 0x0107, 0x0116, 0xBxxx)."""
    return status is not None and (status in (0x0000, 0x0001, 0x0107, 0x0116) or status & 0xF000 == 0xB000)


class _Builder:
    def __init__(self, analysis) -> None:
        self.analysis = analysis
        self.workflow = Workflow(capture_end=analysis.last_time or 0.0)
        self.commitments: dict[str, Commitment] = {}
        self.reports: dict[str, list[tuple[int, Any]]] = {}  # Transaction UID -> (N-EVENT-REPORT-RQ, data set)
        self.procedures: dict[str, ProcedureStep] = {}
        self.worklist: dict[tuple[str, str], WorklistItem] = {}
        self.store_messages: list = []

    def association(self, message):
        return self.analysis.associations[message.association]

    def hosts(self, message) -> tuple[str, str]:
        connection = self.analysis.connections[message.connection]
        return host_of(connection.client), host_of(connection.server)

    def build(self) -> Workflow:
        analysis = self.analysis
        for message in analysis.messages:
            field_ = message.command_field
            if field_ == C_STORE_RQ:
                self.store(message)
            elif field_ == N_ACTION_RQ and message.affected_sop_class == STORAGE_COMMITMENT_PUSH:
                self.action(message)
            elif field_ == N_EVENT_REPORT_RQ and message.affected_sop_class == STORAGE_COMMITMENT_PUSH:
                self.event_report(message)
            elif field_ == N_CREATE_RQ and message.affected_sop_class == MPPS:
                self.mpps_create(message)
            elif field_ == N_SET_RQ and message.affected_sop_class == MPPS:
                self.mpps_set(message)
            elif field_ == C_FIND_RQ and message.affected_sop_class == WORKLIST_FIND:
                self.worklist_find(message)
        self.link_reports()
        self.link_stores()
        workflow = self.workflow
        workflow.commitments = sorted(self.commitments.values(), key=lambda commitment: commitment.request)
        workflow.procedures = sorted(self.procedures.values(), key=lambda step: (
            step.create if step.create is not None else (step.sets[0] if step.sets else 0)))
        workflow.worklist = sorted(self.worklist.values(), key=lambda item: item.responses[0])
        return workflow

    # -- storage ---------------------------------------------------------------------------------

    def store(self, message) -> None:
        instance = message.affected_sop_instance
        if not instance:
            return
        self.workflow.stored[instance] = StoredInstance(message.index, message.association,
                                                        message.affected_sop_class, message.start_time,
                                                        _final_status_of(message, self.analysis))
        self.store_messages.append(message)
        self.workflow.storing_aes.add(self.association(message).calling_ae.strip())

    def link_stores(self) -> None:
        """C-STOREs to the worklist items and procedure steps whose Accession Number / Study UID they carry."""
        if not self.worklist:
            return
        by_accession = {item.accession_number: item for item in self.worklist.values() if item.accession_number}
        by_study = {item.study_instance_uid: item for item in self.worklist.values() if item.study_instance_uid}
        for message in self.store_messages:
            accession, study = store_keys(self.analysis, message)
            item = by_accession.get(accession) if accession else None
            if item is None and study:
                item = by_study.get(study)
            if item is not None:
                item.stored.append(message.affected_sop_instance)
                item.stores.append(message.index)

    # -- storage commitment ----------------------------------------------------------------------

    def action(self, message) -> None:
        dataset = _dataset(self.analysis, message)
        transaction = _text(dataset, "TransactionUID")
        if not transaction:
            return
        association = self.association(message)
        scu_host, scp_host = self.hosts(message)
        if message.direction == 1:  # the association's acceptor asked: it is the SCU
            scu_host, scp_host = scp_host, scu_host
        commitment = Commitment(
            transaction, message.index, message.association,
            (association.calling_ae if message.direction == 0 else association.called_ae).strip(),
            (association.called_ae if message.direction == 0 else association.calling_ae).strip(),
            scu_host, scp_host, message.end_time)
        for item in _items(dataset, "ReferencedSOPSequence"):
            commitment.requested.append((_text(item, "ReferencedSOPClassUID"), _text(item, "ReferencedSOPInstanceUID")))
        commitment.request_status = _final_status_of(message, self.analysis)
        for index in message.responses:
            response = self.analysis.messages[index]
            if response.status not in PENDING:
                commitment.request_time = response.end_time
        self.commitments.setdefault(transaction, commitment)

    def event_report(self, message) -> None:
        dataset = _dataset(self.analysis, message)
        transaction = _text(dataset, "TransactionUID")
        if transaction:
            self.reports.setdefault(transaction, []).append((message, dataset))

    def link_reports(self) -> None:
        attempts = self.reverse_index() if any(
            transaction not in self.reports for transaction in self.commitments) else {}
        for transaction, commitment in self.commitments.items():
            reports = self.reports.get(transaction, [])
            for message, dataset in reports:
                commitment.reports.append(message.index)
                if commitment.report_time is None:
                    commitment.report_time = message.end_time
                    commitment.report_status = _final_status_of(message, self.analysis)
                    commitment.report_on_same_association = message.association == commitment.association
                committed = {_text(item, "ReferencedSOPInstanceUID")
                             for item in _items(dataset, "ReferencedSOPSequence")}
                for instance in sorted(committed - set(commitment.committed)):
                    commitment.committed.append(instance)
                for item in _items(dataset, "FailedSOPSequence"):
                    reason = item.get("FailureReason") if item is not None else None
                    commitment.failed.append((_text(item, "ReferencedSOPClassUID"),
                                              _text(item, "ReferencedSOPInstanceUID"),
                                              reason if isinstance(reason, int) else None))
            failed_now = {instance for _class, instance, _reason in commitment.failed} - set(commitment.committed)
            commitment.failed = [entry for entry in commitment.failed if entry[1] in failed_now]
            if commitment.request_status is not None and not _ok(commitment.request_status):
                commitment.state = "request_failed"
            elif reports:
                commitment.state = "failed_items" if commitment.failed else "committed"
            else:
                commitment.reverse = self.find_reverse(attempts, commitment)
                outcome = commitment.reverse.outcome if commitment.reverse else ""
                if outcome == "refused":
                    commitment.state = "reverse_refused"
                elif outcome in ("rejected", "no report sent", "aborted"):
                    commitment.state = "reverse_rejected"
                else:
                    commitment.state = "unanswered"

    def reverse_index(self) -> dict[tuple[str, str], list[tuple[float, int, ReverseAttempt]]]:
        """(client host, server host) -> attempts by start time: connections without a byte and
        associations that propose Storage Commitment Push (an SCP reporting to its SCU)."""
        analysis = self.analysis
        index: dict[tuple[str, str], list] = {}
        for attempt in analysis.connection_attempts:
            entry = ReverseAttempt(attempt.outcome, attempt.first_time, attempt.first_frame, attempt.client,
                                   attempt.server)
            index.setdefault((attempt.client_host, attempt.server_host), []).append(
                (attempt.first_time, attempt.first_frame, entry))
        for association in analysis.associations:
            if not any(context.abstract_syntax == STORAGE_COMMITMENT_PUSH for context in association.contexts.values()):
                continue
            connection = analysis.connections[association.connection]
            outcome, detail = self.reverse_outcome(association)
            entry = ReverseAttempt(outcome, association.start_time, association.first_frame, connection.client,
                                   connection.server, association.index, detail)
            index.setdefault((host_of(connection.client), host_of(connection.server)), []).append(
                (association.start_time, association.first_frame, entry))
        for entries in index.values():
            entries.sort(key=lambda entry: (entry[0], entry[1]))
        return index

    def reverse_outcome(self, association) -> tuple[str, str]:
        """What became of an association that proposed Storage Commitment (a report's carrier)."""
        if str(association.state) == "rejected":
            return "rejected", association.end_reason
        context = next((context for context in association.contexts.values()
                        if context.abstract_syntax == STORAGE_COMMITMENT_PUSH), None)
        if context is not None and context.result not in (None, 0):
            return "rejected", f"Storage Commitment presentation context: {context.result_text}"
        if any(message.command_field == N_EVENT_REPORT_RQ
               for message in self.analysis.relations.messages_of(association.index)):
            return "report sent", ""
        proposed = association.roles.get(STORAGE_COMMITMENT_PUSH)
        answered = association.acceptor_roles.get(STORAGE_COMMITMENT_PUSH)
        if association.response_pdu is not None and (not answered or not answered[1]):
            why = "not answered (the default: the requestor is SCU only)" if not answered else "refused"
            if proposed is None or not proposed[1]:
                why = "not proposed by the requestor"
            return "no report sent", (f"the SCP role for Storage Commitment in SCP/SCU Role Selection was {why}; "
                                      "the archive may not send N-EVENT-REPORT on this association")
        if str(association.state) == "aborted":
            return "aborted", association.end_reason
        return "no report sent", ""

    def find_reverse(self, index, commitment: Commitment) -> ReverseAttempt | None:
        """The first attempt from the SCP's host to the SCU's host after the request (not the request's own)."""
        entries = index.get((commitment.scp_host, commitment.scu_host))
        if not entries:
            return None
        position = bisect.bisect_left(entries, commitment.request_time - REVERSE_SLACK, key=lambda entry: entry[0])
        for when, _frame, attempt in entries[position:]:
            if when > commitment.request_time + REVERSE_WINDOW:
                break
            if attempt.association == commitment.association:
                continue
            if attempt.outcome == "report sent":
                continue  # another transaction's report
            return attempt
        return None

    # -- procedure steps -------------------------------------------------------------------------

    def procedure(self, uid: str, message) -> ProcedureStep:
        step = self.procedures.get(uid)
        if step is None:
            association = self.association(message)
            step = self.procedures[uid] = ProcedureStep(uid, scu_ae=association.calling_ae.strip(),
                                                        scp_ae=association.called_ae.strip())
        return step

    def mpps_create(self, message) -> None:
        uid = message.affected_sop_instance
        if not uid:  # the SCP chose it: it is in the N-CREATE-RSP (PS3.4 F.7.2.1)
            for index in message.responses:
                uid = self.analysis.messages[index].affected_sop_instance or uid
        if not uid:
            return
        status = _final_status_of(message, self.analysis)
        if status is not None and not _ok(status):
            return  # not created (rules.status reports the failure)
        dataset = _dataset(self.analysis, message)
        step = self.procedure(uid, message)
        step.create = message.index
        step.start_time = message.start_time
        if not step.final_status:
            step.final_status = _text(dataset, "PerformedProcedureStepStatus") or "IN PROGRESS"
        for attributes in _items(dataset, "ScheduledStepAttributesSequence")[:1]:
            step.accession_number = _text(attributes, "AccessionNumber")
            step.study_instance_uid = _text(attributes, "StudyInstanceUID")
        self.performed(step, dataset)

    def mpps_set(self, message) -> None:
        uid = message.affected_sop_instance
        if not uid:
            return
        status = _final_status_of(message, self.analysis)
        if status is not None and not _ok(status):
            return
        dataset = _dataset(self.analysis, message)
        step = self.procedure(uid, message)
        step.sets.append(message.index)
        new_status = _text(dataset, "PerformedProcedureStepStatus")
        if new_status:
            step.final_status = new_status
            if new_status in ("COMPLETED", "DISCONTINUED"):
                step.end_time = message.end_time
        for code in _items(dataset, "PerformedProcedureStepDiscontinuationReasonCodeSequence")[:1]:
            step.discontinuation_reason = (f"{_text(code, 'CodeValue')} ({_text(code, 'CodingSchemeDesignator')}) "
                                           f"{_text(code, 'CodeMeaning')}").strip()
        self.performed(step, dataset)

    @staticmethod
    def performed(step: ProcedureStep, dataset) -> None:
        series = _items(dataset, "PerformedSeriesSequence")
        if not series:
            return
        instances = []
        for item in series:
            for keyword in ("ReferencedImageSequence", "ReferencedNonImageCompositeSOPInstanceSequence"):
                instances.extend(_text(reference, "ReferencedSOPInstanceUID") for reference in _items(item, keyword))
        step.performed_instances = [uid for uid in instances if uid]

    # -- worklist --------------------------------------------------------------------------------

    def worklist_find(self, message) -> None:
        analysis = self.analysis
        responses = [analysis.messages[index] for index in message.responses]
        matches = [response for response in responses if response.status in PENDING]
        final = [response for response in responses if response.status not in PENDING]
        if not matches:
            if final and final[-1].status == 0:
                self.workflow.empty_queries.append(EmptyWorklistQuery(
                    message.index, final[-1].index, query_keys(_dataset(analysis, message))))
            return
        for response in matches:
            dataset = _dataset(analysis, response)
            accession, study = _text(dataset, "AccessionNumber"), _text(dataset, "StudyInstanceUID")
            if not (accession or study):
                continue
            item = self.worklist.get((accession, study))
            if item is None:
                item = self.worklist[(accession, study)] = WorklistItem(accession, study,
                                                                       scheduled_time=response.end_time)
                item.patient_id = _text(dataset, "PatientID")
                for step in _items(dataset, "ScheduledProcedureStepSequence")[:1]:
                    item.scheduled_station = _text(step, "ScheduledStationAETitle")
            item.responses.append(response.index)


def query_keys(dataset, prefix: str = "") -> list[tuple[str, str]]:
    """The non-empty matching keys of a query identifier, nested sequences as 'Sequence>Keyword'."""
    keys: list[tuple[str, str]] = []
    if dataset is None:
        return keys
    try:
        elements = list(dataset)
    except Exception:
        return keys
    for element in elements:
        keyword = element.keyword or f"({element.tag.group:04X},{element.tag.element:04X})"
        if keyword in ("SpecificCharacterSet", "QueryRetrieveLevel"):
            continue
        if element.VR == "SQ":
            for item in list(element.value or [])[:1]:
                keys.extend(query_keys(item, f"{prefix}{keyword}>"))
            continue
        value = element.value
        if value is None or value == "" or isinstance(value, bytes):
            continue
        text = str(value).strip()
        if text and text != "*":
            keys.append((prefix + keyword, text))
    return keys


ACCESSION_NUMBER_TAG = 0x00080050
LONG_LENGTH_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV",
                             b"UV"))


def _walk_head(data: bytes, implicit: bool) -> dict[int, bytes] | None:
    """Accession Number and Study Instance UID from the element headers of a little-endian data set.

    Steps over values without converting them (a C-STORE has ~50 elements before (0020,000D): pydicom
    converting each cost ~1 ms a store on a day).  None when a value of undefined length (a
    sequence) comes first: the caller lets pydicom read it.
    """
    found: dict[int, bytes] = {}
    position, size = 0, len(data)
    unpack = struct.unpack_from
    while position + 8 <= size:
        group, element = unpack("<HH", data, position)
        tag = group << 16 | element
        if tag > STUDY_INSTANCE_UID_TAG:
            break
        if implicit:
            length, header = unpack("<I", data, position + 4)[0], 8
        elif data[position + 4:position + 6] in LONG_LENGTH_VRS:
            if position + 12 > size:
                break
            length, header = unpack("<I", data, position + 8)[0], 12
        else:
            length, header = unpack("<H", data, position + 6)[0], 8
        if length == 0xFFFFFFFF:
            return None
        start = position + header
        if tag in (ACCESSION_NUMBER_TAG, STUDY_INSTANCE_UID_TAG):
            found[tag] = data[start:start + length]
        position = start + length
    return found


def _value_text(value: bytes | None) -> str:
    return value.decode("latin-1").strip(" \0") if value else ""


def store_keys(analysis, message) -> tuple[str, str]:
    """(Accession Number, Study Instance UID) of a C-STORE's data set, read from its first elements."""
    if not message.has_dataset or not message.dataset_fragments:
        return "", ""
    syntax = message.transfer_syntax
    first = message.dataset_fragments[0]
    length = min(first.length, STORE_HEAD_BYTES)
    data = analysis.read_stream(message.connection, message.direction, first.stream_offset,
                                first.stream_offset + length)
    if not data:
        return "", ""
    data = bytes(data)
    if syntax == "1.2.840.10008.1.2.1.99":  # deflated: the shared codec inflates (bounded)
        dataset = _dataset(analysis, message)
        return _text(dataset, "AccessionNumber"), _text(dataset, "StudyInstanceUID")
    from dicomtui.core.protocol.datasets import guess_transfer_syntax

    if message.syntax_guessed or not syntax:
        syntax = guess_transfer_syntax(data[:8])
    implicit = syntax == "1.2.840.10008.1.2"
    little = syntax != "1.2.840.10008.1.2.2"
    if little:
        found = _walk_head(data, implicit)
        if found is not None:
            return _value_text(found.get(ACCESSION_NUMBER_TAG)), _value_text(found.get(STUDY_INSTANCE_UID_TAG))
    from dicomtui.core.base.library_warnings import pydicom_warnings
    from pydicom.filereader import read_dataset

    try:
        with pydicom_warnings():
            dataset = read_dataset(io.BytesIO(data), implicit, little,
                                   stop_when=lambda tag, _vr, _length: tag > STUDY_INSTANCE_UID_TAG)
    except Exception:
        return "", ""
    return _text(dataset, "AccessionNumber"), _text(dataset, "StudyInstanceUID")


def build_workflow(analysis) -> Workflow:
    """The workflow model of an analysis (see the module docstring).

    Empty when a live capture's retention limit dropped the oldest messages or associations: a
    workflow missing its start would mislead (and the dropped rows cannot be read).
    """
    # core/pipeline/retention.py's lists keep every index and forget their head (``base`` of them)
    if getattr(analysis.messages, "base", 0) or getattr(analysis.associations, "base", 0):
        return Workflow(capture_end=analysis.last_time or 0.0)
    return _Builder(analysis).build()
