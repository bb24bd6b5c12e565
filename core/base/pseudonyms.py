"""Consistent replacement values: one original value, one replacement, everywhere in a capture.

Replacements are keyed HMACs of the original value with a secret made for each run
(``os.urandom``), so they are consistent within a run (a PatientID in a C-FIND
identifier, the C-MOVE after it and the C-STORE sub-operations get the same dummy)
and cannot be reversed or recomputed from the output.  UIDs are mapped value by
value, so references and the study/series/instance hierarchy survive: every UID that
named the same thing still names the same thing.  ``mappings`` remembers what was
replaced, for the optional mapping file only.

It sits in core/base because two layers use it: the de-identification plugin
(plugins/anonymize, which rewrites captures) and the HTML report view
(core/views/report, which shows UIDs, AE titles and addresses the same way);
views may not import plugins.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import os
from collections import defaultdict

from dicomtui.core.base.uids import PROJECT_UID_ROOT, uid_dictionary

ANON_UID_ROOT = PROJECT_UID_ROOT + ".4"  # dicomtui root, arc 4: de-identified UIDs (.3 is taken by export)
_UID_DIGITS = 64 - len(ANON_UID_ROOT) - 1  # room left in a 64-character UID
DUMMY_DATE, DUMMY_TIME, DUMMY_DATETIME = "19000101", "000000.00", "19000101000000.00"


def is_registered_uid(uid: str) -> bool:
    """A UID the standard defines (SOP classes, transfer syntaxes, well-known instances): never mapped."""
    return uid in uid_dictionary() or uid.startswith("1.2.840.10008.")


class Pseudonymizer:
    def __init__(self, secret: bytes | None = None, date_shift_days: int | None = None) -> None:
        self.secret = secret if secret is not None else os.urandom(32)
        if date_shift_days is None:
            date_shift_days = -(365 + int.from_bytes(self._digest("date-shift", ""), "big") % 3650)
        self.date_shift = datetime.timedelta(days=date_shift_days)
        self.mappings: dict[str, dict[str, str]] = defaultdict(dict)

    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self.secret, f"{kind}\x00{value}".encode("utf-8", "surrogateescape"),
                        hashlib.sha256).digest()

    def _remember(self, kind: str, original: str, replacement: str) -> str:
        self.mappings[kind][original] = replacement
        return replacement

    # -- DICOM values ------------------------------------------------------------------------

    def uid(self, uid: str) -> str:
        uid = uid.strip("\x00 ")
        if not uid or is_registered_uid(uid):
            return uid
        known = self.mappings["uid"].get(uid)
        if known is not None:
            return known
        number = int.from_bytes(self._digest("uid", uid), "big") % (9 * 10 ** (_UID_DIGITS - 1))
        return self._remember("uid", uid, f"{ANON_UID_ROOT}.{number + 10 ** (_UID_DIGITS - 1)}")

    def text(self, value: str, vr: str) -> str:
        """A dummy string that fits ``vr`` (the same for the same value in every string VR but PN)."""
        value = value.strip(" \x00")
        if not value or value.strip("*?") == "":
            return value  # empty, or a bare wildcard query key: nothing to hide
        prefix, suffix = "", ""
        if vr != "UI" and value.endswith("*"):  # a wildcard query (PatientName=SMITH*) keeps its wildcard
            value, suffix = value.rstrip("*"), "*"
        code = self._digest("text", value.upper() if vr == "PN" else value).hex()[:8].upper()
        if vr == "PN":
            replacement = f"ANON^{code}"
        elif vr == "AE":
            replacement = f"AE{code}"
        elif vr == "IS":
            replacement = str(int(code, 16) % 10 ** 8)
        elif vr == "DS":
            replacement = "0"
        else:
            replacement = f"ANON{code}"
        self._remember(vr if vr == "PN" else "text", value, replacement)
        return prefix + replacement + suffix

    def ae_title(self, title: str) -> str:
        title = title.strip(" \x00")
        if not title:
            return title
        code = self._digest("ae", title).hex()[:8].upper()
        return self._remember("ae", title, f"AE{code}")

    def date(self, value: str, shift: bool) -> str:
        """DA: shifted by this run's offset (a range ``A-B`` end by end) or the dummy date."""
        if not shift:
            return DUMMY_DATE if value.strip() else value
        parts = []
        for part in value.split("-"):
            part = part.strip()
            if len(part) >= 8 and part[:8].isdigit():
                try:
                    moved = datetime.date(int(part[:4]), int(part[4:6]), int(part[6:8])) + self.date_shift
                    part = moved.strftime("%Y%m%d") + part[8:]
                except ValueError:
                    part = DUMMY_DATE
            elif part:
                part = DUMMY_DATE
            parts.append(part)
        return self._remember("date", value, "-".join(parts))

    def datetime(self, value: str, shift: bool) -> str:
        if not shift:
            return DUMMY_DATETIME if value.strip() else value
        parts = []
        for part in value.split("-"):
            part = part.strip()
            if len(part) >= 8 and part[:8].isdigit():
                part = self.date(part[:8], True) + part[8:]
            elif part:
                part = DUMMY_DATETIME
            parts.append(part)
        return "-".join(parts)

    # -- network identity -------------------------------------------------------------------

    def ip(self, address: str) -> str:
        """Prefix-preserving (Crypto-PAn style): addresses sharing an n-bit prefix still share one."""
        known = self.mappings["ip"].get(address)
        if known is not None:
            return known
        parsed = ipaddress.ip_address(address)
        bits = parsed.max_prefixlen
        number = int(parsed)
        result = 0
        for position in range(bits):
            prefix = number >> (bits - position)  # the first `position` bits
            flip = self._digest("ip", f"{bits}:{position}:{prefix}")[0] & 1
            bit = (number >> (bits - 1 - position)) & 1
            result = (result << 1) | (bit ^ flip)
        mapped = str(ipaddress.ip_address(result) if bits == 32 else ipaddress.IPv6Address(result))
        return self._remember("ip", address, mapped)

    def mac(self, mac: bytes) -> bytes:
        """A locally administered unicast MAC, the same for the same original."""
        key = mac.hex(":")
        digest = self._digest("mac", key)
        mapped = bytes([0x02]) + digest[:5]
        self._remember("mac", key, mapped.hex(":"))
        return mapped
