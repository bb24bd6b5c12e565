"""The tag dictionary plugin: pydicom's public and private data dictionaries.

A site adds its own private tags by registering another dictionary object from
its own plugin (``dicomtui_register_dictionaries``); dictionaries registered
later are consulted first.  ``JsonPrivateDictionary`` loads one from a file:
``{"CREATOR": {"xxxx10xx": ["VR", "VM", "Name", "Keyword"]}}``, and this
plugin registers such a file when ``-o private_dictionary:PATH`` is given.
"""

from __future__ import annotations

import json
from dicomtui import hookimpl
from dicomtui.core.model.dictionary import TagInfo


class PydicomDictionary:
    """The current standard's data dictionary and pydicom's private dictionaries."""

    name = "pydicom"

    def lookup(self, tag: int, private_creator: str | None = None) -> TagInfo | None:
        # pydicom on first use: registering this dictionary must not import it (--summary never looks up)
        from pydicom.datadict import get_entry, get_private_entry

        if (tag >> 16) % 2 == 1:
            if (tag & 0xFFFF) < 0x0100:
                if (tag & 0xFFFF) >= 0x0010:
                    return TagInfo("Private Creator", "", "LO", "1", False, self.name)
                return None
            if not private_creator:
                return None
            try:
                vr, vm, name, retired = get_private_entry(tag, private_creator)
            except KeyError:
                return None
            return TagInfo(name, "", vr, vm, bool(retired), f"private: {private_creator}")
        try:
            vr, vm, name, retired, keyword = get_entry(tag)
        except KeyError:
            if tag & 0xFFFF == 0:
                return TagInfo("Group Length", "", "UL", "1", False, self.name)
            return None
        return TagInfo(name, keyword, vr, vm, retired == "Retired", self.name)


class JsonPrivateDictionary:
    """A site's private tags from a JSON file."""

    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
        self.name = f"file: {path}"
        self.entries: dict[str, dict[int, tuple[str, str, str]]] = {}
        for creator, tags in raw.items():
            table = self.entries.setdefault(creator.strip(), {})
            for pattern, entry in tags.items():
                element = int(pattern.lower().replace("x", "0")[-2:], 16)
                group = int(pattern[:4], 16)
                table[(group << 8) | element] = (entry[0], entry[1], entry[2])

    def lookup(self, tag: int, private_creator: str | None = None) -> TagInfo | None:
        if not private_creator:
            return None
        table = self.entries.get(private_creator.strip())
        if table is None:
            return None
        entry = table.get(((tag >> 16) << 8) | (tag & 0xFF))
        if entry is None:
            return None
        vr, vm, name = entry
        return TagInfo(name, "", vr, vm, False, self.name)


@hookimpl
def dicomtui_register_dictionaries(register, config) -> None:
    register(PydicomDictionary())
    path = config.option("private_dictionary") if config is not None else None
    if path:
        # A file that cannot be read raises here: the plugin host records it as this
        # plugin's failure (an error item) and keeps the pydicom dictionary registered above.
        register(JsonPrivateDictionary(path))
