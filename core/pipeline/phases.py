"""The pipeline: capture files -> frames -> TCP streams -> DICOM connections -> model.

``analyze`` opens the captures, runs ``engine.CaptureEngine`` over every frame
(one sequential pass), numbers the results for display and runs the expert
rules through the plugin hooks.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Callable

from dicomtui.core.model import ExpertItem, Group, Severity
from dicomtui.core.model.analysis import Analysis, AnalysisConfig, PluginCaller
from dicomtui.core.pipeline.engine import CaptureEngine
from dicomtui.core.pipeline.rules import report_failures
from dicomtui.core.pipeline.rules import run_rules as run_expert_rules
from dicomtui.core.wire.capture import CaptureError, CaptureSource, merge_records, open_source

RELEASE_INTERVAL = 64 << 20  # drop mapped capture pages from memory every 64 MB read


ProgressCallback = Callable[[Analysis], None]


def _sort_pdus(analysis: Analysis) -> None:
    pdus = analysis.pdus
    last_frames = pdus.last_frames()
    if all(last_frames[i] <= last_frames[i + 1] for i in range(len(last_frames) - 1)):
        return
    order = sorted(range(len(last_frames)), key=lambda index: (last_frames[index], index))
    new_index = {old: new for new, old in enumerate(order)}
    pdus.reorder(order)
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


def open_capture(paths: list[str]) -> list[CaptureSource]:
    sources: list[CaptureSource] = []
    try:
        for path in paths:
            sources.append(open_source(path))
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

    1. scan: every frame through the engine (TCP, detection, connection decoders);
    2. close streams: what is still open at the end of the capture, then number for display;
    3. complete the model: ``dicomtui_complete_model`` (transfer-syntax guesses, C-MOVE links);
    4. check: the expert rules (``dicomtui_check_*``), unless ``run_rules`` is False;
    5. freeze: capture notes, findings in frame order, ``finished``.

    Plugins are isolated per implementation, so a plugin that fails in one phase loses
    nothing of another.  Raises CaptureError when a file cannot be read at all.
    """
    if plugins is None:
        raise TypeError("analyze() needs the plugin host (the command line builds it: dicomtui.core.cli.make_host)")
    config = config or AnalysisConfig()
    sources = open_capture(paths)
    analysis = Analysis(sources, config, plugins)
    _report_load_failures(analysis, 0)
    reported = len(plugins.failures)
    engine = CaptureEngine(analysis)
    _scan(analysis, engine, sources, progress, progress_interval)
    _close_streams(analysis, engine)
    _report_load_failures(analysis, reported)
    complete_model(analysis)
    if run_rules:
        run_expert_rules(analysis)
    _freeze(analysis)
    if progress is not None:
        progress(analysis)
    return analysis


def _report_load_failures(analysis: Analysis, since: int) -> None:
    for failure in analysis.plugins.failures[since:]:
        analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN,
                                          f"plugin {failure.plugin} failed in {failure.where}: {failure.error}",
                                          rule="plugins"))


def _scan(analysis: Analysis, engine: CaptureEngine, sources: list[CaptureSource],
          progress: ProgressCallback | None, progress_interval: float) -> None:
    next_report = time.monotonic() + progress_interval
    released_at = 0

    def tick(frame_number: int, offset: int, timestamp: float) -> None:
        nonlocal next_report, released_at
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
                next_report = now + progress_interval

    records = merge_records(sources)
    first = next(records, None)
    if first is not None:
        analysis.first_time = first[1]
        records = itertools.chain((first,), records)
    analysis.frame_count, analysis.last_time = engine.run(records, tick)


def _close_streams(analysis: Analysis, engine: CaptureEngine) -> None:
    engine.finish()
    analysis.tcp_frame_count = engine.tcp_frames
    analysis.bytes_done = analysis.bytes_total
    _renumber(analysis)


def complete_model(analysis: Analysis) -> None:
    """What needs the whole capture: ``dicomtui_complete_model`` (and the older ``dicomtui_finish_analysis``)."""
    since = len(analysis.plugins.failures)
    analysis.plugins.call("dicomtui_complete_model", analysis=analysis)
    analysis.plugins.call("dicomtui_finish_analysis", analysis=analysis)
    report_failures(analysis, since)


def _freeze(analysis: Analysis) -> None:
    for note in analysis.notes:
        analysis.expert.append(ExpertItem(Severity.WARNING, Group.CAPTURE, f"{note.source}: {note.message}",
                                          analysis.frame_count, rule="capture"))
    analysis.expert.sort(key=lambda item: (item.frame, -item.severity))
    analysis.release_pages()  # the rules read data sets all over the capture
    analysis.finished = True


def _renumber(analysis: Analysis) -> None:
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
