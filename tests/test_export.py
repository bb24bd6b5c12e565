"""Exporters: byte-exact Part 10 files, incomplete objects, safe names, the other formats.

Most tests run on a capture written by bench/make_capture.py (real Ethernet/
IPv4/TCP framing with 1448-byte segments; the data sets it sent are known
exactly), the rest on the recorded fixtures when they are present.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import subprocess
from contextlib import redirect_stderr
from pathlib import Path

import dpkt
import pydicom
import pytest
from capture_tools import load_make_capture
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info

from dicomtui.core.pipeline import AnalysisConfig, analyze
from dicomtui.cli import main
from dicomtui.core.api.export import ExportOptions, OutputFolder, object_name
from dicomtui.core.views.export import exporters
from dicomtui.core.model import Association, Fragment, Message
from dicomtui.cli import make_host
from dicomtui.core.base.uids import PROJECT_UID_ROOT

ROOT = Path(__file__).resolve().parent.parent
DCMDUMP = Path("/usr/bin/dcmdump")
SEED, OBJECT_KB = 7, 48



make_capture = load_make_capture()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(capture path, {SOP instance UID: data set bytes sent}) of a small generated capture."""
    path = tmp_path_factory.mktemp("generated") / "stores.pcap"
    with open(path, "wb") as out:
        _size, _frames, objects = make_capture.generate(out, 1.2, OBJECT_KB, SEED, 2, 16384, 1448)
    factory = make_capture.CtImageFactory(OBJECT_KB, SEED)
    sent = {}
    for number in range(1, objects + 1):
        uid = f"{make_capture.BENCH_UID_ROOT}.3.{SEED}.{number}"
        sent[uid] = factory.dataset(number, uid)
    return path, sent


def run_cli(*args) -> tuple[int, str]:
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        status = main([str(arg) for arg in args])
    return status, stderr.getvalue()


def dataset_part(path: Path) -> bytes:
    """The bytes after the meta header of a Part 10 file (wherever its group length says)."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM"
    group_length = struct.unpack_from("<I", data, 132 + 8)[0]
    return data[132 + 12 + group_length:]


def check_readable(path: Path) -> pydicom.Dataset:
    dataset = pydicom.dcmread(path)
    if DCMDUMP.exists():
        done = subprocess.run([str(DCMDUMP), str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "E:" not in done.stderr, done.stderr
    return dataset


# -- Part 10 -------------------------------------------------------------------------------


def test_part10_export_is_byte_exact_and_readable(generated, tmp_path):
    capture, sent = generated
    status, report = run_cli("--export", tmp_path / "out", capture)
    assert status == 0, report
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == len(sent)
    for path in files:
        dataset = check_readable(path)
        uid = dataset.file_meta.MediaStorageSOPInstanceUID
        assert dataset_part(path) == sent[uid]
        assert dataset.SOPInstanceUID == uid
        assert dataset.file_meta.MediaStorageSOPClassUID == make_capture.CT_IMAGE_STORAGE
        assert dataset.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert dataset.file_meta.ImplementationClassUID.startswith(PROJECT_UID_ROOT)
        assert dataset.file_meta.SourceApplicationEntityTitle == "BENCH_SCU"
        assert path.name.startswith(("A000-M", "A001-M")) and uid in path.name
    assert f"wrote {len(sent)} file(s)" in report


def test_meta_header_matches_pydicom(generated):
    from dicomtui.plugins.export.part10 import meta_header

    ours = meta_header("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", "1.2.840.10008.1.2.1", "STORESCU")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = "1.2.3.45"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    from dicomtui.core.base.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    meta.SourceApplicationEntityTitle = "STORESCU"
    buffer = pydicom.filebase.DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    assert ours == bytes(128) + b"DICM" + buffer.getvalue()


def test_no_meta_writes_the_raw_data_set(generated, tmp_path):
    capture, sent = generated
    status, _ = run_cli("--export", tmp_path, "--no-meta", capture)
    assert status == 0
    raw = {path.read_bytes() for path in tmp_path.iterdir()}
    assert raw == set(sent.values())
    assert all(path.suffix == ".raw" for path in tmp_path.iterdir())


def test_min_size_skips_small_data_sets_without_failing(generated, tmp_path):
    capture, sent = generated
    status, report = run_cli("--export", tmp_path, "--min-size", 10**9, capture)
    assert status == 0
    assert not list(tmp_path.iterdir())
    assert f"skipped {len(sent)}: smaller than --min-size" in report


def test_include_commands_uses_the_project_uid_root(generated, tmp_path):
    capture, sent = generated
    status, _ = run_cli("--export", tmp_path, "--include-commands", capture)
    assert status == 0
    commands = sorted(tmp_path.glob("*-command-*.dcm"))
    assert len(commands) == 2 * len(sent)  # requests and responses
    for path in commands[:4]:
        dataset = check_readable(path)
        assert dataset.file_meta.MediaStorageSOPClassUID.startswith(PROJECT_UID_ROOT + ".")
        assert dataset.file_meta.MediaStorageSOPInstanceUID.startswith(PROJECT_UID_ROOT + ".")
        assert not dataset.file_meta.MediaStorageSOPClassUID.startswith("1.2.826.0.1.3680043.8.427")
        assert dataset.CommandField in (0x0001, 0x8001)


def test_second_export_never_silently_replaces(generated, tmp_path):
    capture, sent = generated
    assert run_cli("--export", tmp_path, capture)[0] == 0
    assert run_cli("--export", tmp_path, capture)[0] == 0
    assert len(list(tmp_path.iterdir())) == 2 * len(sent)
    assert len(list(tmp_path.glob("*~2.dcm"))) == len(sent)
    status, report = run_cli("--export", tmp_path, "--overwrite", capture)
    assert status == 0 and f"replaced {len(sent)} file(s)" in report
    assert len(list(tmp_path.iterdir())) == 2 * len(sent)


# -- incomplete objects --------------------------------------------------------------------


def drop_segment(source: Path, target: Path, object_number: int) -> None:
    """Copy a generated capture without one full-size data segment in the middle of an object."""
    with open(source, "rb") as handle:
        reader = dpkt.pcap.Reader(handle)
        frames = [(ts, bytes(buf)) for ts, buf in reader]
    commands_seen = 0
    dropped = False
    kept = []
    for ts, buf in frames:
        tcp = dpkt.ethernet.Ethernet(buf).data.data
        payload = bytes(tcp.data)
        if tcp.dport == make_capture.SCP_PORT and payload[:1] == b"\x04" and payload[6 + 5:6 + 6] == b"\x03":
            commands_seen += 1  # a P-DATA whose first PDV is a whole command set: a new C-STORE-RQ
            countdown = 20
        if not dropped and commands_seen == object_number and len(payload) == 1448 and tcp.dport == 11112:
            countdown -= 1
            if countdown == 0:
                dropped = True
                continue
        kept.append((ts, buf))
    assert dropped
    with open(target, "wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=65535)
        for ts, buf in kept:
            writer.writepkt(buf, ts)


def test_gap_skips_the_object_and_exit_status_says_so(generated, tmp_path):
    capture, sent = generated
    damaged = tmp_path / "damaged.pcap"
    drop_segment(capture, damaged, 2)
    out = tmp_path / "out"
    status, report = run_cli("--export", out, damaged)
    assert status == 3
    assert "skipped 1: incomplete" in report
    lost = f"{make_capture.BENCH_UID_ROOT}.3.{SEED}.2"
    files = list(out.iterdir())
    assert len(files) == len(sent) - 1
    for path in files:
        uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        assert uid != lost
        assert dataset_part(path) == sent[uid]


def test_include_incomplete_writes_a_partial_file(generated, tmp_path):
    capture, sent = generated
    damaged = tmp_path / "damaged.pcap"
    drop_segment(capture, damaged, 3)
    out = tmp_path / "out"
    status, report = run_cli("--export", out, "--include-incomplete", damaged)
    assert status == 3
    partial = list(out.glob("*.partial"))
    assert len(partial) == 1 and partial[0].name.endswith(".dcm.partial")
    assert f"{make_capture.BENCH_UID_ROOT}.3.{SEED}.3" in partial[0].name
    assert "1 incomplete object(s) written as *.partial" in report
    assert len(list(out.glob("*.dcm"))) == len(sent) - 1


def test_capture_cut_short_marks_the_last_object_incomplete(generated, tmp_path):
    capture, sent = generated
    data = capture.read_bytes()
    cut = tmp_path / "cut.pcap"
    # End the capture inside the last object: keep records up to ~90 % of the file.
    offset, limit = 24, int(len(data) * 0.97)
    while True:
        length = struct.unpack_from("<I", data, offset + 8)[0]
        if offset + 16 + length > limit:
            break
        offset += 16 + length
    cut.write_bytes(data[:offset])
    status, report = run_cli("--export", tmp_path / "out", cut)
    assert status == 3
    assert "incomplete" in report
    for path in (tmp_path / "out").iterdir():
        uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        assert dataset_part(path) == sent[uid]


# -- names ---------------------------------------------------------------------------------


def crafted_message(instance: str, index: int = 0) -> Message:
    message = Message(index=index, association=0, connection=0, direction=0, context_id=1,
                      command={"AffectedSOPInstanceUID": instance,
                               "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.7",
                               "CommandField": 1},
                      command_bytes=b"\x00", command_field=1, command_name="C-STORE-RQ", has_dataset=True,
                      transfer_syntax="1.2.840.10008.1.2.1",
                      dataset_fragments=[Fragment(0, 10)], dataset_length=10)
    return message


class CraftedAnalysis:
    def __init__(self, messages):
        self.messages = messages
        self.associations = [Association(index=0, connection=0, calling_ae="../..", called_ae="X")]

    def dataset_pieces(self, message):
        yield [b"\x08\x00\x05\x00CS\x00\x00"[:8] + b"\x00\x00"]


@pytest.mark.parametrize("instance", ["../../etc/passwd", "/etc/passwd", "..", "a/../../b", "\x00\n\x1b[31m",
                                      "C:\\Windows\\x", "." * 300])
def test_names_from_the_capture_stay_inside_outdir(tmp_path, instance):
    from dicomtui.plugins.export.part10 import PartTenExporter

    outdir = tmp_path / "out"
    analysis = CraftedAnalysis([crafted_message(instance, 0), crafted_message(instance, 1)])
    result = PartTenExporter().export(analysis, str(outdir), ExportOptions(), None)
    assert len(result.written) == 2 and not result.skipped
    for path, _index in result.written:
        assert Path(path).resolve().parent == outdir.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_folder_refuses_collisions_and_escape(tmp_path):
    folder = OutputFolder(str(tmp_path))
    first = folder.claim("A000-M00001-C-STORE-RQ-1.2.3.dcm")
    second = folder.claim("A000-M00001-C-STORE-RQ-1.2.3.dcm")
    assert first.name == "A000-M00001-C-STORE-RQ-1.2.3.dcm"
    assert second.name == "A000-M00001-C-STORE-RQ-1.2.3~2.dcm"
    assert folder.claim("x.dcm.partial").name == "x.dcm.partial"
    assert folder.claim("x.dcm.partial").name == "x~2.dcm.partial"
    assert folder.claim("../../escape").parent == tmp_path.resolve()
    name = object_name(crafted_message("../../etc/passwd"), "", "dcm")
    assert "/" not in name and name.endswith("etc_passwd.dcm")


# -- other exporters -----------------------------------------------------------------------


def test_every_exporter_is_listed(capsys):
    assert main(["--list-plugins"]) == 0
    listed = capsys.readouterr().out
    for name in ("part10", "dicom-json", "transactions-csv", "transactions-json", "pcap"):
        assert f"  {name} " in listed
    assert set(exporters(make_host())) >= {"part10", "dicom-json", "transactions-csv",
                                            "transactions-json", "pcap"}


def test_dicom_json_round_trips(generated, tmp_path):
    capture, sent = generated
    status, _ = run_cli("--export", tmp_path, "--export-format", "dicom-json",
                        "-o", "json_bulk_threshold:1024", capture)
    assert status == 0
    documents = sorted(tmp_path.glob("*.json"))
    assert len(documents) == len(sent)
    for path in documents[:3]:
        document = json.loads(path.read_text())
        pixel = document["7FE00010"]
        assert "BulkDataURI" in pixel and (tmp_path / pixel["BulkDataURI"]).exists()
        dataset = pydicom.Dataset.from_json(document, bulk_data_uri_handler=lambda uri: (
            tmp_path / uri).read_bytes())
        uid = dataset.SOPInstanceUID
        assert dataset.PixelData == sent[uid][-len(dataset.PixelData):]
        assert dataset.Rows * dataset.Columns * 2 == len(dataset.PixelData)


def test_dicom_json_inlines_small_binary_values(generated, tmp_path):
    capture, _sent = generated
    status, _ = run_cli("--export", tmp_path, "--export-format", "dicom-json",
                        "-o", f"json_bulk_threshold:{10**7}", capture)
    assert status == 0
    assert not list(tmp_path.glob("*.bin"))
    document = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert "InlineBinary" in document["7FE00010"]


def test_transaction_tables(generated, tmp_path):
    capture, sent = generated
    assert run_cli("--export", tmp_path, "--export-format", "transactions-csv", capture)[0] == 0
    assert run_cli("--export", tmp_path, "--export-format", "transactions-json", capture)[0] == 0
    rows = list(csv.DictReader((tmp_path / "transactions.csv").open(newline="")))
    assert len(rows) == len(sent)
    assert {row["command"] for row in rows} == {"C-STORE-RQ"}
    assert {row["status"] for row in rows} == {"0x0000"}
    assert {row["calling_ae"] for row in rows} == {"BENCH_SCU"}
    assert all(float(row["latency_seconds"]) > 0 for row in rows)
    assert all(int(row["response_first_frame"]) > int(row["request_last_frame"]) for row in rows)
    table = json.loads((tmp_path / "transactions.json").read_text())
    assert [item["sop_instance"] for item in table] == [row["sop_instance"] for row in rows]


def test_pcap_export_keeps_dicom_frames_byte_exact(generated, tmp_path):
    capture, _sent = generated
    # Add a non-DICOM connection (HTTP) whose frames must be dropped.
    with open(capture, "rb") as handle:
        frames = [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(handle)]
    noise = dpkt.ethernet.Ethernet(frames[0][1])
    noise.data.data.sport, noise.data.data.dport = 40000, 80
    noise.data.data.data = b"GET / HTTP/1.1\r\n\r\n"
    mixed = tmp_path / "mixed.pcap"
    with open(mixed, "wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=65535)
        for number, (ts, buf) in enumerate(frames):
            writer.writepkt(buf, ts)
            if number == 5:
                writer.writepkt(bytes(noise), ts)
    status, _ = run_cli("--export", tmp_path / "out", "--export-format", "pcap", mixed)
    assert status == 0
    with open(tmp_path / "out" / "dicom.pcap", "rb") as handle:
        reader = dpkt.pcap.Reader(handle)
        assert reader.datalink() == 1
        exported = [(ts, bytes(buf)) for ts, buf in reader]
    assert [buf for _ts, buf in exported] == [buf for _ts, buf in frames]
    assert all(abs(a[0] - b[0]) < 1e-6 for a, b in zip(exported, frames))


# -- recorded fixtures ---------------------------------------------------------------------

FIXTURES = ROOT / "fixtures"


def _received_by_uid(folder: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            try:
                dataset = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:
                continue
            files[dataset.file_meta.MediaStorageSOPInstanceUID] = dataset_part(path)
    return files


@pytest.mark.parametrize("capture,received", [("store_dcmtk.pcapng", "store_dcmtk"),
                                              ("store_ts_pynetdicom.pcap", "store_ts"),
                                              ("qr_pynetdicom.pcap", "qr_get"),
                                              ("qr_pynetdicom.pcap", "qr_move")])
def test_fixture_exports_equal_what_the_scp_stored(tmp_path, capture, received):
    if not (FIXTURES / capture).exists() or not (FIXTURES / "received" / received).is_dir():
        pytest.skip(f"fixture {capture} not recorded")
    reference = _received_by_uid(FIXTURES / "received" / received)
    assert reference
    status, report = run_cli("--export", tmp_path, FIXTURES / capture)
    assert status == 0, report
    exported: dict[str, list[bytes]] = {}
    for path in tmp_path.iterdir():
        dataset = check_readable(path)
        exported.setdefault(dataset.file_meta.MediaStorageSOPInstanceUID, []).append(dataset_part(path))
    for uid, data in reference.items():
        assert uid in exported, f"{uid} not exported"
        # The same instance may travel twice (C-GET and C-MOVE, in different syntaxes).
        assert data in exported[uid], f"{uid}: data set bytes differ"


def test_query_identifiers_are_exported(tmp_path):
    capture = FIXTURES / "qr_pynetdicom.pcap"
    if not capture.exists():
        pytest.skip("fixture qr_pynetdicom.pcap not recorded")
    status, report = run_cli("--export", tmp_path, capture)
    assert status == 0, report
    names = [path.name for path in tmp_path.iterdir()]
    assert any("C-FIND-RQ" in name for name in names)
    assert any("C-FIND-RSP" in name for name in names)
    for path in tmp_path.iterdir():
        check_readable(path)


def test_mixed_link_types_become_pcapng(tmp_path):
    capture = FIXTURES / "multi_iface.pcapng"
    if not capture.exists():
        pytest.skip("fixture multi_iface.pcapng not recorded")
    status, _ = run_cli("--export", tmp_path, "--export-format", "pcap", capture)
    assert status == 0
    written = list(tmp_path.iterdir())
    assert len(written) == 1
    if shutil.which("tshark"):
        done = subprocess.run(["tshark", "-r", str(written[0])], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    analysis = analyze([str(written[0])], AnalysisConfig(), make_host())
    original = analyze([str(capture)], AnalysisConfig(), make_host())
    assert len(analysis.messages) == len(original.messages)


def test_fast_ethernet_path_matches_the_general_walk(generated):
    """parse_tcp's Ethernet/IPv4 fast path (export speed) gives what the general walk gives."""
    from dicomtui.core.wire.packet import LINKTYPE_ETHERNET, LINKTYPE_RAW, parse_tcp

    capture, _sent = generated
    with open(capture, "rb") as handle:
        frames = [bytes(buf) for _ts, buf in dpkt.pcap.Reader(handle)]
    cut = frames[10][:60]  # cut by a snapshot length: missing_length must agree too
    for frame in frames[:400] + [cut]:
        fast = parse_tcp(frame, LINKTYPE_ETHERNET)
        general = parse_tcp(frame[14:], LINKTYPE_RAW)
        assert fast._replace(payload_offset=fast.payload_offset - 14) == general
