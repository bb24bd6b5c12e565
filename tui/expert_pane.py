"""The expert pane: findings grouped by severity with counts; choosing one jumps to its PDU.

A capture with a million PDUs can have a finding per message, so each
severity shows at most ``MAX_SHOWN`` items (``e``/``E`` in the packet list walk
through all of them).
"""

from __future__ import annotations

from dicomtui.core.model import ExpertItem, Severity
from dicomtui.core.base.safe_text import safe_text
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree

MAX_SHOWN = 2000
SEVERITY_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.NOTE: "cyan",
                   Severity.CHAT: "dim"}


def counts_text(items: list[ExpertItem]) -> str:
    counts = {severity: 0 for severity in Severity}
    for item in items:
        counts[item.severity] += 1
    parts = [f"{counts[severity]} {severity.label}{'s' if counts[severity] != 1 else ''}"
             for severity in sorted(Severity, reverse=True) if counts[severity]]
    return ", ".join(parts) or "no findings"


def item_label(item: ExpertItem) -> Text:
    text = Text()
    where = f"frame {item.frame}" if item.frame else "capture"
    text.append(f"{where:<12}", style="dim")
    if item.association is not None:
        text.append(f"A{item.association:<4}", style="dim")
    text.append(f"{item.group.value}: ", style="bold")
    text.append(safe_text(item.message))
    return text


class ExpertPane(Tree):
    # No horizontal scrollbar: the pane sits right above the status line, and a scrollbar's thumb
    # is drawn with partial-block glyphs that read as a stray "▌" there (over SSH, in terminals
    # with few colours).  Long findings still scroll with the arrow keys; F and Enter show them whole.
    DEFAULT_CSS = """
    ExpertPane { height: 1fr; scrollbar-size-horizontal: 0; }
    """

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class Jump(Message):
        def __init__(self, item: ExpertItem) -> None:
            super().__init__()
            self.item = item

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Expert", id=id)
        self.show_root = False
        self.items: list[ExpertItem] = []

    def show_items(self, items: list[ExpertItem]) -> None:
        self.items = items
        self.clear()
        self.border_title = f"Expert: {counts_text(items)}"
        by_severity: dict[Severity, list[ExpertItem]] = {}
        for item in items:
            by_severity.setdefault(item.severity, []).append(item)
        for severity in sorted(by_severity, reverse=True):
            group = by_severity[severity]
            title = Text(f"{severity.label.capitalize()} ({len(group)})", style=SEVERITY_STYLES[severity])
            node = self.root.add(title, expand=severity >= Severity.WARNING)
            for item in group[:MAX_SHOWN]:
                node.add_leaf(item_label(item), data=item)
            if len(group) > MAX_SHOWN:
                node.add_leaf(Text(f"… {len(group) - MAX_SHOWN} more (e / E walk all)", style="italic"))
        if not items:
            self.root.add_leaf(Text("No expert findings", style="italic"))
        self.root.expand()

    def select_item(self, item: ExpertItem) -> bool:
        """Open the item's group and put the cursor on it (without jumping to its PDU)."""
        for group in self.root.children:
            for node in group.children:
                if node.data is item:
                    group.expand()
                    self.move_cursor(node)
                    return True
        return False

    def show_loading(self, text: str) -> None:
        self.clear()
        self.border_title = "Expert"
        self.root.add_leaf(Text(text, style="italic"))

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        event.stop()
        if isinstance(event.node.data, ExpertItem):
            self.post_message(self.Jump(event.node.data))
