"""Decoding of the real-peer fixtures: negotiation, DIMSE, pairing, data sets, guesses."""

import io
import json
import subprocess
import sys

import pydicom
import pytest
from capture_tools import FIXTURES, data_frame_indices, read_frames, write_pcap
from conftest import analyze_path

from dicomtui.cli import main
from dicomtui.core.protocol.dimse import decode_command_set

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def test_negotiation_items_are_all_decoded(analyze_fixture):
    analysis = analyze_fixture("negotiation_pynetdicom.pcap")
    association = analysis.associations[0]
    assert (association.calling_ae, association.called_ae) == ("NEGOSCU", "NEGOSCP")
    assert association.async_window == (5, 5)
    assert association.roles[CT_IMAGE_STORAGE] == (True, True)
    assert association.user_identity["primary"] == "dicomtui"
    assert association.user_identity["passcode"] == "********"
    assert association.user_identity["server_response_length"] == len(b"server-response")
    rq = analysis.decode_pdu(analysis.pdus[association.request_pdu])
    assert rq.user.extended_negotiation and rq.user.common_extended_negotiation
    text = rq.tree.render_text()
    assert "relational-queries=yes" in text
    assert "Related general SOP class: Enhanced CT Image Storage" in text
    ac = analysis.decode_pdu(analysis.pdus[association.response_pdu])
    assert ac.user.user_identity_response == b"server-response"
    assert "User identity response (0x59)" in ac.tree.render_text()


def test_passcode_never_appears_in_any_output(tmp_path, capsys):
    path = str(FIXTURES / "negotiation_pynetdicom.pcap")
    passcode = b"s3cret"  # what fixtures/peers/negotiation.py sends
    assert passcode in (FIXTURES / "negotiation_pynetdicom.pcap").read_bytes()
    for mode in (["--summary"], ["--json"], ["--expert"]):
        main([*mode, path])
        assert passcode.decode() not in capsys.readouterr().out


def test_response_pairing_times_and_sub_operations(analyze_fixture):
    analysis = analyze_fixture("qr_pynetdicom.pcap")
    messages = analysis.messages
    find = next(m for m in messages if m.command_name == "C-FIND-RQ")
    responses = [messages[i] for i in find.responses]
    assert [r.status for r in responses] == [0xFF00, 0xFF00, 0xFF00, 0x0000]
    assert all(r.request == find.index and r.response_time is not None and r.response_time >= 0
               for r in responses)
    move = next(m for m in messages if m.command_name == "C-MOVE-RQ")
    final = messages[move.responses[-1]]
    assert final.status == 0 and final.command["NumberOfCompletedSuboperations"] == 2
    assert final.command["NumberOfFailedSuboperations"] == 0
    unknown = [m for m in messages if m.command_name == "C-MOVE-RSP" and m.status == 0xA801]
    assert len(unknown) == 1
    category, meaning = analysis.status_meaning(unknown[0].command_field, unknown[0].status)
    assert (category, meaning) == ("failure", "Refused: Move destination unknown")


def test_move_sub_association_is_linked_to_its_move(analyze_fixture):
    analysis = analyze_fixture("qr_pynetdicom.pcap")
    move = next(m for m in analysis.messages if m.command_name == "C-MOVE-RQ"
                and m.command.get("MoveDestination") == "STORESCP")
    sub = [a for a in analysis.associations if a.parent_move is not None]
    assert len(sub) == 1
    assert sub[0].parent_move == move.index
    assert (sub[0].calling_ae, sub[0].called_ae) == ("QRSCP", "STORESCP")
    stores = [m for m in analysis.messages if m.association == sub[0].index and m.command_name == "C-STORE-RQ"]
    assert len(stores) == 2
    assert all(m.command["MoveOriginatorMessageID"] == move.message_id for m in stores)


def test_get_negotiates_roles_and_stores_on_the_same_association(analyze_fixture):
    analysis = analyze_fixture("qr_pynetdicom.pcap")
    get = next(m for m in analysis.messages if m.command_name == "C-GET-RQ")
    association = analysis.associations[get.association]
    assert any(scp for _scu, scp in association.roles.values())
    stores = [m for m in analysis.messages if m.association == association.index and m.command_name == "C-STORE-RQ"]
    assert stores and all(m.direction == 1 for m in stores)  # the SCP stores back to the requester
    assert analysis.messages[get.responses[-1]].command["NumberOfCompletedSuboperations"] == 1


def test_reject_and_abort_states(analyze_fixture):
    analysis = analyze_fixture("reject_abort.pcap")
    states = [(a.calling_ae, a.state) for a in analysis.associations]
    assert ("REJSCU", "rejected") in states
    assert ("ABORTSCU", "aborted") in states
    rejected = next(a for a in analysis.associations if a.state == "rejected")
    assert "called-AE-title-not-recognized" in rejected.end_reason
    context_rejected = next(a for a in analysis.associations if a.calling_ae == "CTXSCU")
    results = sorted(c.result for c in context_rejected.contexts.values())
    assert results[0] == 0 and 3 in results
    statuses = {m.status for m in analysis.messages if m.command_name == "C-STORE-RSP"}
    assert {0xA700, 0xC000, 0xB000, 0x0000} <= statuses
    failure = next(m for m in analysis.messages if m.status == 0xA700)
    assert "disk full" in failure.command["ErrorComment"]


@pytest.mark.parametrize("name", ["echo_dcmtk.pcap", "store_dcmtk.pcapng", "qr_pynetdicom.pcap",
                                  "negotiation_pynetdicom.pcap", "reject_abort.pcap"])
def test_command_set_decoder_agrees_with_pydicom(analyze_fixture, name):
    analysis = analyze_fixture(name)
    assert analysis.messages
    for message in analysis.messages:
        if not message.command_bytes:
            continue
        fields, _tree = decode_command_set(message.command_bytes)
        reference = pydicom.filereader.read_dataset(io.BytesIO(message.command_bytes), True, True)
        for element in reference:
            value = element.value
            ours = fields[element.keyword]
            if element.VR in ("UI", "AE", "LO", "SH", "CS"):
                assert ours == str(value).strip()
            elif element.VR in ("US", "UL"):
                assert ours == value
            elif element.VR == "AT":
                tags = list(value) if element.VM > 1 else [value]
                assert ours == [f"({int(t) >> 16:04X},{int(t) & 0xFFFF:04X})" for t in tags]


def test_every_transfer_syntax_decodes_cleanly(analyze_fixture):
    analysis = analyze_fixture("store_ts_pynetdicom.pcap")
    seen = set()
    for message in analysis.messages:
        if message.command_name != "C-STORE-RQ":
            continue
        decoded = analysis.decode_dataset(message)
        assert decoded is not None and decoded.problems == [], (message.transfer_syntax, decoded.problems)
        assert decoded.dataset.SOPInstanceUID == message.affected_sop_instance
        seen.add(message.transfer_syntax)
        text = decoded.tree.render_text()
        if pydicom.uid.UID(message.transfer_syntax).is_encapsulated:
            assert "encapsulated" in text and "Fragment 1" in text
        if message.transfer_syntax == "1.2.840.10008.1.2.1.99":
            assert decoded.inflated
    assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
            "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80",
            "1.2.840.10008.1.2.5"} <= seen | {"1.2.840.10008.1.2"}
    assert len(seen) == 8


def test_midway_pickup_guesses_the_transfer_syntax(tmp_path, analyze_fixture):
    full = analyze_fixture("store_ts_pynetdicom.pcap")
    frames = read_frames(FIXTURES / "store_ts_pynetdicom.pcap")
    cut = data_frame_indices(frames)[2]  # after A-ASSOCIATE-RQ/AC: nothing negotiated is known
    analysis = analyze_path(write_pcap(tmp_path / "late.pcap", frames[cut:]))
    association = analysis.associations[0]
    assert association.picked_up_midway
    stores = [m for m in analysis.messages if m.command_name == "C-STORE-RQ" and m.complete]
    assert stores and all(m.syntax_guessed for m in stores)
    originals = {m.affected_sop_instance + str(m.message_id): m for m in full.messages
                 if m.command_name == "C-STORE-RQ"}
    for message in stores:
        original = originals[message.affected_sop_instance + str(message.message_id)]
        plain = pydicom.uid.UID(original.transfer_syntax)
        if plain.is_deflated or plain.is_encapsulated:
            continue  # a guess from the bytes cannot tell these apart from explicit VR LE
        assert pydicom.uid.UID(message.transfer_syntax).is_implicit_VR == plain.is_implicit_VR
        assert pydicom.uid.UID(message.transfer_syntax).is_little_endian == plain.is_little_endian
        decoded = analysis.decode_dataset(message)
        assert decoded.guessed and decoded.problems == []
    assert any(item.rule == "rules.capture" for item in analysis.expert)


def test_summary_lines_read_like_wiresharks_info_column(analyze_fixture):
    from dicomtui.core.views import summary_lines

    lines = list(summary_lines(analyze_fixture("store_dcmtk.pcapng")))
    assert "A-ASSOCIATE request MODALITY --> STORESCP" in lines[0]
    assert "A-ASSOCIATE accept  MODALITY <-- STORESCP" in lines[1]
    assert any("P-DATA, C-STORE-RQ ID=1 CT Image Storage" in line for line in lines)
    assert any("P-DATA, C-STORE-RSP ID=1 (Success)" in line for line in lines)
    assert "A-RELEASE response" in lines[-1]


def test_json_document_has_the_documented_shape():
    output = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--json", "-r",
                             str(FIXTURES / "qr_pynetdicom.pcap")], capture_output=True, check=True).stdout
    document = json.loads(output)
    assert document["format_version"] == 1
    for key in ("capture", "connections", "associations", "pdus", "messages", "expert"):
        assert key in document
    association = document["associations"][0]
    for key in ("id", "client", "server", "calling_ae", "called_ae", "contexts", "state"):
        assert key in association
    assert association["contexts"][0]["transfer_syntax_name"] == "Implicit VR Little Endian"
    message = next(m for m in document["messages"] if m["command"] == "C-MOVE-RSP" and m["status"] == 0xA801)
    assert message["status_category"] == "failure"
    assert message["response_time"] is not None and message["request"] is not None
    assert {"frames", "association", "type", "length", "summary"} <= set(document["pdus"][0])
    assert {"frame", "severity", "message"} <= set(document["expert"][0])

