"""Moving the cursor to things: a packet number or frame, an expert finding, related PDUs.

A helper of the app; it only decides *which* PDU to show and asks the packet
list to go there (clearing a filter that hides it).
"""

from __future__ import annotations

import bisect

from dicomtui.core.model import ExpertItem

from .related import findings_of, move_link, partner


class Navigator:
    def __init__(self, app) -> None:
        self.app = app
        self._expert_pdus: list[int] | None = None
        self.history: list[int] = []
        self._partner_steps: dict[int, int] = {}

    def reset(self) -> None:
        self._expert_pdus = None
        self.history: list[int] = []

    def jump(self, pdu: int, note: str = "") -> None:
        """Go to ``pdu`` remembering where we were (backspace returns)."""
        current = self.app.current_pdu
        if current is not None and current != pdu:
            self.history.append(current)
            del self.history[:-64]
        self.select_pdu(pdu)
        if note:
            self.app.notify(str(note), timeout=3)

    def back(self) -> None:
        if not self.history:
            self.app.notify("Nothing to go back to")
            return
        self.select_pdu(self.history.pop())

    def go_to(self, text: str) -> None:
        app = self.app
        if app.analysis is None:
            return
        text = text.strip().lower()
        try:
            pdu = app.index.pdu_for_frame(int(text[1:])) if text.startswith("f") else int(text) - 1
        except ValueError:
            app.notify(f"Not a packet number: {text!r}", severity="error")
            return
        if pdu is None or not 0 <= pdu < len(app.analysis.pdus):
            app.notify(f"No packet {text}", severity="error")
            return
        self.select_pdu(pdu)

    def select_pdu(self, pdu: int) -> None:
        """Put the cursor on PDU ``pdu``, clearing the filter if it hides it."""
        app = self.app
        packets = app.packet_list
        row = packets.row_of(pdu)
        if row is None and app.filtering.display_filter is not None:
            app.notify("The filter hid that packet: filter cleared")
            app.filtering.clear(keep_pdu=pdu)
            row = packets.row_of(pdu)
        if row is not None:
            packets.cursor_to(row)
            packets.focus()

    # -- expert findings -------------------------------------------------------------------

    def expert_pdu(self, item: ExpertItem) -> int | None:
        app = self.app
        if app.analysis is None:
            return None
        if item.pdu is not None and 0 <= item.pdu < len(app.analysis.pdus):
            return item.pdu
        if not item.frame:
            return None
        found = app.index.pdu_for_frame(item.frame)
        if item.rule == "tcp-gap" and found is not None:
            # The gap is reported at the frame where it was noticed (often an ACK or the next
            # segment): the PDU it damaged is the incomplete one of that association at or before it.
            damaged = self._damaged_pdu(item, found)
            if damaged is not None:
                return damaged
        return found

    def _damaged_pdu(self, item: ExpertItem, near: int) -> int | None:
        pdus = self.app.analysis.pdus
        for position in range(min(near, len(pdus) - 1), max(-1, near - 256), -1):
            pdu = pdus[position]
            if item.association is not None and pdu.association != item.association:
                continue
            if not pdu.complete and pdu.first_frame <= item.frame:
                return position
        return None

    def jump_to_finding(self, item: ExpertItem) -> None:
        pdu = self.expert_pdu(item)
        if pdu is None:
            self.app.notify("This finding is about the whole capture, not one packet")
            return
        self.select_pdu(pdu)

    def expert_step(self, forward: bool = True) -> None:
        app = self.app
        analysis = app.analysis
        if analysis is None or not analysis.finished:
            app.notify("Expert findings are ready when indexing completes")
            return
        if self._expert_pdus is None:
            self._expert_pdus = sorted({pdu for pdu in (self.expert_pdu(item) for item in analysis.expert)
                                        if pdu is not None})
        targets = self._expert_pdus
        if not targets:
            app.notify("No expert findings")
            return
        current = app.packet_list.selected_pdu
        current = -1 if current is None else current
        if forward:
            at = bisect.bisect_right(targets, current)
            target = targets[at] if at < len(targets) else targets[0]
        else:
            at = bisect.bisect_left(targets, current) - 1
            target = targets[at] if at >= 0 else targets[-1]
        self.select_pdu(target)
        items = [item for item in analysis.expert if self.expert_pdu(item) == target][:1] \
            if len(analysis.expert) < 50_000 else []
        if items:
            app.notify(f"{items[0].severity.label}: {items[0].message}", timeout=4)


    # -- related PDUs (tui.related says which) --------------------------------------------

    def related(self) -> None:
        """Request -> its response (again: the next one); response -> its request."""
        app = self.app
        pdu = app.current_pdu
        if pdu is None or app.index is None:
            return
        steps = self._partner_steps
        found = partner(app.index, pdu, steps.get(pdu, 0))
        if found is None:
            app.notify("No request or response linked to this PDU")
            return
        steps[pdu] = steps.get(pdu, 0) + 1  # r again from the request: the next response
        self.jump(found[0], f"Went to the {found[1]} (backspace returns)")

    def move_link(self) -> None:
        app = self.app
        pdu = app.current_pdu
        if pdu is None or app.index is None:
            return
        found = move_link(app.index, pdu)
        if found is None:
            app.notify("Not part of a C-MOVE with a linked sub-association")
            return
        self.jump(found[0], f"Went to {found[1]} (backspace returns)")

    def findings(self) -> None:
        app = self.app
        pdu = app.current_pdu
        if pdu is None or app.analysis is None or not app.analysis.finished:
            return
        items = findings_of(app.analysis, pdu, self.expert_pdu)
        if not items:
            app.notify("No expert finding points at this PDU")
            return
        if not app.main_screen.has_class("-expert"):
            app.main_screen.add_class("-expert")
        if app.expert_pane.select_item(items[0]):
            app.expert_pane.focus()
        app.notify(f"{len(items)} finding(s) on PDU {pdu + 1}: {items[0].severity.label}: {items[0].message}",
                    timeout=5)
