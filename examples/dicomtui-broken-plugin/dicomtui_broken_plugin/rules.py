"""Fails on import, as a plugin with a missing dependency or a syntax slip would."""

raise ImportError("dicomtui_broken_plugin needs a library that is not installed (on purpose)")
