"""De-identification (issue 14): the profile table attribute by attribute, the rewritten capture
(leaks, validity under tshark, same structure under dicomtui), Q/R consistency, damage, CLI."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pydicom
import pytest
from capture_tools import FIXTURES, data_frame_indices, read_frames, write_pcap
from conftest import analyze_path, requires_tshark
from dicomtui import cli
from dicomtui.core.views import analysis_json
from dicomtui.plugins.anonymize.deidentify import DatasetCodec, Deidentifier
from dicomtui.plugins.anonymize.mapping import ANON_UID_ROOT, Pseudonymizer, is_registered_uid
from dicomtui.plugins.anonymize.profile import CHOICE, OPTIONS, Profile
from dicomtui.plugins.anonymize.rewrite import AnonymizeSettings, CaptureAnonymizer, write_capture
from dicomtui.plugins.anonymize.table_e1_1 import EDITION, ROWS
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

ALL_FIXTURES = ["echo_dcmtk.pcap", "store_dcmtk.pcapng", "store_ts_pynetdicom.pcap", "qr_pynetdicom.pcap",
                "reject_abort.pcap", "negotiation_pynetdicom.pcap", "store_oddport.pcap", "multi_iface.pcapng",
                "store_large_segments.pcap", "store_testfiles_pynetdicom.pcap"]
SECRET = b"dicomtui test secret, fixed so UID digits cannot collide by chance between runs"
DEFLATED = "1.2.840.10008.1.2.1.99"
TEXT_VRS = frozenset(["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"])


def _anonymize(analysis, path: Path, **settings) -> CaptureAnonymizer:
    anonymizer = CaptureAnonymizer(analysis, AnonymizeSettings(secret=SECRET, **settings))
    write_capture(anonymizer.run(), str(path))
    return anonymizer


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory, analyze_fixture):
    """Every bundled fixture de-identified once (default options, plus network and AE mapping)."""
    folder = tmp_path_factory.mktemp("anonymized")
    results = {}
    for name in ALL_FIXTURES:
        out = folder / (name.split(".")[0] + ".pcapng")
        anonymizer = _anonymize(analyze_fixture(name), out, map_network=True, map_ae=True)
        results[name] = (out, anonymizer)
    return results


# -- the table, attribute by attribute ---------------------------------------------------------

SAMPLES = {"AE": "SOMEAE", "AS": "045Y", "CS": "SOMECODE", "DA": "20200131", "DS": "12.5", "DT": "20200131101010",
           "IS": "42", "LO": "Some long string", "LT": "Some long text", "PN": "DOE^JOHN", "SH": "Short one",
           "ST": "Some short text", "TM": "101010", "UC": "Unlimited chars", "UI": "1.2.3.4.5.6.7.8.9",
           "UR": "http://example.invalid/x", "UT": "Unlimited text", "US": 7, "SS": -7, "UL": 7, "SL": -7,
           "FL": 1.5, "FD": 1.5, "AT": 0x00100010, "OB": b"\x01\x02", "OW": b"\x01\x02", "UN": b"\x01\x02",
           "OF": b"\x00\x00\x80\x3f", "OD": bytes(8), "OL": bytes(4), "OV": bytes(8), "SV": 7, "UV": 7}


def _table_elements():
    """(tag, rule row) for every concrete, non-command tag of Table E.1-1 that pydicom knows a VR for."""
    for tag_text, name, basic, options in ROWS:
        match = re.fullmatch(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)", tag_text)
        if match is None or match.group(1) == "0000":
            continue
        tag = int(match.group(1) + match.group(2), 16)
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            continue
        yield tag, vr, name, basic, options


def _expected(basic: str, options: dict, chosen: frozenset[str]) -> str:
    """The action as the standard's columns give it (independent of Rule.action)."""
    codes = [options[name] for name in chosen if name in options]
    if "K" in codes:
        return "K"
    if "C" in codes:
        return "C"
    return CHOICE.get(basic, basic)


def test_table_edition_and_size():
    assert EDITION == "2024b"
    assert len(ROWS) == 621  # PS3.15 2024b Table E.1-1 rows (617 single tags, 3 masked, private)
    profile = Profile(newer_rows=False)
    assert len(profile.exact) == 617 and len(profile.masked) == 3 and profile.private_rule is not None


def test_basic_profile_column_agrees_with_dicom_anonymizer():
    """An independent extraction of the same edition (KitwareMedical dicom-anonymizer, 2024b database)."""
    database = pytest.importorskip("dicomanonymizer.dicom_anonymization_databases.dicomfields_2024b")
    theirs = {}
    for category in ("D_TAGS", "Z_TAGS", "X_TAGS", "U_TAGS", "Z_D_TAGS", "X_Z_TAGS", "X_D_TAGS", "X_Z_D_TAGS",
                     "X_Z_U_STAR_TAGS"):
        code = category[:-5].replace("_", "/").replace("U/STAR", "U*")
        for tag in getattr(database, category):
            if len(tag) == 2:
                theirs[(tag[0] << 16) | tag[1]] = code
    ours = {tag: rule.basic for tag, rule in Profile(newer_rows=False).exact.items()}
    assert ours == theirs


def test_rows_of_newer_editions_get_their_basic_profile_action():
    """Rows the standard added after 2024b (from dicom-anonymizer's newest database): Basic Profile
    action, no option applies (so a retain option cannot keep them)."""
    from dicomtui.plugins.anonymize.profile import newest_basic_profile

    edition, codes = newest_basic_profile()
    profile = Profile(frozenset(OPTIONS))
    assert edition >= "2026c" and len(profile.added) >= 35
    assert profile.action(0x00100012) == "X"  # Name to Use (2025): removed even with every option
    for tag in profile.added:
        assert profile.action(tag) == CHOICE.get(codes[tag], codes[tag])
    dataset = Dataset()
    dataset.add_new(0x00100012, "UN", b"Bobby ")  # pydicom 3.0 does not know it yet: it travels as UN
    Deidentifier(Profile(), Pseudonymizer(SECRET)).apply(dataset, composite=False)
    assert 0x00100012 not in dataset


@pytest.mark.parametrize("chosen", [frozenset()] + [frozenset([name]) for name in OPTIONS]
                         + [frozenset(OPTIONS)], ids=lambda chosen: "+".join(sorted(chosen)) or "basic")
def test_every_table_attribute_gets_its_action(chosen):
    """Build a data set holding every attribute of the table, de-identify it, check each one."""
    dataset = Dataset()
    dataset.PatientName = "DOE^JOHN"
    dataset.PatientID = "PID-12345"
    expected = {}
    for tag, vr, name, basic, options in _table_elements():
        if vr == "SQ":
            item = Dataset()
            item.CodeMeaning = "inner"
            dataset.add_new(tag, vr, [item])
        else:
            sample = SAMPLES.get(vr)
            if sample is None:
                continue
            if vr in ("LO", "LT", "ST", "UT", "UC", "SH"):
                sample = "seen for PID-12345"[: 16 if vr == "SH" else 64]
            dataset.add_new(tag, vr, sample)
        expected[tag] = (vr, name, _expected(basic, options, chosen))
    original = {tag: dataset[tag].value for tag in expected if dataset[tag].VR != "SQ"}
    deidentifier = Deidentifier(Profile(chosen), Pseudonymizer(SECRET))
    deidentifier.apply(dataset, composite=False)
    checked = 0
    for tag, (vr, name, action) in expected.items():
        present = tag in dataset
        value = dataset[tag].value if present else None
        where = f"{name} ({tag:08X}) {vr} action {action}"
        if action == "X":
            assert not present, where
        elif vr == "SQ":
            assert present and len(value) == 1, where
        elif action == "K":
            assert value == original[tag], where
        elif action in ("U", "U*"):
            assert value != original[tag] and str(value).startswith(ANON_UID_ROOT), where
        elif action == "Z":
            assert present and value != original[tag], where
        elif action == "D":
            assert present and value not in (None, "", b"") and value != original[tag] or vr in ("US", "SS", "UL",
                   "SL", "FL", "FD", "SV", "UV", "AT") and value == 0, where
        elif action == "C":
            assert present, where
            if vr == "DA":
                assert value != original[tag] and re.fullmatch(r"\d{8}", value), where  # shifted
            elif vr in ("LO", "LT", "ST", "UT", "UC", "SH"):
                assert "PID-12345" not in str(value), where  # known identifiers cleaned out of the text
        else:
            pytest.fail(f"unexpected action {where}")
        checked += 1
    assert checked > 500


def test_private_attributes_masked_groups_and_group_lengths():
    dataset = Dataset()
    dataset.PatientName = "DOE^JOHN"
    dataset.add_new(0x00100000, "UL", 16)  # a group length that the rewrite would make wrong
    dataset.add_new(0x00090010, "LO", "ACME PRIVATE")
    dataset.add_new(0x00091001, "LO", "secret private value")
    dataset.add_new(0x60003000, "OW", b"\x00\x01" * 4)  # Overlay Data
    dataset.add_new(0x60024000, "LT", "overlay comment")
    dataset.add_new(0x50000010, "US", 3)  # curve group
    Deidentifier(Profile(), Pseudonymizer(SECRET)).apply(dataset, composite=True)
    for tag in (0x00090010, 0x00091001, 0x60003000, 0x60024000, 0x50000010, 0x00100000):
        assert tag not in dataset
    assert dataset.PatientIdentityRemoved == "YES"
    assert [item.CodeValue for item in dataset.DeidentificationMethodCodeSequence] == ["113100"]


def test_ae_titles_in_data_sets_map_like_the_wire_ones():
    """Station AE Title is X, or C with Retain Device Identity: then the --anonymize-ae mapping."""
    pseudo = Pseudonymizer(SECRET)
    dataset = Dataset()
    dataset.add_new(0x00080055, "AE", "MODALITY1")
    Deidentifier(Profile(frozenset({"retain-device-identity"})), pseudo, map_ae=True).apply(dataset, False)
    assert dataset[0x00080055].value == pseudo.ae_title("MODALITY1") != "MODALITY1"
    Deidentifier(Profile(), pseudo).apply(dataset, composite=False)
    assert 0x00080055 not in dataset


def test_options_by_name():
    from dicomtui.plugins.anonymize.profile import parse_options

    assert parse_options(["Retain UIDs", "clean_descriptors,retain-longitudinal-temporal-information"]) == {
        "retain-uids", "clean-descriptors", "retain-long-modified-dates"}
    with pytest.raises(ValueError):
        parse_options(["retain-everything"])


def test_consistent_replacements_and_uid_shape():
    pseudo = Pseudonymizer(SECRET)
    uid = pseudo.uid("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322")
    assert uid == pseudo.uid("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322")
    assert len(uid) <= 64 and uid.startswith(ANON_UID_ROOT) and pydicom.uid.UID(uid).is_valid
    assert pseudo.uid("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"  # registered: kept
    assert pseudo.text("4MR1", "LO") == pseudo.text("4MR1", "SH")
    # prefix-preserving addresses: a shared /24 stays shared, and the mapping is one-to-one
    a, b, c = (pseudo.ip(address) for address in ("10.1.2.3", "10.1.2.99", "10.9.0.1"))
    assert a.rsplit(".", 1)[0] == b.rsplit(".", 1)[0] and a.split(".")[0] == c.split(".")[0] and len({a, b, c}) == 3
    assert pseudo.ip("fd00::1") != "fd00::1"


# -- the rewritten captures ----------------------------------------------------------------------


def _identifying_values(analysis) -> dict[str, set[bytes]]:
    """Every value the profile touches in the input's data sets and command sets (UIDs, names, IDs,
    dates, free text, private values), as text of at least 4 characters -> its byte forms: as the
    data set's Specific Character Set encodes it (ISO 2022 escapes included), plus the usual ones."""
    profile = Profile()
    values: set[str] = set()
    forms: dict[str, set[bytes]] = {}

    def encoded(text, encodings, raw: bytes | None = None):
        text = str(text).strip(" \x00")
        found = forms.setdefault(text, set())
        if isinstance(raw, (bytes, bytearray)) and raw:
            found.add(bytes(raw).strip(b" \x00"))
        try:
            found.add(pydicom.charset.encode_string(text, encodings))
        except (UnicodeError, LookupError, ValueError):
            pass
    kept: set[str] = set()  # values of attributes the profile keeps: the same text there is no leak

    def add(text, into=values):
        text = str(text).strip(" \x00")
        if len(text) >= 4 and text.strip("*?") and not is_registered_uid(text):
            into.add(text)

    for message in analysis.messages:
        for keyword in ("AffectedSOPInstanceUID", "RequestedSOPInstanceUID"):
            if message.command.get(keyword):
                add(message.command[keyword])
        data = analysis.dataset_bytes(message)
        if data is None:
            continue
        dataset = DatasetCodec(message.transfer_syntax).read(data)
        encodings = pydicom.charset.convert_encodings(dataset.get("SpecificCharacterSet") or "ISO_IR 6")
        for element in dataset.iterall():
            action = profile.action(element.tag)
            if element.VR in ("SQ", "OB", "OW", "UN") and not element.tag.is_private:
                continue
            if action in (None, "K") and element.VR != "UI" and not element.tag.is_private:
                if isinstance(element.value, (str, int, float, pydicom.valuerep.DSfloat, pydicom.valuerep.IS)):
                    add(element.value, kept)
                elif isinstance(element.value, pydicom.multival.MultiValue):
                    add("\\".join(str(item) for item in element.value), kept)
                    for item in element.value:
                        add(item, kept)
                continue
            if element.value is None or (element.VR not in TEXT_VRS and not isinstance(element.value, bytes)):
                continue  # binary numbers: not text to look for
            if isinstance(element.value, bytes):
                if element.tag.is_private and len(element.value) >= 6 and element.value.isascii():
                    add(element.value.decode("ascii"))
                continue
            items = element.value if isinstance(element.value, (list, pydicom.multival.MultiValue)) else [element.value]
            for item in items:
                add(item)
                encoded(item, encodings, getattr(item, "original_string", None))
                if element.VR == "PN":
                    for part in re.split(r"[\^=]", str(item)):
                        add(part)
                        encoded(part, encodings)
    # A value that is part of a kept one (InstitutionName TOSHIBA, Manufacturer TOSHIBA_MEC) may stay;
    # a number of fewer than 8 digits can turn up by chance (in a new UID's digits, in pixel data).
    return {value: _encodings(value) | {form for form in forms.get(value, ()) if len(form) >= 4}
            for value in values - kept
            if not any(value in other for other in kept) and not (value.replace(".", "").isdigit() and len(value) < 8)}


def _haystacks(path: Path) -> list[bytes]:
    """The output file, every reassembled stream, and every deflated data set inflated."""
    output = analyze_path(path)
    stacks = [path.read_bytes()]
    for connection in output.connections:
        for direction in (0, 1):
            stream = connection.streams[direction]
            stacks.append(bytes(stream.read(0, stream.end, output.buffers) or b""))
    for message in output.messages:
        data = output.dataset_bytes(message)
        if data is not None and message.transfer_syntax == DEFLATED:
            stacks.append(zlib.decompressobj(-zlib.MAX_WBITS).decompress(data))
    return stacks


def _encodings(value: str, charsets=("ascii", "latin-1", "utf-8", "utf-16-le", "utf-16-be")) -> set[bytes]:
    forms = set()
    try:
        forms.add(ipaddress.ip_address(value).packed)  # an address travels in binary in the IP header
    except ValueError:
        pass
    for charset in charsets:
        try:
            forms.add(value.encode(charset))
        except UnicodeEncodeError:
            pass
    return forms


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_no_identifying_value_survives(name, rewritten, analyze_fixture):
    analysis = analyze_fixture(name)
    path, _anonymizer = rewritten[name]
    values = _identifying_values(analysis)
    # network identity and AE titles were mapped too in this run
    for association in analysis.associations:
        values.update((title, _encodings(title)) for title in (association.calling_ae, association.called_ae)
                      if len(title) >= 4)
    for connection in analysis.connections:
        values.update((address, _encodings(address)) for address in
                      (endpoint.rsplit(":", 1)[0].strip("[]") for endpoint in (connection.client, connection.server)))
    # the probe must see every one of them in the input (deflated data sets inflated, every encoding)
    inputs = _haystacks(FIXTURES / name)
    unseen = [value for value, forms in values.items() if not any(form in stack for form in forms for stack in inputs)]
    assert not unseen, f"the leak probe cannot see {unseen[:5]} in the input"
    stacks = _haystacks(path)
    leaks = sorted(value for value, forms in values.items() for form in forms for stack in stacks if form in stack)
    assert not leaks, f"{name}: identifying values left in the output: {leaks[:10]}"
    if any(message.has_dataset for message in analysis.messages):
        assert values, "the input of this fixture carries identifying values: the test must see them"


def test_leak_test_sees_deflate_and_big_endian(analyze_fixture, rewritten):
    """The transfer-syntax fixture carries deflated and big-endian data sets: both were rewritten."""
    analysis = analyze_fixture("store_ts_pynetdicom.pcap")
    syntaxes = {message.transfer_syntax for message in analysis.messages if message.has_dataset}
    assert {DEFLATED, "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50"} <= syntaxes
    output = analyze_path(rewritten["store_ts_pynetdicom.pcap"][0])
    for message in output.messages:
        if message.has_dataset:
            decoded = output.decode_dataset(message)
            assert decoded is not None and decoded.dataset is not None and not decoded.problems
            assert decoded.dataset.PatientIdentityRemoved == "YES"
            assert str(decoded.dataset.SOPInstanceUID).startswith(ANON_UID_ROOT)


def _structure(analysis, map_ae: bool) -> dict:
    document = analysis_json(analysis)
    associations = [{key: value for key, value in association.items()
                     if key in ("state", "end_reason", "contexts", "roles", "message_count", "parent_move",
                                "requestor_max_pdu", "acceptor_max_pdu")
                     or (key in ("calling_ae", "called_ae") and not map_ae)}
                    for association in document["associations"]]
    messages = [{key: message[key] for key in ("association", "direction", "context_id", "command", "message_id",
                                                 "responded_to", "status", "status_category", "request",
                                                 "has_dataset", "complete", "sop_class")}
                for message in document["messages"]]
    pdus = [(pdu["association"], pdu["direction"], pdu["type_name"], pdu["complete"]) for pdu in document["pdus"]]
    return {"associations": associations, "messages": messages, "pdus": pdus}


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_same_structure_in_dicomtui(name, rewritten, analyze_fixture):
    path, anonymizer = rewritten[name]
    before = _structure(analyze_fixture(name), map_ae=True)
    after = _structure(analyze_path(path), map_ae=True)
    assert after == before
    assert not anonymizer.report.dropped
    # SPAN copies (multi_iface: dumpcap on lo and any) are sent once, and said so; not "non-DICOM traffic"
    assert anonymizer.report.figures.get("span_duplicates_sent_once", 0) == analyze_fixture(name).span_duplicates


def _tshark(path: Path, ports, *extra: str) -> str:
    command = ["tshark", "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
    for port in sorted(ports):
        command += ["-d", f"tcp.port=={port},dicom"]
    result = subprocess.run(command + list(extra), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@requires_tshark
@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_tshark_finds_nothing_malformed(name, rewritten, analyze_fixture):
    """Checksums verified, DICOM decoded on every server port: no malformed or checksum expert item."""
    path, _anonymizer = rewritten[name]
    ports = {connection.server_port for connection in analyze_fixture(name).connections}
    expert = _tshark(path, ports, "-q", "-z", "expert,chat")
    groups = re.findall(r"^\s+\d+\s+(\S+)\s+(\S+)\s+(.*)$", expert, re.MULTILINE)
    assert not [group for group in groups if group[0] in ("Malformed", "Checksum")], expert
    assert "Bad checksum" not in expert and "malformed" not in expert.lower()
    packets = _tshark(path, ports, "-Y", "dicom")
    assert packets.count("\n") >= sum(1 for _ in analyze_path(path).pdus) // 2  # tshark sees the DICOM too


# -- Q/R consistency ---------------------------------------------------------------------------------


def test_query_retrieve_references_stay_consistent(rewritten):
    output = analyze_path(rewritten["qr_pynetdicom.pcap"][0])
    found_studies, found_patients, moved, stored = set(), set(), set(), {}
    for message in output.messages:
        decoded = output.decode_dataset(message) if message.has_dataset else None
        dataset = decoded.dataset if decoded else None
        if message.command_name == "C-FIND-RSP" and dataset is not None:
            found_studies.add(str(dataset.StudyInstanceUID))
            found_patients.add(str(dataset.PatientID))
        elif message.command_name == "C-MOVE-RQ" and dataset is not None:
            value = dataset.StudyInstanceUID
            moved.update(str(uid) for uid in (value if isinstance(value, pydicom.multival.MultiValue) else [value]))
        elif message.command_name == "C-STORE-RQ" and dataset is not None:
            assert str(dataset.SOPInstanceUID) == message.affected_sop_instance  # command and data set agree
            stored[str(dataset.StudyInstanceUID)] = str(dataset.PatientID)
    assert len(found_studies) == 3 and moved and stored
    assert moved <= found_studies  # the C-MOVE asks for studies the C-FIND returned
    assert set(stored) <= found_studies  # the sub-operations carry them
    assert set(stored.values()) <= found_patients  # and the same patients
    assert all(uid.startswith(ANON_UID_ROOT) for uid in found_studies)
    # the C-MOVE sub-association is still tied to its C-MOVE, and the destination AE still matches
    sub = [association for association in output.associations if association.parent_move is not None]
    assert sub
    move = output.messages[sub[0].parent_move]
    assert move.command.get("MoveDestination", "").strip() == sub[0].called_ae.strip() != "STORESCP"


def test_strip_pixel_data_and_options(tmp_path, analyze_fixture):
    analysis = analyze_fixture("store_ts_pynetdicom.pcap")
    anonymizer = _anonymize(analysis, tmp_path / "stripped.pcap", strip_pixel_data=True,
                            options=frozenset({"retain-long-modified-dates", "retain-uids"}))
    changes = {action for (_attribute, action) in anonymizer.report.changes}
    assert "zeroed (--strip-pixel-data)" in changes and "X (--strip-pixel-data, encapsulated)" in changes
    assert not [warning for warning in anonymizer.report.warnings if "pixel" in warning]  # nothing kept
    assert any("timestamps" in warning for warning in anonymizer.report.warnings)
    output = analyze_path(tmp_path / "stripped.pcap")
    original = {message.message_id: analysis.decode_dataset(message).dataset
                for message in analysis.messages if message.command_name == "C-STORE-RQ"}
    for message in output.messages:
        if message.command_name != "C-STORE-RQ":
            continue
        dataset = output.decode_dataset(message).dataset
        before = original[message.message_id]
        assert dataset.SOPInstanceUID == before.SOPInstanceUID  # Retain UIDs
        if "PixelData" in dataset:
            assert not any(dataset.PixelData)
        assert dataset.LongitudinalTemporalInformationModified == "MODIFIED"
        if before.get("StudyDate"):
            assert dataset.StudyDate != before.StudyDate and len(dataset.StudyDate) == 8


# -- damaged input ---------------------------------------------------------------------------------


def test_damaged_stream_is_reported_not_passed_through(tmp_path):
    frames = read_frames(FIXTURES / "store_dcmtk.pcapng")
    data_frames = data_frame_indices(frames)
    lost = data_frames[len(data_frames) // 2]  # a segment in the middle of the CT data set
    damaged = write_pcap(tmp_path / "damaged.pcap", [frame for index, frame in enumerate(frames) if index != lost])
    analysis = analyze_path(damaged)
    anonymizer = _anonymize(analysis, tmp_path / "out.pcapng")
    assert anonymizer.report.dropped  # the cut message (and what the gap cut) is counted
    text = "\n".join(anonymizer.report.text_lines())
    assert "dropped:" in text
    output = analyze_path(tmp_path / "out.pcapng")
    assert not any(connection.gaps for connection in [c.streams[0] for c in output.connections]
                   + [c.streams[1] for c in output.connections])
    assert all(message.complete for message in output.messages)
    assert len(output.messages) < len(analysis.messages)
    values = _identifying_values(analysis)
    stacks = _haystacks(tmp_path / "out.pcapng")
    assert not [value for value, forms in values.items() if any(form in stack for form in forms for stack in stacks)]


# -- the command line ------------------------------------------------------------------------------


def test_cli_report_json_and_map_only_on_request(tmp_path, capsys):
    out = tmp_path / "shared.pcapng"
    status = cli.main(["--anonymize", str(out), str(FIXTURES / "qr_pynetdicom.pcap"), "--json",
                       "--anonymize-option", "clean-descriptors"])
    assert status == 0 and out.exists()
    report = json.loads(capsys.readouterr().out)
    assert report["table_edition"].startswith(EDITION) and report["options"] == ["clean-descriptors"]
    assert report["attributes_changed"] > 100 and report["by_action"]["U"] > 0
    assert not list(tmp_path.glob("*.json"))  # no mapping file unless asked for
    text = json.dumps(report)
    for original in ("CompressedSamples", "1.3.6.1.4.1.5962", "20040119", "4MR1"):
        assert original not in text
    mapping = tmp_path / "map.json"
    status = cli.main(["--anonymize", str(tmp_path / "again.pcap"), str(FIXTURES / "qr_pynetdicom.pcap"),
                       "--anonymize-map", str(mapping)])
    assert status == 0
    assert "CompressedSamples^CT1" in mapping.read_text()
    assert "attributes changed" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the output exists: not replaced without --overwrite
        cli.main(["--anonymize", str(out), str(FIXTURES / "qr_pynetdicom.pcap")])
    with pytest.raises(SystemExit):
        cli.main(["--anonymize", str(tmp_path / "x.pcap"), str(FIXTURES / "qr_pynetdicom.pcap"),
                  "--anonymize-option", "retain-everything"])


def test_cli_export_anonymized_part10_with_the_capture_mapping(tmp_path, capsys):
    out, folder = tmp_path / "shared.pcapng", tmp_path / "objects"
    status = cli.main(["--anonymize", str(out), "--export", str(folder), str(FIXTURES / "store_dcmtk.pcapng")])
    assert status == 0
    files = sorted(folder.glob("*.dcm"))
    assert len(files) == 3
    output = analyze_path(out)
    instances = {message.affected_sop_instance for message in output.messages if message.command_name == "C-STORE-RQ"}
    for path in files:
        dataset = pydicom.dcmread(path)
        assert dataset.SOPInstanceUID in instances and dataset.file_meta.MediaStorageSOPInstanceUID in instances
        assert dataset.PatientIdentityRemoved == "YES" and "1.3.6.1.4.1.5962" not in path.name
    report = json.loads((folder / "anonymize-report.json").read_text())
    assert report["objects"]["stored objects (C-STORE data sets)"] == 3
    # --export DIR --anonymize CAPTURE: the capture given right after --anonymize is the input
    status = cli.main(["--export", str(tmp_path / "only"), "--anonymize", str(FIXTURES / "store_dcmtk.pcapng")])
    assert status == 0 and len(list((tmp_path / "only").glob("*.dcm"))) == 3
    capsys.readouterr()


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_cli_output_opens_in_tshark(tmp_path):
    out = tmp_path / "o.pcap"
    assert cli.main(["--anonymize", str(out), str(FIXTURES / "store_ts_pynetdicom.pcap"),
                     "--anonymize-time-shift", "-86400"]) == 0
    result = subprocess.run(["tshark", "-r", str(out), "-q", "-z", "expert"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and "Malformed" not in result.stdout
    before, after = read_frames(FIXTURES / "store_ts_pynetdicom.pcap"), read_frames(out)
    assert after[0].ts - before[0].ts == pytest.approx(-86400, abs=1e-3)
    assert after[-1].ts - before[-1].ts == pytest.approx(-86400, abs=1.0)


# -- hostile input: nothing passes through unparsed, nothing raises ----------------------------------


def test_hostile_conversations_are_dropped_and_reported(tmp_path, capsys):
    import hostile_tools as ht

    # a sequence of undefined length whose "items" are not items
    garbage_dataset = b"\x08\x00\x40\x11\xff\xff\xff\xff" + b"SECRETNAME" * 3
    good = ht.implicit_dataset(PatientName="SECRET^PATIENT", PatientID="SECRETID77",
                               StudyInstanceUID="1.2.3.999.1", SOPInstanceUID="1.2.3.999.2",
                               SOPClassUID=ht.CT_IMAGE, StudyDate="20011231")
    rq = ht.associate_rq(calling="SECRETSCU", contexts=[(1, ht.CT_IMAGE, [ht.IMPLICIT_LE])])
    ac = ht.associate_ac(calling="SECRETSCU", contexts=[(1, ht.CT_IMAGE, [ht.IMPLICIT_LE])])
    client = [rq, *ht.store_rq(garbage_dataset, instance="1.2.3.999.3"), b"NOT A PDU AT ALL SECRETNAME",
              *ht.store_rq(good, instance="1.2.3.999.2", message_id=2), ht.release_rq()]
    server = [ac, None, None, None, None, ht.release_rp()]
    capture = ht.write(tmp_path, "hostile.pcap", ht.conversation(client, server))
    out = tmp_path / "out.pcapng"
    assert cli.main(["--anonymize", str(out), str(capture), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert any("does not parse" in reason for reason in report["dropped"])
    assert any("outside any PDU" in reason for reason in report["dropped"])
    data = out.read_bytes()
    for secret in (b"SECRETNAME", b"SECRET^PATIENT", b"SECRETID77", b"1.2.3.999", b"20011231", b"NOT A PDU"):
        assert secret not in data
    output = analyze_path(out)
    assert [message.command_name for message in output.messages] == ["C-STORE-RQ"]
    assert output.decode_dataset(output.messages[0]).dataset.PatientIdentityRemoved == "YES"


def test_other_character_sets_leave_nothing(tmp_path):
    """Names in ISO 2022 (Japanese, Korean), UTF-8, Cyrillic, Arabic... in explicit LE and BE."""
    from pydicom.data import get_charset_files

    checked = 0
    for path in get_charset_files("chr*.dcm"):
        source = pydicom.dcmread(path)
        if "PatientName" not in source:
            continue
        for syntax in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", DEFLATED):
            codec = DatasetCodec(syntax)
            data = codec.write(source)
            raw_name = bytes(codec.read(data)["PatientName"].value.original_string)
            assert raw_name in (zlib.decompressobj(-zlib.MAX_WBITS).decompress(data) if syntax == DEFLATED else data)
            dataset = codec.read(data)
            Deidentifier(Profile(), Pseudonymizer(SECRET)).apply(dataset, composite=True)
            out = codec.write(dataset)
            plain = zlib.decompressobj(-zlib.MAX_WBITS).decompress(out) if syntax == DEFLATED else out
            for part in re.split(rb"[\^=]", raw_name):
                if len(part) >= 4:
                    assert part not in plain, (path, syntax, part)
            checked += 1
    assert checked >= 20


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_ipv6_capture_with_network_mapping(tmp_path):
    from capture_tools import to_ipv6

    source = write_pcap(tmp_path / "v6.pcap", [to_ipv6(frame) for frame in read_frames(FIXTURES / "echo_dcmtk.pcap")])
    analysis = analyze_path(source)
    out = tmp_path / "v6-out.pcap"
    _anonymize(analysis, out, map_network=True)
    output = analyze_path(out)
    assert _structure(output, map_ae=False) == _structure(analysis, map_ae=False)
    assert output.connections[0].client.startswith("[") and "fd00::" not in output.connections[0].client
    expert = _tshark(out, {11112}, "-q", "-z", "expert,chat")
    assert "Malformed" not in expert and "Checksum" not in expert


def test_a_value_cut_short_is_not_taken_for_a_data_set():
    from dicomtui.plugins.anonymize.deidentify import CodecError

    codec = DatasetCodec("1.2.840.10008.1.2")
    with pytest.raises(CodecError):
        codec.read(b"\x10\x00\x10\x00\x20\x00\x00\x00SECRETNAME")  # 32 bytes declared, 10 there
    assert str(codec.read(b"\x10\x00\x10\x00\x0a\x00\x00\x00SECRETNAME").PatientName) == "SECRETNAME"


def test_mutated_captures_never_raise(tmp_path):
    """Bytes flipped inside P-DATA (data sets, commands, PDU headers): the rewrite reports, never raises,
    and what it writes still has no checksum or length error for dicomtui to find."""
    import random

    from capture_tools import rebuild, tcp_of

    frames = read_frames(FIXTURES / "qr_pynetdicom.pcap")
    data_frames = data_frame_indices(frames)
    generator = random.Random(14)
    for round_number in range(12):
        mutated = list(frames)
        for index in generator.sample(data_frames, 3):
            payload = bytearray(tcp_of(mutated[index])[2].data)
            for _ in range(generator.randint(1, 8)):
                payload[generator.randrange(len(payload))] = generator.randrange(256)
            mutated[index] = rebuild(mutated[index], payload=bytes(payload))
        path = write_pcap(tmp_path / f"m{round_number}.pcap", mutated)
        analysis = analyze_path(path)
        out = tmp_path / f"m{round_number}-out.pcap"
        _anonymize(analysis, out)
        output = analyze_path(out)
        assert all(message.complete for message in output.messages)
        assert not [item for item in output.expert if item.group.value in ("malformed", "capture")
                    and "checksum" in item.message.lower()]
