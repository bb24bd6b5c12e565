"""Preferences: a flat TOML file in the XDG config folder, read by the CLI and the TUI.

``$XDG_CONFIG_HOME/dicomtui/config.toml`` (``~/.config/dicomtui/config.toml``
when the variable is unset).  Keys are the same names ``-o name:value`` takes;
command-line values win over the file.  Only flat keys exist, so the file is
written by hand (strings, integers, floats, booleans) and read with tomllib.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any


class PreferencesError(ValueError):
    """The preferences file exists but cannot be read as TOML."""


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "dicomtui" / "config.toml"


def load_preferences(path: Path | None = None) -> dict[str, Any]:
    """name -> value from the preferences file; {} when there is none.

    Raises PreferencesError when the file exists but is not valid TOML.
    """
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise PreferencesError(f"{path}: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError as exc:
        raise PreferencesError(f"{path}: {exc}") from None
    return {str(key): value for key, value in document.items()
            if isinstance(value, (str, int, float, bool))}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    escaped = "".join(
        {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch)
        if ch >= " " or ch in "\n\t\r" else f"\\u{ord(ch):04x}"
        for ch in text)
    return f'"{escaped}"'


def save_preferences(values: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``values`` (flat) as TOML, atomically; returns the path written."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# dicomtui preferences (same names as -o name:value)"]
    for name in sorted(values):
        if not name.replace("_", "").replace("-", "").isalnum():
            continue
        lines.append(f"{name} = {_toml_value(values[name])}")
    temporary = path.with_suffix(".toml.tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path

toml_value = _toml_value  # the one TOML writer of a value, for messages that quote a value as the file has it
