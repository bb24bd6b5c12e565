"""TLS findings: the handshake diagnosed (with or without secrets) and what decryption met.

For every TLS connection on a DICOM port, or with DICOM inside: alerts with advice (unknown CA,
expired or bad certificate, no shared version or suite, ...), versions and suites BCP 195
(RFC 9325) forbids, certificates expired, not yet valid or expiring within 30 days, a client
certificate the server asked for and did not get, records that did not authenticate, capture
gaps that stop decryption, and — when there are encrypted records and no secret for them — one
``tls.not-decrypted`` saying which secret would decrypt it.  TLS on other ports (HTTPS, ...) is
left alone unless it decrypts to DICOM.  Codes start with ``tls.``.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from dicomtui import hookimpl
from dicomtui.core.model import Group, Severity

from .handshake import ALERT_DESCRIPTIONS
from .suites import suite_name, version_name

if TYPE_CHECKING:  # pragma: no cover
    from .session import TlsSession

DAY = 86400

# What to do about an alert; {sender} sent it about {peer}'s side.
ALERT_ADVICE = {
    40: "no cipher suite, key-exchange group or signature algorithm in common: compare the TLS profiles "
        "both sides are configured with (DICOM PS3.15 Annex B: BCP 195 non-downgrading is the default)",
    42: "the {sender} rejected the {peer}'s certificate: check its key usage, extended key usage and chain",
    43: "the {sender} cannot use the {peer}'s certificate type: check its key algorithm and key usage",
    44: "the {peer}'s certificate is revoked: issue a new one",
    45: "the {sender} rejected the {peer}'s certificate as expired: renew it (and check both clocks)",
    46: "the {sender} could not accept the {peer}'s certificate: check the chain the {peer} sends and the CA "
        "the {sender} trusts",
    48: "the {sender} does not trust the CA that issued the {peer}'s certificate: add that CA to the "
        "{sender}'s trust store, or give the {peer} a certificate from a CA the {sender} trusts",
    49: "the {sender} refused access after the handshake: check its access control for this peer",
    51: "a signature or Finished check failed: a wrong private key for the certificate, or something "
        "altering the traffic",
    70: "no TLS version in common: configure both sides for TLS 1.2 or 1.3 (BCP 195 forbids 1.0 and 1.1)",
    71: "the {sender} requires stronger security than the {peer} offered (suites or key sizes)",
    80: "an internal error of the {sender}: see its log",
    112: "the {sender} has no certificate for the name the client asked for (SNI)",
    116: "the server requires a client certificate and the client sent none: configure the client's "
         "certificate and key",
    120: "no application protocol (ALPN) in common",
}


@hookimpl
def dicomtui_check_analysis(analysis, report):
    if not analysis.transformed:
        return
    # Imported here, not with the plugin: a capture without TLS never needs ``cryptography``
    # (record_types.py); one with TLS sessions has imported it already.
    from .session import TlsSession

    problems_said: set[int] = set()
    for transformed in analysis.transformed:
        session = transformed.transform
        if not isinstance(session, TlsSession):
            continue
        if transformed.connection is None and not (set(transformed.ports) & analysis.config.ports):
            continue  # TLS on a port that is not DICOM's and nothing DICOM inside: not ours to judge
        secrets = session.secrets
        if id(secrets) not in problems_said:
            problems_said.add(id(secrets))
            for problem in secrets.problems:
                report.add(Severity.WARNING, Group.CAPTURE, problem, transformed.first_frame,
                           code="tls.secret-unreadable")
        _check_connection(analysis, report, transformed, session)


class _Place:
    """Frames, peers and the association of one TLS connection, for findings."""

    def __init__(self, analysis, transformed, session: TlsSession) -> None:
        self.transformed = transformed
        self.client = session.client_direction if session.client_direction is not None else 0
        ends = transformed.endpoints
        self.peers = f"{ends[self.client]} -> {ends[1 - self.client]}"
        self.association = None
        if transformed.connection is not None:
            self.association = analysis.relations.first_association_on(transformed.connection)

    def frame(self, direction: int, offset: int) -> int:
        first, _last, _t0, _t1 = self.transformed.wire_streams[direction].frames_for(offset, offset + 5)
        return first or self.transformed.first_frame

    def time(self) -> float | None:
        stream = self.transformed.wire_streams[0]
        return stream.frames_for(0, 1)[2] if stream.end else None

    def at(self, session: TlsSession, what: str) -> int | None:
        """The frame of a place the session noted (``TlsSession.places``), or None."""
        where = session.places.get(what)
        return self.frame(*where) if where is not None else None

    def side(self, direction: int) -> str:
        return "client" if direction == self.client else "server"


def _check_connection(analysis, report, transformed, session: TlsSession) -> None:
    place = _Place(analysis, transformed, session)

    def add(severity, group, message, frame=None, code=""):
        report.add(severity, group, f"TLS {place.peers}: {message}", frame or transformed.first_frame,
                   place.association, code=code)

    client_hello, server_hello = session.client_hello, session.server_hello
    for event in session.events:
        frame = place.frame(event.direction, event.wire_offset)
        if event.kind == "alert":
            _alert(add, place, session, event, frame)
        elif event.kind == "auth-failed":
            add(Severity.ERROR, Group.MALFORMED, f"{place.side(event.direction)}'s {event.detail}", frame,
                "tls.record-not-authentic")
        elif event.kind == "gap":
            add(Severity.WARNING, Group.CAPTURE, f"{place.side(event.direction)}'s stream: {event.detail}", frame,
                "tls.gap")
        elif event.kind == "gap-resync" and session.decrypted:
            add(Severity.WARNING, Group.CAPTURE, f"{place.side(event.direction)}'s stream: {event.detail} inside "
                "its TLS records; the records after it are looked for, and what they hold is decrypted",
                frame, "tls.gap")
        elif event.kind == "resynchronised":
            add(Severity.NOTE, Group.CAPTURE, f"{place.side(event.direction)}'s stream after a capture gap: "
                f"{event.detail} (the plaintext of the lost records is a gap in the DICOM stream)", frame,
                "tls.resynchronised")
        elif event.kind == "not-tls":
            add(Severity.WARNING, Group.MALFORMED, f"{place.side(event.direction)} sent {event.detail}; the rest "
                "of this direction is not read", frame, "tls.not-a-record")
        elif event.kind in ("bad-handshake", "no-secret"):
            add(Severity.WARNING, Group.MALFORMED, f"{place.side(event.direction)}: {event.detail}", frame,
                f"tls.{event.kind}")
    for direction, state in enumerate(session.directions):
        if state.awaiting_label:
            add(Severity.WARNING, Group.CAPTURE, f"{place.side(direction)}'s stream: the key log has the handshake "
                f"secrets but not {state.awaiting_label}: its application data is not decrypted",
                code="tls.no-secret")
        if state.resync_from >= 0 and state.decryptor is not None and not state.stopped:
            add(Severity.WARNING, Group.CAPTURE, f"{place.side(direction)}'s stream: no record after the capture gap "
                "decrypted again (a KeyUpdate or renegotiation lost in the gap?): the rest of this direction is "
                "not decrypted", place.frame(direction, state.resync_from), "tls.gap")
    if client_hello is None and server_hello is None:
        if any(direction.records for direction in session.directions):
            add(Severity.NOTE, Group.CAPTURE, "picked up after the handshake: version, suite and certificates "
                "are unknown, and nothing can be decrypted (start the capture before the connection)",
                code="tls.no-handshake")
        return
    if server_hello is not None:
        version = session.version
        if version < 0x0303:
            add(Severity.WARNING, Group.NEGOTIATION, f"{version_name(version)} negotiated: BCP 195 (RFC 8996, "
                "RFC 9325) forbids TLS 1.0 and 1.1; configure TLS 1.2 or 1.3", place.at(session, "server_hello"),
                code="tls.version-forbidden")
        suite = session.suite
        if suite is not None and suite.forbidden_reason:
            add(Severity.WARNING, Group.NEGOTIATION, f"{suite.name} negotiated, which BCP 195 forbids: "
                f"{suite.forbidden_reason}", place.at(session, "server_hello"), code="tls.suite-forbidden")
    elif client_hello is not None and not any(event.kind == "alert" for event in session.events):
        if session.directions[1 - place.client].records == 0:
            add(Severity.WARNING, Group.NEGOTIATION, "the server never answered the ClientHello (offered "
                f"{version_name(client_hello.version)} at most, {len(client_hello.cipher_suites)} suites)",
                code="tls.no-server-hello")
    _certificates(add, place, session)
    _secrets(add, place, session)


def _alert(add, place: _Place, session: TlsSession, event, frame: int) -> None:
    description = event.value
    name = ALERT_DESCRIPTIONS.get(description, f"alert {description}")
    if description == 0:
        return  # close_notify: the normal end
    sender = place.side(event.direction)
    peer = "server" if sender == "client" else "client"
    fatal = event.detail == "fatal"
    advice = ALERT_ADVICE.get(description, "")
    if description == 40 and session.certificate_requested and session.certificates.get("client") == []:
        advice = ("the server asked for a client certificate and the client sent none: configure the "
                  "client's certificate and key (or make it optional on the server)")
    advice = advice.format(sender=sender, peer=peer)
    facts = []
    chain = session.certificates.get(peer)
    if description in (42, 44, 45, 46, 48) and chain:
        facts.append(f"the {peer}'s certificate: {chain[0].line()}")
    if description == 70 and session.client_hello is not None:
        offered = session.client_hello.versions or [session.client_hello.legacy_version]
        names = ", ".join(version_name(v) for v in offered if v & 0x0F0F != 0x0A0A)
        facts.append(f"the client offered {names}")
    if description in (40, 71) and session.client_hello is not None and "client certificate" not in advice:
        offered = [suite_name(code) for code in session.client_hello.cipher_suites
                   if code & 0x0F0F != 0x0A0A and code != 0x00FF]
        shown = ", ".join(offered[:6]) + (f" and {len(offered) - 6} more" if len(offered) > 6 else "")
        facts.append(f"the client offered {shown or 'no cipher suite'} (up to "
                     f"{version_name(session.client_hello.version)})")
    text = f"{sender} sent a {event.detail} alert {name} ({description})"
    if event.encrypted:
        text += " (decrypted)"
    if facts:
        text += "; " + "; ".join(facts)
    if advice:
        text += f" — {advice}"
    add(Severity.ERROR if fatal else Severity.WARNING, Group.NEGOTIATION, text, frame,
        f"tls.alert.{name}" if description in ALERT_DESCRIPTIONS else "tls.alert.unknown")


def _certificates(add, place: _Place, session: TlsSession) -> None:
    when = place.time()
    if when is None:
        return
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    for side in ("server", "client"):
        frame = place.at(session, f"{side}_certificate")
        for position, certificate in enumerate(session.certificates.get(side, [])):
            which = f"the {side}'s certificate" if position == 0 else f"certificate {position + 1} of the {side}'s chain"
            if certificate.problem:
                add(Severity.WARNING, Group.MALFORMED, f"{which} could not be read: {certificate.problem}",
                    frame, code="tls.certificate-unreadable")
                continue
            state = certificate.validity_at(moment)
            if state == "expired":
                add(Severity.ERROR, Group.NEGOTIATION, f"{which} had expired at the time of the capture "
                    f"({certificate.line()}) — renew it", frame, code="tls.certificate-expired")
            elif state == "not yet valid":
                add(Severity.ERROR, Group.NEGOTIATION, f"{which} was not yet valid at the time of the capture "
                    f"({certificate.line()}) — check the clocks", frame, code="tls.certificate-not-yet-valid")
            elif state:
                add(Severity.WARNING, Group.NEGOTIATION, f"{which} {state} ({certificate.line()}) — renew it "
                    "before then", frame, code="tls.certificate-expiring")
    if session.certificate_requested and session.version != 0x0304 and session.certificates.get("client") == []:
        add(Severity.WARNING, Group.NEGOTIATION, "the server asked for a client certificate and the client sent "
            "none (DICOM TLS peers usually authenticate each other: configure the client's certificate)",
            place.at(session, "client_certificate"), code="tls.client-certificate-missing")


def _secrets(add, place: _Place, session: TlsSession) -> None:
    if session.decrypted:
        details = []
        updates = sum(direction.key_updates for direction in session.directions)
        if updates:
            details.append(f"{updates} KeyUpdate(s) followed")
        records = sum(direction.decrypted_records for direction in session.directions)
        how = ("read in the clear (NULL cipher; record MACs not checked without the secrets)"
               if session.secret_source.startswith("NULL") else f"decrypted with the {session.secret_source}")
        add(Severity.CHAT, Group.CAPTURE, f"{session.name} {how}: "
            f"{records} records" + (f", {', '.join(details)}" if details else ""), code="tls.decrypted")
        return
    encrypted = sum(direction.undecrypted_records + len(direction.held) for direction in session.directions)
    failed_handshake = any(event.kind == "alert" and event.detail == "fatal" and not event.encrypted
                           for event in session.events)
    if not encrypted or failed_handshake:  # only its Finished was encrypted: the alert says what matters
        return
    suite = session.suite.name if session.suite else (
        suite_name(session.server_hello.cipher_suites[0]) if session.server_hello else "suite unknown")
    need = session.missing_secret or "the secrets of this connection"
    hint = ""
    if session.client_hello is not None and "key log" in need:
        hint = (f" (a key log line for client random {session.client_hello.random.hex()[:16]}...: "
                "--tls-keylog FILE, written by the peer's SSLKEYLOGFILE or Python's SSLContext.keylog_filename)")
    add(Severity.NOTE, Group.CAPTURE, f"{encrypted} encrypted record(s) of {version_name(session.version)} "
        f"{suite} not decrypted: needs {need}{hint}", place.at(session, "first_undecrypted"), code="tls.not-decrypted")
