"""The Analysis' tag dictionary: every registered dictionary, consulted newest first.

Dictionaries are plugins (``dicomtui_register_dictionaries``); the Analysis
builds one ``TagDictionary`` from them when it is created and hands it to
whatever names tags (the dataset tree, exporters), so no module-level state
is shared between analyses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TagInfo:
    name: str
    keyword: str
    vr: str
    vm: str
    retired: bool
    source: str  # which dictionary named it


class TagDictionary:
    """All registered dictionaries, newest first."""

    def __init__(self, dictionaries: list) -> None:
        self.dictionaries = list(reversed(dictionaries))
        self._cache: dict[tuple[int, str | None], TagInfo | None] = {}

    def lookup(self, tag: int, private_creator: str | None = None) -> TagInfo | None:
        key = (tag, private_creator)
        if key in self._cache:
            return self._cache[key]
        found = None
        for dictionary in self.dictionaries:
            try:
                found = dictionary.lookup(tag, private_creator)
            except Exception:  # a site dictionary with a bug must not break decoding
                found = None
            if found is not None:
                break
        if len(self._cache) < 100_000:
            self._cache[key] = found
        return found
