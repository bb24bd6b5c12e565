"""Running the expert rules: every rule plugin's hooks, isolated, with attribution."""

from __future__ import annotations

from dicomtui.core.model import ExpertItem, Group, Severity
from dicomtui.core.model.analysis import Analysis


class ExpertReport:
    """Handed to rule hooks; ``add`` records one finding attributed to the calling plugin."""

    def __init__(self, analysis: "Analysis") -> None:
        self.analysis = analysis
        self.rule = ""

    def add(self, severity: Severity | str, group: Group | str, message: str, frame: int = 0,
            association: int | None = None, pdu: int | None = None, message_index: int | None = None) -> None:
        if isinstance(severity, str):
            severity = Severity.parse(severity)
        if isinstance(group, str):
            try:
                group = Group(group)
            except ValueError:
                group = Group.PROTOCOL
        self.analysis.expert.append(
            ExpertItem(severity, group, str(message), int(frame or 0), association, pdu, message_index, self.rule)
        )

    def _attribute(self, plugin_name: str) -> None:
        self.rule = plugin_name


def run_rules(analysis: "Analysis") -> None:
    plugins = analysis.plugins
    report = ExpertReport(analysis)
    before = report._attribute
    already_failed = len(plugins.failures)
    for _ in plugins.call_each("dicomtui_finish_analysis", _before=before, analysis=analysis):
        pass
    for association in analysis.associations:
        for _ in plugins.call_each("dicomtui_check_association", _before=before, association=association,
                                   analysis=analysis, report=report):
            pass
    for message in analysis.messages:
        for _ in plugins.call_each("dicomtui_check_message", _before=before, message=message,
                                   analysis=analysis, report=report):
            pass
    for _ in plugins.call_each("dicomtui_check_analysis", _before=before, analysis=analysis, report=report):
        pass
    for failure in plugins.failures[already_failed:]:
        analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN,
                                          f"plugin {failure.plugin} raised in {failure.where}: {failure.error}; "
                                          "its findings may be missing, everything else is complete",
                                          rule=failure.plugin))
