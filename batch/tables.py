"""The batch output: typed Parquet tables, partitioned by capture date.

Columns carry the names and meanings of the ``--json`` document (README, "JSON output")
so one question can be asked of either; a few are added for querying (the AE titles on
every message, a ``start`` timestamp, the modality a storage SOP class implies).  Nested
values with free-form keys (``fields``, ``roles``, ``user_identity``) are JSON text.
Columns are only ever added; ``SCHEMA_VERSION`` changes if that promise is ever broken.
A key added to the ``--json`` document needs its column here: tests/test_batch.py compares
every key of the document with the tables and fails until it has one.
The layout and every column are described in docs/batch.md.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
from dicomtui.core.model.analysis import Analysis
from dicomtui.core.model.pdu_table import PduTable
from dicomtui.core.views import analysis_json

SCHEMA_VERSION = 1

_STRINGS = pa.list_(pa.string())
_TIME = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "connections": pa.schema([
        ("run_id", pa.string()), ("id", pa.int64()), ("client", pa.string()), ("server", pa.string()),
        ("first_frame", pa.int64()), ("last_frame", pa.int64()), ("first_time", pa.float64()),
        ("last_time", pa.float64()), ("start", _TIME), ("syn_seen", pa.bool_()), ("closed_by", pa.string()),
        ("detection", pa.string()), ("picked_up_midway", pa.bool_()), ("bytes", pa.list_(pa.int64())),
        ("gaps", pa.list_(pa.struct([("direction", pa.int8()), ("stream_offset", pa.int64()),
                                     ("length", pa.int64()), ("frame", pa.int64()), ("reason", pa.string())]))),
        # DICOM inside another layer (TLS): its name, and what --json says of it as JSON text
        ("transform", pa.string()), ("layer", pa.string()),
    ]),
    "associations": pa.schema([
        ("run_id", pa.string()), ("id", pa.int64()), ("connection", pa.int64()), ("client", pa.string()),
        ("server", pa.string()), ("calling_ae", pa.string()), ("called_ae", pa.string()), ("state", pa.string()),
        ("end_reason", pa.string()), ("picked_up_midway", pa.bool_()), ("start_time", pa.float64()),
        ("end_time", pa.float64()), ("start", _TIME), ("first_frame", pa.int64()), ("last_frame", pa.int64()),
        ("requestor_max_pdu", pa.int64()), ("acceptor_max_pdu", pa.int64()),
        ("requestor_implementation", _STRINGS), ("acceptor_implementation", _STRINGS),
        ("async_window", pa.list_(pa.int64())), ("roles", pa.string()), ("user_identity", pa.string()),
        ("message_count", pa.int64()), ("parent_move", pa.int64()),
        ("contexts", pa.list_(pa.struct([
            ("id", pa.int64()), ("abstract_syntax", pa.string()), ("abstract_syntax_name", pa.string()),
            ("proposed_transfer_syntaxes", _STRINGS), ("result", pa.int64()), ("result_text", pa.string()),
            ("transfer_syntax", pa.string()), ("transfer_syntax_name", pa.string()), ("guessed", pa.bool_())]))),
    ]),
    "messages": pa.schema([
        ("run_id", pa.string()), ("index", pa.int64()), ("association", pa.int64()), ("calling_ae", pa.string()),
        ("called_ae", pa.string()), ("client", pa.string()), ("server", pa.string()), ("direction", pa.string()),
        ("context_id", pa.int64()), ("command", pa.string()), ("command_field", pa.int64()),
        ("message_id", pa.int64()), ("responded_to", pa.int64()), ("sop_class", pa.string()),
        ("sop_class_name", pa.string()), ("modality", pa.string()), ("sop_instance", pa.string()),
        ("status", pa.int64()), ("status_category", pa.string()), ("status_meaning", pa.string()),
        ("error_comment", pa.string()), ("request", pa.int64()), ("responses", pa.list_(pa.int64())),
        ("response_time", pa.float64()), ("first_byte_time", pa.float64()), ("transfer_time", pa.float64()),
        ("frames", pa.list_(pa.int64())), ("start_time", pa.float64()),
        ("end_time", pa.float64()), ("start", _TIME), ("has_dataset", pa.bool_()), ("dataset_length", pa.int64()),
        ("transfer_syntax", pa.string()), ("transfer_syntax_guessed", pa.bool_()), ("complete", pa.bool_()),
        ("incomplete_reason", pa.string()), ("fields", pa.string()),
    ]),
    "expert": pa.schema([
        ("run_id", pa.string()), ("frame", pa.int64()), ("severity", pa.string()), ("group", pa.string()),
        ("message", pa.string()), ("association", pa.int64()), ("pdu", pa.int64()),
        ("message_index", pa.int64()), ("rule", pa.string()), ("code", pa.string()), ("time", pa.float64()),
        ("start", _TIME),
        ("calling_ae", pa.string()), ("called_ae", pa.string()),
    ]),
    "timing": pa.schema([
        ("run_id", pa.string()), ("association", pa.int64()), ("calling_ae", pa.string()),
        ("called_ae", pa.string()), ("client", pa.string()), ("server", pa.string()), ("state", pa.string()),
        ("start_time", pa.float64()), ("start", _TIME), ("setup_seconds", pa.float64()),
        ("duration_seconds", pa.float64()), ("requests", pa.int64()), ("answered", pa.int64()),
        ("failures", pa.int64()), ("warnings", pa.int64()), ("stores", pa.int64()),
        ("dataset_bytes", pa.int64()), ("response_time_min", pa.float64()),
        ("response_time_median", pa.float64()), ("response_time_p95", pa.float64()),
        ("response_time_max", pa.float64()), ("bytes_per_second", pa.float64()),
    ]),
    "inputs": pa.schema([
        ("run_id", pa.string()), ("path", pa.string()), ("content_hash", pa.string()), ("size", pa.int64()),
        ("frames", pa.int64()), ("first_time", pa.float64()), ("last_time", pa.float64()), ("start", _TIME),
        ("notes", _STRINGS),
    ]),
    "input_problems": pa.schema([
        ("run_id", pa.string()), ("path", pa.string()), ("content_hash", pa.string()), ("size", pa.int64()),
        ("problem", pa.string()), ("noticed", _TIME),
        ("severity", pa.string()),  # error: not read; warning: read, but not placed as asked (issue 22)
    ]),
}
TABLES = tuple(SCHEMAS)

# Storage SOP classes (PS3.4 B.5) -> the modality their objects come from.  The data set's
# own Modality (0008,0060) is not read: that would mean reading every stored object.
_MODALITY_BY_SOP_CLASS = {
    "1.2.840.10008.5.1.4.1.1.1": "CR", "1.2.840.10008.5.1.4.1.1.1.1": "DX", "1.2.840.10008.5.1.4.1.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.1.2": "MG", "1.2.840.10008.5.1.4.1.1.1.2.1": "MG", "1.2.840.10008.5.1.4.1.1.1.3": "IO",
    "1.2.840.10008.5.1.4.1.1.1.3.1": "IO", "1.2.840.10008.5.1.4.1.1.2": "CT", "1.2.840.10008.5.1.4.1.1.2.1": "CT",
    "1.2.840.10008.5.1.4.1.1.2.2": "CT", "1.2.840.10008.5.1.4.1.1.3.1": "US", "1.2.840.10008.5.1.4.1.1.4": "MR",
    "1.2.840.10008.5.1.4.1.1.4.1": "MR", "1.2.840.10008.5.1.4.1.1.4.2": "MR", "1.2.840.10008.5.1.4.1.1.6.1": "US",
    "1.2.840.10008.5.1.4.1.1.6.2": "US", "1.2.840.10008.5.1.4.1.1.7": "OT", "1.2.840.10008.5.1.4.1.1.12.1": "XA",
    "1.2.840.10008.5.1.4.1.1.12.1.1": "XA", "1.2.840.10008.5.1.4.1.1.12.2": "RF",
    "1.2.840.10008.5.1.4.1.1.12.2.1": "RF", "1.2.840.10008.5.1.4.1.1.13.1.1": "XA",
    "1.2.840.10008.5.1.4.1.1.13.1.3": "MG", "1.2.840.10008.5.1.4.1.1.20": "NM", "1.2.840.10008.5.1.4.1.1.66.4": "SEG",
    "1.2.840.10008.5.1.4.1.1.77.1.1": "ES", "1.2.840.10008.5.1.4.1.1.77.1.4": "XC", "1.2.840.10008.5.1.4.1.1.77.1.6": "SM",
    "1.2.840.10008.5.1.4.1.1.104.1": "DOC", "1.2.840.10008.5.1.4.1.1.128": "PT", "1.2.840.10008.5.1.4.1.1.130": "PT",
    "1.2.840.10008.5.1.4.1.1.481.1": "RTIMAGE", "1.2.840.10008.5.1.4.1.1.481.2": "RTDOSE",
    "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT", "1.2.840.10008.5.1.4.1.1.481.4": "RTRECORD",
    "1.2.840.10008.5.1.4.1.1.481.5": "RTPLAN", "1.2.840.10008.5.1.4.1.1.481.8": "RTPLAN",
}


def modality_of(sop_class: str) -> str | None:
    if sop_class in _MODALITY_BY_SOP_CLASS:
        return _MODALITY_BY_SOP_CLASS[sop_class]
    if sop_class.startswith("1.2.840.10008.5.1.4.1.1.88."):
        return "SR"
    return None


def _date(timestamp: float | None) -> str:
    return datetime.datetime.fromtimestamp(timestamp or 0.0, datetime.UTC).strftime("%Y-%m-%d")


def _start(timestamp: float | None) -> datetime.datetime | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def analysis_tables(analysis: Analysis, run_id: str) -> dict[str, list[dict]]:
    """Rows of every capture table, from the same document ``--json`` prints."""
    # The PDU list is not a batch table: leave it out of the document (a third of the work).
    pdus, analysis.pdus = analysis.pdus, PduTable()
    try:
        document = analysis_json(analysis)
    finally:
        analysis.pdus = pdus
    connections = {row["id"]: row for row in document["connections"]}
    for row, connection in zip(document["connections"], analysis.connections):
        row.update(run_id=run_id, first_time=connection.first_time, last_time=connection.last_time,
                   start=_start(connection.first_time),
                   layer=json.dumps(row["layer"]) if row.get("layer") is not None else None)
    associations = {row["id"]: row for row in document["associations"]}
    for row in document["associations"]:
        row.update(run_id=run_id, start=_start(row["start_time"]), roles=json.dumps(row["roles"]),
                   user_identity=json.dumps(row["user_identity"]) if row["user_identity"] else None)
    for row in document["messages"]:
        association = associations.get(row["association"], {})
        row.update(run_id=run_id, calling_ae=association.get("calling_ae"), called_ae=association.get("called_ae"),
                   client=association.get("client"), server=association.get("server"),
                   modality=modality_of(row["sop_class"] or ""), start=_start(row["start_time"]),
                   fields=json.dumps(row["fields"], default=str))
    messages = document["messages"]
    first_time = analysis.first_time or 0.0
    for row in document["expert"]:
        if row["message_index"] is not None and row["message_index"] < len(messages):
            time = messages[row["message_index"]]["start_time"]
        elif row["association"] is not None and row["association"] in associations:
            time = associations[row["association"]]["start_time"]
        elif row["pdu"] is not None and row["pdu"] < len(analysis.pdus):
            time = analysis.pdus[row["pdu"]].timestamp
        else:
            time = first_time
        association = associations.get(row["association"], {}) if row["association"] is not None else {}
        row.update(run_id=run_id, time=time, start=_start(time), calling_ae=association.get("calling_ae"),
                   called_ae=association.get("called_ae"))
    return {
        "connections": list(connections.values()),
        "associations": list(associations.values()),
        "messages": messages,
        "expert": document["expert"],
        "timing": timing_rows(analysis, document, run_id),
    }


def timing_rows(analysis: Analysis, document: dict, run_id: str) -> list[dict]:
    """Per association: set-up time, duration, response-time figures, stored bytes and rate."""
    by_association: dict[int, list[dict]] = defaultdict(list)
    rows_by_index = {row["index"]: row for row in document["messages"]}
    for row in document["messages"]:
        by_association[row["association"]].append(row)
    rows = []
    for association, row in zip(analysis.associations, document["associations"]):
        messages = by_association.get(association.index, [])
        requests = [m for m in messages if not m["command_field"] & 0x8000]
        times = [first["response_time"] for first in (rows_by_index[m["responses"][0]] for m in requests
                                                          if m["responses"]) if first["response_time"] is not None]
        responses = [m for m in messages if m["command_field"] & 0x8000]
        stores = [m for m in requests if m["command_field"] == 0x0001]
        dataset_bytes = sum(m["dataset_length"] for m in messages if m["has_dataset"])
        duration = (association.end_time - association.start_time) if association.end_time is not None else None
        setup = (association.established_time - association.start_time
                 if association.established_time is not None else None)
        rows.append({
            "run_id": run_id, "association": association.index, "calling_ae": row["calling_ae"],
            "called_ae": row["called_ae"], "client": row["client"], "server": row["server"],
            "state": row["state"], "start_time": association.start_time, "start": _start(association.start_time),
            "setup_seconds": setup, "duration_seconds": duration, "requests": len(requests),
            "answered": len(times),
            "failures": sum(1 for m in responses if m["status_category"] == "failure"),
            "warnings": sum(1 for m in responses if m["status_category"] == "warning"),
            "stores": len(stores), "dataset_bytes": dataset_bytes,
            "response_time_min": min(times) if times else None,
            "response_time_median": statistics.median(times) if times else None,
            "response_time_p95": _percentile(times, 0.95) if times else None,
            "response_time_max": max(times) if times else None,
            "bytes_per_second": dataset_bytes / duration if duration else None,
        })
    return rows


def _row_date(table: str, row: dict) -> str:
    if table == "input_problems":
        return row["noticed"].strftime("%Y-%m-%d")
    start = row.get("start")
    return start.strftime("%Y-%m-%d") if start is not None else _date(None)


def write_tables(tables: dict[str, list[dict]], out_dir: str, run_id: str) -> dict[str, int]:
    """Each table as ``out_dir/<table>/date=YYYY-MM-DD/<run_id>.parquet`` (each file written, then renamed)."""
    counts = {}
    for name, rows in tables.items():
        schema = SCHEMAS[name].with_metadata({"dicomtui_schema_version": str(SCHEMA_VERSION), "table": name})
        by_date: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_date[_row_date(name, row)].append(row)
        for date, dated in sorted(by_date.items()):
            directory = os.path.join(out_dir, name, f"date={date}")
            os.makedirs(directory, exist_ok=True)
            target = os.path.join(directory, f"{run_id}.parquet")
            table = pa.Table.from_pylist([{column: row.get(column) for column in schema.names} for row in dated],
                                         schema=schema)
            pq.write_table(table, target + ".tmp")
            os.replace(target + ".tmp", target)
        counts[name] = len(rows)
    return counts


def empty_table(name: str) -> pa.Table:
    """A table with no rows (for views over tables that no run has written yet)."""
    schema = SCHEMAS[name].append(pa.field("date", pa.date32()))
    return schema.empty_table()
