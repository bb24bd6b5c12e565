"""The pipeline's phases and the shared data-set codec (issue 10; issue 17 item 12).

- A plugin that fails in one phase loses nothing of another: a private
  dictionary that cannot be read no longer switches off transfer-syntax
  guessing (a mid-association capture exported 0 objects with the misleading
  reason "association negotiation not captured").
- Every exporter writes every object of an ordinary capture of pydicom's own
  test files (Specific Character Set ISO_IR 192, ISO 2022 IR 13/87 with an
  empty first value, big endian, an IS value "1A"), and any exporter that
  skips an object the user did not ask to skip exits with status 3 and names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from capture_tools import FIXTURES, data_frame_indices, read_frames, write_pcap
from conftest import analyze_path

from dicomtui import hookimpl
from dicomtui.core.api.export import SKIP_TOO_SMALL, ExportResult
from dicomtui.cli import main, make_host
from dicomtui.core.model import Group, Severity
from dicomtui.core.protocol import datasets as codec

TESTFILES = FIXTURES / "store_testfiles_pynetdicom.pcap"
RECEIVED = FIXTURES / "received" / "store_testfiles"


@pytest.fixture(scope="module")
def midway(tmp_path_factory) -> Path:
    """store_ts cut after the association negotiation: syntaxes must be guessed."""
    frames = read_frames(FIXTURES / "store_ts_pynetdicom.pcap")
    cut = data_frame_indices(frames)[2]
    return write_pcap(tmp_path_factory.mktemp("midway") / "late.pcap", frames[cut:])


def test_unreadable_private_dictionary_keeps_syntax_guessing_and_export(midway, tmp_path, capsys):
    baseline = main(["--export", str(tmp_path / "plain"), str(midway)])
    capsys.readouterr()
    status = main(["--export", str(tmp_path / "out"), "-o", "private_dictionary:/no/such.json", str(midway)])
    err = capsys.readouterr().err
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == sorted(path.name for path in (tmp_path / "plain").iterdir())
    assert len(written) >= 5, err
    assert "association negotiation not captured" not in err
    assert status == baseline


def test_unreadable_private_dictionary_is_one_error_and_keeps_tag_names(midway):
    host = make_host(load_installed=False)
    analysis = analyze_path(midway, host, options={"private_dictionary": "/no/such.json"})
    errors = [item for item in analysis.expert if item.group is Group.PLUGIN]
    assert len(errors) == 1 and errors[0].severity is Severity.ERROR
    assert "dictionary" in errors[0].message and "/no/such.json" in errors[0].message
    stores = [m for m in analysis.messages if m.command_name == "C-STORE-RQ" and m.complete]
    assert stores and all(m.syntax_guessed for m in stores)
    text = analysis.decode_dataset(stores[0]).tree.render_text()
    assert "SOP Instance UID" in text  # the pydicom dictionary registered before the failure is kept


def test_a_completion_hook_that_raises_loses_nothing_of_the_other_phases(midway, plugin_host):
    class Broken:
        @hookimpl(tryfirst=True)
        def dicomtui_complete_model(self, analysis):
            raise RuntimeError("broken completion")

    host = make_host(load_installed=False)
    host.register(Broken(), name="broken_completion")
    analysis = analyze_path(midway, host)
    baseline = analyze_path(midway, plugin_host)
    failures = [item for item in analysis.expert if item.rule == "broken_completion"]
    assert len(failures) == 1 and "dicomtui_complete_model" in failures[0].message
    assert [m.transfer_syntax for m in analysis.messages] == [m.transfer_syntax for m in baseline.messages]
    kept = [(i.severity, i.message, i.frame) for i in analysis.expert if i.rule != "broken_completion"]
    assert kept == [(i.severity, i.message, i.frame) for i in baseline.expert]


# -- the shared data-set codec -------------------------------------------------------------


def test_fixture_holds_the_character_sets_that_failed(analyze_fixture):
    analysis = analyze_fixture(TESTFILES.name)
    charsets = set()
    for message in analysis.messages:
        decoded = analysis.decode_dataset(message)
        if decoded is not None and decoded.dataset is not None:
            value = decoded.dataset.get("SpecificCharacterSet")
            charsets.add(str(value))
    assert {"ISO_IR 192", "['', 'ISO 2022 IR 87']", "['ISO 2022 IR 13', 'ISO 2022 IR 87']"} <= charsets


@pytest.mark.parametrize("exporter", ["part10", "dicom-json"])
def test_every_object_of_the_pydicom_test_files_is_exported(exporter, tmp_path, capsys):
    status = main(["--export", str(tmp_path), "--export-format", exporter, str(TESTFILES)])
    err = capsys.readouterr().err
    assert status == 0, err
    written = [path for path in tmp_path.iterdir() if not path.name.endswith(".bin")]
    assert len(written) == len(list(RECEIVED.iterdir())) == 7, err


def test_dicom_json_decodes_the_character_sets(tmp_path, capsys):
    assert main(["--export", str(tmp_path), "--export-format", "dicom-json", str(TESTFILES)]) == 0
    names = []
    for path in sorted(tmp_path.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        names += [part for value in document.get("00100010", {}).get("Value", []) for part in value.values()]
    assert "山田^太郎" in names  # ISO 2022 IR 87 (chrH31, chrH32)
    assert "ﾔﾏﾀﾞ^ﾀﾛｳ" in names  # ISO 2022 IR 13 (chrH32)
    assert "Wang^XiaoDong" in names and "王^小東" in names  # ISO_IR 192 (chrX1)
    err = capsys.readouterr().err
    assert "(0028,0008) IS value does not convert" in err  # badVR.dcm's "1A", kept as UN bytes, said


def test_invalid_number_is_kept_as_raw_bytes_not_lost():
    from pydicom.data import get_testdata_file
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import _read_file_meta_info, read_preamble

    raw = Path(get_testdata_file("badVR.dcm")).read_bytes()
    stream = DicomBytesIO(raw)
    read_preamble(stream, False)
    _read_file_meta_info(stream)  # the data set follows the file meta information
    parsed = codec.parse_dataset(raw[stream.tell():], codec.EXPLICIT_LE)
    assert parsed.dataset is not None and not parsed.problems
    kept = codec.convert_all(parsed)
    assert len(kept) == 1 and kept[0].startswith("(0028,0008) IS value does not convert")
    element = parsed.dataset[0x00280008]
    assert element.VR == "UN" and element.value.strip() == b"1A"
    parsed.dataset.to_json_dict()  # every value now converts


def test_skipping_an_object_the_user_did_not_ask_to_skip_is_incomplete():
    assert ExportResult().complete
    assert ExportResult(skipped=[(3, SKIP_TOO_SMALL)]).complete
    for reason in ("not decodable as 1.2.840.10008.1.2.1: ValueError: x", "incomplete: bytes missing",
                   "anything an exporter may say"):
        result = ExportResult(skipped=[(3, reason)])
        assert not result.complete and result.lost == [(3, reason)]


def test_an_exporter_that_skips_exits_3_and_names_the_object(tmp_path, capsys, monkeypatch):
    from dicomtui.plugins.export import dicom_json

    def refuse(data, transfer_syntax, limits=None):
        raise ValueError("refused for the test")

    monkeypatch.setattr(dicom_json, "parse_dataset", refuse)
    status = main(["--export", str(tmp_path), "--export-format", "dicom-json", str(TESTFILES)])
    err = capsys.readouterr().err
    assert status == 3
    assert err.count("not exported: message ") == 7 and "refused for the test" in err


def test_the_anonymizer_reads_through_the_codec_and_never_rewrites_a_cut_data_set():
    import struct
    import zlib

    from dicomtui.core.base.limits import Limits
    from dicomtui.plugins.anonymize.deidentify import CodecError, DatasetCodec

    # 2,000 complete 8-byte-header LO elements (explicit VR LE): cutting at any multiple of
    # 16 bytes leaves a data set that parses, just shorter -- the silent loss to refuse.
    elements = b"".join(struct.pack("<HH2sH", 0x0009, 0x1000 + n, b"LO", 8) + b"ABCDEFGH"
                        for n in range(2000))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(elements) + compressor.flush()
    whole = DatasetCodec(codec.DEFLATED_LE, Limits(max_inflated_bytes=len(elements))).read(deflated)
    assert len(whole) == 2000
    with pytest.raises(CodecError, match="inflates beyond"):
        DatasetCodec(codec.DEFLATED_LE, Limits(max_inflated_bytes=16 * 1000)).read(deflated)
