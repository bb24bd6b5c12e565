"""The data-set values display filters look at, decoded once per message and kept.

A data-set test (``Modality == "CT"``, ``tag(0010,0010) contains "DOE"``,
``dicom.tag == 0x00100010``) used to decode every data set in full (the
detail pane's decode: every element converted and laid out as a tree), and
again on every run of the filter.  Here a message's data set is parsed by
pydicom without converting values (raw elements), only the elements a filter
asks for are converted, Pixel Data is not read unless asked for, and the
values found are kept per (message, tag) for the life of the analysis, so the
same filter applied again costs no decoding at all.

Cost per message, first time: one pydicom parse of the raw elements (up to
Pixel Data) plus the conversion of the wanted elements, and of sequences (to
look inside their items).  Memory: the values found, per message and tag.
"""

from __future__ import annotations

import io
import threading
import weakref
import zlib
from typing import Any

from dicomtui.core.base.library_warnings import pydicom_warnings

PIXEL_DATA = 0x7FE00010
MAX_VALUES_KEPT = 2_000_000  # values kept per analysis before the cache stops growing
ALL_TAGS = -1  # pseudo tag: the set of tags present (for dicom.tag)

_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def values_cache(analysis) -> DatasetValues:
    """The one cache of an analysis (shared by every filter scan over it)."""
    with _caches_lock:
        cache = _caches.get(analysis)
        if cache is None:
            cache = _caches[analysis] = DatasetValues(analysis)
        return cache


def element_values(element) -> list[Any]:
    """What a filter compares for one element: the value(s), and multi-values also joined by \\."""
    value = element.value
    if element.VR == "SQ":
        return [f"{len(value)} item(s)"]
    if value is None:
        return [""]
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value[:64]).hex(" ")]
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        items = list(value)
        return [*items, "\\".join(str(item) for item in items)] if items else [""]
    return [value]


def _syntax_flags(data: bytes, transfer_syntax: str) -> tuple[bool, bool, bool]:
    """(implicit VR, little endian, deflated) for a data set; unknown syntaxes are read from the bytes."""
    from pydicom.uid import UID

    syntax = UID(transfer_syntax) if transfer_syntax else None
    if syntax is not None and syntax.is_transfer_syntax:
        return syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated
    explicit = len(data) >= 6 and bytes(data[4:6]).isalpha() and bytes(data[4:6]).isupper()
    big = explicit and len(data) >= 2 and data[0] == 0 and data[1] not in (0,)
    return not explicit, not big, False


class DatasetValues:
    def __init__(self, analysis) -> None:
        self.analysis = analysis
        self.values: dict[int, dict[int, Any]] = {}  # message index -> tag -> values (or tag set)
        self.kept = 0
        self.parses = 0  # data sets parsed (for tests and benchmarks)
        self.lock = threading.Lock()

    def lookup(self, message, tag: int, wanted: frozenset[int]) -> Any:
        """Values of ``tag`` anywhere in ``message``'s data set; parses once for every tag in ``wanted``."""
        known = self.values.get(message.index)
        if known is not None and tag in known:
            return known[tag]
        missing = {tag} | {other for other in wanted if known is None or other not in known}
        found = self._extract(message, missing)
        with self.lock:
            entry = self.values.setdefault(message.index, {})
            if self.kept < MAX_VALUES_KEPT:
                entry.update(found)
                self.kept += sum(len(values) for values in found.values())
        return found[tag]

    def _extract(self, message, tags: set[int]) -> dict[int, Any]:
        found: dict[int, Any] = {tag: (frozenset() if tag == ALL_TAGS else []) for tag in tags}
        dataset = self._parse(message, want_pixels=PIXEL_DATA in tags or ALL_TAGS in tags)
        if dataset is None:
            return found
        present: set[int] = set()
        try:
            self._walk(dataset, tags, found, present, 0)
        except Exception:  # damaged values: what was found so far counts
            pass
        if ALL_TAGS in tags:
            found[ALL_TAGS] = frozenset(present)
        return found

    def _walk(self, dataset, tags: set[int], found: dict[int, Any], present: set[int], depth: int) -> None:
        from dicomtui.core.protocol.datasets import element_vr

        for tag in list(dataset.keys()):
            number = int(tag)
            present.add(number)
            if number in tags:
                found[number].extend(element_values(dataset[tag]))
            if element_vr(dataset, tag) == "SQ" and depth < 32:
                for item in dataset[tag].value or ():
                    self._walk(item, tags, found, present, depth + 1)

    def _parse(self, message, want_pixels: bool):
        from pydicom.filereader import read_dataset

        analysis = self.analysis
        limits = analysis.config.limits
        data = analysis.dataset_bytes(message, limits.max_dataset_bytes)
        if data is None:
            return None
        syntax = "" if message.syntax_guessed else message.transfer_syntax
        implicit, little, deflated = _syntax_flags(data, syntax)
        if deflated:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                data = inflater.decompress(data, limits.max_inflated_bytes)
            except zlib.error:
                return None
        stop = None if want_pixels else (lambda tag, vr, length: int(tag) == PIXEL_DATA)
        self.parses += 1
        with pydicom_warnings():  # pydicom quotes bad values on stderr: never raw to the terminal
            try:
                return read_dataset(io.BytesIO(data), implicit, little, stop_when=stop)
            except Exception:  # pydicom raises many types on damaged input
                return None
