"""The text views of an Analysis: one line per PDU (``--summary``) and per finding (``--expert``)."""

from __future__ import annotations

from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.model import ExpertItem, Pdu
from dicomtui.core.model.analysis import Analysis


def summary_lines(analysis: Analysis, time_format: str = "r", shown: list[int] | None = None):
    """One line per PDU (or per PDU in ``shown``), like Wireshark's info column; times as tshark's -t.

    Read from the PDU table's columns rather than a ``Pdu`` per row: a large
    transfer has tens of thousands of PDUs and this runs for each (``summary_line``
    makes the same line from one ``Pdu``; a test checks both agree).
    """
    from dicomtui.core.base.time_format import format_timestamp

    pdus = analysis.pdus
    base = pdus.base
    columns = {name: pdus.column(name) for name in (
        "connection", "direction", "first_frame", "last_frame", "timestamp", "association")}
    timestamps = columns["timestamp"]
    summaries = pdus.summaries()
    ends = [(connection.client, connection.server) for connection in analysis.connections]
    first_time = analysis.first_time
    width = time_width(analysis, time_format)
    previous_shown = None
    for number in (range(base, len(pdus)) if shown is None else shown):
        row = number - base
        timestamp = timestamps[row]
        previous = previous_shown if time_format == "dd" else (timestamps[row - 1] if row > 0 else None)
        previous_shown = timestamp
        client, server = ends[columns["connection"][row]]
        source, destination = (client, server) if columns["direction"][row] == 0 else (server, client)
        first, last = columns["first_frame"][row], columns["last_frame"][row]
        frames = f"{first}" if first == last else f"{first}-{last}"
        when = format_timestamp(time_format, timestamp, first_time, previous)
        yield (f"{number + 1:6d} {when:>{width}} {source:>21} -> {destination:<21} "
               f"A{columns['association'][row]:<3d} frames {frames:<11} {safe_text(summaries[row])}")


def time_width(analysis: Analysis, time_format: str = "r") -> int:
    """The summary's time column: 11 characters, or the widest time this capture can show.

    Relative times grow a digit every power of ten ("123456.123456" past 99,999 s); a fixed
    width let them push the rest of the line right, row by row.  A delta (d, dd) is at most
    the capture's length.
    """
    from dicomtui.core.base.time_format import format_timestamp

    if analysis.first_time is None or analysis.last_time is None:
        return 11
    widest = format_timestamp("r" if time_format in ("d", "dd") else time_format, analysis.last_time,
                              analysis.first_time, analysis.first_time)
    return max(11, len(widest))


def summary_line(analysis: Analysis, pdu: Pdu, time_format: str = "r", previous: float | None = None,
                 width: int | None = None) -> str:
    """One PDU's line; ``previous`` is the timestamp the d/dd formats count from; ``width`` as ``time_width``."""
    from dicomtui.core.base.time_format import format_timestamp

    connection = analysis.connections[pdu.connection]
    source, destination = (connection.client, connection.server) if pdu.direction == 0 else (
        connection.server, connection.client)
    frames = f"{pdu.first_frame}" if pdu.first_frame == pdu.last_frame else f"{pdu.first_frame}-{pdu.last_frame}"
    when = format_timestamp(time_format, pdu.timestamp, analysis.first_time, previous)
    width = time_width(analysis, time_format) if width is None else width
    return (f"{pdu.index + 1:6d} {when:>{width}} {source:>21} -> {destination:<21} "
            f"A{pdu.association:<3d} frames {frames:<11} {safe_text(pdu.summary)}")


def expert_line(item: ExpertItem) -> str:
    """One finding as ``--expert`` prints it."""
    where = f"frame {item.frame}" if item.frame else "capture"
    association = f" A{item.association}" if item.association is not None else ""
    return f"{item.severity.label:<7} {item.group.value:<15} {where:>12}{association:<5} {safe_text(item.message)}"

