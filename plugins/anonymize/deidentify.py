"""De-identify one data set (pydicom) by the profile, and carry it to and from the wire encoding.

``DatasetCodec`` reads the bytes of a data set in the transfer syntax it travelled in
(implicit/explicit VR, little/big endian, deflated, encapsulated pixel data) through
the shared data-set codec (``dicomtui.core.protocol.datasets``: the inflate limit
``max_inflated_bytes``, character sets) and writes the de-identified data set back in
the same syntax.  ``Deidentifier.apply``
walks every element, nested sequences included, and performs the table's action;
attributes the table does not list are kept, except UIDs: an unregistered UID in any
attribute is remapped too, so references stay consistent and no original UID survives.
"""

from __future__ import annotations

import zlib
from collections import Counter

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from dicomtui.core.base.library_warnings import pydicom_warnings
from dicomtui.core.base.limits import Limits
from dicomtui.core.protocol.datasets import EXPLICIT_LE, parse_dataset

from .mapping import Pseudonymizer
from .profile import Profile

DEFLATED = "1.2.840.10008.1.2.1.99"
IMPLICIT_LE = "1.2.840.10008.1.2"
PIXEL_DATA = 0x7FE00010
STRING_VRS = frozenset(["AE", "AS", "CS", "DS", "IS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"])
BINARY_VRS = frozenset(["OB", "OD", "OF", "OL", "OV", "OW", "UN"])
NUMBER_VRS = frozenset(["AT", "FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"])
# Z allows "a zero length value, or a non-zero length value that may be a dummy value":
# names and identifiers (Patient ID, Accession Number, Study ID...) get a consistent dummy so
# a query and the retrieve that follows still match; everything else is emptied.
ZERO_AS_DUMMY_VRS = frozenset(("PN", "LO", "SH"))
TEXT_VRS = frozenset(("LO", "LT", "ST", "UT", "UC", "SH", "PN"))


class CodecError(Exception):
    """A data set that cannot be read or written in its transfer syntax."""


class DatasetCodec:
    """Reads through the shared data-set codec (``dicomtui.core.protocol.datasets``: bounded
    inflate, character sets); writes back in the same transfer syntax."""

    def __init__(self, transfer_syntax: str, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.transfer_syntax = transfer_syntax or IMPLICIT_LE
        self.deflated = self.transfer_syntax == DEFLATED
        try:
            uid = UID(self.transfer_syntax)
            self.implicit = uid.is_implicit_VR
            self.little = uid.is_little_endian
        except ValueError:  # a private transfer syntax: the usual encoding of private ones
            self.implicit, self.little = False, True
        known = self.deflated or UID(self.transfer_syntax).is_transfer_syntax
        # What the shared codec parses in: a private syntax as explicit VR little endian (as above).
        self.parse_syntax = self.transfer_syntax if known else EXPLICIT_LE

    def read(self, data: bytes) -> Dataset:
        # A deflated data set inflating past the limit is an error here, never a silently cut one.
        parsed = parse_dataset(data, self.parse_syntax, self.limits)
        if parsed.dataset is None or parsed.problems:
            raise CodecError("; ".join(parsed.problems) or "data set does not parse")
        dataset = parsed.dataset
        try:
            with pydicom_warnings():
                for raw in dataset._dict.values():  # pydicom reads a value cut short without a word
                    length = getattr(raw, "length", None)
                    value = getattr(raw, "value", None)
                    if (isinstance(value, bytes) and length is not None and length != 0xFFFFFFFF
                            and len(value) < length):
                        raise CodecError(f"({raw.tag.group:04X},{raw.tag.element:04X}) runs past the data set end")
                for _element in dataset.iterall():  # parse everything now, so errors surface here
                    pass
        except CodecError:
            raise
        except Exception as exc:  # noqa: BLE001  (pydicom raises many kinds on hostile bytes)
            raise CodecError(f"data set does not parse: {type(exc).__name__}: {exc}") from None
        return dataset

    def write(self, dataset: Dataset) -> bytes:
        stream = DicomBytesIO()
        stream.is_little_endian = self.little
        stream.is_implicit_VR = self.implicit
        try:
            with pydicom_warnings():
                write_dataset(stream, dataset)
        except Exception as exc:  # noqa: BLE001  (as above: a value pydicom cannot encode)
            raise CodecError(f"de-identified data set cannot be written: {type(exc).__name__}: {exc}") from None
        data = stream.getvalue()
        if self.deflated:
            deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            data = deflater.compress(data) + deflater.flush()
            if len(data) % 2:  # PS3.5 A.5: an odd-length deflated stream gets one trailing null byte
                data += b"\x00"
        return data


def _keyword(element: DataElement) -> str:
    if element.tag.is_private:
        return "private attributes"
    return element.keyword or f"({element.tag.group:04X},{element.tag.element:04X})"


class Deidentifier:
    """Applies the profile to data sets; counts what it did in ``changes`` (attribute, action)."""

    def __init__(self, profile: Profile, pseudonymizer: Pseudonymizer, strip_pixel_data: bool = False,
                 map_ae: bool = False) -> None:
        self.profile = profile
        self.map_ae = map_ae  # --anonymize-ae: AE titles kept by the profile are mapped like the wire ones
        self.pseudo = pseudonymizer
        self.strip_pixel_data = strip_pixel_data
        self.changes: Counter[tuple[str, str]] = Counter()
        self.shift_dates = "retain-long-modified-dates" in profile.options
        self.keep_dates = "retain-long-full-dates" in profile.options
        self.pixel_warnings: Counter[str] = Counter()
        self._deferred: list[tuple[Dataset, DataElement]] = []

    # -- the walk --------------------------------------------------------------------------

    def apply(self, dataset: Dataset, composite: bool) -> None:
        """De-identify in place; ``composite`` (a stored object) also gets the method attributes."""
        burned_in = str(dataset.get("BurnedInAnnotation", "") or "").upper()
        self._deferred: list[tuple[Dataset, DataElement]] = []
        self._walk(dataset)
        # Free text is cleaned last, once this data set's names and IDs have their replacements.
        for owner, element in self._deferred:
            element.value = self._clean(element, element.VR)
            self.changes[(_keyword(element), "C")] += 1
        if PIXEL_DATA in dataset:
            self._pixel_data(dataset, burned_in)
        if composite:
            self._mark(dataset)

    def _walk(self, dataset: Dataset) -> None:
        for tag in list(dataset.keys()):
            if tag == PIXEL_DATA:
                continue
            element = dataset[tag]
            if element.tag.element == 0 and element.tag.group != 0:
                # a group length (retired) would no longer match the group's new length
                del dataset[tag]
                self.changes[("group lengths (gggg,0000)", "X (stale after rewrite)")] += 1
                continue
            if element.tag.is_private:
                action = self.profile.action(tag)
                # Retain Safe Private: the standard's list of safe private attributes (E.3.10) is
                # not part of the table data; no private attribute is known safe, so all go.
                del dataset[tag]
                self.changes[("private attributes", "X" if action != "C" else "X (no safe list)")] += 1
                continue
            action = self.profile.action(tag)
            if element.VR == "AE" and self.map_ae and action in (None, "K") and element.value:
                element.value = self._each(element.value, self.pseudo.ae_title)
                self.changes[(_keyword(element), "AE mapped")] += 1
                continue
            if action is None:
                if element.VR == "SQ":
                    self._items(element)
                elif element.VR == "UI" and element.value:
                    before = element.value
                    element.value = self._uids(before)
                    if element.value != before:
                        self.changes[(_keyword(element), "U (not in table)")] += 1
                continue
            self._act(dataset, element, action)

    def _items(self, element: DataElement) -> None:
        for item in element.value or ():
            self._walk(item)

    def _act(self, dataset: Dataset, element: DataElement, action: str) -> None:
        keyword = _keyword(element)
        vr = element.VR
        if action == "X":
            del dataset[element.tag]
            self.changes[(keyword, "X")] += 1
            return
        if vr == "SQ":
            # Nested attributes have their own rows: keep the structure, de-identify the items.
            self._items(element)
            self.changes[(keyword, action)] += 1
            return
        if action == "K":
            return
        if element.value in (None, "", b"") or (isinstance(element.value, (list, MultiValue))
                                                 and not len(element.value)):
            return
        if action in ("U", "U*"):
            element.value = self._uids(element.value)
        elif action == "C" and vr in TEXT_VRS:
            self._deferred.append((dataset, element))
            return
        elif action == "C":
            element.value = self._clean(element, vr)
        elif action == "Z" and vr not in ZERO_AS_DUMMY_VRS:
            element.value = b"" if vr in BINARY_VRS else ("" if vr not in NUMBER_VRS else None)
        else:  # D, and Z on names and identifiers: a consistent dummy of the right VR
            element.value = self._dummy(element, vr)
        self.changes[(keyword, action)] += 1

    # -- values ----------------------------------------------------------------------------

    def _each(self, value, function):
        if isinstance(value, (list, MultiValue)):
            return [function(str(item)) for item in value]
        return function(str(value))

    def _uids(self, value):
        return self._each(value, self.pseudo.uid)

    def _dummy(self, element: DataElement, vr: str):
        value = element.value
        if vr == "UI":
            return self._uids(value)
        if vr == "DA":
            return self._each(value, lambda text: self.pseudo.date(text, False))
        if vr == "DT":
            return self._each(value, lambda text: self.pseudo.datetime(text, False))
        if vr == "TM":
            return self._each(value, lambda text: "000000.00" if text.strip() else text)
        if vr == "AS":
            return "000Y"
        if vr == "AE":  # the same mapping as AE titles on the wire (--anonymize-ae)
            return self._each(value, self.pseudo.ae_title)
        if vr in STRING_VRS:
            return self._each(value, lambda text: self.pseudo.text(text, vr))
        if vr in BINARY_VRS:
            return bytes(len(value)) if isinstance(value, (bytes, bytearray)) else b""
        if vr in NUMBER_VRS:
            return 0
        return self._each(value, lambda text: self.pseudo.text(text, "LO"))

    def _clean(self, element: DataElement, vr: str):
        """C: dates shifted (Modified Dates option); text with known identifiers replaced; else a dummy."""
        value = element.value
        if vr == "DA":
            return self._each(value, lambda text: self.pseudo.date(text, True))
        if vr == "DT":
            return self._each(value, lambda text: self.pseudo.datetime(text, True))
        if vr == "TM":
            return value  # a whole-day shift leaves times of day as they were
        if vr in TEXT_VRS:
            return self._each(value, self.clean_text)
        return self._dummy(element, vr)

    def clean_text(self, text: str) -> str:
        """Free text with every identifying value replaced so far (names, IDs, UIDs) substituted."""
        for kind in ("PN", "text", "uid"):
            for original, replacement in self.pseudo.mappings.get(kind, {}).items():
                if len(original) >= 3 and original in text:
                    text = text.replace(original, replacement)
                if kind == "PN":
                    for part in original.split("^"):
                        if len(part) >= 3 and part in text:
                            text = text.replace(part, "ANON")
        return text

    def _pixel_data(self, dataset: Dataset, burned_in: str) -> None:
        element = dataset[PIXEL_DATA]
        if not self.strip_pixel_data:
            self.pixel_warnings["kept: BurnedInAnnotation YES" if burned_in == "YES"
                                else f"kept: BurnedInAnnotation {burned_in or 'absent'}"] += 1
            return
        if element.is_undefined_length:  # encapsulated: no blank frames to put in their place
            del dataset[PIXEL_DATA]
            self.changes[("PixelData", "X (--strip-pixel-data, encapsulated)")] += 1
        else:
            element.value = bytes(len(element.value or b""))
            self.changes[("PixelData", "zeroed (--strip-pixel-data)")] += 1

    def _mark(self, dataset: Dataset) -> None:
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = f"dicomtui PS3.15 E.1-1 {self.profile.short_edition}"[:64]
        items = []
        for code, meaning in self.profile.method_codes():
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "DCM", meaning
            items.append(item)
        dataset.DeidentificationMethodCodeSequence = Sequence(items)
        if self.keep_dates:
            dataset.LongitudinalTemporalInformationModified = "UNMODIFIED"
        elif self.shift_dates:
            dataset.LongitudinalTemporalInformationModified = "MODIFIED"
        else:
            dataset.LongitudinalTemporalInformationModified = "REMOVED"
