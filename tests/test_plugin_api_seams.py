"""The plugin API's seams (issue 23): hooks by attribute, exporters by capability, built-ins by module.

- ``host.hook.NAME(...)`` / ``.first(...)`` / ``.registrations(...)`` keep the host's
  per-plugin isolation; a misspelt hook is an AttributeError, not a call to nothing.
- The deprecated ``dicomtui_finish_analysis`` still runs, and implementing it warns.
- The UI and the live export find an exporter by what it declares it writes: with the
  pcap exporter disabled, saving the DICOM frames of a live capture says so plainly.
- The composition root names each built-in by importing its module, under the same
  names as before (``--list-plugins``, ``--disable-plugin``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from types import SimpleNamespace

import pytest
from capture_tools import FIXTURES
from dicomtui import hookimpl
from dicomtui.cli import BUILTIN_PLUGINS, make_host
from dicomtui.core.api import hookspecs
from dicomtui.core.api.export import WRITES_CAPTURE, WRITES_OBJECTS, capabilities
from dicomtui.core.api.host import HookRelay
from test_plugin_host import bare_host  # one helper for the host's tests
from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.core.views.export import exporters, exporters_with
from dicomtui.core.views.live import LiveExporter

ECHO = FIXTURES / "echo_dcmtk.pcap"


# -- hooks by attribute ------------------------------------------------------------------------


def test_the_hook_relay_declares_exactly_the_hook_specifications():
    specified = {name for name in dir(hookspecs) if name.startswith("dicomtui_")}
    assert set(HookRelay.__annotations__) == specified


def test_a_misspelt_hook_is_an_attribute_error():
    with pytest.raises(AttributeError, match="dicomtui_check_mesage"):
        bare_host().hook.dicomtui_check_mesage  # noqa: B018


def test_attribute_calls_keep_the_isolation():
    class Raising:
        @hookimpl
        def dicomtui_status_meaning(self, command_field, status, sop_class):
            raise ZeroDivisionError("boom")

    class Answering:
        @hookimpl(trylast=True)
        def dicomtui_status_meaning(self, command_field, status, sop_class):
            return ("warning", "from the second plugin")

        @hookimpl
        def dicomtui_register_rule_options(self, register):
            register("an_option", 1, "help")

    host = bare_host(Answering(), Raising())
    assert host.hook.dicomtui_status_meaning.first(command_field=1, status=1, sop_class="") == (
        "warning", "from the second plugin")
    assert [failure.plugin for failure in host.failures] == ["p1"]
    assert host.hook.dicomtui_register_rule_options.registrations() == [("p0", ("an_option", 1, "help"))]
    assert host.hook.dicomtui_check_analysis(analysis=None, report=None) == []


def test_finish_analysis_still_runs_and_implementing_it_warns():
    calls = []

    class Old:
        @hookimpl
        def dicomtui_finish_analysis(self, analysis):
            calls.append(analysis.frame_count)

    host = make_host(load_installed=False)
    with pytest.warns(DeprecationWarning, match="dicomtui_complete_model"):
        host.register(Old(), name="old")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the built-ins implement only the new name
        make_host(load_installed=False)
    analysis = analyze([str(ECHO)], AnalysisConfig(), host, run_rules=False)
    analysis.close()
    assert calls == [analysis.frame_count] and not host.failures


# -- exporters by capability ---------------------------------------------------------------------


def test_builtin_exporters_declare_what_they_write():
    found = {name: capabilities(exporter) for name, exporter in exporters(make_host(load_installed=False)).items()}
    assert found["pcap"] == {WRITES_CAPTURE}
    assert found["part10"] == found["dicom-json"] == {WRITES_OBJECTS}
    assert found["transactions-csv"] == frozenset()


def test_live_export_writes_per_message_by_capability_not_name():
    host = make_host(load_installed=False)
    incremental = SimpleNamespace()
    per_message = {name: LiveExporter(exporter, "unused", None, incremental).per_message
                   for name, exporter in exporters(host).items()}
    assert per_message == {"part10": True, "dicom-json": True, "transactions-csv": False,
                           "transactions-json": False, "pcap": False}


class _Spool:
    """What ``save_captured`` needs of a live capture's spool: ``save(path)``."""

    def save(self, path: str) -> int:
        shutil.copyfile(ECHO, path)
        return ECHO.stat().st_size


def test_saving_dicom_frames_uses_whichever_exporter_writes_captures(tmp_path):
    from dicomtui.tui.live import save_captured

    incremental = SimpleNamespace(spool=_Spool())
    message = save_captured(incremental, str(tmp_path / "dicom.pcap"), True, make_host(load_installed=False),
                            AnalysisConfig())
    assert "1 DICOM connection" in message and (tmp_path / "dicom.pcap").stat().st_size > 0


def test_saving_dicom_frames_with_the_pcap_exporter_disabled_says_so(tmp_path):
    from dicomtui.tui.live import save_captured

    host = make_host(disabled={"export.pcap"}, load_installed=False)
    assert exporters_with(host, WRITES_CAPTURE) == []
    with pytest.raises(ValueError, match="no loaded exporter writes captures"):
        save_captured(SimpleNamespace(spool=_Spool()), str(tmp_path / "dicom.pcap"), True, host, AnalysisConfig())
    assert not (tmp_path / "dicom.pcap").exists()


def test_export_format_of_a_disabled_exporter_is_a_plain_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--disable-plugin", "export.pcap", "--export",
                           str(tmp_path / "out"), "--export-format", "pcap", str(ECHO)],
                          capture_output=True, text=True, check=False, env={"DICOMTUI_PLUGINS": "none", "PATH": ""})
    assert done.returncode == 2
    assert "unknown export format 'pcap'" in done.stderr and "Traceback" not in done.stderr


# -- built-ins named by module ---------------------------------------------------------------------


def test_builtins_keep_their_names_and_load_their_own_module():
    names = [plugin.name for plugin in BUILTIN_PLUGINS]
    assert len(set(names)) == len(names)
    for plugin in BUILTIN_PLUGINS:
        assert plugin.load().__name__ == "dicomtui.plugins." + plugin.name
