"""The plugin manager: loading built-in and installed plugins, isolating failures, listing.

Each installed entry point is loaded on its own, so one broken plugin cannot
stop the others (llm's issue #1280); import failures and exceptions raised
inside hook implementations are recorded as ``PluginFailure`` and surface as
error expert items, and analysis carries on.

Which plugins load:
- ``--disable-plugin NAME`` (repeatable) or ``DICOMTUI_DISABLE_PLUGINS=a,b``
  blocks plugins by the name ``--list-plugins`` shows;
- ``DICOMTUI_PLUGINS`` limits which *installed* plugins load: a comma list of
  names, or ``none`` to load only built-in ones (recovery from a broken install).
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterator

import pluggy
from dicomtui import PROJECT_NAME, __version__
from dicomtui.core.api import hookspecs

ENTRY_POINT_GROUP = "dicomtui"



@dataclass(frozen=True, slots=True)
class PluginFailure:
    plugin: str
    where: str  # "import" or a hook name
    error: str


@dataclass(slots=True)
class PluginInfo:
    name: str
    origin: str  # "built-in" or the distribution name
    version: str
    hooks: list[str] = field(default_factory=list)
    status: str = "loaded"  # loaded, disabled, failed


def _short_name(module_path: str) -> str:
    return module_path.removeprefix("dicomtui.plugins.")


def _split_names(text: str | None) -> set[str]:
    return {part.strip() for part in (text or "").split(",") if part.strip()}


class PluginHost:
    """Owns the pluggy manager and calls hooks with per-plugin isolation."""

    def __init__(self, builtins: tuple[str, ...] = (), disabled: set[str] | None = None,
                 load_installed: bool = True) -> None:
        """``builtins``: module paths of the built-in plugins, loaded first (the CLI knows the list)."""
        self.manager = pluggy.PluginManager(PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.infos: dict[str, PluginInfo] = {}
        self.disabled = set(disabled or ()) | _split_names(os.environ.get("DICOMTUI_DISABLE_PLUGINS"))
        for module_path in builtins:
            self._load_builtin(module_path)
        if load_installed:
            self._load_installed()

    # -- loading -----------------------------------------------------------------------------

    def _load_builtin(self, module_path: str) -> None:
        name = _short_name(module_path)
        info = PluginInfo(name, "built-in", __version__)
        self.infos[name] = info
        if name in self.disabled:
            info.status = "disabled"
            return
        try:
            module = importlib.import_module(module_path)
        except Exception as exc:  # a broken built-in must not take the program down either
            self._fail(info, "import", exc)
            return
        self.manager.register(module, name=name)
        info.hooks = self._hooks_of(name)

    def _load_installed(self) -> None:
        allowed = os.environ.get("DICOMTUI_PLUGINS")
        allow = None if allowed is None else _split_names(allowed) - {"none"}
        try:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # damaged site-packages metadata
            self.failures.append(PluginFailure("<entry points>", "import", repr(exc)))
            return
        for entry_point in entry_points:
            name = entry_point.name
            distribution = getattr(entry_point, "dist", None)
            origin = distribution.name if distribution else "installed"
            version = distribution.version if distribution else "?"
            info = PluginInfo(name, origin, version)
            if name in self.infos:
                info.name = name = f"{name} ({origin})"
            self.infos[name] = info
            if name in self.disabled or (allow is not None and name not in allow):
                info.status = "disabled"
                continue
            try:
                plugin = entry_point.load()
                self.manager.register(plugin, name=name)
            except Exception as exc:
                self._fail(info, "import", exc)
                continue
            info.hooks = self._hooks_of(name)

    def _hooks_of(self, name: str) -> list[str]:
        plugin = self.manager.get_plugin(name)
        if plugin is None:
            return []
        return sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])

    def _fail(self, info: PluginInfo, where: str, exc: BaseException) -> None:
        info.status = "failed"
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self.failures.append(PluginFailure(info.name, where, detail))

    def register(self, plugin: Any, name: str) -> None:
        """Register an in-process plugin object (tests, embedding applications)."""
        self.manager.register(plugin, name=name)
        self.infos[name] = PluginInfo(name, "in-process", "", self._hooks_of(name))

    # -- calling -----------------------------------------------------------------------------

    def _implementations(self, hook_name: str):
        # pluggy calls later-registered plugins first; keep that order.
        return reversed(getattr(self.manager.hook, hook_name).get_hookimpls())

    def call_each(self, hook_name: str, _before=None, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call every implementation on its own; a raising plugin becomes a PluginFailure.

        ``_before(plugin_name)`` runs before each call (the rule runner uses it to
        attribute findings to the plugin that made them).
        """
        for implementation in self._implementations(hook_name):
            if _before is not None:
                _before(implementation.plugin_name)
            arguments = {name: kwargs[name] for name in implementation.argnames}
            try:
                result = implementation.function(**arguments)
            except Exception as exc:
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                self.failures.append(PluginFailure(implementation.plugin_name, hook_name, detail))
                continue
            yield implementation.plugin_name, result

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        for _name, result in self.call_each(hook_name, **kwargs):
            if result is not None:
                return result
        return None

    def collect_registrations(self, hook_name: str) -> list[tuple[str, tuple]]:
        """For ``register``-style hooks: every (plugin, args) a plugin registered, oldest first."""
        collected: list[tuple[str, tuple]] = []
        implementations = list(getattr(self.manager.hook, hook_name).get_hookimpls())
        for implementation in implementations:  # registration order: built-ins first
            registered: list[tuple] = []
            try:
                implementation.function(register=lambda *args: registered.append(args))
            except Exception as exc:
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                self.failures.append(PluginFailure(implementation.plugin_name, hook_name, detail))
                continue
            collected.extend((implementation.plugin_name, args) for args in registered)
        return collected

    def list_plugins(self) -> list[PluginInfo]:
        return list(self.infos.values())
