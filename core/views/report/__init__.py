"""The HTML report for a vendor ticket: one self-contained page, pictures included, no patient data.

``write_report(analysis, path, settings)`` writes the page ``dicomtui --html OUT.html`` and the
UI's report key produce; ``render_report`` returns it as text.  ``content`` gathers what the page
says (through ``redact.Redaction``), ``charts`` draws the SVG pictures, and Jinja2 lays it out
from ``templates/`` (package data: ``report.html.j2`` and the stylesheet it inlines).  The page
loads nothing — no script, font, stylesheet or image from anywhere — so it opens from a mail
attachment, reads with scripts disabled and prints as it shows.  See docs/report.md.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .redact import RedactionSettings

if TYPE_CHECKING:  # pragma: no cover
    from dicomtui.core.base.pseudonyms import Pseudonymizer
    from dicomtui.core.model.analysis import Analysis

    from .content import ReportLimits

__all__ = ["ReportSettings", "ReportWritten", "RedactionSettings", "render_report", "write_report"]


@dataclass(slots=True)
class ReportSettings:
    redaction: RedactionSettings = field(default_factory=RedactionSettings)
    invocation: str = ""  # the options the page was made with, as the user gave them
    pseudonyms: "Pseudonymizer | None" = None  # the mapping of a de-identified capture written in the same run
    limits: "ReportLimits | None" = None


@dataclass(frozen=True, slots=True)
class ReportWritten:
    path: str
    size: int
    seconds: float


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("dicomtui.core.views.report", "templates"),
                       autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_report(analysis: "Analysis", settings: ReportSettings | None = None) -> str:
    from .content import build
    from .redact import Redaction

    settings = settings or ReportSettings()
    redaction = Redaction(analysis, settings.redaction, settings.pseudonyms)
    data = build(analysis, redaction, settings.invocation, settings.limits)
    environment = _environment()
    from markupsafe import Markup

    # Our own stylesheet, inlined as it is: <style> is raw text, where an escaped quote stays "&#34;".
    css = Markup(environment.loader.get_source(environment, "report.css")[0])
    return environment.get_template("report.html.j2").render(css=css, **data)


def write_report(analysis: "Analysis", path: str, settings: ReportSettings | None = None) -> ReportWritten:
    """Render and write the page; the file appears under its name only when complete."""
    started = time.perf_counter()
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isfile(path)):
        # os.replace would put the page in place of a device (/dev/null) or the link itself
        raise IsADirectoryError(21, "not a regular file", path) if os.path.isdir(path) else \
            FileExistsError(17, "exists and is not a regular file", path)
    page = render_report(analysis, settings).encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(folder, f".{os.path.basename(path)}.dicomtui-partial-{os.getpid()}")
    try:
        with open(temporary, "wb") as stream:
            stream.write(page)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return ReportWritten(os.path.abspath(path), len(page), time.perf_counter() - started)
