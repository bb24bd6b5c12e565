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
