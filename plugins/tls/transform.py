"""The TLS plugin's decoding half: offers ``TlsSession`` as a stream transform for every TCP
connection that starts with a TLS ClientHello or ServerHello (any port), or with any TLS record
on a DICOM port (a connection picked up midway; DICOM PDUs start with 0x01-0x07, TLS records with
0x14-0x17, so nothing DICOM is ever taken for TLS).

Options: ``-o tls.keylog_file:FILE`` (NSS key log; several joined with ':'; ``--tls-keylog``),
``-o tls.rsa_keys:FILE`` (PEM RSA private keys of servers; ``--tls-key``).  Key log lines in the
capture's pcapng Decryption Secrets Blocks are used with no option.
"""

from __future__ import annotations

from dicomtui import hookimpl

from .record_types import ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE, looks_like_record
from .sources import SecretSources, split_paths

# The session (record protection, key schedules: ``cryptography``) is imported when a connection
# turns out to be TLS (``_session``), not when the plugin loads.

TLS_KEY_LOG = 0x544C534B  # pcapng DSB secrets type "TLSK": NSS key log lines
ANY_RECORD = (CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA)


def secret_sources(config) -> SecretSources:
    """The analysis' secrets (one object, shared by its connections; rules reach it through them)."""
    return SecretSources(split_paths(config.option("tls.keylog_file", "")),
                         split_paths(config.option("tls.rsa_keys", "")))


def make_factory(sources: SecretSources, dicom_ports: frozenset[int]):
    def factory(first_bytes: tuple[bytes, bytes], ports: tuple[int, int]):
        if not sources.any and not (set(ports) & dicom_ports):
            return None  # TLS elsewhere with no secret to read it: never DICOM to us, not kept
        for direction in (0, 1):
            if looks_like_record(first_bytes[direction]):
                client = direction if first_bytes[direction][5:6] == b"\x01" else 1 - direction
                return _session(client, sources)
        for direction in (0, 1):  # picked up midway: only on a DICOM port
            if ports[direction] in dicom_ports and looks_like_record(first_bytes[direction], ANY_RECORD):
                return _session(direction, sources)
        return None

    return factory


def _session(client: int, sources: SecretSources):
    from .session import TlsSession

    return TlsSession(client, sources)


@hookimpl
def dicomtui_register_stream_transforms(register, config, capture_secrets):
    sources = secret_sources(config)
    for secrets_type, data in capture_secrets:
        if secrets_type == TLS_KEY_LOG:
            sources.add_embedded(data.decode("ascii", "replace"))
    register("tls", make_factory(sources, config.ports))


@hookimpl
def dicomtui_register_rule_options(register):
    register("tls.keylog_file", "", "NSS key log(s) decrypting DICOM over TLS, ':'-separated (--tls-keylog)")
    register("tls.rsa_keys", "", "servers' RSA private keys (PEM) for static-RSA TLS suites, ':'-separated "
             "(--tls-key)")
