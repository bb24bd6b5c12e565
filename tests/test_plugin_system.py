"""Third-party rules through the ``dicomtui`` entry-point group, listing, disabling, isolation.

The example package (examples/dicomtui-example-rule) is pip-installed into the
test environment (CI does it; the session fixture below does it when missing).
The broken example (examples/dicomtui-broken-plugin) is never installed for
real: its entry point is exposed to a subprocess through a temporary
``*.dist-info`` directory on PYTHONPATH, exactly as pip would lay it out.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from capture_tools import FIXTURES
from conftest import analyze_path

from dicomtui import hookimpl
from dicomtui.cli import main
from dicomtui.core.model import Group, Severity
from dicomtui.cli import make_host

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "dicomtui-example-rule"
BROKEN = ROOT / "examples" / "dicomtui-broken-plugin"
ECHO = str(FIXTURES / "echo_dcmtk.pcap")
NOT_ALLOWED = "calling AE title 'ECHOSCU' is not in the allow-list"


@pytest.fixture(scope="session", autouse=True)
def example_rule_installed():
    names = {entry_point.name for entry_point in importlib.metadata.entry_points(group="dicomtui")}
    if "example_allowed_aes" not in names:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", str(EXAMPLE)], check=True)
        importlib.invalidate_caches()


def run_main(capsys, *argv):
    status = main(list(argv))
    return status, capsys.readouterr().out


def run_cli(*argv, env=None):
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "dicomtui.cli", *argv], capture_output=True, text=True,
                          env=environment, timeout=120)


# -- the installed example rule -----------------------------------------------------------------


def test_example_rule_fires_only_when_configured(capsys):
    status, out = run_main(capsys, "--expert", "-o", "allowed_calling_aes:MODALITY,QRSCU", ECHO)
    assert status == 0
    lines = [line for line in out.splitlines() if NOT_ALLOWED in line]
    assert len(lines) == 1 and lines[0].startswith("warning") and "frame 4 " in lines[0]  # the A-ASSOCIATE-RQ
    _status, out = run_main(capsys, "--expert", "-o", "allowed_calling_aes:ECHOSCU", ECHO)
    assert "allow-list" not in out
    _status, out = run_main(capsys, "--expert", ECHO)
    assert "allow-list" not in out


def test_list_plugins_shows_the_example_with_version_and_hooks():
    result = run_cli("--list-plugins")
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("example_allowed_aes"))
    assert "dicomtui-example-rule" in line and "0.2.0" in line and "loaded" in line
    for hook in ("dicomtui_check_analysis", "dicomtui_check_association", "dicomtui_register_rule_options"):
        assert hook in line
    for rule in ("association", "protocol", "status", "timing", "capture", "query"):
        assert any(row.startswith(f"rules.{rule} ") and "built-in" in row and "loaded" in row
                   for row in result.stdout.splitlines())


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--disable-plugin", "example_allowed_aes"], {}),
        ([], {"DICOMTUI_PLUGINS": "none"}),
        ([], {"DICOMTUI_PLUGINS": "some_other_plugin"}),
        ([], {"DICOMTUI_DISABLE_PLUGINS": "example_allowed_aes"}),
    ],
)
def test_example_rule_can_be_disabled(capsys, monkeypatch, argv, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status, out = run_main(capsys, "--expert", "-o", "allowed_calling_aes:NOBODY", *argv, ECHO)
    assert status == 0 and "allow-list" not in out
    assert "released normally" in out  # the built-in rules still run
    host = make_host(disabled=set(argv[1:]))
    assert next(info for info in host.list_plugins() if info.name == "example_allowed_aes").status == "disabled"


def test_allowlist_env_var_keeps_a_named_plugin(capsys, monkeypatch):
    monkeypatch.setenv("DICOMTUI_PLUGINS", "example_allowed_aes")
    _status, out = run_main(capsys, "--expert", "-o", "allowed_calling_aes:NOBODY", ECHO)
    assert NOT_ALLOWED in out


# -- failure isolation --------------------------------------------------------------------------


def test_plugin_raising_in_a_hook_becomes_an_error_item(capsys):
    _status, clean = run_main(capsys, "--expert", ECHO)
    status, out = run_main(capsys, "--expert", "--fail-on", "error", "-o", "example_raise:1", ECHO)
    assert status == 4
    errors = [line for line in out.splitlines() if line.startswith("error")]
    assert len(errors) == 1
    assert "plugin example_allowed_aes raised in dicomtui_check_analysis" in errors[0]
    assert "RuntimeError: example_raise is set" in errors[0]
    assert [line for line in out.splitlines() if not line.startswith("error")] == clean.splitlines()


def test_in_process_plugin_raising_keeps_every_other_item(plugin_host):
    class Exploding:
        @hookimpl
        def dicomtui_check_message(self, message, analysis, report):
            report.add("note", "protocol", "seen", message.first_frame)
            raise ZeroDivisionError("boom in a rule")

    host = make_host()
    host.register(Exploding(), name="exploding_rule")
    analysis = analyze_path(ECHO, host)
    baseline = analyze_path(ECHO, plugin_host)
    failures = [item for item in analysis.expert if item.group is Group.PLUGIN]
    assert len(failures) == 4  # one per message: each call is isolated
    assert all(item.severity is Severity.ERROR and item.rule == "exploding_rule" for item in failures)
    assert "exploding_rule raised in dicomtui_check_message: ZeroDivisionError: boom in a rule" in failures[0].message
    kept = [item for item in analysis.expert if item.rule != "exploding_rule"]
    assert kept == baseline.expert


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    """The broken example laid out as pip would install it, in a directory for PYTHONPATH."""
    site = tmp_path_factory.mktemp("broken_site")
    project = tomllib.loads((BROKEN / "pyproject.toml").read_text())["project"]
    shutil.copytree(BROKEN / "dicomtui_broken_plugin", site / "dicomtui_broken_plugin")
    dist_info = site / f"dicomtui_broken_plugin-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    entry_points = project["entry-points"]["dicomtui"]
    (dist_info / "entry_points.txt").write_text(
        "[dicomtui]\n" + "".join(f"{name} = {target}\n" for name, target in entry_points.items()))
    # Keep any PYTHONPATH already set (a checkout under test) after the plugin's folder.
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))}


def test_plugin_failing_on_import_becomes_an_error_item(broken_site):
    clean = run_cli("--expert", ECHO)
    result = run_cli("--expert", "--fail-on", "error", ECHO, env=broken_site)
    assert result.returncode == 4
    errors = [line for line in result.stdout.splitlines() if line.startswith("error")]
    assert len(errors) == 1
    assert "plugin broken_example failed in import: ImportError: dicomtui_broken_plugin needs" in errors[0]
    assert [line for line in result.stdout.splitlines() if not line.startswith("error")] == \
        clean.stdout.splitlines()
    listing = run_cli("--list-plugins", env=broken_site)
    row = next(line for line in listing.stdout.splitlines() if line.startswith("broken_example"))
    assert "dicomtui-broken-plugin" in row and "failed" in row
    assert "example_allowed_aes" in listing.stdout  # the other installed plugin still loads


@pytest.mark.parametrize(("argv", "env"), [(["--disable-plugin", "broken_example"], {}),
                                           ([], {"DICOMTUI_PLUGINS": "none"})])
def test_broken_plugin_can_be_switched_off(broken_site, argv, env):
    result = run_cli("--expert", "--fail-on", "error", *argv, ECHO, env={**broken_site, **env})
    assert result.returncode == 0 and "broken_example" not in result.stdout


def test_list_plugins_shows_declared_rule_options():
    result = run_cli("--list-plugins")
    options = result.stdout.split("rule options (-o NAME:VALUE):", 1)[1]
    assert "slow_response_seconds:5.0" in options and "[rules.timing]" in options
    assert "allowed_calling_aes:" in options and "[example_allowed_aes]" in options
