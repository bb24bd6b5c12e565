"""Expert rules on captures edited from the real echo_dcmtk.pcap frames.

Each variant changes one thing a real exchange could do (a slow or missing
response, a rejection, an abort, a close without release, a smaller negotiated
PDU, an association picked up midway) and checks that exactly the expected rule
fires, at the expected frame, with the expected severity.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest
from capture_tools import FIXTURES, read_frames, rebuild, write_pcap
from conftest import analyze_path

from dicomtui.core.model import Group, Message, Severity

ECHO = FIXTURES / "echo_dcmtk.pcap"
# echo_dcmtk.pcap frames (1-based): 4 A-ASSOCIATE-RQ, 6 -AC, 8-10 C-ECHO-RQ 1, 12-14 C-ECHO-RSP 1,
# 16-18 C-ECHO-RQ 2, 20-22 C-ECHO-RSP 2, 24 A-RELEASE-RQ, 25 -RP, 26-28 FIN/ACK.


def _frames():
    return read_frames(ECHO)


def _items(analysis, rule: str):
    return [item for item in analysis.expert if item.rule == rule]


def _write(tmp_path, name, frames):
    return write_pcap(tmp_path / name, frames)


@pytest.fixture(scope="module")
def echo(plugin_host):
    return analyze_path(ECHO, plugin_host)


def test_clean_echo_has_only_chat_milestones(echo):
    rules = [item for item in echo.expert if item.rule.startswith("rules.")]
    assert [(item.severity, item.frame) for item in rules] == [(Severity.CHAT, 6), (Severity.CHAT, 25)]
    assert "established" in rules[0].message and "released normally" in rules[1].message
    assert not [item for item in echo.expert if item.severity > Severity.CHAT and item.rule != "plugins"]


def test_slow_response_is_a_performance_warning_at_the_response(tmp_path, plugin_host):
    frames = _frames()
    shifted = frames[:11] + [rebuild(frame, ts=frame.ts + 10.0) for frame in frames[11:]]
    path = _write(tmp_path, "slow.pcap", shifted)
    analysis = analyze_path(path, plugin_host)
    slow = _items(analysis, "rules.timing")
    assert len(slow) == 1
    item = slow[0]
    assert (item.severity, item.group, item.frame) == (Severity.WARNING, Group.PERFORMANCE, 12)
    assert "C-ECHO-RSP" in item.message and "10.0" in item.message and "threshold 5 s" in item.message
    assert analysis.messages[item.message_index].command_name == "C-ECHO-RSP"
    relaxed = analyze_path(path, plugin_host, options={"slow_response_seconds": "20"})
    assert not _items(relaxed, "rules.timing")
    strict = analyze_path(path, plugin_host, options={"slow_response_seconds": "9.5"})
    assert [item.frame for item in _items(strict, "rules.timing")] == [12]


def test_unparsable_option_falls_back_to_the_default(plugin_host):
    analysis = analyze_path(ECHO, plugin_host, options={"slow_response_seconds": "soon"})
    assert not _items(analysis, "rules.timing")
    assert not [item for item in analysis.expert if item.group is Group.PLUGIN and "rules." in item.message]


def test_request_cut_by_the_end_of_the_capture_is_a_note(tmp_path, plugin_host):
    analysis = analyze_path(_write(tmp_path, "cut.pcap", _frames()[:11]), plugin_host)
    unanswered = _items(analysis, "rules.timing")
    assert len(unanswered) == 1
    assert (unanswered[0].severity, unanswered[0].frame) == (Severity.NOTE, 10)
    assert "never answered" in unanswered[0].message and "capture ended" in unanswered[0].message
    still_open = _items(analysis, "rules.capture")
    assert len(still_open) == 1 and still_open[0].severity is Severity.NOTE
    assert "still open when the capture ended" in still_open[0].message
    # no "closed without A-RELEASE": nothing closed it
    assert not _items(analysis, "rules.protocol")


def test_provider_abort_instead_of_a_response(tmp_path, plugin_host):
    frames = _frames()
    abort = struct.pack(">BBIBBBB", 7, 0, 4, 0, 0, 2, 2)  # service-provider, unexpected-PDU
    analysis = analyze_path(_write(tmp_path, "abort.pcap", frames[:11] + [rebuild(frames[11], payload=abort)]),
                            plugin_host)
    aborted = [item for item in _items(analysis, "rules.association") if "aborted" in item.message]
    assert len(aborted) == 1
    item = aborted[0]
    assert (item.severity, item.group, item.frame) == (Severity.WARNING, Group.SEQUENCE, 12)
    assert "aborted by the acceptor STORESCP (A-ABORT from its DICOM stack (service-provider): unexpected-PDU)" \
        in item.message
    assert "PDU that arrived just before" in item.message
    unanswered = _items(analysis, "rules.timing")
    assert len(unanswered) == 1 and unanswered[0].severity is Severity.WARNING
    assert "the acceptor STORESCP aborted the association (frame 12)" in unanswered[0].message
    assert unanswered[0].frame == 10 and "responder aborted instead of answering" in unanswered[0].message


@pytest.mark.parametrize(
    ("result", "source", "reason", "words", "advice"),
    [
        (1, 1, 3, "calling-AE-title-not-recognized", "does not know the calling AE title 'ECHOSCU'"),
        (1, 1, 7, "called-AE-title-not-recognized", "does not answer to the called AE title 'STORESCP'"),
        (2, 3, 2, "local-limit-exceeded", "a retry may succeed"),
        (1, 1, 1, "no-reason-given", "check AE titles, host names or IP addresses"),
    ],
)
def test_rejection_in_words_with_what_to_check(tmp_path, plugin_host, result, source, reason, words, advice):
    frames = _frames()
    reject = struct.pack(">BBIBBBB", 3, 0, 4, 0, result, source, reason)
    analysis = analyze_path(_write(tmp_path, "rj.pcap", frames[:5] + [rebuild(frames[5], payload=reject)]),
                            plugin_host)
    rejected = _items(analysis, "rules.association")
    assert len(rejected) == 1
    item = rejected[0]
    assert (item.severity, item.group, item.frame) == (Severity.ERROR, Group.NEGOTIATION, 6)
    assert "ECHOSCU → STORESCP rejected" in item.message
    assert words in item.message and advice in item.message
    # the request that was never answered is not reported as a DIMSE problem
    assert not _items(analysis, "rules.timing")


def test_association_request_without_answer_then_close(tmp_path, plugin_host):
    frames = _frames()
    # RQ, then the server closes: its FIN (frame 27) with seq rewound past the AC it never sent
    fin = rebuild(frames[26], seq_shift=-(190 + 2 * 78 + 2 * 12 + 10), ack_shift=-(2 * 80 + 10 + 1))
    analysis = analyze_path(_write(tmp_path, "noanswer.pcap", frames[:5] + [fin]), plugin_host)
    items = _items(analysis, "rules.protocol")
    assert len(items) == 1
    assert items[0].severity is Severity.ERROR and items[0].frame == 6
    assert "never answered" in items[0].message and "listens on this port" in items[0].message


def test_close_without_release(tmp_path, plugin_host):
    frames = _frames()
    tail = [rebuild(frame, seq_shift=-10, ack_shift=-10) for frame in frames[25:]]
    analysis = analyze_path(_write(tmp_path, "norelease.pcap", frames[:23] + tail), plugin_host)
    items = _items(analysis, "rules.protocol")
    assert len(items) == 1
    item = items[0]
    assert (item.severity, item.group, item.frame) == (Severity.WARNING, Group.SEQUENCE, 26)
    assert "closed (TCP FIN) without A-RELEASE" in item.message
    assert not [i for i in _items(analysis, "rules.association") if "released normally" in i.message]


def test_pdu_larger_than_the_negotiated_maximum(tmp_path, plugin_host):
    frames = _frames()
    accept = bytearray(rebuild(frames[5]).data)
    payload_start = len(accept) - 190
    position = accept.index(b"\x51\x00\x00\x04", payload_start)
    accept[position + 4 : position + 8] = struct.pack(">I", 64)  # the acceptor now receives at most 64 bytes
    frames[5] = rebuild(frames[5], payload=bytes(accept[payload_start:]))
    analysis = analyze_path(_write(tmp_path, "maxpdu.pcap", frames), plugin_host)
    items = _items(analysis, "rules.protocol")
    assert len(items) == 1
    item = items[0]
    assert (item.severity, item.group, item.frame) == (Severity.ERROR, Group.PROTOCOL, 10)
    assert "74 bytes from the requestor ECHOSCU exceeds the maximum length 64" in item.message
    assert "(2 such PDUs)" in item.message


def test_association_picked_up_midway_is_a_capture_note(tmp_path, plugin_host):
    frames = _frames()
    analysis = analyze_path(_write(tmp_path, "midway.pcap", frames[7:]), plugin_host)
    notes = _items(analysis, "rules.capture")
    assert len(notes) == 1
    assert notes[0].severity is Severity.NOTE and "began before the capture" in notes[0].message
    assert not [item for item in analysis.expert if item.rule.startswith("rules.")
                and item.severity >= Severity.WARNING]


# -- rules on model objects (what the fixtures cannot show) -------------------------------------


def test_dataset_that_does_not_parse_is_malformed(plugin_host):
    from dicomtui.plugins.dataset import DecodedDataset
    from dicomtui.plugins.rules import protocol

    problems = ["data set does not parse as Explicit VR Little Endian: EOFError: ran out"]
    message = Message(index=3, association=0, connection=0, direction=0, context_id=1, command_field=1,
                      command_name="C-STORE-RQ", has_dataset=True, dataset_length=100, first_frame=7,
                      last_frame=9, transfer_syntax="1.2.840.10008.1.2.1")
    association = SimpleNamespace(calling_ae="MODALITY", called_ae="PACS",
                                  contexts={1: SimpleNamespace(abstract_syntax="1.2.840.10008.5.1.4.1.1.2")})
    added = []

    class FakeAnalysis:  # hashable and weak-referenceable, like Analysis
        config = SimpleNamespace(option=lambda name, default=None: default)
        associations = [association]

        def decode_dataset(self, m, max_bytes=None):
            return DecodedDataset(None, None, m.transfer_syntax, False, False, list(problems))

    analysis = FakeAnalysis()
    report = SimpleNamespace(add=lambda *args, **keywords: added.append(args + (keywords.get("code"),)))
    protocol.dicomtui_check_message(message, analysis, report)
    assert len(added) == 1
    severity, group, text, frame = added[0][:4]
    assert added[0][-1] == "protocol.dataset_unparsable"
    assert (severity, group, frame) == (Severity.ERROR, Group.MALFORMED, 9)
    assert "CT Image Storage" in text and "Explicit VR Little Endian" in text and "EOFError" in text
    message.dataset_length = 2 << 20  # over the size bound: not decoded at all
    FakeAnalysis.decode_dataset = lambda self, m: pytest.fail("decoded a data set over the bound")
    protocol.dicomtui_check_message(message, analysis, report)
    assert len(added) == 1


def test_query_hints_name_spaces_wildcards_and_components():
    from dicomtui.plugins.rules.query import _values, query_hints

    hints, severity = query_hints([("PatientID", "LO", _values("123  "))])
    assert severity is Severity.WARNING and "PatientID '123  ' has leading or trailing spaces" in hints[0]
    hints, severity = query_hints([("StudyInstanceUID", "UI", ["1.2.3*"]), ("StudyDate", "DA", ["2024*"])])
    assert severity is Severity.WARNING
    assert "not defined for VR UI" in hints[0] and "list matching" in hints[0]
    assert "not defined for VR DA" in hints[1] and "range" in hints[1]
    hints, severity = query_hints([("PatientName", "PN", ["DOE^JOHN"])])
    assert severity is Severity.NOTE and "'^' components" in hints[0] and "'DOE*'" in hints[0]
    hints, severity = query_hints([("PatientName", "PN", ["DOE*"]), ("PatientID", "LO", ["1"]),
                                   ("StudyDate", "DA", ["20240101"])])
    assert severity is Severity.NOTE and "over-defined" in hints[0]
    assert query_hints([("PatientName", "PN", ["NOBODY*"])]) == ([], Severity.NOTE)
    assert _values("A ") == ["A"] and _values("AB") == ["AB"] and _values("A\\B ") == ["A", "B"]
