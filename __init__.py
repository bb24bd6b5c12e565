"""dicomtui: look inside DICOM network traffic.

Third-party plugins import ``hookimpl`` from here::

    from dicomtui import hookimpl

    @hookimpl
    def dicomtui_check_message(message, association, report):
        ...
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "dicomtui"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["hookimpl", "hookspec", "__version__", "PROJECT_NAME"]
