"""The workflow per study / accession, as rows: ``--workflow`` prints them, the TUI's workflow view shows them.

Each study (or accession, or a commitment whose instances belong to no known study) is a
group: scheduled (worklist item) -> performed (MPPS) -> stored (C-STOREs) -> committed
(storage commitment), each row with its time since the capture's start, the associations
involved and the message it is about (the TUI's Enter goes there).  Built from
``analysis.workflow`` (core/model/workflow.py) with dictionaries: linear in its size.
Time-to-commit and time-to-complete statistics for ``--stats`` are here too.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.model.workflow import failure_reason_text

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis

STATE_WORDS = {
    "committed": "all committed",
    "failed_items": "some NOT committed",
    "unanswered": "no report",
    "reverse_refused": "report connection REFUSED",
    "reverse_rejected": "report association REJECTED",
    "request_failed": "request FAILED",
}


@dataclass(slots=True)
class WorkflowRow:
    """One line of the workflow view: a group header (``stage`` "") or one stage of it."""

    group: int
    stage: str  # "", "scheduled", "performed", "stored", "committed"
    text: str
    time: float | None = None  # seconds since the capture's first frame
    message: int | None = None  # the message the row is about (Enter goes there)
    associations: list[int] = field(default_factory=list)
    problem: bool = False  # a stage that went wrong (shown in the warning colour)


@dataclass(slots=True)
class _Group:
    label: str
    study: str = ""
    accession: str = ""
    worklist: list = field(default_factory=list)
    procedures: list = field(default_factory=list)
    commitments: list = field(default_factory=list)
    instances: set[str] = field(default_factory=set)
    first_time: float = float("inf")


def _groups(analysis: Analysis) -> list[_Group]:
    workflow = analysis.workflow
    groups: list[_Group] = []
    by_study: dict[str, _Group] = {}
    by_accession: dict[str, _Group] = {}
    by_instance: dict[str, _Group] = {}

    def group_for(study: str, accession: str) -> _Group:
        found = by_study.get(study) if study else None
        if found is None and accession:
            found = by_accession.get(accession)
        if found is None:
            found = _Group("", study, accession)
            groups.append(found)
        if study and not found.study:
            found.study = study
        if accession and not found.accession:
            found.accession = accession
        if found.study:
            by_study.setdefault(found.study, found)
        if found.accession:
            by_accession.setdefault(found.accession, found)
        return found

    for item in workflow.worklist:
        group = group_for(item.study_instance_uid, item.accession_number)
        group.worklist.append(item)
        group.instances.update(item.stored)
        for uid in item.stored:
            by_instance.setdefault(uid, group)
    for step in workflow.procedures:
        group = None
        if step.study_instance_uid or step.accession_number:
            group = group_for(step.study_instance_uid, step.accession_number)
        else:
            group = next((by_instance[uid] for uid in step.performed_instances if uid in by_instance), None)
            if group is None:
                group = _Group(f"procedure step {step.sop_instance_uid}")
                groups.append(group)
        group.procedures.append(step)
        for uid in step.performed_instances:
            by_instance.setdefault(uid, group)
            if uid in workflow.stored:
                group.instances.add(uid)
    for commitment in workflow.commitments:
        group = next((by_instance[uid] for _class, uid in commitment.requested if uid in by_instance), None)
        if group is None:
            group = _Group(f"storage commitment {commitment.transaction_uid}")
            groups.append(group)
            for _class, uid in commitment.requested:
                by_instance.setdefault(uid, group)
        group.commitments.append(commitment)
        group.instances.update(uid for _class, uid in commitment.requested if uid in workflow.stored)
    for group in groups:
        times = [analysis.messages[item.responses[0]].start_time for item in group.worklist]
        times += [step.start_time for step in group.procedures if step.start_time is not None]
        times += [workflow.stored[uid].time for uid in group.instances]
        times += [analysis.messages[commitment.request].start_time for commitment in group.commitments]
        group.first_time = min(times, default=float("inf"))
    groups.sort(key=lambda group: group.first_time)
    return groups


def workflow_rows(analysis: Analysis) -> list[WorkflowRow]:
    """Every group's header and stages, groups in order of their first event."""
    workflow = analysis.workflow
    start = analysis.first_time or 0.0
    messages = analysis.messages
    associations = analysis.associations
    rows: list[WorkflowRow] = []

    def since(when: float | None) -> float | None:
        return None if when is None else when - start

    def pair(association: int) -> str:
        found = associations[association]
        return f"{found.calling_ae.strip() or '?'}→{found.called_ae.strip() or '?'} A{association}"

    for number, group in enumerate(_groups(analysis)):
        label = group.label or " ".join(part for part in (
            f"accession {group.accession}" if group.accession else "",
            f"study {group.study}" if group.study else "") if part)
        patient = next((item.patient_id for item in group.worklist if item.patient_id), "")
        rows.append(WorkflowRow(number, "", label + (f"  patient {patient}" if patient else "")))
        for item in group.worklist:
            response = messages[item.responses[0]]
            rows.append(WorkflowRow(
                number, "scheduled", f"worklist item for station {item.scheduled_station or '?'} "
                f"(C-FIND {pair(response.association)}); fulfilled by {len(item.stored)} stored instance(s)",
                since(response.start_time), messages[response.request].index if response.request is not None
                else response.index, [response.association]))  # not stored (yet) is normal: a day's list
        for step in group.procedures:
            first = step.create if step.create is not None else step.sets[0]
            involved = sorted({messages[index].association for index in ([first] + step.sets)})
            text = f"MPPS {step.final_status}"
            if step.create is not None and step.sets:
                text = f"MPPS IN PROGRESS → {step.final_status}"
            if step.time_to_complete is not None:
                text += f" after {step.time_to_complete:.2f} s"
            if step.discontinuation_reason:
                text += f": {step.discontinuation_reason}"
            missing = [uid for uid in step.performed_instances if uid not in workflow.stored]
            text += f"; {len(step.performed_instances)} performed instance(s)"
            if missing:
                text += f", {len(missing)} never stored"
            text += " (" + ", ".join(pair(index) for index in involved) + ")"
            last = step.sets[-1] if step.sets else first
            rows.append(WorkflowRow(number, "performed", text, since(messages[first].start_time), last, involved,
                                    problem=step.final_status != "COMPLETED" or bool(missing)))
        if group.instances:
            stores = sorted((workflow.stored[uid] for uid in group.instances), key=lambda stored: stored.time)
            involved = sorted({stored.association for stored in stores})
            failed = sum(1 for stored in stores if stored.status not in (0, None))
            requested = {uid for commitment in group.commitments for _class, uid in commitment.requested}
            uncommitted = len(group.instances - requested) if group.commitments else 0
            rows.append(WorkflowRow(
                number, "stored", f"{len(stores)} instance(s) stored" + (f", {failed} failed" if failed else "")
                + (f", {uncommitted} in no commitment request" if uncommitted else "")
                + " (" + ", ".join(pair(index) for index in involved) + ")", since(stores[0].time),
                stores[0].message, involved, problem=bool(failed or uncommitted)))
        for commitment in group.commitments:
            request = messages[commitment.request]
            involved = [commitment.association] + sorted(
                {messages[index].association for index in commitment.reports} - {commitment.association})
            text = (f"commitment {STATE_WORDS.get(commitment.state, commitment.state)}: "
                    f"{len(commitment.committed)} of {len(commitment.requested)} committed")
            if commitment.time_to_commit is not None:
                text += f" after {commitment.time_to_commit:.2f} s"
            for _class, uid, reason in commitment.failed[:3]:
                text += f"; {uid} {failure_reason_text(reason)}"
            refused_report = bool(commitment.reports) and commitment.report_status != 0
            if refused_report:
                text += "; report NOT accepted by the modality" + (
                    f" (0x{commitment.report_status:04X})" if commitment.report_status is not None else " (no answer)")
            if commitment.reverse is not None:
                text += f"; report {commitment.reverse.outcome} {commitment.reverse.client}→{commitment.reverse.server}"
                if commitment.reverse.association is not None:
                    involved.append(commitment.reverse.association)
            text += " (" + ", ".join(pair(index) for index in involved) + ")"
            target = commitment.reports[0] if commitment.reports else commitment.request
            rows.append(WorkflowRow(number, "committed", text, since(request.start_time), target, involved,
                                    problem=commitment.state != "committed" or refused_report))
    first_query_group = rows[-1].group + 1 if rows else 0
    for group_number, query in enumerate(workflow.empty_queries, first_query_group):
        request = messages[query.request]
        keys = ", ".join(f"{path.split('>')[-1]}={value!r}" for path, value in query.keys) or "none"
        rows.append(WorkflowRow(group_number, "", f"worklist query without match ({pair(request.association)})"))
        rows.append(WorkflowRow(group_number, "scheduled", f"no item matched; keys: {keys}",
                                since(request.start_time), query.request, [request.association], problem=True))
    return rows


def row_text(row: WorkflowRow) -> str:
    if not row.stage:
        return safe_text(row.text)
    when = f"{row.time:10.3f}" if row.time is not None else " " * 10
    mark = "!" if row.problem else " "
    return safe_text(f"  {row.stage:<10} {when} {mark} {row.text}")


def workflow_lines(analysis: Analysis) -> list[str]:
    """``dicomtui --workflow``: per study / accession, scheduled -> performed -> stored -> committed."""
    rows = workflow_rows(analysis)
    if not rows:
        return ["No storage commitment, procedure step or worklist query in this capture."]
    lines = ["Workflow per study / accession (stage, seconds since the first frame, ! = went wrong):"]
    for row in rows:
        if not row.stage:
            lines.append("")
        lines.append(row_text(row))
    return lines


# -- statistics (--stats) ---------------------------------------------------------------------------


def _figures(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "min": None, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {"count": len(ordered), "min": ordered[0], "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], "max": ordered[-1]}


def workflow_timing(analysis: Analysis) -> dict[str, dict[str, Any]]:
    """Time to commit (request's response -> report) and time to complete (N-CREATE -> final N-SET)."""
    workflow = analysis.workflow
    return {
        "time_to_commit": _figures([c.time_to_commit for c in workflow.commitments if c.time_to_commit is not None]),
        "time_to_complete": _figures([p.time_to_complete for p in workflow.procedures
                                      if p.time_to_complete is not None]),
        "commitments_unreported": {"count": sum(1 for c in workflow.commitments if not c.reports)},
        "procedures_in_progress": {"count": sum(1 for p in workflow.procedures if p.final_status == "IN PROGRESS")},
    }


def workflow_stats_lines(analysis: Analysis) -> list[str]:
    workflow = analysis.workflow
    if not (workflow.commitments or workflow.procedures):
        return []
    timing = workflow_timing(analysis)
    lines = ["", ("Workflow times (s): storage commitment request answered -> report; MPPS N-CREATE -> "
                  "COMPLETED/DISCONTINUED")]
    lines.append(f"  {'':<18} {'count':>5} {'min':>9} {'median':>9} {'p95':>9} {'max':>9}  not finished")
    for name, label, open_key in (("time_to_commit", "time to commit", "commitments_unreported"),
                                  ("time_to_complete", "time to complete", "procedures_in_progress")):
        figures = timing[name]
        cells = [f"{figures[key]:9.3f}" if figures[key] is not None else f"{'-':>9}"
                 for key in ("min", "median", "p95", "max")]
        lines.append(f"  {label:<18} {figures['count']:>5} {' '.join(cells)}  {timing[open_key]['count']}")
    return lines
