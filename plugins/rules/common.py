"""Helpers shared by the built-in expert rules (not a plugin: it implements no hook).

Rules run once per association / message; the lookups here index the
capture's PDUs by association once per analysis, so a rule that needs "the
A-ABORT of this association" costs O(1) instead of a scan of every PDU.
"""

from __future__ import annotations

import weakref
from array import array
from typing import TYPE_CHECKING

from dicomtui.core.model import Association, Pdu

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.model.analysis import Analysis

# Per-analysis lookup tables built from the PDU table's columns (no Pdu objects kept).
_PDUS_BY_ASSOCIATION: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_INDICES_BY_ASSOCIATION: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

# The generic first steps for "cannot get past the association" (Wireshark DICOM wiki).
ASSOCIATION_ADVICE = ("check AE titles, host names or IP addresses and the ports configured for those AE titles "
                      "on both sides; some SCPs license connections per AE title, and an SCP that knows its "
                      "peers by host name may do a reverse name lookup of the requestor's IP address; "
                      "a C-ECHO (application-level ping) tests the same configuration")


def _rows_since(cache: "weakref.WeakKeyDictionary", analysis: "Analysis", empty) -> tuple[object, int]:
    """(the per-analysis table, first row not yet in it), resetting it when existing rows changed.

    A live capture's PDU table grows between rule calls; indexing only the new rows keeps each
    call O(new rows) instead of O(all rows).
    """
    pdus = analysis.pdus
    cached = cache.get(analysis)
    if cached is None or cached[0] != (pdus.generation, pdus.base) or cached[1] > len(pdus):
        cached = [(pdus.generation, pdus.base), pdus.base, empty()]
        cache[analysis] = cached
    start = cached[1]
    cached[1] = len(pdus)
    return cached[2], start


def _first_of_type(analysis: "Analysis") -> dict[tuple[int, int], int]:
    """(association, PDU type) -> index of its first PDU; built from the columns, extended as rows arrive."""
    first, start = _rows_since(_PDUS_BY_ASSOCIATION, analysis, dict)
    pdus = analysis.pdus
    if start < len(pdus):
        for index, key in enumerate(zip(pdus.column("association", start), pdus.column("pdu_type", start)), start):
            first.setdefault(key, index)
    return first


def association_pdu_indices(analysis: "Analysis", association: int) -> array:
    """Indices of one association's PDUs in capture order (from the columns, extended as rows arrive)."""
    table, start = _rows_since(_INDICES_BY_ASSOCIATION, analysis, dict)
    pdus = analysis.pdus
    if start < len(pdus):
        for index, owner in enumerate(pdus.column("association", start), start):
            indices = table.get(owner)
            if indices is None:
                indices = table[owner] = array("I")
            indices.append(index)
    return table.get(association, array("I"))


def pdu_at(analysis: "Analysis", index: int | None) -> Pdu | None:
    if index is None or not analysis.pdus.base <= index < len(analysis.pdus):
        return None
    return analysis.pdus[index]


def first_pdu_of_type(analysis: "Analysis", association: int, pdu_type: int) -> Pdu | None:
    index = _first_of_type(analysis).get((association, pdu_type))
    return pdu_at(analysis, index)


def decode_or_none(analysis: "Analysis", pdu: Pdu | None):
    """The decoded PDU body, or None when it is missing or malformed (the decoder reported that)."""
    if pdu is None:
        return None
    try:
        return analysis.decode_pdu(pdu)
    except Exception:
        return None


def peers(association: Association) -> str:
    """``CALLING → CALLED`` with placeholders for titles the capture did not show."""
    return f"{association.calling_ae or '?'} → {association.called_ae or '?'}"


def side(association: Association, direction: int) -> str:
    """Who sent in ``direction``: 0 is the association requestor, 1 the acceptor."""
    if direction == 0:
        return f"the requestor {association.calling_ae}".rstrip() if association.calling_ae else "the requestor"
    return f"the acceptor {association.called_ae}".rstrip() if association.called_ae else "the acceptor"


def quoted(value: str, limit: int = 64) -> str:
    """A value for a message: quoted so leading/trailing spaces show, cut when long."""
    text = value if len(value) <= limit else value[: limit - 1] + "…"
    return "'" + text.replace("\n", "\\n").replace("\r", "\\r") + "'"


def option(analysis: "Analysis", name: str, default):
    """A rule option (``-o name:value``); a value that does not convert falls back to the default."""
    try:
        return analysis.config.option(name, default)
    except (TypeError, ValueError):
        return default


def uncaptured_after(analysis: "Analysis", message, direction: int) -> int:
    """Bytes of ``direction``'s stream (model direction) of the message's connection that the capture
    lost (TCP gaps: loss, a snapshot length) from the message's first frame on: an answer may lie
    there, so a rule must not say it was never sent."""
    streams = analysis.connections[message.connection].streams
    if not 0 <= direction < len(streams):
        return 0
    first = message.first_frame
    return sum(gap.length for gap in streams[direction].gaps if gap.frame >= first)
