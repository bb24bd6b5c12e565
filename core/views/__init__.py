"""Headless views of an Analysis: the summary lines and the JSON document.

The JSON layout is a public interface (documented in README.md, "JSON
output"); add keys freely, never rename or remove them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from dicomtui.core.base.safe_text import safe_json, safe_json_text, safe_text
from dicomtui.core.base.uids import uid_name
from dicomtui.core.model import Association, ExpertItem, Message, Pdu
from dicomtui.core.model.analysis import Analysis

JSON_FORMAT_VERSION = 1


def summary_lines(analysis: Analysis, time_format: str = "r", shown: list[int] | None = None):
    """One line per PDU (or per PDU in ``shown``), like Wireshark's info column; times as tshark's -t.

    Read from the PDU table's columns rather than a ``Pdu`` per row: a large
    transfer has tens of thousands of PDUs and this runs for each (``summary_line``
    makes the same line from one ``Pdu``; a test checks both agree).
    """
    from dicomtui.core.base.time_format import format_timestamp

    pdus = analysis.pdus
    base = pdus.base
    columns = {name: pdus.column(name) for name in (
        "connection", "direction", "first_frame", "last_frame", "timestamp", "association")}
    timestamps = columns["timestamp"]
    summaries = pdus.summaries()
    ends = [(connection.client, connection.server) for connection in analysis.connections]
    first_time = analysis.first_time
    width = time_width(analysis, time_format)
    previous_shown = None
    for number in (range(base, len(pdus)) if shown is None else shown):
        row = number - base
        timestamp = timestamps[row]
        previous = previous_shown if time_format == "dd" else (timestamps[row - 1] if row > 0 else None)
        previous_shown = timestamp
        client, server = ends[columns["connection"][row]]
        source, destination = (client, server) if columns["direction"][row] == 0 else (server, client)
        first, last = columns["first_frame"][row], columns["last_frame"][row]
        frames = f"{first}" if first == last else f"{first}-{last}"
        when = format_timestamp(time_format, timestamp, first_time, previous)
        yield (f"{number + 1:6d} {when:>{width}} {source:>21} -> {destination:<21} "
               f"A{columns['association'][row]:<3d} frames {frames:<11} {safe_text(summaries[row])}")


def time_width(analysis: Analysis, time_format: str = "r") -> int:
    """The summary's time column: 11 characters, or the widest time this capture can show.

    Relative times grow a digit every power of ten ("123456.123456" past 99,999 s); a fixed
    width let them push the rest of the line right, row by row.  A delta (d, dd) is at most
    the capture's length.
    """
    from dicomtui.core.base.time_format import format_timestamp

    if analysis.first_time is None or analysis.last_time is None:
        return 11
    widest = format_timestamp("r" if time_format in ("d", "dd") else time_format, analysis.last_time,
                              analysis.first_time, analysis.first_time)
    return max(11, len(widest))


def summary_line(analysis: Analysis, pdu: Pdu, time_format: str = "r", previous: float | None = None,
                 width: int | None = None) -> str:
    """One PDU's line; ``previous`` is the timestamp the d/dd formats count from; ``width`` as ``time_width``."""
    from dicomtui.core.base.time_format import format_timestamp

    connection = analysis.connections[pdu.connection]
    source, destination = (connection.client, connection.server) if pdu.direction == 0 else (
        connection.server, connection.client)
    frames = f"{pdu.first_frame}" if pdu.first_frame == pdu.last_frame else f"{pdu.first_frame}-{pdu.last_frame}"
    when = format_timestamp(time_format, pdu.timestamp, analysis.first_time, previous)
    width = time_width(analysis, time_format) if width is None else width
    return (f"{pdu.index + 1:6d} {when:>{width}} {source:>21} -> {destination:<21} "
            f"A{pdu.association:<3d} frames {frames:<11} {safe_text(pdu.summary)}")


def expert_line(item: ExpertItem) -> str:
    """One finding as ``--expert`` prints it."""
    where = f"frame {item.frame}" if item.frame else "capture"
    association = f" A{item.association}" if item.association is not None else ""
    return f"{item.severity.label:<7} {item.group.value:<15} {where:>12}{association:<5} {safe_text(item.message)}"


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
    }


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
    return [
        ("format_version", JSON_FORMAT_VERSION),
        ("capture", capture_json(analysis)),
        ("connections", map(connection_json, analysis.connections)),
        ("associations", (association_json(analysis, association) for association in analysis.associations)),
        ("pdus", pdu_json_rows(analysis) if shown is None else map(pdu_json, pdus)),
        ("messages", (message_json(analysis, message) for message in messages)),
        ("expert", (item.as_json() for item in expert)),
        ("timing", _timing(analysis)),
    ]


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


_encode_string = json.encoder.encode_basestring_ascii  # the C function json.dump uses (ensure_ascii)
_INFINITY = float("inf")


def _encode_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def _encode_key(key: Any) -> str:
    if isinstance(key, str):
        return _encode_string(key)
    if key is True or key is False or key is None:
        return _encode_string(json.dumps(key))
    if isinstance(key, int):
        return _encode_string(int.__repr__(key))
    if isinstance(key, float):
        return _encode_string(_encode_float(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def encode_indented(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(value, indent=1)`` writes it at nesting ``level`` (same bytes)."""
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        return scalar(value)
    return _encode_other(value, level)


def _encode_other(value: Any, level: int) -> str:
    if isinstance(value, str):
        return _encode_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _encode_float(value)
    inner = "\n" + " " * (level + 1)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[" + ",".join(inner + encode_indented(item, level + 1) for item in value) + "\n" + " " * level + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for key, item in value.items():
            prefix = _KEY_PREFIXES.get(key) if type(key) is str else None
            if prefix is None:
                prefix = _encode_key(key) + ": "
                if type(key) is str and len(_KEY_PREFIXES) < 4096:
                    _KEY_PREFIXES[key] = prefix
            scalar = _SCALARS.get(type(item))
            parts.append(inner + prefix + (scalar(item) if scalar is not None else _encode_other(item, level + 1)))
        return "{" + ",".join(parts) + "\n" + " " * level + "}"
    return json.dumps(value)  # raises TypeError for what JSON cannot hold, as json.dump would


# Exact types only (a subclass, e.g. an IntEnum, takes the isinstance path as json does).
_SCALARS = {
    str: _encode_string,
    int: int.__repr__,
    float: _encode_float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _value: "null",
}
_KEY_PREFIXES: dict[str, str] = {}  # '"key": ' for the keys the documents repeat (bounded)


def analysis_json_lines(analysis: Analysis):
    """``--jsonl`` of a finished analysis: the same lines a live capture streams, in document order."""
    def line(kind: str, body: dict[str, Any], **extra) -> str:
        return safe_json({"object": kind, **extra, **body}, ensure_ascii=False)

    for association in analysis.associations:
        yield line("association", association_json(analysis, association), event="start")
    for pdu in pdu_json_rows(analysis):
        yield line("pdu", pdu)
    for message in analysis.messages:
        yield line("message", message_json(analysis, message))
    for association in analysis.associations:
        yield line("association", association_json(analysis, association), event="end")
    for item in analysis.expert:
        yield line("expert", item.as_json())
    yield line("end", {"capture": capture_json(analysis),
                       "connections": [connection_json(connection) for connection in analysis.connections],
                       "stop_reason": "end of file", "dropped": None, "written": []})


def _timing(analysis: Analysis) -> dict[str, Any]:
    from .timing import timing_json

    return timing_json(analysis)
