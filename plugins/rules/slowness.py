"""Expert rules: why is it slow?  Each finding names a cause, its cost and the cure.

The figures come from core/model/timing.py (one computation per analysis): the
per-association time budgets, the TCP stalls inside transfer time, the
response-time statistics.  Definitions and thresholds: docs/timing.md.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.model import Group, Severity
from dicomtui.core.model.timing import CAUSE_ADVICE, IDLE_DEFAULT, IDLE_OPTION, timing_report
from dicomtui.core.base.uids import uid_label

from .common import option, peers

SCU_WAIT_OPTION = "scu_wait_seconds"
SCU_WAIT_DEFAULT = 0.5
SMALL_PDU_OPTION = "small_max_pdu"
SMALL_PDU_DEFAULT = 8192
CAUSE_SHARE_OPTION = "slow_cause_share"
CAUSE_SHARE_DEFAULT = 0.2  # a cause is reported when it cost at least this share of the associations' time
MIN_SECONDS_OPTION = "slow_min_seconds"
MIN_SECONDS_DEFAULT = 0.5  # ... and at least this many seconds: below that nobody asks why it is slow
SMALL_PDU_COUNT = 64  # P-DATA PDUs at a small limit before it is worth a note


@hookimpl
def dicomtui_register_rule_options(register):
    register(SCU_WAIT_OPTION, SCU_WAIT_DEFAULT,
             "report an SCU that waits longer than this (mean, seconds) between a response and its next request")
    register(SMALL_PDU_OPTION, SMALL_PDU_DEFAULT,
             "report a negotiated maximum PDU length at or below this that splits data sets into many PDUs")
    register(CAUSE_SHARE_OPTION, CAUSE_SHARE_DEFAULT,
             "report a cause of slowness that cost at least this share of the associations' time")
    register(MIN_SECONDS_OPTION, MIN_SECONDS_DEFAULT,
             "report a cause of slowness only when it cost at least this many seconds")
    register(IDLE_OPTION, IDLE_DEFAULT, "a longer gap with nothing outstanding counts as idle, not SCU think time")


@hookimpl
def dicomtui_check_analysis(analysis, report):
    timing = timing_report(analysis)
    if not timing.associations or timing.total_seconds <= 0:
        return
    share_needed = float(option(analysis, CAUSE_SHARE_OPTION, CAUSE_SHARE_DEFAULT))
    floor = float(option(analysis, MIN_SECONDS_OPTION, MIN_SECONDS_DEFAULT))
    causes = {cause.name: cause for cause in timing.causes}
    top = timing.causes[0] if timing.causes else None
    if top is not None and top.seconds >= floor:
        report.add(Severity.CHAT, Group.PERFORMANCE,
                   f"where the time went: {top.label} first, {top.share:.0%} of {timing.total_seconds:.3f} s "
                   f"of association time ({_ranking(timing)}) — {top.advice}", top.frame,
                   top.associations[0] if top.associations else None,
                   code="slowness.where_time_went")

    def significant(name: str) -> bool:
        cause = causes.get(name)
        return cause is not None and cause.seconds >= floor and cause.share >= share_needed

    if significant("scp_processing"):
        _slow_scp(analysis, timing, causes["scp_processing"], floor, report)
    if significant("window"):
        _window_limited(analysis, timing, causes["window"], report)
    if causes.get("nagle") is not None and causes["nagle"].seconds >= floor:
        _nagle(analysis, timing, causes["nagle"], share_needed, report)
    _retransmissions(analysis, timing, floor, report)
    _small_pdus(analysis, timing, report)
    _association_per_object(analysis, timing, report)
    _scu_waits(analysis, timing, report)


def _ranking(timing) -> str:
    return ", ".join(f"{cause.label} {cause.share:.0%}" for cause in timing.causes[:4])


def _slow_scp(analysis, timing, cause, floor, report) -> None:
    # Requests grouped by command and SOP class.  Unanswered ones have their own finding
    # (rules.timing), so only answered ones count here.
    groups: dict[str, list] = {}
    for exchange in timing.exchanges:
        if exchange.first_byte is None or exchange.response_time is None:
            continue
        key = f"{exchange.command} {uid_label(exchange.sop_class) or '?'}"
        groups.setdefault(key, []).append(exchange)
    if not groups:
        return
    key, entries = max(groups.items(), key=lambda pair: sum(e.first_byte for e in pair[1]))
    waited = sum(e.first_byte for e in entries)
    if waited < floor:
        return
    times = sorted(e.response_time for e in entries)
    slowest = max(entries, key=lambda e: e.response_time)
    request = analysis.messages[slowest.request]
    report.add(Severity.WARNING, Group.PERFORMANCE,
               f"slow SCP responses: SCP processing took {cause.seconds:.3f} s ({cause.share:.0%} of association "
               f"time); most of it {key}: {len(times)} response(s), mean {sum(times) / len(times):.3f} s, "
               f"max {times[-1]:.3f} s (request complete -> response complete) — {CAUSE_ADVICE['scp_processing']}",
               request.last_frame, request.association, request.last_pdu, request.index,
               code="slowness.slow_scp")


def _window_limited(analysis, timing, cause, report) -> None:
    details = []
    for tcp in timing.connections:
        for figures in tcp.directions:
            if not figures.stall_count("window"):
                continue
            connection = analysis.connections[tcp.connection]
            sender, receiver = (connection.client, connection.server) if figures.direction == 0 else (
                connection.server, connection.client)
            rtt = tcp.handshake_rtt or figures.rtt_min or 0.0
            cap = f", window/RTT = {figures.max_window / rtt / 1e6:.2f} MB/s" if rtt > 0 else ""
            details.append(f"{sender} -> {receiver}: {figures.stall_count('window')} stall(s) with the "
                           f"{receiver} window full (advertised {figures.min_window or 0}-{figures.max_window} "
                           f"bytes{'' if tcp.scale_known else ', window scale unknown'}), achieved "
                           + ("not measured" if figures.throughput is None else f"{figures.throughput / 1e6:.2f} MB/s")
                           + cap)
    report.add(Severity.WARNING, Group.PERFORMANCE,
               f"transfer limited by the receiver's TCP window: {cause.seconds:.3f} s ({cause.share:.0%}) spent "
               f"waiting for the window to open; " + "; ".join(details[:3]) + f" — {CAUSE_ADVICE['window']}",
               cause.frame, cause.associations[0] if cause.associations else None,
               code="slowness.window_limited")


def _nagle(analysis, timing, cause, share_needed, report) -> None:
    senders = []
    for tcp in timing.connections:
        for figures in tcp.directions:
            count = figures.stall_count("nagle")
            if count:
                connection = analysis.connections[tcp.connection]
                sender = connection.client if figures.direction == 0 else connection.server
                senders.append(f"{sender} ({count}, {figures.stall_seconds('nagle') * 1000:.0f} ms)")
    severity = Severity.WARNING if cause.share >= share_needed else Severity.NOTE
    report.add(severity, Group.PERFORMANCE,
               f"Nagle/delayed-ACK stalls: {cause.seconds:.3f} s ({cause.share:.0%} of association time) waiting "
               f"after small segments; senders: {', '.join(senders[:4])} — {CAUSE_ADVICE['nagle']}",
               cause.frame, cause.associations[0] if cause.associations else None,
               code="slowness.nagle")


def _retransmissions(analysis, timing, floor, report) -> None:
    """Loss, reordering and needless resends, told apart as tshark's sequence analysis does
    (core/wire/tcp_analysis.py): each calls for different advice."""
    for tcp in timing.connections:
        directions = tcp.directions
        certain = sum(figures.certain_losses for figures in directions)
        fills = sum(figures.hole_fills for figures in directions)
        fast = sum(figures.fast_retransmissions for figures in directions)
        disorder = sum(figures.out_of_order for figures in directions)
        spurious = sum(figures.spurious_retransmissions for figures in directions)
        if not (certain or fills or disorder or spurious):
            continue
        data = sum(figures.data_segments for figures in directions) or 1
        seconds = sum(figures.retransmission_seconds for figures in directions)
        connection = analysis.connections[tcp.connection]
        association = analysis.relations.first_association_on(tcp.connection)
        path = f"{connection.client} -> {connection.server}"
        late = (f"{fills} filled a hole later than a round trip (reordered further, or lost before the capture "
                "point: the capture cannot tell)") if fills else ""
        if certain:
            frames = [frame for figures in directions for frame in figures.frames("retransmission", "fast_retransmission")[:1]]
            lossy = (certain >= 3 and certain / data >= 0.01) or seconds >= floor
            others = [part for part in (late, f"{disorder} out of order" if disorder else "",
                                        f"{spurious} spurious" if spurious else "") if part]
            report.add(Severity.WARNING if lossy else Severity.NOTE, Group.PERFORMANCE,
                       f"packet loss on {path}: {certain} of {data} data segments ({certain / data:.1%}) resent "
                       f"after a loss ({fast} fast retransmission(s) after duplicate ACKs), {seconds:.3f} s spent "
                       f"waiting for resends" + (f"; also {', '.join(others)}" if others else "") +
                       f" — {CAUSE_ADVICE['retransmission']}", min(frames) if frames else connection.first_frame,
                       association, code="slowness.packet_loss")
        elif disorder or fills:
            frames = [frame for figures in directions
                      for frame in figures.frames("out_of_order", "retransmission")[:1]]
            parts = [f"{disorder} of {data} data segments ({disorder / data:.1%}) arrived out of order"] + \
                ([late] if late else [])
            report.add(Severity.NOTE, Group.PERFORMANCE,
                       f"reordering on {path}: {'; '.join(parts)}; no segment was resent after a loss — "
                       f"{CAUSE_ADVICE['reordering']}", min(frames) if frames else connection.first_frame,
                       association, code="slowness.reordering")
        if spurious:
            frames = [frame for figures in directions for frame in figures.frames("spurious_retransmission")[:1]]
            report.add(Severity.NOTE, Group.PERFORMANCE,
                       f"needless resends on {path}: {spurious} of {data} data segments resent after the receiver "
                       f"had acknowledged them (spurious retransmissions) — {CAUSE_ADVICE['spurious']}",
                       min(frames) if frames else connection.first_frame, association,
                       code="slowness.needless_resends")


def _small_pdus(analysis, timing, report) -> None:
    small = int(option(analysis, SMALL_PDU_OPTION, SMALL_PDU_DEFAULT))
    for item in timing.associations:
        for direction in (0, 1):
            sizes = item.pdu_sizes[direction]
            limit = sizes["limit"]
            if not limit or limit > small or sizes["at_limit"] < SMALL_PDU_COUNT \
                    or sizes["at_limit"] < sizes["count"] // 2:
                continue
            association = analysis.associations[item.association]
            side = "requestor" if direction == 1 else "acceptor"
            report.add(Severity.NOTE, Group.PERFORMANCE,
                       f"small maximum PDU length in association {peers(association)}: the {side} accepts at "
                       f"most {limit} bytes, so {sizes['count']} P-DATA PDUs were needed "
                       f"({sizes['at_limit']} at the limit) — each costs a header and processing; configure a "
                       f"larger maximum PDU length on the {side} (e.g. 16 KB to 1 MB; dcmtk: -pdu / "
                       "--max-pdu, pynetdicom: ae.maximum_pdu_size)", association.first_frame, association.index,
                       code="slowness.small_max_pdu")


def _association_per_object(analysis, timing, report) -> None:
    by_pair: dict[tuple[str, str], list] = {}
    for item in timing.associations:
        association = analysis.associations[item.association]
        by_pair.setdefault((association.calling_ae.strip(), association.called_ae.strip()), []).append(item)
    for (calling, called), items in by_pair.items():
        singles = [item for item in items if item.objects == 1]
        if len(singles) < 3 or len(singles) < len(items) // 2:
            continue
        # The cost of one association: negotiation and release around the object.
        overhead = sum(max(0.0, item.duration - item.budget["network_transfer"]) for item in singles)
        first = analysis.associations[singles[0].association]
        report.add(Severity.NOTE, Group.PERFORMANCE,
                   f"one association per object: {calling} -> {called} opened {len(singles)} associations for "
                   f"one C-STORE each ({overhead:.3f} s outside the object transfers) — send several objects "
                   "per association (most SCUs batch a study; dcmtk storescu takes many files at once), saving "
                   "a TCP and an A-ASSOCIATE handshake and a release per object", first.first_frame,
                   first.index, code="slowness.association_per_object")


def _scu_waits(analysis, timing, report) -> None:
    threshold = float(option(analysis, SCU_WAIT_OPTION, SCU_WAIT_DEFAULT))
    for item in timing.associations:
        if item.objects < 2 or not item.think_gaps:
            continue
        # SCU think time per step from one object to the next (the gaps after the A-ASSOCIATE-AC
        # and before the A-RELEASE-RQ are usually tiny and would dilute a plain mean).
        mean = item.budget["scu_think"] / (item.objects - 1)
        if mean < threshold:
            continue
        association = analysis.associations[item.association]
        share = item.shares()["scu_think"]
        report.add(Severity.WARNING, Group.PERFORMANCE,
                   f"the SCU waits between objects in association {peers(association)}: {mean:.3f} s of SCU "
                   f"think time per object (longest wait {max(item.think_gaps):.3f} s from a response to the next "
                   f"request; {share:.0%} of the association; -o {SCU_WAIT_OPTION}:N) — "
                   f"{CAUSE_ADVICE['scu_think']}",
                   association.first_frame, association.index, code="slowness.scu_waits")
