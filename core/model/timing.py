"""Where the time went: response-time statistics, throughput, PDU sizes, per-association time
budgets and the ranked causes of slowness (definitions in docs/timing.md).

Pure functions over a finished Analysis; ``timing_report`` computes everything
once per analysis (cached) for the views (--stats, --json), the expert rules and
the TUI.  TCP figures come from core/wire/tcp_analysis.py, which reads the segment
record the engine kept.
"""

from __future__ import annotations

import math
import statistics
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dicomtui.core.base.uids import uid_label
from dicomtui.core.protocol.records import PDU_HEADER_LENGTH
from dicomtui.core.wire.tcp_analysis import RATE_MIN_SECONDS, ConnectionTcp, analyse_connection, measured_rate

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis

IDLE_OPTION = "idle_gap_seconds"
IDLE_DEFAULT = 10.0  # a gap longer than this (nothing outstanding, nothing moving) is idle, not think time
PENDING = "pending"

# The categories of an association's time budget (seconds, shares); they add up to its duration.
BUDGET = ("network_transfer", "network_latency", "scp_processing", "scu_think", "idle")
BUDGET_LABELS = {"network_transfer": "network transfer", "network_latency": "network round trips",
                 "scp_processing": "SCP processing", "scu_think": "SCU think time", "idle": "idle"}


# -- response-time statistics -----------------------------------------------------------------


@dataclass(slots=True)
class TimeStats:
    """Like Wireshark's Service Response Time tables: one row per key."""

    key: str
    times: list[float] = field(default_factory=list)
    failures: int = 0  # final response with a failure status
    unanswered: int = 0  # requests without a final response in the capture
    untimed: int = 0  # answered, but the request or the response ended in a frame without a time

    @property
    def count(self) -> int:
        return len(self.times)

    def figures(self) -> dict[str, float | int | None]:
        times = sorted(self.times)
        if not times:
            return {"count": 0, "min": None, "mean": None, "median": None, "p95": None, "max": None,
                    "total": 0.0, "failures": self.failures, "unanswered": self.unanswered, "untimed": self.untimed}
        return {"count": len(times), "min": times[0], "mean": sum(times) / len(times),
                "median": statistics.median(times), "p95": percentile(times, 95), "max": times[-1],
                "total": sum(times), "failures": self.failures, "unanswered": self.unanswered,
                "untimed": self.untimed}


def percentile(sorted_values: list[float], percent: float) -> float:
    """Nearest-rank percentile (the value below which ``percent`` % of the values lie)."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(slots=True)
class Exchange:
    """A DIMSE request and its responses, with the times of docs/timing.md."""

    request: int  # message index
    association: int
    command: str  # "C-STORE"
    sop_class: str
    ae_pair: str
    request_transfer: float  # request first byte -> request complete
    first_byte: float | None  # request complete -> first response's first byte
    response_time: float | None  # request complete -> final response complete
    failed: bool
    sender: int  # direction of the request
    # The request or the final response ended in a frame that carried no time (a pcapng simple
    # packet block): answered, but its times are unknown (None above) and left out of the figures.
    untimed: bool = False


def exchanges(analysis: "Analysis") -> list[Exchange]:
    result = []
    untimed_frames = len(analysis.untimed_frames)
    for message in analysis.messages:
        if not message.is_request or message.command_field in (0, 0x0FFF) or message.message_id is None:
            continue
        association = analysis.associations[message.association] if message.association >= 0 else None
        pair = f"{association.calling_ae.strip() or '?'} -> {association.called_ae.strip() or '?'}" \
            if association else "?"
        first = final = None
        failed = False
        if message.responses:
            first = analysis.messages[message.responses[0]]
            final = analysis.messages[message.responses[-1]]
            if final.status is not None:
                category, _meaning = analysis.status_meaning(final.command_field, final.status,
                                                             final.affected_sop_class)
                failed = category == "failure"
                if category == PENDING:
                    final = None
        exchange = Exchange(message.index, message.association, message.command_name.removesuffix("-RQ"),
                            message.affected_sop_class, pair, message.transfer_time,
                            first.first_byte_time if first is not None else None,
                            final.response_time if final is not None else None, failed, message.direction)
        if untimed_frames and not all(analysis.time_known(frame) for frame in (
                message.first_frame, message.last_frame, *((first.first_frame, final.last_frame)
                                                           if final is not None else ()))):
            exchange.first_byte, exchange.response_time = None, None
            exchange.untimed = True
        result.append(exchange)
    return result


def srt_tables(found: list[Exchange]) -> dict[str, list[TimeStats]]:
    """Response-time statistics by command, by command and SOP class, and by AE pair."""
    tables: dict[str, dict[str, TimeStats]] = {"command": {}, "sop_class": {}, "ae_pair": {}}
    for exchange in found:
        keys = {"command": exchange.command,
                "sop_class": f"{exchange.command} {uid_label(exchange.sop_class) or '?'}",
                "ae_pair": exchange.ae_pair}
        for table, key in keys.items():
            stats = tables[table].setdefault(key, TimeStats(key))
            if exchange.untimed:
                stats.untimed += 1
            elif exchange.response_time is None:
                stats.unanswered += 1
            else:
                stats.times.append(exchange.response_time)
            stats.failures += exchange.failed
    return {name: sorted(rows.values(), key=lambda row: -sum(row.times)) for name, rows in tables.items()}


# -- per association ---------------------------------------------------------------------------


@dataclass(slots=True)
class AssociationTiming:
    association: int
    start: float
    end: float
    budget: dict[str, float]
    bytes_sent: tuple[int, int]  # PDU bytes client -> server, server -> client
    objects: int  # C-STORE requests with a data set
    pdu_sizes: tuple[dict, dict]  # per direction: count, mean, max, negotiated limit, at_limit
    tcp: ConnectionTcp | None
    think_gaps: list[float]  # SCU waits between a response and its next request (RTT removed)
    # Seconds of the network transfer time spent in TCP stalls, by cause (window, nagle, cwnd,
    # retransmission), with the first frame of each; they are part of network_transfer.
    transfer_stalls: dict[str, tuple[float, int]] = field(default_factory=dict)
    # Retransmission waits that fall in "SCP processing" time: captured on the sender's side, a
    # request looks complete when first sent, and the responder waits for the resent segment.
    waiting_retransmission: tuple[float, int] = (0.0, 0)
    # A PDU of it starts or ends in a frame without a time (pcapng simple packet blocks): its
    # budget is made of borrowed times, so the ranked causes leave it out.
    untimed: bool = False

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def shares(self) -> dict[str, float]:
        total = sum(self.budget.values())
        return {name: (value / total if total > 0 else 0.0) for name, value in self.budget.items()}

    def throughput(self, direction: int) -> float | None:
        """Bytes per second over the association; None when not measured (too few bytes or too
        short: ``measured_rate``)."""
        return measured_rate(self.bytes_sent[direction], self.duration)

    @property
    def objects_per_second(self) -> float | None:
        return self.objects / self.duration if self.objects and self.duration >= RATE_MIN_SECONDS else None


def _pdu_spans(analysis: "Analysis", association_index: int, pdu_indices) -> list[tuple]:
    """(first byte time, last byte time, direction, pdu type, length, first frame) of PDUs."""
    spans = []
    fields = analysis.pdus.fields  # one row's columns: a Pdu per row costs five times more
    connections = analysis.connections
    for index in pdu_indices:
        connection, direction, stream_offset, pdu_type, length, first_frame, timestamp = fields(index)
        chunks = connections[connection].streams[direction]
        _first, _last, start, _end = chunks.frames_for(stream_offset, stream_offset + PDU_HEADER_LENGTH + length)
        if start:  # a frame time as recorded: corrected as the PDU's own time was
            start -= connections[connection].clock_offset(direction)
        spans.append((start or timestamp, timestamp, direction, pdu_type, length, first_frame))
    return spans


def association_timing(analysis: "Analysis", association_index: int, messages: list, pdu_indices,
                       tcp: ConnectionTcp | None, idle_gap: float) -> AssociationTiming:
    """Where one association's time went: the interval from its first to its last PDU cut into
    stretches of bytes moving, a requester waiting and gaps, each stretch given to a budget
    share; plus its bytes, PDU sizes, objects and the TCP stalls inside it."""
    association = analysis.associations[association_index]
    spans = _pdu_spans(analysis, association_index, pdu_indices)
    start = min((span[0] for span in spans), default=association.start_time)
    end = max((span[1] for span in spans), default=association.end_time or association.start_time)
    moving, waiting = _moving_and_waiting(analysis, messages, spans, end)
    # Sweep the elementary intervals between all boundaries.
    points = sorted({start, end, *(t for a, b in moving for t in (a, b)),
                     *(t for a, b, _d in waiting for t in (a, b))})
    points = [p for p in points if start <= p <= end]
    moving_marks = _coverage(moving, points)
    waiting_marks = _coverage([(a, b) for a, b, _d in waiting], points)
    server_rtt = tcp.side_rtt("server") if tcp else 0.0
    client_rtt = tcp.side_rtt("client") if tcp else 0.0
    budget, think_gaps = _budget(_stretches(points, moving_marks, waiting_marks), server_rtt, client_rtt, idle_gap)
    bytes_sent, pdu_sizes = _pdu_figures(association, spans)
    objects = sum(1 for message in messages if message.command_field == 0x0001 and message.has_dataset)
    stalls, waiting_retransmission = _stalls_inside(tcp, start, end, points, moving_marks, waiting_marks)
    return AssociationTiming(association_index, start, end, budget, bytes_sent, objects,
                             pdu_sizes, tcp, think_gaps, stalls, waiting_retransmission)


def _moving_and_waiting(analysis: "Analysis", messages: list, spans: list, end: float):
    """Intervals labelled by what was happening: (from, to) of bytes moving, and (from, to,
    requester direction) of a side waiting for an answer; "moving" beats "waiting" where they overlap."""
    moving: list[tuple[float, float]] = [(span[0], span[1]) for span in spans]
    waiting: list[tuple[float, float, int]] = []
    moving += [(message.start_time, message.end_time) for message in messages]
    for message in messages:
        if message.is_request and not message.responses and message.message_id is not None \
                and message.command_field != 0x0FFF:
            # Never answered: the responder had it until the association ended (abort, timeout).
            waiting.append((message.end_time, end, message.direction))
        if message.is_request and message.responses:
            previous_end = message.end_time
            for response_index in message.responses:
                response = analysis.messages[response_index]
                waiting.append((previous_end, response.start_time, message.direction))
                previous_end = response.end_time
    # A-ASSOCIATE-RQ -> AC/RJ and A-RELEASE-RQ -> RP: the acceptor (or the other side) works.
    requests: dict[int, tuple[float, int]] = {}
    for span in spans:
        pdu_type = span[3]
        if pdu_type in (1, 5):
            requests[pdu_type] = (span[1], span[2])
        elif pdu_type in (2, 3) and 1 in requests:
            waiting.append((requests.pop(1)[0], span[0], 0))
        elif pdu_type == 6 and 5 in requests:
            rq_end, rq_direction = requests.pop(5)
            waiting.append((rq_end, span[0], rq_direction))
    return moving, waiting


def _stretches(points: list[float], moving_marks: bytearray, waiting_marks: bytearray) -> list[tuple[str, float]]:
    """Consecutive elementary pieces of the same kind as one stretch (one wait, one gap)."""
    stretch_kind, stretch_length = None, 0.0
    stretches: list[tuple[str, float]] = []
    for position in range(len(points) - 1):
        length = points[position + 1] - points[position]
        if length <= 0:
            continue
        kind = "moving" if moving_marks[position] else "waiting" if waiting_marks[position] else "gap"
        if kind == stretch_kind:
            stretch_length += length
        else:
            if stretch_kind is not None:
                stretches.append((stretch_kind, stretch_length))
            stretch_kind, stretch_length = kind, length
    if stretch_kind is not None:
        stretches.append((stretch_kind, stretch_length))
    return stretches


def _budget(stretches: list[tuple[str, float]], server_rtt: float, client_rtt: float,
            idle_gap: float) -> tuple[dict[str, float], list[float]]:
    """Seconds per budget share, and the SCU's think gaps (gaps shorter than ``idle_gap``)."""
    budget = dict.fromkeys(BUDGET, 0.0)
    think_gaps: list[float] = []
    for kind, length in stretches:
        if kind == "moving":
            budget["network_transfer"] += length
        elif kind == "waiting":
            # The request still had to reach the responder and the answer to come back to the capture point.
            latency = min(length, server_rtt)
            budget["network_latency"] += latency
            budget["scp_processing"] += length - latency
        else:
            latency = min(length, client_rtt)
            budget["network_latency"] += latency
            rest = length - latency
            if rest > idle_gap:
                budget["idle"] += rest
            else:
                budget["scu_think"] += rest
                think_gaps.append(rest)
    return budget, think_gaps


def _pdu_figures(association, spans: list) -> tuple[tuple[int, int], tuple[dict, dict]]:
    """Bytes sent per direction (PDU headers included) and the P-DATA-TF sizes against the limits."""
    bytes_sent = [0, 0]
    sizes = ([], [])
    for span in spans:
        bytes_sent[span[2]] += span[4] + 6
        if span[3] == 4:
            sizes[span[2]].append(span[4])
    # The requestor's max PDU length limits what the acceptor sends, and vice versa.
    limits = (association.acceptor_max_pdu, association.requestor_max_pdu)
    pdu_sizes = tuple(
        {"count": len(sizes[d]), "mean": (sum(sizes[d]) / len(sizes[d])) if sizes[d] else None,
         "max": max(sizes[d]) if sizes[d] else None, "limit": limits[d] or None,
         "at_limit": sum(1 for size in sizes[d] if limits[d] and size >= limits[d] - 6)}
        for d in (0, 1))
    return (bytes_sent[0], bytes_sent[1]), pdu_sizes


def _stalls_inside(tcp: ConnectionTcp | None, start: float, end: float, points: list[float],
                   moving_marks: bytearray, waiting_marks: bytearray):
    """TCP stalls by cause, counted where bytes were moving: {cause: (seconds, first frame)}; and
    the retransmission time inside stretches where a requester waited (seconds, first frame)."""
    stalls: dict[str, tuple[float, int]] = {}
    waiting_retransmission = (0.0, 0)
    if tcp is None:
        return stalls, waiting_retransmission
    found = [(stall.cause, stall.start, stall.end, stall.frame) for figures in tcp.directions
             for stall in figures.stalls]
    found += [("retransmission", a, b, frame) for figures in tcp.directions
              for a, b, frame in figures.retransmission_intervals]
    waiting_only = bytearray(w and not m for w, m in zip(waiting_marks, moving_marks))
    for cause, a, b, frame in found:
        if b < start or a > end:
            continue
        seconds = _overlap(a, b, points, moving_marks)
        if seconds > 0:
            total, first = stalls.get(cause, (0.0, 0))
            stalls[cause] = (total + seconds, first or frame)
        if cause == "retransmission":
            seconds = _overlap(a, b, points, waiting_only)
            if seconds > 0:
                total, first = waiting_retransmission
                waiting_retransmission = (total + seconds, first or frame)
    return stalls, waiting_retransmission


def _overlap(a: float, b: float, points: list[float], marks: bytearray) -> float:
    """Seconds of [a, b] inside the marked elementary pieces."""
    from bisect import bisect_right

    total = 0.0
    position = max(0, bisect_right(points, a) - 1)
    while position < len(marks) and points[position] < b:
        if marks[position]:
            total += max(0.0, min(b, points[position + 1]) - max(a, points[position]))
        position += 1
    return total


def _coverage(intervals: list[tuple[float, float]], points: list[float]) -> bytearray:
    """For each elementary piece [points[i], points[i+1]): is it inside any interval?"""
    from bisect import bisect_left

    marks = bytearray(max(0, len(points) - 1))
    delta = [0] * (len(points) + 1)
    for a, b in intervals:
        if b <= a:
            continue
        delta[bisect_left(points, a)] += 1
        delta[bisect_left(points, b)] -= 1
    depth = 0
    for position in range(len(marks)):
        depth += delta[position]
        marks[position] = 1 if depth > 0 else 0
    return marks


# -- causes ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Cause:
    """One reason for slowness with the seconds it cost (over the associations it names)."""

    name: str  # stable key: scp_processing, network_latency, window, nagle, retransmission, ...
    label: str
    seconds: float
    share: float  # of the analysed associations' total duration
    detail: str
    advice: str
    associations: list[int] = field(default_factory=list)
    frame: int = 0  # where to look first


# A cause is named the dominant one, with advice, only when it cost at least this much: an
# association of a few hundred microseconds has nothing slow to explain (docs/timing.md).
VERDICT_MIN_SECONDS = 0.010

CAUSE_ADVICE = {
    "scp_processing": "the SCP takes long to answer: look at its load, storage and database (and for C-FIND "
                      "how broad the queries are); compare with its log for the slow requests",
    "network_latency": "the round trip between the peers dominates: each request waits at least one round "
                       "trip; send several objects per association, use asynchronous operations where both "
                       "sides support them, or move the peers closer (VPN, WAN path)",
    "window": "the receiver's TCP receive window caps the throughput (window / RTT): raise its socket buffer "
              "(SO_RCVBUF; dcmtk: TCP_BUFFER_LENGTH; Linux: net.ipv4.tcp_rmem, and do not pin SO_RCVBUF so "
              "auto-tuning works) on the receiving host",
    "nagle": "Nagle's algorithm against delayed ACK: a small segment (often a 12-byte PDU header written on its "
             "own) waits for the peer's delayed ACK before the rest is sent; set TCP_NODELAY on the sender "
             "(dcmtk: environment TCP_NODELAY=1 or a build with Nagle disabled; most stacks have a "
             "'no delay' option) or have it write each PDU in one call",
    "retransmission": "segments were lost on the path and resent; the resend waits cost time (RTO, recovery): "
                      "check the path for errors and drops (interface counters, duplex mismatch, overloaded "
                      "links, Wi-Fi); a capture on both ends shows where",
    "reordering": "the path delivers segments out of order (parallel links, ECMP or link aggregation, a load "
                  "balancer, a VPN spreading over paths); nothing was lost and TCP puts the bytes back in order, "
                  "but reordering by three or more segments draws duplicate ACKs and needless fast "
                  "retransmissions: look for the device that splits the flow, not for drops or bandwidth",
    "spurious": "the sender resent bytes the receiver had already acknowledged: its retransmission timer fired "
                "too early, or ACKs were lost or held up on the way back (reverse-path loss, a receiver slow to "
                "acknowledge); it wastes bandwidth, not data; look at the reverse path and the sender's RTO",
    "late_segments": "segments filled a hole in the data later than a round trip: lost before the capture point "
                     "and resent, or reordered by more than a round trip (the capture cannot tell); a capture "
                     "nearer the sender shows which",
    "cwnd": "the sender waited for ACKs with the receive window open (slow start, congestion recovery): "
            "round trips and loss limit it; long-lived associations keep the window open",
    "network_transfer": "moving the bytes themselves takes the time: the link's bandwidth is the limit, or "
                        "the objects are large (compression, a faster path)",
    "scu_think": "the SCU waits between receiving a response and sending its next request: it is slow "
                 "preparing objects (reading, compressing, database), or it is throttled by its "
                 "configuration; look at the SCU, not the network or the SCP",
    "idle": "nothing was happening (no request outstanding, no bytes moving) for long stretches: the "
            "association was held open without work",
}


@dataclass(slots=True)
class TimingReport:
    exchanges: list[Exchange]
    srt: dict[str, list[TimeStats]]
    associations: list[AssociationTiming]
    connections: list[ConnectionTcp]
    causes: list[Cause]
    total_seconds: float
    untimed_associations: int = 0  # left out of ``causes`` and ``total_seconds`` (``AssociationTiming.untimed``)


def timing_report(analysis: "Analysis") -> TimingReport:
    cached = _CACHE.get(analysis)
    if cached is not None and cached[0] == len(analysis.messages):
        return cached[1]
    report = _build(analysis)
    _CACHE[analysis] = (len(analysis.messages), report)
    return report


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _build(analysis: "Analysis") -> TimingReport:
    try:
        idle_gap = float(analysis.config.option(IDLE_OPTION, IDLE_DEFAULT))
    except (TypeError, ValueError):  # a bad -o value: the default (the rules say the same)
        idle_gap = IDLE_DEFAULT
    # By connection number: a live capture's retention limit may have dropped the first ones.
    by_number = {connection.index: analyse_connection(connection, untimed=analysis.untimed_between(
        connection.first_frame, connection.last_frame)) for connection in analysis.connections}
    connections = list(by_number.values())
    pdus_by_association: dict[int, list[int]] = {}
    for index, owner in enumerate(analysis.pdus.column("association"), analysis.pdus.base):
        pdus_by_association.setdefault(owner, []).append(index)
    messages_by_association: dict[int, list] = {}
    for message in analysis.messages:
        messages_by_association.setdefault(message.association, []).append(message)
    timings = []
    untimed_pdus = _untimed_pdus(analysis)
    for association in analysis.associations:
        tcp = by_number.get(association.connection)
        pdu_indices = pdus_by_association.get(association.index, [])
        timing = association_timing(analysis, association.index, messages_by_association.get(association.index, []),
                                    pdu_indices, tcp, idle_gap)
        timing.untimed = bool(untimed_pdus) and not untimed_pdus.isdisjoint(pdu_indices)
        timings.append(timing)
    found = exchanges(analysis)
    causes, total = _causes(analysis, [timing for timing in timings if not timing.untimed], connections)
    return TimingReport(found, srt_tables(found), timings, connections, causes, total,
                        sum(timing.untimed for timing in timings))


def _untimed_pdus(analysis: "Analysis") -> set[int]:
    """The PDUs that start or end in a frame without a time (none without simple packet blocks)."""
    if not analysis.untimed_frames:
        return set()
    time_known = analysis.time_known
    base = analysis.pdus.base
    return {index for index, (first, last) in enumerate(zip(analysis.pdus.column("first_frame"),
                                                             analysis.pdus.column("last_frame")), base)
            if not (time_known(first) and time_known(last))}


def _causes(analysis: "Analysis", timings: list[AssociationTiming],
            connections: list[ConnectionTcp]) -> tuple[list[Cause], float]:
    """Rank the causes over every association by the seconds each cost."""
    totals: dict[str, list] = {}  # name -> [seconds, associations, frame]

    def add(name: str, seconds: float, association: int, frame: int = 0) -> None:
        if seconds <= 0:
            return
        entry = totals.setdefault(name, [0.0, [], 0])
        entry[0] += seconds
        entry[1].append(association)
        if not entry[2] and frame:
            entry[2] = frame
    total = 0.0
    for timing in timings:
        total += timing.duration
        association = analysis.associations[timing.association]
        explained = 0.0
        # Stalls can overlap (a loss during a window-limited transfer): take them in this order.
        # Waits for segments that filled a hole late, with no resend that shows a loss, may be
        # reordering: they are not put down to packet loss.
        loss = "retransmission" if timing.tcp is None or any(
            figures.certain_losses for figures in timing.tcp.directions) else "late_segments"
        for cause in ("retransmission", "window", "nagle", "cwnd"):
            seconds, frame = timing.transfer_stalls.get(cause, (0.0, 0))
            seconds = min(seconds, max(0.0, timing.budget["network_transfer"] - explained))
            add(loss if cause == "retransmission" else cause, seconds, timing.association, frame)
            explained += seconds
        budget = timing.budget
        lost, frame = timing.waiting_retransmission
        lost = min(lost, budget["scp_processing"])
        add(loss, lost, timing.association, frame)
        add("network_transfer", max(0.0, budget["network_transfer"] - explained), timing.association)
        add("network_latency", budget["network_latency"], timing.association)
        add("scp_processing", budget["scp_processing"] - lost, timing.association, association.first_frame)
        add("scu_think", budget["scu_think"], timing.association, association.first_frame)
        add("idle", budget["idle"], timing.association)
    labels = {"window": "receive window limits throughput", "nagle": "Nagle/delayed-ACK stalls",
              "cwnd": "waiting for ACKs (congestion window)", "retransmission": "retransmissions (packet loss)",
              "late_segments": "late segments (reordering or upstream loss)",
              **BUDGET_LABELS}
    causes = []
    for name, (seconds, associations, frame) in totals.items():
        causes.append(Cause(name, labels[name], seconds, seconds / total if total > 0 else 0.0,
                            _detail(name, seconds, associations, timings, connections, analysis),
                            CAUSE_ADVICE[name], sorted(set(associations)), frame))
    causes.sort(key=lambda cause: -cause.seconds)
    return causes, total


def _detail(name: str, seconds: float, associations: list[int], timings, connections, analysis) -> str:
    count = len(set(associations))
    where = f"{seconds:.3f} s over {count} association(s)"
    if name in ("window", "nagle", "cwnd"):
        stalls = sum(figures.stall_count(name) for tcp in connections for figures in tcp.directions)
        return f"{where}, {stalls} stall(s)"
    if name in ("retransmission", "late_segments"):
        figures = [figures for tcp in connections for figures in tcp.directions]
        lost = sum(item.certain_losses for item in figures)
        fills = sum(item.hole_fills for item in figures)
        disorder = sum(item.out_of_order for item in figures)
        spurious = sum(item.spurious_retransmissions for item in figures)
        return (f"{where}, {lost} segment(s) resent after a loss, {fills} late hole fill(s), {disorder} out of "
                f"order, {spurious} spurious")
    if name == "network_latency":
        rtts = [tcp.handshake_rtt for tcp in connections if tcp.handshake_rtt is not None]
        if rtts:
            return f"{where}; handshake RTT {statistics.median(rtts) * 1000:.1f} ms (median)"
    return where
