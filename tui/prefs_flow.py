"""Preferences from the UI: the screen's values in, the file and the running config out."""

from __future__ import annotations

from typing import Any

from .prefs import (
    PREFERENCES,
    PreferencesError,
    config_path,
    load_checked_preferences,
    load_preferences,
    preference,
    save_preferences,
)


class PreferencesFlow:
    def __init__(self, app) -> None:
        self.app = app

    def current(self) -> dict[str, Any]:
        app = self.app
        stored, warnings = load_checked_preferences(app.preferences_path)
        for warning in warnings:
            app.notify(str(warning), severity="warning", timeout=10)
        values: dict[str, Any] = dict(stored)
        for known in PREFERENCES:  # values in force (command line, file) win; invalid ones are skipped
            if known.name in app.config.options:
                values[known.name] = preference(app.config.options, known.name)
        if "ports" not in values:
            values["ports"] = ",".join(str(port) for port in sorted(app.config.ports)[:32])
        return values

    def open(self) -> None:
        from .screens import PreferencesScreen

        app = self.app
        path = app.preferences_path or config_path()
        app.push_screen(PreferencesScreen(self.current(), str(path)), self.saved)

    def saved(self, values: dict[str, Any] | None) -> None:
        if values is None:
            return
        app = self.app
        try:
            try:  # keep the file's other keys (rule options); invalid known ones are replaced
                stored = load_preferences(app.preferences_path)
            except PreferencesError:
                stored = {}
            stored.update(values)
            path = save_preferences(stored, app.preferences_path)
        except OSError as exc:
            app.notify(f"Could not save preferences: {exc}", severity="error")
            return
        for name, value in values.items():
            app.config.options[name] = str(value).lower() if isinstance(value, bool) else str(value)
        from dicomtui.core.protocol.detect import parse_port_list

        new_ports = parse_port_list(str(values["ports"]))
        reload_needed = new_ports != app.config.ports or bool(values["heuristic"]) != app.config.heuristic
        app.config.ports = new_ports
        app.config.heuristic = bool(values["heuristic"])
        app.detail_tree.set_flat(values["subtree_style"] == "flat")
        app.preferences_applied(values)
        note = " (ctrl+r reloads the capture with the new ports / heuristic)" if reload_needed else ""
        app.notify(f"Preferences saved to {path}{note}", timeout=5)
