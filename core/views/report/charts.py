"""The report's pictures, drawn as inline SVG by hand: a ladder, response times over time,
throughput per association, the time budget.

Why by hand (docs/report.md): the charting libraries that draw SVG without a browser
(pygal, matplotlib's SVG backend) either bring a script and an external stylesheet by
default or write kilobytes of path data and embedded fonts per chart; four simple chart
types are a few dozen lines each here, come out small, print cleanly, need no script,
and take their colours from the page's stylesheet (classes, not inline colours).

Every text from the capture is escaped (``markupsafe.escape``); the functions return
``Markup`` the template inserts as it is.  No element has an ``id``: a page holds many
charts, and ids must be unique.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from dicomtui.core.model.timing import BUDGET, BUDGET_LABELS
from dicomtui.core.views.timing import rate_text

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis
    from dicomtui.core.model.ladder import LadderRow
    from dicomtui.core.model.timing import TimingReport

    from .redact import Redaction

MAX_POINTS = 1500
_STATUS = re.compile(r"0x([0-9A-F]{4})")
_GOOD_STATUSES = {0x0000, 0xFF00, 0xFF01, 0xFE00}


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                  f'role="img" aria-label="{escape(label)}">'
                  f'<title>{escape(label)}</title>' + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, css: str = "", anchor: str = "start") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{cls}>{escape(text)}</text>'


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top``."""
    if top <= 0:
        return [0.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 2.5, 5, 10):
        if raw <= step * magnitude:
            raw = step * magnitude
            break
    return [raw * index for index in range(count + 1)]


# -- the ladder --------------------------------------------------------------------------------


def ladder(rows: list["LadderRow"], analysis: "Analysis", peers: dict[str, str], redaction: "Redaction") -> Markup:
    """The ladder of one association, one row per association PDU or DIMSE message (``--flow-level message``)."""
    width, left, right, top, step = 960, 250, 900, 46, 22
    height = top + step * max(1, len(rows)) + 10
    body = [
        _text(left, 16, f"SCU {peers['calling']}", "lane", "middle"),
        _text(left, 32, peers["client"], "small", "middle"),
        _text(right, 16, f"SCP {peers['called']}", "lane", "middle"),
        _text(right, 32, peers["server"], "small", "middle"),
        _text(4, 32, "last byte s", "small"), _text(90, 32, "wait ms", "small"), _text(160, 32, "frames", "small"),
        f'<line class="lane" x1="{left}" y1="38" x2="{left}" y2="{height - 4}"/>',
        f'<line class="lane" x1="{right}" y1="38" x2="{right}" y2="{height - 4}"/>',
    ]
    for number, row in enumerate(rows):
        y = top + step * number + 14
        label = redaction.text(row.label)
        status = _STATUS.search(row.label)
        css = "arrow"
        if status and int(status.group(1), 16) not in _GOOD_STATUSES:
            css = "arrow bad"
        elif row.label.startswith(("A-ABORT", "A-ASSOCIATE reject", "A-ASSOCIATE-RJ")):
            css = "arrow bad"
        frames = f"{row.frames[0]}" if row.frames[0] == row.frames[1] else f"{row.frames[0]}-{row.frames[1]}"
        body.append(_text(4, y, f"{analysis.frame_time(row.end):.6f}", "small"))
        body.append(_text(140, y, f"{row.delta * 1000:+.1f}", "small", "end"))
        body.append(_text(160, y, frames, "small"))
        start, end = (left, right) if row.direction == 0 else (right, left)
        head = -8 if row.direction == 0 else 8
        body.append(f'<g class="{css}"><title>{escape(label)} — frames {frames}, took {row.took * 1000:.1f} ms'
                    f'</title><line x1="{start}" y1="{y}" x2="{end + head}" y2="{y}"/>'
                    f'<polygon points="{end},{y} {end + head},{y - 4} {end + head},{y + 4}"/></g>')
        body.append(_text((left + right) / 2, y - 4, _cut(label, 90), "label", "middle"))
    return _svg(width, height, f"Ladder: {len(rows)} rows between SCU {peers['calling']} and SCP {peers['called']}",
                body)


# -- response times over time --------------------------------------------------------------------


def response_times(report: "TimingReport", analysis: "Analysis", labels: dict[int, str]) -> Markup | None:
    """Each request's response time (request complete -> final response complete) at its time in the capture."""
    points = []
    for exchange in report.exchanges:
        if exchange.response_time is None:
            continue
        message = analysis.messages[exchange.request]
        points.append((analysis.frame_time(message.end_time), exchange.response_time, exchange.failed,
                       exchange.command, exchange.association))
    if not points:
        return None
    total = len(points)
    if total > MAX_POINTS:  # keep every failure and the slowest, then an even sample of the rest
        keep = {index for index, point in enumerate(points) if point[2]}
        keep |= set(sorted(range(total), key=lambda index: -points[index][1])[:100])
        stride = max(1, total // (MAX_POINTS - len(keep) or 1))
        keep |= set(range(0, total, stride))
        points = [points[index] for index in sorted(keep)]
    width, height, left, bottom, top, right = 960, 280, 70, 40, 16, 20
    span_x = max(point[0] for point in points) or 1e-3
    span_y = max(point[1] for point in points) * 1000 or 1e-3
    x_ticks, y_ticks = _ticks(span_x), _ticks(span_y)
    span_x, span_y = x_ticks[-1] or span_x, y_ticks[-1] or span_y
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(value: float) -> float:
        return left + plot_w * value / span_x

    def y_of(value_ms: float) -> float:
        return top + plot_h * (1 - value_ms / span_y)

    body = [f'<rect class="plot" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>']
    for tick in y_ticks:
        body.append(f'<line class="grid" x1="{left}" y1="{y_of(tick):.1f}" x2="{width - right}" y2="{y_of(tick):.1f}"/>')
        body.append(_text(left - 6, y_of(tick) + 4, f"{tick:g}", "small", "end"))
    for tick in x_ticks:
        body.append(_text(x_of(tick), height - bottom + 16, f"{tick:g}", "small", "middle"))
    body.append(_text(left + plot_w / 2, height - 6, "seconds since the first packet", "small", "middle"))
    body.append(_text(12, top + plot_h / 2, "ms", "small", "middle"))
    for at, seconds, failed, command, association in points:
        css = "dot bad" if failed else "dot"
        body.append(f'<circle class="{css}" cx="{x_of(at):.1f}" cy="{y_of(seconds * 1000):.1f}" r="2.5">'
                    f'<title>A{association} {escape(command)}: {seconds * 1000:.1f} ms'
                    f'{" (failed)" if failed else ""}</title></circle>')
    caption = f"Response times of {total} requests" + (f" ({len(points)} drawn)" if len(points) < total else "")
    return _svg(width, height, caption, body)


# -- bars per association -------------------------------------------------------------------------


def _bar_rows(count: int, width: int = 960, step: int = 22, top: int = 30) -> tuple[int, int, int]:
    return width, top + step * count + 10, step


def throughput(report: "TimingReport", labels: dict[int, str], limit: int) -> Markup | None:
    """Bytes each way for the associations that moved the most, with their throughput.

    Bars are bytes (always measured); the label adds bytes per second over the association,
    which the timing model leaves "not measured" under 64 KiB or 10 ms (docs/timing.md).
    """
    items = sorted((item for item in report.associations if sum(item.bytes_sent) > 0),
                   key=lambda item: -sum(item.bytes_sent))[:limit]
    if not items:
        return None
    peak = max(max(item.bytes_sent) for item in items) or 1
    width, height, step = _bar_rows(len(items) * 2)
    left, plot_w = 220, 560
    body = [_text(left, 16, "PDU bytes each way (→ SCU to SCP, ← SCP to SCU) and throughput over the association",
                  "small")]
    for number, item in enumerate(items):
        for half, (css, arrow) in enumerate((("bar up", "→"), ("bar down", "←"))):
            y = 30 + step * (2 * number + half)
            if half == 0:
                body.append(_text(4, y + 14, _cut(labels.get(item.association, f"A{item.association}"), 34), "small"))
            body.append(_text(left - 6, y + 14, arrow, "small", "end"))
            length = plot_w * item.bytes_sent[half] / peak
            body.append(f'<rect class="{css}" x="{left}" y="{y + 3}" width="{length:.1f}" height="{step - 8}"/>')
            body.append(_text(left + length + 6, y + 14, f"{_size(item.bytes_sent[half])}, "
                              f"{rate_text(item.throughput(half))}", "small"))
    return _svg(width, height, f"Throughput of the {len(items)} associations that moved the most bytes", body)


def _size(number: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if number >= size:
            return f"{number / size:.1f} {unit}"
    return f"{number} B"


def time_budget(report: "TimingReport", labels: dict[int, str], limit: int) -> Markup | None:
    """Where each association's time went (stacked), the longest first, after the total of all."""
    items = sorted((item for item in report.associations if item.duration > 0), key=lambda item: -item.duration)
    if not items:
        return None
    totals = {name: sum(item.budget[name] for item in report.associations) for name in BUDGET}
    rows = [("all associations", totals, sum(totals.values()))]
    rows += [(labels.get(item.association, f"A{item.association}"), item.budget, item.duration)
             for item in items[:limit]]
    width, height, step = _bar_rows(len(rows) + 1)
    left, plot_w = 220, 600
    body = []
    x = left
    for number, name in enumerate(BUDGET):  # the legend
        body.append(f'<rect class="b{number}" x="{x}" y="6" width="12" height="12"/>')
        body.append(_text(x + 16, 16, BUDGET_LABELS[name], "small"))
        x += 24 + 7 * len(BUDGET_LABELS[name])
    for row, (label, budget, duration) in enumerate(rows):
        y = 30 + step * row
        body.append(_text(4, y + 14, _cut(label, 34), "small"))
        total = sum(budget.values()) or 1.0
        x = float(left)
        for number, name in enumerate(BUDGET):
            length = plot_w * budget[name] / total
            if length > 0:
                body.append(f'<rect class="b{number}" x="{x:.1f}" y="{y + 3}" width="{length:.1f}" height="{step - 8}">'
                            f'<title>{escape(label)}: {escape(BUDGET_LABELS[name])} {budget[name]:.3f} s '
                            f'({budget[name] / total:.0%})</title></rect>')
            x += length
        body.append(_text(left + plot_w + 6, y + 14, f"{duration:.3f} s", "small"))
    return _svg(width, height, "Time budget: where each association's time went", body)
