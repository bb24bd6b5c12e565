"""The built-in plugins: the one place that names them.

Each is imported by its own small function, not by a module-name string: the
import is then a plain import statement (import-linter and a reader see this
module depend on the plugins), and it still happens only when the plugin host
loads the plugin — after ``--disable-plugin`` is known, one plugin at a time
(a broken one is a failure the host records), and only for the plugins the
mode needs (``--summary`` imports no rule or exporter: each pulls in pydicom's
codec, which costs more than the analysis of a small capture).

The names are what ``--list-plugins`` shows and ``--disable-plugin`` takes.
"""

from __future__ import annotations

from dicomtui.core.api.host import BuiltinPlugin, PluginHost

# Decoding and the model: every mode needs these.


def _pdu():
    from dicomtui.plugins import pdu
    return pdu


def _connection():
    from dicomtui.plugins import connection
    return connection


def _status():
    from dicomtui.plugins import status
    return status


def _dictionary():
    from dicomtui.plugins import dictionary
    return dictionary


def _dataset():
    from dicomtui.plugins import dataset
    return dataset


def _linking():
    from dicomtui.plugins import linking
    return linking


def _tls():
    from dicomtui.plugins.tls import transform
    return transform


# Expert rules: where findings are shown or --fail-on asks for them.


def _rules_association():
    from dicomtui.plugins.rules import association
    return association


def _rules_protocol():
    from dicomtui.plugins.rules import protocol
    return protocol


def _rules_status():
    from dicomtui.plugins.rules import status
    return status


def _rules_timing():
    from dicomtui.plugins.rules import timing
    return timing


def _rules_slowness():
    from dicomtui.plugins.rules import slowness
    return slowness


def _rules_capture():
    from dicomtui.plugins.rules import capture
    return capture


def _rules_tls():
    from dicomtui.plugins.tls import rules
    return rules


def _rules_query():
    from dicomtui.plugins.rules import query
    return query


def _rules_workflow():
    from dicomtui.plugins.rules import workflow
    return workflow


def _rules_data():
    from dicomtui.plugins.rules import data
    return data


# Exporters: --export, the UI and the modes that list them.


def _export_part10():
    from dicomtui.plugins.export import part10
    return part10


def _export_dicom_json():
    from dicomtui.plugins.export import dicom_json
    return dicom_json


def _export_transactions():
    from dicomtui.plugins.export import transactions
    return transactions


def _export_pcap():
    from dicomtui.plugins.export import pcap
    return pcap


DECODING_PLUGINS = (
    BuiltinPlugin("pdu", _pdu),
    BuiltinPlugin("connection", _connection),
    BuiltinPlugin("status", _status),
    BuiltinPlugin("dictionary", _dictionary),
    BuiltinPlugin("dataset", _dataset),
    BuiltinPlugin("linking", _linking),
    BuiltinPlugin("tls.transform", _tls),
)
RULE_PLUGINS = (
    BuiltinPlugin("rules.association", _rules_association),
    BuiltinPlugin("rules.protocol", _rules_protocol),
    BuiltinPlugin("rules.status", _rules_status),
    BuiltinPlugin("rules.timing", _rules_timing),
    BuiltinPlugin("rules.slowness", _rules_slowness),
    BuiltinPlugin("rules.capture", _rules_capture),
    BuiltinPlugin("rules.query", _rules_query),
    BuiltinPlugin("tls.rules", _rules_tls),
    BuiltinPlugin("rules.workflow", _rules_workflow),
    BuiltinPlugin("rules.data", _rules_data),  # runs a validator only when asked (--validate, the preference, a key)
)
EXPORT_PLUGINS = (
    BuiltinPlugin("export.part10", _export_part10),
    BuiltinPlugin("export.dicom_json", _export_dicom_json),
    BuiltinPlugin("export.transactions", _export_transactions),
    BuiltinPlugin("export.pcap", _export_pcap),
)
BUILTIN_PLUGINS = DECODING_PLUGINS + RULE_PLUGINS + EXPORT_PLUGINS


def make_host(disabled: set[str] | None = None, load_installed: bool = True,
              builtins: tuple[BuiltinPlugin, ...] = BUILTIN_PLUGINS) -> PluginHost:
    """The plugin host with the built-in plugins and (unless told not to) the installed ones.

    A module-level function, so batch mode can hand it to its Dask workers (pickled by name).
    """
    return PluginHost(builtins, disabled=disabled, load_installed=load_installed)
