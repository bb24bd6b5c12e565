"""Data sets: pydicom parses them in the negotiated transfer syntax; this builds the tree.

- implicit VR LE, explicit VR LE/BE through pydicom's reader;
- deflated explicit VR LE is inflated first, with a size limit (deflate bombs);
- encapsulated pixel data is shown as its offset table and fragments, never
  parsed as tags;
- a data set whose syntax is unknown (association not captured) gets a guess
  from its first bytes, marked as a guess;
- Specific Character Set is honoured by pydicom when values are converted.

Offsets in the tree are relative to the start of the data set bytes (before
inflation; inflated data sets have no byte offsets to highlight).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass, field

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicomtui import hookimpl
from dicomtui.core.limits import Limits
from dicomtui.core.tree import Field
from dicomtui.core.uids import uid_name

from .dictionary import TagDictionary

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
LONG_HEADER_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"))
PIXEL_DATA = 0x7FE00010
MAX_SHOWN_VALUE = 120
MAX_WARNINGS_KEPT = 20

_dictionary: TagDictionary | None = None


def set_dictionary(dictionary: TagDictionary) -> None:
    """The analysis installs the combined dictionary of all dictionary plugins here."""
    global _dictionary
    _dictionary = dictionary


def _lookup(tag: int, creator: str | None):
    if _dictionary is None:
        from .dictionary import PydicomDictionary

        set_dictionary(TagDictionary([PydicomDictionary()]))
    return _dictionary.lookup(tag, creator)


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


def guess_transfer_syntax(data: bytes) -> str:
    """Implicit or explicit VR, little or big endian, from the first element header."""
    if len(data) < 8:
        return IMPLICIT_LE
    explicit = bytes(data[4:6]) in EXPLICIT_VRS
    group_le = struct.unpack_from("<H", data, 0)[0]
    group_be = struct.unpack_from(">H", data, 0)[0]
    if explicit:
        # Groups start small (0002..0010); a big-endian group read as little endian is huge.
        if group_be <= 0x00FF < group_le:
            return EXPLICIT_BE
        return EXPLICIT_LE
    return IMPLICIT_LE


def _inflate(data: bytes, limit: int) -> tuple[bytes, str]:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(data, limit)
    except zlib.error as exc:
        return b"", f"deflated data set does not inflate: {exc}"
    if inflater.unconsumed_tail:
        return inflated, f"deflated data set inflates beyond the {limit}-byte limit; decoded the first {limit} bytes"
    return inflated, ""


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
    def __init__(self, explicit: bool, limits: Limits, offsets_valid: bool) -> None:
        self.explicit = explicit
        self.limits = limits
        self.offsets_valid = offsets_valid
        self.count = 0
        self.problems: list[str] = []

    def header_length(self, vr: str) -> int:
        if not self.explicit:
            return 8
        return 12 if vr in LONG_HEADER_VRS else 8

    def dataset(self, dataset: Dataset, base: int, depth: int) -> list[Field]:
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
            info = _lookup(tag_int, creator)
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


def decode_dataset(data: bytes, transfer_syntax: str, limits: Limits | None = None) -> DecodedDataset:
    """Decode data-set bytes; never raises for malformed input (problems are listed instead)."""
    limits = limits or Limits()
    guessed = False
    if not transfer_syntax:
        transfer_syntax = guess_transfer_syntax(data)
        guessed = True
    syntax = UID(transfer_syntax)
    problems: list[str] = []
    inflated = False
    if syntax == DEFLATED_LE or (syntax.is_transfer_syntax and syntax.is_deflated):
        data, problem = _inflate(bytes(data), limits.max_inflated_bytes)
        inflated = True
        if problem:
            problems.append(problem)
    if syntax.is_transfer_syntax:
        implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
    else:
        guess = UID(guess_transfer_syntax(data))
        problems.append(f"unknown transfer syntax {transfer_syntax}; decoded as {guess.name} (guessed)")
        implicit, little = guess.is_implicit_VR, guess.is_little_endian
        guessed = True
    dataset: Dataset | None = None
    builder = _TreeBuilder(not implicit, limits, offsets_valid=not inflated)
    fields: list[Field] = []
    # pydicom warns (on stderr) about invalid values, quoting them: keep its warnings as escaped
    # notes instead, so bytes from the capture never reach the terminal raw.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = pydicom.filereader.read_dataset(io.BytesIO(bytes(data)), implicit, little)
        except RecursionError:  # pydicom reads nested sequences recursively (~190 levels at most)
            problems.append("sequences nested too deeply for pydicom to parse; data set not decoded")
        except Exception as exc:  # pydicom raises many types on damaged input
            problems.append(f"data set does not parse as {syntax.name or transfer_syntax}: "
                            f"{type(exc).__name__}: {_safe(str(exc))}")
        if dataset is not None:
            try:
                fields = builder.dataset(dataset, 0, 0)
            except RecursionError:
                problems.append("sequences nested too deeply to show")
            except Exception as exc:
                problems.append(f"data set partly unreadable: {type(exc).__name__}: {_safe(str(exc))}")
    problems += builder.problems
    notes = [_safe(text if len(text) <= 300 else text[:300] + "…")
             for text in dict.fromkeys(str(item.message) for item in caught[:MAX_WARNINGS_KEPT])]
    title = f"Data set ({syntax.name or transfer_syntax}{', guessed' if guessed else ''}"
    title += ", inflated)" if inflated else ")"
    tree = Field(title, f"{len(data)} bytes, {builder.count} elements", 0, len(data) if not inflated else 0,
                 tuple(fields), problem="; ".join(problems[:3]))
    return DecodedDataset(tree, dataset, transfer_syntax, guessed, inflated, problems, builder.count, notes)


@hookimpl
def dicomtui_decode_dataset(data, transfer_syntax, limits):
    return decode_dataset(data, transfer_syntax, limits)


@hookimpl
def dicomtui_finish_analysis(analysis):
    """Install the combined tag dictionary and guess syntaxes the capture did not negotiate."""
    dictionaries = [args[0] for _plugin, args in analysis.plugins.collect_registrations(
        "dicomtui_register_dictionaries")]
    path = analysis.config.option("private_dictionary")
    if path:
        from .dictionary import JsonPrivateDictionary

        dictionaries.append(JsonPrivateDictionary(path))
    set_dictionary(TagDictionary(dictionaries))
    for message in analysis.messages:
        if message.has_dataset and not message.transfer_syntax and message.dataset_fragments:
            first = message.dataset_fragments[0]
            head = analysis.read_stream(message.connection, message.direction, first.stream_offset,
                                        first.stream_offset + min(first.length, 64))
            if head:
                message.transfer_syntax = guess_transfer_syntax(head)
                message.syntax_guessed = True
                association = analysis.associations[message.association]
                context = association.contexts.get(message.context_id)
                if context is not None and not context.transfer_syntax:
                    context.transfer_syntax = message.transfer_syntax
                    context.guessed = True
