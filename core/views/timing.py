"""Headless views of the timing figures: ``--stats`` tables, the ``--flow`` ladder, the JSON part.

The JSON part is added to ``dicomtui --json`` as the ``timing`` key (README, "JSON
output"; keys are only ever added).  Definitions: docs/timing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.base.time_format import milliseconds
from dicomtui.core.model.ladder import LAST_BYTE, LEGEND, TOOK, WAIT, arrow, ladder_by_message, ladder_by_pdu, row_times
from dicomtui.core.model.timing import BUDGET, BUDGET_LABELS, VERDICT_MIN_SECONDS, TimingReport, timing_report

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis

SERIES_MAX_BINS = 120


def _ms(value: float | None) -> str:
    return milliseconds(value)


def _table(header: tuple[str, ...], rows: list[tuple], indent: str = "  ", text_last: bool = False) -> list[str]:
    """Aligned columns: the first (and with ``text_last`` the last) left-aligned, the others right-aligned."""
    cells = [tuple(str(cell) for cell in header)] + [tuple(str(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        if text_last:
            parts[-1] = row[-1]
        lines.append(indent + "  ".join(parts).rstrip())
    return lines


def rate_text(value: float | None) -> str:
    """A throughput in words (B/s, kB/s, MB/s), or "not measured" (too few bytes or too short)."""
    if value is None:
        return "not measured"
    if value >= 1e6:
        return f"{value / 1e6:.2f} MB/s"
    if value >= 1e3:
        return f"{value / 1e3:.1f} kB/s"
    return f"{value:.0f} B/s"


def untimed_associations_text(count: int) -> str:
    """Why associations are missing from the ranked causes (``TimingReport.untimed_associations``)."""
    return (f"{count} association(s) left out of the causes: PDUs of theirs start or end in frames that "
            "carried no time (pcapng simple packet blocks)")


def stats_lines(analysis: "Analysis") -> list[str]:
    """``dicomtui --stats``: the dominant cause first, then the tables."""
    report = timing_report(analysis)
    lines: list[str] = []
    lines.append(f"Where the time went: {len(report.associations)} association(s), "
                 f"{report.total_seconds:.3f} s of association time")
    if report.untimed_associations:
        lines.append(f"  ({untimed_associations_text(report.untimed_associations)})")
    if report.causes and report.causes[0].seconds < VERDICT_MIN_SECONDS:
        lines.append(f"  dominant cause: not measured — no cause cost {VERDICT_MIN_SECONDS * 1000:.0f} ms or "
                     "more (docs/timing.md, \"Not measured\")")
    elif report.causes:
        top = report.causes[0]
        lines.append(f"  dominant cause: {top.label} — {top.seconds:.3f} s, {top.share:.0%}")
        lines.append(f"  advice: {top.advice}")
        lines += _table(("cause", "seconds", "share", "detail"),
                        [(cause.label, f"{cause.seconds:.3f}", f"{cause.share:.0%}", cause.detail)
                         for cause in report.causes], text_last=True)
    elif not report.untimed_associations:
        lines.append("  (no association with timing in this capture)")
    lines.append("")
    lines.append("Time budget per association (seconds / share; network transfer includes the TCP stalls)")
    rows = []
    for item in report.associations:
        association = analysis.associations[item.association]
        shares = item.shares()
        rows.append((f"A{item.association} {safe_text(association.calling_ae.strip() or '?')}->"
                     f"{safe_text(association.called_ae.strip() or '?')}", f"{item.duration:.3f}",
                     *(f"{item.budget[name]:.3f} {shares[name]:4.0%}" for name in BUDGET),
                     ", ".join(f"{cause} {seconds:.3f}" for cause, (seconds, _f) in
                               sorted(item.transfer_stalls.items(), key=lambda pair: -pair[1][0])) or "-"))
    lines += _table(("association", "duration", *(BUDGET_LABELS[name] for name in BUDGET), "TCP stalls"), rows)
    for name, title in (("command", "command"), ("sop_class", "command and SOP class"), ("ae_pair", "AE pair")):
        lines.append("")
        lines.append(f"Response times by {title} (ms, request complete -> final response complete)")
        lines += _table((title, "count", "min", "mean", "median", "p95", "max", "failures", "unanswered"),
                        [(safe_text(row.key), *(_srt_cells(row.figures()))) for row in report.srt[name]])
        untimed = sum(row.untimed for row in report.srt[name])
        if untimed:
            lines.append(f"  ({untimed} answered request(s) left out: the request or its response ended in a frame "
                         "that carried no time, a pcapng simple packet block)")
    from .workflow import workflow_stats_lines

    lines += workflow_stats_lines(analysis)
    lines.append("")
    lines.append("Throughput and PDU sizes per association")
    rows = []
    for item in report.associations:
        for direction, arrow_text in ((0, "SCU->SCP"), (1, "SCP->SCU")):
            sizes = item.pdu_sizes[direction]
            rows.append((f"A{item.association} {arrow_text}", item.bytes_sent[direction],
                         rate_text(item.throughput(direction)),
                         (f"{item.objects} ({item.objects_per_second:.2f}/s)" if item.objects_per_second is not None
                          else str(item.objects)) if direction == 0 else "",
                         sizes["count"], "-" if sizes["mean"] is None else f"{sizes['mean']:.0f}",
                         sizes["max"] if sizes["max"] is not None else "-",
                         sizes["limit"] if sizes["limit"] else "-", sizes["at_limit"]))
    lines += _table(("association", "bytes", "throughput", "objects", "P-DATA", "mean", "max", "max PDU",
                     "at max"), rows)
    lines.append("")
    lines.append("TCP per connection (RTT in ms; server side = capture point <-> server)")
    rows = []
    for tcp in report.connections:
        connection = analysis.connections[tcp.connection]
        for figures in tcp.directions:
            sender = connection.client if figures.direction == 0 else connection.server
            rows.append((f"C{tcp.connection} {sender}" + (" (client)" if figures.direction == 0 else " (server)"),
                         _ms(tcp.handshake_rtt) if figures.direction == 0 else "",
                         _ms(tcp.server_side_rtt if figures.direction == 0 else tcp.client_side_rtt),
                         f"{_ms(figures.rtt_min)}/{_ms(figures.rtt_median)}", figures.data_segments,
                         rate_text(figures.throughput),
                         f"{figures.retransmissions}/{figures.fast_retransmissions}/"
                         f"{figures.spurious_retransmissions} ({figures.retransmission_seconds:.3f} s)",
                         figures.out_of_order, figures.zero_windows, figures.window_full,
                         f"{figures.min_window or 0}-{figures.max_window}" + ("" if tcp.scale_known else "?"),
                         " ".join(f"{cause} {figures.stall_count(cause)}/{figures.stall_seconds(cause):.3f}s"
                                  for cause in ("window", "nagle", "cwnd") if figures.stall_count(cause)) or "-",
                         len(tcp.idle_gaps) if figures.direction == 0 else ""))
    lines += _table(("sender", "handshake", "side RTT", "ACK RTT min/med", "data segs", "throughput",
                     "resent: plain/fast/spurious", "out of order", "zero win", "win full", "peer window", "stalls",
                     "idle gaps"), rows)
    return lines


def _srt_cells(figures: dict) -> tuple:
    return (figures["count"], _ms(figures["min"]), _ms(figures["mean"]), _ms(figures["median"]),
            _ms(figures["p95"]), _ms(figures["max"]), figures["failures"], figures["unanswered"])


def flow_lines(analysis: "Analysis", association: int, level: str = "pdu", width: int = 100) -> list[str]:
    """``dicomtui --flow``: the ladder of one association as text."""
    item = analysis.associations[association]
    connection = analysis.connections[item.connection]
    rows = ladder_by_message(analysis, association) if level == "message" else ladder_by_pdu(analysis, association)
    lane = max(40, width - 34)
    scu = safe_text(f"SCU {item.calling_ae.strip() or '?'} {connection.client}")
    scp = safe_text(f"SCP {item.called_ae.strip() or '?'} {connection.server}")
    lines = [f"A{association}: {scu}  <->  {scp}  ({len(rows)} rows, one per {level})", LEGEND,
             f"{LAST_BYTE:>12} {WAIT:>8} {TOOK:>8}  {scu[:lane // 2]:<{lane // 2}}{scp[:lane - lane // 2]:>{lane - lane // 2}}"
             f"  frames"]
    for row in rows:
        frames = f"{row.frames[0]}" if row.frames[0] == row.frames[1] else f"{row.frames[0]}-{row.frames[1]}"
        last_byte, wait, took = row_times(analysis, row)
        lines.append(f"{last_byte:>12} {wait:>8} {took:>8}  {arrow(safe_text(row.label), row.direction, lane)}  {frames}")
    return lines


def series(analysis: "Analysis", association: int | None = None, bins: int = SERIES_MAX_BINS) -> dict[str, Any]:
    """Throughput per direction and response times over time (for plots and JSON).

    ``association`` None: the whole capture.  Bytes are PDU bytes by the time their
    PDU completed; response times are placed at the response's completion.
    """
    start = analysis.first_time or 0.0
    end = analysis.last_time or start
    pdus = analysis.pdus
    times = pdus.column("timestamp")
    owners = pdus.column("association")
    directions = pdus.column("direction")
    lengths = pdus.column("length")
    if association is not None:
        selected = [i for i, owner in enumerate(owners) if owner == association]
    else:
        selected = range(len(times))
    if selected:
        # Capture timestamps need not be in order (merged or damaged files): bin from the extremes.
        start, end = min(times[i] for i in selected), max(times[i] for i in selected)
    span = max(end - start, 1e-6)
    count = max(1, min(bins, int(span / 0.001) or 1))
    width = span / count
    sent = [[0] * count, [0] * count]
    for index in selected:
        slot = min(count - 1, max(0, int((times[index] - start) / width)))
        sent[directions[index]][slot] += lengths[index] + 6
    responses = [(analysis.frame_time(message.end_time), message.response_time) for message in analysis.messages
                 if message.response_time is not None and (association is None or message.association == association)]
    return {"start": start, "bin_seconds": width,
            "client_to_server": [value / width for value in sent[0]],
            "server_to_client": [value / width for value in sent[1]],
            "responses": [[at, seconds] for at, seconds in responses]}


def timing_json(analysis: "Analysis") -> dict[str, Any]:
    from .workflow import workflow_timing

    report: TimingReport = timing_report(analysis)
    return {
        "total_seconds": report.total_seconds,
        "untimed_associations": report.untimed_associations,
        "workflow": workflow_timing(analysis),
        "causes": [{"name": cause.name, "label": cause.label, "seconds": cause.seconds, "share": cause.share,
                    "detail": cause.detail, "advice": cause.advice, "associations": cause.associations,
                    "frame": cause.frame} for cause in report.causes],
        "response_times": {name: [{"key": row.key, **row.figures()} for row in rows]
                           for name, rows in report.srt.items()},
        "exchanges": [{"request": e.request, "association": e.association, "command": e.command,
                       "sop_class": e.sop_class, "request_transfer_time": e.request_transfer,
                       "first_byte_time": e.first_byte, "response_time": e.response_time, "failed": e.failed}
                      for e in report.exchanges],
        "associations": [{
            "id": item.association, "start_time": item.start, "end_time": item.end, "duration": item.duration,
            "budget": item.budget, "shares": item.shares(),
            "transfer_stalls": {cause: seconds for cause, (seconds, _frame) in item.transfer_stalls.items()},
            "bytes": list(item.bytes_sent), "throughput": [item.throughput(0), item.throughput(1)],
            "objects": item.objects, "objects_per_second": item.objects_per_second,
            "pdu_sizes": list(item.pdu_sizes), "think_gaps": item.think_gaps,
        } for item in report.associations],
        "connections": [{
            "id": tcp.connection, "handshake_rtt": tcp.handshake_rtt, "server_side_rtt": tcp.server_side_rtt,
            "client_side_rtt": tcp.client_side_rtt, "window_scale_known": tcp.scale_known,
            "record_truncated": tcp.record_truncated,
            "idle_gaps": [{"frame": frame, "start": start, "seconds": seconds}
                          for frame, start, seconds in tcp.idle_gaps],
            "directions": [{
                "direction": "client->server" if figures.direction == 0 else "server->client",
                "segments": figures.segments, "data_segments": figures.data_segments,
                "payload_bytes": figures.payload_bytes, "throughput": figures.throughput,
                "retransmissions": figures.retransmissions, "retransmitted_bytes": figures.retransmitted_bytes,
                "retransmission_seconds": figures.retransmission_seconds,
                "retransmission_frames": figures.retransmission_frames, "out_of_order": figures.out_of_order,
                # tshark's classes (tcp.analysis.*); "retransmissions" above is its plain one.
                "fast_retransmissions": figures.fast_retransmissions,
                "spurious_retransmissions": figures.spurious_retransmissions,
                "lost_segments": figures.lost_segments, "hole_fills": figures.hole_fills,
                "flagged": [{"frame": frame, "kind": kind} for frame, kind in figures.flagged],
                "zero_windows": figures.zero_windows, "zero_window_frames": figures.zero_window_frames,
                "window_full": figures.window_full, "peer_window_min": figures.min_window,
                "peer_window_max": figures.max_window, "mss": figures.mss,
                "ack_rtt_min": figures.rtt_min, "ack_rtt_median": figures.rtt_median,
                "ack_rtt_samples": len(figures.rtt_samples),
                "stalls": {cause: {"count": figures.stall_count(cause), "seconds": figures.stall_seconds(cause)}
                           for cause in ("window", "nagle", "cwnd")},
            } for figures in tcp.directions],
        } for tcp in report.connections],
        "series": series(analysis),
    }
