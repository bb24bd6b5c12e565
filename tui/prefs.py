"""Preferences the TUI's form offers, with their defaults, help and type coercion.

The file itself (``$XDG_CONFIG_HOME/dicomtui/config.toml``) is read and
written by ``dicomtui.core.base.settings``, which the command line reads too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dicomtui.core.base.settings import (  # noqa: F401  (the TUI's file access)
    PreferencesError,
    config_path,
    load_preferences,
    save_preferences,
)


@dataclass(frozen=True, slots=True)
class Preference:
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()


PREFERENCES: tuple[Preference, ...] = (
    Preference("ports", "104,11112", "DICOM ports and ranges, e.g. 104,11112,50000-50010 (reload to apply)"),
    Preference("heuristic", True, "also look for DICOM on other ports (reload to apply)"),
    Preference("subtree_style", "nested", "data set sequences as subtrees (nested) or one flat list (flat)",
               ("nested", "flat")),
    Preference("export_min_size", 0, "export only data sets of at least this many bytes"),
    Preference("export_meta_header", True, "write a Part 10 meta header on exported objects"),
    Preference("slow_response_seconds", 5.0, "responses slower than this are flagged (reload to apply)"),
)
PREFERENCE_NAMES = {preference.name: preference for preference in PREFERENCES}


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
        value = int(text)
        if value < 0:
            raise ValueError(f"{name}: must not be negative")
        return value
    if isinstance(default, float):
        value = float(text)
        if value < 0:
            raise ValueError(f"{name}: must not be negative")
        return value
    if preference and preference.choices and text not in preference.choices:
        raise ValueError(f"{name}: one of {', '.join(preference.choices)}")
    return text
