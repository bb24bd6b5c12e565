"""Text from a capture, made safe to print on a terminal.

AE titles, UIDs and values come from the wire: they may hold escape sequences
or control characters.  Everything that reaches a terminal goes through
``safe_text``, which shows such characters as visible escapes (``\\x1b``).
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str) -> str:
    return _UNSAFE.sub(_escape, text)


# In JSON text the encoder already escapes C0 controls inside strings (``\u001b``), and the only
# raw C0 bytes left are the layout's newlines; DEL, C1 controls, line separators and bidi
# overrides pass through as they are.  They can only sit inside strings, where ``\uXXXX`` is
# the same value to any JSON reader.
_UNSAFE_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe_json(document, **options) -> str:
    """``json.dumps(document, **options)`` that is also safe to ``cat`` on a terminal.

    Values stay exact for JSON readers: unsafe characters become ``\\uXXXX`` escapes.
    """
    import json

    return safe_json_text(json.dumps(document, **options))


def safe_json_text(text: str) -> str:
    """JSON text (whole, or any piece of it) with ``safe_json``'s escapes applied.

    The substitution is per character, so escaping pieces one by one (a streamed
    document) gives the same bytes as escaping the whole.
    """
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


def _json_escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"
