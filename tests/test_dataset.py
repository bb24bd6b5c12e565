"""Data-set decoding: private dictionaries, character sets, site dictionaries, byte offsets."""

import io
import json
import struct

import pydicom
from pydicom.data import get_charset_files, get_testdata_file

from capture_tools import FIXTURES

from dicomtui.cli import make_host
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.plugins.dataset import decode_dataset, guess_transfer_syntax


def _dataset_part(path: str) -> tuple[bytes, str]:
    raw = open(path, "rb").read()
    handle = io.BytesIO(raw)
    pydicom.filereader.read_preamble(handle, False)
    meta = pydicom.filereader._read_file_meta_info(handle)
    return raw[handle.tell():], str(meta.TransferSyntaxUID)


def test_private_tags_are_named_from_pydicoms_private_dictionary(analyze_fixture):
    analysis = analyze_fixture("store_dcmtk.pcapng")
    message = next(m for m in analysis.messages if m.command_name == "C-STORE-RQ")
    text = analysis.decode_dataset(message).tree.render_text()
    assert "(0009,0010) Private Creator: LO 12: GEMS_IDEN_01" in text
    assert "(0009,1002) Suite id: SH 4: CT01" in text
    assert "(0043,1010) Window value: US 2: 400" in text


def test_specific_character_set_is_honoured():
    data, syntax = _dataset_part(get_charset_files("chrH31.dcm")[0])
    text = decode_dataset(data, syntax).tree.render_text()
    assert "Yamada^Tarou=山田^太郎=やまだ^たろう" in text


def test_a_site_private_dictionary_names_unknown_private_tags(tmp_path):
    dictionary = tmp_path / "site.json"
    dictionary.write_text(json.dumps({"GEMS_IDEN_01": {"0009xx02": ["SH", "1", "Site suite name"]}}))
    analysis = analyze([str(FIXTURES / "store_dcmtk.pcapng")],
                       AnalysisConfig(options={"private_dictionary": str(dictionary)}), make_host())
    message = next(m for m in analysis.messages if m.command_name == "C-STORE-RQ")
    text = analysis.decode_dataset(message).tree.render_text()
    assert "(0009,1002) Site suite name: SH 4: CT01" in text  # the site's name wins
    assert "(0009,1004) Product id" in text  # pydicom's dictionary still names the rest


def test_tree_offsets_point_at_each_elements_tag():
    data, syntax = _dataset_part(get_testdata_file("rtplan.dcm"))
    decoded = decode_dataset(data, syntax)
    checked = 0
    for _depth, field in decoded.tree.walk():
        if field.label.startswith("(") and field.length:
            group, element = int(field.label[1:5], 16), int(field.label[6:10], 16)
            unpacked = struct.unpack_from("<HH" if "Little" in decoded.tree.label or "Implicit" in
                                          decoded.tree.label else ">HH", data, field.offset)
            assert unpacked == (group, element), field.label
            checked += 1
    assert checked > 100  # sequences and their items included


def test_guessing_the_syntax_from_the_first_element():
    for name, expected in [("MR_small_implicit.dcm", "1.2.840.10008.1.2"),
                           ("MR_small.dcm", "1.2.840.10008.1.2.1"),
                           ("MR_small_bigendian.dcm", "1.2.840.10008.1.2.2")]:
        data, _syntax = _dataset_part(get_testdata_file(name))
        assert guess_transfer_syntax(data) == expected


def test_new_vrs_are_decoded():
    dataset = pydicom.Dataset()
    dataset.add_new(0x00101010, "AS", "042Y")
    dataset.add_new(0x00080119, "UC", "a long code value")  # Long Code Value
    dataset.add_new(0x00080120, "UR", "http://example.com/x")  # URN Code Value
    dataset.add_new(0x00180010, "LO", "agent")
    dataset.add_new(0x7FE00008, "OF", b"\x00\x00\x80\x3f")
    dataset.add_new(0x00720080, "SV", [-5])  # Selector SV Value
    dataset.add_new(0x00720082, "UV", [2**40])  # Selector UV Value
    dataset.add_new(0x00720078, "OV", struct.pack("<Q", 7))  # Selector OV Value
    dataset.add_new(0x0040A160, "UT", "a long text")
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(buffer, dataset)
    decoded = decode_dataset(buffer.getvalue(), "1.2.840.10008.1.2.1")
    text = decoded.tree.render_text()
    assert decoded.problems == []
    assert "UC 18: a long code value" in text and "UR 20: http://example.com/x" in text
    assert "SV 8: -5" in text and "UV 8: 1099511627776" in text and "OV 8: 8 bytes" in text
