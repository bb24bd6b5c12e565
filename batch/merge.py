"""The reduce step: the flow groups' results put together into one Analysis.

Each group numbered its objects in its own creation order.  The single pass numbers
connections, associations, PDUs, messages and findings in the order it creates them,
which is the order of (frame, order within the frame) logged by ``split``: so every
object gets its index from a sort of those keys, every reference between objects is
mapped to the new indices, and the result is exactly the state the single pass has
after its last frame.  ``core.pipeline.phases.Pipeline`` then does what the single
pass does next (numbering PDUs and connections, the expert rules, which may look
across connections, e.g. C-MOVE sub-association links, capture notes).
"""

from __future__ import annotations

import pickle
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import replace

from dicomtui.core.model import ExpertItem, Group, Severity
from dicomtui.core.model.analysis import Analysis, AnalysisConfig
from dicomtui.core.model.pdu_table import PduTable
from dicomtui.core.pipeline.engine import (
    NOT_DICOM_LISTED,
    NOT_DICOM_MORE,
    clock_step_findings,
    direction_skew_finding,
    ip_fragments_finding,
    span_duplicates_finding,
)
from dicomtui.core.pipeline.phases import Pipeline
from dicomtui.core.wire.capture import CaptureNote, CaptureSource
from dicomtui.core.wire.duplicates import DUPLICATE_WINDOW

from dicomtui.core.wire.undecoded import UndecodedFrames, undecoded_warning

from .split import FINISH, FileSummary, map_source


def _load(path: str) -> dict:
    with open(path, "rb") as handle:
        return pickle.load(handle)


def undecoded_kinds(summaries: list[FileSummary], bases: dict[int, int],
                    keys_of: dict[int, object]) -> dict[str, tuple[int, int]]:
    """The frames of a link type or encapsulation not taken off, over every file: kind -> (its first frame,
    numbered in the whole capture, frames), as the single pass's engine counts them (core/wire/undecoded.py)."""
    kinds = UndecodedFrames()
    for summary in summaries:
        for kind, (position, count) in summary.undecoded.items():
            key = keys_of[summary.index][position]
            number = bases[summary.index] + position + 1
            for other, keys in keys_of.items():
                if other == summary.index or not _interleaves(summaries, summary.index, other):
                    continue
                number += bisect_right(keys, key) if other < summary.index else bisect_left(keys, key)
            kinds.add(kind, number, count)
    return kinds.kinds


def _numbered(summaries: list[FileSummary], index: int, positions, bases: dict[int, int],
              keys_of: dict[int, object]):
    """Frame numbers in the whole capture of the frames at ``positions`` of file ``index``."""
    overlapping = {other: keys for other, keys in keys_of.items()
                   if other != index and _interleaves(summaries, index, other)}
    mine = keys_of[index]
    base = bases[index] + 1
    for position in positions:
        number = base + position
        if overlapping:
            key = mine[position]
            for other, keys in overlapping.items():
                number += bisect_right(keys, key) if other < index else bisect_left(keys, key)
        yield number


def untimed_frames(summaries: list[FileSummary], bases: dict[int, int], keys_of: dict[int, object],
                   untimed: dict[int, object]) -> array:
    """The frames without a time of their own (pcapng simple packet blocks), numbered in the whole capture
    and sorted, as the single pass's engine lists them (``Analysis.untimed_frames``); ``untimed[i]``: the
    positions of file i's (the index keeps them: its array of times drops ``UntimedTime``'s mark)."""
    numbers = [number for index, positions in untimed.items() if positions
               for number in _numbered(summaries, index, positions, bases, keys_of)]
    return array("I", sorted(numbers))


def _interleaves(summaries: list[FileSummary], a: int, b: int) -> bool:
    by_index = {summary.index: summary for summary in summaries}
    x, y = by_index[a], by_index[b]

    def before(p, q):
        return p.last_key < q.first_key or (p.last_key == q.first_key and p.index < q.index)

    return bool(x.frames and y.frames) and not before(x, y) and not before(y, x)


def _direction_skew(results: list[dict], connections: list[tuple]):
    """The single pass's one note on acknowledgements recorded before the bytes they acknowledge
    (``CaptureEngine.order_findings``) from the groups' counts: the first frame is the one learnt
    first in the frame order; the connections counted are those the single pass has when it
    closes the capture (created before: ``connections`` are (creation key, group, connection))."""
    held = [result["held"] for result in results if result.get("held")]
    lateness = max((item[1] for item in held), default=0.0)
    if not lateness:
        return None
    first = min((item for item in held if item[3]), key=lambda item: item[2])
    skewed = sum(1 for key, _group, connection in connections
                 if key[0] < FINISH and connection.segments is not None and any(connection.segments.late))
    return direction_skew_finding(sum(item[0] for item in held), lateness, skewed, first[3])


def _fragment_totals(results: list[dict]) -> tuple[int, int, int] | None:
    """Every group's fragment counts added up; None when no group met a TCP fragment."""
    totals = [result["fragment_totals"] for result in results if result.get("fragment_totals", (0,))[0]]
    return tuple(sum(column) for column in zip(*totals)) if totals else None


def _duplicate_totals(results: list[dict]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Every group's SPAN copies, (count, first frame, last frame) of whole segments and of fragments."""

    def added(items):
        found = [item for item in items if item[0]]
        if not found:
            return (0, 0, 0)
        return (sum(item[0] for item in found), min(item[1] for item in found), max(item[2] for item in found))

    totals = [result.get("duplicate_totals", ((0, 0, 0), (0, 0, 0))) for result in results]
    return added([item[0] for item in totals]), added([item[1] for item in totals])


# Notes each group's engine makes about its own share of a limit the single pass applies to the whole
# capture: kept once, the first (the capture's order), as the single pass says it first.
ONCE = ("capture.too_many_connections", "capture.segment_record_limit")


def _once_for_the_capture(findings: list[ExpertItem]) -> list[ExpertItem]:
    """The groups' findings (in the single pass's order) with the whole capture's caps applied: the
    first ``NOT_DICOM_LISTED`` connections on a DICOM port that are not DICOM, the last of them saying
    more are not listed; one note of each code in ``ONCE``."""
    kept = []
    seen = set()
    not_dicom = 0
    for item in findings:
        if item.code == "capture.not_dicom_on_dicom_port":
            not_dicom += 1
            if not_dicom > NOT_DICOM_LISTED:
                continue
            if not_dicom == NOT_DICOM_LISTED:
                item = replace(item, message=item.message + NOT_DICOM_MORE)
        elif item.code in ONCE:
            if item.code in seen:
                continue
            seen.add(item.code)
        kept.append(item)
    return kept


def merge_groups(summaries: list[FileSummary], group_paths: list[str], config: AnalysisConfig, make_host,
                 disabled: set[str], undecoded: dict[str, tuple[int, int]], clock_steps=(),
                 untimed: array | None = None) -> Analysis:
    """One Analysis from the groups' pickled results, as the single pass over all files makes it.

    ``clock_steps``: the run's steps of the clock back (``clock.ClockStep``), which the groups
    applied; reported here once each, where the single pass reports them (as it closes the
    capture, before the connections still open)."""
    results = [_load(path) for path in group_paths]
    sources: list[CaptureSource] = []
    for summary in summaries:
        source = map_source(summary.name, summary.read_path) if summary.size else CaptureSource(summary.name, b"")
        source.notes = [CaptureNote(summary.name, message) for message in summary.notes]
        sources.append(source)
    analysis = Analysis(sources, config, make_host(disabled=set(disabled)))
    # The single pass's phases after the scan run on what the groups scanned; the pipeline
    # reports plugins that failed to load first, as analyze() does.
    pipeline = Pipeline(analysis)

    def ordered(name: str):
        rows = [(key, group, item) for group, result in enumerate(results) for key, item in result[name]]
        rows.sort(key=lambda row: (row[0], row[1]))
        return rows

    connections = ordered("connections")
    connection_map = {}
    for new, (_key, group, connection) in enumerate(connections):
        connection_map[group, connection.index] = new
    associations = ordered("associations")
    association_map = {(group, association.index): new for new, (_k, group, association) in enumerate(associations)}
    messages = ordered("messages")
    message_map = {(group, message.index): new for new, (_k, group, message) in enumerate(messages)}
    pdu_rows = sorted((key, group, local) for group, result in enumerate(results)
                      for local, key in enumerate(result["pdu_keys"]))
    pdu_map = {(group, local): new for new, (_k, group, local) in enumerate(pdu_rows)}

    def pdu(group: int, index: int | None) -> int | None:
        return None if index is None else pdu_map[group, index]

    def association_of(group: int, index: int | None) -> int | None:
        return index if index is None or index < 0 else association_map[group, index]

    def message_of(group: int, index: int | None) -> int | None:
        return index if index is None or index < 0 else message_map[group, index]

    table = PduTable()
    for _key, group, local in pdu_rows:
        row = results[group]["pdus"][local]
        row.connection = connection_map[group, row.connection]
        row.association = association_of(group, row.association)
        table.append(row)
    for _key, group, connection in connections:
        connection.index = connection_map[group, connection.index]
    for new, (_key, group, association) in enumerate(associations):
        association.index = new
        association.connection = connection_map[group, association.connection]
        association.request_pdu = pdu(group, association.request_pdu)
        association.response_pdu = pdu(group, association.response_pdu)
        association.parent_move = message_of(group, association.parent_move)
    for new, (_key, group, message) in enumerate(messages):
        message.index = new
        message.association = association_of(group, message.association)
        message.connection = connection_map[group, message.connection]
        message.first_pdu = pdu_map[group, message.first_pdu]
        message.last_pdu = pdu_map[group, message.last_pdu]
        message.request = message_of(group, message.request)
        message.responses = [message_map[group, index] for index in message.responses]
    findings = [(key, group, replace(item, association=association_of(group, item.association),
                                     pdu=pdu(group, item.pdu), message_index=message_of(group, item.message_index)))
                for key, group, item in ordered("expert")]
    # The findings the single pass's engine makes about the whole capture as it closes it (before the
    # connections still open), in its order, from what the index and every group found.
    # (engine.finish's order: IP fragments, SPAN copies, clock steps, undecoded frames, direction skew)
    closing = []
    fragment_totals = _fragment_totals(results)
    if fragment_totals is not None:
        closing.append(ip_fragments_finding(*fragment_totals, sum(summary.frames for summary in summaries)))
    segment_copies, fragment_copies = _duplicate_totals(results)
    copies = span_duplicates_finding(segment_copies, fragment_copies, DUPLICATE_WINDOW)
    if copies is not None:
        closing.append(copies)
    closing += clock_step_findings([(step.frame, step.step) for step in clock_steps])
    if undecoded:  # their frames went to no group
        first, text = undecoded_warning(undecoded)
        closing.append(ExpertItem(Severity.WARNING, Group.CAPTURE, text, first, rule="capture",
                                  code="capture.unknown_encapsulation"))
    skew = _direction_skew(results, connections)
    if skew is not None:
        closing.append(skew)
    for order, item in enumerate(closing):
        findings.append(((FINISH, order), -1, item))
    findings.sort(key=lambda row: (row[0], row[1]))
    if any(result["evicted"] for result in results):
        # More than max_connections at once in one group: the single pass would have evicted others too.
        analysis.expert.append(ExpertItem(
            Severity.WARNING, Group.CAPTURE, "batch: some flow group tracked more than max_connections TCP "
            "connections at once; the result may differ from a single pass", rule="batch",
            code="batch.too_many_connections"))
    analysis.expert.extend(_once_for_the_capture([item for _key, _group, item in findings]))
    transformed = [(item.first_frame, group, item) for group, result in enumerate(results)
                   for item in result.get("transformed", ())]
    for _frame, group, item in sorted(transformed, key=lambda row: (row[0], row[1])):
        if item.connection is not None:
            item.connection = connection_map[group, item.connection]
        analysis.transformed.append(item)
    analysis.connections = sorted((connection for _k, _g, connection in connections),
                                  key=lambda connection: connection.first_frame)
    analysis.connection_attempts = sorted((attempt for result in results
                                           for attempt in result.get("connection_attempts", ())),
                                          key=lambda attempt: attempt.first_frame)
    analysis.attempts_not_kept = sum(result.get("attempts_not_kept", 0) for result in results)
    analysis.associations = [association for _k, _g, association in associations]
    analysis.messages = [message for _k, _g, message in messages]
    analysis.pdus = table
    analysis.frame_count = sum(summary.frames for summary in summaries)
    if untimed:
        analysis.untimed_frames = untimed
        for message in analysis.messages:  # the groups' engines did not know these frames
            analysis.clear_untimed_response_times(message)
    readable = [summary for summary in summaries if summary.frames]
    if readable:
        first = min(readable, key=lambda summary: (summary.first_key, summary.index))
        last = max(readable, key=lambda summary: (summary.last_key, summary.index))
        analysis.first_time, analysis.last_time = first.first_ts, last.last_ts
        if clock_steps:  # the last frame's time as the engine gives it: moved on by the steps
            final = clock_steps[-1]
            if final.frame == analysis.frame_count:
                analysis.last_time = final.time
            elif final.shift:
                analysis.last_time += final.shift
    # close: every stream was closed in its group (the pipeline's engine has none open), so
    # this is the numbering for display, as in the single pass.
    pipeline.close()
    analysis.span_duplicates = segment_copies[0] + fragment_copies[0]  # (close's engine found none of them)
    analysis.tcp_frame_count = sum(result["tcp_frames"] for result in results)
    for result in results:  # plugins that failed while decoding, reported where close() reports them
        for plugin, where, error in result["failures"]:
            analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN,
                                              f"plugin {plugin} failed in {where}: {error}", rule="plugins",
                                              code="plugin.failed"))
    pipeline.complete()
    pipeline.check()
    pipeline.freeze()
    return analysis
