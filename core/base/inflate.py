"""Bounded inflation of deflated data (the Deflated Explicit VR Little Endian transfer syntax).

One function for every consumer (the data set decoder, the expert rules through
it, the exporters), so a deflate bomb costs at most ``limit`` bytes of memory
and the time to produce them, wherever it is opened.  zlib stops producing
output at ``max_length``; the rest of the input is never inflated.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple


class Inflated(NamedTuple):
    data: bytes  # at most ``limit`` bytes
    complete: bool  # False: the data inflates past the limit (or is damaged) and was cut
    problem: str  # why it is incomplete, in words for an expert item or an export summary


def inflate_bounded(data, limit: int) -> Inflated:
    """Raw-deflate (RFC 1951, no zlib header, as PS3.5 A.5 prescribes) ``data``, keeping at most ``limit`` bytes."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(bytes(data), limit)
    except zlib.error as exc:
        return Inflated(b"", False, f"deflated data set does not inflate: {exc}")
    if inflater.unconsumed_tail:
        return Inflated(inflated, False, f"deflated data set inflates beyond the {limit}-byte limit "
                                         f"(max_inflated_bytes); decoded the first {limit} bytes")
    if not inflater.eof:
        return Inflated(inflated, False, f"deflated data set ends before its deflate stream does "
                                         f"({len(inflated)} bytes inflated)")
    return Inflated(inflated, True, "")
