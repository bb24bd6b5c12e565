"""The display-filter language: a tokenizer and a recursive-descent parser compiling to a predicate.

Pure (no Textual).  ``compile_filter(text)`` returns a ``DisplayFilter`` whose
``matches(index, pdu)`` says whether a PDU row is shown; ``index`` is a
``tui.index.PacketIndex`` (messages of a PDU, lazy data set decoding).  Bad
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

from dicomtui.core.model import Pdu
from dicomtui.core.base.uids import uid_name

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


# -- data set content ----------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _keyword_tag(keyword: str) -> int | None:
    from pydicom.datadict import tag_for_keyword

    try:
        tag = tag_for_keyword(keyword)
    except Exception:
        return None
    return int(tag) if tag is not None else None


def _element_values(element) -> list[Any]:
    value = element.value
    if element.VR == "SQ":
        return [f"{len(value)} item(s)"]
    if value is None:
        return [""]
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value[:64]).hex(" ")]
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        items = list(value)
        return [*items, "\\".join(str(item) for item in items)] if items else [""]
    return [value]


class DatasetField:
    """Values of one tag anywhere in the data sets completed in a PDU, memoised per message."""

    MEMO_LIMIT = 200_000

    def __init__(self, tag: int, label: str) -> None:
        self.tag = tag
        self.label = label
        self.memo: dict[int, list[Any]] = {}

    def values_of(self, index, message) -> list[Any]:
        found = self.memo.get(message.index)
        if found is not None:
            return found
        found = []
        decoded = index.decode_dataset(message)
        dataset = getattr(decoded, "dataset", None) if decoded is not None else None
        if dataset is not None:
            try:
                for element in dataset.iterall():
                    if int(element.tag) == self.tag:
                        found.extend(_element_values(element))
            except Exception:  # damaged values: what was found so far counts
                pass
        if len(self.memo) < self.MEMO_LIMIT:
            self.memo[message.index] = found
        return found

    def __call__(self, index, pdu: Pdu):
        for message in index.dataset_completed_in(pdu):
            yield from self.values_of(index, message)


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

    def test(self) -> Predicate:
        start = self.peek()
        base_names = False
        if start.kind == "op" and start.text == "(":
            tag = self._tag_arguments(start)
            getter: Getter = DatasetField(tag, f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
            self.uses_datasets = True
        elif self.is_keyword(start, "tag") and self.tokens[self.at + 1].text == "(":
            self.take()
            tag = self._tag_arguments(start)
            getter = DatasetField(tag, f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
            self.uses_datasets = True
        else:
            name = self.take().text
            spec = FIELDS.get(name.lower())
            if spec is not None:
                getter = spec.getter
                base_names = spec.base_names
            else:
                tag = _keyword_tag(name)
                if tag is None:
                    raise FilterError(f"unknown field {name!r}", start.position)
                getter = DatasetField(tag, name)
                self.uses_datasets = True
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
