"""TLS key schedules: from a connection's secrets to each direction's record keys (sans-IO).

TLS 1.2 (RFC 5246 section 5, 6.3): the PRF P_hash built on ``cryptography``'s HMAC (it offers no
TLS 1.2 PRF of its own), the master secret (from the premaster, or RFC 7627's extended master
secret over the session hash) and the key block.  TLS 1.3 (RFC 8446 section 7): HKDF-Expand-Label
on ``cryptography``'s HKDFExpand, traffic keys and IVs, and the KeyUpdate's next secret.
Cross-checked with RFC 8448's traces in tests/test_tls_keyschedule.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from .suites import CipherSuite

_HASHES = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "MD5": hashes.MD5}


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    return _HASHES[name]()


def _hmac(key: bytes, data: bytes, hash_name: str) -> bytes:
    mac = hmac.HMAC(key, hash_algorithm(hash_name))
    mac.update(data)
    return mac.finalize()


def prf12(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str = "SHA256") -> bytes:
    """TLS 1.2's PRF: P_hash(secret, label + seed) (RFC 5246 section 5)."""
    seed = label + seed
    out = bytearray()
    a = seed
    while len(out) < length:
        a = _hmac(secret, a, hash_name)
        out += _hmac(secret, a + seed, hash_name)
    return bytes(out[:length])


def prf10(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """TLS 1.0 and 1.1's PRF: P_MD5 over the secret's first half XOR P_SHA1 over its second (RFC 2246 5)."""
    half = (len(secret) + 1) // 2
    md5 = prf12(secret[:half], label, seed, length, "MD5")
    sha1 = prf12(secret[len(secret) - half:], label, seed, length, "SHA1")
    return bytes(a ^ b for a, b in zip(md5, sha1))


def master_secret12(premaster: bytes, client_random: bytes, server_random: bytes, hash_name: str,
                    session_hash: bytes | None = None) -> bytes:
    """The master secret from the premaster secret; RFC 7627's extended form when ``session_hash``."""
    if hash_name == "MD5+SHA1":  # TLS 1.0 / 1.1
        if session_hash is not None:
            return prf10(premaster, b"extended master secret", session_hash, 48)
        return prf10(premaster, b"master secret", client_random + server_random, 48)
    if session_hash is not None:
        return prf12(premaster, b"extended master secret", session_hash, 48, hash_name)
    return prf12(premaster, b"master secret", client_random + server_random, 48, hash_name)


@dataclass(frozen=True, slots=True)
class DirectionKeys:
    """What protects one direction's records: MAC key (CBC, NULL), cipher key and IV (fixed part)."""

    mac_key: bytes
    key: bytes
    iv: bytes


def key_block12(suite: CipherSuite, master: bytes, client_random: bytes, server_random: bytes,
                version: int = 0x0303) -> tuple[DirectionKeys, DirectionKeys]:
    """(client write keys, server write keys) from the master secret (RFC 5246 section 6.3; for
    TLS 1.0 and 1.1 with their PRF, and TLS 1.0's CBC IVs from the key block: RFC 2246 6.3)."""
    mac_length = suite.mac_length
    key_length = suite.key_length
    if suite.aead:
        iv_length = 12 if suite.cipher.startswith("CHACHA") else 4  # RFC 7905; RFC 5288 / 6655 salt
    else:
        iv_length = 16 if version <= 0x0301 and suite.cipher != "NULL" else 0  # TLS 1.1+: IV in each record
    length = 2 * (mac_length + key_length + iv_length)
    if version < 0x0303:
        block = prf10(master, b"key expansion", server_random + client_random, length)
    else:
        block = prf12(master, b"key expansion", server_random + client_random, length, suite.prf_hash)
    parts = []
    offset = 0
    for length in (mac_length, mac_length, key_length, key_length, iv_length, iv_length):
        parts.append(block[offset:offset + length])
        offset += length
    return DirectionKeys(parts[0], parts[2], parts[4]), DirectionKeys(parts[1], parts[3], parts[5])


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int, hash_name: str) -> bytes:
    """RFC 8446 section 7.1."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hash_algorithm(hash_name), length, info).derive(secret)


def traffic_keys13(suite: CipherSuite, secret: bytes) -> DirectionKeys:
    """The record key and IV of a TLS 1.3 traffic secret (RFC 8446 section 7.3)."""
    return DirectionKeys(b"", hkdf_expand_label(secret, b"key", b"", suite.key_length, suite.prf_hash),
                         hkdf_expand_label(secret, b"iv", b"", 12, suite.prf_hash))


def next_traffic_secret13(suite: CipherSuite, secret: bytes) -> bytes:
    """The secret after a KeyUpdate (RFC 8446 section 7.2)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", hash_algorithm(suite.prf_hash).digest_size,
                             suite.prf_hash)
