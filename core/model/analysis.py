"""The analysis: everything decoded from one capture, and the read API over it.

The pipeline (``dicomtui.core.pipeline``) fills it in one pass over the
capture; it keeps an index (chunk maps, PDUs, messages), never the payload,
and reads bytes back from the capture on demand.
"""

from __future__ import annotations

import mmap
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol, Self

from dicomtui.core.base.limits import Limits
from dicomtui.core.model import (
    Association,
    Connection,
    ConnectionAttempt,
    ExpertItem,
    Message,
    Pdu,
    TransformedConnection,
)
from dicomtui.core.model.dictionary import TagDictionary
from dicomtui.core.model.message_index import MessageIndex
from dicomtui.core.model.pdu_table import PduTable
from dicomtui.core.model.relations import Relations
from dicomtui.core.model.validation import ValidationResults
from dicomtui.core.protocol.dimse import decode_command_set
from dicomtui.core.protocol.detect import DEFAULT_PORTS, parse_port_list
from dicomtui.core.wire.capture import CaptureNote, CaptureSource
from dicomtui.core.wire.capture_format import leading_decryption_secrets


class HookCall(Protocol):
    """One hook, called with the host's isolation (``dicomtui.core.api.host.HookCall``)."""

    def __call__(self, **kwargs: Any) -> Any: ...

    def first(self, **kwargs: Any) -> Any: ...

    def registrations(self, **kwargs: Any) -> list[tuple[str, tuple]]: ...


class PipelineHooks(Protocol):
    """The hooks the pipeline and the model call, as attributes (``host.hook.NAME``).

    Attribute access, not names as strings: a misspelt hook is an error for a type
    checker and an AttributeError at the call, never a call to nothing.
    """

    dicomtui_register_pdu_decoders: HookCall
    dicomtui_register_stream_transforms: HookCall
    dicomtui_make_connection_decoder: HookCall
    dicomtui_register_dictionaries: HookCall
    dicomtui_decode_dataset: HookCall
    dicomtui_status_meaning: HookCall
    dicomtui_complete_model: HookCall
    dicomtui_finish_analysis: HookCall
    dicomtui_check_association: HookCall
    dicomtui_check_message: HookCall
    dicomtui_check_analysis: HookCall
    dicomtui_check_provisional: HookCall
    dicomtui_validate_messages: HookCall


class PluginCaller(Protocol):
    """What the pipeline needs of the plugin host (``dicomtui.core.api.host.PluginHost``).

    The pipeline calls hooks through ``hook`` and never imports the plugin API,
    which sits above it: the host is handed in by the composition root (the CLI).
    """

    failures: list
    current_plugin: str  # whose hook implementation is running
    hook: PipelineHooks


@dataclass(slots=True)
class AnalysisConfig:
    ports: frozenset[int] = field(default_factory=lambda: parse_port_list(DEFAULT_PORTS))
    heuristic: bool = True
    limits: Limits = field(default_factory=Limits)
    options: dict[str, str] = field(default_factory=dict)  # -o name:value, read by rules and exporters
    # The engine's in-order fast path; False sends every frame and segment through the reference
    # path (tests check both give the same analysis).
    fast_path: bool = True
    # Captures of at least this many bytes take the engine's bulk path (blocks of frames read
    # with numpy, core/pipeline/bulk.py); smaller ones are not worth numpy's import.
    bulk_min_bytes: int = 32 << 20

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        if value is None:
            return default
        if isinstance(default, bool):
            return value.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return value


class Analysis:
    """Everything decoded from one capture, plus on-demand access to its bytes."""

    def __init__(self, sources: list[CaptureSource], config: AnalysisConfig, plugins: PluginCaller) -> None:
        self.sources = sources
        self.buffers = [source.data for source in sources]
        self.views = [memoryview(buffer) for buffer in self.buffers]
        self.config = config
        self.plugins = plugins
        self.connections: list[Connection] = []
        # TCP connections that carried no byte (refused, unanswered, closed empty), up to
        # ``MAX_CONNECTION_ATTEMPTS``; ``attempts_not_kept`` counts the rest (a port scan).
        self.connection_attempts: list[ConnectionAttempt] = []
        self.attempts_not_kept = 0
        self.associations: list[Association] = []
        self.pdus = PduTable()
        self.messages: list[Message] = []
        self.expert: list[ExpertItem] = []
        # What a validator said per data set and per study (``rules.data`` plugin, docs/validate.md).
        self.validation = ValidationResults()
        self.frame_count = 0
        self.tcp_frame_count = 0
        self.span_duplicates = 0  # frames set aside as SPAN copies of a packet (core/wire/duplicates.py)
        # Frames whose capture block carried no time (pcapng simple packet blocks), in order: they
        # have the time of the frame before them; timing leaves out what ends in them.
        self.untimed_frames = array("I")
        self.bytes_total = sum(len(buffer) for buffer in self.buffers)
        self.bytes_done = 0
        self.finished = False
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.pdu_decoders: dict[int, Callable[[bytes], Any]] = {}
        for _plugin, (pdu_type, decoder) in plugins.hook.dicomtui_register_pdu_decoders.registrations():
            self.pdu_decoders[pdu_type] = decoder
        # Decryption secrets the capture files carry (pcapng DSBs: (secrets type, data)), for the
        # stream transforms; never shown.
        self.capture_secrets: list[tuple[int, bytes]] = [
            secret for source in sources for secret in leading_decryption_secrets(source.data)]
        # (plugin, name, factory) of each stream transform (core/wire/transform.py); asked in pluggy's order
        self.stream_transforms: list[tuple[str, str, Callable]] = [
            (plugin, name, factory) for plugin, (name, factory)
            in reversed(plugins.hook.dicomtui_register_stream_transforms.registrations(config=config, capture_secrets=self.capture_secrets))]
        # Every connection a stream transform took, DICOM inside or not (core/wire/transform.py).
        self.transformed: list[TransformedConnection] = []
        self.message_index = MessageIndex(self)
        self.relations = Relations(self)  # association <-> connection, messages, C-MOVE links
        self._workflow = None  # (key, Workflow): built on first read (core/model/workflow.py)
        self._status_meanings: dict[tuple[int, int, str], tuple[str, str]] = {}
        # The Analysis' own tag dictionary (no module-level state shared between analyses).
        registered = plugins.hook.dicomtui_register_dictionaries.registrations(config=config)
        self.dictionary = TagDictionary([args[0] for _plugin, args in registered])

    def close(self) -> None:
        """Close the capture files (their maps and descriptors); the decoded model stays readable.

        Whoever ran the analysis closes it when done: a file left for the garbage collector
        is a ResourceWarning at exit, and under ``-W error`` an exception in whatever runs then.
        """
        for view in self.views:
            try:
                view.release()
            except (BufferError, ValueError):  # something still reads through it: the OS reclaims the map at exit
                pass
        for source in self.sources:
            source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def release_pages(self) -> None:
        """Drop the capture's mapped pages from this process's resident memory.

        They stay in the OS page cache and fault back in when read, so a pass over a
        multi-GB capture holds its index, not the capture, in memory.
        """
        for source in self.sources:
            if isinstance(source.data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
                try:
                    source.data.madvise(mmap.MADV_DONTNEED)
                except (OSError, ValueError):
                    pass

    @property
    def notes(self) -> list[CaptureNote]:
        return [note for source in self.sources for note in source.notes]

    # -- bytes on demand -------------------------------------------------------------------

    def read_stream(self, connection: int, direction: int, start: int, end: int) -> bytes | None:
        return self.connections[connection].streams[direction].read(start, end, self.buffers)

    def pdu_bytes(self, pdu: Pdu) -> bytes | None:
        """The whole PDU (header included) or None if the capture lacks some of it."""
        return self.read_stream(pdu.connection, pdu.direction, pdu.stream_offset,
                                pdu.stream_offset + pdu.total_length)

    def pdu_bytes_with_holes(self, pdu: Pdu) -> tuple[bytes, list[tuple[int, int]]]:
        """The PDU as far as the capture holds it: missing ranges zero-filled and listed (PDU-relative)."""
        from dicomtui.core.wire.holes import read_with_holes

        chunks = self.connections[pdu.connection].streams[pdu.direction]
        return read_with_holes(chunks, pdu.stream_offset, pdu.stream_offset + pdu.total_length, self.buffers)

    def decode_dataset_bytes(self, data: bytes, transfer_syntax: str):
        """Decode data-set bytes that are not a whole message's (e.g. the part before a capture hole)."""
        return self.plugins.hook.dicomtui_decode_dataset.first(data=data, transfer_syntax=transfer_syntax,
                                       limits=self.config.limits, dictionary=self.dictionary)

    def dataset_bytes(self, message: Message, limit: int | None = None) -> bytes | None:
        """A message's data set, joined from its PDV fragments; None if incomplete or over ``limit``."""
        if not message.complete or not message.has_dataset:
            return None
        if limit is not None and message.dataset_length > limit:
            return None
        parts = []
        for fragment in message.dataset_fragments:
            data = self.read_stream(message.connection, message.direction, fragment.stream_offset,
                                    fragment.stream_offset + fragment.length)
            if data is None:
                return None
            parts.append(data)
        return b"".join(parts)

    def dataset_pieces(self, message: Message):
        """The data set as lists of zero-copy memoryviews of the capture, one list per PDV fragment.

        A list ending in None means the capture lacks what follows.  Exporters hand
        these lists to ``os.writev``, so memory does not grow with object size.
        """
        stream = self.connections[message.connection].streams[message.direction]
        for fragment in message.dataset_fragments:
            pieces = stream.pieces(fragment.stream_offset, fragment.stream_offset + fragment.length, self.views)
            yield pieces
            if pieces and pieces[-1] is None:
                return

    def decode_pdu(self, pdu: Pdu):
        """The PDU body decoded by the registered plugin; raises DecodeError when malformed."""
        from dicomtui.core.base.errors import DecodeError

        data = self.pdu_bytes(pdu)
        if data is None:
            raise DecodeError("the capture does not hold all of this PDU")
        decoder = self.pdu_decoders.get(pdu.pdu_type)
        if decoder is None:
            raise DecodeError(f"no decoder registered for PDU type 0x{pdu.pdu_type:02x}")
        return decoder(bytes(data[6:]))

    # -- PDUs to messages (the read API views use instead of re-deriving the assembler) -----

    def messages_for(self, pdu: Pdu) -> list[Message]:
        """Messages with at least one PDV in ``pdu``, in stream order."""
        return self.message_index.messages_for(pdu)

    def pdv_messages(self, pdu: Pdu) -> list[Message | None]:
        """For each PDV of ``pdu``, the message it belongs to (None when unknown)."""
        return self.message_index.pdv_messages(pdu)

    def dataset_completed_in(self, pdu: Pdu) -> list[Message]:
        """Messages whose data set ends in ``pdu`` (where a view shows the data set)."""
        return self.message_index.dataset_completed_in(pdu)

    def decode_command(self, message: Message):
        """``(fields, display tree)`` of a message's command set; raises DecodeError when malformed."""
        return decode_command_set(message.command_bytes)

    def status_meaning(self, command_field: int, status: int, sop_class: str = "") -> tuple[str, str]:
        # The plugins' answer depends only on the three arguments, and a day repeats the same few
        # thousand times: one hook call each (pluggy costs ~20 µs a call, a tenth of a C-ECHO).
        key = (command_field, status, sop_class)
        known = self._status_meanings.get(key)
        if known is None:
            result = self.plugins.hook.dicomtui_status_meaning.first(command_field=command_field,
                                             status=status, sop_class=sop_class)
            known = result or ("failure" if status else "success", f"0x{status:04X}")
            if len(self._status_meanings) < 65536:  # crafted statuses and classes must not grow it unbounded
                self._status_meanings[key] = known
        return known

    def decode_dataset(self, message: Message, max_bytes: int | None = None):
        """Decode a message's data set with the dataset plugin; None when there is none to decode.

        ``max_bytes`` lowers the inflation limit for this call (an expert rule that checks
        data sets up to 1 MB must not inflate a deflate bomb to the display limit).
        """
        data = self.dataset_bytes(message, self.config.limits.max_dataset_bytes)
        if data is None:
            return None
        limits = self.config.limits
        if max_bytes is not None and max_bytes < limits.max_inflated_bytes:
            limits = replace(limits, max_inflated_bytes=max_bytes)
        # A syntax the capture did not negotiate is passed as unknown, so the decoder guesses
        # (and says so) from the bytes itself.
        syntax = "" if message.syntax_guessed else message.transfer_syntax
        return self.plugins.hook.dicomtui_decode_dataset.first(data=data, transfer_syntax=syntax,
                                       limits=limits, dictionary=self.dictionary)

    @property
    def workflow(self):
        """Storage commitments, procedure steps and worklist items linked across associations
        (``core/model/workflow.py``), built on first read and again when the model has grown."""
        from dicomtui.core.model.workflow import build_workflow

        key = (len(self.associations), len(self.messages), len(self.connection_attempts), self.finished)
        if self._workflow is None or self._workflow[0] != key:
            self._workflow = (key, build_workflow(self))
        return self._workflow[1]

    def time_known(self, frame: int) -> bool:
        """Whether ``frame`` carried a time of its own (not a pcapng simple packet block's)."""
        untimed = self.untimed_frames
        if not untimed:
            return True
        at = bisect_left(untimed, frame)
        return at == len(untimed) or untimed[at] != frame

    def clear_untimed_response_times(self, message) -> None:
        """A response that starts or ends in a frame without a time of its own, or answers a request
        that ends in one (pcapng simple packet blocks: each has the time of the frame before it): its
        first-byte and response times are unknown (None), not the borrowed times' difference.  Called
        as each message completes, and by batch mode's merge, which learns the untimed frames last."""
        if message.request is None:
            return
        try:
            request = self.messages[message.request]
        except IndexError:  # a live capture's retention limit dropped the request
            return
        time_known = self.time_known
        if not (time_known(message.first_frame) and time_known(message.last_frame) and time_known(request.last_frame)):
            message.first_byte_time = message.response_time = None

    def untimed_between(self, first: int, last: int) -> frozenset[int]:
        """The untimed frames from ``first`` to ``last`` (a connection's; ``last`` 0: to the end)."""
        untimed = self.untimed_frames
        if not untimed:
            return frozenset()
        stop = len(untimed) if not last else bisect_right(untimed, last)
        return frozenset(untimed[bisect_left(untimed, first):stop])

    def frame_time(self, timestamp: float) -> float:
        return timestamp - (self.first_time or 0.0)
