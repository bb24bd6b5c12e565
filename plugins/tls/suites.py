"""TLS cipher suites: what each protects records with, and what BCP 195 says about it.

Only what the record layer and the diagnosis need: the key exchange (which secret decrypts a
connection: the key log always; the server's RSA key only for static-RSA suites), the record
cipher and MAC, the PRF hash, and whether RFC 9325 (BCP 195, referenced by DICOM PS3.15 Annex
B) forbids it.  Unknown suites are named by number and not decrypted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CipherSuite:
    code: int
    name: str
    key_exchange: str  # "RSA", "ECDHE", "DHE", "TLS13" (any: the suite does not say)
    cipher: str  # "AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305", "AES-128-CCM", "AES-128-CBC", "NULL", ...
    mac: str  # "" for AEAD suites; "SHA1", "SHA256", "SHA384" for CBC and NULL suites
    prf_hash: str  # "SHA256" or "SHA384"
    forbidden_reason: str = ""  # why BCP 195 (RFC 9325) forbids it, or ""

    @property
    def aead(self) -> bool:
        return not self.mac

    @property
    def key_length(self) -> int:
        if self.cipher == "NULL":
            return 0
        return 32 if ("256" in self.cipher or "CHACHA" in self.cipher) else 16

    @property
    def mac_length(self) -> int:
        return {"": 0, "MD5": 16, "SHA1": 20, "SHA256": 32, "SHA384": 48}[self.mac]


def _suites() -> dict[int, CipherSuite]:
    table: list[CipherSuite] = []

    def add(code: int, name: str, kx: str, cipher: str, mac: str = "", prf: str = "SHA256", forbidden: str = ""):
        if not forbidden:
            reasons = []
            if cipher == "NULL":
                reasons.append("NULL cipher: no encryption")
            if kx == "RSA":
                reasons.append("static RSA key exchange: no forward secrecy")
            forbidden = "; ".join(reasons) + " (RFC 9325 section 4.1)" if reasons else ""
        table.append(CipherSuite(code, name, kx, cipher, mac, prf, forbidden))

    # TLS 1.3 (RFC 8446 appendix B.4)
    add(0x1301, "TLS_AES_128_GCM_SHA256", "TLS13", "AES-128-GCM")
    add(0x1302, "TLS_AES_256_GCM_SHA384", "TLS13", "AES-256-GCM", prf="SHA384")
    add(0x1303, "TLS_CHACHA20_POLY1305_SHA256", "TLS13", "CHACHA20-POLY1305")
    add(0x1304, "TLS_AES_128_CCM_SHA256", "TLS13", "AES-128-CCM")
    add(0x1305, "TLS_AES_128_CCM_8_SHA256", "TLS13", "AES-128-CCM-8")
    # TLS 1.2 AEAD
    for kx, base in (("ECDHE", "ECDHE_RSA"), ("ECDHE", "ECDHE_ECDSA"), ("DHE", "DHE_RSA"), ("RSA", "RSA")):
        codes = {
            "ECDHE_RSA": (0xC02F, 0xC030, 0xCCA8), "ECDHE_ECDSA": (0xC02B, 0xC02C, 0xCCA9),
            "DHE_RSA": (0x009E, 0x009F, 0xCCAA), "RSA": (0x009C, 0x009D, None)}[base]
        add(codes[0], f"TLS_{base}_WITH_AES_128_GCM_SHA256", kx, "AES-128-GCM")
        add(codes[1], f"TLS_{base}_WITH_AES_256_GCM_SHA384", kx, "AES-256-GCM", prf="SHA384")
        if codes[2] is not None:
            add(codes[2], f"TLS_{base}_WITH_CHACHA20_POLY1305_SHA256", kx, "CHACHA20-POLY1305")
    add(0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "ECDHE", "AES-128-CCM")
    add(0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", "ECDHE", "AES-256-CCM")
    add(0xC09C, "TLS_RSA_WITH_AES_128_CCM", "RSA", "AES-128-CCM")
    add(0xC09D, "TLS_RSA_WITH_AES_256_CCM", "RSA", "AES-256-CCM")
    add(0xC09E, "TLS_DHE_RSA_WITH_AES_128_CCM", "DHE", "AES-128-CCM")
    add(0xC09F, "TLS_DHE_RSA_WITH_AES_256_CCM", "DHE", "AES-256-CCM")
    # CBC (MAC-then-encrypt unless encrypt_then_mac was negotiated)
    add(0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "AES-128-CBC", "SHA1")
    add(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", "AES-256-CBC", "SHA1")
    add(0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256", "RSA", "AES-128-CBC", "SHA256")
    add(0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", "RSA", "AES-256-CBC", "SHA256")
    add(0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE", "AES-128-CBC", "SHA1")
    add(0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE", "AES-256-CBC", "SHA1")
    add(0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE", "AES-128-CBC", "SHA256")
    add(0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE", "AES-256-CBC", "SHA384", prf="SHA384")
    add(0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE", "AES-128-CBC", "SHA1")
    add(0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE", "AES-256-CBC", "SHA1")
    add(0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE", "AES-128-CBC", "SHA256")
    add(0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE", "AES-256-CBC", "SHA384", prf="SHA384")
    add(0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "DHE", "AES-128-CBC", "SHA1")
    add(0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "DHE", "AES-256-CBC", "SHA1")
    add(0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", "DHE", "AES-128-CBC", "SHA256")
    add(0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", "DHE", "AES-256-CBC", "SHA256")
    # NULL ciphers: authenticated, not encrypted (IHE ATNA's old option)
    add(0x0001, "TLS_RSA_WITH_NULL_MD5", "RSA", "NULL", "MD5", forbidden="NULL cipher with an MD5 MAC")
    add(0x0002, "TLS_RSA_WITH_NULL_SHA", "RSA", "NULL", "SHA1")
    add(0x003B, "TLS_RSA_WITH_NULL_SHA256", "RSA", "NULL", "SHA256")
    add(0xC006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA", "ECDHE", "NULL", "SHA1")
    add(0xC010, "TLS_ECDHE_RSA_WITH_NULL_SHA", "ECDHE", "NULL", "SHA1")
    # Forbidden outright: RC4, 3DES, export, anonymous
    add(0x0004, "TLS_RSA_WITH_RC4_128_MD5", "RSA", "RC4", "MD5", forbidden="RC4 (RFC 7465)")
    add(0x0005, "TLS_RSA_WITH_RC4_128_SHA", "RSA", "RC4", "SHA1", forbidden="RC4 (RFC 7465)")
    add(0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "RSA", "3DES-CBC", "SHA1",
        forbidden="3DES: 64-bit blocks (Sweet32; RFC 9325 section 4.1)")
    add(0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE", "3DES-CBC", "SHA1",
        forbidden="3DES: 64-bit blocks (Sweet32; RFC 9325 section 4.1)")
    add(0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA", "DHE", "AES-128-CBC", "SHA1",
        forbidden="anonymous key exchange: no authentication (RFC 9325 section 4.1)")
    return {suite.code: suite for suite in table}


SUITES = _suites()


def suite_name(code: int) -> str:
    suite = SUITES.get(code)
    if suite is not None:
        return suite.name
    if code & 0x0F0F == 0x0A0A:
        return f"GREASE 0x{code:04X}"
    if code == 0x00FF:
        return "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
    return f"0x{code:04X}"


VERSION_NAMES = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


def version_name(version: int) -> str:
    return VERSION_NAMES.get(version, f"0x{version:04X}")
