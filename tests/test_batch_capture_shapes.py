"""Batch mode over captures shaped as hospital networks make them (issue 25): the single pass's answer.

The single pass puts IP fragments back together, sets SPAN copies aside and marks pcapng simple
packet block frames untimed.  Batch mode decodes each flow group over its own frames: fragments
after the first carry no TCP header and once reached no group (false gaps, PDUs "not captured");
the notes on fragments and on SPAN copies came once per group; untimed frames were not marked at
all (the index keeps times in an array of floats).  Here the batch's whole ``--json`` document (the
merged Analysis through ``views.analysis_json``, taken as the tables are written) and its tables
must be the single pass's, key for key, on the recorded store_dcmtk fixture cut into fragments
(IPv4 and IPv6, in order, reversed, shuffled with a fragment twice, one fragment missing), as one
file, as ring files cut inside datagrams (the first fragment in one file, the rest in the next, or
the other way round) and dealt into files whose times interleave; doubled as a SPAN port doubles
it (jittered and routed copies, of fragments and of whole segments); and with the server's frames
as simple packet blocks.
"""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from batch_tools import assert_same_as_single, batch_order, deal_capture, local_batch, random_cuts, single_json, split_capture
from capture_tools import FIXTURES, RawFrame, read_frames, write_pcap
from conftest import analyze_path
from test_capture_clock import _from_server, _pcapng_with_simple_blocks
from test_fragment_span_copies import _fragmented_frames
from test_fragments import SHAPES as FRAGMENT_SHAPES
from test_fragments import _fragmented, _ipv4_fragments, _ipv6_fragments
from test_span_duplicates import _doubled, _routed

import dicomtui.batch.tables as tables
from dicomtui.core.views.document import analysis_json

NOTES = ("capture.ip_fragments", "capture.span_duplicates")


@pytest.fixture
def merged(monkeypatch):
    """The batch's merged Analysis, taken where its tables are made (in process: ``local_batch``)."""
    taken = []
    real = tables.analysis_tables

    def spy(analysis, run_id):
        taken.append(analysis)
        return real(analysis, run_id)

    monkeypatch.setattr(tables, "analysis_tables", spy)
    return taken


def batch_equals_single(tmp_path, capsys, merged, files, groups: int = 3, workers: int = 1):
    """The batch of ``files`` against ``dicomtui --json -r ...`` of them: tables and the whole document."""
    outcome = local_batch(tmp_path / "out", files, groups=groups, workers=workers)
    assert not outcome.problems
    expected = single_json(batch_order(tmp_path / "out"), capsys)  # the files in time order
    assert_same_as_single(tmp_path / "out", expected)
    (analysis,) = merged
    document = json.loads(json.dumps(analysis_json(analysis), default=str))
    for key in expected:
        assert document[key] == expected[key], key
    for code in NOTES:  # once at most, as the single pass says it
        assert len([item for item in document["expert"] if item["code"] == code]) <= 1
    merged.clear()
    return expected, analysis


def _groups_hit(path, groups: int) -> int:
    """How many flow groups the capture's connections fall in (the test needs more than one)."""
    from dicomtui.batch import split

    index = split.index_file(0, str(path), groups, str(path) + ".spool", "hash")
    return sum(1 for part in index["parts"] if len(part))


# -- IP fragments ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FRAGMENT_SHAPES))
def test_fragments_in_one_file(tmp_path, capsys, merged, name):
    cut, order = FRAGMENT_SHAPES[name]
    path = _fragmented(tmp_path, name, cut, order)
    assert _groups_hit(path, 3) > 1
    expected, _analysis = batch_equals_single(tmp_path, capsys, merged, [path])
    (note,) = [item for item in expected["expert"] if item["code"] == "capture.ip_fragments"]
    assert "could not be completed" not in note["message"]
    assert not any(connection["gaps"] for connection in expected["connections"])


@pytest.mark.parametrize("cut", [_ipv4_fragments, _ipv6_fragments], ids=["ipv4", "ipv6"])
def test_a_datagram_missing_a_fragment(tmp_path, capsys, merged, cut):
    """The first fragment of one datagram is missing: its other fragments go to one group, which
    counts it as not completed once, as the single pass does."""
    path = _fragmented(tmp_path, "dropped", cut, drop_one=True)
    expected, _analysis = batch_equals_single(tmp_path, capsys, merged, [path], groups=5)
    (note,) = [item for item in expected["expert"] if item["code"] == "capture.ip_fragments"]
    assert "1 datagram(s) could not be completed" in note["message"]


def _datagram_cuts(frames: list[RawFrame]) -> list[int]:
    """Record numbers that cut a fragmented datagram: after its first fragment as read."""
    cuts = []
    for number in range(1, len(frames)):
        this, last = frames[number].data, frames[number - 1].data
        if this[12:14] == last[12:14] == b"\x08\x00" and this[18:20] == last[18:20] \
                and struct_flags(this) and struct_flags(last):
            cuts.append(number)
    return cuts


def struct_flags(data: bytes) -> bool:
    """Whether an Ethernet IPv4 frame is a fragment."""
    return bool(int.from_bytes(data[20:22], "big") & 0x3FFF)


@pytest.mark.parametrize("reverse", [False, True], ids=["first-fragment-first", "first-fragment-last"])
def test_ring_files_cut_inside_datagrams(tmp_path, capsys, merged, reverse):
    path = _fragmented(tmp_path, "whole", _ipv4_fragments, (lambda parts: parts[::-1]) if reverse else (lambda parts: parts))
    frames = read_frames(path)
    inside = _datagram_cuts(frames)
    assert len(inside) > 10
    cuts = [inside[len(inside) // 5], inside[len(inside) // 2], inside[-2]]
    files = split_capture(path, tmp_path / "ring", cuts)
    batch_equals_single(tmp_path, capsys, merged, files, groups=3)


def test_ring_files_cut_at_random(tmp_path, capsys, merged):
    path = _fragmented(tmp_path, "whole", _ipv6_fragments,
                       lambda parts: random.Random(len(parts)).sample(parts, len(parts)))
    files = split_capture(path, tmp_path / "ring", random_cuts(path, 5, seed=25))
    batch_equals_single(tmp_path, capsys, merged, files, groups=5)


def test_fragments_through_a_dask_cluster(tmp_path, capsys, merged):
    """The fragment plan and each group's part with its fragments as Dask tasks (a threaded cluster)."""
    path = _fragmented(tmp_path, "whole", _ipv4_fragments, lambda parts: parts[::-1])
    inside = _datagram_cuts(read_frames(path))
    files = split_capture(path, tmp_path / "ring", [inside[len(inside) // 3], inside[2 * len(inside) // 3]])
    batch_equals_single(tmp_path, capsys, merged, files, groups=3, workers=2)


def test_files_whose_times_interleave(tmp_path, capsys, merged):
    """Frames dealt at random to three files (two mirror ports): fragments of one datagram in
    several files, numbered by bisection."""
    path = _fragmented(tmp_path, "whole", _ipv4_fragments, lambda parts: parts[::-1])
    files = deal_capture(path, tmp_path / "dealt", 3, seed=7)
    batch_equals_single(tmp_path, capsys, merged, files, groups=3)


# -- SPAN copies ---------------------------------------------------------------------------------


def _doubled_capture(tmp_path, frames: list[RawFrame], shape: str):
    if shape == "routed":
        doubled = _doubled(frames, lambda index: 0.0002, _routed)
    else:
        jitter = random.Random(25)
        delays = [jitter.uniform(0.00005, 0.0009) for _frame in frames]
        doubled = _doubled(frames, lambda index: delays[index])
    return write_pcap(tmp_path / f"{shape}.pcap", doubled, nano=True)


@pytest.mark.parametrize("shape", ["jittered", "routed"])
@pytest.mark.parametrize("cut", [_ipv4_fragments, _ipv6_fragments, None], ids=["ipv4-fragments", "ipv6-fragments",
                                                                                  "whole-segments"])
def test_span_copies_once(tmp_path, capsys, merged, shape, cut):
    if cut is None:
        frames = [RawFrame(float(f.ts), f.data, f.link_type) for f in read_frames(FIXTURES / "store_dcmtk.pcapng")]
    else:
        frames = _fragmented_frames(cut, slow_link=False)
    path = _doubled_capture(tmp_path, frames, shape)
    assert _groups_hit(path, 5) > 1
    single = analyze_path(path)
    expected, analysis = batch_equals_single(tmp_path, capsys, merged, [path], groups=5)
    assert analysis.span_duplicates == single.span_duplicates > 0
    (note,) = [item for item in expected["expert"] if item["code"] == "capture.span_duplicates"]
    assert note["message"].startswith(f"{single.span_duplicates} frame(s)")


def test_span_copies_across_ring_files(tmp_path, capsys, merged):
    frames = _fragmented_frames(_ipv4_fragments, slow_link=True)
    path = _doubled_capture(tmp_path, frames, "jittered")
    files = split_capture(path, tmp_path / "ring", random_cuts(path, 4, seed=3))
    single = analyze_path(path)
    _expected, analysis = batch_equals_single(tmp_path, capsys, merged, files, groups=3)
    assert analysis.span_duplicates == single.span_duplicates > 0


# -- frames without a time of their own -------------------------------------------------------------


@pytest.mark.parametrize("ring", [False, True], ids=["one-file", "ring-files"])
def test_simple_packet_block_frames(tmp_path, capsys, merged, ring):
    frames = [RawFrame(float(f.ts), f.data, f.link_type) for f in read_frames(FIXTURES / "store_dcmtk.pcapng")]
    path = tmp_path / "spb.pcapng"
    first = {id(frame) for frame in frames[:3]}
    _pcapng_with_simple_blocks(path, frames, lambda frame: _from_server(frame) or id(frame) in first)
    files = split_capture(path, tmp_path / "ring", [len(frames) // 3, 2 * len(frames) // 3]) if ring else [path]
    single = analyze_path(path)
    expected, analysis = batch_equals_single(tmp_path, capsys, merged, files)
    assert list(analysis.untimed_frames) == list(single.untimed_frames)
    assert expected["capture"]["untimed_frames"] == len(single.untimed_frames) > 3
    assert any(exchange["response_time"] is None for exchange in expected["timing"]["exchanges"])


# -- notes the single pass caps over the whole capture ---------------------------------------------


def test_connections_on_a_dicom_port_that_are_not_dicom(tmp_path, capsys, merged):
    """25 HTTP connections on port 11112 (the recorded http_dicom_file fixture, again on other client
    ports): the single pass lists the first 20, the 20th saying more are not listed; so must the batch,
    whose groups each list their own."""
    from capture_tools import rebuild, tcp_of

    frames = read_frames(FIXTURES / "http_dicom_file.pcap")
    span = frames[-1].ts - frames[0].ts + 1
    many = []
    for copy in range(25):
        for frame in frames:
            tcp = tcp_of(frame)[2]
            port = 40000 + copy
            ts = frame.ts + copy * span
            many.append(rebuild(frame, sport=port, ts=ts) if tcp.dport == 11112 else rebuild(frame, dport=port, ts=ts))
    path = write_pcap(tmp_path / "http.pcap", many)
    assert _groups_hit(path, 5) == 5
    expected, _analysis = batch_equals_single(tmp_path, capsys, merged, [path], groups=5)
    notes = [item["message"] for item in expected["expert"] if item["code"] == "capture.not_dicom_on_dicom_port"]
    assert len(notes) == 20 and notes[-1].endswith("(more such connections are not listed)")


def test_the_fragment_plan_column_wise_is_the_plan_row_by_row(tmp_path):
    """``fragments.plan_fragments`` (numpy) gives each fragment the group the row-by-row plan gives:
    one file, ring files, interleaving files, a datagram without its first fragment."""
    from dicomtui.batch import fragments, split

    whole = _fragmented(tmp_path, "whole", _ipv4_fragments, lambda parts: parts[::-1])
    dropped = _fragmented(tmp_path, "dropped", _ipv6_fragments,
                          lambda parts: random.Random(len(parts)).sample(parts, len(parts)), drop_one=True)
    for files in ([whole], [dropped], split_capture(dropped, tmp_path / "ring", random_cuts(dropped, 5, seed=3)),
                  deal_capture(whole, tmp_path / "dealt", 3, seed=7)):
        for groups in (1, 3, 7):
            results = [split.index_file(i, str(path), groups, str(tmp_path), "hash") for i, path in enumerate(files)]
            summaries = [result["summary"] for result in results]
            bases, overlaps = split.numbering_plan(summaries)
            keys = {summary.index: result["keys"] for summary, result in zip(summaries, results)}
            parts = {summary.index: result["fragments"] for summary, result in zip(summaries, results)
                     if summary.fragments}
            assert parts
            plan = fragments.plan_fragments(summaries, parts, bases, keys, groups)
            overlapping = {index: {other: keys[other] for other in overlaps.get(index, [])} for index in parts}
            assert plan == fragments._plan_rows(parts, bases, overlapping, groups)
            assert all(0 <= group < groups for groups_of in plan.values() for group in groups_of)
