"""The packet list's view settings: time format (``t``), columns (``c``), kept in the preferences file."""

from __future__ import annotations


class ViewSettings:
    """A helper of the app: reads the settings at start, changes and saves them on a key."""

    def __init__(self, app) -> None:
        self.app = app

    def apply(self) -> None:
        from dicomtui.core.base.time_format import check

        from .packet_list import DEFAULT_COLUMNS, parse_columns

        try:
            self.app.packet_list.time_format = check(str(self.app.config.options.get("time_format") or "r"))
        except ValueError:
            self.app.packet_list.time_format = "r"
        try:
            self.app.packet_list.columns = parse_columns(str(self.app.config.options.get("columns") or ""))
        except ValueError:
            self.app.packet_list.columns = DEFAULT_COLUMNS
        self.app.packet_list.data_changed()

    def save(self, name: str, value: str) -> None:
        """Keep a view setting for next time (the preferences file), without a dialog."""
        from .prefs import PreferencesError, load_preferences, save_preferences

        self.app.config.options[name] = value
        try:
            try:
                stored = load_preferences(self.app.preferences_path)
            except PreferencesError:
                stored = {}
            stored[name] = value
            save_preferences(stored, self.app.preferences_path)
        except OSError as exc:
            self.app.notify(f"Could not save the {name} preference: {exc}", severity="warning")

    def cycle_time_format(self) -> None:
        from dicomtui.core.base.time_format import FORMATS, next_format

        packets = self.app.packet_list
        packets.set_time_format(next_format(packets.time_format))
        self.save("time_format", packets.time_format)
        self.app.notify(f"Time: {FORMATS[packets.time_format]} (-t {packets.time_format})", timeout=3)

    def choose_columns(self) -> None:
        from .columns_screen import ColumnsScreen

        self.app.push_screen(ColumnsScreen(self.app.packet_list.columns), self.columns_chosen)

    def columns_chosen(self, columns: tuple[str, ...] | None) -> None:
        if columns is None:
            return
        self.app.packet_list.set_columns(columns)
        self.save("columns", ",".join(columns))
        self.app.notify(f"Columns: {', '.join(columns)}", timeout=3)
