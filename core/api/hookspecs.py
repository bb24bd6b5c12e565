"""Hook specifications: the reference for plugin authors.

Every seam of dicomtui is one of these hooks.  The built-in decoders, the tag
dictionary, the expert rules and the exporters are plugins registered through
exactly these hooks, as any other plugin is; a third-party package registers
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
    from dicomtui.core.api.protocols import ConnectionDecoder, DecoderContext, Exporter, Report, TagDictionary
    from dicomtui.core.model import Association, Connection, Message
    from dicomtui.core.model.analysis import Analysis, AnalysisConfig


# -- decoding ------------------------------------------------------------------------------


@hookspec
def dicomtui_register_pdu_decoders(register: Callable[[int, Callable[[bytes], Any]], None]) -> None:
    """Register decoders for PDU bodies.

    Call ``register(pdu_type, decode)`` where ``decode(body: bytes)`` is a pure
    function returning a decoded PDU object (the built-in ones are in
    ``dicomtui.core.protocol.pdu``; A-ASSOCIATE, -RJ and A-ABORT objects must offer
    the attributes of its ``AssociateBody``, ``RejectBody`` and ``AbortBody``) and
    raises ``dicomtui.core.base.errors.DecodeError`` for malformed input.  A later
    registration for the same type replaces an earlier one.
    """


@hookspec
def dicomtui_register_stream_transforms(register: Callable[[str, Callable], None], config: "AnalysisConfig",
                                        capture_secrets: list) -> None:
    """Register stream transforms: layers DICOM travels inside on a TCP connection (TLS, ...).

    Call ``register(name, factory)``; ``factory(first_bytes, ports)`` gets the first bytes of
    each TCP direction and each direction's destination port, and returns a
    ``dicomtui.core.wire.transform.StreamTransform`` when the connection carries its layer
    (None otherwise: it is asked again as more bytes arrive, until detection decides).  The
    engine then keeps the wire bytes apart (``Connection.wire_streams``) and detects and
    decodes what the transform returns.  See core/wire/transform.py.  ``config`` carries the
    ``-o`` options (e.g. where the layer's keys are), ``capture_secrets`` the decryption secrets
    the capture files carry (``(secrets type, data)`` of pcapng Decryption Secrets Blocks, e.g.
    0x544c534b: a TLS key log); an implementation may leave either out.
    Every connection a transform took is listed in ``Analysis.transformed``, with its wire bytes,
    whether or not DICOM came out of it (a rule can then diagnose the layer itself).
    """


@hookspec(firstresult=True)
def dicomtui_make_connection_decoder(connection: "Connection", config: "AnalysisConfig", pdu_decoders: dict,
                                     host: "DecoderContext") -> "ConnectionDecoder | None":
    """Return the sans-IO decoder for one DICOM TCP connection (*first result*).

    The object must offer ``receive_data(direction, stream_offset, data)``,
    ``receive_gap(direction, gap)`` and ``finish()``, each returning the events the
    call caused, in order (a list of ``dicomtui.core.protocol.events`` objects:
    ``PduFramed``, ``AssociationOpened``, ``AssociationChanged``, ``MessageStarted``,
    ``MessageComplete``, ``Finding`` with a code and parameters); the pipeline
    applies them to the model before the next call.  ``host``
    (``dicomtui.core.api.protocols.DecoderContext``) only answers questions: which
    frames carried a stream range, what a status means; and its ``numbering`` gives
    the index of each PDU, association and message the decoder makes.  A decoder may
    instead ``append`` each event to ``host.outbox`` as it happens (applied at once: a
    call that frames many PDUs then keeps none of them alive).  The built-in one is
    ``dicomtui.core.protocol.decoder.ConnectionDecoder``.

    Optionally, ``skippable(direction) -> int`` and ``skip(direction, length)``:
    how many next bytes hold nothing the decoder needs to see (the inside of a
    data set fragment), and taking them unseen.  The engine then hands over a
    run of such segments with one ``skip`` instead of a ``receive_data`` each
    (``skip`` returns nothing: bytes without a boundary cause no event); a decoder
    without them gets every segment.
    """


@hookspec
def dicomtui_complete_model(analysis: "Analysis") -> None:
    """Complete the model with what needs the whole capture, before the expert rules.

    Called once when every connection is decoded and numbered (the pipeline's
    "complete the model" phase).  The built-in ones guess transfer syntaxes for
    associations the capture did not show and link C-MOVE sub-associations to
    their C-MOVE.  Each
    implementation runs isolated: one that raises loses nothing of the others or
    of the rules.
    """


@hookspec(warn_on_impl=DeprecationWarning(
    "dicomtui_finish_analysis is deprecated since 0.1.0: implement dicomtui_complete_model "
    "(same arguments, same phase; see docs/plugins.md)"))
def dicomtui_finish_analysis(analysis: "Analysis") -> None:
    """Deprecated: the older name of ``dicomtui_complete_model``, called right after it (same phase).

    Still called, so plugins written against it keep working; registering a plugin
    that implements it raises a ``DeprecationWarning`` (pluggy's ``warn_on_impl``,
    pointing at the implementation).  Implement ``dicomtui_complete_model`` instead.
    """


@hookspec(firstresult=True)
def dicomtui_status_meaning(command_field: int, status: int, sop_class: str) -> tuple[str, str] | None:
    """Return ``(category, meaning)`` for a DIMSE status (*first result*).

    ``category`` is one of success, pending, cancel, warning, failure.
    """


@hookspec
def dicomtui_register_dictionaries(register: Callable[["TagDictionary"], None], config: "AnalysisConfig") -> None:
    """Register tag dictionaries: objects with ``lookup(tag, private_creator) -> TagInfo | None``.

    Called when an Analysis is created; its ``dictionary`` combines them.
    Dictionaries registered later are consulted first, so a site's private
    dictionary can name tags the standard one does not know.  ``config`` holds
    the ``-o`` options (the built-in plugin reads ``private_dictionary``).
    """


@hookspec(firstresult=True)
def dicomtui_decode_dataset(data: bytes, transfer_syntax: str, limits: Any, dictionary: "TagDictionary") -> Any:
    """Decode data-set bytes in a transfer syntax into a ``DecodedDataset`` (*first result*).

    ``transfer_syntax`` is "" when unknown (guess it); ``dictionary`` is the
    Analysis' tag dictionary.  Parse with ``dicomtui.core.protocol.datasets``
    so every consumer agrees on inflation limits and character sets.
    """


# -- expert rules --------------------------------------------------------------------------


@hookspec
def dicomtui_check_association(association: "Association", analysis: "Analysis", report: "Report") -> None:
    """Inspect one association after the capture is decoded; call ``report.add(...)`` per finding."""


@hookspec
def dicomtui_check_message(message: "Message", analysis: "Analysis", report: "Report") -> None:
    """Inspect one DIMSE message (request or response) after the capture is decoded."""


@hookspec
def dicomtui_check_analysis(analysis: "Analysis", report: "Report") -> None:
    """Inspect the whole decoded capture once (for rules that span associations)."""


@hookspec
def dicomtui_check_provisional(analysis: "Analysis", report: "Report") -> None:
    """During a live capture: report what stands *now* about the capture so far, to be replaced.

    Called now and then while a live capture runs (at most about once a second); what it reports
    is shown as provisional and thrown away at the next call.  When the capture stops,
    ``dicomtui_check_analysis`` settles it.  For findings that only the end can decide, e.g. a
    storage commitment not reported yet.
    """


@hookspec
def dicomtui_validate_messages(analysis: "Analysis", messages: list[int], report: "Report") -> None:
    """Check the data sets of ``messages`` (indexes into ``analysis.messages``) against their IODs now.

    Called on demand (the TUI's key for the object under the cursor), after the capture is
    analysed: store each result in ``analysis.validation`` (``dicomtui.core.model.validation``)
    and report findings with ``report.add`` as a rule does.  The built-in ``rules.data`` plugin runs
    dicom3tools' ``dciodvfy`` (docs/validate.md); ``--validate`` runs it on every data set in the
    rule phase.
    """


@hookspec
def dicomtui_register_rule_options(register: Callable[[str, Any, str], None]) -> None:
    """Declare options a rule reads: ``register(name, default, help)``.

    Users set them with ``-o name:value``; rules read ``analysis.config.option(name)``.
    """


# -- exporters -----------------------------------------------------------------------------


@hookspec
def dicomtui_register_exporters(register: Callable[["Exporter"], None]) -> None:
    """Register exporters: objects with ``name``, ``description`` and
    ``export(analysis, outdir, options, progress) -> ExportResult`` (``protocols.Exporter``),
    and optionally ``capabilities`` (``dicomtui.core.api.export.WRITES_OBJECTS`` for one file
    per data set, ``WRITES_CAPTURE`` for a capture of the selected frames).
    """
