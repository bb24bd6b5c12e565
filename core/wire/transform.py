"""Stream transforms: the bytes inside a TCP stream's bytes (TLS records -> plaintext, ...).

DICOM may travel inside another layer on the same TCP connection: TLS (PS3.15 Annex B, port 2762),
or a site's own encapsulation.  A transform sits between TCP reassembly and detection: the engine
keeps the connection's wire bytes in their own chunk maps (``Connection.wire_streams``, the
frames they came in), feeds each direction's in-order wire bytes to the transform, and treats
what comes out as the connection's stream: detection, the connection decoder, and every read of
``Connection.streams`` (views, exporters, rules) see the inner bytes.  Those are not in the
capture file, so their chunk map has its own ``store`` of pieces (``ChunkMap.store``), and a
piece carries the frame and time of the wire segment that completed it.

A plugin offers transforms with ``dicomtui_register_stream_transforms``: ``register(name,
factory)``, where ``factory(first_bytes, ports)`` looks at the first bytes of each TCP direction
(up to ``DETECTION_BYTES`` each; direction 0 is the sender of the connection's first segment)
and the destination port of each direction, and returns a ``StreamTransform`` for this
connection, or None when the bytes are not its kind (it is asked again as more bytes arrive,
until detection has decided).  The transform is sans-IO, like the decoders: bytes in, bytes out,
no files, no terminal, no analysis.
"""

from __future__ import annotations

from typing import Callable, Protocol


class StreamTransform(Protocol):
    """One connection's inner streams, from its wire bytes.  Directions are TCP directions
    (0: the sender of the connection's first segment), as ``first_bytes`` gave them."""

    name: str  # what the connection carries, for views: "TLS 1.3 (AES-128-GCM)", ...

    def feed(self, direction: int, data: memoryview) -> bytes:
        """The next in-order wire bytes of a direction; the inner bytes they complete (may be b"")."""
        ...

    def gap(self, direction: int, length: int) -> int | None:
        """``length`` wire bytes of a direction were not captured: how many inner bytes that loses
        (0: none, e.g. inside a record that is dropped whole), or None when the transform cannot
        go on in this direction (it then returns nothing more from ``feed``)."""
        ...


# Optional: ``take_gap(direction) -> int``, asked after each ``feed``: inner bytes lost before
# what that ``feed`` returned, when the transform could only tell later how much a capture gap
# took (a TLS layer resynchronising on the records after a gap: ``gap`` returned 0 then).
#
# Optional: ``snapshot()`` returns a picklable copy of what views and rules read from the
# transform (``Connection.transform_state``, ``Analysis.transformed``), without keys or cipher
# objects; batch mode keeps that across its worker processes (none: they see None).

TransformFactory = Callable[[tuple[bytes, bytes], tuple[int, int]], "StreamTransform | None"]
