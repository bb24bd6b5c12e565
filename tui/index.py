"""``PacketIndex`` lives in ``dicomtui.core.views.index`` (shared with the command line's ``-Y``); the TUI's
modules import it under this name."""

from dicomtui.core.views.index import LruCache, PacketIndex  # noqa: F401
