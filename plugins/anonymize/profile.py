"""The Basic Application Level Confidentiality Profile and its options (PS3.15 E.1-1).

Two sources, both from the standard's published table, none hand-written:

- ``table_e1_1``: the whole table with every option column, edition ``EDITION``
  (2024b), generated from the JSON extraction of the standard's table;
- KitwareMedical's ``dicom-anonymizer`` (maintained; it scrapes the standard into
  one database per edition): its newest database gives the Basic Profile action of
  rows the standard added after 2024b (2026c adds 35, e.g. the Person Names to Use
  and Gender Identity sequences).  It has no option columns, so options never apply
  to those rows, which errs toward removing more.

dicognito (own handlers, no table, no options) and deid (recipes, shipped ones are
pixel filters) do not implement the table; this module turns a row and the selected
options into the one action dicomtui performs.  Where the standard leaves a choice (``X/Z``, ``Z/D``...),
dicomtui keeps the attribute and replaces its value (``Z`` or ``D``), because a
query identifier or an object that loses a Type 1/2 attribute no longer shows the
problem the capture was taken for; ``Z`` on a non-empty value is a consistent
dummy rather than an empty value for the same reason (the standard allows both).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import re
from dataclasses import dataclass
from functools import lru_cache

from pydicom.datadict import keyword_for_tag

from .options import OPTIONS
from .table_e1_1 import EDITION, ROWS

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
# dicom-anonymizer's database lists -> the standard's codes
_DATABASE_CODES = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D",
                   "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*"}


@lru_cache(maxsize=1)
def newest_basic_profile() -> tuple[str, dict[int, str]]:
    """(edition, {tag: Basic Profile code}) from dicom-anonymizer's newest database."""
    from dicomanonymizer import dicom_anonymization_databases as databases

    names = sorted(module.name for module in pkgutil.iter_modules(databases.__path__)
                   if module.name.startswith("dicomfields_"))
    newest = names[-1]
    database = importlib.import_module(f"{databases.__name__}.{newest}")
    codes: dict[int, str] = {}
    for list_name, code in _DATABASE_CODES.items():
        for entry in getattr(database, list_name, ()):
            if len(entry) == 2:  # masked entries (50xx, 60xx) are in table_e1_1 already
                codes[(entry[0] << 16) | entry[1]] = code
    version = importlib.metadata.version("dicom-anonymizer")
    return f"{newest.removeprefix('dicomfields_')} (dicom-anonymizer {version})", codes


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

    def __init__(self, options: frozenset[str] = frozenset(), newer_rows: bool = True) -> None:
        self.options = options
        self.edition = EDITION
        self.short_edition = EDITION
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
        self.added: list[int] = []  # rows of a newer edition, Basic Profile only
        if newer_rows:
            newest, codes = newest_basic_profile()
            for tag, code in codes.items():
                known = self.exact.get(tag)
                if known is None:
                    name = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
                    self.exact[tag] = Rule(f"({tag >> 16:04X},{tag & 0xFFFF:04X})", name, code, {})
                    self.added.append(tag)
                elif known.basic != code:  # the newer edition changed the row: its Basic Profile wins
                    self.exact[tag] = Rule(known.tag_text, known.name, code, known.options)
                    self.added.append(tag)
            # Says what the table holds, not what was applied (the report's "options:" line says that):
            # "with all options ... Basic Profile only" read as two contradicting answers to one question.
            self.edition = (f"{EDITION} (Basic Profile and option columns), plus the Basic Profile column "
                            f"of rows added or changed up to {newest}")
            self.short_edition = f"{EDITION}, +{newest.split()[0]} Basic Profile rows"

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
