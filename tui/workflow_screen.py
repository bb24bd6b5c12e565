"""The workflow view: per study / accession, scheduled -> performed -> stored -> committed.

The rows are ``core.views.workflow.workflow_rows`` (the same as ``--workflow`` prints); a
group's header row names the study, accession or commitment, its stages follow with their
time since the first frame and the associations involved.  The highlighted row is shown in
full below the table (it wraps at 80 columns).  Enter returns the row's message index (the
app puts the packet list on that message's first PDU); Escape returns None.
"""

from __future__ import annotations

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.model.analysis import Analysis
from dicomtui.core.views.workflow import WorkflowRow, workflow_rows
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

STAGE_STYLES = {"scheduled": "cyan", "performed": "magenta", "stored": "blue", "committed": "green"}


class WorkflowScreen(Screen[int | None]):
    """Lists the workflow rows; Enter returns the highlighted row's message index."""

    BINDINGS = [
        Binding("escape,q,W", "dismiss_none", "Back"),
        Binding("enter", "choose", "Go to message"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    WorkflowScreen DataTable { height: 1fr; min-height: 4; }
    WorkflowScreen #workflow-detail { height: auto; max-height: 40%; overflow-y: auto;
        border-top: solid $primary; padding: 0 1; }
    """

    FIRST_ROWS = 300
    SLICE_ROWS = 1000

    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        self.analysis = analysis
        self.rows: list[WorkflowRow] = []
        self.shown: list[WorkflowRow] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DataTable(id="workflow-table", cursor_type="row")
            yield Static(id="workflow-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Workflow: scheduled → performed → stored → committed"
        table = self.query_one(DataTable)
        table.add_columns("Stage", "Time", "", "What")
        self.rows = workflow_rows(self.analysis)
        if not self.rows:
            self.query_one("#workflow-detail", Static).update(Text(
                "No storage commitment, procedure step or worklist query in this capture."))
        self._add_rows(0, self.FIRST_ROWS)
        table.focus()

    def _add_rows(self, start: int, count: int) -> None:
        try:
            table = self.query_one(DataTable)
        except NoMatches:
            return  # closed while filling
        end = min(len(self.rows), start + count)
        for number, row in enumerate(self.rows[start:end], start):
            self.shown.append(row)
            if not row.stage:
                table.add_row(Text(""), Text(""), Text(""), Text(safe_text(row.text), style="bold"),
                              key=str(number))
                continue
            table.add_row(
                Text(row.stage, style=STAGE_STYLES.get(row.stage, "")),
                Text(f"{row.time:.3f}" if row.time is not None else ""),
                Text("!" if row.problem else "", style="bold red"),
                Text(safe_text(row.text), style="red" if row.problem else ""),
                key=str(number))
        if start == 0 and self.shown:
            self._show_detail(0)
        if end < len(self.rows):
            self.call_after_refresh(self._add_rows, end, self.SLICE_ROWS)

    def _show_detail(self, row_number: int) -> None:
        if not 0 <= row_number < len(self.shown):
            return
        row = self.shown[row_number]
        text = Text()
        if row.stage:
            text.append(f"{row.stage}  ", style="bold " + STAGE_STYLES.get(row.stage, ""))
        text.append(safe_text(row.text))
        if row.message is not None and row.message < len(self.analysis.messages):
            message = self.analysis.messages[row.message]
            text.append(f"\nEnter: go to {message.command_name or 'the message'} (frame {message.first_frame}, "
                        f"association A{message.association})", style="dim")
        self.query_one("#workflow-detail", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._choose(event.cursor_row)

    def action_choose(self) -> None:
        self._choose(self.query_one(DataTable).cursor_row)

    def _choose(self, row_number: int) -> None:
        if not 0 <= row_number < len(self.shown):
            return
        row = self.shown[row_number]
        if row.message is None:  # a group's header: its first stage's message
            row = next((later for later in self.shown[row_number + 1:] if later.group == row.group
                        and later.message is not None), row)
        if row.message is not None:
            self.dismiss(row.message)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()
