"""UID names from pydicom's registry, and this project's own UIDs.

dicomtui's UID root is a UUID-derived root (PS3.5 B.2, ``2.25.<uuid>``), made
once for this project.  It must not be Wireshark's ``1.2.826.0.1.3680043.8.427``.
"""

from __future__ import annotations

from functools import lru_cache

from dicomtui import __version__
from pydicom.uid import UID_dictionary

PROJECT_UID_ROOT = "2.25.266992527129183994462024539468318572522"
IMPLEMENTATION_CLASS_UID = PROJECT_UID_ROOT + ".1"
IMPLEMENTATION_VERSION_NAME = ("DICOMTUI_" + __version__.replace(".", ""))[:16]
ARTIFICIAL_COMMAND_SOP_CLASS = PROJECT_UID_ROOT + ".2.1"
ARTIFICIAL_COMMAND_INSTANCE_ROOT = PROJECT_UID_ROOT + ".2.2"


@lru_cache(maxsize=4096)
def uid_name(uid: str) -> str:
    """The registered name of a UID, or '' if pydicom does not know it."""
    entry = UID_dictionary.get(uid.rstrip("\x00 "))
    return entry[0] if entry else ""


def uid_label(uid: str) -> str:
    """``CT Image Storage`` for a known UID, the UID itself otherwise."""
    return uid_name(uid) or uid


def uid_with_name(uid: str) -> str:
    """``1.2.840.10008.1.2 (Implicit VR Little Endian)`` for display trees."""
    name = uid_name(uid)
    return f"{uid} ({name})" if name else uid
