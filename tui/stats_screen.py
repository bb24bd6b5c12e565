"""The statistics screen: where the time went, response-time tables, throughput, TCP (docs/timing.md).

One sortable table at a time (keys 1-6 switch, ``s`` sorts by the column
under the cursor, again to reverse; a header click does the same).  The
figures are core/model/timing.py's, as ``dicomtui --stats`` prints them.  Enter on
an association row returns its number (the app opens its ladder diagram).
"""

from __future__ import annotations

from typing import Any, Callable

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.base.time_format import milliseconds
from dicomtui.core.model.analysis import Analysis
from dicomtui.core.model.timing import BUDGET, BUDGET_LABELS, timing_report
from dicomtui.core.views.timing import untimed_associations_text
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

Row = tuple[list[Any], int | None]  # cell values (sortable), association number or None


def _ms(value: float | None) -> str:
    return milliseconds(value)


def _rate(value: float | None) -> str:
    return "not measured" if value is None else f"{value:,.0f}"  # too few bytes or too short (docs/timing.md)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _percent(value: float) -> str:
    return f"{value:.0%}"


class Table:
    """One of the screen's tables: columns (title, formatter) and rows of raw values."""

    def __init__(self, title: str, columns: list[tuple[str, Callable[[Any], str]]], rows: list[Row]) -> None:
        self.title = title
        self.columns = columns
        self.rows = rows


def build_tables(analysis: Analysis) -> list[Table]:
    report = timing_report(analysis)
    text = str
    tables = [Table("Causes (largest first)",
                    [("Cause", text), ("Seconds", _seconds), ("Share", _percent), ("Detail", text)],
                    [([cause.label, cause.seconds, cause.share, cause.detail],
                      cause.associations[0] if cause.associations else None) for cause in report.causes])]
    rows = []
    for item in report.associations:
        association = analysis.associations[item.association]
        shares = item.shares()
        rows.append(([f"A{item.association}", safe_text(f"{association.calling_ae.strip() or '?'}->"
                                                          f"{association.called_ae.strip() or '?'}"),
                      item.duration, *(shares[name] for name in BUDGET), item.objects,
                      item.throughput(0), item.throughput(1)], item.association))
    tables.append(Table("Time budget per association (shares of its duration)",
                        [("ID", text), ("AEs", text), ("Seconds", _seconds),
                         *((BUDGET_LABELS[name], _percent) for name in BUDGET), ("Objects", text),
                         ("SCU->SCP B/s", _rate), ("SCP->SCU B/s", _rate)], rows))
    for name, title in (("command", "Command"), ("sop_class", "Command and SOP class"), ("ae_pair", "AE pair")):
        # Answered requests ending in a frame without a time (pcapng simple packet blocks): a column of
        # their own, only when there are any.
        untimed = any(row.untimed for row in report.srt[name])
        rows = []
        for row in report.srt[name]:
            figures = row.figures()
            rows.append(([safe_text(row.key), figures["count"], figures["min"], figures["mean"], figures["median"],
                          figures["p95"], figures["max"], figures["failures"], figures["unanswered"],
                          *((figures["untimed"],) if untimed else ())], None))
        tables.append(Table(f"Response times by {title.lower()} (ms, request complete -> response complete)",
                            [(title, text), ("Count", text), ("Min", _ms), ("Mean", _ms), ("Median", _ms),
                             ("p95", _ms), ("Max", _ms), ("Fail", text), ("No answer", text),
                             *((("No time", text),) if untimed else ())], rows))
    rows = []
    for tcp in report.connections:
        connection = analysis.connections[tcp.connection]
        association = analysis.relations.first_association_on(tcp.connection)
        for figures in tcp.directions:
            sender = connection.client if figures.direction == 0 else connection.server
            rows.append(([f"C{tcp.connection} {safe_text(sender)}", tcp.handshake_rtt, figures.rtt_min,
                          figures.resent, figures.out_of_order, figures.retransmission_seconds, figures.zero_windows,
                          figures.window_full, figures.stall_seconds("window"), figures.stall_seconds("nagle"),
                          figures.throughput], association))
    tables.append(Table("TCP per connection and sender (RTT in ms)",
                        [("Sender", text), ("Handshake", _ms), ("ACK RTT min", _ms), ("Resent", text),
                         ("Out of order", text), ("Resend s", _seconds), ("Zero win", text), ("Win full", text), ("Window s", _seconds),
                         ("Nagle s", _seconds), ("B/s", _rate)], rows))
    return tables


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


class StatsScreen(Screen[int | None]):
    """Returns an association number (Enter on a row that has one) or None."""

    BINDINGS = [
        Binding("escape,q,t", "dismiss_none", "Back"),
        Binding("1", "show(0)", "Causes"),
        Binding("2", "show(1)", "Budget"),
        Binding("3", "show(2)", "By command"),
        Binding("4", "show(3)", "By SOP", show=False),
        Binding("5", "show(4)", "By AEs", show=False),
        Binding("6", "show(5)", "TCP"),
        Binding("s", "sort", "Sort"),
        Binding("enter", "choose", "Ladder"),
    ]

    DEFAULT_CSS = """
    StatsScreen #stats-title { height: auto; padding: 0 1; background: $panel; }
    StatsScreen DataTable { height: 1fr; }
    StatsScreen #stats-summary { height: auto; max-height: 6; padding: 0 1; border-top: solid $primary; }
    """

    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        self.analysis = analysis
        self.tables = build_tables(analysis)
        self.current = 0
        self.sorted_by: tuple[int, bool] | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="stats-title")
            yield DataTable(id="stats-table", cursor_type="cell", zebra_stripes=True)
            yield Static(id="stats-summary")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Statistics"
        report = timing_report(self.analysis)
        summary = Text()
        if report.causes:
            top = report.causes[0]
            summary.append("Dominant cause: ", style="bold")
            summary.append(f"{top.label}, {top.seconds:.3f} s ({top.share:.0%} of {report.total_seconds:.3f} s)\n")
            summary.append(top.advice)
        elif not report.untimed_associations:
            summary.append("No association with timing in this capture.")
        if report.untimed_associations:
            summary.append(("\n" if report.causes else "") + untimed_associations_text(report.untimed_associations) + ".")
        self.query_one("#stats-summary", Static).update(summary)
        self.action_show(0)

    def action_show(self, number: int) -> None:
        self.current = number
        self.sorted_by = None
        self._fill()

    def _fill(self) -> None:
        table_model = self.tables[self.current]
        widget = self.query_one(DataTable)
        widget.clear(columns=True)
        widget.add_columns(*(title for title, _format in table_model.columns))
        rows = list(table_model.rows)
        if self.sorted_by is not None:
            column, reverse = self.sorted_by
            rows.sort(key=lambda row: _sort_key(row[0][column]), reverse=reverse)
        self.shown = rows
        for values, _association in rows:
            widget.add_row(*(Text(formatter(value) if value is not None else "-")
                             for value, (_title, formatter) in zip(values, table_model.columns)))
        arrow = ""
        if self.sorted_by is not None:
            arrow = f"  sorted by {table_model.columns[self.sorted_by[0]][0]}" + (
                " (descending)" if self.sorted_by[1] else "")
        self.query_one("#stats-title", Static).update(
            Text(f"[{self.current + 1}/{len(self.tables)}] {table_model.title}{arrow}", style="bold"))
        widget.focus()

    def action_sort(self, column: int | None = None) -> None:
        widget = self.query_one(DataTable)
        column = widget.cursor_column if column is None else column
        reverse = not self.sorted_by[1] if self.sorted_by and self.sorted_by[0] == column else column > 0
        self.sorted_by = (column, reverse)
        self._fill()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.action_sort(event.column_index)

    def action_choose(self) -> None:
        widget = self.query_one(DataTable)
        if 0 <= widget.cursor_row < len(self.shown):
            association = self.shown[widget.cursor_row][1]
            if association is not None:
                self.dismiss(association)

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        self.action_choose()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
