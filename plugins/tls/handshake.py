"""TLS handshake messages: ClientHello, ServerHello, Certificate, CertificateRequest, alerts.

Pure functions over bytes (RFC 8446 section 4, RFC 5246 section 7.4); malformed input raises
``ValueError``.  Only what diagnosis and decryption need is kept: randoms, versions, suites,
SNI, ALPN, the extensions that change the record layer (extended master secret,
encrypt-then-MAC), and certificates (DER, summarised in certificates.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CLIENT_HELLO, SERVER_HELLO, NEW_SESSION_TICKET, END_OF_EARLY_DATA = 1, 2, 4, 5
ENCRYPTED_EXTENSIONS, CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST = 8, 11, 12, 13
SERVER_HELLO_DONE, CERTIFICATE_VERIFY, CLIENT_KEY_EXCHANGE, FINISHED, KEY_UPDATE = 14, 15, 16, 20, 24

HANDSHAKE_NAMES = {1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket", 5: "EndOfEarlyData",
                   8: "EncryptedExtensions", 11: "Certificate", 12: "ServerKeyExchange", 13: "CertificateRequest",
                   14: "ServerHelloDone", 15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished",
                   24: "KeyUpdate"}

# RFC 8446 section 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HELLO_RETRY_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

EXT_SERVER_NAME, EXT_ALPN, EXT_ENCRYPT_THEN_MAC, EXT_EXTENDED_MASTER_SECRET = 0, 16, 22, 23
EXT_SUPPORTED_VERSIONS = 43

ALERT_DESCRIPTIONS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
    40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
    45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
    49: "access_denied", 50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
    109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
    113: "bad_certificate_status_response", 115: "unknown_psk_identity", 116: "certificate_required",
    120: "no_application_protocol",
}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, length: int) -> bytes:
        end = self.offset + length
        if end > len(self.data):
            raise ValueError("truncated handshake message")
        chunk = self.data[self.offset:end]
        self.offset = end
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.number(length_size))

    @property
    def left(self) -> int:
        return len(self.data) - self.offset


@dataclass(slots=True)
class Hello:
    """A ClientHello or ServerHello, as far as diagnosis and decryption need it."""

    kind: int  # CLIENT_HELLO or SERVER_HELLO
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: list[int]  # the client's offer; [chosen] for a ServerHello
    versions: list[int]  # supported_versions (client: offered; server: chosen), else []
    extensions: list[int] = field(default_factory=list)
    server_name: str = ""
    alpn: list[str] = field(default_factory=list)

    @property
    def version(self) -> int:
        """The version offered at most (client) or chosen (server)."""
        real = [version for version in self.versions if version & 0x0F0F != 0x0A0A]
        return max(real) if real else self.legacy_version

    @property
    def hello_retry(self) -> bool:
        return self.kind == SERVER_HELLO and self.random == HELLO_RETRY_RANDOM

    def has(self, extension: int) -> bool:
        return extension in self.extensions


def parse_hello(kind: int, body: bytes) -> Hello:
    reader = _Reader(body)
    legacy_version = reader.number(2)
    random = reader.take(32)
    session_id = reader.vector(1)
    if kind == CLIENT_HELLO:
        raw = reader.vector(2)
        suites = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw) - 1, 2)]
        reader.vector(1)  # compression methods
    else:
        suites = [reader.number(2)]
        reader.number(1)
    hello = Hello(kind, legacy_version, random, session_id, suites, [])
    if reader.left >= 2:
        extensions = _Reader(reader.vector(2))
        while extensions.left >= 4:
            code = extensions.number(2)
            data = extensions.vector(2)
            hello.extensions.append(code)
            try:
                _extension(hello, code, data)
            except ValueError:
                pass  # a malformed extension's value is not needed to go on
    return hello


def _extension(hello: Hello, code: int, data: bytes) -> None:
    reader = _Reader(data)
    if code == EXT_SUPPORTED_VERSIONS:
        if hello.kind == CLIENT_HELLO:
            raw = reader.vector(1)
            hello.versions = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw) - 1, 2)]
        else:
            hello.versions = [reader.number(2)]
    elif code == EXT_SERVER_NAME and hello.kind == CLIENT_HELLO:
        names = _Reader(reader.vector(2))
        while names.left >= 3:
            name_type = names.number(1)
            name = names.vector(2)
            if name_type == 0:
                hello.server_name = name.decode("ascii", "replace")
    elif code == EXT_ALPN:
        protocols = _Reader(reader.vector(2))
        while protocols.left:
            hello.alpn.append(protocols.vector(1).decode("ascii", "replace"))


def parse_certificate(body: bytes, tls13: bool) -> list[bytes]:
    """The DER certificates of a Certificate message, the peer's own first."""
    reader = _Reader(body)
    if tls13:
        reader.vector(1)  # certificate_request_context
    entries = _Reader(reader.vector(3))
    certificates = []
    while entries.left:
        certificates.append(entries.vector(3))
        if tls13:
            entries.vector(2)  # per-certificate extensions
    return certificates


def split_handshake(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Whole handshake messages (type, body) taken off the front of ``buffer``; a partial one stays."""
    messages = []
    offset = 0
    while len(buffer) - offset >= 4:
        length = int.from_bytes(buffer[offset + 1:offset + 4], "big")
        if len(buffer) - offset - 4 < length:
            break
        messages.append((buffer[offset], bytes(buffer[offset + 4:offset + 4 + length])))
        offset += 4 + length
    del buffer[:offset]
    return messages
