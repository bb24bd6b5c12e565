"""The JSON document of an Analysis (``--json``), and the per-object dicts ``--jsonl`` shares.

The layout is a public interface (documented in README.md, "JSON output"); add
keys freely, never rename or remove them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dicomtui.core.base.safe_text import safe_json_text
from dicomtui.core.base.uids import uid_name
from dicomtui.core.model import Association, Message, Pdu
from dicomtui.core.model.analysis import Analysis

from .json_encoder import _encode_string, encode_indented

JSON_FORMAT_VERSION = 1


def association_json(analysis: Analysis, association: Association) -> dict[str, Any]:
    connection = analysis.connections[association.connection]
    return {
        "id": association.index,
        "connection": association.connection,
        "client": connection.client,
        "server": connection.server,
        "calling_ae": association.calling_ae,
        "called_ae": association.called_ae,
        "state": association.state,
        "end_reason": association.end_reason,
        "picked_up_midway": association.picked_up_midway,
        "start_time": association.start_time,
        "end_time": association.end_time,
        "first_frame": association.first_frame,
        "last_frame": association.last_frame,
        "requestor_max_pdu": association.requestor_max_pdu,
        "acceptor_max_pdu": association.acceptor_max_pdu,
        "requestor_implementation": list(association.requestor_implementation),
        "acceptor_implementation": list(association.acceptor_implementation),
        "async_window": list(association.async_window) if association.async_window else None,
        "roles": {uid: {"scu": scu, "scp": scp} for uid, (scu, scp) in association.roles.items()},
        "user_identity": association.user_identity or None,
        "message_count": association.message_count,
        "parent_move": association.parent_move,
        "contexts": [
            {
                "id": context.context_id,
                "abstract_syntax": context.abstract_syntax,
                "abstract_syntax_name": uid_name(context.abstract_syntax),
                "proposed_transfer_syntaxes": list(context.proposed_transfer_syntaxes),
                "result": context.result,
                "result_text": context.result_text,
                "transfer_syntax": context.transfer_syntax,
                "transfer_syntax_name": uid_name(context.transfer_syntax),
                "guessed": context.guessed,
            }
            for context in sorted(association.contexts.values(), key=lambda c: c.context_id)
        ],
    }


def pdu_json(pdu: Pdu) -> dict[str, Any]:
    return {
        "index": pdu.index,
        "frames": [pdu.first_frame, pdu.last_frame],
        "time": pdu.timestamp,
        "connection": pdu.connection,
        "association": pdu.association,
        "direction": "client->server" if pdu.direction == 0 else "server->client",
        "type": pdu.pdu_type,
        "type_name": pdu.type_name,
        "length": pdu.length,
        "complete": pdu.complete,
        "pdvs": len(pdu.pdvs),
        "summary": pdu.summary,
    }


def pdu_json_rows(analysis: Analysis) -> Iterator[dict[str, Any]]:
    """``pdu_json`` of every PDU, read from the PDU table's columns (no ``Pdu`` per row: a large
    transfer has tens of thousands; a test checks both agree)."""
    from dicomtui.core.protocol.records import PDU_TYPE_NAMES

    pdus = analysis.pdus
    columns = [pdus.column(name).tolist() for name in (
        "first_frame", "last_frame", "timestamp", "connection", "association", "direction", "pdu_type",
        "length", "complete")]
    directions = ("client->server", "server->client")
    for index, (first, last, timestamp, connection, association, direction, pdu_type, length, complete,
                pdvs, summary) in enumerate(zip(*columns, pdus.pdv_counts(), pdus.summaries()), pdus.base):
        yield {
            "index": index,
            "frames": [first, last],
            "time": timestamp,
            "connection": connection,
            "association": association,
            "direction": directions[0 if direction == 0 else 1],
            "type": pdu_type,
            "type_name": PDU_TYPE_NAMES.get(pdu_type, f"unknown PDU type 0x{pdu_type:02x}"),
            "length": length,
            "complete": bool(complete),
            "pdvs": pdvs,
            "summary": summary,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value)


def message_json(analysis: Analysis, message: Message) -> dict[str, Any]:
    document = _message_json(analysis, message)
    validation = analysis.validation.for_message(message.index)
    if validation is not None:
        document["validation"] = validation.as_json()
    return document


def _message_json(analysis: Analysis, message: Message) -> dict[str, Any]:
    category, meaning = (None, None)
    if message.status is not None:
        category, meaning = analysis.status_meaning(message.command_field, message.status, message.affected_sop_class)
    return {
        "index": message.index,
        "association": message.association,
        "direction": "client->server" if message.direction == 0 else "server->client",
        "context_id": message.context_id,
        "command": message.command_name,
        "command_field": message.command_field,
        "message_id": message.message_id,
        "responded_to": message.responded_to,
        "sop_class": message.affected_sop_class,
        "sop_class_name": uid_name(message.affected_sop_class),
        "sop_instance": message.affected_sop_instance,
        "status": message.status,
        "status_category": category,
        "status_meaning": meaning,
        "error_comment": message.command.get("ErrorComment"),
        "request": message.request,
        "responses": list(message.responses),
        "response_time": message.response_time,
        "first_byte_time": message.first_byte_time,
        "transfer_time": message.transfer_time,
        "frames": [message.first_frame, message.last_frame],
        "start_time": message.start_time,
        "end_time": message.end_time,
        "has_dataset": message.has_dataset,
        "dataset_length": message.dataset_length,
        "transfer_syntax": message.transfer_syntax,
        "transfer_syntax_guessed": message.syntax_guessed,
        "complete": message.complete,
        "incomplete_reason": message.incomplete_reason or None,
        "fields": {key: _plain(value) for key, value in message.command.items()},
    }


def capture_json(analysis: Analysis) -> dict[str, Any]:
    return {
        "files": [source.name for source in analysis.sources],
        "frames": analysis.frame_count,
        "tcp_frames": analysis.tcp_frame_count,
        "first_time": analysis.first_time,
        "last_time": analysis.last_time,
        # frames whose block carried no time (pcapng simple packet blocks): they have the time of the
        # frame before them; response-time figures leave out what ends in them ("untimed")
        "untimed_frames": len(analysis.untimed_frames),
        "notes": [note.message for note in analysis.notes],
    }


def connection_json(connection) -> dict[str, Any]:
    return {
        "id": connection.index,
        "client": connection.client,
        "server": connection.server,
        "first_frame": connection.first_frame,
        "last_frame": connection.last_frame,
        "syn_seen": connection.syn_seen,
        "closed_by": connection.closed_by or None,
        "detection": connection.detection,
        "picked_up_midway": connection.picked_up_midway,
        "bytes": [connection.streams[0].end, connection.streams[1].end],
        "gaps": [
            {"direction": direction, "stream_offset": gap.stream_offset, "length": gap.length,
             "frame": gap.frame, "reason": gap.reason}
            for direction in (0, 1) for gap in connection.streams[direction].gaps
        ],
        # DICOM inside another layer (core/wire/transform.py): its name, and what the layer's
        # transform says about itself (``as_json()``; TLS: version, suite, certificates, ...)
        "transform": connection.transform or None,
        "layer": _layer_json(connection.transform_state),
    }


def _layer_json(state) -> dict[str, Any] | None:
    as_json = getattr(state, "as_json", None)
    if as_json is None:
        return None
    try:
        return as_json()
    except Exception:  # a plugin's state must not stop the document
        return None


def analysis_json_sections(analysis: Analysis, shown: list[int] | None = None) -> list[tuple[str, Any]]:
    """The document's top-level keys in order; the long lists as iterators (built item by item).

    With ``shown`` (PDU numbers a -Y filter kept) only those PDUs, their messages and their findings
    (connections and associations stay whole, as context)."""
    pdus = analysis.pdus if shown is None else [analysis.pdus[number] for number in shown]
    kept = None if shown is None else set(shown)
    messages = analysis.messages if kept is None else [
        message for message in analysis.messages
        if any(number in kept for number in range(message.first_pdu, message.last_pdu + 1))]
    expert = analysis.expert if kept is None else [item for item in analysis.expert if item.pdu in kept]
    sections = [
        ("format_version", JSON_FORMAT_VERSION),
        ("capture", capture_json(analysis)),
        ("connections", map(connection_json, analysis.connections)),
        ("associations", (association_json(analysis, association) for association in analysis.associations)),
        ("pdus", pdu_json_rows(analysis) if shown is None else map(pdu_json, pdus)),
        ("messages", (message_json(analysis, message) for message in messages)),
        ("expert", (item.as_json() for item in expert)),
        ("timing", _timing(analysis)),
        ("connection_attempts", [attempt.as_json() for attempt in analysis.connection_attempts]),
        ("workflow", analysis.workflow.as_json(analysis)),
    ]
    if analysis.validation:  # only when a validator ran (--validate): the tools and each study's check
        sections.append(("validation", {
            "tools": dict(analysis.validation.tools),
            "studies": [study.as_json() for study in analysis.validation.studies],
        }))
    return sections


def analysis_json(analysis: Analysis, shown: list[int] | None = None) -> dict[str, Any]:
    """The whole document as one structure (tests, plugins); ``write_analysis_json`` streams it."""
    return {key: list(value) if isinstance(value, Iterator) else value
            for key, value in analysis_json_sections(analysis, shown)}


def write_analysis_json(analysis: Analysis, out, shown: list[int] | None = None) -> None:
    """Write the document as ``safe_json(analysis_json(analysis), indent=1)`` would, byte for byte,
    but one list item at a time: memory holds one PDU's dict, not a million of them, and each
    item is encoded by ``encode_indented`` rather than the json module's generator-per-value
    pure-Python path (json cannot use its C encoder when indenting)."""
    out.write("{")
    for number, (key, value) in enumerate(analysis_json_sections(analysis, shown)):
        out.write(("," if number else "") + "\n " + safe_json_text(_encode_string(key)) + ": ")
        if isinstance(value, Iterator):
            written = False
            for item in value:
                out.write(("," if written else "[") + "\n  " + safe_json_text(encode_indented(item, 2)))
                written = True
            out.write("\n ]" if written else "[]")
        else:
            out.write(safe_json_text(encode_indented(value, 1)))
    out.write("\n}")


def _timing(analysis: Analysis) -> dict[str, Any]:
    from .timing import timing_json

    return timing_json(analysis)
