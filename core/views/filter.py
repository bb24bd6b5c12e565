"""The display-filter language: a tokenizer and a recursive-descent parser compiling to a predicate.

Pure (no Textual; shared by the TUI and the command line's ``-Y``).  ``compile_filter(text)`` returns a ``DisplayFilter`` whose
``matches(index, pdu)`` says whether a PDU row is shown; ``index`` is a
``core.views.index.PacketIndex`` (messages of a PDU, lazy data set decoding).  Bad
input raises ``FilterError`` with the character position, so the filter bar can
mark it as invalid while the user types.  The grammar and the fields are
documented in docs/filter.md::

    expression := or
    or         := and { ("or" | "||") and }
    and        := not { ("and" | "&&") not }
    not        := ("not" | "!") not | primary
    primary    := "(" expression ")" | test
    test       := field [ operator value ]
    field      := name { "." name } | "tag" "(" group "," element ")" | "(" group "," element ")"
    operator   := "==" | "=" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "matches" | "~"
    value      := number | "quoted string" | bare-word

A field may have several values for one PDU (a P-DATA PDU can carry PDVs of
two messages; ``ae`` is both AE titles): ``==``, ``<``, ``contains`` ... are
true when *some* value satisfies them; ``!=`` is true when the field has
values and *none* equals the literal; a test on a field with no value is false.
Worst case: evaluation is linear in the expression size per PDU, plus one
data set decode per message for data set tests (memoised per message).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dicomtui.core.base.uids import uid_name
from dicomtui.core.model import Pdu

from .dataset_values import ALL_TAGS, values_cache

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 64


class FilterError(ValueError):
    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.position = position


# -- tokens --------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<op>==|!=|<=|>=|&&|\|\||[()<>=!~,])
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<word>[A-Za-z0-9_.\-:/+*@^$\[\]]+)
""", re.VERBOSE)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # op, string, word, end
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter longer than {MAX_FILTER_LENGTH} characters", MAX_FILTER_LENGTH)
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] in "\"'":
                raise FilterError("unterminated string", position)
            raise FilterError(f"unexpected character {text[position]!r}", position)
        kind = match.lastgroup
        if kind == "string":
            raw = match.group()
            body = raw[1:-1]
            value = re.sub(r"\\(.)", r"\1", body)
            tokens.append(Token("string", value, position))
        elif kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# -- values --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    text: str
    number: float | None
    boolean: bool | None
    quoted: bool


def _literal(token: Token) -> Literal:
    number = None
    boolean = None
    if token.kind == "word":
        text = token.text
        try:
            number = int(text, 16) if text.lower().startswith("0x") else float(text)
        except ValueError:
            number = None
        if text.lower() in ("true", "false"):
            boolean = text.lower() == "true"
    return Literal(token.text, number, boolean, token.kind == "string")


def _equal(value: Any, literal: Literal, base_names: bool) -> bool:
    if isinstance(value, bool):
        if literal.boolean is not None:
            return value == literal.boolean
        return literal.number is not None and float(value) == literal.number
    if isinstance(value, (int, float)):
        if literal.number is not None:
            return float(value) == literal.number
        return False
    text = str(value).strip().lower()
    wanted = literal.text.strip().lower()
    if text == wanted:
        return True
    return base_names and text.startswith(wanted + "-")


def _order(value: Any, literal: Literal) -> float | str | None:
    """Both sides as numbers when possible, else as strings; None when they do not compare."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if literal.number is not None else None
    if literal.number is not None:
        try:
            return float(str(value).strip())
        except ValueError:
            return None
    return str(value).strip().lower()


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _make_test(operator: str, literal: Literal, base_names: bool) -> Callable[[Iterable[Any]], bool]:
    if operator == "==":
        return lambda values: any(_equal(value, literal, base_names) for value in values)
    if operator == "!=":
        def not_equal(values: Iterable[Any]) -> bool:
            seen = False
            for value in values:
                seen = True
                if _equal(value, literal, base_names):
                    return False
            return seen
        return not_equal
    if operator == "contains":
        wanted = literal.text.lower()
        return lambda values: any(wanted in str(value).lower() for value in values)
    if operator == "matches":
        try:
            pattern = re.compile(literal.text, re.IGNORECASE)
        except re.error as exc:
            raise FilterError(f"bad regular expression: {exc}") from None
        return lambda values: any(pattern.search(str(value)) for value in values)
    compare = _COMPARE[operator]
    wanted_number = literal.number
    wanted_text = literal.text.strip().lower()

    def ordered(values: Iterable[Any]) -> bool:
        for value in values:
            left = _order(value, literal)
            if left is None:
                continue
            right = wanted_number if isinstance(left, float) else wanted_text
            if compare(left, right):
                return True
        return False
    return ordered


def _truthy(values: Iterable[Any]) -> bool:
    return any(value not in (None, "", False) for value in values)


# -- fields --------------------------------------------------------------------------------

Getter = Callable[[Any, Pdu], Iterable[Any]]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    getter: Getter
    help: str
    base_names: bool = False  # "C-STORE" equals "C-STORE-RQ" and "C-STORE-RSP"


def _endpoints(index, pdu: Pdu) -> tuple[str, str]:
    connection = index.analysis.connections[pdu.connection]
    return (connection.client, connection.server) if pdu.direction == 0 else (connection.server, connection.client)


def _host(address: str) -> str:
    host, _sep, _port = address.rpartition(":")
    return host.strip("[]")


def _port(address: str) -> int:
    return int(address.rpartition(":")[2] or 0)


def _association(index, pdu: Pdu):
    if 0 <= pdu.association < len(index.analysis.associations):
        return index.analysis.associations[pdu.association]
    return None


def _frames(_index, pdu: Pdu):
    if pdu.last_frame - pdu.first_frame <= 256:
        return range(pdu.first_frame, pdu.last_frame + 1)
    return (pdu.first_frame, pdu.last_frame)


def _type_values(_index, pdu: Pdu):
    name = pdu.type_name
    values = [name, pdu.pdu_type]
    if name.endswith("-TF"):
        values.append(name[:-3])  # P-DATA
    if name == "A-ABORT":
        values.append("ABORT")
    return values


def _messages(getter: Callable[[Any, Any], Iterable[Any]]) -> Getter:
    def get(index, pdu: Pdu):
        for message in index.messages_for(pdu):
            yield from getter(index, message)
    return get


def _status_category(category: str) -> Getter:
    def get(index, pdu: Pdu):
        return [any(index.status_category(message) == category for message in index.messages_for(pdu))]
    return get


def _sop_class(_index, message):
    uid = message.affected_sop_class
    if uid:
        yield uid
        name = uid_name(uid)
        if name:
            yield name


def _command_value(key: str) -> Callable[[Any, Any], Iterable[Any]]:
    def get(_index, message):
        value = message.command.get(key)
        if value is not None and value != "":
            yield value
    return get


FIELDS: dict[str, FieldSpec] = {}


def _field(names: str, getter: Getter, help: str, base_names: bool = False) -> None:
    spec = FieldSpec(names.split()[0], getter, help, base_names)
    for name in names.split():
        FIELDS[name] = spec


_field("pdu number", lambda index, pdu: [pdu.index + 1], "PDU number as shown in the first column")
_field("frame", _frames, "capture frame numbers the PDU spans")
_field("time", lambda index, pdu: [index.analysis.frame_time(pdu.timestamp)], "seconds since the first frame")
_field("type pdu.type", _type_values, "PDU type: A-ASSOCIATE-RQ, P-DATA-TF (or P-DATA), A-ABORT ... or 1-7",
       base_names=True)
_field("kind", lambda index, pdu: [index.row_kind(pdu)],
       "association, data, release, abort, reject, failure or warning (the row colour)")
_field("length pdu.length", lambda index, pdu: [pdu.length], "PDU length field (body bytes)")
_field("direction dir", lambda index, pdu: ["client" if pdu.direction == 0 else "server"],
       "which side sent the PDU: client (association requester) or server")
_field("assoc association", lambda index, pdu: [pdu.association], "association number (A0 is 0)")
_field("connection conn", lambda index, pdu: [pdu.connection], "TCP connection number")
_field("src", lambda index, pdu: [_endpoints(index, pdu)[0]], "source address:port")
_field("dst", lambda index, pdu: [_endpoints(index, pdu)[1]], "destination address:port")
_field("addr", lambda index, pdu: list(_endpoints(index, pdu)), "source or destination address:port")
_field("ip host", lambda index, pdu: [_host(a) for a in _endpoints(index, pdu)], "source or destination address")
_field("port", lambda index, pdu: [_port(a) for a in _endpoints(index, pdu)], "source or destination port")
_field("ae", lambda index, pdu: [ae for a in [_association(index, pdu)] if a for ae in (a.calling_ae, a.called_ae)],
       "calling or called AE title of the PDU's association")
_field("calling_ae calling", lambda index, pdu: [a.calling_ae for a in [_association(index, pdu)] if a],
       "calling AE title")
_field("called_ae called", lambda index, pdu: [a.called_ae for a in [_association(index, pdu)] if a],
       "called AE title")
_field("complete", lambda index, pdu: [pdu.complete], "false when a TCP gap or the capture's end cut the PDU")
_field("summary info", lambda index, pdu: [pdu.summary], "the Info column text")
_field("context", lambda index, pdu: [pdv.context_id for pdv in pdu.pdvs], "presentation context ID of a PDV")
_field("command", _messages(lambda index, m: [m.command_name]),
       "DIMSE command name: C-STORE-RQ ... (C-STORE matches -RQ and -RSP)", base_names=True)
_field("command_field", _messages(lambda index, m: [m.command_field]), "CommandField number, e.g. 0x8001")
_field("message_id msgid", _messages(lambda index, m: [v for v in (m.message_id, m.responded_to) if v is not None]),
       "MessageID or MessageIDBeingRespondedTo")
_field("status", _messages(lambda index, m: [m.status] if m.status is not None else []),
       "DIMSE status of a response, e.g. status != 0, status == 0xA700")
for _category in ("success", "pending", "cancel", "warning", "failure"):
    _field(f"status.{_category}", _status_category(_category), f"a response with a {_category} status")
_field("sop_class", _messages(_sop_class), "affected/requested SOP class UID or its name")
_field("sop_instance", _messages(lambda index, m: [m.affected_sop_instance] if m.affected_sop_instance else []),
       "affected/requested SOP instance UID")
_field("response_time", _messages(lambda index, m: [m.response_time] if m.response_time is not None else []),
       "seconds from the request complete to this response complete (docs/timing.md)")
_field("first_byte_time", _messages(lambda index, m: [m.first_byte_time] if m.first_byte_time is not None else []),
       "seconds from the request complete to this response's first byte")
_field("transfer_time", _messages(lambda index, m: [m.transfer_time]),
       "seconds from a message's first byte to its last")
_field("has_dataset dataset", _messages(lambda index, m: [m.has_dataset]), "the message carries a data set")
_field("move_destination", _messages(_command_value("MoveDestination")), "C-MOVE destination AE title")
_field("error_comment", _messages(_command_value("ErrorComment")), "ErrorComment of a response")


# -- Wireshark's DICOM field names ----------------------------------------------------------
# Wireshark's dissector names its fields dicom.*; a Wireshark user types those.  Each one with an
# equivalent here is accepted (same values); the others are refused with a pointer.

ASSOCIATE_TYPES = (1, 2)


def _decoded(index, pdu: Pdu):
    decoded, _error = index.decode_pdu(pdu)
    return decoded


def _decoded_number(name: str, types: tuple[int, ...]) -> Getter:
    def get(index, pdu: Pdu):
        if pdu.pdu_type not in types:
            return []
        value = getattr(_decoded(index, pdu), name, None)
        return [] if value is None else [value]
    return get


def _item_types(index, pdu: Pdu):
    """Item and sub-item types of an A-ASSOCIATE-RQ/AC, as Wireshark's dicom.assoc.item.type."""
    if pdu.pdu_type not in ASSOCIATE_TYPES:
        return []
    decoded = _decoded(index, pdu)
    if decoded is None:
        return []
    types = [0x10] if getattr(decoded, "application_context", "") else []
    types += [0x20 if pdu.pdu_type == 1 else 0x21] * (1 if getattr(decoded, "contexts", None) else 0)
    user = getattr(decoded, "user", None)
    if user is not None:
        types.append(0x50)
        for item_type, present in ((0x51, user.max_length is not None), (0x52, user.implementation_class_uid),
                                   (0x53, user.async_window), (0x54, user.roles),
                                   (0x55, user.implementation_version_name), (0x56, user.extended_negotiation),
                                   (0x57, user.common_extended_negotiation), (0x58, user.user_identity),
                                   (0x59, user.user_identity_response is not None)):
            if present:
                types.append(item_type)
        types += list(user.unknown_items)
    return types


def _context_syntaxes(kind: str) -> Getter:
    def get(index, pdu: Pdu):
        association = _association(index, pdu)
        if association is None:
            return []
        if pdu.pdu_type in ASSOCIATE_TYPES:
            contexts = association.contexts.values()
        else:
            contexts = [association.contexts[c] for c in {pdv.context_id for pdv in pdu.pdvs}
                        if c in association.contexts]
        values = []
        for context in contexts:
            uids = [context.abstract_syntax] if kind == "abstract" else (
                list(context.proposed_transfer_syntaxes) if pdu.pdu_type == 1 else [context.transfer_syntax])
            for uid in uids:
                if uid:
                    values.append(uid)
                    name = uid_name(uid)
                    if name:
                        values.append(name)
        return values
    return get


def _implementation(part: int) -> Getter:
    def get(index, pdu: Pdu):
        association = _association(index, pdu)
        if association is None or pdu.pdu_type not in ASSOCIATE_TYPES:
            return []
        side = association.requestor_implementation if pdu.pdu_type == 1 else association.acceptor_implementation
        return [side[part]] if side[part] else []
    return get


def _max_pdu(index, pdu: Pdu):
    association = _association(index, pdu)
    if association is None or pdu.pdu_type not in ASSOCIATE_TYPES:
        return []
    value = association.requestor_max_pdu if pdu.pdu_type == 1 else association.acceptor_max_pdu
    return [] if value is None else [value]


def _message_tags(index, pdu: Pdu):
    """dicom.tag: every tag of the PDU's command sets and of the data sets completed in it."""
    for message in index.messages_for(pdu):
        for keyword in message.command:
            tag = _keyword_tag(keyword) if not keyword.startswith("(") else int(keyword[1:5] + keyword[6:10], 16)
            if tag is not None:
                yield tag
    cache = values_cache(index.analysis)
    for message in index.dataset_completed_in(pdu):
        yield from cache.lookup(message, ALL_TAGS, frozenset({ALL_TAGS}))


WIRESHARK_FIELDS: dict[str, tuple[Getter, bool, str]] = {
    "dicom": (lambda index, pdu: [True], False, "every DICOM PDU"),
    "dicom.pdu.type": (_type_values, True, "type"),
    "dicom.pdu.len": (lambda index, pdu: [pdu.length], False, "length"),
    "dicom.assoc.ae.called": (FIELDS["called_ae"].getter, False, "called_ae"),
    "dicom.assoc.ae.calling": (FIELDS["calling_ae"].getter, False, "calling_ae"),
    "dicom.assoc.item.type": (_item_types, False, "item and sub-item types of an A-ASSOCIATE"),
    "dicom.assoc.reject": (lambda index, pdu: [pdu.pdu_type == 3], False, "type == A-ASSOCIATE-RJ"),
    "dicom.assoc.abort": (lambda index, pdu: [pdu.pdu_type == 7], False, "type == A-ABORT"),
    "dicom.assoc.reject.result": (_decoded_number("result", (3,)), False, "reject result"),
    "dicom.assoc.reject.source": (_decoded_number("source", (3,)), False, "reject source"),
    "dicom.assoc.reject.reason": (_decoded_number("reason", (3,)), False, "reject reason"),
    "dicom.assoc.abort.source": (_decoded_number("source", (7,)), False, "abort source"),
    "dicom.assoc.abort.reason": (_decoded_number("reason", (7,)), False, "abort reason"),
    "dicom.assoc.version": (_decoded_number("protocol_version", ASSOCIATE_TYPES), False, "protocol version"),
    "dicom.actx": (lambda index, pdu: [a.application_context for a in [_association(index, pdu)]
                                       if a and pdu.pdu_type in ASSOCIATE_TYPES], False, "application context"),
    "dicom.pctx.id": (lambda index, pdu: [c for a in [_association(index, pdu)] if a
                                          and pdu.pdu_type in ASSOCIATE_TYPES for c in a.contexts]
                      or [pdv.context_id for pdv in pdu.pdvs], False, "context"),
    "dicom.pctx.abss.syntax": (_context_syntaxes("abstract"), False, "abstract syntax (UID or name)"),
    "dicom.pctx.xfer.syntax": (_context_syntaxes("transfer"), False, "transfer syntax (UID or name)"),
    "dicom.userinfo.uid": (_implementation(0), False, "implementation class UID"),
    "dicom.userinfo.version": (_implementation(1), False, "implementation version name"),
    "dicom.max_pdu_len": (_max_pdu, False, "maximum PDU length"),
    "dicom.pdv.len": (lambda index, pdu: [pdv.length for pdv in pdu.pdvs], False, "PDV length"),
    "dicom.pdv.ctx": (FIELDS["context"].getter, False, "context"),
    "dicom.pdv.flags": (lambda index, pdu: [int(pdv.is_command) | int(pdv.is_last) << 1 for pdv in pdu.pdvs],
                        False, "PDV flags (bit 0 command, bit 1 last fragment)"),
    "dicom.status": (FIELDS["status"].getter, False, "status"),
    "dicom.tag": (_message_tags, False, "tags present in the command and data set, e.g. dicom.tag == 0x00100010"),
}


def wireshark_field_help() -> list[tuple[str, str]]:
    return [(name, f"as {meaning}") for name, (_getter, _base, meaning) in WIRESHARK_FIELDS.items()]


# -- command-set elements --------------------------------------------------------------------


def _command_tag_getter(tag: int) -> Getter:
    """A group 0000 element (command set): read from each message's command, not from data sets."""
    from pydicom.datadict import keyword_for_tag

    keyword = keyword_for_tag(tag) or f"(0000,{tag & 0xFFFF:04X})"
    return _messages(_command_value(keyword))


# -- data set content ----------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _keyword_tag(keyword: str) -> int | None:
    from pydicom.datadict import tag_for_keyword

    try:
        tag = tag_for_keyword(keyword)
    except Exception:
        return None
    return int(tag) if tag is not None else None


def nearest_fields(name: str, limit: int = 3) -> list[str]:
    """Known names close to a misspelt one: fields and Wireshark names first, then DICOM keywords.

    ``dimse.command`` -> ``command``; ``calling_aet`` -> ``calling_ae``; ``PatientNmae`` ->
    ``PatientName``.  Only on an error, so the ~5000 keywords are compared without an index.
    """
    import difflib

    from pydicom.datadict import keyword_dict

    lowered = name.lower()
    known = list(FIELDS) + list(WIRESHARK_FIELDS)
    found = difflib.get_close_matches(lowered, known, limit, 0.6)
    last = lowered.rsplit(".", 1)[-1]
    if last != lowered and last in FIELDS and last not in found:
        found.insert(0, last)  # a prefix from another tool's namespace (dimse.command, dcm.status)
    if len(found) < limit:
        keywords = {keyword.lower(): keyword for keyword in keyword_dict if keyword}
        found += [keywords[match] for match in difflib.get_close_matches(lowered, keywords, limit - len(found), 0.8)]
    return found[:limit]


def _unknown_field(name: str) -> str:
    suggestions = nearest_fields(name)
    hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
    return f"unknown field {name!r}{hint}"


class DatasetField:
    """Values of one tag anywhere in the data sets completed in a PDU.

    Values come from the analysis' ``DatasetValues`` cache: each data set is
    parsed once for all the tags the filter names (``wanted``) and kept for
    later filters.
    """

    def __init__(self, tag: int, label: str, wanted: set[int]) -> None:
        self.tag = tag
        self.label = label
        self.wanted = wanted  # shared by every data-set test of one filter: filled while parsing

    def __call__(self, index, pdu: Pdu):
        cache = values_cache(index.analysis)
        wanted = frozenset(self.wanted)
        for message in index.dataset_completed_in(pdu):
            yield from cache.lookup(message, self.tag, wanted)


# -- the parser ----------------------------------------------------------------------------

Predicate = Callable[[Any, Pdu], bool]


@dataclass(slots=True)
class DisplayFilter:
    text: str
    predicate: Predicate
    uses_datasets: bool = False

    def matches(self, index, pdu: Pdu) -> bool:
        return self.predicate(index, pdu)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.at = 0
        self.depth = 0
        self.uses_datasets = False
        self.dataset_tags: set[int] = set()

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        if token.kind != "end":
            self.at += 1
        return token

    def is_keyword(self, token: Token, *words: str) -> bool:
        return token.kind == "word" and token.text.lower() in words

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text or token.kind == "string":
            raise FilterError(f"expected {text!r}, found {token.text or 'end of filter'!r}", token.position)
        return token

    def parse(self) -> DisplayFilter:
        if self.peek().kind == "end":
            raise FilterError("empty filter", 0)
        predicate = self.expression()
        token = self.peek()
        if token.kind != "end":
            raise FilterError(f"unexpected {token.text!r}", token.position)
        return DisplayFilter(self.text, predicate, self.uses_datasets)

    def expression(self) -> Predicate:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError("filter nested too deeply", self.peek().position)
        try:
            return self.or_()
        finally:
            self.depth -= 1

    def or_(self) -> Predicate:
        parts = [self.and_()]
        while self.is_keyword(self.peek(), "or") or self.peek().text == "||" and self.peek().kind == "op":
            self.take()
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda index, pdu: any(part(index, pdu) for part in parts)

    def and_(self) -> Predicate:
        parts = [self.not_()]
        while self.is_keyword(self.peek(), "and") or self.peek().text == "&&" and self.peek().kind == "op":
            self.take()
            parts.append(self.not_())
        if len(parts) == 1:
            return parts[0]
        return lambda index, pdu: all(part(index, pdu) for part in parts)

    def not_(self) -> Predicate:
        token = self.peek()
        if self.is_keyword(token, "not") or (token.kind == "op" and token.text == "!"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError("filter nested too deeply", token.position)
            inner = self.not_()
            self.depth -= 1
            return lambda index, pdu: not inner(index, pdu)
        return self.primary()

    def primary(self) -> Predicate:
        token = self.peek()
        if token.kind == "op" and token.text == "(":
            if self._looks_like_tag():
                return self.test()
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        if token.kind in ("word",):
            return self.test()
        if token.kind == "end":
            raise FilterError("filter ends where a test was expected", token.position)
        raise FilterError(f"expected a field, found {token.text!r}", token.position)

    def _looks_like_tag(self) -> bool:
        tokens = self.tokens[self.at:self.at + 5]
        return (len(tokens) == 5 and tokens[1].kind == "word" and tokens[2].text == ","
                and tokens[3].kind == "word" and tokens[4].text == ")"
                and all(re.fullmatch(r"[0-9A-Fa-f]{4}", t.text) for t in (tokens[1], tokens[3])))

    def _tag_arguments(self, start: Token) -> int:
        self.expect("(")
        group = self.take()
        if group.kind == "word" and re.fullmatch(r"[0-9A-Fa-f]{8}", group.text) and self.peek().text == ")":
            self.take()
            return int(group.text, 16)
        self.expect(",")
        element = self.take()
        self.expect(")")
        for part in (group, element):
            if part.kind != "word" or not re.fullmatch(r"[0-9A-Fa-f]{4}", part.text):
                raise FilterError("a tag is (gggg,eeee) in hexadecimal", part.position)
        return (int(group.text, 16) << 16) | int(element.text, 16)

    def element(self, tag: int, label: str) -> Getter:
        """A data element test: the command set for group 0000, else the data sets."""
        if tag >> 16 == 0:
            return _command_tag_getter(tag)
        self.uses_datasets = True
        self.dataset_tags.add(tag)
        return DatasetField(tag, label, self.dataset_tags)

    def test(self) -> Predicate:
        start = self.peek()
        base_names = False
        if start.kind == "op" and start.text == "(":
            tag = self._tag_arguments(start)
            getter: Getter = self.element(tag, f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        elif self.is_keyword(start, "tag") and self.tokens[self.at + 1].text == "(":
            self.take()
            tag = self._tag_arguments(start)
            getter = self.element(tag, f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        else:
            name = self.take().text
            spec = FIELDS.get(name.lower())
            wireshark = WIRESHARK_FIELDS.get(name.lower())
            if spec is not None:
                getter = spec.getter
                base_names = spec.base_names
            elif wireshark is not None:
                getter, base_names = wireshark[0], wireshark[1]
                if name.lower() == "dicom.tag":
                    self.uses_datasets = True
            elif name.lower().startswith("dicom."):
                suggestions = nearest_fields(name)
                hint = f"; nearest: {', '.join(suggestions)}" if suggestions else ""
                raise FilterError(f"Wireshark field {name!r} has no dicomtui equivalent{hint} (see ? for "
                                  "the fields; data set elements by keyword or tag(gggg,eeee))", start.position)
            else:
                tag = _keyword_tag(name)
                if tag is None:
                    raise FilterError(_unknown_field(name), start.position)
                getter = self.element(tag, name)
        token = self.peek()
        operator = None
        if token.kind == "op" and token.text in ("==", "=", "!=", "<", "<=", ">", ">=", "~"):
            operator = {"=": "==", "~": "matches"}.get(token.text, token.text)
        elif self.is_keyword(token, "contains", "matches", "eq", "ne", "lt", "le", "gt", "ge"):
            operator = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}.get(
                token.text.lower(), token.text.lower())
        if operator is None:
            return lambda index, pdu: _truthy(getter(index, pdu))
        self.take()
        value = self.take()
        if value.kind not in ("word", "string"):
            raise FilterError(f"expected a value after {operator}, found {value.text or 'end of filter'!r}",
                              value.position)
        check = _make_test(operator, _literal(value), base_names)
        return lambda index, pdu: check(getter(index, pdu))


def compile_filter(text: str) -> DisplayFilter:
    """Parse ``text``; raises FilterError (with ``position``) when it is not a valid filter."""
    return _Parser(text).parse()


def field_help() -> list[tuple[str, str]]:
    seen = {}
    for name, spec in FIELDS.items():
        if spec.name == name:
            aliases = [other for other, s in FIELDS.items() if s is spec and other != name]
            label = name + (f" ({', '.join(aliases)})" if aliases else "")
            seen[label] = spec.help
    return list(seen.items())
