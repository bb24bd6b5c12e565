"""Preferences: the TOML file in the XDG config folder, shared by the CLI and the TUI."""

import pytest
from dicomtui.cli import build_parser, make_config
from dicomtui.tui.prefs import (
    PreferencesError,
    coerce,
    config_path,
    load_preferences,
    save_preferences,
)


def test_config_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "dicomtui" / "config.toml"


def test_missing_file_means_no_preferences(tmp_path):
    assert load_preferences(tmp_path / "nothing.toml") == {}


def test_round_trip_keeps_types_and_odd_text(tmp_path):
    path = tmp_path / "config.toml"
    values = {"ports": "104,11112-11113", "heuristic": False, "export_min_size": 1024,
              "slow_response_seconds": 2.5, "subtree_style": "flat", "note": 'quote " and \\ and \x1b'}
    save_preferences(values, path)
    assert load_preferences(path) == values


def test_malformed_file_raises_preferences_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("ports = [unclosed\n")
    with pytest.raises(PreferencesError):
        load_preferences(path)


def test_coerce_checks_types_and_choices():
    assert coerce("heuristic", "off") is False
    assert coerce("export_min_size", " 10 ") == 10
    assert coerce("slow_response_seconds", "1.5") == 1.5
    with pytest.raises(ValueError):
        coerce("subtree_style", "sideways")
    with pytest.raises(ValueError):
        coerce("export_min_size", "-1")


def test_cli_merges_file_then_command_line(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    save_preferences({"ports": "2104", "heuristic": False, "slow_response_seconds": 9.0})
    parser = build_parser()
    config = make_config(parser.parse_args(["x.pcap", "-o", "slow_response_seconds:1"]), parser)
    assert config.ports == frozenset({2104})
    assert config.heuristic is False
    assert config.option("slow_response_seconds", 5.0) == 1.0
