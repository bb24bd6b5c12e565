"""Counts in words: "1 association", "2 associations" (a status line is read, not parsed)."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None, separator: str = ",") -> str:
    """``count`` and ``noun``, plural unless the count is one; thousands separated like the rest of the UI."""
    number = f"{count:{separator}}" if separator else str(count)
    return f"{number} {noun if count == 1 else (plural or noun + 's')}"
