"""One TLS connection as a stream transform: records in, the application data out (sans-IO).

``TlsSession.feed(direction, wire_bytes)`` frames records, follows the handshake in the clear
(and, with secrets, encrypted), decrypts what the secrets allow and returns the application
data: the inner stream that detection and the DICOM decoder read (core/wire/transform.py).
It also keeps what the diagnosis needs (rules.py): hellos, certificates, alerts, record
counts, and ``events`` (what went wrong, at which wire offset of which direction).

Worst case: O(n) in wire bytes; a direction's buffer holds at most one record (18 KB) plus a
segment, its handshake buffer at most ``MAX_HANDSHAKE_BYTES``.  A record that does not
authenticate stops decryption of that direction (a finding), as does a capture gap: no byte
after either is ever guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import describe
from .certificates import CertificateSummary, summarise
from .handshake import (
    CERTIFICATE,
    CERTIFICATE_REQUEST,
    CLIENT_HELLO,
    CLIENT_KEY_EXCHANGE,
    EXT_ENCRYPT_THEN_MAC,
    EXT_EXTENDED_MASTER_SECRET,
    FINISHED,
    KEY_UPDATE,
    SERVER_HELLO,
    Hello,
    parse_certificate,
    parse_hello,
    split_handshake,
)
from .keyschedule import DirectionKeys, key_block12, next_traffic_secret13, traffic_keys13
from .protection import RecordAuthError, RecordDecryptor
from .record_types import (  # noqa: F401 (names other modules take from here)
    ALERT,
    APPLICATION_DATA,
    CHANGE_CIPHER_SPEC,
    HANDSHAKE,
    MAX_RECORD,
    looks_like_record,
)
from .resync import MAX_FALSE_HEADERS, find_record, record_overhead, sequence_candidates
from .suites import SUITES, CipherSuite, suite_name, version_name

MAX_HANDSHAKE_BYTES = 1 << 20
MAX_HELD_BYTES = 8 << 20  # per direction: records kept while waiting for a key log to grow




@dataclass(slots=True)
class TlsEvent:
    """Something the diagnosis reports: where (TCP direction, wire offset) and what."""

    kind: str  # "alert", "auth-failed", "gap", "not-tls", "no-secret", "bad-handshake", "key-update", ...
    direction: int
    wire_offset: int
    detail: str = ""
    value: int = 0  # the alert description, ...
    encrypted: bool = False


@dataclass(slots=True)
class _Direction:
    buffer: bytearray = field(default_factory=bytearray)
    consumed: int = 0  # wire bytes of this direction before ``buffer``
    handshake: bytearray = field(default_factory=bytearray)
    decryptor: RecordDecryptor | None = None
    pending_keys: tuple | None = None  # TLS 1.2: keys that take effect at ChangeCipherSpec
    encrypted: bool = False  # records are protected from here on
    stopped: str = ""  # why this direction is no longer followed
    secret: bytes = b""  # TLS 1.3: the current traffic secret (for KeyUpdate)
    records: int = 0
    decrypted_records: int = 0
    undecrypted_records: int = 0
    application_bytes: int = 0
    key_updates: int = 0
    protected_wire_bytes: int = 0  # of the protected records (for the record size after a gap)
    protected_records: int = 0
    resync_from: int = -1  # after a gap: the wire offset of the first record it touched (-1: none)
    resync_sequence: int = 0  # the sequence number of that record
    false_headers: int = 0
    lost_inner: int = 0  # inner bytes a gap took, for take_gap
    # Live capture: protected records kept while the key log may still get their secrets
    held: list = field(default_factory=list)  # (content type, version, fragment, wire offset)
    held_bytes: int = 0
    unheld: int = 0  # protected records neither decrypted nor held: no replay from the start then
    out: list = field(default_factory=list)  # plaintext a replay produced for this direction
    awaiting_label: str = ""  # TLS 1.3: the traffic secret this direction waits for in the key log


@dataclass(slots=True)
class _SecretsSnapshot:
    """Where a snapshot's secrets were: only the loading problems, for findings."""

    problems: list[str]


class TlsSession:
    """A ``StreamTransform`` for a TLS connection (directions are TCP directions)."""

    def __init__(self, client_direction: int | None, secrets) -> None:
        self.client_direction = client_direction  # the ClientHello's sender; None until seen
        self.secrets = secrets  # secrets.SecretSources
        self.directions = (_Direction(), _Direction())
        self.client_hello: Hello | None = None
        self.server_hello: Hello | None = None
        self.hello_retry = False
        self.suite: CipherSuite | None = None
        self.version = 0
        self.certificates: dict[str, list[CertificateSummary]] = {}  # "server"/"client" -> chain
        self.certificate_requested = False
        self.events: list[TlsEvent] = []
        self.secret_source = ""  # what decrypted it: "key log", "RSA key", ...
        self.missing_secret = ""  # which secret would decrypt it, when none was found
        self.transcript = bytearray()  # TLS 1.2 handshake messages, for RFC 7627's session hash
        self.session_hash = None
        self.encrypted_premaster = b""
        self.transcript_limit = False
        # (TCP direction, wire offset) of what findings point at: "server_hello", "server_certificate",
        # "client_certificate", "first_undecrypted"
        self.places: dict[str, tuple[int, int]] = {}

    # -- what views show --------------------------------------------------------------------

    @property
    def name(self) -> str:
        if self.suite is None and self.server_hello is None:
            return "TLS"
        suite = self.suite.name if self.suite else suite_name(self.server_hello.cipher_suites[0])
        return f"{version_name(self.version)} ({suite})"

    @property
    def decrypted(self) -> bool:
        return any(direction.decrypted_records for direction in self.directions)

    def snapshot(self) -> TlsSession:
        """A picklable copy for batch mode: what views and rules read, no secrets and no ciphers."""
        import copy

        clone = copy.copy(self)
        clone.secrets = _SecretsSnapshot(list(getattr(self.secrets, "problems", [])))
        clone.directions = tuple(_Direction(consumed=d.consumed, encrypted=d.encrypted, stopped=d.stopped,
                                            records=d.records, decrypted_records=d.decrypted_records,
                                            undecrypted_records=d.undecrypted_records + len(d.held),
                                            application_bytes=d.application_bytes, key_updates=d.key_updates)
                                 for d in self.directions)
        clone.transcript = bytearray()
        clone.encrypted_premaster = b""
        return clone

    def status(self) -> str:
        """Decrypted, or why not, in a few words (describe.py)."""
        return describe.status(self)

    def summary(self) -> str:
        """One line for views (describe.py)."""
        return describe.summary(self)

    def details(self) -> list[tuple[str, str]]:
        """(label, value) rows for a tree (describe.py)."""
        return describe.details(self)

    def as_json(self) -> dict:
        """The TLS facts for ``--json`` (describe.py); never a secret."""
        return describe.as_json(self)

    # -- the transform ----------------------------------------------------------------------

    def feed(self, direction: int, data) -> bytes:
        state = self.directions[direction]
        if state.stopped:
            return b""
        buffer = state.buffer
        buffer += data
        out: list[bytes] = []
        offset = 0
        if state.resync_from >= 0:
            offset = self._resync(direction, state)
            if offset is None:
                return b""
        while len(buffer) - offset >= 5:
            content_type = buffer[offset]
            version = int.from_bytes(buffer[offset + 1:offset + 3], "big")
            length = int.from_bytes(buffer[offset + 3:offset + 5], "big")
            if content_type not in (20, 21, 22, 23) or buffer[offset + 1] != 3 or length > MAX_RECORD:
                self._stop(direction, state, "not-tls", state.consumed + offset,
                           f"bytes that are not a TLS record (type {content_type}, length {length})")
                break
            if len(buffer) - offset - 5 < length:
                break
            fragment = bytes(buffer[offset + 5:offset + 5 + length])
            record_offset = state.consumed + offset
            offset += 5 + length
            state.records += 1
            plaintext = self._record(direction, state, content_type, version, fragment, record_offset)
            if plaintext:
                out.append(plaintext)
            if state.stopped:
                break
        state.consumed += offset
        del buffer[:offset]
        if state.stopped:
            buffer.clear()
        if state.out:  # a replay's plaintext comes before this feed's
            out[:0], state.out = state.out, []
        return b"".join(out)

    def gap(self, direction: int, length: int) -> int | None:
        """Records after a gap are found again when the suite allows (resync.py); 0 now, and
        ``take_gap`` says how much plaintext was lost once they are."""
        state = self.directions[direction]
        if state.stopped:
            return None
        where = state.consumed + len(state.buffer)
        suite = self.suite
        overhead = record_overhead(suite, self.version == 0x0304) if suite is not None else None
        if not state.encrypted or overhead is None:
            why = "before encryption began" if not state.encrypted else "CBC records cannot be found again"
            self._stop(direction, state, "gap", where, f"{length} byte(s) missing from the capture ({why}): "
                       "decryption stops there in this direction")
            return None
        if state.resync_from < 0:
            state.resync_from = state.consumed  # the buffer starts at a record: it is lost whole
            state.resync_sequence = state.decryptor.sequence if state.decryptor is not None else 0
        state.consumed += len(state.buffer) + length
        state.buffer.clear()
        self.events.append(TlsEvent("gap-resync", direction, where, f"{length} byte(s) missing from the capture"))
        return 0

    # -- a key log that grows while the capture runs ------------------------------------------

    def _hold(self, direction: int, state: _Direction, content_type: int, version: int, fragment: bytes,
              offset: int) -> bool:
        """Keep a record that has no secret yet, while a key log file may still get it; True when
        kept (it is then decrypted if the secret comes, else counted as undecrypted)."""
        secrets = self.secrets
        waiting = state.awaiting_label or self.missing_secret.startswith("a key log")
        if not (waiting and secrets.keylog.files) or state.unheld \
                or state.held_bytes + len(fragment) > MAX_HELD_BYTES \
                or secrets.held_bytes + len(fragment) > secrets.max_held_bytes:
            if state.held:  # too much to keep: these stay undecrypted
                state.undecrypted_records += len(state.held)
                secrets.held_bytes -= state.held_bytes
                state.held.clear()
                state.held_bytes = 0
            state.unheld += 1
            return False
        state.held.append((content_type, version, fragment, offset))
        state.held_bytes += len(fragment)
        secrets.held_bytes += len(fragment)
        if state.awaiting_label:  # TLS 1.3: the handshake was decrypted, the traffic secret not yet logged
            secret = secrets.keylog_secret(state.awaiting_label, self.client_hello.random)
            if secret is not None:
                state.awaiting_label = ""
                state.secret = secret
                state.decryptor = RecordDecryptor(self.suite, traffic_keys13(self.suite, secret), True)
                self._replay(direction)
            return True
        self.missing_secret = ""
        self._server_hello_keys()  # looks again (the key log is re-read when it has grown)
        if not self.missing_secret:
            for each in (0, 1):
                self._replay(each)
        return True

    def _replay(self, direction: int) -> None:
        """The secrets came: decrypt what this direction kept, in its order."""
        state = self.directions[direction]
        if state.encrypted and state.pending_keys is not None:  # TLS 1.2: its ChangeCipherSpec has passed
            state.decryptor = RecordDecryptor(*state.pending_keys)
            state.pending_keys = None
        if state.decryptor is None:
            return
        self.secrets.held_bytes -= state.held_bytes
        held, state.held, state.held_bytes = state.held, [], 0
        for content_type, version, fragment, offset in held:
            plaintext = self._record(direction, state, content_type, version, fragment, offset)
            if plaintext:
                state.out.append(plaintext)

    def take_gap(self, direction: int) -> int:
        state = self.directions[direction]
        lost, state.lost_inner = state.lost_inner, 0
        return lost

    def _resync(self, direction: int, state: _Direction) -> int | None:
        """After a gap: the buffer offset of the next record (decryption set to its sequence
        number), or None while more bytes are needed or when the direction stops."""
        buffer = state.buffer
        tls13 = self.version == 0x0304
        types = (APPLICATION_DATA,) if tls13 else (ALERT, HANDSHAKE, APPLICATION_DATA)
        version = 0x0303 if tls13 else self.version
        overhead = record_overhead(self.suite, tls13)
        start = 0
        while True:
            offset = find_record(buffer, start, types, version, overhead - 5)
            if offset is None:
                if len(buffer) > 2 * MAX_RECORD + 10:  # no pair of headers in two records' worth: drop the front
                    dropped = len(buffer) - MAX_RECORD - 10
                    del buffer[:dropped]
                    state.consumed += dropped
                return None
            record_start = state.consumed + offset
            lost_wire = record_start - state.resync_from
            if state.decryptor is None:  # not decrypting: framing is all there is to recover
                state.resync_from = -1
                return offset
            length = int.from_bytes(buffer[offset + 3:offset + 5], "big")
            fragment = bytes(buffer[offset + 5:offset + 5 + length])
            explicit = None
            if not tls13 and self.suite.cipher.startswith("AES") and self.suite.aead:
                explicit = int.from_bytes(fragment[:8], "big")
            average = state.protected_wire_bytes / state.protected_records if state.protected_records else 0
            for sequence in sequence_candidates(state.resync_sequence, lost_wire, average, explicit):
                state.decryptor.sequence = sequence
                try:
                    state.decryptor.decrypt(buffer[offset], version, fragment)
                except RecordAuthError:
                    continue
                state.decryptor.sequence = sequence  # the loop decrypts it again, as any record
                records = sequence - state.resync_sequence
                lost_plaintext = max(0, lost_wire - records * overhead)
                assumed = ""
                if not tls13 and state.resync_sequence == 0:
                    lost_plaintext = max(0, lost_plaintext - 16)  # record 0 is the Finished (16 bytes)
                elif tls13 and direction != self.client_direction and not state.application_bytes:
                    # A TLS 1.3 server sends NewSessionTickets before its first application data:
                    # records lost there are taken as those (if wrong, the DICOM decoder says so)
                    lost_plaintext = 0
                    assumed = " (before the server's first application data: taken as NewSessionTickets)"
                state.lost_inner += lost_plaintext
                self.events.append(TlsEvent("resynchronised", direction, record_start,
                                            f"{records} record(s) lost; decryption resumes at record {sequence}"
                                            + assumed))
                state.resync_from = -1
                return offset
            state.false_headers += 1
            if state.false_headers > MAX_FALSE_HEADERS:
                state.decryptor.sequence = state.resync_sequence
                self._stop(direction, state, "gap", record_start, "after a capture gap no record decrypted "
                           "again (a KeyUpdate or renegotiation lost in the gap?): decryption stops there")
                return None
            start = offset + 1

    # -- records ----------------------------------------------------------------------------

    def _stop(self, direction: int, state: _Direction, kind: str, offset: int, detail: str) -> None:
        state.stopped = detail
        state.decryptor = None
        self.events.append(TlsEvent(kind, direction, offset, detail))

    def _record(self, direction: int, state: _Direction, content_type: int, version: int, fragment: bytes,
                offset: int) -> bytes:
        tls13 = self.version == 0x0304
        if content_type == CHANGE_CIPHER_SPEC:
            # TLS 1.2: encryption starts here.  Before a ServerHello (TLS 1.3's compatibility CCS
            # around a HelloRetryRequest) and in TLS 1.3 it means nothing.
            if not tls13 and self.server_hello is not None:
                state.encrypted = True
                if state.pending_keys is not None:
                    state.decryptor = RecordDecryptor(*state.pending_keys)
                    state.pending_keys = None
            return b""
        protected = content_type == APPLICATION_DATA if tls13 else state.encrypted
        if protected:
            state.encrypted = True
            state.protected_records += 1
            state.protected_wire_bytes += 5 + len(fragment)
            if state.decryptor is None:
                self.places.setdefault("first_undecrypted", (direction, offset))
                if self._hold(direction, state, content_type, version, fragment, offset):
                    return b""
                state.undecrypted_records += 1
                return b""
            try:
                content_type, fragment = state.decryptor.decrypt(content_type, version, fragment)
            except RecordAuthError as exc:
                record = state.decryptor.sequence
                self._stop(direction, state, "auth-failed", offset,
                           f"record {record} of this direction did not authenticate ({exc}): wrong secrets, "
                           "a lost record or tampering; nothing after it is decrypted")
                return b""
            state.decrypted_records += 1
        if content_type == APPLICATION_DATA:
            if not protected:
                self._stop(direction, state, "bad-handshake", offset, "application data before encryption")
                return b""
            state.application_bytes += len(fragment)
            return fragment
        if content_type == ALERT:
            if len(fragment) >= 2:
                self.events.append(TlsEvent("alert", direction, offset, "fatal" if fragment[0] == 2 else "warning",
                                            fragment[1], protected))
            return b""
        if content_type == HANDSHAKE:
            state.handshake += fragment
            if len(state.handshake) > MAX_HANDSHAKE_BYTES:
                self._stop(direction, state, "bad-handshake", offset, "a handshake message over 1 MB")
                return b""
            for kind, body in split_handshake(state.handshake):
                self._handshake(direction, state, kind, body, offset, protected)
        return b""

    # -- the handshake ----------------------------------------------------------------------

    def _handshake(self, direction: int, state: _Direction, kind: int, body: bytes, offset: int,
                   protected: bool) -> None:
        if self.version != 0x0304 and not protected and not self.transcript_limit:
            raw = bytes([kind]) + len(body).to_bytes(3, "big") + body
            if len(self.transcript) + len(raw) <= MAX_HANDSHAKE_BYTES:
                self.transcript += raw
            else:
                self.transcript_limit = True
        try:
            if kind == CLIENT_HELLO:
                hello = parse_hello(kind, body)
                if self.client_direction is None:
                    self.client_direction = direction
                if self.client_hello is None:
                    self.client_hello = hello
            elif kind == SERVER_HELLO:
                hello = parse_hello(kind, body)
                if hello.hello_retry:
                    self.hello_retry = True
                    return
                self.server_hello = hello
                self.places["server_hello"] = (direction, offset)
                if self.client_direction is None:
                    self.client_direction = 1 - direction
                self.version = hello.version
                self.suite = SUITES.get(hello.cipher_suites[0])
                if not (self.suite and self.suite.key_exchange == "RSA" and self.secrets.rsa_keys):
                    self.transcript = bytearray()  # only a static-RSA premaster's session hash needs it
                    self.transcript_limit = True
                self._server_hello_keys()
            elif kind == CERTIFICATE:
                side = "client" if direction == self.client_direction else "server"
                self.places[f"{side}_certificate"] = (direction, offset)
                self.certificates[side] = [summarise(der) for der in
                                           parse_certificate(body, self.version == 0x0304)]
            elif kind == CERTIFICATE_REQUEST:
                self.certificate_requested = True
            elif kind == CLIENT_KEY_EXCHANGE:
                self._client_key_exchange(body)
            elif kind == FINISHED and self.version == 0x0304:
                label = "CLIENT_TRAFFIC_SECRET_0" if direction == self.client_direction else "SERVER_TRAFFIC_SECRET_0"
                self._set_traffic_secret(direction, label)
            elif kind == KEY_UPDATE and self.version == 0x0304:
                state.key_updates += 1
                self.events.append(TlsEvent("key-update", direction, offset, value=body[0] if body else 0,
                                            encrypted=True))
                if state.decryptor is not None and self.suite is not None:
                    state.secret = next_traffic_secret13(self.suite, state.secret)
                    state.decryptor = RecordDecryptor(self.suite, traffic_keys13(self.suite, state.secret), True)
        except ValueError as exc:
            self.events.append(TlsEvent("bad-handshake", direction, offset, f"malformed handshake message "
                                        f"{kind}: {exc}"))

    def _server_hello_keys(self) -> None:
        """With the ServerHello the suite is known: look the secrets up."""
        suite, client = self.suite, self.client_hello
        if client is None or self.client_direction is None:
            self.missing_secret = "the ClientHello (not captured)"
            return
        if suite is None or suite.cipher in ("RC4", "3DES-CBC") or (
                suite.key_exchange == "TLS13") != (self.version == 0x0304):
            self.missing_secret = f"support for {suite_name(self.server_hello.cipher_suites[0])}"
            return
        client_state = self.directions[self.client_direction]
        server_state = self.directions[1 - self.client_direction]
        if self.version == 0x0304:
            for state, label in ((client_state, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
                                 (server_state, "SERVER_HANDSHAKE_TRAFFIC_SECRET")):
                secret = self.secrets.keylog_secret(label, client.random)
                if secret is None:
                    self.missing_secret = "a key log with this connection's TLS 1.3 secrets"
                    return
                state.secret = secret
                state.decryptor = RecordDecryptor(suite, traffic_keys13(suite, secret), True)
            self.secret_source = self.secrets.keylog_name("SERVER_HANDSHAKE_TRAFFIC_SECRET", client.random)
            return
        if self.version < 0x0301 or self.version > 0x0303:
            self.missing_secret = f"support for {version_name(self.version)}"
            return
        master = self.secrets.keylog_secret("CLIENT_RANDOM", client.random)
        if master is not None:
            self.secret_source = self.secrets.keylog_name("CLIENT_RANDOM", client.random)
            self._install12(master)
        elif suite.cipher == "NULL":  # nothing to decrypt: the records are read, their MACs not checked
            self.secret_source = "NULL cipher"
            keys = DirectionKeys(b"", b"", b"")
            for state in self.directions:
                state.pending_keys = (suite, keys, False, False, False)
        elif suite.key_exchange == "RSA":
            self.missing_secret = "a key log, or the server's RSA private key (--tls-key)"
        else:
            self.missing_secret = f"a key log ({suite.key_exchange} key exchange: the server key cannot decrypt it)"

    def _install12(self, master: bytes) -> None:
        suite, client, server = self.suite, self.client_hello, self.server_hello
        client_keys, server_keys = key_block12(suite, master, client.random, server.random, self.version)
        encrypt_then_mac = (not suite.aead and suite.cipher != "NULL" and server.has(EXT_ENCRYPT_THEN_MAC))
        client_state = self.directions[self.client_direction]
        server_state = self.directions[1 - self.client_direction]
        client_state.pending_keys = (suite, client_keys, False, encrypt_then_mac)
        server_state.pending_keys = (suite, server_keys, False, encrypt_then_mac)
        self.missing_secret = ""

    def _client_key_exchange(self, body: bytes) -> None:
        """Static RSA: the encrypted premaster secret; decrypted when the server's key is known."""
        if self.suite is None or self.suite.key_exchange != "RSA" or self.secret_source.startswith("key log") \
                or self.client_hello is None or self.server_hello is None:
            return
        if len(body) < 2:
            return
        self.encrypted_premaster = body[2:2 + int.from_bytes(body[:2], "big")]
        premaster = self.secrets.rsa_premaster(self.encrypted_premaster)
        if premaster is None:
            return
        extended = self.server_hello.has(EXT_EXTENDED_MASTER_SECRET) and self.client_hello.has(
            EXT_EXTENDED_MASTER_SECRET)
        from cryptography.hazmat.primitives import hashes

        from .keyschedule import hash_algorithm, master_secret12

        session_hash = None
        if extended:
            names = [self.suite.prf_hash] if self.version >= 0x0303 else ["MD5", "SHA1"]  # RFC 7627 4
            session_hash = b""
            for name in names:
                digest = hashes.Hash(hash_algorithm(name))
                digest.update(bytes(self.transcript))
                session_hash += digest.finalize()
        prf = self.suite.prf_hash if self.version >= 0x0303 else "MD5+SHA1"
        master = master_secret12(premaster, self.client_hello.random, self.server_hello.random, prf, session_hash)
        self.secret_source = "server's RSA key"
        self._install12(master)

    def _set_traffic_secret(self, direction: int, label: str) -> None:
        state = self.directions[direction]
        if state.decryptor is None or self.client_hello is None or self.suite is None:
            return
        secret = self.secrets.keylog_secret(label, self.client_hello.random)
        if secret is None:
            if self.secrets.keylog.files:  # it may come: the records wait for it (_hold)
                state.decryptor = None
                state.awaiting_label = label
                return
            self._stop(direction, state, "no-secret", state.consumed,
                       f"the key log has the handshake secrets but not {label}")
            return
        state.secret = secret
        state.decryptor = RecordDecryptor(self.suite, traffic_keys13(self.suite, secret), True)
