"""The command line's typed options: what each mode receives instead of the argparse Namespace,
and the exit statuses (the command's contract with scripts)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dicomtui.core.api.host import PluginHost
from dicomtui.core.pipeline import AnalysisConfig

# The de-identification mode's command-line face (its options, checks and run); its
# profile and rewriter are imported only when it runs.


if TYPE_CHECKING:  # pragma: no cover - imported when the mode runs (start-up cost)
    from dicomtui.core.pipeline.live import LiveOptions
    from dicomtui.core.views.export import ExportSettings
    from dicomtui.core.views.filter import DisplayFilter
    from dicomtui.plugins.anonymize.cli import AnonymizeCommand


EXIT_OK, EXIT_CAPTURE, EXIT_USAGE, EXIT_EXPORT_INCOMPLETE, EXIT_FAIL_ON = 0, 1, 2, 3, 4


@dataclass(slots=True)
class Command:
    """The parsed command line before any capture is read, and the host built for it.

    The listings read ``args`` itself; batch mode's options are typed by its own command-line
    face (``dicomtui.batch.cli.check``), as --anonymize's are by the anonymize plugin's.
    """

    parser: argparse.ArgumentParser
    args: argparse.Namespace
    captures: list[str]
    anonymize: bool
    host: PluginHost


@dataclass(slots=True)
class ViewOptions:
    """What a mode that reads captures needs, typed and checked: no view sees the Namespace."""

    view: str  # a key of VIEWS, or "ui"
    captures: list[str]
    host: PluginHost
    config: AnalysisConfig
    time_format: str
    warnings: list[str] = field(default_factory=list)  # shown again in the UI, where stderr is hidden
    display_filter: DisplayFilter | None = None  # -Y, compiled
    display_filter_text: str | None = None
    live: LiveOptions | None = None  # a live capture (-i, --follow, '-' alone); None reads files
    export: ExportSettings | None = None  # --export
    fail_on: str | None = None
    flow: str | None = None
    flow_level: str = "pdu"
    run_rules: bool = True
    anonymize: "AnonymizeCommand | None" = None  # --anonymize's options, typed by its own command-line face
    report: ReportRequest | None = None  # --html (also with --anonymize: then with its mapping)


@dataclass(slots=True)
class ReportRequest:
    """``--html OUT.html`` and what the page may show (``--anonymize-ae``/``-network``, ``--html-real-values``)."""

    path: str
    real_values: bool = False
    map_ae: bool = False
    map_network: bool = False
    invocation: str = ""
