"""The preferences: their names, defaults, help, types and checks, shared by the CLI and the TUI.

The file itself (``$XDG_CONFIG_HOME/dicomtui/config.toml``) is read and
written by ``dicomtui.core.base.settings``.  Here each known key is typed and
checked, so a bad value in the file is one warning naming the file, key and
value (the default applies), and every reader gets a typed value
(``preference(options, name)``) instead of converting strings itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomtui.core.base.settings import PreferencesError, config_path, load_preferences
from dicomtui.core.base.settings import toml_value as _toml_value
from dicomtui.core.protocol.detect import DEFAULT_PORTS, parse_port_list

# The packet list's columns (tui.packet_list lays them out; the names are checked here).
COLUMN_NAMES = ("no", "time", "source", "destination", "assoc", "type", "length", "frames", "info")


def parse_columns(text: str) -> tuple[str, ...]:
    """A ``columns`` preference ("no,time,info") as column names; raises ValueError on unknown names."""
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in COLUMN_NAMES]
    if unknown or not names:
        raise ValueError(f"columns: unknown {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(COLUMN_NAMES)}")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class Preference:
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()


PREFERENCES: tuple[Preference, ...] = (
    Preference("ports", DEFAULT_PORTS, "DICOM ports and ranges, e.g. 104,11112,50000-50010 (reload to apply)"),
    Preference("heuristic", True, "also look for DICOM on other ports (reload to apply)"),
    Preference("subtree_style", "nested", "data set sequences as subtrees (nested) or one flat list (flat)",
               ("nested", "flat")),
    Preference("export_min_size", 0, "export only data sets of at least this many bytes"),
    Preference("export_meta_header", True, "write a Part 10 meta header on exported objects"),
    Preference("slow_response_seconds", 5.0, "responses slower than this are flagged (reload to apply)"),
    Preference("time_format", "r", "time column: r since first frame, a / ad absolute local, u / ud UTC, "
               "e epoch, d since previous PDU, dd since previous row (as tshark -t; T cycles)",
               ("r", "a", "ad", "u", "ud", "e", "d", "dd")),
    Preference("columns", "no,time,source,destination,assoc,type,info",
               "packet list columns in order (no, time, source, destination, assoc, type, length, frames, "
               "info); c opens the chooser"),
    Preference("validate", False, "dciodvfy/dcentvfy on every stored object on opening (reload to apply; "
               "needs the validate extra: pip install '.[validate]' in the checkout; V checks one object either way)"),
    Preference("copy_to", "both", "y / Y copy to: osc52 (terminal clipboard), file, or both",
               ("both", "osc52", "file")),
)
PREFERENCE_NAMES = {preference.name: preference for preference in PREFERENCES}


def check_preferences(values: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """``values`` with every known preference converted to its type; a bad value is dropped
    (its default applies) and named in one warning: ``source: key = value: reason; default used``.

    Unknown keys pass unchanged (they may be rule options, ``-o`` names of plugins).
    """
    checked: dict[str, Any] = {}
    warnings: list[str] = []
    for name, value in values.items():
        if name not in PREFERENCE_NAMES:
            checked[name] = value
            continue
        try:
            typed = coerce(name, _toml_value(value) if isinstance(value, bool) else str(value))
            if name == "ports":
                parse_port_list(str(value))
            if name == "columns":
                parse_columns(str(value))
            checked[name] = typed
        except ValueError as exc:
            reason = str(exc).removeprefix(f"{name}: ")
            default = PREFERENCE_NAMES[name].default
            warnings.append(f"{source}: {name} = {_toml_value(value)}: {reason}; "
                            f"the default ({_toml_value(default)}) is used")
    return checked, warnings


def load_checked_preferences(path: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """The preferences file, validated: (values, warnings).  Never raises."""
    path = path or config_path()
    try:
        values = load_preferences(path)
    except PreferencesError as exc:
        if not os.access(path, os.R_OK):  # unreadable (permissions): as before, defaults without a word
            return {}, []
        return {}, [f"{exc}; preferences file ignored, defaults used"]
    return check_preferences(values, str(path))


def preference(options: dict[str, Any], name: str) -> Any:
    """A known preference from merged options, typed; the default when absent or invalid."""
    default = PREFERENCE_NAMES[name].default
    value = options.get(name)
    if value is None:
        return default
    try:
        return coerce(name, _toml_value(value) if isinstance(value, bool) else str(value))
    except ValueError:
        return default


def coerce(name: str, text: str) -> Any:
    """A preference value typed in the UI or given with -o, converted to the default's type."""
    preference = PREFERENCE_NAMES.get(name)
    default = preference.default if preference else ""
    text = text.strip()
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true or false, got {text!r}")
    if isinstance(default, int):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{name}: expected a whole number, got {text!r}") from None
        if value < 0:
            raise ValueError(f"{name}: must not be negative")
        return value
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name}: expected a number of seconds, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{name}: expected a finite number, got {text!r}")
        if value < 0:
            raise ValueError(f"{name}: must not be negative")
        return value
    if preference and preference.choices and text not in preference.choices:
        raise ValueError(f"{name}: expected one of {', '.join(preference.choices)}, got {text!r}")
    return text
