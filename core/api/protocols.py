"""Typed protocols: what plugins receive from dicomtui and what they must return.

The hook specifications (``hookspecs``) name these in their signatures; a
plugin written against them is checked by a type checker, and the built-in
plugins are ordinary implementations of them (``tests/test_plugin_host.py``
checks the built-ins satisfy them at runtime).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from dicomtui.core.api.export import ExportOptions, ExportResult
from dicomtui.core.model import Connection
from dicomtui.core.model.analysis import Analysis
from dicomtui.core.model.dictionary import TagInfo
from dicomtui.core.protocol.events import Numbering
from dicomtui.core.protocol.findings import Group, Severity
from dicomtui.core.wire.tcp import Gap

# -- what plugins receive ---------------------------------------------------------------------


@runtime_checkable
class DecoderContext(Protocol):
    """What a connection decoder may ask (``pipeline.engine.DecoderContext``, handed in as ``host``).

    Read-only: it changes nothing in the analysis.  ``numbering`` is the analysis' id
    space: a decoder gives each PDU, association and message it makes the next number
    of its kind (and increments it), since the model refers to them by those indices
    (``protocol.events``).
    """

    numbering: Numbering
    # Optional: a decoder may ``append`` each event here as it happens instead of returning
    # it (it is applied at once; the built-in plugin's decoder does, see ``ConnectionDecoder``).
    outbox: Any

    def frames(self, direction: int, start: int, end: int) -> tuple[int, int, float, float]: ...

    def status_meaning(self, command_field: int, status: int, sop_class: str) -> tuple[str, str]: ...


class Report(Protocol):
    """What rule hooks get as ``report`` (``pipeline.rules.ExpertReport``)."""

    def add(self, severity: Severity | str, group: Group | str, message: str, frame: int = 0,
            association: int | None = None, pdu: int | None = None, message_index: int | None = None,
            code: str = "") -> None: ...


# -- what plugins return ------------------------------------------------------------------------


@runtime_checkable
class ConnectionDecoder(Protocol):
    """``dicomtui_make_connection_decoder`` returns one per DICOM connection (model directions).

    Each call returns the events it caused (``dicomtui.core.protocol.events``: ``PduFramed``,
    ``AssociationOpened``, ``AssociationChanged``, ``MessageStarted``, ``MessageComplete``,
    ``Finding``), in order; the pipeline applies them to the model before the next call.
    """

    def receive_data(self, direction: int, stream_offset: int, data: Any) -> Sequence[Any]: ...

    def receive_gap(self, direction: int, gap: Gap) -> Sequence[Any]: ...

    def finish(self) -> Sequence[Any]: ...


@runtime_checkable
class TagDictionary(Protocol):
    """What ``dicomtui_register_dictionaries`` registers."""

    def lookup(self, tag: int, private_creator: str | None = None) -> TagInfo | None: ...


@runtime_checkable
class Exporter(Protocol):
    """What ``dicomtui_register_exporters`` registers.

    Optionally ``capabilities``: a set of ``dicomtui.core.api.export.WRITES_OBJECTS`` /
    ``WRITES_CAPTURE``, what the exporter writes; the UI and the live export choose
    exporters by these, never by name.
    """

    name: str
    description: str

    def export(self, analysis: Analysis, outdir: str, options: ExportOptions,
               progress: Callable[[int, int], None] | None = None) -> ExportResult: ...


PduBodyDecoder = Callable[[bytes], Any]  # registered per PDU type; raises DecodeError when malformed
ConnectionFactory = Callable[[Connection, Any, dict, DecoderContext], ConnectionDecoder]
