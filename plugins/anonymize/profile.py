"""The Basic Application Level Confidentiality Profile and its options (PS3.15 E.1-1).

``table_e1_1`` holds the standard's table (edition in ``EDITION``), generated from
its published data; this module turns a row and the selected options into the one
action dicomtui performs.  Where the standard leaves a choice (``X/Z``, ``Z/D``...),
dicomtui keeps the attribute and replaces its value (``Z`` or ``D``), because a
query identifier or an object that loses a Type 1/2 attribute no longer shows the
problem the capture was taken for; ``Z`` on a non-empty value is a consistent
dummy rather than an empty value for the same reason (the standard allows both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .table_e1_1 import EDITION, ROWS

# option name -> (PS3.16 CID 7050 code, meaning) for De-identification Method Code Sequence
OPTIONS = {
    "retain-safe-private": ("113111", "Retain Safe Private Option"),
    "retain-uids": ("113110", "Retain UIDs Option"),
    "retain-device-identity": ("113109", "Retain Device Identity Option"),
    "retain-institution-identity": ("113112", "Retain Institution Identity Option"),
    "retain-patient-characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain-long-full-dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain-long-modified-dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "clean-descriptors": ("113105", "Clean Descriptors Option"),
    "clean-structured-content": ("113104", "Clean Structured Content Option"),
    "clean-graphics": ("113103", "Clean Graphics Option"),
}
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
# Names the issue uses, accepted as well
OPTION_ALIASES = {
    "retain-longitudinal-temporal-information": "retain-long-modified-dates",
    "retain-longitudinal": "retain-long-modified-dates",
    "shifted-dates": "retain-long-modified-dates",
}

# The action dicomtui takes for each of the standard's codes (see the module docstring)
CHOICE = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U*"}

_TAG = re.compile(r"\(([0-9A-FX]{4}),([0-9A-FX]{4})\)")


def parse_options(names: list[str]) -> frozenset[str]:
    """Option names as typed (case and underscores free) -> canonical names; ValueError if unknown."""
    chosen = set()
    for name in names:
        for part in name.split(","):
            key = part.strip().lower().replace("_", "-").replace(" ", "-")
            if not key:
                continue
            key = key.removesuffix("-option")
            key = OPTION_ALIASES.get(key, key)
            if key not in OPTIONS:
                raise ValueError(f"unknown de-identification option {part!r} (known: {', '.join(OPTIONS)})")
            chosen.add(key)
    return frozenset(chosen)


@dataclass(frozen=True, slots=True)
class Rule:
    tag_text: str  # as printed in the standard, e.g. "(0010,0010)" or "(50XX,XXXX)"
    name: str
    basic: str  # the Basic Profile code
    options: dict  # option -> code

    def action(self, options: frozenset[str]) -> str:
        """The action under ``options``: K beats C beats the Basic Profile (options only retain more)."""
        chosen = [self.options[name] for name in options if name in self.options]
        if "K" in chosen:
            return "K"
        if "C" in chosen:
            return "C"
        return CHOICE.get(self.basic, self.basic)


class Profile:
    """Lookup of a tag's rule; masked rows (50xx,xxxx), (60xx,3000) and (60xx,4000) included."""

    edition = EDITION

    def __init__(self, options: frozenset[str] = frozenset()) -> None:
        self.options = options
        self.exact: dict[int, Rule] = {}
        self.masked: list[tuple[int, int, Rule]] = []  # (mask, value, rule)
        self.private_rule: Rule | None = None
        for tag_text, name, basic, row_options in ROWS:
            rule = Rule(tag_text, name, basic, dict(row_options))
            match = _TAG.fullmatch(tag_text)
            if match is None:  # "(GGGG,EEEE) WHERE GGGG IS ODD"
                self.private_rule = rule
                continue
            text = match.group(1) + match.group(2)
            if "X" in text:
                mask = int("".join("0" if c == "X" else "F" for c in text), 16)
                value = int(text.replace("X", "0"), 16)
                self.masked.append((mask, value, rule))
            else:
                self.exact[int(text, 16)] = rule

    def rule(self, tag: int) -> Rule | None:
        rule = self.exact.get(tag)
        if rule is not None:
            return rule
        for mask, value, masked_rule in self.masked:
            if tag & mask == value:
                return masked_rule
        if (tag >> 16) & 1 and self.private_rule is not None:
            return self.private_rule
        return None

    def action(self, tag: int) -> str | None:
        """The action for ``tag`` under the selected options; None when the table does not list it."""
        rule = self.rule(tag)
        return rule.action(self.options) if rule else None

    def method_codes(self) -> list[tuple[str, str]]:
        """CID 7050 codes for De-identification Method Code Sequence (profile, then options)."""
        return [BASIC_PROFILE_CODE] + [OPTIONS[name] for name in sorted(self.options)]
