"""Severities and groups of findings (as Wireshark's expert info has them).

Shared by the protocol core, which reports findings, and everything above it.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple


class Severity(enum.IntEnum):
    CHAT = 1
    NOTE = 2
    WARNING = 3
    ERROR = 4

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (chat, note, warning, error)") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class Group(str, enum.Enum):
    PROTOCOL = "protocol"
    MALFORMED = "malformed"
    RESPONSE_STATUS = "response status"
    SEQUENCE = "sequence"
    PERFORMANCE = "performance"
    NEGOTIATION = "negotiation"
    CAPTURE = "capture"
    QUERY = "query"
    PLUGIN = "plugin"
    WORKFLOW = "workflow"  # across associations: storage commitment, MPPS, worklist
    DATA = "data"  # the objects themselves: IOD and consistency checks (validate plugin)


class Problem(NamedTuple):
    """Something wrong a part of the protocol core noticed: a code and its parameters.

    The core never words it: ``pipeline.finding_text.PROBLEM_TEXT`` does (or a view, its
    own way).  What a PDU body decoder reports stays its own text (``AssociateBody.problems``,
    ``DecodeError``): a replacement body decoder brings its own words.
    """

    code: str
    params: dict[str, Any]
