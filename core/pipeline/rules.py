"""The rule phase: every rule plugin's hooks, isolated, with attribution."""

from __future__ import annotations

from dicomtui.core.model import ExpertItem, Group, Severity
from dicomtui.core.model.analysis import Analysis


class ExpertReport:
    """Handed to rule hooks; ``add`` records one finding attributed to the calling plugin."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    @property
    def rule(self) -> str:
        """The plugin whose hook is running (the host tracks it for every isolated call)."""
        return getattr(self.analysis.plugins, "current_plugin", "") or ""

    def add(self, severity: Severity | str, group: Group | str, message: str, frame: int = 0,
            association: int | None = None, pdu: int | None = None, message_index: int | None = None,
            code: str = "") -> None:
        """``code`` names what the finding is for code and for ``--json`` (e.g. ``"workflow.mpps_discontinued"``):
        stable across versions and wordings; the rule's own prefix by convention."""
        if isinstance(severity, str):
            severity = Severity.parse(severity)
        if isinstance(group, str):
            try:
                group = Group(group)
            except ValueError:
                group = Group.PROTOCOL
        self.analysis.expert.append(
            ExpertItem(severity, group, str(message), int(frame or 0), association, pdu, message_index, self.rule,
                       code)
        )


def run_rules(analysis: Analysis) -> None:
    """Call the check hooks: per association, per message, then once for the whole capture."""
    plugins = analysis.plugins
    report = ExpertReport(analysis)
    already_failed = len(plugins.failures)
    for association in analysis.associations:
        plugins.hook.dicomtui_check_association(association=association, analysis=analysis, report=report)
    for message in analysis.messages:
        plugins.hook.dicomtui_check_message(message=message, analysis=analysis, report=report)
    plugins.hook.dicomtui_check_analysis(analysis=analysis, report=report)
    report_failures(analysis, already_failed)


def report_failures(analysis: Analysis, since: int) -> None:
    """Plugin failures recorded since ``since`` as error items (what else was found stays)."""
    for failure in analysis.plugins.failures[since:]:
        analysis.expert.append(ExpertItem(Severity.ERROR, Group.PLUGIN,
                                          f"plugin {failure.plugin} raised in {failure.where}: {failure.error}; "
                                          "its findings may be missing, everything else is complete",
                                          rule=failure.plugin, code="plugin.failed"))
