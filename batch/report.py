"""``dicomtui --report OUTDIR``: canned questions over the batch tables, through DuckDB.

Every table of every committed run is a view (``connections``, ``associations``,
``messages``, ``expert``, ``timing``, ``inputs``, ``input_problems``) with the
``date`` partition as a column; ``--sql`` runs any query over them.  Only committed
runs are read (``OUTDIR/runs/*``): staging directories of unfinished runs never show.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import glob
import io
import json
import os

import duckdb

from .runner import RUNS
from .tables import TABLES, empty_table

REPORTS: list[tuple[str, str, str]] = [
    ("failures", "Failed requests by status and AE pair (and since when)", """
        SELECT calling_ae, called_ae, command, printf('0x%04X', status) AS status, status_meaning,
               count(*) AS responses, min(start) AS first_seen, max(start) AS last_seen
        FROM messages
        WHERE status_category = 'failure'
        GROUP BY ALL ORDER BY responses DESC, first_seen"""),
    ("rejected", "Rejected associations per day, by AE pair and reason", """
        SELECT date, calling_ae, called_ae, server, end_reason, count(*) AS associations
        FROM associations
        WHERE state = 'rejected'
        GROUP BY ALL ORDER BY date, associations DESC"""),
    ("response_times", "Response time (seconds, request complete to first response complete) by AE pair "
                       "and command, per hour", """
        SELECT date_trunc('hour', q.start) AS hour, q.calling_ae, q.called_ae, q.command, count(*) AS requests,
               round(quantile_cont(r.response_time, 0.5), 4) AS p50,
               round(quantile_cont(r.response_time, 0.9), 4) AS p90,
               round(quantile_cont(r.response_time, 0.99), 4) AS p99,
               round(max(r.response_time), 4) AS max
        FROM messages q
        JOIN messages r ON r.run_id = q.run_id AND r."index" = q.responses[1]
        WHERE r.response_time IS NOT NULL
        GROUP BY ALL ORDER BY hour, q.calling_ae, q.called_ae, q.command"""),
    ("modality_volume", "Objects stored per day and modality (implied by the SOP class)", """
        SELECT m.date, coalesce(m.modality, m.sop_class_name, m.sop_class) AS modality,
               count(*) AS objects, sum(m.dataset_length) AS bytes,
               count(*) FILTER (WHERE r.status_category = 'failure') AS failed
        FROM messages m
        LEFT JOIN messages r ON r.run_id = m.run_id AND r."index" = m.responses[1]
        WHERE m.command = 'C-STORE-RQ'
        GROUP BY ALL ORDER BY m.date, objects DESC"""),
    ("top_findings", "Top expert findings per day (warnings and errors, five a day)", """
        SELECT date, severity, "group", rule, message, findings FROM (
            SELECT date, severity, "group", rule, message, count(*) AS findings,
                   row_number() OVER (PARTITION BY date ORDER BY count(*) DESC, message) AS rank
            FROM expert WHERE severity IN ('warning', 'error')
            GROUP BY date, severity, "group", rule, message)
        WHERE rank <= 5 ORDER BY date, findings DESC, message"""),
    ("input_problems", "Inputs that could not be read or placed", """
        SELECT noticed, path, coalesce(severity, 'error') AS severity, problem FROM input_problems
        ORDER BY noticed, path"""),
]


class ReportError(Exception):
    """A report that cannot run (no output there, or a bad query).  One line for the user."""


def connect(outdir: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every batch table of ``outdir`` as a view."""
    if not os.path.isdir(os.path.join(outdir, RUNS)):
        raise ReportError(f"{outdir}: no batch output here (expected {os.path.join(outdir, RUNS)}/)")
    connection = duckdb.connect(":memory:")
    for table in TABLES:
        pattern = os.path.join(outdir, RUNS, "*", table, "date=*", "*.parquet")
        if glob.glob(pattern):
            quoted = pattern.replace("'", "''")
            connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{quoted}', "
                               "hive_partitioning = true, union_by_name = true)")
        else:
            connection.register(f"_{table}_empty", empty_table(table))
            connection.execute(f"CREATE VIEW {table} AS SELECT * FROM _{table}_empty")
    return connection


def query(connection: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple]]:
    try:
        result = connection.execute(sql)
    except duckdb.Error as exc:
        raise ReportError(str(exc).splitlines()[0]) from None
    if result.description is None:
        return [], []
    return [column[0] for column in result.description], result.fetchall()


# Columns that hold a capture time as seconds since the epoch (batch/tables.py): shown as UTC dates,
# not as "1.79659e+09".
EPOCH_COLUMNS = frozenset({"first_time", "last_time", "start_time", "end_time", "time"})


def _cell(value, column: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        if column in EPOCH_COLUMNS and 0 <= value < 1e11:
            return datetime.datetime.fromtimestamp(value, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        return f"{value:.6f}"  # fixed decimals (µs for seconds), never scientific notation
    return str(value)


def _plain(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


TEXT_CELL_WIDTH = 110  # text tables only; --json and --csv give every cell whole


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_CELL_WIDTH else text[: TEXT_CELL_WIDTH - 1] + "…"


def text_table(columns: list[str], rows: list[tuple]) -> str:
    from dicomtui.core.base.safe_text import safe_text

    cells = [columns] + [[_clip(safe_text(_cell(value, column))) for value, column in zip(row, columns)]
                         for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def csv_text(columns: list[str], rows: list[tuple]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(value, column) for value, column in zip(row, columns)])
    return out.getvalue()


def json_rows(columns: list[str], rows: list[tuple]) -> list[dict]:
    return [{column: _plain(value) for column, value in zip(columns, row)} for row in rows]


def run_reports(outdir: str, sql: str | None = None, output: str = "text") -> str:
    """The canned reports (or one ``sql`` query) as text tables, CSV or JSON."""
    connection = connect(outdir)
    if sql:
        columns, rows = query(connection, sql)
        if output == "json":
            return json.dumps(json_rows(columns, rows), indent=1)
        return csv_text(columns, rows) if output == "csv" else text_table(columns, rows)
    sections = []
    document = {}
    for name, title, statement in REPORTS:
        columns, rows = query(connection, statement)
        if output == "json":
            document[name] = json_rows(columns, rows)
        elif output == "csv":
            sections.append(f"# {name}: {title}\n" + csv_text(columns, rows))
        else:
            sections.append(f"{title}\n\n" + text_table(columns, rows))
    if output == "json":
        return json.dumps(document, indent=1)
    return "\n\n".join(sections)
