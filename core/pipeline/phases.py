"""The pipeline: capture files -> frames -> TCP streams -> DICOM connections -> model.

``analyze`` opens the captures, runs ``engine.CaptureEngine`` over every frame
(one sequential pass), numbers the results for display and runs the expert
rules through the plugin hooks.
"""

from __future__ import annotations

import gc
import itertools
import time
from dataclasses import replace
from typing import Callable, Iterator

from dicomtui.core.base.limits import Limits
from dicomtui.core.model import ExpertItem, Group, Severity
from dicomtui.core.model.analysis import Analysis, AnalysisConfig, PluginCaller
from dicomtui.core.pipeline.engine import CaptureEngine
from dicomtui.core.pipeline.rules import report_failures
from dicomtui.core.pipeline.rules import run_rules as run_expert_rules
from dicomtui.core.wire.capture import CaptureError, CaptureSource, Record, merge_records, open_source

RELEASE_INTERVAL = 32 << 20  # drop mapped capture pages from memory every 32 MB read
# The index (connections, PDUs, messages, expert items) lives until the analysis is dropped,
# and the cyclic garbage collector would scan all of it again on every full collection:
# with hundreds of thousands of connections that made the pass quadratic (a 200,000-connection
# flood: most of its time in the collector).  What the pass has built is therefore moved out of
# the collector's reach (gc.freeze) at every progress tick, after collecting the young cyclic
# garbage, until the analysis is finished (gc.unfreeze: a long-lived process, the TUI or a test
# session, must not keep older garbage frozen for good).  It is still freed by reference
# counting (the engine breaks its own cycles when it closes a connection), so an evicted
# connection's state goes at once.


ProgressCallback = Callable[[Analysis], None]


def _sort_pdus(analysis: Analysis) -> None:
    pdus = analysis.pdus
    last_frames = pdus.last_frames()
    if all(last_frames[i] <= last_frames[i + 1] for i in range(len(last_frames) - 1)):
        return
    # (last frame, index): the sort is stable.  Only the window between the first and the
    # last PDU that moves is rewritten, and only the moved ones renumbered.
    order = sorted(range(len(last_frames)), key=last_frames.__getitem__)
    low = next(position for position, old in enumerate(order) if old != position)
    high = next(position for position in range(len(order) - 1, -1, -1) if order[position] != position) + 1
    window = order[low:high]
    new_index = {old: new for new, old in enumerate(window, low) if old != new}
    pdus.reorder(window, low)
    for message in analysis.messages:
        message.first_pdu = new_index.get(message.first_pdu, message.first_pdu)
        message.last_pdu = new_index.get(message.last_pdu, message.last_pdu)
    for association in analysis.associations:
        if association.request_pdu is not None:
            association.request_pdu = new_index.get(association.request_pdu, association.request_pdu)
        if association.response_pdu is not None:
            association.response_pdu = new_index.get(association.response_pdu, association.response_pdu)
    analysis.expert = [replace(item, pdu=new_index[item.pdu]) if item.pdu in new_index else item
                       for item in analysis.expert]


def open_capture(paths: list[str], limits: Limits | None = None) -> list[CaptureSource]:
    limits = limits or Limits()
    sources: list[CaptureSource] = []
    try:
        for path in paths:
            sources.append(open_source(path, limits.max_spool_bytes, limits.max_gzip_ratio))
    except CaptureError:
        for source in sources:
            source.close()
        raise
    return sources


def analyze(
    paths: list[str],
    config: AnalysisConfig | None = None,
    plugins: PluginCaller | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 0.1,
    run_rules: bool = True,
) -> Analysis:
    """Decode a capture (one or several files read as one) into an Analysis, phase by phase.

    See ``Pipeline`` for the phases.  Raises CaptureError when a file cannot be read at all.
    """
    if plugins is None:
        raise TypeError("analyze() needs the plugin host (the composition root, the command line, builds one with the built-in plugins)")
    config = config or AnalysisConfig()
    sources = open_capture(paths, config.limits)
    pipeline = Pipeline(Analysis(sources, config, plugins), progress, progress_interval)
    try:
        pipeline.scan_sources(sources)
        pipeline.close()
        pipeline.complete()
        if run_rules:
            pipeline.check()
        pipeline.freeze()
    finally:
        gc.unfreeze()  # also when a phase raised (an interrupted analysis)
    return pipeline.analysis


class Pipeline:
    """The phases that turn frames into a finished Analysis, each its own step:

    1. ``scan``: frames through the engine (TCP, detection, connection decoders); may be
       called again with more records (they continue the frame numbering);
    2. ``close``: what is still open at the end of the capture, then numbering for display;
    3. ``complete``: ``dicomtui_complete_model`` (transfer-syntax guesses, C-MOVE links);
    4. ``check``: the expert rules (``dicomtui_check_*``);
    5. ``freeze``: capture notes, findings in frame order, ``finished``.

    Plugins are isolated per implementation, so a plugin that fails in one phase loses
    nothing of another.
    """

    def __init__(self, analysis: Analysis, progress: ProgressCallback | None = None,
                 progress_interval: float = 0.1) -> None:
        self.analysis = analysis
        self.engine = CaptureEngine(analysis)
        self.progress = progress
        self.progress_interval = progress_interval
        self._reported = 0
        self._report_load_failures()

    def _report_load_failures(self) -> None:
        failures = self.analysis.plugins.failures
        for failure in failures[self._reported:]:
            self.analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN,
                                                   f"plugin {failure.plugin} failed in {failure.where}: "
                                                   f"{failure.error}", rule="plugins",
                                                   code="plugin.failed"))
        self._reported = len(failures)

    def scan_sources(self, sources: list[CaptureSource]) -> None:
        """``scan`` of whole capture files, through the engine's fast path where it applies."""
        analysis = self.analysis
        # The first frame's time, read ahead of the pass (which notes damage itself, so a note
        # the look-ahead made is dropped).
        notes = [len(source.notes) for source in sources]
        first = next(merge_records(sources), None)
        for source, count in zip(sources, notes):
            del source.notes[count:]
        if first is None:
            self.scan(merge_records(sources))  # notes what is wrong with an empty or cut file
            return
        if analysis.first_time is None:
            analysis.first_time = first[1]
        frame_count, last_time = self.engine.run_sources(sources, self._tick(), start=analysis.frame_count)
        analysis.frame_count, analysis.last_time = frame_count, last_time
        analysis.tcp_frame_count = self.engine.tcp_frames

    def _tick(self):
        """The engine's ``tick``: progress, page release, the young-generation freeze."""
        analysis, engine, progress = self.analysis, self.engine, self.progress
        next_report = time.monotonic() + self.progress_interval
        released_at = 0

        def tick(frame_number: int, offset: int, timestamp: float) -> None:
            nonlocal next_report, released_at
            _freeze_young()
            analysis.frame_count = frame_number
            analysis.tcp_frame_count = engine.tcp_frames
            analysis.last_time = timestamp
            if offset - released_at > RELEASE_INTERVAL or offset < released_at:
                analysis.release_pages()
                released_at = offset
            if progress is not None:
                now = time.monotonic()
                if now >= next_report:
                    analysis.bytes_done = offset
                    progress(analysis)
                    next_report = now + self.progress_interval

        return tick

    def scan(self, records: Iterator[Record]) -> None:
        analysis, engine = self.analysis, self.engine
        tick = self._tick()
        first = next(records, None)
        if first is None:
            return
        if analysis.first_time is None:
            analysis.first_time = first[1]
        frame_count, last_time = engine.run(itertools.chain((first,), records), tick, start=analysis.frame_count)
        analysis.frame_count, analysis.last_time = frame_count, last_time
        analysis.tcp_frame_count = engine.tcp_frames

    def close(self) -> None:
        self.engine.finish()
        _freeze_young()
        self.analysis.tcp_frame_count = self.engine.tcp_frames
        self.analysis.bytes_done = self.analysis.bytes_total
        renumber(self.analysis)
        self._report_load_failures()  # plugins that failed while decoding (e.g. a decoder factory)

    def complete(self) -> None:
        complete_model(self.analysis)
        self._reported = len(self.analysis.plugins.failures)

    def check(self) -> None:
        run_expert_rules(self.analysis)
        self._reported = len(self.analysis.plugins.failures)

    def freeze(self) -> None:
        analysis = self.analysis
        for note in analysis.notes:
            analysis.expert.append(ExpertItem(Severity.WARNING, Group.CAPTURE, f"{note.source}: {note.message}",
                                              analysis.frame_count, rule="capture",
                                              code="capture.reader_note"))
        analysis.expert.sort(key=lambda item: (item.frame, -item.severity))
        analysis.release_pages()  # the rules read data sets all over the capture
        gc.unfreeze()  # back to the oldest generation: cyclic garbage made during the pass is collected again
        analysis.finished = True
        if self.progress is not None:
            self.progress(analysis)


def _freeze_young() -> None:
    """Collect the cyclic garbage made since the last call, then freeze what survives.

    Both cost time in proportion to what was allocated since the last call (the young
    generations), never to the whole index; gc.freeze itself splices lists.
    """
    gc.collect(1)
    gc.freeze()


def complete_model(analysis: Analysis) -> None:
    """What needs the whole capture: ``dicomtui_complete_model`` (and the older ``dicomtui_finish_analysis``)."""
    since = len(analysis.plugins.failures)
    analysis.plugins.hook.dicomtui_complete_model(analysis=analysis)
    analysis.plugins.hook.dicomtui_finish_analysis(analysis=analysis)
    analysis.relations.invalidate()  # links (parent_move) were set without changing any length
    report_failures(analysis, since)


def renumber(analysis: Analysis) -> None:
    """Number PDUs in frame order and connections by first frame, as a packet list shows them.

    PDUs are found in the order their bytes become contiguous; a lost segment can
    hold one direction back until the gap is declared, so a few may come out of
    frame order.  Connections are numbered when recognised.
    """
    _sort_pdus(analysis)
    mapping = {connection.index: position for position, connection in enumerate(analysis.connections)}
    if all(old == new for old, new in mapping.items()):
        return
    for position, connection in enumerate(analysis.connections):
        connection.index = position
    analysis.pdus.remap_connections(mapping)
    for association in analysis.associations:
        association.connection = mapping[association.connection]
    for message in analysis.messages:
        message.connection = mapping[message.connection]
    analysis.relations.invalidate()
