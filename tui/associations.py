"""The associations view: every association with peers, timing, end state, contexts and response times.

Associations are few (one per connection at most at a time), so a DataTable
is fine here.  Choosing one (Enter) returns its number; the app filters the
packet list to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.base.time_format import milliseconds
from dicomtui.core.base.uids import uid_label
from dicomtui.core.model import Association
from dicomtui.core.model.analysis import Analysis
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

STATE_STYLES = {"released": "green", "established": "", "requested": "yellow", "rejected": "bold red",
                "aborted": "bold red", "incomplete": "yellow"}


@dataclass(slots=True)
class ResponseFigures:
    count: int = 0
    total: float = 0.0
    slowest: float = 0.0
    over_threshold: int = 0

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def text(self) -> str:
        if not self.count:
            return "-"
        return f"{milliseconds(self.mean)}/{milliseconds(self.slowest)} ms"


def response_figures(analysis: Analysis, threshold: float) -> dict[int, ResponseFigures]:
    figures: dict[int, ResponseFigures] = {}
    for message in analysis.messages:
        if message.response_time is None:
            continue
        entry = figures.setdefault(message.association, ResponseFigures())
        entry.count += 1
        entry.total += message.response_time
        entry.slowest = max(entry.slowest, message.response_time)
        if message.response_time > threshold:
            entry.over_threshold += 1
    return figures


def _context_counts(association: Association) -> str:
    accepted = sum(1 for context in association.contexts.values() if context.accepted)
    return f"{accepted}/{len(association.contexts)}"


def association_detail(analysis: Analysis, association: Association, figures: ResponseFigures | None,
                       threshold: float) -> Text:
    connection = analysis.connections[association.connection]
    text = Text()
    text.append(f"A{association.index}  ", style="bold")
    text.append(safe_text(association.calling_ae or "?"))
    text.append(" -> ")
    text.append(safe_text(association.called_ae or "?"))
    text.append(f"   {safe_text(connection.client)} -> {safe_text(connection.server)}\n")
    end = f"{analysis.frame_time(association.end_time):.3f}s" if association.end_time is not None else "open"
    text.append(f"frames {association.first_frame}-{association.last_frame}, "
                f"{analysis.frame_time(association.start_time):.3f}s .. {end}, state ")
    text.append(association.state, style=STATE_STYLES.get(association.state, ""))
    if association.end_reason:
        text.append(f" ({safe_text(association.end_reason)})")
    if association.picked_up_midway:
        text.append("  [picked up midway]", style="yellow")
    text.append("\n")
    if connection.transform:  # inside TLS (or another layer): one line from the transform
        summary = getattr(connection.transform_state, "summary", None)
        text.append(safe_text(summary() if summary else connection.transform) + "\n", style="cyan")
    text.append(f"max PDU {association.requestor_max_pdu} / {association.acceptor_max_pdu}; "
                f"implementations {safe_text(association.requestor_implementation[1] or '?')} / "
                f"{safe_text(association.acceptor_implementation[1] or '?')}; messages {association.message_count}")
    if figures and figures.count:
        text.append(f"; responses {figures.count}, mean {figures.mean * 1000:.1f} ms, slowest "
                    f"{milliseconds(figures.slowest)} ms, {figures.over_threshold} over {threshold:g}s")
    text.append("\nPresentation contexts:\n", style="bold")
    for context in sorted(association.contexts.values(), key=lambda c: c.context_id):
        style = "green" if context.accepted else ("yellow" if context.result is None else "red")
        text.append(f"  {context.context_id:>3} ")
        text.append(f"{context.result_text:<32}", style=style)
        text.append(f" {safe_text(uid_label(context.abstract_syntax) or '?')}")
        if context.transfer_syntax:
            text.append(f"  [{safe_text(uid_label(context.transfer_syntax))}"
                        f"{', guessed' if context.guessed else ''}]", style="dim")
        elif context.proposed_transfer_syntaxes:
            text.append(f"  proposed: {', '.join(safe_text(uid_label(ts)) for ts in context.proposed_transfer_syntaxes)}",
                        style="dim")
        text.append("\n")
    return text


class AssociationsScreen(Screen[int | None]):
    """Lists associations; Enter returns the highlighted one's number, Escape returns None."""

    BINDINGS = [
        Binding("escape,q,a", "dismiss_none", "Back"),
        Binding("enter", "choose", "Filter packets to it"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    AssociationsScreen DataTable { height: 1fr; min-height: 4; }
    AssociationsScreen #association-detail { height: auto; max-height: 50%; overflow-y: auto;
        border-top: solid $primary; padding: 0 1; }
    """

    def __init__(self, analysis: Analysis, threshold: float) -> None:
        super().__init__()
        self.analysis = analysis
        self.threshold = threshold
        self.figures = response_figures(analysis, threshold)
        self.shown: list[Association] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DataTable(id="association-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="association-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Associations"
        table = self.query_one(DataTable)
        # The most telling columns first: at 80 columns the addresses and times scroll off to the right.
        table.add_columns("ID", "Calling -> Called", "State", "Msgs", "Resp avg/max", "Ctx", "Start", "End",
                          "Client", "Server")
        self.fill_rows()
        table.focus()

    # A day at a PACS port lists ten thousand associations, and DataTable measures every cell it
    # is given (~0.6 ms a row): the first rows are added before the screen shows, the rest in
    # slices between refreshes, so the view opens at once and fills while the user reads.
    FIRST_ROWS = 300
    SLICE_ROWS = 1000

    def fill_rows(self) -> None:
        """(Re)list the associations: at mount, and as a live capture goes on."""
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        self._fill_generation = getattr(self, "_fill_generation", 0) + 1
        self.shown = []
        pending = list(self.analysis.associations)  # live retention may have dropped the oldest: rows != ids
        self._add_rows(pending, 0, self.FIRST_ROWS, self._fill_generation, row)

    def _add_rows(self, pending: list[Association], start: int, count: int, generation: int, row: int) -> None:
        if generation != self._fill_generation:
            return  # a newer fill (live capture) took over
        try:
            table = self.query_one(DataTable)
        except NoMatches:
            return  # the screen was closed while filling

        analysis = self.analysis
        end = min(len(pending), start + count)
        for association in pending[start:end]:
            try:
                connection = analysis.connections[association.connection]
            except IndexError:
                continue
            self.shown.append(association)
            end_time = f"{analysis.frame_time(association.end_time):.3f}" if association.end_time is not None else "-"
            figures = self.figures.get(association.index)
            table.add_row(
                Text(f"A{association.index}"),
                Text(f"{safe_text(association.calling_ae or '?')} -> {safe_text(association.called_ae or '?')}"),
                Text(association.state, style=STATE_STYLES.get(association.state, "")),
                Text(str(association.message_count)),
                Text(figures.text() if figures else "-"),
                Text(_context_counts(association)),
                Text(f"{analysis.frame_time(association.start_time):.3f}"),
                Text(end_time),
                Text(safe_text(connection.client)),
                Text(safe_text(connection.server)),
                key=str(association.index),
            )
        if start == 0 or row >= start:
            if self.shown:
                if row < len(self.shown) or end == len(pending):
                    table.move_cursor(row=min(max(row, 0), len(self.shown) - 1))
                    self._show_detail(table.cursor_row)
            elif end == len(pending):
                self.query_one("#association-detail", Static).update(Text("No associations in this capture."))
        if end < len(pending):
            self.call_after_refresh(self._add_rows, pending, end, self.SLICE_ROWS, generation, row)

    def _show_detail(self, row: int) -> None:
        if not 0 <= row < len(self.shown):
            return
        association = self.shown[row]
        self.query_one("#association-detail", Static).update(
            association_detail(self.analysis, association, self.figures.get(association.index), self.threshold))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.shown):
            self.dismiss(self.shown[event.cursor_row].index)

    def action_choose(self) -> None:
        table = self.query_one(DataTable)
        if 0 <= table.cursor_row < len(self.shown):
            self.dismiss(self.shown[table.cursor_row].index)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()
