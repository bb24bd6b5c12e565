"""dicomtui: look inside DICOM network traffic.

Third-party plugins import ``hookimpl`` from here and implement hooks of
``dicomtui.core.api.hookspecs`` (see docs/plugins.md)::

    from dicomtui import hookimpl

    @hookimpl
    def dicomtui_check_message(message, analysis, report):
        if message.status == 0xA700:
            report.add("warning", "response status", "out of resources", message.first_frame)
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "dicomtui"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["hookimpl", "hookspec", "__version__", "PROJECT_NAME"]
