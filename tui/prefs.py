"""Preferences in the TUI: the definitions and checks (``core.views.preferences``) and the file
(``core.base.settings``), under the names the TUI's modules import."""

from __future__ import annotations

from dicomtui.core.base.settings import (  # noqa: F401
    PreferencesError,
    config_path,
    load_preferences,
    save_preferences,
)
from dicomtui.core.views.preferences import (  # noqa: F401
    PREFERENCE_NAMES,
    PREFERENCES,
    Preference,
    check_preferences,
    coerce,
    load_checked_preferences,
    parse_columns,
    preference,
)
