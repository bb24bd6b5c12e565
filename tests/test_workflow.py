"""The workflow across associations (issue 26) on the captures of fixtures/record_workflow.py.

pynetdicom played modality, archive and RIS (fixtures/peers/scenarios_workflow.py); each
failure sites hit has its own capture, one where everything goes well must yield no
workflow finding, and wf_mixed holds all of them at once with seven modalities.  UIDs are
fixed by the recorder: ROOT.N is exam N's study, ROOT.N.8 its Transaction UID, ROOT.N.9
its MPPS instance, ROOT.N.1.K its K-th image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from capture_tools import FIXTURES, read_frames, tcp_of, write_pcap
from conftest import analyze_path
from dicomtui.core.model import Severity

ROOT = "1.2.826.0.1.3680043.8.498.26"


def workflow_items(analysis, code=None):
    return [item for item in analysis.expert if item.code.startswith("workflow.")
            and (code is None or item.code == code)]


def commitment(analysis, number):
    return next(c for c in analysis.workflow.commitments if c.transaction_uid == f"{ROOT}.{number}.8")


def procedure(analysis, number):
    return next(p for p in analysis.workflow.procedures if p.sop_instance_uid == f"{ROOT}.{number}.9")


def test_all_good_links_everything_and_reports_nothing(analyze_fixture):
    analysis = analyze_fixture("wf_all_good.pcap")
    assert workflow_items(analysis) == []
    found = commitment(analysis, 1)
    images = [f"{ROOT}.1.1.1", f"{ROOT}.1.1.2"]
    assert (found.state, sorted(found.committed), found.failed) == ("committed", images, [])
    request, report = analysis.messages[found.request], analysis.messages[found.reports[0]]
    assert request.command_name == "N-ACTION-RQ" and report.command_name == "N-EVENT-REPORT-RQ"
    # the report came on the association the archive opened to the modality's SCP
    reverse = analysis.associations[report.association]
    assert (reverse.calling_ae, reverse.called_ae) == ("ARCHIVE", "MODALITY")
    assert report.association != request.association and found.time_to_commit > 0
    step = procedure(analysis, 1)
    assert (step.final_status, step.performed_instances, step.accession_number) == ("COMPLETED", images, "ACC001")
    assert step.time_to_complete > 0
    [item] = analysis.workflow.worklist
    assert (item.accession_number, item.study_instance_uid, sorted(item.stored)) == ("ACC001", f"{ROOT}.1", images)
    assert [analysis.messages[index].command_name for index in item.stores] == ["C-STORE-RQ"] * 2


def test_commitment_never_reported_is_a_note_before_the_wait_and_a_warning_after(analyze_fixture):
    analysis = analyze_fixture("wf_commit_unanswered.pcap")
    assert commitment(analysis, 2).state == "unanswered"
    [item] = workflow_items(analysis)
    assert (item.code, item.severity) == ("workflow.commitment_unanswered", Severity.NOTE)
    assert "commitment_wait_seconds" in item.message
    waited = analyze_path(FIXTURES / "wf_commit_unanswered.pcap", options={"commitment_wait_seconds": "0"})
    [item] = workflow_items(waited)
    assert (item.code, item.severity) == ("workflow.commitment_unanswered", Severity.WARNING)
    assert "only means the request was accepted" in item.message


def test_report_connection_refused_by_the_modality(analyze_fixture):
    analysis = analyze_fixture("wf_commit_reverse_refused.pcap")
    [attempt] = analysis.connection_attempts
    assert (attempt.outcome, attempt.server) == ("refused", "127.0.0.10:26011")
    found = commitment(analysis, 3)
    assert found.state == "reverse_refused" and found.reverse.frame == attempt.first_frame
    [item] = workflow_items(analysis)
    assert (item.code, item.severity, item.frame) == ("workflow.commitment_reverse_refused", Severity.ERROR,
                                                      attempt.first_frame)
    assert "127.0.0.10:26011" in item.message and "SCP is running" in item.message


def test_report_connection_whose_syn_went_unanswered(tmp_path):
    """The refused capture with the modality's RST taken out: the archive's SYN went unanswered (as
    behind a firewall that drops), so the commitment is unanswered and the finding names the attempt."""
    frames = read_frames(FIXTURES / "wf_commit_reverse_refused.pcap")
    kept = [frame for frame in frames if not tcp_of(frame)[2].flags & 0x04]  # no RST
    assert len(kept) == len(frames) - 1
    analysis = analyze_path(write_pcap(tmp_path / "dropped.pcap", kept),
                            options={"commitment_wait_seconds": "0"})
    [attempt] = analysis.connection_attempts
    assert attempt.outcome == "unanswered"
    found = commitment(analysis, 3)
    assert (found.state, found.reverse.outcome) == ("unanswered", "unanswered")
    [item] = workflow_items(analysis)
    assert item.code == "workflow.commitment_unanswered" and "SYN unanswered" in item.message


def test_report_association_rejected_for_its_ae_title(analyze_fixture):
    analysis = analyze_fixture("wf_commit_reverse_rejected.pcap")
    found = commitment(analysis, 4)
    assert (found.state, found.reverse.outcome) == ("reverse_rejected", "rejected")
    rejected = analysis.associations[found.reverse.association]
    assert (rejected.state, rejected.called_ae) == ("rejected", "MODALITY_OLD")
    [item] = workflow_items(analysis)
    assert (item.code, item.association) == ("workflow.commitment_reverse_rejected", rejected.index)
    assert "called-AE-title-not-recognized" in item.message and "'MODALITY_OLD'" in item.message


def test_report_association_without_the_scp_role(analyze_fixture):
    analysis = analyze_fixture("wf_commit_role_refused.pcap")
    found = commitment(analysis, 5)
    assert (found.state, found.reverse.outcome) == ("reverse_rejected", "no report sent")
    accepted = analysis.associations[found.reverse.association]
    assert accepted.state == "released" and accepted.roles  # the archive proposed the SCP role
    [item] = workflow_items(analysis)
    assert item.code == "workflow.commitment_reverse_rejected" and "SCP role" in item.message


def test_failed_items_each_with_the_reason_meaning(analyze_fixture):
    analysis = analyze_fixture("wf_commit_failed_items.pcap")
    found = commitment(analysis, 6)
    assert found.state == "failed_items"
    assert sorted((instance, reason) for _class, instance, reason in found.failed) == [
        (f"{ROOT}.6.1.1", 0x0119), (f"{ROOT}.6.1.98", 0x0112)]
    assert found.committed == [f"{ROOT}.6.1.2"]
    failed = workflow_items(analysis, "workflow.commitment_failed_items")
    assert len(failed) == 2
    assert any("class-instance conflict (0x0119)" in item.message for item in failed)
    assert any("no such object instance (0x0112)" in item.message for item in failed)
    # .98 was never stored at all: committed but never stored
    [never] = workflow_items(analysis, "workflow.committed_not_stored")
    assert f"{ROOT}.6.1.98" in never.message and f"{ROOT}.6.1.1," not in never.message


def test_report_on_the_same_association_not_accepted(analyze_fixture):
    analysis = analyze_fixture("wf_commit_same_release.pcap")
    found = commitment(analysis, 7)
    assert found.report_on_same_association and found.report_status == 0x0110
    [item] = workflow_items(analysis)
    assert item.code == "workflow.commitment_report_not_accepted" and "new association" in item.message


def test_report_racing_the_release_of_the_request_association(analyze_fixture):
    """The archive sent the report the moment the modality's A-RELEASE-RQ arrived: never answered."""
    analysis = analyze_fixture("wf_commit_release_race.pcap")
    found = commitment(analysis, 13)
    assert found.report_on_same_association and found.report_status is None
    assert found.state == "committed"  # what the archive reported; the modality never took it
    [item] = workflow_items(analysis)
    assert item.code == "workflow.commitment_report_not_accepted"
    assert "no N-EVENT-REPORT-RSP" in item.message and "the release raced the report" in item.message
    same = analyze_fixture("wf_commit_same_release.pcap")
    assert "raced" not in workflow_items(same)[0].message  # there the report came before the release


def test_report_reusing_the_request_message_id_pairs_by_direction(analyze_fixture):
    """On the request's association the archive's N-EVENT-REPORT reuses message ID 1, which the modality
    used for its N-ACTION, in the other direction: each response answers its own request."""
    analysis = analyze_fixture("wf_commit_same_release.pcap")
    found = commitment(analysis, 7)
    action, report = analysis.messages[found.request], analysis.messages[found.reports[0]]
    assert action.message_id == report.message_id == 1 and action.direction != report.direction
    [action_response], [report_response] = action.responses, report.responses
    assert analysis.messages[action_response].command_name == "N-ACTION-RSP"
    assert analysis.messages[report_response].command_name == "N-EVENT-REPORT-RSP"
    assert (found.request_status, found.report_status) == (0x0000, 0x0110)


def test_stored_but_never_committed(analyze_fixture):
    analysis = analyze_fixture("wf_stored_not_committed.pcap")
    assert commitment(analysis, 8).state == "committed"
    [item] = workflow_items(analysis)
    assert item.code == "workflow.stored_not_committed" and f"{ROOT}.8.1.3" in item.message
    assert analysis.messages[item.message_index].affected_sop_instance == f"{ROOT}.8.1.3"


def test_mpps_left_in_progress(analyze_fixture):
    analysis = analyze_fixture("wf_mpps_not_completed.pcap")
    step = procedure(analysis, 9)
    assert (step.final_status, step.sets) == ("IN PROGRESS", [])
    [item] = workflow_items(analysis)
    assert (item.code, item.severity) == ("workflow.mpps_not_completed", Severity.NOTE)
    [item] = workflow_items(analyze_path(FIXTURES / "wf_mpps_not_completed.pcap",
                                         options={"mpps_complete_seconds": "0"}))
    assert item.severity == Severity.WARNING


def test_mpps_discontinued_with_its_reason_on_port_104(analyze_fixture):
    analysis = analyze_fixture("wf_mpps_discontinued.pcap")
    step = procedure(analysis, 10)
    assert step.final_status == "DISCONTINUED"
    assert analysis.connections[analysis.messages[step.create].connection].server.endswith(":104")
    [item] = workflow_items(analysis)
    assert item.code == "workflow.mpps_discontinued"
    assert "110514 (DCM) Incorrect worklist entry selected" in item.message


def test_mpps_completed_naming_an_image_never_stored(analyze_fixture):
    analysis = analyze_fixture("wf_mpps_unstored.pcap")
    step = procedure(analysis, 11)
    assert step.final_status == "COMPLETED" and f"{ROOT}.11.1.99" in step.performed_instances
    [item] = workflow_items(analysis)
    assert item.code == "workflow.mpps_instances_not_stored" and f"{ROOT}.11.1.99" in item.message
    assert f"{ROOT}.11.1.1" not in item.message


def test_worklist_query_without_match_shows_the_keys_that_filtered(analyze_fixture):
    analysis = analyze_fixture("wf_worklist_no_match.pcap")
    assert analysis.workflow.worklist == []
    [item] = workflow_items(analysis)
    assert item.code == "workflow.worklist_no_match"
    assert "ScheduledStationAETitle='CT01'" in item.message and "Modality='OT'" in item.message
    # Said once: rules.query leaves worklist queries to it (it once added "matched nothing; no matching
    # keys (universal query)", blind to the keys inside the Scheduled Procedure Step Sequence).
    assert not [i for i in analysis.expert if "matched nothing" in i.message and i.code != item.code]


def test_mixed_capture_links_every_commitment_procedure_and_item(analyze_fixture):
    analysis = analyze_fixture("wf_mixed.pcap")
    workflow = analysis.workflow
    states = {c.transaction_uid.split(".")[-2]: c.state for c in workflow.commitments}
    assert states == {"21": "committed", "22": "failed_items", "23": "committed", "24": "failed_items",
                      "25": "committed", "26": "reverse_refused", "27": "reverse_rejected",
                      "28": "reverse_rejected", "29": "unanswered", "30": "committed"}
    for found in workflow.commitments:  # every report carries its own transaction's instances
        number = found.transaction_uid.split(".")[-2]
        assert all(uid.startswith(f"{ROOT}.{number}.") for uid in found.committed)
        scu_ae = analysis.associations[found.association].calling_ae
        for index in found.reports:  # reports went to the modality that asked
            report_association = analysis.associations[analysis.messages[index].association]
            assert scu_ae in (report_association.called_ae, report_association.calling_ae)
        if found.reverse is not None:
            assert found.reverse.server.startswith(analysis.connections[
                analysis.associations[found.association].connection].client.rsplit(":", 1)[0] + ":")
    finals = {p.sop_instance_uid.split(".")[-2]: p.final_status for p in workflow.procedures}
    assert finals == {"21": "COMPLETED", "22": "IN PROGRESS", "23": "DISCONTINUED", "24": "COMPLETED",
                      "25": "COMPLETED"}
    stored = {item.accession_number: len(item.stored) for item in workflow.worklist}
    # ACC024 came with MODALITY2's first query (both its items); its own, for station 'CT01', matched nothing
    assert stored == {"ACC021": 2, "ACC022": 2, "ACC023": 2, "ACC024": 2, "ACC025": 2}
    assert all(uid.startswith(f"{ROOT}.{int(item.accession_number[3:])}.") for item in workflow.worklist
               for uid in item.stored)
    codes = sorted(item.code for item in workflow_items(analysis))
    assert codes == sorted([
        "workflow.mpps_not_completed", "workflow.committed_not_stored", "workflow.commitment_failed_items",
        "workflow.stored_not_committed", "workflow.mpps_discontinued", "workflow.worklist_no_match",
        "workflow.mpps_instances_not_stored", "workflow.commitment_failed_items",
        "workflow.commitment_reverse_refused", "workflow.commitment_reverse_rejected",
        "workflow.commitment_reverse_rejected", "workflow.commitment_unanswered",
        "workflow.commitment_report_not_accepted"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomtui.cli", *args], capture_output=True, text=True, timeout=120)


def test_json_has_the_workflow_and_every_finding_code():
    result = run_cli("--json", str(FIXTURES / "wf_commit_reverse_refused.pcap"))
    document = json.loads(result.stdout)
    [found] = document["workflow"]["commitments"]
    assert (found["state"], found["reverse"]["outcome"]) == ("reverse_refused", "refused")
    assert set(document["workflow"]) >= {"commitments", "procedures", "worklist"}
    assert document["connection_attempts"][0]["outcome"] == "refused"
    codes = {item["code"] for item in document["expert"] if item["rule"] == "rules.workflow"}
    assert codes == {"workflow.commitment_reverse_refused"}


@pytest.mark.parametrize("name", ["store_dcmtk.pcapng", "qr_pynetdicom.pcap"])
def test_captures_without_workflow_have_an_empty_model(analyze_fixture, name):
    analysis = analyze_fixture(name)
    assert analysis.workflow.empty and workflow_items(analysis) == []


def test_workflow_printout_per_accession_in_stage_order():
    result = run_cli("--workflow", str(FIXTURES / "wf_mixed.pcap"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index(f"accession ACC021 study {ROOT}.21  patient WF021")
    stages = [line.split()[0] for line in lines[header + 1:header + 5]]
    assert stages == ["scheduled", "performed", "stored", "committed"]
    assert "ARCHIVE→MODALITY A" in lines[header + 4] and "all committed: 2 of 2" in lines[header + 4]
    text = result.stdout
    assert "report connection REFUSED" in text and "report association REJECTED" in text
    assert "1 in no commitment request" in text and "report NOT accepted by the modality (0x0110)" in text
    assert "ScheduledStationAETitle='CT01'" in text
    empty = run_cli("--workflow", str(FIXTURES / "echo_dcmtk.pcap"))
    assert empty.returncode == 0 and "No storage commitment" in empty.stdout


def test_stats_and_json_timing_have_time_to_commit_and_complete():
    result = run_cli("--stats", str(FIXTURES / "wf_mixed.pcap"))
    assert result.returncode == 0, result.stderr
    [commit] = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("time to commit")]
    [complete] = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("time to complete")]
    # 10 commitments: 6 reported (21-25, 30), 4 not; 5 procedures: 4 finished, 22 still IN PROGRESS
    assert (commit[3], commit[-1]) == ("6", "4") and (complete[3], complete[-1]) == ("4", "1")
    document = json.loads(run_cli("--json", str(FIXTURES / "wf_all_good.pcap")).stdout)
    timing = document["timing"]["workflow"]
    assert timing["time_to_commit"]["count"] == 1 and 0 < timing["time_to_commit"]["median"] < 5
    assert timing["time_to_complete"]["count"] == 1


def test_live_commitment_unanswered_is_provisional_until_the_capture_stops(plugin_host):
    from dicomtui.core.pipeline import AnalysisConfig
    from dicomtui.core.pipeline.incremental import IncrementalAnalysis

    live = IncrementalAnalysis(AnalysisConfig(), plugin_host, "wf")
    try:
        live.feed((FIXTURES / "wf_commit_unanswered.pcap").read_bytes())
        update = live.poll()
        provisional = [item for item in update.provisional if item.code == "workflow.commitment_unanswered"]
        assert len(provisional) == 1 and provisional[0].severity == Severity.NOTE
        assert not workflow_items(live.analysis)  # nothing settled while live
        final = live.finish()
        assert final.provisional == []
        assert [item.code for item in workflow_items(live.analysis)] == ["workflow.commitment_unanswered"]
    finally:
        live.close()


@pytest.mark.parametrize("name", ["wf_mixed.pcap", "store_ts_pynetdicom.pcap", "store_testfiles_pynetdicom.pcap",
                                  "store_dcmtk.pcapng", "qr_pynetdicom.pcap"])
def test_store_keys_from_the_head_equal_the_whole_data_set(analyze_fixture, name):
    """The C-STORE head walker (element headers only) agrees with pydicom on the whole data set, in every
    transfer syntax the fixtures hold (implicit, explicit, big endian, deflated, encapsulated)."""
    from dicomtui.core.model.workflow import store_keys

    analysis = analyze_fixture(name)
    stores = [message for message in analysis.messages if message.command_name == "C-STORE-RQ"]
    assert stores
    for message in stores:
        dataset = analysis.decode_dataset(message).dataset
        expected = (str(dataset.get("AccessionNumber", "") or "").strip(),
                    str(dataset.get("StudyInstanceUID", "") or "").strip())
        assert store_keys(analysis, message) == expected, message.index


def test_jsonl_carries_the_workflow_items_of_json(capsys):
    """--jsonl prints one ``workflow`` line per item of --json's ``workflow``, before ``end``."""
    from dicomtui.cli import main

    capture = str(Path(__file__).resolve().parent.parent / "fixtures" / "wf_mixed.pcap")
    assert main(["--json", capture]) in (0, None)
    workflow = json.loads(capsys.readouterr().out)["workflow"]
    assert main(["--jsonl", capture]) in (0, None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rows = [line for line in lines if line["object"] == "workflow"]
    for kind, key in (("commitment", "commitments"), ("procedure", "procedures"), ("worklist_item", "worklist"),
                      ("empty_worklist_query", "empty_worklist_queries")):
        got = [{k: v for k, v in row.items() if k not in ("object", "kind")} for row in rows if row["kind"] == kind]
        assert got == workflow[key], kind
    assert workflow["commitments"] and lines[-1]["object"] == "end"
    assert main(["--jsonl", str(Path(capture).with_name("echo_dcmtk.pcap"))]) in (0, None)
    assert not [line for line in capsys.readouterr().out.splitlines() if '"object": "workflow"' in line]
