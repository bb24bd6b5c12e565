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


def _tls_section(analysis: "Analysis", redaction: Redaction) -> Section | None:
    """Connections that carried DICOM inside another layer (a stream transform such as TLS)."""
    rows = [[f"C{connection.index}", redaction.endpoint(connection.client), redaction.endpoint(connection.server),
             connection.transform] for connection in analysis.connections if connection.transform]
    if not rows:
        return None
    return Section("transport", "Transport layers (TLS and other stream transforms)",
                   ["These connections carried DICOM inside another layer; the associations above were decoded "
                    "from what that layer delivered."],
                   [(["connection", "client", "server", "layer"], rows)])


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


OPTIONAL_SECTIONS: list[Callable[["Analysis", Redaction], Section | None]] = [
    _codes_section("workflow.", "workflow", "Workflow",
                   "How the associations' operations link up (query, retrieve, store, commitment)."),
    _tls_section,
    _validation_section,
]
