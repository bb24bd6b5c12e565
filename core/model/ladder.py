"""The ladder (sequence) diagram of one association: one row per PDU or per DIMSE message.

Rows are data (time, delta, direction, label, the PDU to jump to); core/views/timing.py
prints them as text for ``--flow`` and tui/ladder_screen.py draws them.  Runs of P-DATA-TF
PDUs that only carry data-set fragments of one message are collapsed into one row.

Three times per row, as both views label them: the *last byte* (``end``: what the packet list
shows for a PDU), the *wait* before it (``delta``: from the previous row's last byte to this
row's first byte) and what it *took* (``took``: its own first byte to last byte).  A stall inside
a PDU — Nagle holding the rest of a PDU after its header — shows in ``took``, where it is, not
in the next row's wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomtui.core.base.uids import uid_label

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis


@dataclass(slots=True)
class LadderRow:
    time: float  # capture time of the row's first byte
    end: float  # ... and of its last byte
    delta: float  # seconds since the previous row's last byte (0 for the first)
    direction: int  # 0 SCU (requestor) -> SCP (acceptor), 1 back
    label: str
    pdu: int  # the PDU to jump to (first of a collapsed run)
    frames: tuple[int, int]
    count: int = 1  # PDUs in a collapsed run
    nbytes: int = 0
    run_open: bool = False  # a run of data-set fragments that may take the next one

    @property
    def took(self) -> float:
        """Seconds from the row's first byte to its last."""
        return max(0.0, self.end - self.time)


# Column titles and what they mean, for both views (one precision: the packet list's).
LAST_BYTE, WAIT, TOOK = "last byte s", "wait ms", "took ms"
LEGEND = ("last byte: capture time of the row's last byte (as the packet list shows it); wait: from the "
          "previous row's last byte to this row's first; took: this row's first byte to its last (a stall "
          "inside a PDU, e.g. Nagle, shows here)")


def row_times(analysis: "Analysis", row: LadderRow) -> tuple[str, str, str]:
    """(last byte, wait, took) of a row as the views print them."""
    return (f"{analysis.frame_time(row.end):.6f}", f"{row.delta * 1000:+.1f}", f"{row.took * 1000:.1f}")


def association_pdus(analysis: "Analysis", association: int) -> list[int]:
    column = analysis.pdus.column("association")  # rows from ``base`` (live retention may drop the first)
    return [index for index, owner in enumerate(column, analysis.pdus.base) if owner == association]


def _first_byte_time(analysis: "Analysis", pdu) -> float:
    connection = analysis.connections[pdu.connection]
    _first, _last, start, _end = connection.streams[pdu.direction].frames_for(pdu.stream_offset,
                                                                              pdu.stream_offset + pdu.total_length)
    return start - connection.clock_offset(pdu.direction) if start else pdu.timestamp


def ladder_by_pdu(analysis: "Analysis", association: int, collapse: bool = True) -> list[LadderRow]:
    rows: list[LadderRow] = []
    for index in association_pdus(analysis, association):
        pdu = analysis.pdus[index]
        fragments_only = pdu.pdu_type == 4 and pdu.pdvs and not any(pdv.is_command for pdv in pdu.pdvs)
        previous = rows[-1] if rows else None
        last = bool(fragments_only and pdu.pdvs[-1].is_last)
        if collapse and fragments_only and previous is not None and previous.run_open \
                and previous.direction == pdu.direction:
            previous.count += 1
            previous.end = pdu.timestamp
            previous.frames = (previous.frames[0], pdu.last_frame)
            previous.nbytes += pdu.total_length
            previous.run_open = not last
            previous.label = f"P-DATA x{previous.count} data set fragments, {previous.nbytes} bytes" + (
                " (last fragment)" if last else "")
            continue
        start = _first_byte_time(analysis, pdu)
        label = pdu.summary
        rows.append(LadderRow(start, pdu.timestamp, 0.0, pdu.direction, label, index,
                              (pdu.first_frame, pdu.last_frame), 1, pdu.total_length,
                              run_open=bool(fragments_only and not last)))
    _deltas(rows)
    return rows


def ladder_by_message(analysis: "Analysis", association: int) -> list[LadderRow]:
    """Association PDUs (A-ASSOCIATE, A-RELEASE, A-ABORT) plus one row per DIMSE message."""
    rows: list[LadderRow] = []
    for index in association_pdus(analysis, association):
        pdu = analysis.pdus[index]
        if pdu.pdu_type != 4:
            rows.append(LadderRow(_first_byte_time(analysis, pdu), pdu.timestamp, 0.0, pdu.direction, pdu.summary,
                                  index, (pdu.first_frame, pdu.last_frame), 1, pdu.total_length))
    for message in analysis.relations.messages_of(association):
        label = message.command_name
        if message.is_request:
            label += f" ID={message.message_id}" if message.message_id is not None else ""
            sop = uid_label(message.affected_sop_class)
            label += f" {sop}" if sop else ""
        else:
            label += f" ID={message.responded_to}" if message.responded_to is not None else ""
            if message.status is not None:
                label += f" 0x{message.status:04X}"
            if message.response_time is not None:
                label += f" [{message.response_time * 1000:.1f} ms]"
        if message.has_dataset:
            label += f" +{message.dataset_length} B"
        count = message.last_pdu - message.first_pdu + 1
        rows.append(LadderRow(message.start_time, message.end_time, 0.0, message.direction, label,
                              message.first_pdu, (message.first_frame, message.last_frame), count,
                              message.dataset_length))
    rows.sort(key=lambda row: (row.time, row.frames[0]))
    _deltas(rows)
    return rows


def _deltas(rows: list[LadderRow]) -> None:
    previous_end = None
    for row in rows:
        row.delta = 0.0 if previous_end is None else row.time - previous_end
        previous_end = row.end if previous_end is None else max(previous_end, row.end)


def arrow(label: str, direction: int, width: int) -> str:
    """``|-- label -->|`` (direction 0) or ``|<-- label --|`` across ``width`` characters."""
    inner = width - 2
    text = f" {label} "
    if len(text) > inner - 4:
        text = text[: inner - 5] + "… "
    dashes = inner - len(text) - 1
    left = dashes // 2
    right = dashes - left
    if direction == 0:
        return "|" + "-" * left + text + "-" * right + ">|"
    return "|<" + "-" * left + text + "-" * right + "|"
