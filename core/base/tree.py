"""Display trees: what a decoder says about each byte range, for the detail and bytes panes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    """A labelled byte range with its value as text and optional children.

    ``offset`` is relative to the start of the PDU (header included) the field
    belongs to; ``problem`` marks a field a decoder found malformed.
    """

    label: str
    value: str = ""
    offset: int = 0
    length: int = 0
    children: tuple["Field", ...] = ()
    problem: str = ""

    def walk(self, depth: int = 0):
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def shifted(self, delta: int) -> "Field":
        return Field(
            self.label,
            self.value,
            self.offset + delta,
            self.length,
            tuple(child.shifted(delta) for child in self.children),
            self.problem,
        )

    def render_text(self) -> str:
        """Indented plain text, used by headless output and tests."""
        lines = []
        for depth, field in self.walk():
            text = f"{field.label}: {field.value}" if field.value else field.label
            if field.problem:
                text += f"  [{field.problem}]"
            lines.append("  " * depth + text)
        return "\n".join(lines)
