"""The report's content: plain data for the template, in the order a vendor reads it.

Capture facts, a verdict per association, the associations (negotiation), the DIMSE
messages, the findings grouped by rule, the timing, then the optional sections.  Every
value from the capture goes through ``Redaction`` here, so the template only lays out.

Large captures stay small: the associations with a warning or an error get their detail
(up to ``ReportLimits.detailed_associations``); the others are counted in groups (same AE
titles, same outcome).  Everything is read once per analysis (findings and messages by
association in one pass each), so a day of thousands of associations costs linear time.

The optional sections (workflow, transport layers, validation) are in ``sections``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicomtui import __version__
from dicomtui.core.base.time_format import milliseconds
from dicomtui.core.base.uids import uid_label, uid_name
from dicomtui.core.model import Severity
from dicomtui.core.model.ladder import ladder_by_message
from dicomtui.core.model.timing import BUDGET, BUDGET_LABELS, VERDICT_MIN_SECONDS, timing_report

from . import charts
from .redact import Redaction
from .sections import OPTIONAL_SECTIONS, split_advice

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis

USER_IDENTITY_TYPES = {1: "username", 2: "username and passcode", 3: "Kerberos service ticket",
                       4: "SAML assertion", 5: "JSON Web Token"}


@dataclass(frozen=True, slots=True)
class ReportLimits:
    detailed_associations: int = 40  # associations with their negotiation, ladder and messages
    messages_per_association: int = 200
    ladder_rows: int = 120
    verdict_rows: int = 40  # associations listed one by one (detailed ones with findings); the rest grouped
    finding_examples: int = 3  # first occurrences shown per finding group
    chart_associations: int = 25  # bars in the budget and throughput charts


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _sha256(source) -> tuple[str, str]:
    """(digest, what it is of): the file as given, or the bytes read (standard input, gzip spooled)."""
    name = source.name
    if name and name != "-" and os.path.isfile(name):
        digest = hashlib.sha256()
        with open(name, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest(), "file"
    return hashlib.sha256(memoryview(source.data)).hexdigest(), "bytes read"


def _sizes(number: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if number >= size:
            return f"{number / size:.1f} {unit}"
    return f"{number} B"


def capture_facts(analysis: "Analysis", invocation: str) -> dict[str, Any]:
    files = []
    for source in analysis.sources:
        digest, of = _sha256(source)
        files.append({"name": source.name, "format": source.format, "size": _sizes(len(source.data)),
                      "sha256": digest, "of": of})
    config = analysis.config
    return {
        "files": files,
        "first": _utc(analysis.first_time),
        "last": _utc(analysis.last_time),
        "duration": (f"{analysis.last_time - analysis.first_time:.3f} s"
                     if analysis.first_time is not None and analysis.last_time is not None else "-"),
        "frames": analysis.frame_count,
        "tcp_frames": analysis.tcp_frame_count,
        "connections": len(analysis.connections),
        "associations": len(analysis.associations),
        "messages": len(analysis.messages),
        "pdus": len(analysis.pdus),
        "version": __version__,
        "invocation": invocation,
        "options": ", ".join(f"{key}={value}" for key, value in sorted(config.options.items())) or "none",
        "ports": ",".join(str(port) for port in sorted(config.ports)) if len(config.ports) < 40 else
        f"{len(config.ports)} ports",
        "heuristic": "on" if config.heuristic else "off",
        "notes": [f"{note.source}: {note.message}" for note in analysis.notes],
    }


def _outcome(association) -> str:
    state = str(association.state)
    if association.end_reason:
        return f"{state}: {association.end_reason}" if association.end_reason != state else state
    return state


def _peers(association, analysis: "Analysis", redaction: Redaction) -> dict[str, str]:
    connection = analysis.connections[association.connection]
    return {"calling": redaction.ae(association.calling_ae) or "?", "called": redaction.ae(association.called_ae) or "?",
            "client": redaction.endpoint(connection.client), "server": redaction.endpoint(connection.server)}


@dataclass(slots=True)
class Evidence:
    """Per-association indexes, each built in one pass."""

    worst: dict[int, Any]  # association -> its most severe finding (not chat)
    counts: dict[int, Counter]  # association -> severity label -> count
    messages: dict[int, list]  # association -> its messages in order


def _evidence(analysis: "Analysis") -> Evidence:
    worst: dict[int, Any] = {}
    counts: dict[int, Counter] = defaultdict(Counter)
    for item in analysis.expert:
        if item.association is None:
            continue
        counts[item.association][item.severity.label] += 1
        if item.severity <= Severity.CHAT:
            continue
        current = worst.get(item.association)
        if current is None or item.severity > current.severity:
            worst[item.association] = item
    messages: dict[int, list] = defaultdict(list)
    for message in analysis.messages:
        messages[message.association].append(message)
    return Evidence(worst, counts, messages)


def verdicts(analysis: "Analysis", redaction: Redaction, evidence: Evidence, detailed: set[int],
             limits: ReportLimits) -> dict[str, Any]:
    """One line per detailed association (all of a small capture's; worst first); every other
    association counted in a group of the same AE titles, outcome and kind of worst finding."""
    def rank(index: int) -> int:
        item = evidence.worst.get(index)
        return int(item.severity) if item is not None else 0

    troubled = sorted(detailed, key=lambda index: (-rank(index), index))[:limits.verdict_rows]
    rows = []
    for index in troubled:
        association = analysis.associations[index]
        item = evidence.worst.get(index)
        rows.append({"id": index, "peers": _peers(association, analysis, redaction), "outcome": _outcome(association),
                     "severity": item.severity.label if item is not None else "ok",
                     "finding": redaction.text(split_advice(item.message)[0]) if item is not None else
                     "nothing above chat", "messages": association.message_count, "linked": True})
    shown = set(troubled)
    groups: dict[tuple, dict[str, Any]] = {}
    for association in analysis.associations:
        if association.index in shown:
            continue
        item = evidence.worst.get(association.index)
        key = (association.calling_ae, association.called_ae, _outcome(association),
               item.severity if item is not None else 0, (item.rule, item.code or item.group.value) if item else "")
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "calling": redaction.ae(association.calling_ae) or "?", "called": redaction.ae(association.called_ae)
                or "?", "outcome": key[2], "severity": item.severity.label if item is not None else "ok",
                "rank": key[3], "finding": redaction.text(split_advice(item.message)[0]) if item is not None else "",
                "example": association.index, "count": 0}
        group["count"] += 1
    grouped = sorted(groups.values(), key=lambda group: (-group["rank"], -group["count"]))
    return {"rows": rows, "groups": grouped}


def _detailed_associations(analysis: "Analysis", evidence: Evidence, limits: ReportLimits) -> list[int]:
    """Those with warnings or errors (worst first, then in order); all of them in a small capture."""
    if len(analysis.associations) <= limits.detailed_associations:
        return [association.index for association in analysis.associations]
    troubled = sorted((index for index, item in evidence.worst.items() if item.severity >= Severity.WARNING),
                      key=lambda index: (-evidence.worst[index].severity, index))
    return sorted(troubled[:limits.detailed_associations])


def association_detail(analysis: "Analysis", index: int, redaction: Redaction, evidence: Evidence,
                       limits: ReportLimits) -> dict[str, Any]:
    association = analysis.associations[index]
    contexts = []
    for context in sorted(association.contexts.values(), key=lambda c: c.context_id):
        contexts.append({
            "id": context.context_id,
            "abstract": uid_label(redaction.uid(context.abstract_syntax)),
            "abstract_uid": redaction.uid(context.abstract_syntax) if uid_name(context.abstract_syntax) else "",
            "proposed": [uid_label(syntax) for syntax in context.proposed_transfer_syntaxes],
            "result": context.result_text,
            "accepted": context.accepted,
            "answered": context.result is not None,
            "syntax": uid_label(context.transfer_syntax) + (" (guessed)" if context.guessed else "")
            if context.transfer_syntax and (context.accepted or context.guessed) else "",
        })
    identity = association.user_identity or {}
    identity_type = identity.get("type")
    requestor_class, requestor_version = association.requestor_implementation
    acceptor_class, acceptor_version = association.acceptor_implementation
    return {
        "id": index,
        "peers": _peers(association, analysis, redaction),
        "outcome": _outcome(association),
        "frames": f"{association.first_frame}-{association.last_frame}",
        "start": _utc(association.start_time) if association.start_time else "-",
        "duration": (f"{association.end_time - association.start_time:.3f} s"
                     if association.end_time is not None and association.start_time else "-"),
        "picked_up_midway": association.picked_up_midway,
        "implementation": [("requestor", redaction.uid(requestor_class), redaction.text(requestor_version)),
                           ("acceptor", redaction.uid(acceptor_class), redaction.text(acceptor_version))],
        "max_pdu": (association.requestor_max_pdu, association.acceptor_max_pdu),
        "async_window": association.async_window,
        "contexts": contexts,
        "rejected_contexts": sum(1 for context in contexts if context["answered"] and not context["accepted"]),
        "roles": [(uid_label(redaction.uid(uid)), "yes" if scu else "no", "yes" if scp else "no")
                  for uid, (scu, scp) in sorted(association.roles.items())],
        "user_identity": (USER_IDENTITY_TYPES.get(identity_type, f"type {identity_type}")
                          + (", positive response requested" if identity.get("positive_response_requested") else "")
                          + (" (answered)" if identity.get("server_response_length") is not None else "")
                          if identity_type is not None else ""),
        "findings": dict(evidence.counts.get(index, {})),
        "parent_move": association.parent_move,  # the C-MOVE (message index) this sub-association serves
        "parent_association": (analysis.messages[association.parent_move].association
                               if association.parent_move is not None else None),
        "ladder": None,  # filled by build() with the SVG
    }


def message_rows(analysis: "Analysis", index: int, redaction: Redaction, evidence: Evidence,
                 limits: ReportLimits) -> tuple[list[dict[str, Any]], int]:
    messages = evidence.messages.get(index, [])
    rows = []
    for message in messages[:limits.messages_per_association]:
        category, meaning = ("", "")
        if message.status is not None:
            category, meaning = analysis.status_meaning(message.command_field, message.status,
                                                        message.affected_sop_class)
        command = message.command
        extra = []
        if command.get("MoveDestination"):
            extra.append(f"destination {redaction.ae(str(command['MoveDestination']))}")
        for keyword, label in (("NumberOfCompletedSuboperations", "completed"),
                               ("NumberOfFailedSuboperations", "failed"),
                               ("NumberOfWarningSuboperations", "warning"),
                               ("NumberOfRemainingSuboperations", "remaining")):
            if command.get(keyword) is not None:
                extra.append(f"{label} {command[keyword]}")
        if command.get("ErrorComment"):
            extra.append("Error Comment " + redaction.free_text(str(command["ErrorComment"])))
        if command.get("ErrorID") is not None:
            extra.append(f"Error ID {command['ErrorID']}")
        rows.append({
            "index": message.index,
            "frames": f"{message.first_frame}" if message.first_frame == message.last_frame
            else f"{message.first_frame}-{message.last_frame}",
            "time": f"{analysis.frame_time(message.start_time):.6f}",
            "direction": "SCU→SCP" if message.direction == 0 else "SCP→SCU",
            "command": message.command_name,
            "id": message.message_id if message.is_request else message.responded_to,
            "sop_class": uid_label(redaction.uid(message.affected_sop_class)),
            "instance": redaction.instance(message.affected_sop_instance),
            "data": _sizes(message.dataset_length) if message.has_dataset else "",
            "status": f"0x{message.status:04X}" if message.status is not None else "",
            "category": category,
            "meaning": meaning,
            "response_time": milliseconds(message.response_time) if message.response_time is not None else "",
            "extra": "; ".join(extra),
            "incomplete": "" if message.complete else (message.incomplete_reason or "incomplete"),
        })
    return rows, max(0, len(messages) - limits.messages_per_association)


def status_summary(analysis: "Analysis") -> list[dict[str, Any]]:
    """Every final status of the capture by command and status, with its PS3.4 meaning."""
    counts: Counter = Counter()
    first: dict[tuple, Any] = {}
    for message in analysis.messages:
        if message.status is not None and not message.is_request:
            key = (message.command_field, message.command_name, message.status)
            counts[key] += 1
            first.setdefault(key, message)
    rows: dict[tuple, dict] = {}
    for (field_, name, status), count in counts.items():
        # The meaning as the first such response's SOP class words it (a day's thousand C-ECHO-RSPs
        # are not decoded one by one for a class they all share).
        category, meaning = analysis.status_meaning(field_, status, first[(field_, name, status)].affected_sop_class)
        row = rows.setdefault((name, status), {"command": name, "status": f"0x{status:04X}", "category": category,
                                               "meaning": meaning, "count": 0})
        row["count"] += count
    order = {"failure": 0, "warning": 1, "cancel": 2, "pending": 4, "success": 5}
    return sorted(rows.values(), key=lambda row: (order.get(row["category"], 3), row["command"], row["status"]))


def finding_groups(analysis: "Analysis", redaction: Redaction, detailed: set[int], rendered_messages: set[int],
                   limits: ReportLimits) -> list[dict[str, Any]]:
    """Findings grouped by rule and code (or group and severity when a rule gives no code), worst first."""
    groups: dict[tuple, dict[str, Any]] = {}
    for item in analysis.expert:
        key = (item.rule, item.code or item.group.value, item.severity)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"rule": item.rule or "decoder", "code": item.code, "kind": item.group.value,
                                   "severity": item.severity.label, "rank": int(item.severity), "count": 0,
                                   "examples": [], "associations": set()}
        group["count"] += 1
        if item.association is not None:
            group["associations"].add(item.association)
        if len(group["examples"]) < limits.finding_examples:
            finding, advice = split_advice(item.message)
            group["examples"].append({
                "text": redaction.text(finding), "advice": redaction.text(advice), "frame": item.frame,
                "association": item.association,
                "association_linked": item.association in detailed,
                "message": item.message_index if item.message_index in rendered_messages else None,
            })
    result = sorted(groups.values(), key=lambda group: (-group["rank"], -group["count"], group["rule"]))
    for group in result:
        group["associations"] = len(group["associations"])
    return result


def timing_content(analysis: "Analysis", redaction: Redaction, limits: ReportLimits) -> dict[str, Any]:
    report = timing_report(analysis)
    causes = [{"label": cause.label, "seconds": f"{cause.seconds:.3f}", "share": f"{cause.share:.0%}",
               "detail": redaction.text(cause.detail), "advice": redaction.text(cause.advice), "frame": cause.frame,
               "associations": len(cause.associations)} for cause in report.causes]
    dominant = None
    if report.causes and report.causes[0].seconds >= VERDICT_MIN_SECONDS:
        dominant = causes[0]
    srt = {}
    for name in ("command", "sop_class"):
        srt[name] = [{"key": redaction.text(row.key), **{key: (milliseconds(value) if key in
                      ("min", "mean", "median", "p95", "max") and value is not None else value)
                      for key, value in row.figures().items()}} for row in report.srt[name]]
    labels = {}
    for item in report.associations:
        association = analysis.associations[item.association]
        labels[item.association] = (f"A{item.association} {redaction.ae(association.calling_ae) or '?'}→"
                                    f"{redaction.ae(association.called_ae) or '?'}")
    tcp_rows = []
    for tcp in report.connections:
        connection = analysis.connections[tcp.connection]
        for figures in tcp.directions:
            notable = (figures.retransmissions or figures.zero_windows or figures.window_full or figures.out_of_order
                       or any(figures.stall_count(cause) for cause in ("window", "nagle", "cwnd")))
            if not notable:
                continue
            sender = connection.client if figures.direction == 0 else connection.server
            tcp_rows.append([f"C{tcp.connection}", redaction.endpoint(sender),
                             "client" if figures.direction == 0 else "server",
                             milliseconds(tcp.handshake_rtt) if tcp.handshake_rtt is not None else "-",
                             f"{figures.retransmissions} ({figures.retransmission_seconds:.3f} s)",
                             str(figures.out_of_order), str(figures.zero_windows), str(figures.window_full),
                             ", ".join(f"{cause} {figures.stall_count(cause)} / {figures.stall_seconds(cause):.3f} s"
                                       for cause in ("window", "nagle", "cwnd") if figures.stall_count(cause)) or "-"])
    totals = {name: sum(item.budget[name] for item in report.associations) for name in BUDGET}
    return {
        "total": f"{report.total_seconds:.3f}",
        "associations": len(report.associations),
        "dominant": dominant,
        "not_measured": bool(report.causes) and dominant is None,
        "min_seconds": f"{VERDICT_MIN_SECONDS * 1000:.0f}",
        "causes": causes,
        "srt": srt,
        "budget_totals": [(BUDGET_LABELS[name], f"{totals[name]:.3f}",
                           f"{totals[name] / report.total_seconds:.0%}" if report.total_seconds > 0 else "-")
                          for name in BUDGET],
        "tcp": tcp_rows[:200],
        "tcp_more": max(0, len(tcp_rows) - 200),
        "exchanges": len(report.exchanges),
        "budget_chart": charts.time_budget(report, labels, limits.chart_associations),
        "response_chart": charts.response_times(report, analysis, labels),
        "throughput_chart": charts.throughput(report, labels, limits.chart_associations),
    }


def build(analysis: "Analysis", redaction: Redaction, invocation: str = "",
          limits: ReportLimits | None = None) -> dict[str, Any]:
    limits = limits or ReportLimits()
    evidence = _evidence(analysis)
    detailed_list = _detailed_associations(analysis, evidence, limits)
    detailed = set(detailed_list)
    associations = []
    rendered_messages: set[int] = set()
    for index in detailed_list:
        detail = association_detail(analysis, index, redaction, evidence, limits)
        rows, more = message_rows(analysis, index, redaction, evidence, limits)
        detail["messages"], detail["messages_more"] = rows, more
        rendered_messages.update(row["index"] for row in rows)
        ladder = ladder_by_message(analysis, index)
        detail["ladder"] = charts.ladder(ladder[:limits.ladder_rows], analysis, detail["peers"], redaction)
        detail["ladder_more"] = max(0, len(ladder) - limits.ladder_rows)
        associations.append(detail)
    for detail in associations:  # a link only to a message the page lists
        detail["parent_linked"] = detail["parent_move"] in rendered_messages
    severities = Counter(item.severity.label for item in analysis.expert)
    optional = [section for section in (builder(analysis, redaction) for builder in OPTIONAL_SECTIONS) if section]
    return {
        "title": "DICOM network report",
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "redaction": redaction.settings.describe(),
        "real_values": redaction.settings.real_values,
        "capture": capture_facts(analysis, invocation),
        "verdicts": verdicts(analysis, redaction, evidence, detailed, limits),
        "associations": associations,
        "associations_total": len(analysis.associations),
        "statuses": status_summary(analysis),
        "findings": finding_groups(analysis, redaction, detailed, rendered_messages, limits),
        "severities": [(label, severities.get(label, 0)) for label in ("error", "warning", "note", "chat")],
        "timing": timing_content(analysis, redaction, limits),
        "optional": optional,
        "limits": limits,
    }
