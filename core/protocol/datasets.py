"""The one data-set codec: data-set bytes in a transfer syntax -> a pydicom Dataset.

Every consumer of a data set (the dataset plugin's tree, the query rule, the
DICOM JSON exporter, anything new) parses through ``parse_dataset``, so they
agree on:

- the transfer syntax: the negotiated one, or a guess from the first element
  header when the capture did not show the negotiation (marked as a guess);
- deflate: inflated by ``core.base.inflate.inflate_bounded`` with a bound on
  output (``Limits.max_inflated_bytes``, and ``max_dataset_bytes``), so a deflate
  bomb costs at most that much memory and time; pydicom then stops after
  ``max_elements`` elements (a bomb of zeros is millions of 8-byte elements);
- character sets: pydicom decodes text with the data set's own Specific
  Character Set (ISO_IR 192, ISO 2022 with escape sequences, an empty first
  value); the original encoding recorded on the Dataset is the Python codec
  list pydicom derives from it, never the raw DICOM term;
- values pydicom cannot convert (an IS of "1A"): ``convert_all`` keeps them as
  raw bytes (VR UN) and says which, instead of failing the whole data set;
- pydicom's warnings about the values decoded here, which quote capture bytes,
  are collected (escaped by the caller before display), never printed; only
  pydicom's, only this thread's (``core.base.library_warnings.pydicom_warnings``).

Pure: bytes in, objects out; never raises for malformed input.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import pydicom
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.jsonrep import convert_to_python_number
from pydicom.uid import UID

from dicomtui.core.base.inflate import inflate_bounded
from dicomtui.core.base.library_warnings import pydicom_warnings
from dicomtui.core.base.limits import Limits

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
MAX_WARNINGS_KEPT = 20


@dataclass(slots=True)
class ParsedDataset:
    """A data set as parsed: the Dataset (None when it does not parse) and what happened on the way."""

    dataset: Dataset | None
    transfer_syntax: str  # the syntax it was parsed in (negotiated, or guessed)
    syntax_name: str
    implicit: bool
    little: bool
    guessed: bool = False
    inflated: bool = False  # offsets into ``data`` are not offsets into the capture
    data: bytes = b""  # the bytes parsed (after inflation)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # pydicom's warnings, verbatim (escape before display)


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


def inflate(data: bytes, limit: int) -> tuple[bytes, str]:
    """A deflated data set's bytes, at most ``limit`` of them, and a problem (or "")."""
    inflated = inflate_bounded(data, limit)
    return inflated.data, inflated.problem


def _element_budget(limit: int, problems: list[str]):
    """A ``stop_when`` for pydicom's reader: stop after ``limit`` top-level elements.

    The tree shows at most ``max_elements`` anyway; without this, pydicom would
    first build every element of a data set made of millions of tiny ones (8 bytes
    each: 256 MB of zeros, e.g. an inflated deflate bomb, is 32 million) before
    anything looked at them: minutes and gigabytes.
    """
    seen = 0

    def stop(_tag, _vr, _length) -> bool:
        nonlocal seen
        seen += 1
        if seen > limit:
            problems.append(f"more than {limit} elements; parsing stopped there, rest not shown")
            return True
        return False

    return stop


def _encodings(dataset: Dataset) -> list[str]:
    """Python codecs for the data set's Specific Character Set (pydicom's mapping, its fallbacks)."""
    # Read without converting the element: the tree shows raw elements' lengths and offsets.
    raw = dataset.get_item(0x00080005)
    value = getattr(raw, "value", None)
    if isinstance(value, (bytes, bytearray)):
        value = [part.strip(" \0") for part in bytes(value).decode("ascii", "replace").split("\\")]
    try:
        return convert_encodings(value or "ISO_IR 6")
    except Exception:
        return ["iso8859"]


def parse_dataset(data: bytes, transfer_syntax: str, limits: Limits | None = None) -> ParsedDataset:
    """Parse data-set bytes; problems are listed, never raised."""
    limits = limits or Limits()
    guessed = False
    if not transfer_syntax:
        transfer_syntax = guess_transfer_syntax(data)
        guessed = True
    syntax = UID(transfer_syntax)
    problems: list[str] = []
    inflated = False
    raw = bytes(data)
    if syntax == DEFLATED_LE or (syntax.is_transfer_syntax and syntax.is_deflated):
        # Inflated bytes count against the same bound as plain ones: a deflate bomb must not
        # buy more decoding than a data set of that size on the wire would.
        raw, problem = inflate(raw, min(limits.max_inflated_bytes, limits.max_dataset_bytes))
        inflated = True
        if problem:
            problems.append(problem)
    if syntax.is_transfer_syntax:
        implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
    else:
        guess = UID(guess_transfer_syntax(raw))
        problems.append(f"unknown transfer syntax {transfer_syntax}; decoded as {guess.name} (guessed)")
        implicit, little = guess.is_implicit_VR, guess.is_little_endian
        guessed = True
    parsed = ParsedDataset(None, transfer_syntax, syntax.name or transfer_syntax, implicit, little, guessed,
                           inflated, raw, problems)
    with pydicom_warnings() as caught:
        try:
            parsed.dataset = pydicom.filereader.read_dataset(io.BytesIO(raw), implicit, little,
                                                             stop_when=_element_budget(limits.max_elements, problems))
        except RecursionError:  # pydicom reads nested sequences recursively (~190 levels at most)
            problems.append("sequences nested too deeply for pydicom to parse; data set not decoded")
        except Exception as exc:  # pydicom raises many types on damaged input
            problems.append(f"data set does not parse as {parsed.syntax_name}: {type(exc).__name__}: {exc}")
        if parsed.dataset is not None:
            parsed.dataset.set_original_encoding(implicit, little, _encodings(parsed.dataset))
    parsed.warnings = _warning_texts(caught)
    return parsed


def _warning_texts(caught: list[str]) -> list[str]:
    texts = dict.fromkeys(caught[:MAX_WARNINGS_KEPT])
    return [text if len(text) <= 300 else text[:300] + "…" for text in texts]


def convert_all(parsed: ParsedDataset, max_depth: int = 64) -> list[str]:
    """Convert every element of the data set now; one that does not convert is kept as raw bytes (UN).

    For consumers that need every value at once (``Dataset.to_json_dict``): a single
    invalid value must not lose the object.  Returns what was kept raw, one line each.
    """
    if parsed.dataset is None:
        return []
    kept: list[str] = []
    with pydicom_warnings() as caught:
        _convert(parsed.dataset, kept, 0, max_depth)
    parsed.warnings += _warning_texts(caught)
    return kept


def dictionary_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def element_vr(dataset: Dataset, tag, unknown: str | None = "UN") -> str | None:
    """The VR an element was read with (implicit VR: the dictionary's); ``unknown`` where neither says."""
    vr = getattr(dataset.get_item(tag), "VR", None)
    if vr is not None:
        return vr
    try:
        return dictionary_VR(tag)
    except KeyError:
        return unknown


def _convert(dataset: Dataset, kept: list[str], depth: int, max_depth: int) -> None:
    for tag in list(dataset.keys()):
        raw = dataset.get_item(tag)
        try:
            element = dataset[tag]
            if element.VR in ("IS", "DS") and element.value not in (None, ""):
                # pydicom keeps an invalid number ("1A") as text; JSON needs a number.
                values = list(element.value) if element.VM > 1 else [element.value]
                convert_to_python_number(values, element.VR)
        except Exception as exc:
            value = getattr(raw, "value", b"") or b""
            vr = getattr(raw, "VR", None) or dictionary_vr(tag)
            # Built as OB and relabelled: pydicom would convert a "UN" of a known tag back
            # to the dictionary VR (and fail on the same value again).
            replacement = DataElement(tag, "OB", bytes(value) if isinstance(value, (bytes, bytearray)) else b"")
            replacement.VR = "UN"
            dataset[tag] = replacement
            kept.append(f"({int(tag) >> 16:04X},{int(tag) & 0xFFFF:04X}) {vr} value does not convert "
                        f"({type(exc).__name__}: {exc}); kept as UN bytes")
            continue
        if element.VR == "SQ" and depth < max_depth:
            for item in element.value:
                _convert(item, kept, depth + 1, max_depth)
