"""X.509 certificates seen in a TLS handshake, summarised with ``cryptography``: subject, issuer,
validity.  A certificate that does not parse is summarised as such, never raised."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    subject: str
    issuer: str
    not_before: datetime.datetime | None
    not_after: datetime.datetime | None
    problem: str = ""  # why it could not be read, or ""

    @property
    def self_signed(self) -> bool:
        return bool(self.subject) and self.subject == self.issuer

    def validity_at(self, when: datetime.datetime) -> str:
        """"expired", "not yet valid", "expires in N days" (within 30) or "" (valid, not soon ending)."""
        if self.not_before is None or self.not_after is None:
            return ""
        if when > self.not_after:
            return "expired"
        if when < self.not_before:
            return "not yet valid"
        left = self.not_after - when
        if left < datetime.timedelta(days=30):
            return f"expires in {left.days} day(s)"
        return ""

    def line(self) -> str:
        if self.problem:
            return f"unreadable certificate ({self.problem})"
        valid = ""
        if self.not_before and self.not_after:
            valid = f", valid {self.not_before:%Y-%m-%d} to {self.not_after:%Y-%m-%d}"
        return f"subject {self.subject}, issuer {self.issuer}{valid}"


def summarise(der: bytes) -> CertificateSummary:
    try:
        certificate = x509.load_der_x509_certificate(der)
        return CertificateSummary(certificate.subject.rfc4514_string(), certificate.issuer.rfc4514_string(),
                                  certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    except Exception as exc:  # any parse failure of a peer's bytes is a finding, not a crash
        return CertificateSummary("", "", None, None, f"{type(exc).__name__}: {exc}"[:200])
