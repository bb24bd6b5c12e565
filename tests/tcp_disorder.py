"""Captures whose TCP data was only reordered, duplicated, or dropped and resent, built from a
fixture's own frames (tests/capture_tools.py): the three diagnoses tshark's sequence analysis
tells apart (out of order, spurious retransmission, retransmission after a real hole)."""

from __future__ import annotations

from pathlib import Path

from capture_tools import FIXTURES, RawFrame, read_frames, tcp_of, with_ts, write_pcap

SOURCE = FIXTURES / "timing_delay.pcap"  # one association, 50 ms handshake RTT, 120 data segments


def _frames(source: Path = SOURCE) -> list[RawFrame]:
    """A fixture's frames, raw IP packets given an Ethernet header (what the edits expect)."""
    header = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return [RawFrame(float(frame.ts), header + frame.data if frame.link_type == 101 else frame.data,
                     1 if frame.link_type == 101 else frame.link_type)
            for frame in read_frames(source)]


def _data_of(frames: list[RawFrame], port: int) -> list[int]:
    """Indices of the frames carrying data towards ``port``."""
    found = []
    for index, frame in enumerate(frames):
        parts = tcp_of(frame)
        if parts and parts[2].dport == port and len(parts[2].data):
            found.append(index)
    return found


def _client_port(frames: list[RawFrame], server: int) -> int:
    for frame in frames:
        parts = tcp_of(frame)
        if parts and parts[2].dport == server:
            return parts[2].sport
    raise ValueError("no client")


def _server_port(frames: list[RawFrame]) -> int:
    for frame in frames:
        parts = tcp_of(frame)
        if parts and parts[2].flags & 0x12 == 0x12:  # the SYN/ACK comes from the server
            return parts[2].sport
    raise ValueError("no handshake")


def reordered(out: Path, every: int = 4, distance: int = 1, source: Path = SOURCE) -> Path:
    """Every ``every``-th data segment to the server traded places with the one ``distance`` data
    segments later: each byte arrives once, some before the bytes ahead of them."""
    frames = _frames(source)
    port = _server_port(frames)
    data = _data_of(frames, port)
    replies = set(_data_of(frames, _client_port(frames, port)))
    for first, second in list(zip(data, data[distance:]))[::every]:
        if replies.intersection(range(first, second)):
            continue  # the later segment may acknowledge a reply in between: it cannot come first
        # The contents trade places; each position keeps its time, so the capture stays in time order.
        frames[first], frames[second] = (with_ts(frames[second], frames[first].ts),
                                          with_ts(frames[first], frames[second].ts))
    return write_pcap(out, _acks_in_order(frames), nano=True)


def _acks_in_order(frames: list[RawFrame]) -> list[RawFrame]:
    """The server's ACKs made to cover only what it has received in order by then (a real
    receiver's), so that no ACK runs ahead of the data the capture shows."""
    port = _server_port(frames)
    held: list[tuple[int, int]] = []
    contiguous = None
    for index, frame in enumerate(frames):
        parts = tcp_of(frame)
        if not parts:
            continue
        tcp = parts[2]
        if tcp.dport == port:
            if tcp.flags & 0x02:
                contiguous = tcp.seq + 1
            elif len(tcp.data) and contiguous is not None:
                held.append((tcp.seq, tcp.seq + len(tcp.data)))
                held.sort()
                while held and held[0][0] <= contiguous:
                    contiguous = max(contiguous, held.pop(0)[1])
        elif contiguous is not None and tcp.flags & 0x10 and not tcp.flags & 0x02 and tcp.ack > contiguous:
            frames[index] = _acking(frame, contiguous, tcp.win)
    return frames


def duplicated(out: Path, every: int = 6) -> Path:
    """Every ``every``-th data segment to the server sent again just after the server's ACK that
    covers it (a resend the receiver did not need: a spurious retransmission)."""
    frames = _frames()
    port = _server_port(frames)
    for index in reversed(_data_of(frames, port)[::every]):
        copy = tcp_of(frames[index])[2]
        end = copy.seq + len(copy.data)
        for later in range(index + 1, len(frames)):
            parts = tcp_of(frames[later])
            if parts and parts[2].sport == port and parts[2].ack >= end:
                after = frames[later + 1].ts if later + 1 < len(frames) else frames[later].ts + 0.001
                frames.insert(later + 1, with_ts(frames[index], (frames[later].ts + after) / 2))
                break
    return write_pcap(out, frames, nano=True)


def _acking(frame: RawFrame, ack: int, window: int) -> RawFrame:
    eth, ip, tcp = tcp_of(frame)
    tcp.ack, tcp.win, tcp.sum, ip.sum = ack, window, 0, 0
    ip.data = tcp
    eth.data = ip
    return RawFrame(frame.ts, bytes(eth), frame.link_type)


def dropped_and_resent(out: Path, which: tuple[int, ...] = (20, 60), dup_acks: int = 3) -> Path:
    """Data segments to the server lost after the capture point: the server's next ``dup_acks``
    ACKs stay at the lost segment (duplicate ACKs) and the client resends it after them; the
    first loss is resent at once (a fast retransmission), the others after a 200 ms timeout."""
    frames = _frames()
    port = _server_port(frames)
    data = _data_of(frames, port)
    for number, position in reversed(list(enumerate(which))):
        index = data[position]
        lost = tcp_of(frames[index])[2]
        acks = []
        for later in range(index + 1, len(frames)):
            parts = tcp_of(frames[later])
            if parts and parts[2].sport == port:
                if len(parts[2].data):
                    break  # the server's own data moves its sequence number: no duplicate ACK after it
                if parts[2].ack > lost.seq:
                    acks.append(later)
                    if len(acks) == dup_acks:
                        break
        window = tcp_of(frames[acks[0]])[2].win
        for later in acks:  # the same ACK number and window: duplicate ACKs
            frames[later] = _acking(frames[later], lost.seq, window)
        at = (acks[-1] if acks else index) + 1
        wait = 0.001 if number == 0 else 0.2
        resend = with_ts(frames[index], frames[at - 1].ts + wait)
        frames = frames[:at] + [resend] + [with_ts(frame, frame.ts + wait) for frame in frames[at:]]
    return write_pcap(out, frames, nano=True)
