"""The decoded model: what the engine and the decoders produce, and every view consumes.

The protocol core's records (PDUs, associations, messages) are re-exported
here; the model adds what only the whole capture knows: connections with
their stream chunk maps, expert items, the PDU table and the read API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dicomtui.core.protocol.findings import Group, Severity
from dicomtui.core.protocol.records import (
    CONTEXT_RESULTS,
    PDU_TYPE_NAMES,
    Association,
    AssociationEnd,
    Fragment,
    Message,
    Pdu,
    Pdv,
    PresentationContext,
)
from dicomtui.core.protocol.state import AssociationState, Side
from dicomtui.core.wire.tcp import ChunkMap
from dicomtui.core.wire.tcp_record import SegmentRecord

__all__ = ["CONTEXT_RESULTS", "PDU_TYPE_NAMES", "Association", "AssociationEnd", "AssociationState", "Connection",
           "ConnectionAttempt", "ExpertItem", "Fragment", "Group", "Message", "Pdu", "Pdv", "PresentationContext",
           "Severity", "Side", "TransformedConnection"]


@dataclass(frozen=True, slots=True)
class ExpertItem:
    """One finding, like Wireshark's Expert Info entries."""

    severity: Severity
    group: Group
    message: str
    frame: int = 0
    association: int | None = None
    pdu: int | None = None
    message_index: int | None = None
    rule: str = ""
    code: str = ""  # what it is, for code (e.g. "state.ac-without-rq"); the decoder's findings have one
    # The code's parameters (the decoder's findings): ``message`` is their default wording
    # (``pipeline.finding_text``); a view or a translation may phrase code and params its own way.
    params: Any = field(default=None, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "severity": self.severity.label,
            "group": self.group.value,
            "message": self.message,
            "association": self.association,
            "pdu": self.pdu,
            "message_index": self.message_index,
            "rule": self.rule,
            "code": self.code,
        }


# -- connections ---------------------------------------------------------------------------


@dataclass(slots=True)
class Connection:
    """One TCP connection that carries DICOM.  Direction 0 is the client's (association requester's)."""

    index: int
    client: str
    server: str
    client_port: int
    server_port: int
    streams: tuple[ChunkMap, ChunkMap]
    first_frame: int
    first_time: float
    last_frame: int = 0
    last_time: float = 0.0
    syn_seen: bool = False
    closed_by: str = ""  # "FIN", "RST" or "" (still open when the capture ended)
    detection: str = ""
    picked_up_midway: bool = False
    segments: SegmentRecord | None = None  # every TCP segment's header facts (core/wire/tcp_record.py)
    # When DICOM travels inside another layer (core/wire/transform.py): its name, and the wire
    # bytes' chunk maps (``streams`` then holds what the transform returned).
    transform: str = ""
    wire_streams: tuple[ChunkMap, ChunkMap] | None = None

    # The transform object itself (e.g. the TLS session: version, suite, certificates), for views.
    transform_state: Any = None

    def read(self, direction: int, start: int, end: int, buffers: list) -> bytes | None:
        return self.streams[direction].read(start, end, buffers)

    def clock_offset(self, direction: int) -> float:
        """Seconds to take off the recorded times of ``direction``'s frames for timing: how much
        later than the other side's they were recorded (two capture interfaces, their clocks
        apart; measured by the engine, 0 when not seen).  PDU and message times are corrected
        already; a view reading a chunk map's frame times (raw) takes this off."""
        return self.segments.lateness(direction) if self.segments is not None else 0.0


@dataclass(slots=True)
class TransformedConnection:
    """A TCP connection a stream transform took: its endpoints and wire bytes in TCP direction
    order (0: the sender of the first segment), the transform, and the DICOM connection that
    came out of it (``connection``: an index into ``Analysis.connections``, or None)."""

    endpoints: tuple[str, str]
    ports: tuple[int, int]
    first_frame: int
    transform: Any
    wire_streams: tuple[ChunkMap, ChunkMap]
    connection: int | None = None
    last_frame: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionAttempt:
    """A TCP connection that never carried a byte: refused (SYN answered by RST), unanswered, or
    connected and closed empty.  Not DICOM by its bytes, yet it is where a peer tried to reach a
    DICOM port (the archive's reverse association of a storage commitment, an SCP not listening)."""

    client: str  # "address:port", as Connection
    server: str
    client_host: str
    server_host: str
    server_port: int
    first_frame: int
    first_time: float
    last_frame: int
    outcome: str  # "refused", "unanswered" or "closed empty"

    def as_json(self) -> dict[str, Any]:
        return {"client": self.client, "server": self.server, "first_frame": self.first_frame,
                "first_time": self.first_time, "last_frame": self.last_frame, "outcome": self.outcome}
