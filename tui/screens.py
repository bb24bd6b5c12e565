"""Modal screens: help, export, preferences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dicomtui.core.api.export import WRITES_OBJECTS, capabilities
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static, Switch

from .filter import field_help
from .path_dialog import PathDialog
from .prefs import PREFERENCES, coerce

KEY_HELP: list[tuple[str, str]] = [
    ("j / down, k / up", "next / previous row (in any list or tree)"),
    ("PgDn / space, PgUp", "page down / up in the packet list"),
    ("g / Home, G / End", "first / last row"),
    ("Enter", "packet list: go to the detail tree; tree: expand / collapse"),
    ("l / right, h / left", "tree: expand node / collapse (or go to parent)"),
    ("*", "tree: expand everything under the cursor"),
    ("Tab, shift+Tab", "next / previous pane (packets, tree, bytes, expert)"),
    ("mouse", "click selects rows and nodes, wheel scrolls, double-click opens details"),
    ("/", "display filter (Enter applies, Escape cancels, empty clears)"),
    ("s", "search text in the packet list (in the detail tree when it has the focus)"),
    ("n, N", "next / previous search match"),
    ("T", "time format: r, a, ad, u, ud, e, dd, d (as tshark -t)"),
    ("c", "choose, hide and reorder the packet list columns"),
    ("m, M", "mark / unmark the row (Wireshark's Ctrl-M); next marked row"),
    ("v", "the selected value (row, tree node, finding) in full"),
    ("y, Y", "copy the selected value / the node with its subtree (OSC 52 and a file)"),
    ("r", "request <-> response (again: the next response)"),
    ("w", "C-MOVE <-> its sub-association"),
    ("F", "the expert findings of the selected PDU"),
    ("V", "validate the stored object under the cursor (dciodvfy; shown under its data set)"),
    ("backspace", "back to where r, w, F or a link jumped from"),
    ("< >", "detail tree: scroll left / right (long values)"),
    (": or ctrl+g", "go to packet number (f123: the PDU holding frame 123)"),
    ("e, E", "next / previous expert item"),
    ("i", "show / hide the expert pane"),
    ("a", "associations view (Enter filters the packet list to one)"),
    ("W", "workflow: commitment, MPPS, worklist per study (Enter: go to the message; live: W saves)"),
    ("t", "statistics: where the time went, response times, TCP (1-6 tables, s sorts, Enter: ladder)"),
    ("L", "ladder diagram of the selected packet's association (m: per message; Enter: go to the PDU)"),
    ("o", "plots: throughput and response time over time (a: association / whole capture)"),
    ("f", "data set sequences: nested subtrees / flat list"),
    ("x", "export the selected object or all objects"),
    ("H", "HTML report of what is loaded, for a vendor ticket (one file, no patient data)"),
    ("p", "preferences"),
    ("ctrl+r", "reload the capture (after changing ports or heuristic)"),
    ("K", "decrypt TLS: give a key log file, the capture is analysed again with it"),
    ("ctrl+p", "command palette"),
    ("escape", "clear the filter / close a screen"),
    ("?", "this help"),
    ("q, ctrl+c", "quit (live: stops the capture first)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss_screen", "Close"),
        Binding("j,down", "scroll(1)", "Down", show=False),
        Binding("k,up", "scroll(-1)", "Up", show=False),
        Binding("space,pagedown", "scroll(10)", "Page down", show=False),
        Binding("pageup", "scroll(-10)", "Page up", show=False),
        Binding("g,home", "scroll(-100000)", "Top", show=False),
        Binding("G,end", "scroll(100000)", "Bottom", show=False),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 110; height: 90%; border: round $primary;
        background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold")
        keys.add_column()
        for key, description in KEY_HELP:
            keys.add_row(key, description)
        fields = Table.grid(padding=(0, 2))
        fields.add_column(style="bold")
        fields.add_column()
        for name, description in field_help():
            fields.add_row(name, description)
        fields.add_row("tag(gggg,eeee)", "a data set element anywhere in the data set (also a keyword: PatientID)")
        with VerticalScroll():
            yield Static(Text("Keys", style="bold underline"))
            yield Static(keys)
            yield Static(Text("\nDisplay filter", style="bold underline"))
            yield Static(Text('Tests combine with and / or / not and parentheses; operators == != < <= > >= '
                              'contains matches. Examples: status != 0   status.failure   '
                              'command == C-STORE and calling_ae == "MODALITY"   tag(0010,0010) contains "DOE"   '
                              'PatientID == "123"   not type == P-DATA'))
            yield Static(fields)
            yield Static(Text("\nEscape closes this help.", style="italic"))

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)


@dataclass(slots=True)
class ExportRequest:
    exporter: str
    folder: str
    scope: str  # "selected", "displayed", "marked" or "all"


class ExportScreen(PathDialog):
    """Which exporter, into which folder, for what (dismisses with an ``ExportRequest`` or None)."""

    PATH_ID, GO_ID, EMPTY_TEXT = "export-folder", "export-go", "Give an output folder"

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical { width: 76; max-width: 100%; height: auto; border: round $primary;
        background: $surface; padding: 0 1; }
    ExportScreen Horizontal { height: auto; }
    ExportScreen Button { margin: 0 1 0 0; }
    """

    def __init__(self, exporters: dict[str, Any], folder: str, selected_text: str,
                 scopes: dict[str, str] | None = None, default_scope: str = "selected") -> None:
        super().__init__()
        self.exporters = exporters
        self.folder = folder
        self.selected_text = selected_text
        # scope -> label; the default is one that has something to export
        self.scopes = scopes or {"selected": f"Selected: {selected_text}", "all": "All objects in the capture"}
        self.default_scope = default_scope if default_scope in self.scopes else next(iter(self.scopes))

    def compose(self) -> ComposeResult:
        options = [(f"{name}: {getattr(exporter, 'description', '')}"[:60], name)
                   for name, exporter in self.exporters.items()]
        # The first exporter of one file per data set (the built-in Part 10 one unless disabled), else the first.
        objects = [name for name, exporter in self.exporters.items() if WRITES_OBJECTS in capabilities(exporter)]
        default = objects[0] if objects else (options[0][1] if options else Select.BLANK)
        with Vertical():
            yield Label(Text("Export objects", style="bold"))
            yield Select(options, value=default, allow_blank=False, id="export-format")
            yield Input(self.folder, placeholder="output folder", id="export-folder")
            with RadioSet(id="export-scope"):
                for scope, label in self.scopes.items():
                    yield RadioButton(Text(label), value=scope == self.default_scope, id=f"scope-{scope}")
            with Horizontal():
                yield Button("Export", variant="primary", id="export-go")
                yield Button("Cancel", id="export-cancel")

    def choice(self, folder: str) -> ExportRequest:
        exporter = self.query_one("#export-format", Select).value
        scope = next((name for name in self.scopes if self.query_one(f"#scope-{name}", RadioButton).value),
                     self.default_scope)
        return ExportRequest(str(exporter), folder, scope)


class PreferencesScreen(ModalScreen[dict[str, Any] | None]):
    """Edits the preferences; returns the new values (typed) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    PreferencesScreen { align: center middle; }
    PreferencesScreen > VerticalScroll { width: 80; max-width: 100%; height: 90%; border: round $primary;
        background: $surface; padding: 0 1; }
    PreferencesScreen Label { margin-top: 1; }
    PreferencesScreen Horizontal { height: auto; margin-top: 1; }
    PreferencesScreen Button { margin: 0 1 0 0; }
    """

    def __init__(self, values: dict[str, Any], path: str) -> None:
        super().__init__()
        self.values = values
        self.path = path

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Label(Text(f"Preferences (saved to {self.path})", style="bold"))
            for preference in PREFERENCES:
                value = self.values.get(preference.name, preference.default)
                yield Label(Text(f"{preference.name}: {preference.help}"))
                if isinstance(preference.default, bool):
                    yield Switch(value=bool(value), id=f"pref-{preference.name}")
                elif preference.choices:
                    chosen = str(value) if str(value) in preference.choices else preference.default
                    yield Select([(choice, choice) for choice in preference.choices], value=chosen,
                                 allow_blank=False, id=f"pref-{preference.name}")
                else:
                    yield Input(str(value), id=f"pref-{preference.name}")
            with Horizontal():
                yield Button("Save", variant="primary", id="prefs-save")
                yield Button("Cancel", id="prefs-cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "prefs-save":
            self._save()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._save()

    def _save(self) -> None:
        values: dict[str, Any] = {}
        for preference in PREFERENCES:
            widget = self.query_one(f"#pref-{preference.name}")
            if isinstance(widget, Switch):
                values[preference.name] = widget.value
                continue
            raw = str(widget.value)
            try:
                values[preference.name] = coerce(preference.name, raw)
                if preference.name == "ports":
                    from dicomtui.core.protocol.detect import parse_port_list

                    parse_port_list(raw)
                if preference.name == "columns":
                    from .packet_list import parse_columns

                    parse_columns(raw)
            except ValueError as exc:
                self.app.notify(f"{preference.name}: {exc}", severity="error")
                return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
