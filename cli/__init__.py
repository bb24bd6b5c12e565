"""The ``dicomtui`` command line: the composition root, above core, plugins, tui and batch.

``python -m dicomtui.cli`` runs it.  The names below are what tests, benchmarks
and embedding code take from it: ``make_host`` (the plugin host with the
built-ins), ``build_parser`` and ``make_config`` (the preferences and ``-o``
merged as the command does), ``main``.
"""

from __future__ import annotations

from .builtins import BUILTIN_PLUGINS, make_host
from .options import EXIT_CAPTURE, EXIT_EXPORT_INCOMPLETE, EXIT_FAIL_ON, EXIT_OK, EXIT_USAGE
from .parser import build_parser, make_config
from .root import main

__all__ = ["BUILTIN_PLUGINS", "EXIT_CAPTURE", "EXIT_EXPORT_INCOMPLETE", "EXIT_FAIL_ON", "EXIT_OK", "EXIT_USAGE",
           "build_parser", "main", "make_config", "make_host"]
