"""Frames the packet walk could not take apart, counted by what they are and named in one warning.

A frame is skipped when its link type is not one the walk reads (``SUPPORTED_LINK_TYPES``: a
pcapng interface of 802.11 radio frames, a USB capture, a vendor's ``LINKTYPE_USER0``) or when it
sits in an encapsulation the walk cannot take off (PPPoE, MACsec, an unknown GRE payload, see
``packet.UNDECODED_ETHERTYPES``).  Either way any DICOM inside is not analysed, so the capture's
reader must hear it: one warning with, per kind, how many frames and the first of them.  The single
pass counts as it goes (``UndecodedFrames``); batch mode counts per input file while indexing and
puts the counts together (batch/merge.py); both word the warning with ``undecoded_warning``.
"""

from __future__ import annotations

import functools

from dicomtui.core.wire.packet import SUPPORTED_LINK_TYPES, locate_fragment_at

MAX_KINDS_LISTED = 20


@functools.cache
def link_type_names() -> dict[int, str]:
    """Names as tcpdump's list (https://www.tcpdump.org/linktypes.html) gives them: dpkt's DLT_ table,
    whose values are the LINKTYPE_ ones except DLT_RAW and DLT_LOOP (platform-dependent there; the walk
    reads every value of both, so they are never named here).  Read on first use: dpkt stays out of
    the start-up of modes that meet no such frame (tests/test_startup.py)."""
    import dpkt.pcap

    return {value: "LINKTYPE_" + name[4:] for name, value in sorted(vars(dpkt.pcap).items(), reverse=True)
            if name.startswith("DLT_") and isinstance(value, int) and name not in ("DLT_RAW", "DLT_LOOP")}


@functools.cache
def link_type_name(link_type: int) -> str:
    """What the warning calls frames of an unsupported link type: its number and, where known, its name."""
    name = link_type_names().get(link_type)
    return f"link type {link_type}" + (f" ({name})" if name else "")


def undecoded_kind(buffer, offset: int, caplen: int, link_type: int) -> str | None:
    """The kind of a frame ``packet.parse_tcp_at`` found no TCP segment in, when it is one to count (as the
    engine counts it: an unsupported link type, an encapsulation not taken off); else None (ARP, UDP,
    an IP fragment...).  For batch mode's index, which sees every frame before any engine does."""
    if link_type not in SUPPORTED_LINK_TYPES:
        return link_type_name(link_type)
    found = locate_fragment_at(buffer, offset, caplen, link_type)
    return found if isinstance(found, str) else None


class UndecodedFrames:
    """Per kind (a link type's or an encapsulation's name): (first frame, frames)."""

    __slots__ = ("kinds",)

    def __init__(self) -> None:
        self.kinds: dict[str, tuple[int, int]] = {}

    def add(self, name: str, frame: int, count: int = 1) -> None:
        counted = self.kinds.get(name)
        self.kinds[name] = (frame, count) if counted is None else (min(counted[0], frame), counted[1] + count)

    def __bool__(self) -> bool:
        return bool(self.kinds)


def undecoded_warning(kinds: dict[str, tuple[int, int]]) -> tuple[int, str]:
    """(first frame, text) of the one warning for ``kinds`` (name -> (first frame, frames); not empty)."""
    total = sum(count for _first, count in kinds.values())
    listed = sorted(kinds.items(), key=lambda item: (-item[1][1], item[0]))
    parts = [f"{name}: {count} (first frame {first})" for name, (first, count) in listed[:MAX_KINDS_LISTED]]
    if len(listed) > MAX_KINDS_LISTED:
        parts.append(f"{len(listed) - MAX_KINDS_LISTED} more kinds")
    first = min(first for first, _count in kinds.values())
    return first, (f"{total} frame(s) skipped: their link type or encapsulation is not one dicomtui takes off, so "
                   f"any DICOM in them is not analysed — " + "; ".join(parts))
