"""Headless views of an Analysis, one module each.

- ``summary``: the ``--summary`` and ``--expert`` lines;
- ``document``: the ``--json`` document and the per-object dicts (a public interface,
  README.md "JSON output": add keys freely, never rename or remove them);
- ``json_encoder``: ``json.dumps(indent=1)``'s bytes, one value at a time;
- ``json_lines``: ``--jsonl`` of a finished analysis;
- ``export``, ``live``, ``timing``, ``filter``, ``index``, ``preferences``,
  ``dataset_values``: the ``--export`` driver, the live modes, ``--stats``/``--flow``,
  the display-filter language and its index, the preferences, data-set values;
- ``report``: the ``--html`` page for a vendor ticket (docs/report.md).

The names below were this module's own before it was split; they stay importable
from here for the code and tests that use them.
"""

from __future__ import annotations

from .document import (
    JSON_FORMAT_VERSION,
    analysis_json,
    analysis_json_sections,
    association_json,
    capture_json,
    connection_json,
    message_json,
    pdu_json,
    pdu_json_rows,
    write_analysis_json,
)
from .json_encoder import encode_indented
from .json_lines import analysis_json_lines
from .summary import expert_line, summary_line, summary_lines, time_width

__all__ = [
    "JSON_FORMAT_VERSION", "analysis_json", "analysis_json_lines", "analysis_json_sections", "association_json",
    "capture_json", "connection_json", "encode_indented", "expert_line", "message_json", "pdu_json",
    "pdu_json_rows", "summary_line", "summary_lines", "time_width", "write_analysis_json",
]
