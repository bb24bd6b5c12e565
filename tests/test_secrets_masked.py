"""User identity secrets appear nowhere: headless output, exported files, the TUI screen.

One capture holds a connection per variant of ``secret_captures.variants()``:
identity types 1-5 with and without secondary fields, two 0x58 items, broken
lengths and unknown trailing items, a retransmitted request, overlapping and
reordered resends, tails lost to the capture (and retransmitted after the gap
was declared), Kerberos and JWT server responses (0x59) in the A-ASSOCIATE-AC,
an odd server port, and a large request in several segments whose sequence
numbers wrap.  Each secret is a unique marker; no 10-byte window of any marker
may appear in anything dicomtui prints or writes, or on the terminal UI's
screen (hex and ASCII columns of the bytes pane included).  The same checks run
on a real capture (``negotiation_pynetdicom.pcap``: pynetdicom's AE with a
username/passcode and a patched server response, recorded with tcpdump).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import secret_captures as captures  # noqa: E402
from capture_tools import FIXTURES  # noqa: E402
from conftest import analyze_path, requires_tshark  # noqa: E402
from hostile_tools import headless_modes, run_main  # noqa: E402

from dicomtui.cli import make_host
from dicomtui.core.pipeline import AnalysisConfig
from dicomtui.core.protocol.secrets import associate_secret_ranges
from dicomtui.core.views.export import exporters

WINDOW = 10
REAL_SECRETS = [b"s3cret", b"server-response"]


def windows(secrets: list[bytes]) -> dict[bytes, bytes]:
    """Every ``WINDOW``-byte piece of every secret (whole secrets when shorter), mapped to its secret."""
    found: dict[bytes, bytes] = {}
    for secret in secrets:
        starts = range(len(secret) - WINDOW + 1) if len(secret) > WINDOW else [0]
        found.update((secret[start : start + WINDOW], secret) for start in starts)
    return found


def find_leak(data: bytes, pieces: dict[bytes, bytes]) -> bytes | None:
    return next((piece for piece in pieces if piece in data), None)


def assert_no_secret(data: bytes, pieces: dict[bytes, bytes], where: str) -> None:
    leaked = sorted({secret for piece, secret in pieces.items() if piece in data})
    if leaked:
        piece = find_leak(data, pieces)
        at = data.index(piece)
        raise AssertionError(f"{len(leaked)} secret(s) in {where}: {[secret[:40] for secret in leaked]}; "
                             f"first: {data[max(0, at - 80) : at + 80]!r}")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, list[bytes]]:
    data, secrets = captures.secrets_capture()
    path = tmp_path_factory.mktemp("secrets") / "user_identity_variants.pcap"
    path.write_bytes(data)
    # The capture does carry them in clear (split across segments, some of them).
    assert all(find_leak(data, windows([secret])) for secret in secrets)
    return path, secrets


@pytest.fixture(scope="module")
def real() -> tuple[Path, list[bytes]]:
    path = FIXTURES / "negotiation_pynetdicom.pcap"
    if not path.exists() or not all(secret in path.read_bytes() for secret in REAL_SECRETS):
        pytest.skip("negotiation_pynetdicom.pcap (user identity with passcode) not recorded")
    return path, REAL_SECRETS


@pytest.fixture(params=["synthetic", "real"])
def capture(request) -> tuple[Path, list[bytes]]:
    return request.getfixturevalue(request.param)


# -- the capture is what it claims -----------------------------------------------------------------------


def test_the_variants_reach_the_analysis_as_intended(synthetic):
    path, _secrets = synthetic
    analysis = analyze_path(path)
    variants = captures.variants()
    assert len(analysis.connections) == len(variants)
    by_port = {connection.client_port: connection for connection in analysis.connections}
    requests = {pdu.connection: pdu for pdu in analysis.pdus if pdu.pdu_type == 1}
    for number, variant in enumerate(variants):
        connection = by_port[40000 + number]
        request = requests[analysis.connections.index(connection)]
        lost = variant.deliver.startswith("lost-tail")
        assert request.complete is not lost, variant.name
        assert bool(connection.streams[0].gaps) is lost, variant.name
        if variant.deliver != "whole":
            assert request.first_frame != request.last_frame or variant.deliver == "retransmitted" or lost
    large = analysis.connections[-1]
    assert len(large.streams[0].frames) > 4 and large.server_port == 104


@pytest.mark.parametrize("variant", captures.variants(), ids=lambda variant: variant.name)
def test_every_secret_byte_is_in_a_masked_range(variant):
    for pdu in (variant.request, variant.accept):
        masked = bytearray(pdu)
        for start, end in associate_secret_ranges(pdu):
            masked[start:min(end, len(pdu))] = b"*" * (min(end, len(pdu)) - start)
        assert find_leak(bytes(masked), windows(variant.secrets)) is None
        assert bytes(masked[:74]) == pdu[:74]  # the fixed fields stay readable
        for cut in range(0, len(pdu), 7):  # whatever prefix the capture holds
            prefix = bytearray(pdu[:cut])
            for start, end in associate_secret_ranges(pdu[:cut]):
                prefix[start:min(end, cut)] = b"*" * max(0, min(end, cut) - start)
            assert find_leak(bytes(prefix), windows([secret[:8] for secret in variant.secrets])) is None, cut


def test_usernames_and_plain_items_are_not_masked():
    variant = next(variant for variant in captures.variants() if variant.name == "t2-passcode")
    ranges = associate_secret_ranges(variant.request)
    secret = variant.request.index(variant.secrets[0])
    assert ranges == [(secret, secret + len(variant.secrets[0]))]
    assert associate_secret_ranges(captures.tools.release_rq()) == []


# -- headless modes and exporters --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", headless_modes())
def test_no_secret_in_headless_output(capture, mode, capfdbinary):
    path, secrets = capture
    status, out, err = run_main(capfdbinary, mode, str(path))
    assert status == 0, err
    pieces = windows(secrets)
    assert_no_secret(out, pieces, f"{mode} stdout")
    assert_no_secret(err, pieces, f"{mode} stderr")


@pytest.mark.parametrize("export_format", sorted(exporters(make_host())))
def test_no_secret_in_any_exported_file(capture, export_format, tmp_path, capfdbinary):
    path, secrets = capture
    out = tmp_path / export_format
    status, printed, err = run_main(capfdbinary, "--export", str(out), "--export-format", export_format,
                                    "--include-commands", "--include-incomplete", str(path))
    assert status in (0, 3), err
    pieces = windows(secrets)
    assert_no_secret(printed + err, pieces, "export output")
    files = sorted(out.rglob("*"))
    assert files, f"{export_format} wrote nothing"
    for file in files:
        assert_no_secret(file.read_bytes(), pieces, f"{export_format}: {file.name}")


def test_pcap_export_keeps_every_frame_and_masks_only_secrets(synthetic, tmp_path, capfdbinary):
    """Same frames, same lengths; the only bytes changed are '*' over secrets (and their frames' neighbours
    in unparseable tails)."""
    from capture_tools import read_frames

    path, _secrets = synthetic
    status, _out, err = run_main(capfdbinary, "--export", str(tmp_path), "--export-format", "pcap", str(path))
    assert status == 0, err
    before = read_frames(path)
    after = read_frames(tmp_path / "dicom.pcap")
    assert len(after) == len(before)
    changed = 0
    for original, exported in zip(before, after):
        assert len(original.data) == len(exported.data)
        differing = [index for index, (a, b) in enumerate(zip(original.data, exported.data)) if a != b]
        changed += bool(differing)
        assert all(exported.data[index] == ord("*") for index in differing)
    assert changed >= len(captures.variants()) - 1  # every variant but type 1 without secondary field


# -- the terminal UI -----------------------------------------------------------------------------------------

BYTES_ROW = re.compile(r"([0-9a-f]{8})  ((?:[0-9a-f]{2} ?){1,16})\s+(\S.*)?$")


def _screen(app) -> tuple[str, bytes, str]:
    """The screen's text, and the bytes pane as drawn on it: (screen, bytes read back from the hex
    column, ASCII column)."""
    lines = ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]
    region = app.bytes_view.content_region
    data, text = bytearray(), []
    for line in lines[region.y : region.y + region.height]:
        match = BYTES_ROW.match(line[region.x : region.x + region.width].rstrip())
        if match:
            count = len(match.group(2).split())
            data += bytes.fromhex(match.group(2))
            text.append((match.group(3) or "")[-count:])
    return "\n".join(lines), bytes(data), "".join(text)


def _height_for(pdu) -> int:
    """A terminal height whose bytes pane (2/5 of a tall screen, 16 bytes a row) holds the whole PDU."""
    return max(60, (pdu.total_length // 16 + 4) * 5 // 2 + 16)


def test_no_secret_on_the_tui_screen(capture, plugin_host):
    """Each A-ASSOCIATE PDU that carries a secret (or lost part of itself) selected in turn, on a
    screen tall enough for all of its bytes: nothing of a secret on the screen, in hex or ASCII."""
    from dicomtui.tui.app import DicomApp

    path, secrets = capture
    pieces = windows(secrets)
    analysis = analyze_path(path)

    def carries_secret(pdu) -> bool:
        data = analysis.pdu_bytes(pdu)
        return data is None or find_leak(data, pieces) is not None

    associate = sorted((pdu for pdu in analysis.pdus if pdu.pdu_type in (1, 2) and carries_secret(pdu)),
                       key=lambda pdu: pdu.total_length)
    assert len(associate) >= (2 if path.name.startswith("negotiation") else len(captures.variants()))

    async def run() -> int:
        app = DicomApp([str(path)], AnalysisConfig(), plugin_host)
        shown = 0
        height = _height_for(associate[0])
        async with app.run_test(size=(160, height)) as pilot:
            for _ in range(200):  # until indexing is done (polled: a superseded detail worker is cancelled)
                await pilot.pause(0.05)
                if app.index is not None and app.analysis is not None and app.analysis.finished \
                        and all(worker.is_finished for worker in app.workers):
                    break
            packets = app.packet_list
            for pdu in associate:
                if _height_for(pdu) > height:
                    height = _height_for(pdu)
                    await pilot.resize_terminal(160, height)
                packets.cursor_to(packets.row_of(pdu.index))
                title = f"PDU {pdu.index + 1}"
                for _ in range(200):  # until the bytes pane shows this PDU
                    await pilot.pause(0.01)
                    if app.bytes_view.title == title:
                        break
                await pilot.pause(0)
                screen, data, text = _screen(app)
                where = f"{path.name} PDU {pdu.index + 1}"
                assert_no_secret(data, pieces, f"bytes pane hex of {where}")
                assert_no_secret(text.encode(), pieces, f"bytes pane ASCII of {where}")
                assert_no_secret(screen.encode(), pieces, f"screen of {where}")
                if pdu.complete:  # the whole PDU is on the screen, masked
                    assert app.bytes_view.title == title
                    assert len(data) == pdu.total_length, where
                    original = analysis.pdu_bytes(pdu)
                    assert all(a == b or b == ord("*") for a, b in zip(original, data)), where
                    shown += data != original
        return shown

    shown_masked = asyncio.run(run())
    assert shown_masked == sum(pdu.complete for pdu in associate)


@requires_tshark
def test_tshark_sees_no_secret_in_the_exported_pcap(capture, tmp_path, capfdbinary):
    """Wireshark's own decode and hex dump of the export (DICOM on the odd port too) shows none."""
    path, secrets = capture
    status, _out, err = run_main(capfdbinary, "--export", str(tmp_path), "--export-format", "pcap", str(path))
    assert status == 0, err
    pieces = windows(secrets)

    def tshark(capture_path: Path) -> bytes:
        result = subprocess.run(["tshark", "-r", str(capture_path), "-d", "tcp.port==4242,dicom", "-V", "-x"],
                                capture_output=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert find_leak(tshark(path), pieces) is not None  # tshark does show them in the original
    assert_no_secret(tshark(tmp_path / "dicom.pcap"), pieces, "tshark -V -x of the exported pcap")
