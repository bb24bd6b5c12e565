"""Data sets as a display tree, on top of the shared codec (``dicomtui.core.protocol.datasets``).

- the codec parses (syntax guess, bounded inflate, character sets, warnings);
- this builds the tree: names from the Analysis' tag dictionary (handed in by
  the caller), encapsulated pixel data shown as its offset table and
  fragments, never parsed as tags; a value pydicom rejects is shown as
  malformed and the rest of the data set still shows.

Offsets in the tree are relative to the start of the data set bytes (before
inflation; inflated data sets have no byte offsets to highlight).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from dicomtui import hookimpl
from dicomtui.core.base.library_warnings import pydicom_warnings
from dicomtui.core.base.limits import Limits
from dicomtui.core.base.tree import Field
from dicomtui.core.base.uids import uid_name
from typing import TYPE_CHECKING

from dicomtui.core.model.dictionary import TagDictionary

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# pydicom and the codec are imported when a data set is first decoded: a mode that never
# decodes one (--summary) does not pay for them.  ``guess_transfer_syntax`` stays part of
# this module's API through ``__getattr__``.
_CODEC_NAMES = ("MAX_WARNINGS_KEPT", "guess_transfer_syntax", "parse_dataset")


def __getattr__(name: str):
    if name in _CODEC_NAMES:
        from dicomtui.core.protocol import datasets

        return getattr(datasets, name)
    raise AttributeError(name)

from .dictionary import PydicomDictionary

LONG_HEADER_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"))
PIXEL_DATA = 0x7FE00010
MAX_SHOWN_VALUE = 120

def default_dictionary() -> TagDictionary:
    """pydicom's dictionaries alone (a caller without an Analysis, e.g. a test)."""
    return TagDictionary([PydicomDictionary()])


@dataclass(slots=True)
class DecodedDataset:
    tree: Field
    dataset: Dataset | None
    transfer_syntax: str
    guessed: bool = False
    inflated: bool = False
    problems: list[str] = field(default_factory=list)
    element_count: int = 0
    warnings: list[str] = field(default_factory=list)  # pydicom's warnings (e.g. invalid values), escaped


def _safe(text: str) -> str:
    """Values are shown literally: control characters as escapes, never raw."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _value_text(element, vr: str) -> str:
    value = element.value
    if value is None or value == "":
        return "(empty)"
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN") or isinstance(value, (bytes, bytearray)):
        raw = bytes(value) if isinstance(value, (bytes, bytearray)) else b""
        preview = raw[:16].hex(" ")
        return f"{len(raw)} bytes: {preview}{' …' if len(raw) > 16 else ''}"
    if vr == "UI":
        uids = [_safe(str(item)) for item in value] if isinstance(value, (list, tuple)) or \
            type(value).__name__ == "MultiValue" else [_safe(str(value))]
        shown = []
        for uid in uids:  # multi-valued: backslashes, as for every other VR
            name = uid_name(uid)
            shown.append(f"{uid} ({name})" if name else uid)
        text = "\\".join(shown)
        return text if len(text) <= MAX_SHOWN_VALUE else text[:MAX_SHOWN_VALUE] + "…"
    if vr == "AT":
        values = value if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(
            value, int) else [value]
        return "\\".join(f"({int(v) >> 16:04X},{int(v) & 0xFFFF:04X})" for v in values)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    text = _safe(text)
    return text if len(text) <= MAX_SHOWN_VALUE else text[:MAX_SHOWN_VALUE] + "…"


class _TreeBuilder:
    def __init__(self, explicit: bool, limits: Limits, offsets_valid: bool, dictionary: TagDictionary) -> None:
        self.explicit = explicit
        self.dictionary = dictionary
        self.limits = limits
        self.offsets_valid = offsets_valid
        self.count = 0
        self.problems: list[str] = []

    def header_length(self, vr: str) -> int:
        if not self.explicit:
            return 8
        return 12 if vr in LONG_HEADER_VRS else 8

    def dataset(self, dataset: Dataset, base: int, depth: int) -> list[Field]:
        from pydicom.dataelem import RawDataElement

        fields: list[Field] = []
        creators: dict[int, str] = {}
        for tag in list(dataset._dict.keys()):
            self.count += 1
            if self.count > self.limits.max_elements:
                self.problems.append(f"more than {self.limits.max_elements} elements; rest not shown")
                break
            raw = dataset._dict[tag]
            value_offset = (raw.value_tell + base) if isinstance(raw, RawDataElement) and raw.value_tell is not None \
                else None
            raw_length = raw.length if isinstance(raw, RawDataElement) else None
            tag_int = int(tag)
            group, element_number = tag_int >> 16, tag_int & 0xFFFF
            creator = None
            if group % 2 == 1 and element_number >= 0x1000:
                block = (group << 8) | (element_number >> 8)
                creator = creators.get(block)
            try:
                element = dataset[tag]
            except Exception as exc:  # pydicom rejects a value: show it as malformed, keep going
                problem = (f"({group:04X},{element_number:04X}) cannot be decoded: "
                           f"{type(exc).__name__}: {_safe(str(exc))}")
                self.problems.append(problem)
                fields.append(Field(f"({group:04X},{element_number:04X})", "", self._at(value_offset, raw_length,
                                                                                          "UN"), 0,
                                    problem=problem))
                continue
            vr = str(element.VR or "UN")
            if group % 2 == 1 and 0x0010 <= element_number <= 0x00FF and isinstance(element.value, str):
                creators[(group << 8) | element_number] = element.value.strip()
            info = self.dictionary.lookup(tag_int, creator)
            name = info.name if info else ("Private tag" if group % 2 else "Unknown tag")
            if info and info.retired:
                name += " (retired)"
            length = raw_length if raw_length is not None else 0
            if raw_length is None and getattr(element, "is_undefined_length", False):
                length = 0xFFFFFFFF  # pydicom parsed it already (sequences): the length is undefined all the same
            shown_length = "undefined length" if length == 0xFFFFFFFF else str(length)
            label = f"({group:04X},{element_number:04X}) {name}"
            start = self._at(value_offset, raw_length, vr)
            known = self.offsets_valid and value_offset is not None  # (the first element starts at 0)
            size = (self.header_length(vr) + length) if (known and length != 0xFFFFFFFF) else 0
            if vr == "SQ":
                children = []
                if depth >= self.limits.max_sequence_depth:
                    self.problems.append(f"sequences nested deeper than {self.limits.max_sequence_depth}; "
                                         "inner items not shown")
                else:
                    child_base = value_offset if isinstance(raw, RawDataElement) and value_offset is not None \
                        else base
                    for number, item in enumerate(element.value, 1):
                        item_fields = self.dataset(item, child_base, depth + 1)
                        item_tell = getattr(item, "file_tell", None)
                        item_at = base + item_tell if self.offsets_valid and item_tell is not None else 0
                        item_end = max((f.offset + f.length for f in item_fields if f.length), default=0)
                        children.append(Field(f"Item {number}", f"{len(item_fields)} elements", item_at,
                                              max(0, item_end - item_at) if item_at else 0, tuple(item_fields)))
                if length == 0xFFFFFFFF and children and children[0].offset:
                    # Undefined length: from the header before the first item to the sequence delimiter.
                    start = children[0].offset - self.header_length("SQ")
                    last_item = element.value[-1]
                    item_delimiter = 8 if getattr(last_item, "is_undefined_length_sequence_item", False) else 0
                    size = children[-1].offset + children[-1].length + item_delimiter + 8 - start \
                        if children[-1].length else 0
                fields.append(Field(label, f"SQ {shown_length}: {len(element.value)} item(s)", start, size,
                                    tuple(children)))
            elif tag_int == PIXEL_DATA and length == 0xFFFFFFFF:
                fields.append(self._encapsulated(label, vr, element.value, value_offset))
            else:
                fields.append(Field(label, f"{vr} {shown_length}: {_value_text(element, vr)}", start, size))
        return fields

    def _at(self, value_offset: int | None, raw_length: int | None, vr: str) -> int:
        if not self.offsets_valid or value_offset is None:
            return 0
        return value_offset - self.header_length(vr)

    def _encapsulated(self, label: str, vr: str, value: bytes, value_offset: int | None) -> Field:
        """Encapsulated pixel data: items (offset table, fragments), never tags."""
        children: list[Field] = []
        position = 0
        number = 0
        data = bytes(value or b"")
        while position + 8 <= len(data):
            group, element, length = struct.unpack_from("<HHI", data, position)
            if (group, element) == (0xFFFE, 0xE0DD):
                break
            if (group, element) != (0xFFFE, 0xE000) or position + 8 + length > len(data):
                self.problems.append("encapsulated pixel data has a malformed item")
                break
            at = (value_offset + position) if (self.offsets_valid and value_offset is not None) else 0
            title = "Basic offset table" if number == 0 else f"Fragment {number}"
            children.append(Field(title, f"{length} bytes", at, 8 + length))
            number += 1
            position += 8 + length
        return Field(label, f"{vr} undefined length: encapsulated, {max(0, number - 1)} fragment(s)",
                     (value_offset - 12) if (self.offsets_valid and value_offset) else 0, 0, tuple(children))


def decode_dataset(data: bytes, transfer_syntax: str, limits: Limits | None = None,
                   dictionary: TagDictionary | None = None) -> DecodedDataset:
    """Decode data-set bytes; never raises for malformed input (problems are listed instead)."""
    limits = limits or Limits()
    from dicomtui.core.protocol.datasets import MAX_WARNINGS_KEPT, parse_dataset

    parsed = parse_dataset(data, transfer_syntax, limits)
    problems = [_safe(problem) for problem in parsed.problems]
    builder = _TreeBuilder(not parsed.implicit, limits, not parsed.inflated, dictionary or default_dictionary())
    fields: list[Field] = []
    if parsed.dataset is not None:
        # pydicom warns about invalid values while converting them, quoting them: keep its
        # warnings as escaped notes, so bytes from the capture never reach the terminal raw.
        with pydicom_warnings() as caught:
            try:
                fields = builder.dataset(parsed.dataset, 0, 0)
            except RecursionError:
                problems.append("sequences nested too deeply to show")
            except Exception as exc:
                problems.append(f"data set partly unreadable: {type(exc).__name__}: {_safe(str(exc))}")
        parsed.warnings += caught[:MAX_WARNINGS_KEPT]
    problems += builder.problems
    notes = [_safe(text if len(text) <= 300 else text[:300] + "…")
             for text in dict.fromkeys(parsed.warnings)][:MAX_WARNINGS_KEPT]
    guessed, inflated = parsed.guessed, parsed.inflated
    title = f"Data set ({parsed.syntax_name}{', guessed' if guessed else ''}"
    title += ", inflated)" if inflated else ")"
    tree = Field(title, f"{len(parsed.data)} bytes, {builder.count} elements", 0,
                 len(parsed.data) if not inflated else 0, tuple(fields), problem="; ".join(problems[:3]))
    return DecodedDataset(tree, parsed.dataset, parsed.transfer_syntax, guessed, inflated, problems, builder.count,
                          notes)


@hookimpl
def dicomtui_decode_dataset(data, transfer_syntax, limits, dictionary):
    return decode_dataset(data, transfer_syntax, limits, dictionary)


@hookimpl
def dicomtui_complete_model(analysis):
    """Guess the transfer syntax of data sets whose association negotiation the capture did not show."""
    for message in analysis.messages:
        if message.has_dataset and not message.transfer_syntax and message.dataset_fragments:
            first = message.dataset_fragments[0]
            head = analysis.read_stream(message.connection, message.direction, first.stream_offset,
                                        first.stream_offset + min(first.length, 64))
            if head:
                from dicomtui.core.protocol.datasets import guess_transfer_syntax

                message.transfer_syntax = guess_transfer_syntax(head)
                message.syntax_guessed = True
                association = analysis.associations[message.association]
                context = association.contexts.get(message.context_id)
                if context is not None and not context.transfer_syntax:
                    context.transfer_syntax = message.transfer_syntax
                    context.guessed = True
