"""Plots over time: throughput per direction and response times (textual-plotext).

The series come from core/views/timing.series (PDU bytes by completion time in
up to 120 bins; each response's response time at its completion).  ``a``
switches between the whole capture and the association chosen when the
screen opened.  Plotext draws with characters, so the plots work at 80x24 and
without colour (NO_COLOR): the two throughput series use different markers.
"""

from __future__ import annotations

from dicomtui.core.model.analysis import Analysis
from dicomtui.core.views.timing import series
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot


class PlotsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q,o", "dismiss_none", "Back"),
        Binding("a", "toggle_scope", "Capture/association"),
    ]

    DEFAULT_CSS = """
    PlotsScreen #plots-title { height: 1; padding: 0 1; background: $panel; }
    PlotsScreen PlotextPlot { height: 1fr; min-height: 8; }
    """

    def __init__(self, analysis: Analysis, association: int | None = None) -> None:
        super().__init__()
        self.analysis = analysis
        self.association = association
        self.scoped = association is not None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="plots-title")
            yield PlotextPlot(id="throughput")
            yield PlotextPlot(id="responses")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Plots"
        self._draw()

    def _draw(self) -> None:
        analysis = self.analysis
        scope = self.association if self.scoped else None
        data = series(analysis, scope)
        offset = analysis.frame_time(data["start"])
        width = data["bin_seconds"]
        times = [offset + (index + 0.5) * width for index in range(len(data["client_to_server"]))]
        throughput = self.query_one("#throughput", PlotextPlot)
        plt = throughput.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("Throughput (kB/s, PDU bytes by completion)")
        plt.plot(times, [value / 1000 for value in data["client_to_server"]], label="SCU->SCP", marker="dot")
        plt.plot(times, [value / 1000 for value in data["server_to_client"]], label="SCP->SCU", marker="x")
        plt.xlabel("capture time (s)")
        throughput.refresh()
        responses = self.query_one("#responses", PlotextPlot)
        plt = responses.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("Response time (ms, request complete -> response complete)")
        points = data["responses"]
        if points:
            plt.scatter([at for at, _seconds in points], [seconds * 1000 for _at, seconds in points],
                        marker="o")
        plt.xlabel("capture time (s)")
        responses.refresh()
        what = f"association A{self.association}" if self.scoped else "whole capture"
        self.query_one("#plots-title", Static).update(
            f"{what}: {len(points)} responses, bins of {width * 1000:.3f} ms"
            + ("  (a: whole capture)" if self.scoped else
               "  (a: the selected association)" if self.association is not None else ""))

    def action_toggle_scope(self) -> None:
        if self.association is None:
            return
        self.scoped = not self.scoped
        self._draw()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
