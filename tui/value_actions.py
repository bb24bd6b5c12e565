"""``v`` (the selected value in full) and ``y`` / ``Y`` (copy it, or a node with its subtree)."""

from __future__ import annotations


class ValueActions:
    """A helper of the app: what the focused pane's cursor is on, as text, shown or copied."""

    def __init__(self, app) -> None:
        self.app = app

    def focused(self, subtree: bool = False) -> tuple[str, str] | None:
        """(title, full text) of what the focused pane's cursor is on."""
        focused = self.app.focused
        if focused is self.app.detail_tree:
            node = self.app.detail_tree.cursor_node
            data = node.data if node is not None else None
            from .detail_tree import NodeData

            if isinstance(data, NodeData):
                field = data.field
                if subtree:
                    return field.label, field.render_text()
                text = f"{field.label}: {field.value}" if field.value else field.label
                return field.label, text + (f"\n[{field.problem}]" if field.problem else "")
        if focused is self.app.expert_pane:
            node = self.app.expert_pane.cursor_node
            item = node.data if node is not None else None
            if item is not None and hasattr(item, "message"):
                where = f"frame {item.frame}" if item.frame else "capture"
                return f"{item.severity.label} ({where})", item.message
        # anything else (the packet list, a group heading, the bytes pane): the selected row
        pdu = self.app.packet_list.selected_pdu
        if pdu is None or self.app.index is None:
            return None
        values = self.app.packet_list.cell_values(pdu, self.app.packet_list.cursor)
        from .packet_list import COLUMNS

        # The list's "*" mark is not part of the number: say it in words, so a pasted "No." is a number.
        values["no"] = str(pdu + 1)
        lines = [f"{COLUMNS[name][0][2]}: {values[name]}" for name in COLUMNS]
        if pdu in self.app.packet_list.marked:
            lines.append("Marked: yes")
        return f"PDU {pdu + 1}", "\n".join(lines)

    def show(self) -> None:
        from .value_screen import ValueScreen

        found = self.focused()
        if found is None:
            self.app.notify("Nothing selected to show")
            return
        self.app.push_screen(ValueScreen(*found))

    def copy(self, subtree: bool = False) -> None:
        found = self.focused(subtree)
        if found is None:
            self.app.notify("Nothing selected to copy")
            return
        self.copy_text(found[1], ("subtree of " if subtree else "") + found[0])

    def copy_text(self, text: str, what: str) -> None:
        from .clipboard import copy_text

        mode = str(self.app.config.options.get("copy_to") or "both")
        self.app.notify(str(copy_text(self.app, text, what, mode)), timeout=4)
