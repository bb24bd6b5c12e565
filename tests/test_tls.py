"""DICOM over TLS (plugins/tls): known-answer vectors, decryption against plaintext twins, diagnosis.

The fixtures (fixtures/tls/, made by fixtures/record_tls.py) are pynetdicom associations over
TLS 1.2 (ECDHE, AES-128-GCM and ChaCha20-Poly1305) and TLS 1.3 (AES-256-GCM, a KeyUpdate each
way), each with the key log Python's ``ssl`` wrote, and ``plain_twin.pcap``: the same
association without TLS.  Decrypted, each must give the twin's messages and exported objects
byte for byte.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import analyze_path
from dicomtui.cli import make_host
from dicomtui.core.api.export import ExportOptions
from dicomtui.core.views.export import exporters
from dicomtui.plugins.tls.keylog import KeyLog
from dicomtui.plugins.tls.keyschedule import hkdf_expand_label, prf12, traffic_keys13
from dicomtui.plugins.tls.protection import RecordAuthError, RecordDecryptor
from dicomtui.plugins.tls.suites import SUITES

TLS = Path(__file__).resolve().parent.parent / "fixtures" / "tls"
DECRYPTABLE = ["tls12_gcm", "tls12_chacha", "tls13_keyupdate", "tls13_chacha", "tls13_ccm", "tls13_hello_retry"]


# -- known answers -------------------------------------------------------------------------


def test_tls13_key_schedule_and_record_match_rfc8448():
    """RFC 8448 section 3 (simple 1-RTT, TLS_AES_128_GCM_SHA256): handshake and application keys
    from their traffic secrets, and the client's first application_data record decrypted."""
    suite = SUITES[0x1301]
    server_handshake = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    keys = traffic_keys13(suite, server_handshake)
    assert keys.key.hex() == "3fce516009c21727d0f2e4e86ee403bc"
    assert keys.iv.hex() == "5d313eb2671276ee13000b30"
    client_application = bytes.fromhex("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
    keys = traffic_keys13(suite, client_application)
    assert keys.key.hex() == "17422dda596ed5d9acd890e3c63f5051"
    assert keys.iv.hex() == "5b78923dee08579033e523d9"
    record = bytes.fromhex("1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd5"
                           "4a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4")
    decryptor = RecordDecryptor(suite, keys, tls13=True)
    assert decryptor.decrypt(record[0], 0x0303, record[5:]) == (23, bytes(range(0x32)))
    # The same record again is record 1 for the decryptor: it must not authenticate.
    with pytest.raises(RecordAuthError):
        decryptor.decrypt(record[0], 0x0303, record[5:])
    # HKDF-Expand-Label's layout (RFC 8446 7.1) as RFC 8448 uses it for the "derived" secret.
    early = bytes.fromhex("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
    empty_hash = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert hkdf_expand_label(early, b"derived", empty_hash, 32, "SHA256").hex() == \
        "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("hash_name", ["SHA256", "SHA384", "MD5-SHA1"])
def test_tls12_prf_matches_openssl(hash_name):
    """TLS 1.2's PRF, and (MD5-SHA1) TLS 1.0/1.1's, against OpenSSL's own."""
    from dicomtui.plugins.tls.keyschedule import prf10

    secret, label, seed = bytes(range(48)), b"key expansion", bytes(range(100, 164))
    result = subprocess.run(["openssl", "kdf", "-keylen", "100", "-kdfopt", f"digest:{hash_name}",
                             "-kdfopt", f"hexsecret:{secret.hex()}", "-kdfopt", f"hexseed:{(label + seed).hex()}",
                             "TLS1-PRF"], capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"openssl kdf TLS1-PRF unavailable: {result.stderr.strip()[:100]}")
    expected = bytes.fromhex(result.stdout.strip().replace(":", ""))
    if hash_name == "MD5-SHA1":
        assert prf10(secret, label, seed, 100) == expected
    else:
        assert prf12(secret, label, seed, 100, hash_name) == expected


# -- decryption against the plaintext twin ---------------------------------------------------


def _messages(analysis) -> list[tuple]:
    return [(message.direction, message.command_field, message.command_bytes, message.message_id,
             analysis.dataset_bytes(message)) for message in analysis.messages]


def _pdus(analysis) -> list[tuple]:
    return [(pdu.direction, pdu.pdu_type, analysis.pdu_bytes(pdu)) for pdu in analysis.pdus]


def _export(analysis, folder: Path) -> dict:
    exporters(make_host())["part10"].export(analysis, str(folder), ExportOptions(), None)
    return {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


SERVER_KEY = str(TLS / "certs" / "server.key")
# (capture, -o options, plaintext twin, what decrypts it)
CASES = [
    *[(name, {"tls.keylog_file": str(TLS / f"{name}.keys")}, "plain_twin", "key log") for name in DECRYPTABLE],
    ("tls13_keyupdate_dsb.pcapng", {}, "plain_twin", "key log embedded in the capture"),
    # static RSA: encrypt-then-MAC + extended master secret (OpenSSL's defaults), then neither
    ("tls12_rsa_cbc_etm", {"tls.rsa_keys": SERVER_KEY}, "plain_twin", "server's RSA key"),
    ("tls12_rsa_cbc", {"tls.rsa_keys": SERVER_KEY}, "plain_twin", "server's RSA key"),
    ("tls12_rsa_null", {"tls.rsa_keys": SERVER_KEY}, "plain_twin", "server's RSA key"),
    ("tls12_rsa_null", {}, "plain_twin", "NULL cipher"),
    ("tls12_rsa_ccm", {"tls.rsa_keys": SERVER_KEY}, "plain_twin", "server's RSA key"),
    # TLS 1.0: its PRF (MD5 + SHA-1) and CBC IVs chained from record to record
    ("tls10_cbc", {"tls.keylog_file": str(TLS / "tls10_cbc.keys")}, "plain_twin", "key log"),
    # dcmtk's storescu/storescp +tls: the retired AES profile and the NULL profile
    ("dcmtk_tls_aes", {"tls.rsa_keys": SERVER_KEY}, "dcmtk_plain_twin", "server's RSA key"),
    ("dcmtk_tls_null", {}, "dcmtk_plain_twin", "NULL cipher"),
]


def _path(name: str) -> Path:
    return TLS / (name if "." in name else f"{name}.pcap")


@pytest.fixture(scope="module")
def twins():
    return {name: analyze_path(_path(name)) for name in ("plain_twin", "dcmtk_plain_twin")}


@pytest.mark.parametrize(("name", "options", "twin_name", "source"), CASES)
def test_decrypted_capture_decodes_as_its_plaintext_twin(tmp_path, twins, name, options, twin_name, source):
    twin = twins[twin_name]
    analysis = analyze_path(_path(name), options=options)
    assert len(analysis.associations) == 1 and len(analysis.messages) == len(twin.messages) >= 4
    assert analysis.connections[0].transform_state.secret_source.startswith(source)
    assert _messages(analysis) == _messages(twin)
    assert _pdus(analysis) == _pdus(twin)
    (connection,) = analysis.connections
    assert connection.transform.startswith("TLS 1.")
    assert connection.transform_state.decrypted
    assert _export(analysis, tmp_path / "tls") == _export(twin, tmp_path / "plain")
    codes = [item.code for item in analysis.expert]
    assert "tls.decrypted" in codes and "tls.not-decrypted" not in codes
    expected = {"tls.suite-forbidden"} if "rsa" in name or "dcmtk" in name else set()
    if name == "tls10_cbc":
        expected = {"tls.version-forbidden"}
    if name == "tls12_rsa_cbc_etm":
        expected.add("tls.alert.decode_error")  # pynetdicom's SCP sends it after the release (tshark agrees)
    assert {item.code for item in analysis.expert if item.severity.label in ("warning", "error")} == expected


def test_tls13_key_updates_in_both_directions_are_followed():
    analysis = analyze_path(TLS / "tls13_keyupdate.pcap",
                            options={"tls.keylog_file": str(TLS / "tls13_keyupdate.keys")})
    session = analysis.connections[0].transform_state
    assert session.version == 0x0304 and session.suite.name == "TLS_AES_256_GCM_SHA384"
    assert [direction.key_updates for direction in session.directions] == [1, 1]
    assert all(not direction.undecrypted_records and not direction.stopped for direction in session.directions)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("name", [*DECRYPTABLE, "tls12_rsa_cbc_etm", "tls12_rsa_cbc", "tls12_rsa_null"])
def test_record_counts_match_tshark(name):
    """tshark's TLS dissector (told 2762 is TLS, given the same key log) sees the same records
    each way, and decrypts the same number of handshake Finished messages."""
    keys = TLS / f"{name}.keys"
    result = subprocess.run(["tshark", "-r", str(TLS / f"{name}.pcap"), "-d", "tcp.port==2762,tls",
                             "-o", f"tls.keylog_file:{keys}", "-T", "fields", "-e", "tcp.srcport",
                             "-e", "tls.record.content_type", "-e", "tls.handshake.type"],
                            capture_output=True, text=True, timeout=120)
    counts, finished = {}, 0
    for line in result.stdout.splitlines():
        port, types, handshakes = (line.split("\t") + ["", ""])[:3]
        if types:
            side = "server" if port == "2762" else "client"
            counts[side] = counts.get(side, 0) + len(types.split(","))
            finished += handshakes.split(",").count("20")
    analysis = analyze_path(TLS / f"{name}.pcap", options={"tls.keylog_file": str(keys)})
    transformed = analysis.transformed[0]
    session = transformed.transform
    ours = {("server" if transformed.ports[direction] == 2762 else "client"): session.directions[direction].records
            for direction in (0, 1)}
    assert counts == ours
    assert finished == 2


# -- without secrets -------------------------------------------------------------------------


def test_a_static_rsa_connection_without_secrets_names_both_secrets():
    codes = {item.code: item.message for item in analyze_path(TLS / "tls12_rsa_cbc.pcap").expert}
    assert "server's RSA private key (--tls-key)" in codes["tls.not-decrypted"]
    assert "static RSA" in codes["tls.suite-forbidden"]


def test_a_key_that_is_not_the_servers_decrypts_nothing(tmp_path):
    analysis = analyze_path(TLS / "tls12_rsa_cbc.pcap", options={"tls.rsa_keys": str(TLS / "certs" / "client.key")})
    assert not analysis.associations
    assert any(item.code == "tls.not-decrypted" for item in analysis.expert)
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    analysis = analyze_path(TLS / "tls12_rsa_cbc.pcap", options={"tls.rsa_keys": str(bad)})
    assert any(item.code == "tls.secret-unreadable" and "bad.pem" in item.message for item in analysis.expert)


@pytest.mark.parametrize("name", DECRYPTABLE)
def test_without_secrets_one_finding_says_which_secret_would_decrypt(name):
    for ports in ({}, {"ports": frozenset({2762})}):  # 2762 given as a DICOM port: still never PDUs
        analysis = analyze_path(TLS / f"{name}.pcap", **ports)
        assert not analysis.associations and not len(analysis.pdus) and not analysis.connections
        (item,) = analysis.expert
        assert item.code == "tls.not-decrypted" and "key log" in item.message
        assert "--tls-key " not in item.message  # an ECDHE / TLS 1.3 connection: the server key would not help


def test_a_wrong_key_log_is_an_authentication_finding_not_wrong_bytes(tmp_path):
    lines = (TLS / "tls12_gcm.keys").read_text().split()
    label, client_random, master = lines[-3:]
    wrong = tmp_path / "wrong.keys"
    wrong.write_text(f"{label} {client_random} {master[:-2]}{(int(master[-2:], 16) ^ 1):02x}\n")
    analysis = analyze_path(TLS / "tls12_gcm.pcap", options={"tls.keylog_file": str(wrong)})
    assert not analysis.associations
    codes = [item.code for item in analysis.expert]
    assert codes.count("tls.record-not-authentic") == 2  # the first record each way (Finished)


def test_an_unreadable_key_log_is_a_warning(tmp_path):
    analysis = analyze_path(TLS / "tls12_gcm.pcap", options={"tls.keylog_file": str(tmp_path / "missing.keys")})
    assert any(item.code == "tls.secret-unreadable" and "missing.keys" in item.message for item in analysis.expert)


def test_a_growing_key_log_is_read_again(tmp_path):
    path = tmp_path / "live.keys"
    path.write_text("")
    keylog = KeyLog([str(path)])
    random = bytes(range(32))
    assert keylog.get("CLIENT_RANDOM", random) is None
    path.write_text(f"# comment\nCLIENT_RANDOM {random.hex()} {'ab' * 48}\nnot a line\n")
    assert keylog.get("CLIENT_RANDOM", random) == bytes.fromhex("ab" * 48)
    assert "ab" * 48 not in repr(keylog) and any("malformed" in problem for problem in keylog.problems)


def test_secrets_never_reach_the_output(capsys):
    from dicomtui.cli import main

    keys = TLS / "tls13_keyupdate.keys"
    secrets = [line.split()[2].lower() for line in keys.read_text().splitlines() if line.strip()]
    outputs = {}
    for mode in ("--json", "--expert", "--summary"):
        capsys.readouterr()
        assert main([mode, "--tls-keylog", str(keys), str(TLS / "tls13_keyupdate.pcap")]) == 0
        captured = capsys.readouterr()
        outputs[mode] = captured.out
        assert not any(secret in (captured.out + captured.err).lower() for secret in secrets)
    assert "C-STORE-RQ" in outputs["--summary"] and "decrypted with the key log" in outputs["--expert"]
    document = json.loads(outputs["--json"])
    assert len(document["messages"]) == 6
    (connection,) = document["connections"]
    assert connection["transform"] == "TLS 1.3 (TLS_AES_256_GCM_SHA384)"
    assert connection["layer"]["decrypted"] and connection["layer"]["key_updates"] == [1, 1]
    assert connection["layer"]["server_certificate"]["subject"] == "CN=pacs.example,O=dicomtui fixtures"
    capsys.readouterr()
    assert main(["--json", "-o", f"tls.keylog_file:{keys}", str(TLS / "tls13_keyupdate.pcap")]) == 0
    assert json.loads(capsys.readouterr().out)["messages"] == document["messages"]


# -- the handshake diagnosed -----------------------------------------------------------------


def _codes(name: str) -> dict[str, str]:
    return {item.code: item.message for item in analyze_path(TLS / f"{name}.pcap").expert}


def test_an_expired_server_certificate_and_the_clients_alert():
    codes = _codes("tls_expired_cert")
    assert "renew" in codes["tls.alert.certificate_expired"]
    assert "2024-01-31" in codes["tls.certificate-expired"] and "CN=pacs.example" in codes["tls.certificate-expired"]
    assert "tls.not-decrypted" not in codes  # nothing was encrypted: no secret to ask for


def test_an_unknown_ca_alert_names_the_issuer_and_the_fix():
    message = _codes("tls_unknown_ca")["tls.alert.unknown_ca"]
    assert message.startswith("TLS 127.0.0.1:") and "client sent a fatal alert unknown_ca (48)" in message
    assert "issuer CN=untrusted CA" in message and "trust store" in message


def test_a_missing_client_certificate_is_named_as_the_cause():
    codes = _codes("tls_no_client_cert")
    assert set(codes) == {"tls.client-certificate-missing", "tls.alert.handshake_failure"}
    assert "asked for a client certificate and the client sent none" in codes["tls.alert.handshake_failure"]


def test_no_shared_cipher_suite_names_what_the_client_offered():
    codes = _codes("tls_no_shared_suite")
    assert list(codes) == ["tls.alert.handshake_failure"]
    message = codes["tls.alert.handshake_failure"]
    assert "server sent a fatal alert handshake_failure (40)" in message
    assert "the client offered TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 (up to TLS 1.2)" in message


def test_a_version_mismatch_says_what_the_client_offered():
    codes = _codes("tls_version_mismatch")
    assert list(codes) == ["tls.alert.protocol_version"]
    assert "server sent a fatal alert protocol_version (70)" in codes["tls.alert.protocol_version"]
    assert "the client offered TLS 1.2" in codes["tls.alert.protocol_version"]


def test_batch_mode_decrypts_and_diagnoses_as_the_single_pass(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    pytest.importorskip("duckdb")
    from batch_tools import read_table
    from dicomtui.cli import main

    keys = str(TLS / "tls12_gcm.keys")
    paths = [str(TLS / "tls12_gcm.pcap"), str(TLS / "tls_unknown_ca.pcap")]
    assert main(["--batch", str(tmp_path / "out"), "--tls-keylog", keys, *paths]) == 0
    capsys.readouterr()
    assert main(["--json", "--tls-keylog", keys, *sum((["-r", path] for path in paths), [])]) == 0
    single = json.loads(capsys.readouterr().out)
    assert len(read_table(tmp_path / "out", "messages")) == len(single["messages"]) == 6
    batch_findings = sorted((row["code"], row["message"]) for row in read_table(tmp_path / "out", "expert"))
    assert batch_findings == sorted((item["code"], item["message"]) for item in single["expert"])
    assert {"tls.decrypted", "tls.alert.unknown_ca"} <= {code for code, _message in batch_findings}


def test_anonymize_writes_the_decrypted_association_as_a_plaintext_capture(tmp_path, capsys):
    from dicomtui.cli import main

    out = tmp_path / "shared.pcapng"
    assert main(["--anonymize", str(out), "--tls-keylog", str(TLS / "tls12_gcm.keys"),
                 str(TLS / "tls12_gcm.pcap")]) == 0
    shared = analyze_path(out)
    assert len(shared.messages) == 6 and not shared.transformed  # plain DICOM, no TLS left
    assert [message.command_field for message in shared.messages] == [0x0030, 0x8030, 0x0001, 0x8001, 0x0001,
                                                                      0x8001]
    # Without the key log the TLS connection is not DICOM: nothing of it is written.
    assert main(["--anonymize", str(tmp_path / "none.pcapng"), str(TLS / "tls12_gcm.pcap")]) == 0
    assert not analyze_path(tmp_path / "none.pcapng").connections


@pytest.mark.parametrize(("name", "dropped"), [("tls12_gcm", (19,)), ("tls12_chacha", (17, 19)),
                                               ("tls13_keyupdate", (22,)), ("tls12_rsa_null", (18,))])
def test_decryption_resumes_after_lost_records_with_the_plaintext_at_its_offsets(tmp_path, twins, name, dropped):
    """Frames carrying whole records of a C-STORE's data set dropped: the records after them are
    found again, and every decrypted byte sits at the offset it has in the plaintext twin."""
    from capture_tools import read_frames, write_pcap

    frames = read_frames(_path(name))
    damaged = write_pcap(tmp_path / "damaged.pcap", [frame for index, frame in enumerate(frames)
                                                     if index + 1 not in dropped])  # frame numbers
    keys = TLS / f"{name}.keys"
    options = {"tls.keylog_file": str(keys)} if "null" not in name else {}
    analysis = analyze_path(damaged, options=options)
    codes = [item.code for item in analysis.expert]
    assert "tls.resynchronised" in codes and "tls.record-not-authentic" not in codes
    twin = twins["plain_twin"]
    (connection,) = analysis.connections
    for direction in (0, 1):
        inner, plain = connection.streams[direction], twin.connections[0].streams[direction]
        assert inner.end == plain.end  # the lost plaintext's length is exact
        held = 0
        for offset, length in zip(inner.stream_offsets, inner.lengths):
            assert inner.read(offset, offset + length, analysis.buffers) == \
                plain.read(offset, offset + length, twin.buffers)
            held += length
        assert held == inner.end - sum(gap.length for gap in inner.gaps)
    assert connection.streams[0].gaps  # the dropped records are a gap of the DICOM stream
    # The association still ends normally, and every object not crossing the gap is exported.
    assert analysis.associations[0].state == "released"
    assert sum(message.complete for message in analysis.messages) >= len(twin.messages) - 1


@pytest.mark.parametrize("name", ["tls12_gcm", "tls13_keyupdate"])
def test_a_key_log_written_while_the_capture_runs_decrypts_what_came_before(tmp_path, twins, name):
    """Live capture: the peer writes its key log after records already went by.  The session
    keeps them and decrypts them once the file has grown (fed here record by record, the key
    log written after the first application data)."""
    from capture_tools import read_frames, tcp_of
    from dicomtui.plugins.tls.session import TlsSession
    from dicomtui.plugins.tls.sources import SecretSources

    keys = tmp_path / "live.keys"
    keys.write_text("")
    session = TlsSession(None, SecretSources([str(keys)]))
    inner, client_port, application_seen = [b"", b""], None, 0
    for frame in read_frames(_path(name)):
        parts = tcp_of(frame)
        if not parts or not len(parts[2].data):
            continue
        tcp = parts[2]
        client_port = client_port or tcp.sport
        direction = 0 if tcp.sport == client_port else 1
        inner[direction] += session.feed(direction, memoryview(bytes(tcp.data)))
        application_seen += bytes(tcp.data)[:1] == b"\x17"
        if application_seen == 3 and not keys.read_text():
            assert inner == [b"", b""]  # nothing yet: the records are kept
            keys.write_text((TLS / f"{name}.keys").read_text())
    twin = twins["plain_twin"].connections[0]
    for direction in (0, 1):
        assert inner[direction] == twin.streams[direction].read(0, twin.streams[direction].end,
                                                                twins["plain_twin"].buffers)


def test_every_tls_fixture_finding_carries_a_code(capsys):
    """As tests/test_expert_codes.py for the top-level fixtures: every finding of every TLS
    fixture (with and without its secrets) has a dotted code; TLS ones start with tls."""
    from dicomtui.cli import main

    code = __import__("re").compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")
    for capture in sorted(TLS.glob("*.pcap*")):
        keys = capture.with_suffix(".keys")
        for extra in ([], ["--tls-keylog", str(keys)] if keys.exists() else []):
            assert main(["--json", *extra, str(capture)]) in (0, None)
            for item in json.loads(capsys.readouterr().out)["expert"]:
                assert code.match(item["code"]), item
                assert item["rule"] != "tls.rules" or item["code"].startswith("tls."), item


def test_a_key_update_lost_in_a_gap_is_said_not_guessed(tmp_path):
    """The frame with the client's KeyUpdate dropped: the records after it are under keys the
    key log cannot give, so nothing more of that direction is decrypted — and it is said."""
    from capture_tools import read_frames, write_pcap

    frames = read_frames(TLS / "tls13_keyupdate.pcap")
    damaged = write_pcap(tmp_path / "damaged.pcap", [frame for number, frame in enumerate(frames, 1)
                                                     if number != 18])  # tshark: frame 18 is the KeyUpdate
    analysis = analyze_path(damaged, options={"tls.keylog_file": str(TLS / "tls13_keyupdate.keys")})
    gaps = [item.message for item in analysis.expert if item.code == "tls.gap"]
    assert any("no record after the capture gap decrypted again" in message for message in gaps)
    assert "tls.record-not-authentic" not in [item.code for item in analysis.expert]
    # What came before the gap is decoded (the C-ECHO), nothing after it is invented.
    commands = [message.command_field for message in analysis.messages if message.direction == 0]
    assert commands[0] == 0x0030 and 0x0001 not in [m.command_field for m in analysis.messages if m.complete]


# -- hostile input -----------------------------------------------------------------------------


def _records_of(name: str) -> list[tuple[int, bytes]]:
    """(TCP direction, payload) of a fixture's data segments, in capture order."""
    from capture_tools import read_frames, tcp_of

    segments, client = [], None
    for frame in read_frames(_path(name)):
        parts = tcp_of(frame)
        if parts and len(parts[2].data):
            client = client or parts[2].sport
            segments.append((0 if parts[2].sport == client else 1, bytes(parts[2].data)))
    return segments


def _keys(name: str):
    from dicomtui.plugins.tls.sources import SecretSources

    return SecretSources([str(TLS / f"{name}.keys")])


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["tls12_gcm", "tls13_keyupdate", "tls12_rsa_cbc_etm"]),
       flips=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(1, 255)), max_size=4),
       cuts=st.lists(st.integers(0, 10 ** 6), max_size=3), gap_at=st.one_of(st.none(), st.integers(0, 60)))
def test_damaged_tls_streams_never_raise_and_never_yield_unauthenticated_bytes(name, flips, cuts, gap_at):
    """Flipped bytes, segments cut in two, a gap: the session raises nothing, and what it returns
    is always a piece of the plaintext (authenticated records only; NULL is not among these)."""
    from dicomtui.plugins.tls.session import TlsSession

    segments = _records_of(name)
    flat = [bytearray(data) for _direction, data in segments]
    total = sum(len(data) for data in flat)
    for position, mask in flips:
        position %= total
        for data in flat:
            if position < len(data):
                data[position] ^= mask
                break
            position -= len(data)
    pieces: list[tuple[int, bytes]] = []
    for (direction, _data), data in zip(segments, flat):
        cut = (cuts.pop() % len(data)) if cuts else len(data)
        pieces += [(direction, bytes(data[:cut])), (direction, bytes(data[cut:]))]
    session = TlsSession(None, _keys(name) if "rsa" not in name else __import__(
        "dicomtui.plugins.tls.sources", fromlist=["SecretSources"]).SecretSources([], [SERVER_KEY]))
    out, position = [b"", b""], [0, 0]  # inner bytes returned; inner offset reached (gaps included)
    whole = _twin_plaintext()
    for index, (direction, data) in enumerate(pieces):
        if index == gap_at:
            position[direction] += session.gap(direction, len(data)) or 0
            continue
        got = session.feed(direction, memoryview(data))
        position[direction] += session.take_gap(direction)  # lost before what this feed returned
        assumed = any("taken as NewSessionTickets" in event.detail for event in session.events
                      if event.direction == direction)
        if assumed:  # the documented guess (docs/tls.md): the bytes are right, their offsets may not be
            assert got in whole[direction]
        else:  # every returned byte is the plaintext's byte at that offset: nothing unauthenticated, nothing moved
            assert got == whole[direction][position[direction]:position[direction] + len(got)]
        position[direction] += len(got)
        out[direction] += got
    session.summary()
    session.details()
    for direction in (0, 1):
        if gap_at is None and not flips:
            assert out[direction] == whole[direction]


@__import__("functools").lru_cache(maxsize=1)
def _twin_plaintext() -> tuple[bytes, bytes]:
    twin = analyze_path(TLS / "plain_twin.pcap")
    streams = twin.connections[0].streams
    return tuple(stream.read(0, stream.end, twin.buffers) for stream in streams)


@settings(max_examples=100, deadline=None)
@given(segments=st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0, 0, 0, 1, 2, 4]),
                                   st.binary(min_size=0, max_size=300)), min_size=1, max_size=12),
       header=st.sampled_from([b"\x16\x03\x01\x00\x80\x01", b"\x17\x03\x03\x40\x00", b"\x15\x03\x03\x00\x02"]))
def test_hostile_tls_looking_connections_are_findings_not_tracebacks(tmp_path_factory, segments, header):
    """Any bytes after a TLS-looking first record, on DICOM's port (104 here), lost, reordered or
    repeated: the analysis finishes with no plugin failure (a transform that raised would be one)."""
    from fuzz.harnesses import conversation_capture

    direction, flags, payload = segments[0]
    segments[0] = (0, flags & ~1, header + payload)
    path = tmp_path_factory.mktemp("hostile") / "tls.pcap"
    path.write_bytes(conversation_capture(segments))
    analysis = analyze_path(path)
    assert not [item for item in analysis.expert if item.group.value == "plugin"]
    assert not analysis.associations or analysis.connections[0].transform == ""


def test_the_server_key_in_pkcs1_decrypts_as_in_pkcs8(tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(SERVER_KEY).read_bytes(), password=None)
    pkcs1 = tmp_path / "server_pkcs1.pem"
    pkcs1.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()))
    assert pkcs1.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    analysis = analyze_path(TLS / "dcmtk_tls_aes.pcap", options={"tls.rsa_keys": f"{tmp_path / 'none.pem'}:{pkcs1}"})
    assert len(analysis.messages) == 4
    assert [item.code for item in analysis.expert].count("tls.secret-unreadable") == 1  # none.pem, named


def test_tls_on_another_port_is_decrypted_with_secrets_and_left_alone_without(tmp_path):
    """Port 2762 moved to 8443: without secrets the connection is not ours (not kept, no finding);
    with the key log its plaintext is found to be DICOM by the A-ASSOCIATE-RQ heuristic."""
    from capture_tools import read_frames, rebuild, tcp_of, write_pcap

    frames = []
    for frame in read_frames(TLS / "tls12_gcm.pcap"):
        parts = tcp_of(frame)
        if parts:
            tcp = parts[2]
            frame = rebuild(frame, sport=8443 if tcp.sport == 2762 else None, dport=8443 if tcp.dport == 2762 else None)
        frames.append(frame)
    moved = write_pcap(tmp_path / "moved.pcap", frames)
    plain = analyze_path(moved)
    assert not plain.transformed and not plain.expert and not plain.associations
    decrypted = analyze_path(moved, options={"tls.keylog_file": str(TLS / "tls12_gcm.keys")})
    assert len(decrypted.messages) == 6 and decrypted.connections[0].detection == "A-ASSOCIATE-RQ"
    assert decrypted.connections[0].server.endswith(":8443")
