"""The ladder diagram of one association: SCU on the left, SCP on the right, one arrow per row.

Rows come from core/model/ladder.py (one per PDU with data-set P-DATA runs collapsed,
or one per DIMSE message; ``m`` switches).  Each row shows the time of its last byte (as the
packet list does), the wait before its first byte and what it took (core/model/ladder.py's
three times, labelled as ``--flow`` labels them).  Enter returns the row's PDU (the app
selects it in the packet list).
"""

from __future__ import annotations

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.model.analysis import Analysis
from dicomtui.core.model.ladder import LAST_BYTE, LEGEND, TOOK, WAIT, arrow, ladder_by_message, ladder_by_pdu, row_times
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

FIXED_COLUMNS = 40  # last byte (11), wait (8), took (8), cell padding and the scrollbar


class LadderScreen(Screen[int | None]):
    BINDINGS = [
        Binding("escape,q,L", "dismiss_none", "Back"),
        Binding("enter", "choose", "Go to PDU"),
        Binding("m", "toggle_level", "PDUs/messages"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    LadderScreen #ladder-title { height: auto; padding: 0 1; background: $panel; }
    LadderScreen DataTable { height: 1fr; }
    """

    def __init__(self, analysis: Analysis, association: int) -> None:
        super().__init__()
        self.analysis = analysis
        self.association = association
        self.level = "pdu"
        self.rows = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="ladder-title")
            yield DataTable(id="ladder-table", cursor_type="row", zebra_stripes=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"Ladder A{self.association}"
        self._fill()

    def on_resize(self) -> None:
        self._fill(keep_cursor=True)

    def _fill(self, keep_cursor: bool = False) -> None:
        analysis = self.analysis
        association = analysis.associations[self.association]
        connection = analysis.connections[association.connection]
        table = self.query_one(DataTable)
        cursor = table.cursor_row if keep_cursor else 0
        self.rows = ladder_by_message(analysis, self.association) if self.level == "message" else \
            ladder_by_pdu(analysis, self.association)
        lane = max(24, self.size.width - FIXED_COLUMNS)
        table.clear(columns=True)
        half = lane // 2
        scu = safe_text(f"SCU {association.calling_ae.strip() or '?'}")[:half]
        scp = safe_text(f"SCP {association.called_ae.strip() or '?'}")[: lane - half]
        table.add_column(LAST_BYTE, key="time")
        table.add_column(WAIT, key="delta")
        table.add_column(TOOK, key="took")
        table.add_column(scu.ljust(half) + scp.rjust(lane - half), key="arrow", width=lane)
        for row in self.rows:
            style = "" if row.direction == 0 else "italic"
            last_byte, wait, took = row_times(analysis, row)
            table.add_row(Text(last_byte, justify="right"), Text(wait, justify="right"), Text(took, justify="right"),
                          Text(arrow(safe_text(row.label), row.direction, lane), style=style))
        self.query_one("#ladder-title", Static).update(Text(
            f"A{self.association} {safe_text(connection.client)} -> {safe_text(connection.server)}: "
            f"{len(self.rows)} rows, one per {'DIMSE message' if self.level == 'message' else 'PDU'} "
            "(m switches; Enter goes to the PDU)\n", style="bold") + Text(LEGEND, style="dim"))
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1))
        table.focus()

    def action_toggle_level(self) -> None:
        self.level = "message" if self.level == "pdu" else "pdu"
        self._fill()

    def action_choose(self) -> None:
        table = self.query_one(DataTable)
        if 0 <= table.cursor_row < len(self.rows):
            self.dismiss(self.rows[table.cursor_row].pdu)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()
