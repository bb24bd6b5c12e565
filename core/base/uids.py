"""UID names from pydicom's registry, and this project's own UIDs.

dicomtui's UID root is a UUID-derived root (PS3.5 B.2, ``2.25.<uuid>``), made
once for this project.  It must not be Wireshark's ``1.2.826.0.1.3680043.8.427``.

pydicom's registry is its generated module ``pydicom._uid_dict`` (a plain dict
literal).  Importing it the usual way runs ``pydicom/__init__``, which imports
pydicom's whole codec (0.2-0.6 s here), so the names for a summary would cost
more than the analysis of a small capture: the module is loaded on first use
straight from pydicom's package folder, and through pydicom when that fails.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

from dicomtui import __version__

PROJECT_UID_ROOT = "2.25.266992527129183994462024539468318572522"
IMPLEMENTATION_CLASS_UID = PROJECT_UID_ROOT + ".1"
IMPLEMENTATION_VERSION_NAME = ("DICOMTUI_" + __version__.replace(".", ""))[:16]
ARTIFICIAL_COMMAND_SOP_CLASS = PROJECT_UID_ROOT + ".2.1"
ARTIFICIAL_COMMAND_INSTANCE_ROOT = PROJECT_UID_ROOT + ".2.2"


@lru_cache(maxsize=1)
def uid_dictionary() -> dict:
    """pydicom's ``UID_dictionary`` (UID -> (name, type, info, retired, keyword))."""
    try:
        spec = importlib.util.find_spec("pydicom")
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if locations:
            table = importlib.util.spec_from_file_location("dicomtui._pydicom_uid_dict",
                                                           f"{locations[0]}/_uid_dict.py")
            module = importlib.util.module_from_spec(table)
            table.loader.exec_module(module)
            return module.UID_dictionary
    except (ImportError, OSError, AttributeError, SyntaxError):
        pass
    from pydicom.uid import UID_dictionary

    return UID_dictionary


@lru_cache(maxsize=4096)
def uid_name(uid: str) -> str:
    """The registered name of a UID, or '' if pydicom does not know it."""
    entry = uid_dictionary().get(uid.rstrip("\x00 "))
    return entry[0] if entry else ""


def uid_label(uid: str) -> str:
    """``CT Image Storage`` for a known UID, the UID itself otherwise."""
    return uid_name(uid) or uid


def uid_with_name(uid: str) -> str:
    """``1.2.840.10008.1.2 (Implicit VR Little Endian)`` for display trees."""
    name = uid_name(uid)
    return f"{uid} ({name})" if name else uid
