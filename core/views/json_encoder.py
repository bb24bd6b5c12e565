"""``json.dumps(value, indent=1)``'s bytes, faster, one value at a time.

The document of a large capture holds millions of small dicts; the json module
cannot use its C encoder when indenting, so its pure-Python path would cost more
than the analysis.  These functions write the same bytes (tests compare them).
"""

from __future__ import annotations

import json
from typing import Any

_encode_string = json.encoder.encode_basestring_ascii  # the C function json.dump uses (ensure_ascii)
_INFINITY = float("inf")


def _encode_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def _encode_key(key: Any) -> str:
    if isinstance(key, str):
        return _encode_string(key)
    if key is True or key is False or key is None:
        return _encode_string(json.dumps(key))
    if isinstance(key, int):
        return _encode_string(int.__repr__(key))
    if isinstance(key, float):
        return _encode_string(_encode_float(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def encode_indented(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(value, indent=1)`` writes it at nesting ``level`` (same bytes)."""
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        return scalar(value)
    return _encode_other(value, level)


def _encode_other(value: Any, level: int) -> str:
    if isinstance(value, str):
        return _encode_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _encode_float(value)
    inner = "\n" + " " * (level + 1)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[" + ",".join(inner + encode_indented(item, level + 1) for item in value) + "\n" + " " * level + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for key, item in value.items():
            prefix = _KEY_PREFIXES.get(key) if type(key) is str else None
            if prefix is None:
                prefix = _encode_key(key) + ": "
                if type(key) is str and len(_KEY_PREFIXES) < 4096:
                    _KEY_PREFIXES[key] = prefix
            scalar = _SCALARS.get(type(item))
            parts.append(inner + prefix + (scalar(item) if scalar is not None else _encode_other(item, level + 1)))
        return "{" + ",".join(parts) + "\n" + " " * level + "}"
    return json.dumps(value)  # raises TypeError for what JSON cannot hold, as json.dump would


# Exact types only (a subclass, e.g. an IntEnum, takes the isinstance path as json does).
_SCALARS = {
    str: _encode_string,
    int: int.__repr__,
    float: _encode_float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _value: "null",
}
_KEY_PREFIXES: dict[str, str] = {}  # '"key": ' for the keys the documents repeat (bounded)

