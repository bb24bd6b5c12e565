"""The plugin host calls hooks through pluggy, with per-implementation isolation.

Plugin authors rely on pluggy's documented behaviour: ``tryfirst``/``trylast``,
``firstresult`` and wrappers (``wrapper=True`` and old-style ``hookwrapper``).
The host keeps them and adds isolation: an implementation that raises becomes
a PluginFailure (an error item) and the others still run.
"""

from __future__ import annotations

import re

import pytest
from capture_tools import FIXTURES
from conftest import analyze_path

import dicomtui
from dicomtui import hookimpl
from dicomtui.core.api.host import PluginHost
from dicomtui.cli import make_host

ECHO = FIXTURES / "echo_dcmtk.pcap"


def bare_host(*plugins) -> PluginHost:
    host = PluginHost((), load_installed=False)
    for number, plugin in enumerate(plugins):
        host.register(plugin, name=f"p{number}")
    return host


def test_call_first_with_a_new_style_wrapper_returns_the_result_not_a_generator():
    class Meaning:
        @hookimpl
        def dicomtui_status_meaning(self, command_field, status, sop_class):
            return ("failure", "inner")

    class Wrapper:
        @hookimpl(wrapper=True)
        def dicomtui_status_meaning(self, command_field, status, sop_class):
            category, meaning = yield
            return category, meaning + " (wrapped)"

    host = bare_host(Meaning(), Wrapper())
    assert host.call_first("dicomtui_status_meaning", command_field=1, status=0xA700,
                           sop_class="") == ("failure", "inner (wrapped)")


def test_old_style_hookwrapper_sees_the_outcome():
    seen = []

    class Meaning:
        @hookimpl
        def dicomtui_status_meaning(self, command_field, status, sop_class):
            return ("warning", "x")

    class Old:
        @hookimpl(hookwrapper=True)
        def dicomtui_status_meaning(self, command_field, status, sop_class):
            outcome = yield
            seen.append(outcome.get_result())

    host = bare_host(Meaning(), Old())
    assert host.call_first("dicomtui_status_meaning", command_field=1, status=1, sop_class="") == ("warning", "x")
    assert seen == [("warning", "x")]


def test_tryfirst_and_trylast_order_the_calls():
    order = []

    def plugin(label, **opts):
        class Plugin:
            @hookimpl(**opts)
            def dicomtui_check_analysis(self, analysis, report):
                order.append(label)
        return Plugin()

    host = bare_host(plugin("last", trylast=True), plugin("first", tryfirst=True), plugin("plain"))
    host.call("dicomtui_check_analysis", analysis=None, report=None)
    assert order == ["first", "plain", "last"]


def test_a_raising_implementation_is_isolated_and_attributed():
    calls = []

    class Raises:
        @hookimpl(tryfirst=True)
        def dicomtui_check_analysis(self, analysis, report):
            raise ZeroDivisionError("boom")

    class Works:
        @hookimpl
        def dicomtui_check_analysis(self, analysis, report):
            calls.append(host.current_plugin)

    host = bare_host(Raises(), Works())
    host.call("dicomtui_check_analysis", analysis=None, report=None)
    assert calls == ["p1"]
    assert [(f.plugin, f.where) for f in host.failures] == [("p0", "dicomtui_check_analysis")]
    assert "ZeroDivisionError: boom" in host.failures[0].error


def test_a_raising_wrapper_is_recorded_and_the_call_returns_nothing():
    class Wrapper:
        @hookimpl(wrapper=True)
        def dicomtui_status_meaning(self, command_field, status, sop_class):
            yield
            raise RuntimeError("wrapper broke")

    host = bare_host(Wrapper())
    assert host.call_first("dicomtui_status_meaning", command_field=1, status=1, sop_class="") is None
    assert host.failures and "wrapper broke" in host.failures[0].error


def test_registrations_keep_what_a_plugin_registered_before_it_raised():
    class Half:
        @hookimpl
        def dicomtui_register_rule_options(self, register):
            register("kept_option", 1, "registered before the failure")
            raise OSError("then failed")

    host = bare_host(Half())
    assert host.collect_registrations("dicomtui_register_rule_options") == [
        ("p0", ("kept_option", 1, "registered before the failure"))]
    assert len(host.failures) == 1


def test_a_wrapper_around_a_rule_hook_runs_in_a_real_analysis():
    wrapped = []

    class Timing:
        @hookimpl(wrapper=True)
        def dicomtui_check_message(self, message, analysis, report):
            result = yield
            wrapped.append(message.index)
            return result

    host = make_host(load_installed=False)
    host.register(Timing(), name="timing_wrapper")
    analysis = analyze_path(ECHO, host)
    assert wrapped == [message.index for message in analysis.messages]
    assert not host.failures


def test_the_package_docstring_example_validates_against_the_hookspecs():
    source = re.search(r"::\n\n((?:    .*\n|\n)+)", dicomtui.__doc__).group(1)
    namespace: dict = {}
    exec(compile("\n".join(line[4:] for line in source.splitlines()), "<docstring>", "exec"), namespace)

    class Example:
        dicomtui_check_message = staticmethod(namespace["dicomtui_check_message"])

    host = make_host(load_installed=False)
    host.register(Example(), name="docstring_example")  # pluggy validates the signature here
    host.manager.check_pending()
    analysis = analyze_path(ECHO, host)
    assert not [f for f in host.failures if f.plugin == "docstring_example"]
    assert analysis.finished


def test_an_invalid_hookimpl_is_rejected_by_pluggy():
    class Wrong:
        @hookimpl
        def dicomtui_check_message(self, message, association, report):  # the old docstring's signature
            pass

    with pytest.raises(Exception, match="association"):
        make_host(load_installed=False).register(Wrong(), name="wrong")


def test_the_built_in_plugins_satisfy_the_typed_protocols():
    from dicomtui.core.api import protocols
    from dicomtui.core.model.analysis import AnalysisConfig
    from dicomtui.core.pipeline.engine import DecoderContext
    from dicomtui.core.protocol.events import Numbering

    host = make_host(load_installed=False)
    exporters = host.collect_registrations("dicomtui_register_exporters")
    assert len(exporters) >= 4 and all(isinstance(args[0], protocols.Exporter) for _plugin, args in exporters)
    dictionaries = host.collect_registrations("dicomtui_register_dictionaries", config=AnalysisConfig())
    assert dictionaries and all(isinstance(args[0], protocols.TagDictionary) for _plugin, args in dictionaries)
    analysis = analyze_path(ECHO, host)
    decoder = host.call_first("dicomtui_make_connection_decoder", connection=analysis.connections[0],
                              config=analysis.config, pdu_decoders=analysis.pdu_decoders,
                              host=DecoderContext(analysis, analysis.connections[0], Numbering()))
    assert isinstance(decoder, protocols.ConnectionDecoder)
    assert isinstance(DecoderContext(analysis, analysis.connections[0], Numbering()), protocols.DecoderContext)


class _Relaying:
    """A site's connection decoder: the built-in one, with the site's own finding per A-ASSOCIATE-RQ."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def _relay(self, events) -> list:
        from dicomtui.core.model import Group, Severity
        from dicomtui.core.protocol.events import Finding, PduFramed

        out = list(events)
        for event in events:
            if type(event) is PduFramed and event.pdu_type == 1:
                pdu = event
                out.append(Finding(Severity.NOTE, Group.PROTOCOL, "site.associate-seen", {"detail": pdu.summary},
                                   pdu.last_frame, pdu.association, pdu.index, rule="site"))
        return out

    def receive_data(self, direction, stream_offset, data):
        return self._relay(self.inner.receive_data(direction, stream_offset, data))

    def receive_gap(self, direction, gap):
        return self._relay(self.inner.receive_gap(direction, gap))

    def finish(self):
        return self._relay(self.inner.finish()) + ["not an event"]


def test_a_replacement_connection_decoder_returns_events_through_the_hook():
    """The hook still replaces the decoder: its events reach the model, findings with its own codes too.

    The replacement has no ``skippable``/``skip`` (it gets every segment); what it returns
    that is not an event becomes a plugin error item, not a traceback.
    """
    from dicomtui.core.protocol.decoder import ConnectionDecoder

    class Site:
        @hookimpl(tryfirst=True)
        def dicomtui_make_connection_decoder(self, connection, config, pdu_decoders, host):
            return _Relaying(ConnectionDecoder(connection, config, pdu_decoders, host))

    plain = analyze_path(ECHO, make_host(load_installed=False))
    host = make_host(load_installed=False)
    host.register(Site(), name="site")
    replaced = analyze_path(ECHO, host)
    assert [pdu.summary for pdu in replaced.pdus] == [pdu.summary for pdu in plain.pdus]
    assert [message.command_name for message in replaced.messages] == [m.command_name for m in plain.messages]
    (site,) = [item for item in replaced.expert if item.rule == "site"]
    assert site.code == "site.associate-seen" and site.pdu == 0
    assert site.message == "site.associate-seen: A-ASSOCIATE request ECHOSCU --> STORESCP"
    (junk,) = [item for item in replaced.expert if item.group.value == "plugin"]
    assert "returned str, which is not a protocol event" in junk.message
