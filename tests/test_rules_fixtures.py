"""Expert rules on the real peer captures in fixtures/ (see fixtures/README.md).

Frames are checked against the decoded model (the PDU or message the rule is
about), so the tests hold when the fixtures are re-recorded.
"""

from __future__ import annotations

import pytest
from capture_tools import FIXTURES, read_frames, rebuild, tcp_of, write_pcap
from conftest import analyze_path

from dicomtui.core.model import Group, Severity

CLEAN = ["echo_dcmtk.pcap", "store_dcmtk.pcapng", "store_ts_pynetdicom.pcap", "negotiation_pynetdicom.pcap",
         "store_oddport.pcap", "store_large_segments.pcap"]


def rule_items(analysis, minimum=Severity.NOTE):
    return [item for item in analysis.expert if item.rule.startswith("rules.") and item.severity >= minimum]


def association_of(analysis, calling):
    return next(association for association in analysis.associations if association.calling_ae == calling)


def pdu_of(analysis, association, pdu_type):
    return next(pdu for pdu in analysis.pdus if pdu.association == association.index and pdu.pdu_type == pdu_type)


@pytest.mark.parametrize("name", CLEAN)
def test_rules_stay_quiet_on_clean_captures(analyze_fixture, name):
    analysis = analyze_fixture(name)
    assert rule_items(analysis) == []
    assert not [item for item in analysis.expert if item.group is Group.PLUGIN and "rules." in item.message]
    chat = [item for item in analysis.expert if item.rule == "rules.association"]
    assert len(chat) == 2 * len(analysis.associations)  # established + released, nothing more


# -- reject_abort.pcap ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def reject_abort(analyze_fixture):
    return analyze_fixture("reject_abort.pcap")


def test_rejected_association_names_reason_and_the_called_ae(reject_abort):
    association = association_of(reject_abort, "REJSCU")
    items = [item for item in rule_items(reject_abort) if item.association == association.index]
    assert len(items) == 1
    item = items[0]
    assert (item.severity, item.group, item.rule) == (Severity.ERROR, Group.NEGOTIATION, "rules.association")
    assert item.frame == pdu_of(reject_abort, association, 3).last_frame
    assert "rejected (rejected-permanent) by the DICOM UL service-user: called-AE-title-not-recognized" in item.message
    assert "called AE title 'WRONG-AET'" in item.message


def test_rejected_presentation_contexts_name_sop_class_and_reason(reject_abort):
    association = association_of(reject_abort, "CTXSCU")
    accept = pdu_of(reject_abort, association, 2)
    items = [item for item in rule_items(reject_abort) if item.association == association.index]
    assert len(items) == 2
    assert all((item.severity, item.group, item.frame) == (Severity.WARNING, Group.NEGOTIATION, accept.last_frame)
               for item in items)
    private, ct = sorted(items, key=lambda item: "CT Image" in item.message)
    assert "1.2.826.0.1.3680043.9.9999.1.1" in private.message
    assert "abstract-syntax-not-supported" in private.message and "does not support this SOP class" in private.message
    assert ct.message.startswith("no common transfer syntax for 1.2.840.10008.5.1.4.1.1.2 (CT Image Storage)")
    assert "JPEG 2000" in ct.message and "Implicit VR Little Endian" in ct.message


def test_requestor_abort_after_unanswered_store(reject_abort):
    association = association_of(reject_abort, "SLOWSCU")
    abort = pdu_of(reject_abort, association, 7)
    items = sorted((item for item in rule_items(reject_abort) if item.association == association.index),
                   key=lambda item: item.frame)
    assert [(item.rule, item.severity) for item in items] == [("rules.timing", Severity.WARNING),
                                                             ("rules.association", Severity.WARNING)]
    unanswered, aborted = items
    store = reject_abort.messages[unanswered.message_index]
    assert store.command_name == "C-STORE-RQ" and unanswered.frame == store.last_frame
    assert f"the requestor SLOWSCU aborted the association (frame {abort.last_frame})" in unanswered.message
    assert "timed out" in unanswered.message
    assert aborted.frame == abort.last_frame and "aborted by the requestor SLOWSCU" in aborted.message


def test_acceptor_abort_during_transfer(reject_abort):
    association = association_of(reject_abort, "ABORTSCU")
    abort = pdu_of(reject_abort, association, 7)
    aborted = [item for item in rule_items(reject_abort)
               if item.association == association.index and item.rule == "rules.association"]
    assert len(aborted) == 1 and aborted[0].frame == abort.last_frame
    assert "aborted by the acceptor DICOMTUI" in aborted[0].message


@pytest.mark.parametrize(
    ("message_id", "severity", "status", "comment"),
    [
        (1, Severity.ERROR, "0xA700", "'Out of resources: disk full (fixture)'"),
        (2, Severity.ERROR, "0xC000", "'Cannot understand: fixture rejects this data set'"),
        (3, Severity.WARNING, "0xB000", "'Coercion of data elements (fixture warning)'"),
    ],
)
def test_store_statuses_with_meaning_and_error_comment(reject_abort, message_id, severity, status, comment):
    association = association_of(reject_abort, "STATUSSCU")
    response = next(message for message in reject_abort.messages if message.association == association.index
                    and message.command_name == "C-STORE-RSP" and message.responded_to == message_id)
    items = [item for item in rule_items(reject_abort) if item.message_index == response.index]
    assert len(items) == 1
    item = items[0]
    assert (item.severity, item.group, item.rule) == (severity, Group.RESPONSE_STATUS, "rules.status")
    assert item.frame == response.last_frame
    assert f"status {status}" in item.message and f"Error Comment {comment}" in item.message
    assert " — " in item.message  # what to check next


def test_reject_abort_has_nothing_else(reject_abort):
    counts = {}
    for item in rule_items(reject_abort):
        counts[item.rule] = counts.get(item.rule, 0) + 1
    assert counts == {"rules.association": 5, "rules.timing": 2, "rules.status": 3}


def test_fail_on_reflects_the_worst_severity(tmp_path):
    from dicomtui.cli import main

    assert main(["--expert", "--fail-on", "error", str(FIXTURES / "reject_abort.pcap")]) == 4
    assert main(["--expert", "--fail-on", "warning", str(FIXTURES / "echo_dcmtk.pcap")]) == 0
    assert main(["--expert", "--fail-on", "chat", str(FIXTURES / "echo_dcmtk.pcap")]) == 4


# -- qr_pynetdicom.pcap ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def qr(analyze_fixture):
    return analyze_fixture("qr_pynetdicom.pcap")


def test_find_that_matched_nothing_gets_a_query_note(qr):
    items = [item for item in rule_items(qr) if item.rule == "rules.query"]
    assert len(items) == 2  # this one and the C-MOVE below
    note = next(item for item in items if item.group is Group.QUERY)
    request = qr.messages[note.message_index]
    assert request.command_name == "C-FIND-RQ" and len(request.responses) == 1
    assert note.severity is Severity.NOTE
    assert note.frame == qr.messages[request.responses[0]].last_frame
    assert "matched nothing" in note.message and "PatientName='NOBODY*'" in note.message
    finds = [message for message in qr.messages if message.command_name == "C-FIND-RQ"]
    assert len(finds) == 2  # the query with matches got no item


def test_move_destination_unknown(qr):
    items = [item for item in rule_items(qr) if item.group is Group.RESPONSE_STATUS]
    assert len(items) == 1  # rules.status leaves 0xA801 to rules.query
    item = items[0]
    response = qr.messages[item.message_index]
    assert (item.severity, item.rule, response.status) == (Severity.ERROR, "rules.query", 0xA801)
    assert item.frame == response.last_frame
    assert "move destination 'NOWHERE' is unknown to QRSCP" in item.message
    assert "configure the AE title 'NOWHERE'" in item.message


def test_move_without_captured_sub_association(tmp_path, plugin_host):
    frames = [frame for frame in read_frames(FIXTURES / "qr_pynetdicom.pcap")
              if 11113 not in (tcp_of(frame)[2].sport, tcp_of(frame)[2].dport)]
    analysis = analyze_path(write_pcap(tmp_path / "nosub.pcap", frames), plugin_host)
    notes = [item for item in rule_items(analysis) if item.group is Group.CAPTURE]
    assert len(notes) == 1 and notes[0].severity is Severity.NOTE
    assert "to 'STORESCP' completed 2 sub-operation(s)" in notes[0].message
    assert "capture at the Q/R SCP's end" in notes[0].message


# -- edited real traffic --------------------------------------------------------------------


def test_data_set_in_another_syntax_than_negotiated(tmp_path, plugin_host):
    """store_dcmtk with the negotiation rewritten to Implicit VR LE; the data sets stay explicit."""
    frames = []
    for frame in read_frames(FIXTURES / "store_dcmtk.pcapng"):
        parts = tcp_of(frame)
        if parts and bytes(parts[2].data[:1]) in (b"\x01", b"\x02"):
            frame = rebuild(frame, payload=bytes(parts[2].data).replace(b"1.2.840.10008.1.2.1",
                                                                       b"1.2.840.10008.1.2\0\0"))
        frames.append(frame)
    analysis = analyze_path(write_pcap(tmp_path / "wrong_ts.pcap", frames), plugin_host)
    items = rule_items(analysis)
    stores = [message for message in analysis.messages if message.command_name == "C-STORE-RQ"]
    assert len(items) == len(stores) == 3
    for item, store in zip(items, stores):
        assert (item.severity, item.group, item.rule) == (Severity.ERROR, Group.MALFORMED, "rules.protocol")
        assert item.frame == store.last_frame and item.message_index == store.index
        assert "encoded in explicit VR" in item.message and "Implicit VR Little Endian" in item.message
