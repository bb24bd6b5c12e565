"""The DIMSE transaction table exporters: ``transactions-csv`` and ``transactions-json``.

One row per DIMSE request with what answered it: association and AE titles,
command, SOP class, message id, final status (and its meaning), request and
response frames and times, latency, and the number of responses (C-FIND and
C-MOVE send several).  Responses whose request the capture lacks get a row of
their own, with the request columns empty.  The CSV is for spreadsheets, the
JSON (a list of objects with the same keys) for scripts.  Files written:
``transactions.csv`` / ``transactions.json`` in OUTDIR.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from dicomtui import hookimpl
from dicomtui.core.api.export import ExportOptions, ExportResult, OutputFolder, Progress, error_text
from dicomtui.core.base.safe_text import safe_json, safe_text
from dicomtui.core.base.uids import uid_name

COLUMNS = (
    "association", "connection", "client", "server", "calling_ae", "called_ae",
    "command", "sop_class", "sop_class_name", "sop_instance", "message_id",
    "status", "status_category", "status_meaning", "responses",
    "request_first_frame", "request_last_frame", "response_first_frame", "response_last_frame",
    "request_time", "response_time", "latency_seconds", "dataset_bytes", "complete",
)


def _iso(timestamp: float | None) -> str:
    """ISO 8601 in UTC; a time the calendar cannot show (year 38000, NaN) as seconds since 1970."""
    if timestamp is None:
        return ""
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="microseconds")
    except (ValueError, OverflowError, OSError):
        return f"{timestamp:.6f}"


def _out_of_calendar(rows: list[dict]) -> int:
    return sum(1 for row in rows for key in ("request_time", "response_time")
               if row[key] and "T" not in row[key])


def transaction_rows(analysis, options: ExportOptions) -> list[dict]:
    wanted = set(options.messages) if options.messages is not None else None
    rows = []
    for message in analysis.messages:
        if wanted is not None and message.index not in wanted:
            continue
        if message.is_request:
            responses = [analysis.messages[index] for index in message.responses]
            rows.append(_row(analysis, message, responses))
        elif message.request is None:
            rows.append(_row(analysis, None, [message]))
    return rows


def _row(analysis, request, responses: list) -> dict:
    first = request or responses[0]
    final = responses[-1] if responses else None
    association = analysis.associations[first.association] if 0 <= first.association < len(
        analysis.associations) else None
    connection = analysis.connections[first.connection] if 0 <= first.connection < len(
        analysis.connections) else None
    sop_class = first.affected_sop_class or (final.affected_sop_class if final else "")
    status = final.status if final is not None else None
    category = meaning = ""
    if status is not None:
        category, meaning = analysis.status_meaning(final.command_field, status, sop_class)
    latency = None
    if request is not None and final is not None:
        latency = request.response_time if request.response_time is not None else \
            max(0.0, final.end_time - request.end_time)
    command = request.command_name if request is not None else (final.command_name if final else "")
    return {
        "association": first.association,
        "connection": first.connection,
        "client": connection.client if connection else "",
        "server": connection.server if connection else "",
        "calling_ae": association.calling_ae if association else "",
        "called_ae": association.called_ae if association else "",
        "command": command,
        "sop_class": sop_class,
        "sop_class_name": uid_name(sop_class) if sop_class else "",
        "sop_instance": first.affected_sop_instance or (final.affected_sop_instance if final else ""),
        "message_id": request.message_id if request is not None else (final.responded_to if final else None),
        "status": f"0x{status:04X}" if status is not None else "",
        "status_category": category,
        "status_meaning": meaning,
        "responses": len(responses),
        "request_first_frame": request.first_frame if request is not None else None,
        "request_last_frame": request.last_frame if request is not None else None,
        "response_first_frame": responses[0].first_frame if responses else None,
        "response_last_frame": final.last_frame if final is not None else None,
        "request_time": _iso(request.start_time) if request is not None else "",
        "response_time": _iso(final.end_time) if final is not None else "",
        "latency_seconds": round(latency, 6) if latency is not None else None,
        "dataset_bytes": (request.dataset_length if request is not None else 0)
        + sum(response.dataset_length for response in responses),
        "complete": (request is None or request.complete) and all(r.complete for r in responses),
    }


def _csv_safe(value) -> str:
    """Cells from the capture never start a spreadsheet formula (CSV injection) and carry no
    control characters (``cat transactions.csv`` must not run escape sequences): those are
    shown as visible escapes (``\\x1b``), as in the terminal views."""
    if value is None:
        return ""
    text = safe_text(str(value))
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class TransactionsExporter:
    def __init__(self, file_format: str) -> None:
        self.file_format = file_format
        self.name = f"transactions-{file_format}"
        self.description = (f"table of DIMSE transactions (AE titles, command, status, frames, latency) "
                            f"as transactions.{file_format}")

    def export(self, analysis, outdir: str, options: ExportOptions, progress: Progress | None = None
               ) -> ExportResult:
        folder = OutputFolder(outdir, options.overwrite)
        result = ExportResult()
        rows = transaction_rows(analysis, options)
        if self.file_format == "csv":
            buffer = io.StringIO(newline="")
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({key: _csv_safe(value) for key, value in row.items()})
            encoded = buffer.getvalue().encode("utf-8")
        else:
            encoded = (safe_json(rows, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            path, stream = folder.open_new(f"transactions.{self.file_format}")
            with stream:
                stream.write(encoded)
        except OSError as exc:
            result.errors.append(error_text(exc))
            return result
        odd_times = _out_of_calendar(rows)
        if odd_times:
            result.notes.append(f"{odd_times} time(s) lie outside the calendar (years 1-9999); written as "
                                "seconds since 1970 instead of ISO 8601")
        result.written.append((str(path), -1))
        result.bytes_written = len(encoded)
        result.replaced = list(folder.replaced)
        if progress is not None:
            progress(1, 1)
        return result


@hookimpl
def dicomtui_register_exporters(register) -> None:
    register(TransactionsExporter("csv"))
    register(TransactionsExporter("json"))
