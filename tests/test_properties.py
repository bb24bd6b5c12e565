"""Property tests for the decoders not covered by test_pdu_decoders.py.

- command sets: pynetdicom's DIMSE encoders and pydicom's writer produce them,
  ``decode_command_set`` gives back the same fields; arbitrary bytes raise at
  most DecodeError;
- data sets: ``decode_dataset`` never raises, in any transfer syntax;
- the whole pipeline on arbitrary and mutated capture files raises nothing
  but CaptureError (through the fuzz harness, which also checks the views);
- ``parse_tcp`` on arbitrary frames of every link type: never raises, and a
  segment it returns lies inside the frame;
- ``DirectionReassembler`` under arbitrary segment sequences: the right bytes,
  once, contiguously, gaps and data tiling [0, end), pending bounded (the
  invariants are checked by the reassembly fuzz harness).
"""

from __future__ import annotations

import struct
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pynetdicom import dimse_messages

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_tools import FIXTURES  # noqa: E402
from fuzz import harnesses  # noqa: E402

from dicomtui.core.wire import packet
from dicomtui.core.base.errors import DecodeError
from dicomtui.core.base.limits import Limits
from dicomtui.plugins.dataset import decode_dataset
from dicomtui.core.protocol.dimse import decode_command_set

uids = st.lists(st.integers(min_value=1, max_value=99999), min_size=2, max_size=10).map(
    lambda parts: "1.2." + ".".join(str(part) for part in parts))
ae_titles = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=16)
us = st.integers(min_value=0, max_value=0xFFFF)

# (pynetdicom message class, {keyword: strategy})
MESSAGES = [
    (dimse_messages.C_ECHO_RQ, {"MessageID": us, "AffectedSOPClassUID": uids}),
    (dimse_messages.C_ECHO_RSP, {"MessageIDBeingRespondedTo": us, "AffectedSOPClassUID": uids, "Status": us}),
    (dimse_messages.C_STORE_RQ, {"MessageID": us, "AffectedSOPClassUID": uids, "AffectedSOPInstanceUID": uids,
                                 "Priority": st.sampled_from([0, 1, 2]), "MoveOriginatorApplicationEntityTitle":
                                 ae_titles, "MoveOriginatorMessageID": us}),
    (dimse_messages.C_STORE_RSP, {"MessageIDBeingRespondedTo": us, "AffectedSOPClassUID": uids,
                                  "AffectedSOPInstanceUID": uids, "Status": us}),
    (dimse_messages.C_FIND_RQ, {"MessageID": us, "AffectedSOPClassUID": uids, "Priority": st.sampled_from([0, 1, 2])}),
    (dimse_messages.C_MOVE_RQ, {"MessageID": us, "AffectedSOPClassUID": uids, "Priority": st.sampled_from([0, 1, 2]),
                                "MoveDestination": ae_titles}),
    (dimse_messages.C_MOVE_RSP, {"MessageIDBeingRespondedTo": us, "AffectedSOPClassUID": uids, "Status": us,
                                 "NumberOfRemainingSuboperations": us, "NumberOfCompletedSuboperations": us,
                                 "NumberOfFailedSuboperations": us, "NumberOfWarningSuboperations": us}),
    (dimse_messages.N_GET_RQ, {"MessageID": us, "RequestedSOPClassUID": uids, "RequestedSOPInstanceUID": uids}),
]
COMMAND_FIELDS = {"C_ECHO_RQ": 0x0030, "C_ECHO_RSP": 0x8030, "C_STORE_RQ": 0x0001, "C_STORE_RSP": 0x8001,
                  "C_FIND_RQ": 0x0020, "C_MOVE_RQ": 0x0021, "C_MOVE_RSP": 0x8021, "N_GET_RQ": 0x0110}


@st.composite
def dimse_commands(draw):
    message_class, fields = draw(st.sampled_from(MESSAGES))
    values = {keyword: draw(strategy) for keyword, strategy in fields.items()
              if keyword in ("MessageID", "MessageIDBeingRespondedTo") or draw(st.booleans())}
    has_dataset = draw(st.booleans())
    return message_class, values, has_dataset


def _pynetdicom_command_bytes(message_class, values: dict, has_dataset: bool) -> bytes:
    message = message_class()
    command = message.command_set
    command.CommandField = COMMAND_FIELDS[message_class.__name__]
    for keyword, value in values.items():
        setattr(command, keyword, value)
    command.CommandDataSetType = 0x0001 if has_dataset else 0x0101
    message._set_command_group_length()
    data = bytearray()
    for primitive in message.encode_msg(1, 0):  # 0: no PDU size limit, one command PDV
        for _context, value in primitive.presentation_data_value_list:
            if value[0] & 1:
                data += value[1:]
    return bytes(data)


@given(dimse_commands())
@settings(max_examples=150, deadline=None)
def test_command_sets_from_pynetdicom_decode_to_the_same_fields(example):
    message_class, values, has_dataset = example
    data = _pynetdicom_command_bytes(message_class, values, has_dataset)
    fields, tree = decode_command_set(data)
    assert fields["CommandField"] == COMMAND_FIELDS[message_class.__name__]
    assert fields["CommandDataSetType"] == (0x0001 if has_dataset else 0x0101)
    assert fields["CommandGroupLength"] == len(data) - 12
    for keyword, value in values.items():
        assert fields[keyword] == value, keyword
    assert tree.length == len(data)
    # And the same as pydicom's reader says.
    reference = read_dataset(DicomBytesIO(data), True, True)
    for element in reference:
        ours = fields[element.keyword]
        theirs = element.value
        if isinstance(theirs, str):
            theirs = theirs.rstrip("\x00 ").lstrip(" ")
        if theirs is None:  # an empty value: pydicom says None, we say [] (numbers) or "" (text)
            assert ours in ([], ""), element.keyword
            continue
        assert ours == theirs, element.keyword


@given(st.dictionaries(st.sampled_from([0x0002, 0x0100, 0x0110, 0x0120, 0x0600, 0x0700, 0x0800, 0x0900,
                                        0x1000, 0x1020, 0x1021, 0x1022, 0x1023, 0x0902, 0x5010]),
                       st.binary(max_size=40), max_size=8))
@settings(max_examples=150, deadline=None)
def test_command_sets_written_by_pydicom_decode_like_pydicom_reads_them(raw_values):
    """Any group-0000 elements with any value bytes: our reader agrees with pydicom's on the raw bytes."""
    data = b"".join(struct.pack("<HHI", 0, element, len(value)) + value
                    for element, value in sorted(raw_values.items()))
    fields, _tree = decode_command_set(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = read_dataset(DicomBytesIO(data), True, True)
        tags = list(reference.keys())  # raw elements: pydicom may refuse to convert odd-length values
    assert len(tags) == len(fields) == len(raw_values)
    for tag in tags:
        assert (keyword_for_tag(tag) or f"(0000,{tag.element:04X})") in fields


@given(st.binary(max_size=600))
@settings(max_examples=400, deadline=None)
def test_command_set_decoder_only_raises_decode_error(data):
    try:
        decode_command_set(data)
    except DecodeError:
        pass


@given(st.sampled_from(harnesses.SYNTAXES), st.binary(max_size=800))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_decode_dataset_never_raises_in_any_transfer_syntax(syntax, data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pydicom warning escaping decode_dataset would print on stderr
        decoded = decode_dataset(data, syntax, Limits(max_elements=2000))
    assert decoded.tree is not None


def _written(dataset: Dataset, implicit: bool, little: bool) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = implicit
    buffer.is_little_endian = little
    write_dataset(buffer, dataset)
    return buffer.getvalue()


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ^ ", max_size=30), uids, st.integers(0, 0xFFFF),
       st.sampled_from([(True, True, "1.2.840.10008.1.2"), (False, True, "1.2.840.10008.1.2.1"),
                        (False, False, "1.2.840.10008.1.2.2")]))
@settings(max_examples=100, deadline=None)
def test_data_sets_written_by_pydicom_decode_without_problems(name, uid, rows, syntax):
    implicit, little, transfer_syntax = syntax
    dataset = Dataset()
    dataset.PatientName = name
    dataset.SOPInstanceUID = uid
    dataset.Rows = rows
    data = _written(dataset, implicit, little)
    decoded = decode_dataset(data, transfer_syntax)
    assert not decoded.problems
    assert decoded.dataset.SOPInstanceUID == uid and decoded.dataset.Rows == rows
    assert decoded.element_count == 3
    # The guess from the first bytes agrees with the syntax actually used.
    assert decode_dataset(data, "").dataset.Rows == rows


# -- the whole pipeline ------------------------------------------------------------------------

_FIXTURE_BYTES = {path.name: path.read_bytes() for path in sorted(FIXTURES.glob("*.pcap*"))
                  if path.stat().st_size < 100_000}


@given(st.binary(max_size=2000))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pipeline_on_arbitrary_bytes_raises_only_capture_error(data):
    harnesses.capture(data)


@given(st.binary(max_size=1500).map(lambda body: b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(12) +
                                    b"\x01\x00\x00\x00" + body))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pipeline_on_arbitrary_pcap_records_raises_only_capture_error(data):
    harnesses.capture(data)


@st.composite
def mutated_fixtures(draw):
    if not _FIXTURE_BYTES:
        return b""
    data = bytearray(_FIXTURE_BYTES[draw(st.sampled_from(sorted(_FIXTURE_BYTES)))])
    for _ in range(draw(st.integers(1, 12))):
        position = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "zero", "ff", "cut", "insert", "delete"]))
        if kind == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "zero":
            data[position : position + 4] = bytes(len(data[position : position + 4]))
        elif kind == "ff":
            data[position : position + 4] = b"\xff" * len(data[position : position + 4])
        elif kind == "cut":
            del data[position:]
            if not data:
                data = bytearray(b"\xd4")
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 64))]
            if not data:
                data = bytearray(b"\xd4")
    return bytes(data)


@given(mutated_fixtures())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pipeline_on_mutated_fixtures_raises_only_capture_error(data):
    harnesses.capture(data)


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 7), st.binary(min_size=1, max_size=300)),
                max_size=30))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pipeline_on_arbitrary_dicom_conversations_never_raises(segments):
    """Arbitrary stream bytes in a well-formed TCP connection on port 104 (lost, reordered, repeated)."""
    harnesses.analyse_bytes(harnesses.conversation_capture(segments))


# -- packet parsing ----------------------------------------------------------------------------

LINK_TYPES = sorted(packet.SUPPORTED_LINK_TYPES) + [147, 65535]


@given(st.sampled_from(LINK_TYPES), st.binary(max_size=200))
@settings(max_examples=800, deadline=None)
def test_parse_tcp_on_arbitrary_frames_never_raises_and_stays_inside_the_frame(link_type, frame):
    for view in (frame, memoryview(frame)):
        segment = packet.parse_tcp(view, link_type)
        if segment is None:
            continue
        assert 0 <= segment.payload_offset
        assert segment.payload_length >= 0 and segment.missing_length >= 0
        if segment.payload_length:  # (options cut by the snapshot length leave an empty payload past the end)
            assert segment.payload_offset + segment.payload_length <= len(frame)
        assert len(segment.src) == len(segment.dst) in (4, 16)


@st.composite
def ip_frames(draw):
    """Frames that are TCP/IP enough to reach the TCP header walk, then arbitrary."""
    link_type = draw(st.sampled_from([packet.LINKTYPE_ETHERNET, packet.LINKTYPE_RAW, packet.LINKTYPE_LINUX_SLL,
                                      packet.LINKTYPE_LINUX_SLL2, packet.LINKTYPE_NULL]))
    version = draw(st.sampled_from([4, 6]))
    if version == 4:
        ihl = draw(st.integers(0, 15))
        ip = bytes([0x40 | ihl, 0]) + struct.pack("!H", draw(st.integers(0, 0xFFFF))) + bytes(4) + \
            bytes([64, 6]) + bytes(2) + draw(st.binary(min_size=8, max_size=8))
        ip += draw(st.binary(max_size=max(0, ihl * 4 - 20)))
    else:
        ip = bytes([0x60, 0, 0, 0]) + struct.pack("!H", draw(st.integers(0, 0xFFFF))) + \
            bytes([draw(st.sampled_from([6, 0, 43, 44, 60, 59])), 64]) + draw(st.binary(min_size=32, max_size=32))
    tcp = draw(st.binary(min_size=12, max_size=12)) + bytes([draw(st.integers(0, 255))]) + \
        draw(st.binary(min_size=7, max_size=7)) + draw(st.binary(max_size=60))
    ethertype = b"\x08\x00" if version == 4 else b"\x86\xdd"
    link = {packet.LINKTYPE_ETHERNET: bytes(12) + ethertype, packet.LINKTYPE_RAW: b"",
            packet.LINKTYPE_LINUX_SLL: bytes(14) + ethertype, packet.LINKTYPE_LINUX_SLL2: ethertype + bytes(18),
            packet.LINKTYPE_NULL: struct.pack("<I", 2 if version == 4 else 30)}[link_type]
    return link_type, link + ip + tcp


@given(ip_frames())
@settings(max_examples=800, deadline=None)
def test_parse_tcp_on_damaged_ip_frames_never_raises(example):
    link_type, frame = example
    segment = packet.parse_tcp(frame, link_type)
    if segment is not None and segment.payload_length:
        assert segment.payload_offset + segment.payload_length <= len(frame)


# -- TCP reassembly ----------------------------------------------------------------------------


@st.composite
def reassembly_programs(draw):
    operations = draw(st.lists(st.tuples(st.integers(0, 7), st.integers(-3000, 3000), st.integers(0, 2999),
                                         st.integers(0, 255)), max_size=80))
    head = bytes([draw(st.integers(0, 15))]) + struct.pack("!I", draw(st.sampled_from(
        [0, 1000, 0xFFFFFF00, 0x7FFFFFFF, draw(st.integers(0, 0xFFFFFFFF))])))
    return head + b"".join(struct.pack("!BhHB", *operation) for operation in operations)


@given(reassembly_programs())
@settings(max_examples=500, deadline=None)
def test_reassembler_delivers_exact_contiguous_bytes_with_bounded_pending(program):
    harnesses.reassembly(program)


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_reassembler_survives_arbitrary_programs(program):
    harnesses.reassembly(program)


def test_every_fixture_passes_every_harness_that_takes_a_capture():
    if not _FIXTURE_BYTES:
        pytest.skip("no fixtures")
    for data in _FIXTURE_BYTES.values():
        harnesses.capture(data)
