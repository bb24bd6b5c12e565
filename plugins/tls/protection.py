"""Record protection: one direction's records decrypted and authenticated (sans-IO).

Every primitive is ``cryptography``'s (AES-GCM, AES-CCM, ChaCha20-Poly1305, AES-CBC, HMAC);
this module is only the record glue of RFC 5246 (TLS 1.2: explicit GCM/CCM nonces, RFC 7905's
ChaCha20 nonce, CBC with MAC-then-encrypt or RFC 7366 encrypt-then-MAC, NULL) and RFC 8446
section 5.2-5.3 (TLS 1.3: per-record nonce, the header as additional data, the inner content
type under zero padding).  A record that fails authentication raises ``RecordAuthError``:
no unauthenticated byte ever leaves here.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from .keyschedule import DirectionKeys, hash_algorithm
from .suites import CipherSuite


class RecordAuthError(Exception):
    """A record did not authenticate with the keys at hand (wrong keys, tampering, or a lost record)."""


def _aead(suite: CipherSuite, key: bytes):
    if suite.cipher.startswith("AES") and suite.cipher.endswith("GCM"):
        return AESGCM(key)
    if suite.cipher.startswith("CHACHA20"):
        return ChaCha20Poly1305(key)
    if suite.cipher.endswith("CCM-8"):
        return AESCCM(key, tag_length=8)
    if suite.cipher.endswith("CCM"):
        return AESCCM(key)
    raise ValueError(f"no AEAD for {suite.cipher}")


def _xor_nonce(iv: bytes, sequence: int) -> bytes:
    padded = sequence.to_bytes(len(iv), "big")
    return bytes(a ^ b for a, b in zip(iv, padded))


class RecordDecryptor:
    """Decrypts one direction's protected records in order (the sequence number counts them)."""

    def __init__(self, suite: CipherSuite, keys: DirectionKeys, tls13: bool, encrypt_then_mac: bool = False,
                 verify: bool = True) -> None:
        self.suite = suite
        self.verify = verify  # False only for a NULL cipher read without its MAC key
        # TLS 1.0 CBC: no IV in the record; the first from the key block, then the last ciphertext block
        self.chained_iv = keys.iv if (not tls13 and not suite.aead and len(keys.iv) == 16) else None
        self.keys = keys
        self.tls13 = tls13
        self.encrypt_then_mac = encrypt_then_mac
        self.sequence = 0
        self.aead = _aead(suite, keys.key) if suite.aead else None

    def decrypt(self, content_type: int, version: int, fragment: bytes) -> tuple[int, bytes]:
        """(content type, plaintext) of the next record; raises ``RecordAuthError``."""
        sequence = self.sequence
        try:
            if self.tls13:
                result = self._decrypt13(content_type, version, fragment, sequence)
            elif self.aead is not None:
                result = content_type, self._decrypt12_aead(content_type, version, fragment, sequence)
            else:
                result = content_type, self._decrypt12_mac(content_type, version, fragment, sequence)
        except (InvalidTag, InvalidSignature, ValueError) as exc:
            raise RecordAuthError(str(exc) or type(exc).__name__) from None
        self.sequence = sequence + 1
        return result

    def _decrypt13(self, content_type: int, version: int, fragment: bytes, sequence: int) -> tuple[int, bytes]:
        header = bytes([content_type]) + version.to_bytes(2, "big") + len(fragment).to_bytes(2, "big")
        inner = self.aead.decrypt(_xor_nonce(self.keys.iv, sequence), fragment, header)
        end = len(inner)
        while end and inner[end - 1] == 0:
            end -= 1
        if not end:
            raise ValueError("a TLS 1.3 record with no content type")
        return inner[end - 1], inner[: end - 1]

    def _additional_data(self, content_type: int, version: int, sequence: int, length: int) -> bytes:
        return sequence.to_bytes(8, "big") + bytes([content_type]) + version.to_bytes(2, "big") \
            + length.to_bytes(2, "big")

    def _decrypt12_aead(self, content_type: int, version: int, fragment: bytes, sequence: int) -> bytes:
        tag = 8 if self.suite.cipher.endswith("CCM-8") else 16
        if self.suite.cipher.startswith("CHACHA20"):
            nonce, ciphertext = _xor_nonce(self.keys.iv, sequence), fragment
        else:
            nonce, ciphertext = self.keys.iv + fragment[:8], fragment[8:]
        if len(ciphertext) < tag:
            raise ValueError("record shorter than its tag")
        return self.aead.decrypt(nonce, ciphertext, self._additional_data(content_type, version, sequence,
                                                                          len(ciphertext) - tag))

    def _decrypt12_mac(self, content_type: int, version: int, fragment: bytes, sequence: int) -> bytes:
        mac_length = self.suite.mac_length
        if len(fragment) < mac_length:
            raise ValueError("record shorter than its MAC")
        if self.suite.cipher == "NULL":
            plaintext, tag = fragment[:-mac_length], fragment[-mac_length:]
            if not self.verify:
                return plaintext
            self._verify(self._additional_data(content_type, version, sequence, len(plaintext)) + plaintext, tag)
            return plaintext
        if self.encrypt_then_mac:  # RFC 7366: the MAC covers IV and ciphertext
            body, tag = fragment[:-mac_length], fragment[-mac_length:]
            self._verify(self._additional_data(content_type, version, sequence, len(body)) + body, tag)
            return _unpad(self._cbc_decrypt(body))
        padded = _unpad(self._cbc_decrypt(fragment))
        if len(padded) < mac_length:
            raise ValueError("record shorter than its MAC")
        plaintext, tag = padded[:-mac_length], padded[-mac_length:]
        self._verify(self._additional_data(content_type, version, sequence, len(plaintext)) + plaintext, tag)
        return plaintext

    def _verify(self, data: bytes, tag: bytes) -> None:
        mac = hmac.HMAC(self.keys.mac_key, hash_algorithm(self.suite.mac))
        mac.update(data)
        mac.verify(tag)

    def _cbc_decrypt(self, body: bytes) -> bytes:
        if self.chained_iv is not None:
            if len(body) < 16 or len(body) % 16:
                raise ValueError("CBC record not a whole number of blocks")
            iv, ciphertext = self.chained_iv, body
        else:
            if len(body) < 32 or len(body) % 16:
                raise ValueError("CBC record not a whole number of blocks")
            iv, ciphertext = body[:16], body[16:]
        decryptor = Cipher(algorithms.AES(self.keys.key), modes.CBC(iv)).decryptor()
        plaintext = decryptor.update(ciphertext) + decryptor.finalize()
        if self.chained_iv is not None:
            self.chained_iv = ciphertext[-16:]
        return plaintext


def _unpad(data: bytes) -> bytes:
    padding = data[-1] + 1
    if padding > len(data) or any(byte != data[-1] for byte in data[-padding:]):
        raise ValueError("bad CBC padding")
    return data[:-padding]
