"""The display-filter language lives in ``dicomtui.core.views.filter`` (the command line's ``-Y`` uses it
too); the TUI's modules import it under this name."""

from dicomtui.core.views.filter import (  # noqa: F401
    FIELDS,
    MAX_FILTER_LENGTH,
    WIRESHARK_FIELDS,
    DatasetField,
    DisplayFilter,
    FilterError,
    compile_filter,
    field_help,
    tokenize,
    wireshark_field_help,
)
