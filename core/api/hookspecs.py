"""Hook specifications: the reference for plugin authors.

Every seam of dicomtui is one of these hooks.  The built-in decoders, the tag
dictionary, the expert rules and the exporters are plugins registered through
exactly these hooks (see ``dicomtui/plugins/``); a third-party package registers
its own through the ``dicomtui`` entry-point group::

    [project.entry-points.dicomtui]
    my_rules = "my_package.rules"

and implements hooks with ``from dicomtui import hookimpl``.  All hook names
start with ``dicomtui_``.  Hooks that return a value and say *first result*
stop at the first plugin that returns something other than None (plugins
registered later are asked first, so an installed plugin can override a
built-in one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from dicomtui import hookspec

if TYPE_CHECKING:  # pragma: no cover - names for the signatures only
    from dicomtui.core.model import Association, Message
    from dicomtui.core.model.analysis import Analysis
    from dicomtui.core.pipeline.rules import ExpertReport


# -- decoding ------------------------------------------------------------------------------


@hookspec
def dicomtui_register_pdu_decoders(register: Callable[[int, Callable[[bytes], Any]], None]) -> None:
    """Register decoders for PDU bodies.

    Call ``register(pdu_type, decode)`` where ``decode(body: bytes)`` is a pure
    function returning a decoded PDU object (see ``dicomtui.plugins.pdu``) and
    raises ``dicomtui.core.base.errors.DecodeError`` for malformed input.  A later
    registration for the same type replaces an earlier one.
    """


@hookspec(firstresult=True)
def dicomtui_make_connection_decoder(connection: Any, config: Any, pdu_decoders: dict, host: Any) -> Any:
    """Return the sans-IO decoder for one DICOM TCP connection (*first result*).

    The object must offer ``receive_data(direction, stream_offset, data)``,
    ``receive_gap(direction, gap)`` and ``finish()``; it reports what it finds
    through ``host`` (``dicomtui.core.pipeline.engine.DecoderHost``).  The built-in one
    is ``dicomtui.plugins.connection``.
    """


@hookspec
def dicomtui_finish_analysis(analysis: "Analysis") -> None:
    """Called once when every connection is decoded, before the expert rules.

    Plugins may complete the model here with what spans connections (the
    built-in one links C-MOVE sub-associations to their C-MOVE and guesses
    transfer syntaxes for associations the capture did not show).
    """


@hookspec(firstresult=True)
def dicomtui_status_meaning(command_field: int, status: int, sop_class: str) -> tuple[str, str] | None:
    """Return ``(category, meaning)`` for a DIMSE status (*first result*).

    ``category`` is one of success, pending, cancel, warning, failure.
    """


@hookspec
def dicomtui_register_dictionaries(register: Callable[[Any], None]) -> None:
    """Register tag dictionaries: objects with ``lookup(tag, private_creator) -> TagInfo | None``.

    Dictionaries registered later are consulted first, so a site's private
    dictionary can name tags the standard one does not know.
    """


@hookspec(firstresult=True)
def dicomtui_decode_dataset(data: bytes, transfer_syntax: str, limits: Any) -> Any:
    """Decode data-set bytes in a transfer syntax into a ``DecodedDataset`` (*first result*)."""


# -- expert rules --------------------------------------------------------------------------


@hookspec
def dicomtui_check_association(association: "Association", analysis: "Analysis", report: "ExpertReport") -> None:
    """Inspect one association after the capture is decoded; call ``report.add(...)`` per finding."""


@hookspec
def dicomtui_check_message(message: "Message", analysis: "Analysis", report: "ExpertReport") -> None:
    """Inspect one DIMSE message (request or response) after the capture is decoded."""


@hookspec
def dicomtui_check_analysis(analysis: "Analysis", report: "ExpertReport") -> None:
    """Inspect the whole decoded capture once (for rules that span associations)."""


@hookspec
def dicomtui_register_rule_options(register: Callable[[str, Any, str], None]) -> None:
    """Declare options a rule reads: ``register(name, default, help)``.

    Users set them with ``-o name:value``; rules read ``analysis.config.option(name)``.
    """


# -- exporters -----------------------------------------------------------------------------


@hookspec
def dicomtui_register_exporters(register: Callable[[Any], None]) -> None:
    """Register exporters: objects with ``name``, ``description`` and
    ``export(analysis, outdir, options, progress) -> ExportResult``.
    """
