"""Expert rules for the upper-layer protocol: negotiated limits and how associations end.

The connection decoder already reports what it sees while framing (malformed
PDUs, invalid PDV lengths and flags, PDUs out of protocol order, PDVs on
contexts that were not accepted, TCP gaps); these rules add what needs the
whole association: P-DATA PDUs larger than the receiver accepts, and
connections that ended without A-RELEASE or A-ABORT, and data sets that do
not parse in the transfer syntax negotiated for their presentation context
(a presentation-layer mismatch, checked within a size budget).
"""

from __future__ import annotations

import struct
import weakref

from dicomtui import hookimpl
from dicomtui.core.base.uids import uid_label, uid_with_name
from dicomtui.core.model import AssociationState, Group, Severity
from pydicom.datadict import dictionary_VR
from pydicom.uid import UID

from .common import association_pdu_indices, option, pdu_at, peers, side


@hookimpl
def dicomtui_check_association(association, analysis, report):
    _oversized_pdus(association, analysis, report)
    _unanswered_request(association, analysis, report)
    _closed_without_release(association, analysis, report)


def _oversized_pdus(association, analysis, report) -> None:
    """P-DATA-TF longer than the receiver's maximum length (PS3.8 D.1: 0 means no limit).

    The requestor's maximum is what it can receive, so it limits what the acceptor
    sends (direction 1), and the acceptor's limits the requestor (direction 0).
    One item per direction, at the first offending PDU, with a count.
    """
    limits = {0: association.acceptor_max_pdu, 1: association.requestor_max_pdu}
    if not any(limits.values()):
        return
    first = {}
    counts = {0: 0, 1: 0}
    pdus = analysis.pdus
    types, directions, lengths = (_column(analysis, name) for name in ("pdu_type", "direction", "length"))
    base = pdus.base  # columns start at the first retained row (live retention)
    for index in association_pdu_indices(analysis, association.index):
        row = index - base
        if types[row] != 4:
            continue
        limit = limits.get(directions[row])
        if limit and lengths[row] > limit:
            counts[directions[row]] += 1
            first.setdefault(directions[row], index)
    for direction, index in first.items():
        pdu = pdus[index]
        receiver = side(association, 1 - direction)
        more = f" ({counts[direction]} such PDUs)" if counts[direction] > 1 else ""
        report.add(Severity.ERROR, Group.PROTOCOL,
                   f"P-DATA-TF PDU of {pdu.length} bytes from {side(association, direction)} exceeds the maximum "
                   f"length {limits[direction]} that {receiver} negotiated{more} — the receiver may abort or "
                   "misread it; check the sender's maximum PDU setting and that it honours the value in the "
                   "A-ASSOCIATE", pdu.last_frame, association.index, pdu.index,
                   code="protocol.pdu_exceeds_max_length")


_COLUMNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _column(analysis, name: str):
    """One column of the PDU table (rows ``base`` onwards), copied once and extended as rows arrive."""
    pdus = analysis.pdus
    columns = _COLUMNS.setdefault(analysis, {})
    cached = columns.get(name)
    if cached is None or cached[0] != (pdus.generation, pdus.base):
        cached = columns[name] = ((pdus.generation, pdus.base), pdus.column(name))
    column = cached[1]
    have = pdus.base + len(column)
    if have < len(pdus):
        column.extend(pdus.column(name, have))
    return column


def _unanswered_request(association, analysis, report) -> None:
    if association.request_pdu is None or association.response_pdu is not None or association.picked_up_midway:
        return
    if association.state != AssociationState.INCOMPLETE:
        return
    request = pdu_at(analysis, association.request_pdu)
    if request is None:
        return
    connection = analysis.connections[association.connection]
    if connection.closed_by:
        report.add(Severity.ERROR, Group.NEGOTIATION,
                   f"A-ASSOCIATE-RQ {peers(association)} was never answered: the connection was closed "
                   f"({connection.closed_by}) without A-ASSOCIATE-AC or -RJ — check that a DICOM SCP (not "
                   "another service, and not TLS-only) listens on this port, its log, and firewalls; an SCP "
                   "that knows its peers by host name may be waiting on a reverse name lookup",
                   connection.last_frame or request.last_frame, association.index, request.index,
                   code="protocol.associate_rq_unanswered")


def _closed_without_release(association, analysis, report) -> None:
    if association.state != AssociationState.INCOMPLETE:
        return
    if association.response_pdu is None and not association.picked_up_midway:
        return  # never established: _unanswered_request
    connection = analysis.connections[association.connection]
    if not connection.closed_by:
        return  # capture ended while the association was open: a capture note, see rules.capture
    if connection.closed_by == "RST":
        how = "was reset (TCP RST)"
    else:
        how = "was closed (TCP FIN)"
    report.add(Severity.WARNING, Group.SEQUENCE,
               f"association {peers(association)}: the connection {how} without A-RELEASE or A-ABORT — one "
               "side crashed, timed out or was stopped, or a firewall cut an idle connection; look at both "
               "sides' logs around this time and at the last request before the close",
               connection.last_frame or association.last_frame, association.index,
               code="protocol.closed_without_release")


# -- data sets in their negotiated transfer syntax ----------------------------------------

DATASET_CHECK_OPTION = "dataset_check_max_bytes"
DATASET_CHECK_DEFAULT = 1 << 20
DATASET_BUDGET_OPTION = "dataset_check_budget_bytes"
DATASET_BUDGET_DEFAULT = 16 << 20  # about half a second of pydicom parsing
# Problems that describe display limits, not a data set that fails to parse.
_DISPLAY_LIMITS = ("rest not shown", "too deeply to show")
DATASET_PER_CONTEXT_OPTION = "dataset_check_per_context"
# A sender that encodes wrongly does so from the first object on, so the check samples each
# sender's kind of object: the key is the AE titles, the direction, the abstract and the transfer
# syntax, not the association.  A day at a PACS port has the same modality send the same kind of
# object in ten thousand associations; keyed by association, each of them was parsed (with its
# display tree), half of --expert's time on a day of short associations.
DATASET_PER_CONTEXT_DEFAULT = 16
# Bytes do not bound the cost of many small data sets (a C-FIND identifier of 300 bytes costs
# ~1 ms to parse with its tree, as much as 30 KB of pixel data): their count does.
DATASET_COUNT_OPTION = "dataset_check_max_count"
DATASET_COUNT_DEFAULT = 500
_budget_used: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_checked_per_context: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_mismatch_reported: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
EXPLICIT_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)


def encoding_mismatch(head: bytes, transfer_syntax: str) -> str:
    """How the first element header contradicts the negotiated syntax: '' when it fits or cannot tell.

    pydicom silently switches VR mode when they disagree, so a full parse does not
    reveal a sender that encodes in another syntax than it negotiated; the first
    element header does, in constant time.
    """
    syntax = UID(transfer_syntax)
    if len(head) < 8 or not syntax.is_transfer_syntax or syntax.is_deflated:
        return ""
    little = syntax.is_little_endian
    group_le, element_le = struct.unpack_from("<HH", head)
    group_be, element_be = struct.unpack_from(">HH", head)
    if little and group_le > 0x00FF >= group_be:
        return "big endian"
    if not little and group_be > 0x00FF >= group_le:
        return "little endian"
    tag = (group_le << 16 | element_le) if little else (group_be << 16 | element_be)
    vr = bytes(head[4:6]).decode("latin-1")
    try:
        expected = dictionary_VR(tag)
    except KeyError:
        return ""
    if syntax.is_implicit_VR and vr in EXPLICIT_VRS and vr in expected.split(" or "):
        return "explicit VR"
    if not syntax.is_implicit_VR and vr not in EXPLICIT_VRS:
        return "implicit VR"
    return ""


@hookimpl
def dicomtui_register_rule_options(register):
    register(DATASET_CHECK_OPTION, DATASET_CHECK_DEFAULT,
             "parse data sets up to this many bytes in their negotiated transfer syntax (0: never)")
    register(DATASET_BUDGET_OPTION, DATASET_BUDGET_DEFAULT,
             "stop parsing data sets for the expert check after this many bytes in total")
    register(DATASET_COUNT_OPTION, DATASET_COUNT_DEFAULT,
             "stop parsing data sets for the expert check after this many in total")
    register(DATASET_PER_CONTEXT_OPTION, DATASET_PER_CONTEXT_DEFAULT,
             "parse at most this many data sets of one kind (AE titles, direction, SOP class, transfer syntax) "
             "for the expert check")


@hookimpl
def dicomtui_check_message(message, analysis, report):
    """Parse data sets up to a size bound (the cost of one pydicom pass) and report those that fail.

    Worst case: the budget option bounds the total bytes parsed per capture, and the
    per-context option the number of data sets per presentation context.
    """
    if not message.has_dataset or not message.complete or message.dataset_length <= 0:
        return
    if not message.syntax_guessed and message.transfer_syntax and _check_encoding(message, analysis, report):
        return
    limit = option(analysis, DATASET_CHECK_OPTION, DATASET_CHECK_DEFAULT)
    if message.dataset_length > limit:
        return
    used = _budget_used.get(analysis, 0)
    if used + message.dataset_length > option(analysis, DATASET_BUDGET_OPTION, DATASET_BUDGET_DEFAULT):
        return
    # Bytes alone do not bound the cost: ten thousand 1 KB identifiers cost as much as their count.
    counts = _checked_per_context.setdefault(analysis, {})
    association = analysis.associations[message.association]
    context = association.contexts.get(message.context_id)
    key = (association.calling_ae, association.called_ae, message.direction,
           context.abstract_syntax if context is not None else message.context_id, message.transfer_syntax)
    if counts.get(key, 0) >= option(analysis, DATASET_PER_CONTEXT_OPTION, DATASET_PER_CONTEXT_DEFAULT):
        return
    checked = counts.get(None, 0)
    if checked >= option(analysis, DATASET_COUNT_OPTION, DATASET_COUNT_DEFAULT):
        return
    counts[None] = checked + 1
    counts[key] = counts.get(key, 0) + 1
    _budget_used[analysis] = used + message.dataset_length
    decoded = analysis.decode_dataset(message, max_bytes=limit)
    if decoded is None:
        return
    if any("inflates beyond" in problem for problem in decoded.problems):
        # Larger than the check's bound once inflated: not checked, as a larger plain one is not.
        return
    if decoded.warnings:
        # pydicom's complaints about values (already escaped by the decoder), one item per data set.
        report.add(Severity.NOTE, Group.MALFORMED,
                   f"{message.command_name} data set has {len(decoded.warnings)} value(s) pydicom reports as "
                   f"invalid: {'; '.join(decoded.warnings[:3])}",
                   message.last_frame or message.first_frame, message.association, message.last_pdu, message.index,
                   code="protocol.dataset_value_warnings")
    problems = [problem for problem in decoded.problems if not problem.endswith(_DISPLAY_LIMITS)]
    if not problems:
        return
    association = analysis.associations[message.association]
    context = association.contexts.get(message.context_id)
    syntax = uid_with_name(message.transfer_syntax) if message.transfer_syntax else "an unknown transfer syntax"
    if message.syntax_guessed or decoded.guessed:
        how, severity = f"the guessed transfer syntax {syntax}", Severity.WARNING
        advice = "the guess may be wrong: capture the association's start to see the negotiated syntax"
    else:
        how, severity = f"{syntax}, negotiated on presentation context {message.context_id}", Severity.ERROR
        advice = ("the sender encodes it in a different transfer syntax than negotiated, or the object is "
                  "damaged: export it (dicomtui --export) and check it with a DICOM validator; if the object "
                  "itself is broken, contact the sending device's vendor")
    what = f" ({uid_label(context.abstract_syntax)})" if context is not None and context.abstract_syntax else ""
    report.add(severity, Group.MALFORMED,
               f"{message.command_name} data set{what} of {message.dataset_length} bytes does not parse in {how}: "
               f"{'; '.join(problems[:3])} — {advice}",
               message.last_frame or message.first_frame, message.association, message.last_pdu, message.index,
               code="protocol.dataset_unparsable")


def _check_encoding(message, analysis, report) -> bool:
    """Report (once per presentation context) data encoded in another syntax than negotiated."""
    first = message.dataset_fragments[0] if message.dataset_fragments else None
    if first is None:
        return False
    head = analysis.read_stream(message.connection, message.direction, first.stream_offset,
                                first.stream_offset + min(first.length, 8))
    found = encoding_mismatch(bytes(head or b""), message.transfer_syntax)
    if not found:
        return False
    reported = _mismatch_reported.setdefault(analysis, set())
    key = (message.association, message.context_id)
    if key not in reported:
        reported.add(key)
        association = analysis.associations[message.association]
        report.add(Severity.ERROR, Group.MALFORMED,
                   f"{message.command_name} data set is encoded in {found}, but presentation context "
                   f"{message.context_id} negotiated {uid_with_name(message.transfer_syntax)} — "
                   f"{side(association, message.direction)} sends data in another transfer syntax than the "
                   "one accepted: a receiver that trusts the negotiation misreads it; check the sender's "
                   "transfer syntax configuration (it must re-encode to the accepted syntax)",
                   message.last_frame or message.first_frame, message.association, message.last_pdu,
                   message.index, code="protocol.dataset_encoding_mismatch")
    return True
