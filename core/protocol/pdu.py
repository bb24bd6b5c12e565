"""PS3.8 PDU body decoders: all seven PDU types and every association item.

Pure functions: a PDU body (the bytes after the 6-byte PDU header) in, a
decoded object with a display tree out.  Malformed input raises DecodeError
with the offset of the problem; nothing here reads files or draws.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dicomtui.core.base.errors import DecodeError
from dicomtui.core.base.limits import Limits
from dicomtui.core.base.tree import Field
from dicomtui.core.base.uids import uid_label, uid_with_name

HEADER = 6  # PDU header bytes before the body; tree offsets are PDU-relative

REJECT_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
REJECT_SOURCES = {
    1: "DICOM UL service-user",
    2: "DICOM UL service-provider (ACSE related function)",
    3: "DICOM UL service-provider (presentation related function)",
}
REJECT_REASONS = {
    1: {1: "no-reason-given", 2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized", 7: "called-AE-title-not-recognized"},
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {0: "reserved", 1: "temporary-congestion", 2: "local-limit-exceeded"},
}
ABORT_SOURCES = {0: "DICOM UL service-user (initiated abort)", 1: "reserved",
                 2: "DICOM UL service-provider (initiated abort)"}
ABORT_REASONS = {
    0: "reason-not-specified", 1: "unrecognized-PDU", 2: "unexpected-PDU", 3: "reserved",
    4: "unrecognized-PDU-parameter", 5: "unexpected-PDU-parameter", 6: "invalid-PDU-parameter-value",
}
CONTEXT_RESULTS = {
    0: "acceptance", 1: "user-rejection", 2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}
USER_IDENTITY_TYPES = {1: "Username", 2: "Username and passcode", 3: "Kerberos service ticket",
                       4: "SAML assertion", 5: "JSON Web Token"}
MASK = "********"

# Hostile PDUs: a 1 MB A-ASSOCIATE holds ~130,000 minimal items and a 64 MB P-DATA-TF
# ~10 million PDVs.  Decoding stops at these bounds (the rest is reported, not decoded),
# so showing one PDU stays fast whatever it claims.
_LIMITS = Limits()
MAX_USER_SUB_ITEMS = 1024  # a real request has a few per SOP class at most
MAX_PDV_FIELDS = 1000  # PDVs shown in the tree; all (up to max_pdvs_per_pdu) are listed in .pdvs


def reject_reason_text(source: int, reason: int) -> str:
    return REJECT_REASONS.get(source, {}).get(reason, f"reserved ({reason})")


def abort_reason_text(source: int, reason: int) -> str:
    if source != 2:
        return "not significant (service-user abort)"
    return ABORT_REASONS.get(reason, f"unknown ({reason})")


# -- what any PDU decoder must return (a replacement registered through the hook too) -------
#
# The connection decoder reads decoded PDUs through these Protocols, not the classes
# below, so a site's own decoder (``dicomtui_register_pdu_decoders``) returning objects
# of its own classes with these attributes keeps the association state.


@runtime_checkable
class AssociateBody(Protocol):
    """A decoded A-ASSOCIATE-RQ or -AC (``AssociatePdu`` is the built-in one)."""

    calling_ae: str
    called_ae: str
    application_context: str
    contexts: list  # items with context_id, result, abstract_syntax, transfer_syntaxes
    user: Any  # max_length, implementation_class_uid, implementation_version_name, async_window,
    #            roles, user_identity, user_identity_response (see UserInformation)
    problems: list


@runtime_checkable
class RejectBody(Protocol):
    """A decoded A-ASSOCIATE-RJ (``RejectPdu``)."""

    result: int
    source: int
    reason: int
    text: str


@runtime_checkable
class AbortBody(Protocol):
    """A decoded A-ABORT (``AbortPdu``)."""

    source: int
    reason: int
    text: str


_CONFORMING: dict[tuple[type, type], bool] = {}


def conforms(decoded: Any, protocol: type) -> bool:
    """``isinstance(decoded, protocol)`` for the body Protocols above, decided once per class.

    A runtime-checkable Protocol's isinstance looks up every member on every call (~30 µs):
    on a day of short associations that was a tenth of the whole pass for two calls per
    association.  Decoders return objects of one class per PDU type, so the answer for the
    first object of a class is the answer for all of them.
    """
    key = (type(decoded), protocol)
    known = _CONFORMING.get(key)
    if known is None:
        known = _CONFORMING[key] = isinstance(decoded, protocol)
    return known


# -- decoded objects ---------------------------------------------------------------------------


@dataclass(slots=True)
class ContextItem:
    context_id: int
    result: int | None = None  # None in a request
    abstract_syntax: str = ""
    transfer_syntaxes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class UserIdentityRequest:
    identity_type: int
    positive_response_requested: bool
    primary: bytes
    secondary_length: int  # the passcode itself is never kept (protocol.secrets says where it lies)


@dataclass(slots=True)
class UserInformation:
    max_length: int | None = None
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    async_window: tuple[int, int] | None = None
    roles: list[tuple[str, int, int]] = field(default_factory=list)
    extended_negotiation: list[tuple[str, bytes]] = field(default_factory=list)
    common_extended_negotiation: list[tuple[str, str, list[str]]] = field(default_factory=list)
    user_identity: UserIdentityRequest | None = None
    user_identity_response: bytes | None = None
    unknown_items: list[int] = field(default_factory=list)


@dataclass(slots=True)
class AssociatePdu:
    pdu_type: int
    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str
    contexts: list[ContextItem]
    user: UserInformation
    tree: Field
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RejectPdu:
    result: int
    source: int
    reason: int
    tree: Field

    @property
    def text(self) -> str:
        return (f"{REJECT_RESULTS.get(self.result, f'result {self.result}')}, "
                f"{REJECT_SOURCES.get(self.source, f'source {self.source}')}: "
                f"{reject_reason_text(self.source, self.reason)}")


@dataclass(slots=True)
class AbortPdu:
    source: int
    reason: int
    tree: Field

    @property
    def text(self) -> str:
        source = ABORT_SOURCES.get(self.source, f"source {self.source}")
        return f"{source}, {abort_reason_text(self.source, self.reason)}"


@dataclass(slots=True)
class ReleasePdu:
    pdu_type: int
    tree: Field


@dataclass(slots=True)
class PDataPdu:
    pdvs: list[tuple[int, int, int, int]]  # (data offset in body, data length, context id, flags)
    tree: Field
    problems: list[str] = field(default_factory=list)


# -- helpers -------------------------------------------------------------------------------


# AE titles and UIDs repeat in every association of a day (the same modality, SOP classes and
# transfer syntaxes): one interned copy each instead of ~60 bytes per context per association.
def _text(raw: bytes) -> str:
    return sys.intern(raw.decode("ascii", "backslashreplace").rstrip("\x00 ").lstrip(" "))


def _uid(raw: bytes) -> str:
    return sys.intern(raw.rstrip(b"\x00 ").decode("ascii", "backslashreplace"))


def _items(body: bytes, start: int, end: int, what: str):
    """Yield (type, value_offset, length) for items in body[start:end]; 2-byte lengths."""
    offset = start
    while offset < end:
        if offset + 4 > end:
            raise DecodeError(f"{what}: truncated item header", offset)
        item_type = body[offset]
        length = struct.unpack_from("!H", body, offset + 2)[0]
        if offset + 4 + length > end:
            raise DecodeError(
                f"{what}: item 0x{item_type:02x} length {length} runs past its container", offset
            )
        yield item_type, offset + 4, length
        offset += 4 + length


def _flag_bytes_text(abstract_syntax: str, info: bytes) -> str:
    """SOP class extended negotiation bytes in words (PS3.4 C.5 Q/R, B.3.1 storage)."""
    name = uid_label(abstract_syntax)
    if "FIND" in name:
        labels = ["relational-queries", "combined date-time matching", "fuzzy semantic matching of person names",
                  "timezone query adjustment", "enhanced multi-frame image conversion"]
    elif "MOVE" in name or "GET" in name:
        labels = ["relational-retrieval", "enhanced multi-frame image conversion"]
    elif "Storage" in name:
        labels = ["level of support", "reserved", "level of digital signature support", "reserved",
                  "element coercion"]
    else:
        return info.hex(" ")
    parts = []
    for index, value in enumerate(info):
        label = labels[index] if index < len(labels) else f"byte {index + 1}"
        parts.append(f"{label}={'yes' if value == 1 else 'no' if value == 0 else value}")
    return ", ".join(parts) or "(empty)"


# -- A-ASSOCIATE-RQ / -AC ------------------------------------------------------------------


# One function per user information sub-item type (PS3.7 D.3.3, PS3.8 9.3.2.3).


def _user_max_length(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    length = len(raw)
    if length != 4:
        raise DecodeError(f"maximum length sub-item has length {length}, expected 4", item)
    user.max_length = struct.unpack("!I", raw)[0]
    return Field("Max PDU length (0x51)", f"{user.max_length}"
                 + (" (unlimited)" if user.max_length == 0 else ""), at, size)


def _user_implementation_class(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    user.implementation_class_uid = _uid(raw)
    return Field("Implementation class UID (0x52)", user.implementation_class_uid, at, size)


def _user_async_window(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    length = len(raw)
    if length != 4:
        raise DecodeError(f"asynchronous operations window has length {length}, expected 4", item)
    invoked, performed = struct.unpack("!HH", raw)
    user.async_window = (invoked, performed)
    return Field("Asynchronous operations window (0x53)",
                 f"invoked {invoked or 'unlimited'}, performed {performed or 'unlimited'}", at, size)


def _user_role_selection(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    length = len(raw)
    if length < 4:
        raise DecodeError("role selection sub-item too short", item)
    uid_length = struct.unpack_from("!H", raw, 0)[0]
    if 2 + uid_length + 2 > length:
        raise DecodeError("role selection UID length runs past the sub-item", item)
    uid = _uid(raw[2 : 2 + uid_length])
    scu, scp = raw[2 + uid_length], raw[3 + uid_length]
    user.roles.append((uid, scu, scp))
    return Field("SCP/SCU role selection (0x54)", f"{uid_label(uid)}: SCU role {scu}, SCP role {scp}",
                 at, size)


def _user_implementation_version(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    user.implementation_version_name = _text(raw)
    return Field("Implementation version name (0x55)", user.implementation_version_name, at, size)


def _user_extended_negotiation(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    length = len(raw)
    if length < 2:
        raise DecodeError("SOP class extended negotiation sub-item too short", item)
    uid_length = struct.unpack_from("!H", raw, 0)[0]
    if 2 + uid_length > length:
        raise DecodeError("extended negotiation UID length runs past the sub-item", item)
    uid = _uid(raw[2 : 2 + uid_length])
    info = raw[2 + uid_length :]
    user.extended_negotiation.append((uid, info))
    return Field("SOP class extended negotiation (0x56)",
                 f"{uid_label(uid)}: {_flag_bytes_text(uid, info)}", at, size)


def _user_common_extended_negotiation(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    length = len(raw)
    position = 0

    def take_uid() -> str:
        nonlocal position
        if position + 2 > length:
            raise DecodeError("common extended negotiation sub-item truncated", item)
        size_ = struct.unpack_from("!H", raw, position)[0]
        if position + 2 + size_ > length:
            raise DecodeError("common extended negotiation UID runs past the sub-item", item)
        text = _uid(raw[position + 2 : position + 2 + size_])
        position += 2 + size_
        return text

    sop_class = take_uid()
    service_class = take_uid()
    related: list[str] = []
    if position + 2 <= length:
        related_length = struct.unpack_from("!H", raw, position)[0]
        position += 2
        related_end = position + related_length
        if related_end > length:
            raise DecodeError("related general SOP classes run past the sub-item", item)
        while position < related_end:
            related.append(take_uid())
    user.common_extended_negotiation.append((sop_class, service_class, related))
    children = tuple(Field("Related general SOP class", uid_label(uid), at, size) for uid in related)
    return Field("SOP class common extended negotiation (0x57)",
                 f"{uid_label(sop_class)} in {uid_label(service_class)}", at, size, children)


def _user_user_identity(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    length = len(raw)
    if length < 6:
        raise DecodeError("user identity sub-item too short", item)
    identity_type, positive = raw[0], raw[1]
    primary_length = struct.unpack_from("!H", raw, 2)[0]
    if 4 + primary_length + 2 > length:
        raise DecodeError("user identity primary field runs past the sub-item", item)
    primary = raw[4 : 4 + primary_length]
    secondary_length = struct.unpack_from("!H", raw, 4 + primary_length)[0]
    if 6 + primary_length + secondary_length > length:
        raise DecodeError("user identity secondary field runs past the sub-item", item)
    user.user_identity = UserIdentityRequest(identity_type, bool(positive), primary, secondary_length)
    kind = USER_IDENTITY_TYPES.get(identity_type, f"type {identity_type}")
    primary_text = _text(primary) if identity_type in (1, 2) else f"{primary_length} bytes"
    children = [
        Field("Identity type", kind, at + 4, 1),
        Field("Positive response requested", "yes" if positive else "no", at + 5, 1),
        Field("Primary field", primary_text, at + 8, primary_length),
    ]
    if identity_type == 2 or secondary_length:
        label = "Secondary field (passcode)" if identity_type == 2 else "Secondary field"
        children.append(Field(label, f"{MASK} ({secondary_length} bytes)",
                              at + 10 + primary_length, secondary_length))
    return Field("User identity negotiation (0x58)", f"{kind}: {primary_text}", at, size,
                 tuple(children))


def _user_user_identity_response(raw: bytes, at: int, size: int, item: int, user: UserInformation) -> Field:
    length = len(raw)
    if length < 2:
        raise DecodeError("user identity response sub-item too short", item)
    response_length = struct.unpack_from("!H", raw, 0)[0]
    if 2 + response_length > length:
        raise DecodeError("user identity server response runs past the sub-item", item)
    user.user_identity_response = raw[2 : 2 + response_length]
    return Field("User identity response (0x59)", f"server response, {response_length} bytes",
                 at, size, (Field("Server response", f"{MASK} ({response_length} bytes)",
                                  at + 6, response_length),))


_USER_SUB_ITEMS = {
    0x51: _user_max_length,
    0x52: _user_implementation_class,
    0x53: _user_async_window,
    0x54: _user_role_selection,
    0x55: _user_implementation_version,
    0x56: _user_extended_negotiation,
    0x57: _user_common_extended_negotiation,
    0x58: _user_user_identity,
    0x59: _user_user_identity_response,
}


def _decode_user_information(body: bytes, start: int, end: int, user: UserInformation,
                             contexts_by_uid: dict[str, str]) -> list[Field]:
    """The user information item's sub-items (PS3.7 D.3.3, PS3.8 9.3.2.3): one field each, into ``user``."""
    fields: list[Field] = []
    for count, (sub_type, value, length) in enumerate(_items(body, start, end, "user information"), 1):
        if count > MAX_USER_SUB_ITEMS:
            fields.append(Field(f"More than {MAX_USER_SUB_ITEMS} sub-items", "the rest not decoded",
                                value - 4 + HEADER, end - value + 4, problem="too many sub-items"))
            break
        decode = _USER_SUB_ITEMS.get(sub_type)
        if decode is None:
            user.unknown_items.append(sub_type)
            fields.append(Field(f"Unknown user information sub-item 0x{sub_type:02x}", f"{length} bytes",
                                value - 4 + HEADER, length + 4, problem="unknown sub-item"))
            continue
        # Sub-item decoders get its value bytes, its PDU-relative place, and its body offset
        # (DecodeError offsets point at the sub-item's header).
        fields.append(decode(body[value : value + length], value - 4 + HEADER, length + 4, value - 4, user))
    return fields


def _decode_context_item(body: bytes, value: int, length: int, rq: bool,
                         problems: list[str]) -> tuple[ContextItem, Field]:
    """One presentation context item (0x20 in a request, 0x21 in an accept) at ``body[value:]``."""
    if length < 4:
        raise DecodeError("presentation context item shorter than 4 bytes", value - 4)
    context = ContextItem(body[value], None if rq else body[value + 2])
    sub_fields: list[Field] = []
    for sub_type, sub_value, sub_length in _items(body, value + 4, value + length, "presentation context"):
        uid = _uid(body[sub_value : sub_value + sub_length])
        sub_at, sub_size = sub_value - 4 + HEADER, sub_length + 4
        if sub_type == 0x30:
            if context.abstract_syntax:
                problems.append(f"context {context.context_id}: more than one abstract syntax")
            context.abstract_syntax = uid
            sub_fields.append(Field("Abstract syntax", uid_with_name(uid), sub_at, sub_size))
        elif sub_type == 0x40:
            context.transfer_syntaxes.append(uid)
            sub_fields.append(Field("Transfer syntax", uid_with_name(uid), sub_at, sub_size))
        else:
            sub_fields.append(Field(f"Unknown sub-item 0x{sub_type:02x}", "", sub_at, sub_size,
                                    problem="unknown sub-item"))
    if context.context_id % 2 == 0:
        problems.append(f"presentation context ID {context.context_id} is even")
    if rq and not context.abstract_syntax:
        problems.append(f"context {context.context_id}: no abstract syntax")
    if rq and not context.transfer_syntaxes:
        problems.append(f"context {context.context_id}: no transfer syntax")
    if not rq and context.result == 0 and len(context.transfer_syntaxes) != 1:
        problems.append(f"context {context.context_id}: accepted with {len(context.transfer_syntaxes)} "
                        "transfer syntaxes (exactly one expected)")
    value_text = f"ID {context.context_id}"
    if not rq:
        value_text += f", {CONTEXT_RESULTS.get(context.result, f'result {context.result}')}"
    elif context.abstract_syntax:
        value_text += f", {uid_label(context.abstract_syntax)}"
    return context, Field("Presentation context", value_text, value - 4 + HEADER, length + 4,
                          tuple(sub_fields))


def decode_associate(body: bytes, pdu_type: int, max_contexts: int = _LIMITS.max_contexts) -> AssociatePdu:
    """A-ASSOCIATE-RQ (type 1) or A-ASSOCIATE-AC (type 2) body.

    Presentation context items past ``max_contexts`` are counted, not decoded
    (context IDs are one byte, so more than 256 can only repeat IDs).
    """
    if len(body) < 68:
        raise DecodeError(f"A-ASSOCIATE body of {len(body)} bytes is shorter than its 68 fixed bytes", 0)
    protocol_version = struct.unpack_from("!H", body, 0)[0]
    called_ae = _text(body[4:20])
    calling_ae = _text(body[20:36])
    rq = pdu_type == 1
    children: list[Field] = [
        Field("Protocol version", f"0x{protocol_version:04x}", 6, 2,
              problem="" if protocol_version & 1 else "protocol version 1 bit not set"),
        Field("Called AE title", repr(called_ae), 10, 16),
        Field("Calling AE title", repr(calling_ae), 26, 16),
    ]
    application_context = ""
    contexts: list[ContextItem] = []
    user = UserInformation()
    problems: list[str] = []
    context_items = 0
    for item_type, value, length in _items(body, 68, len(body), "A-ASSOCIATE"):
        at, size = value - 4 + HEADER, length + 4
        if item_type in (0x20, 0x21):
            context_items += 1
            if context_items > max_contexts:
                continue
        if item_type == 0x10:
            application_context = _uid(body[value : value + length])
            children.append(Field("Application context", uid_with_name(application_context), at, size))
        elif item_type in (0x20, 0x21):
            if (item_type == 0x20) != rq:
                problems.append(f"presentation context item 0x{item_type:02x} in the wrong PDU type")
            context, context_field = _decode_context_item(body, value, length, rq, problems)
            contexts.append(context)
            children.append(context_field)
        elif item_type == 0x50:
            user_fields = _decode_user_information(body, value, value + length, user, {})
            children.append(Field("User information", "", at, size, tuple(user_fields)))
        else:
            children.append(Field(f"Unknown item 0x{item_type:02x}", f"{length} bytes", at, size,
                                  problem="unknown item"))
    if context_items > max_contexts:
        problems.append(f"{context_items} presentation context items; only the first {max_contexts} decoded")
        children.append(Field(f"{context_items - max_contexts} more presentation contexts", "not decoded",
                              problem=f"more than {max_contexts} presentation contexts"))
    if not application_context:
        problems.append("no application context item")
    name = "A-ASSOCIATE-RQ" if rq else "A-ASSOCIATE-AC"
    tree = Field(name, f"{calling_ae} {'-->' if rq else '<--'} {called_ae}", 0, len(body) + HEADER,
                 tuple(children))
    return AssociatePdu(pdu_type, protocol_version, called_ae, calling_ae, application_context, contexts,
                        user, tree, problems)


def decode_associate_rq(body: bytes) -> AssociatePdu:
    return decode_associate(body, 1)


def decode_associate_ac(body: bytes) -> AssociatePdu:
    return decode_associate(body, 2)


def decode_associate_rj(body: bytes) -> RejectPdu:
    if len(body) != 4:
        raise DecodeError(f"A-ASSOCIATE-RJ body is {len(body)} bytes, expected 4", 0)
    result, source, reason = body[1], body[2], body[3]
    pdu = RejectPdu(result, source, reason, Field("A-ASSOCIATE-RJ"))
    pdu.tree = Field("A-ASSOCIATE-RJ", pdu.text, 0, 10, (
        Field("Result", REJECT_RESULTS.get(result, f"unknown ({result})"), 7, 1),
        Field("Source", REJECT_SOURCES.get(source, f"unknown ({source})"), 8, 1),
        Field("Reason", reject_reason_text(source, reason), 9, 1),
    ))
    return pdu


def decode_abort(body: bytes) -> AbortPdu:
    if len(body) != 4:
        raise DecodeError(f"A-ABORT body is {len(body)} bytes, expected 4", 0)
    source, reason = body[2], body[3]
    pdu = AbortPdu(source, reason, Field("A-ABORT"))
    pdu.tree = Field("A-ABORT", pdu.text, 0, 10, (
        Field("Source", ABORT_SOURCES.get(source, f"unknown ({source})"), 8, 1),
        Field("Reason", abort_reason_text(source, reason), 9, 1),
    ))
    return pdu


def decode_release(body: bytes, pdu_type: int) -> ReleasePdu:
    name = "A-RELEASE-RQ" if pdu_type == 5 else "A-RELEASE-RP"
    if len(body) != 4:
        raise DecodeError(f"{name} body is {len(body)} bytes, expected 4", 0)
    return ReleasePdu(pdu_type, Field(name, "", 0, 10))


def describe_message_control(flags: int) -> str:
    kind = "Command" if flags & 1 else "Data set"
    last = "last fragment" if flags & 2 else "more fragments follow"
    extra = f", reserved bits 0x{flags & 0xFC:02x} set" if flags & 0xFC else ""
    return f"{kind}, {last}{extra}"


def decode_pdata(body: bytes, max_pdvs: int = _LIMITS.max_pdvs_per_pdu) -> PDataPdu:
    """P-DATA-TF body: any number of PDV items (up to ``max_pdvs``; the tree shows the first
    ``MAX_PDV_FIELDS``)."""
    pdvs: list[tuple[int, int, int, int]] = []
    fields: list[Field] = []
    problems: list[str] = []
    offset = 0
    while offset < len(body):
        if len(pdvs) >= max_pdvs:
            problems.append(f"more than {max_pdvs} PDVs in one PDU; the rest not decoded")
            fields.append(Field("More PDVs", "not decoded", offset + HEADER, len(body) - offset,
                                problem=f"more than {max_pdvs} PDVs"))
            break
        if offset + 6 > len(body):
            raise DecodeError("truncated PDV header", offset)
        item_length = struct.unpack_from("!I", body, offset)[0]
        if item_length < 2 or offset + 4 + item_length > len(body):
            raise DecodeError(f"PDV item length {item_length} does not fit the P-DATA-TF PDU", offset)
        context_id, flags = body[offset + 4], body[offset + 5]
        pdvs.append((offset + 6, item_length - 2, context_id, flags))
        if len(pdvs) > MAX_PDV_FIELDS:  # listed, not shown or checked
            offset += 4 + item_length
            continue
        if flags & 0xFC:
            problems.append(f"PDV at offset {offset}: reserved message control bits set")
        if context_id % 2 == 0:
            problems.append(f"PDV at offset {offset}: presentation context ID {context_id} is even")
        fields.append(Field(f"PDV, context {context_id}", f"{item_length - 2} bytes, {describe_message_control(flags)}",
                            offset + HEADER, item_length + 4, (
                                Field("PDV length", str(item_length), offset + HEADER, 4),
                                Field("Presentation context ID", str(context_id), offset + HEADER + 4, 1),
                                Field("Message control header", f"0x{flags:02x}: {describe_message_control(flags)}",
                                      offset + HEADER + 5, 1,
                                      problem="reserved bits set" if flags & 0xFC else ""),
                            )))
        offset += 4 + item_length
    if len(pdvs) > MAX_PDV_FIELDS:
        fields.insert(MAX_PDV_FIELDS, Field(f"{len(pdvs) - MAX_PDV_FIELDS} more PDVs", "not shown"))
    return PDataPdu(pdvs, Field("P-DATA-TF", f"{len(pdvs)} PDV(s)", 0, len(body) + HEADER, tuple(fields)), problems)
