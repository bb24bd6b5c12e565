"""Captures carrying user identity secrets in every shape the masking must survive.

The A-ASSOCIATE PDUs start as pynetdicom's encoding (``hostile_tools``); the
User Identity (0x58) and server response (0x59) sub-items are added with
``struct`` exactly as PS3.8 D.3.3.7 lays them out, in forms pynetdicom will not
encode (secondary fields on types 1, 3, 4, 5; two items; broken lengths).  The
TCP layer is written segment by segment so a test can retransmit, overlap,
reorder and lose exactly the bytes it wants.

Every secret is a unique marker; ``VARIANTS`` maps a variant name to
(client PDUs and their segmenting, server PDUs, secrets).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import hostile_tools as tools

FILLER = "QZXJWVKQZXJWVKQZ"  # letters no output uses, so any 10-byte window of a marker is telling


def marker(variant: str, what: str) -> bytes:
    """``R3TR4NSM1TT3D:P4SSC0D3:QZXJ...``: readable in a failure message, unlike any real output."""
    return f"{variant}:{what}:".upper().translate(str.maketrans("AEIOS", "43105")).encode() + FILLER.encode()


def identity_item(kind: int, primary: bytes, secondary: bytes = b"", positive: int = 1,
                  secondary_length: int | None = None) -> bytes:
    value = struct.pack("!BBH", kind, positive, len(primary)) + primary + \
        struct.pack("!H", len(secondary) if secondary_length is None else secondary_length) + secondary
    return struct.pack("!BBH", 0x58, 0, len(value)) + value


def response_item(response: bytes) -> bytes:
    value = struct.pack("!H", len(response)) + response
    return struct.pack("!BBH", 0x59, 0, len(value)) + value


def with_user_items(pdu: bytes, *sub_items: bytes, trailing: bytes = b"") -> bytes:
    """``pdu`` with sub-items added to its User Information item and ``trailing`` after it."""
    position = 74
    while pdu[position] != 0x50:
        position += 4 + struct.unpack_from("!H", pdu, position + 2)[0]
    length = struct.unpack_from("!H", pdu, position + 2)[0]
    user = pdu[position + 4 : position + 4 + length] + b"".join(sub_items)
    body = pdu[6:position] + struct.pack("!BBH", 0x50, 0, len(user)) + user + \
        pdu[position + 4 + length :] + trailing
    return struct.pack("!BBI", pdu[0], 0, len(body)) + body


def contexts(count: int) -> list[tuple[int, str, list[str]]]:
    return [(2 * number + 1, tools.CT_IMAGE, [tools.IMPLICIT_LE, tools.EXPLICIT_LE]) for number in range(count)]


# -- TCP ------------------------------------------------------------------------------------------------


def _frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
           payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


@dataclass
class Connection:
    """One TCP connection written frame by frame; offsets are stream offsets (0 = first data byte)."""

    client_port: int
    server_port: int = 104
    isn: tuple[int, int] = (1000, 50000)
    frames: list[bytes] = field(default_factory=list)
    sent: list[int] = field(default_factory=lambda: [0, 0])  # highest stream offset sent, per direction
    client: bytes = bytes([10, 0, 0, 1])
    server: bytes = bytes([10, 0, 0, 2])

    def _ends(self, direction: int):
        if direction == 0:
            return self.client, self.server, self.client_port, self.server_port
        return self.server, self.client, self.server_port, self.client_port

    def _seq(self, direction: int, offset: int) -> int:
        return self.isn[direction] + 1 + offset

    def handshake(self) -> None:
        self.frames.append(_frame(*self._ends(0), self.isn[0], 0, 0x02, b""))
        self.frames.append(_frame(*self._ends(1), self.isn[1], self._seq(0, 0), 0x12, b""))
        self.frames.append(_frame(*self._ends(0), self._seq(0, 0), self._seq(1, 0), 0x10, b""))

    def segment(self, direction: int, offset: int, payload: bytes, recorded: bool = True,
                acknowledged: bool = True) -> None:
        other = 1 - direction
        if recorded:
            self.frames.append(_frame(*self._ends(direction), self._seq(direction, offset),
                                      self._seq(other, self.sent[other]), 0x18, payload))
        self.sent[direction] = max(self.sent[direction], offset + len(payload))
        if acknowledged:
            self.frames.append(_frame(*self._ends(other), self._seq(other, self.sent[other]),
                                      self._seq(direction, self.sent[direction]), 0x10, b""))

    def send(self, direction: int, data: bytes, mss: int = 1460) -> None:
        """The next PDU(s) of a direction, in order, in segments of at most ``mss`` bytes."""
        start = self.sent[direction]
        for position in range(0, len(data), mss):
            self.segment(direction, start + position, data[position : position + mss])

    def close(self) -> None:
        self.frames.append(_frame(*self._ends(0), self._seq(0, self.sent[0]), self._seq(1, self.sent[1]), 0x11, b""))
        self.frames.append(_frame(*self._ends(1), self._seq(1, self.sent[1]), self._seq(0, self.sent[0]) + 1, 0x11,
                                  b""))
        self.frames.append(_frame(*self._ends(0), self._seq(0, self.sent[0]) + 1, self._seq(1, self.sent[1]) + 1,
                                  0x10, b""))


def pcap(frames: list[bytes], start: float = 1_700_000_000.0) -> bytes:
    parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for number, frame in enumerate(frames):
        stamp = start + number * 0.001
        seconds = int(stamp)
        parts.append(struct.pack("<IIII", seconds, round((stamp - seconds) * 1e6) % 1_000_000, len(frame),
                                 len(frame)))
        parts.append(frame)
    return b"".join(parts)


# -- the variants ---------------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    request: bytes
    accept: bytes
    secrets: list[bytes]
    deliver: str = "whole"  # how the request's bytes travel (see build_connection)
    server_port: int = 104
    isn: tuple[int, int] = (1000, 50000)
    mss: int = 1460


def _variant(name: str, sub_items: list[bytes], secrets: list[bytes], *, accept_items: tuple[bytes, ...] = (),
             trailing: bytes = b"", context_count: int = 1, **options) -> Variant:
    request = with_user_items(tools.associate_rq("SECRETSCU", "ANY-SCP", contexts(context_count)), *sub_items,
                              trailing=trailing)
    accept = with_user_items(tools.associate_ac("SECRETSCU", "ANY-SCP", contexts(context_count)), *accept_items)
    return Variant(name, request, accept, secrets, **options)


def variants() -> list[Variant]:
    found: list[Variant] = []
    for kind in (1, 2, 3, 4, 5):
        for with_secondary in (False, True):
            name = f"t{kind}{'s' if with_secondary else ''}"
            primary = f"user-{name}".encode() if kind in (1, 2) else marker(name, "primary")
            secondary = marker(name, "secondary") if with_secondary or kind == 2 else b""
            if kind == 2 and not with_secondary:
                name = "t2-passcode"
                secondary = marker(name, "passcode")
                primary = b"user-t2"
            secrets = ([] if kind in (1, 2) else [primary]) + ([secondary] if secondary else [])
            found.append(_variant(name, [identity_item(kind, primary, secondary)], secrets))
    found = [variant for variant in found if variant.name != "t2s"]  # type 2 always has its passcode
    passcode = marker("retransmitted", "passcode")
    found.append(_variant("retransmitted", [identity_item(2, b"user-rt", passcode)], [passcode],
                          deliver="retransmitted"))
    for deliver in ("overlap-resend", "overlap-reordered"):
        passcode = marker(deliver, "passcode")
        found.append(_variant(deliver, [identity_item(2, b"user-ov", passcode)], [passcode], deliver=deliver))
    first, second = marker("two-items", "first"), marker("two-items", "second")
    found.append(_variant("two-items", [identity_item(2, b"user-a", first), identity_item(5, second)],
                          [first, second]))
    passcode = marker("trailing-item", "passcode")
    found.append(_variant("trailing-item", [identity_item(2, b"user-ti", passcode)], [passcode],
                          trailing=struct.pack("!BBH", 0x77, 0, 8) + b"\x00" * 8))
    passcode = marker("trailing-runs-past", "passcode")
    found.append(_variant("trailing-runs-past", [identity_item(2, b"user-tr", passcode)], [passcode],
                          trailing=struct.pack("!BBH", 0x77, 0, 900) + b"\x00" * 20))
    passcode = marker("identity-lengths-wrong", "passcode")
    found.append(_variant("identity-lengths-wrong",
                          [identity_item(2, b"user-lw", passcode, secondary_length=4000)], [passcode]))
    passcode = marker("sub-item-runs-past", "passcode")
    found.append(_variant("sub-item-runs-past", [struct.pack("!BBH", 0x55, 0, 600) + b"X" * 4,
                                                 identity_item(2, b"user-sr", passcode)], [passcode]))
    for deliver in ("lost-tail-mid-secret", "lost-tail-mid-header", "lost-tail-before-user-info"):
        passcode = marker(deliver, "passcode")
        found.append(_variant(deliver, [identity_item(2, b"user-lt", passcode)], [passcode], deliver=deliver))
    for kind, name in ((3, "ac-kerberos"), (5, "ac-jwt")):
        token = marker(name, "request-token")
        response = marker(name, "server-response")
        found.append(_variant(name, [identity_item(kind, token)], [token, response],
                              accept_items=(response_item(response),)))
    passcode = marker("odd-port", "passcode")
    found.append(_variant("odd-port", [identity_item(2, b"user-op", passcode)], [passcode], server_port=4242))
    jwt = marker("large", "jwt") * 24  # ~800-byte token spanning segments
    secondary = marker("large", "secondary")
    found.append(_variant("large", [identity_item(5, jwt, secondary)], [jwt, secondary], context_count=12,
                          isn=((1 << 32) - 1000, 7), mss=500))  # sequence numbers wrap inside the request
    return found


def secret_position(variant: Variant) -> int:
    """Where the request's last secret starts (0 when it has none)."""
    return max((variant.request.index(secret) for secret in variant.secrets if secret in variant.request),
               default=0)


def build_connection(variant: Variant, client_port: int) -> Connection:
    connection = Connection(client_port, variant.server_port, variant.isn)
    connection.handshake()
    request = variant.request
    deliver = variant.deliver
    at = secret_position(variant)
    if deliver == "whole":
        connection.send(0, request, variant.mss)
    elif deliver == "retransmitted":
        connection.segment(0, 0, request, acknowledged=False)
        connection.segment(0, 0, request)  # the same frame again
    elif deliver == "overlap-resend":
        connection.segment(0, 0, request[: at + 12], acknowledged=False)
        connection.segment(0, at - 20, request[at - 20 :])  # overlaps the first copy's end
    elif deliver == "overlap-reordered":
        connection.segment(0, at + 12, request[at + 12 :], acknowledged=False)  # the later bytes first
        connection.segment(0, 0, request[: at + 30])  # then the start, overlapping them
    elif deliver.startswith("lost-tail"):
        cut = {"lost-tail-mid-secret": at + 15, "lost-tail-mid-header": at - 10,
               "lost-tail-before-user-info": 80}[deliver]
        connection.segment(0, 0, request[:cut])
        connection.segment(0, cut, request[cut:], recorded=False)  # acknowledged, never captured ...
    else:
        raise ValueError(deliver)
    connection.send(1, variant.accept)
    for pdu in tools.store_rq(tools.implicit_dataset(PatientName="Masked^Not", PatientID="ID-1"),
                              instance=f"1.2.3.{client_port}"):
        connection.send(0, pdu)
    if deliver.startswith("lost-tail"):  # ... until a late retransmission, long after the gap was declared
        # (the reassembler waits LATE_SEGMENT_WAIT = 10 ms of capture time for a segment its peer has
        # acknowledged: frames are 1 ms apart here, so the retransmission comes 20 frames later)
        for _ in range(20):
            connection.frames.append(_frame(*connection._ends(1), connection._seq(1, connection.sent[1]),
                                            connection._seq(0, connection.sent[0]), 0x10, b""))
        cut = len(request) - len(request[cut:])
        connection.segment(0, cut, request[cut:])
    connection.send(0, tools.release_rq())
    connection.send(1, tools.release_rp())
    connection.close()
    return connection


def secrets_capture(selected: list[Variant] | None = None) -> tuple[bytes, list[bytes]]:
    """One capture, one connection per variant; and every secret it carries."""
    frames: list[bytes] = []
    secrets: list[bytes] = []
    for number, variant in enumerate(selected or variants()):
        frames += build_connection(variant, 40000 + number).frames
        secrets += variant.secrets
    return pcap(frames), secrets
