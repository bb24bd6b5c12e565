"""What the HTML report may show of a capture's identities, and how the rest is replaced.

The page never shows a data-set value.  Of what it does show:

- UIDs that identify patients, studies, series, instances (anything not registered by the
  standard) are replaced with ``core.base.pseudonyms`` — the de-identification's own mapping, so
  a UID that names the same thing names it everywhere on the page (and in a capture written by
  ``--anonymize`` in the same run) — and instances are numbered in order of appearance ("I3",
  the third instance);
- free text quoted from the capture in finding texts (query keys, Error Comments) is withheld;
- AE titles and addresses are shown, unless ``map_ae`` / ``map_network`` (the command line's
  ``--anonymize-ae`` / ``--anonymize-network``) map them with the same mapping;
- ``real_values`` (``--html-real-values``) shows everything as captured, for internal use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomtui.core.base.pseudonyms import ANON_UID_ROOT, Pseudonymizer, is_registered_uid
from dicomtui.core.model.timing import CAUSE_ADVICE

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis

WITHHELD = "‹withheld›"
C_MOVE_RQ = 0x0021
# A UID-looking token: at least five components (four-part dotted numbers are IPv4 addresses), or a
# UUID-derived UID (PS3.5 B.2: 2.25. and the UUID as one decimal number), which has three.
_UID = re.compile(r"(?<![\w.])(?:2\.25\.\d{6,}|\d+(?:\.\d+){4,})(?![\w.])")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.]*\d)")
# A value quoted by a rule ('...' as rules.common.quoted writes it); an apostrophe inside a word
# ("SCP's") is not a quote.
_QUOTED = re.compile(r"(?<![\w'])'([^'\n]*)'(?![\w])")
# A value a validator quotes (dciodvfy: "<DOE^JOHN>"); it quotes attribute keywords the same way
# ("Element=<PatientName>"), which stay.
_ANGLED = re.compile(r"(?<!Module=)<([^<>\n]*)>")  # (a module's name stays too)
# What dicomtui's own advice quotes ('no delay'): wording, not a value from the capture.
OWN_QUOTES = frozenset(_QUOTED.findall(" ".join(CAUSE_ADVICE.values())))


@dataclass(frozen=True, slots=True)
class RedactionSettings:
    real_values: bool = False  # everything as captured (internal use only)
    map_ae: bool = False  # AE titles replaced consistently (--anonymize-ae)
    map_network: bool = False  # IP addresses replaced, prefix-preserving (--anonymize-network)

    def describe(self) -> str:
        if self.real_values:
            return ("REAL VALUES: UIDs, quoted values and Error Comments are shown as captured "
                    "(--html-real-values) — for internal use, not for a vendor ticket")
        parts = ["no data-set value is shown", "UIDs that identify patients, studies, series or instances are "
                 "replaced consistently (instances numbered I1, I2, ... in order of appearance)",
                 "values quoted from the capture in findings are withheld"]
        parts.append("AE titles replaced" if self.map_ae else "AE titles shown")
        parts.append("IP addresses replaced (prefix-preserving)" if self.map_network else "IP addresses shown")
        return "; ".join(parts)


class Redaction:
    """Applies ``RedactionSettings`` to every value from the capture the page shows."""

    def __init__(self, analysis: "Analysis", settings: RedactionSettings,
                 pseudonyms: Pseudonymizer | None = None) -> None:
        self.settings = settings
        self.pseudonyms = pseudonyms if pseudonyms is not None else Pseudonymizer()
        self._instances: dict[str, int] = {}
        self._titles: dict[str, str] = {}
        self._addresses: set[str] = set()
        self._kept_uids: set[str] = set()
        for association in analysis.associations:
            for title in (association.calling_ae, association.called_ae):
                title = title.strip(" \x00")
                if title:
                    self._titles[title] = self.ae(title)
            # What names kinds of things, not patients: SOP classes (private ones too), transfer
            # syntaxes, implementations.  A vendor needs them as they are.
            for context in association.contexts.values():
                self._kept_uids.add(context.abstract_syntax)
                self._kept_uids.update(context.proposed_transfer_syntaxes)
            self._kept_uids.update((association.requestor_implementation[0], association.acceptor_implementation[0],
                                    association.application_context))
            self._kept_uids.update(association.roles)
        for connection in analysis.connections:
            for endpoint in (connection.client, connection.server):
                self._addresses.add(_host(endpoint))
        # Instances numbered in order of first appearance, from the requests (a response names its
        # request's instance, if any): decoding a command set costs, and a day has tens of thousands.
        for message in analysis.messages:
            if not message.is_request:
                continue
            command = message.command
            instance = str(command.get("AffectedSOPInstanceUID") or command.get("RequestedSOPInstanceUID")
                           or "").strip("\x00 ")
            if instance and not is_registered_uid(instance):
                self._instances.setdefault(instance, len(self._instances) + 1)
            self._kept_uids.add(str(command.get("AffectedSOPClassUID") or command.get("RequestedSOPClassUID") or ""))
            if message.command_field == C_MOVE_RQ:  # its destination is an AE title like the wire's
                destination = str(command.get("MoveDestination") or "").strip(" \x00")
                if destination:
                    self._titles.setdefault(destination, self.ae(destination))
        self._kept_uids.discard("")
        # Longest first, so a title that contains another is replaced whole.
        self._title_pattern = re.compile("|".join(
            rf"(?<![\w]){re.escape(title)}(?![\w])" for title in sorted(self._titles, key=len, reverse=True)
        )) if self._titles and settings.map_ae and not settings.real_values else None

    # -- single values ----------------------------------------------------------------------

    def uid(self, uid: str) -> str:
        """A UID that may identify a patient, study, series or instance: replaced.

        Not replaced: registered UIDs and those the capture uses as SOP classes, transfer
        syntaxes or implementation classes (they name software and kinds of objects).
        """
        uid = (uid or "").strip("\x00 ")
        if not uid or self.settings.real_values or is_registered_uid(uid) or uid in self._kept_uids:
            return uid
        return self.pseudonyms.uid(uid)

    def instance(self, uid: str) -> str:
        """``I3 2.25....`` — the instance's number on this page and its (replaced) UID."""
        uid = (uid or "").strip("\x00 ")
        if not uid:
            return ""
        number = self._instances.get(uid)
        return f"I{number} {self.uid(uid)}" if number else self.uid(uid)

    def ae(self, title: str) -> str:
        title = (title or "").strip(" \x00")
        if not title or self.settings.real_values or not self.settings.map_ae:
            return title
        return self.pseudonyms.ae_title(title)

    def address(self, host: str) -> str:
        if self.settings.real_values or not self.settings.map_network or not host:
            return host
        try:
            return self.pseudonyms.ip(host)
        except ValueError:
            return host

    def endpoint(self, endpoint: str) -> str:
        """``10.0.0.5:104`` or ``[fe80::1]:104`` with the address mapped when asked."""
        host = _host(endpoint)
        port = endpoint.rsplit(":", 1)[1] if ":" in endpoint else ""
        mapped = self.address(host)
        if ":" in mapped:
            mapped = f"[{mapped}]"
        return f"{mapped}:{port}" if port else mapped

    def free_text(self, value: str) -> str:
        """A free-text value from a command set (Error Comment): withheld unless real values."""
        if not value:
            return ""
        return value if self.settings.real_values else WITHHELD

    # -- text that may mention values ---------------------------------------------------------

    def text(self, text: str) -> str:
        """A sentence from the analysis (a finding, a PDU summary): every value in it replaced."""
        if not text or self.settings.real_values:
            return text
        if self.settings.map_network:
            text = _IPV4.sub(lambda match: self.address(match.group(0))
                             if match.group(0) in self._addresses else match.group(0), text)
            for address in self._addresses:
                if ":" in address and address in text:  # IPv6, written as the connection names it
                    text = text.replace(address, self.address(address))
        text = _UID.sub(lambda match: self.instance(match.group(0)) if match.group(0) in self._instances
                        else self.uid(match.group(0)), text)
        text = _QUOTED.sub(self._quoted, text)
        text = _ANGLED.sub(self._angled, text)
        if self._title_pattern is not None:
            text = self._title_pattern.sub(lambda match: self._titles[match.group(0)], text)
        return text

    def _quoted(self, match: re.Match) -> str:
        value = match.group(1)
        stripped = value.strip(" \x00")
        if stripped in self._titles:  # an AE title: shown (or mapped) like everywhere else
            return "'" + value.replace(stripped, self.ae(stripped)) + "'"
        if value in OWN_QUOTES:
            return match.group(0)
        if stripped and (is_registered_uid(stripped) or stripped in self._kept_uids
                         or stripped.startswith(ANON_UID_ROOT)):
            return match.group(0)
        return "'" + WITHHELD + "'" if stripped else match.group(0)


    def _angled(self, match: re.Match) -> str:
        value = match.group(1).strip(" \x00")
        if not value or _is_keyword(value) or value in self._titles or value.startswith(ANON_UID_ROOT) \
                or is_registered_uid(value) or value in self._kept_uids:
            return match.group(0)
        return "<" + WITHHELD + ">"


def _is_keyword(text: str) -> bool:
    """A DICOM attribute keyword (``PatientName``), or a tag ``(0010,0010)``: names, not values."""
    if re.fullmatch(r"\(?0x[0-9a-fA-F]{4},0x[0-9a-fA-F]{4}\)?|\([0-9a-fA-F]{4},[0-9a-fA-F]{4}\)", text):
        return True
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", text):
        return False
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(text) is not None


def _host(endpoint: str) -> str:
    """The address of ``10.0.0.5:104`` or ``[fe80::1]:104``."""
    return (endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint).strip("[]")
