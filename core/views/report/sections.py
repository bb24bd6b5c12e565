"""The report's optional sections: each appears when the analysis has something for it.

``OPTIONAL_SECTIONS`` holds functions ``(analysis, redaction) -> Section | None``; a ``Section``
is paragraphs and tables that the template lays out as they are, so the page of a new model
(issue 26's workflow links, issue 27's TLS handshakes, issue 29's validation) is one more
function here, not a template change.  Every value from the capture goes through the redaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dicomtui.core.base.uids import uid_label

from .redact import Redaction

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis


@dataclass(slots=True)
class Section:
    """A section the template lays out generically: paragraphs, then tables (headers, rows)."""

    anchor: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)


def split_advice(text: str) -> tuple[str, str]:
    """(finding, advice): the rules write the advice after " — "."""
    finding, dash, advice = text.partition(" — ")
    return (finding, advice) if dash else (text, "")


def _layer_summary(state) -> str:
    """What a stream transform's state says of itself in one line (TLS: version, suite, the server
    certificate, decrypted or why not), when it offers ``summary()``; never a secret."""
    summary = getattr(state, "summary", None)
    if summary is None:
        return ""
    try:
        return str(summary())
    except Exception:  # a plugin's state must not stop the page
        return ""


def _tls_section(analysis: "Analysis", redaction: Redaction) -> Section | None:
    """Connections that carried DICOM inside another layer (a stream transform such as TLS), with
    what the layer says of itself, and the ``tls.*`` findings (alerts, certificates, versions)."""
    rows = [[f"C{connection.index}", redaction.endpoint(connection.client), redaction.endpoint(connection.server),
             connection.transform, redaction.text(_layer_summary(connection.transform_state))]
            for connection in analysis.connections if connection.transform]
    findings = _codes_section("tls.", "", "", "")(analysis, redaction)
    if not rows and findings is None:
        return None
    section = Section("transport", "Transport layers (TLS and other stream transforms)",
                      ["These connections carried DICOM inside another layer; the associations above were "
                       "decoded from what that layer delivered."])
    if rows:
        section.tables.append((["connection", "client", "server", "layer", "handshake and state"], rows))
    if findings is not None:
        section.tables.extend(findings.tables)
    return section


def _codes_section(prefix: str, anchor: str, title: str, intro: str):
    """A section listing the findings whose code starts with ``prefix`` (e.g. ``data.``, ``workflow.``)."""
    def build(analysis: "Analysis", redaction: Redaction) -> Section | None:
        rows = [[item.severity.label, item.code, str(item.frame or ""),
                 f"A{item.association}" if item.association is not None else "",
                 *(redaction.text(part) for part in split_advice(item.message))]
                for item in analysis.expert if item.code.startswith(prefix)]
        if not rows:
            return None
        shown = rows[:300]
        paragraphs = [intro] + ([f"The first {len(shown)} of {len(rows)} are listed."] if len(rows) > len(shown) else [])
        return Section(anchor, title, paragraphs, [(["severity", "code", "frame", "association", "finding",
                                                          "what it means, what to check"], shown)])
    return build


def _validation_section(analysis: "Analysis", redaction: Redaction) -> Section | None:
    """Each validated object against its IOD (``Analysis.validation``, filled by ``--validate``),
    each study's objects against each other, and the ``data.*`` findings; validator lines quote
    data-set values, which the redaction withholds like any other."""
    results = getattr(analysis, "validation", None)
    findings = _codes_section("data.", "", "", "")(analysis, redaction)
    if not results and findings is None:
        return None
    section = Section("validation", "Data-set validation",
                      ["What the data sets carried against what their IODs require; values the validator "
                       "quotes are withheld unless the page shows real values."])
    if results:
        tools = ", ".join(f"{name} {version}" for name, version in sorted(results.tools.items()))
        if tools:
            section.paragraphs.append(f"Validator: {tools}.")
        rows = []
        for index, result in sorted(results.by_message.items())[:300]:
            message = analysis.messages[index]
            first = result.error_lines()[:3]
            rows.append([f"A{message.association}", str(index), message.command_name,
                         uid_label(redaction.uid(message.affected_sop_class)), result.iod or "-",
                         str(result.errors), str(result.warnings),
                         redaction.text(result.skipped or result.failed or "; ".join(first))])
        if rows:
            section.tables.append((["association", "message", "command", "SOP class", "IOD", "errors", "warnings",
                                    "first errors, or why not validated"], rows))
        studies = [[str(len(study.messages)), str(study.errors), str(study.warnings),
                    redaction.text(study.failed or "; ".join(line.text for line in study.lines[:3]))]
                   for study in results.studies[:100]]
        if studies:
            section.tables.append((["objects of one study", "errors", "warnings", "first lines"], studies))
    if findings is not None:
        section.tables.extend(findings.tables)
    return section


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} s"


def _associations(indexes) -> str:
    return " ".join(f"A{index}" for index in sorted(set(indexes)) if index is not None)


def _workflow_section(analysis: "Analysis", redaction: Redaction) -> Section | None:
    """Storage commitments, procedure steps and worklist items across associations
    (``analysis.workflow``, issue 26), then the ``workflow.*`` findings.  Transaction, instance and
    study UIDs are replaced like any other; accession numbers and patient IDs are not shown (an
    item is numbered W1, W2... instead)."""
    workflow = getattr(analysis, "workflow", None)
    findings = _codes_section("workflow.", "", "", "")(analysis, redaction)
    if (workflow is None or workflow.empty) and findings is None:
        return None
    section = Section("workflow", "Workflow",
                      ["How the associations' operations link up: storage commitment requests and their "
                       "reports (possibly on an association the archive opens back to the modality), "
                       "procedure steps (MPPS) and worklist items, with the stores that fulfil them."])
    messages = analysis.messages
    if workflow is not None and workflow.commitments:
        rows = []
        for commitment in workflow.commitments[:200]:
            reverse = commitment.reverse
            rows.append([redaction.uid(commitment.transaction_uid), commitment.state,
                         f"{redaction.ae(commitment.scu_ae)} → {redaction.ae(commitment.scp_ae)}",
                         str(len(commitment.requested)), str(len(commitment.committed)), str(len(commitment.failed)),
                         _seconds(commitment.time_to_commit),
                         (f"{reverse.outcome}" + (f" (frame {reverse.frame})" if reverse.frame else "")) if reverse
                         else "",
                         _associations([commitment.association, *(messages[index].association
                                                                  for index in commitment.reports)])])
        section.tables.append((["transaction UID", "state", "modality → archive", "requested", "committed",
                                "failed", "time to commit", "report back to the modality", "associations"], rows))
    if workflow is not None and workflow.procedures:
        rows = []
        for step in workflow.procedures[:200]:
            indexes = ([step.create] if step.create is not None else []) + step.sets
            rows.append([redaction.uid(step.sop_instance_uid), step.final_status or "?",
                         step.discontinuation_reason, str(len(step.performed_instances)),
                         _seconds(step.time_to_complete), _associations(messages[index].association
                                                                        for index in indexes)])
        section.tables.append((["procedure step (MPPS instance)", "final status", "discontinued because",
                                "performed instances", "time to complete", "associations"], rows))
    if workflow is not None and workflow.worklist:
        rows = []
        for number, item in enumerate(workflow.worklist[:200], 1):
            rows.append([f"W{number}", redaction.uid(item.study_instance_uid), redaction.ae(item.scheduled_station),
                         str(len(item.stored)), _associations(messages[index].association
                                                              for index in item.responses + item.stores)])
        section.tables.append((["worklist item", "study instance UID", "scheduled station AE", "objects stored",
                                "associations"], rows))
    if findings is not None:
        section.tables.extend(findings.tables)
    return section


OPTIONAL_SECTIONS: list[Callable[["Analysis", Redaction], Section | None]] = [
    _workflow_section,
    _tls_section,
    _validation_section,
]
