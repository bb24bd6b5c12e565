"""``--jsonl`` of a finished analysis: one JSON object per line (README, "JSON lines")."""

from __future__ import annotations

from typing import Any

from dicomtui.core.base.safe_text import safe_json
from dicomtui.core.model.analysis import Analysis

from .document import association_json, capture_json, connection_json, message_json, pdu_json_rows


WORKFLOW_KINDS = (("commitment", "commitments"), ("procedure", "procedures"), ("worklist_item", "worklist"),
                  ("empty_worklist_query", "empty_worklist_queries"))


def workflow_json_rows(analysis: Analysis) -> list[tuple[str, dict[str, Any]]]:
    """(kind, the item as in ``--json``'s ``workflow``) for each commitment, procedure step,
    worklist item and empty worklist query: the ``workflow`` lines printed before ``end``."""
    workflow = analysis.workflow
    if workflow.empty:
        return []
    document = workflow.as_json(analysis)
    return [(kind, item) for kind, key in WORKFLOW_KINDS for item in document[key]]


def analysis_json_lines(analysis: Analysis):
    """``--jsonl`` of a finished analysis: the same lines a live capture streams, in document order."""
    def line(object_name: str, body: dict[str, Any], **extra) -> str:
        return safe_json({"object": object_name, **extra, **body}, ensure_ascii=False)

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
    for kind, item in workflow_json_rows(analysis):
        yield line("workflow", item, kind=kind)
    yield line("end", {"capture": capture_json(analysis),
                       "connections": [connection_json(connection) for connection in analysis.connections],
                       "stop_reason": "end of file", "dropped": None, "written": []})

