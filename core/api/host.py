"""The plugin host: loading built-in and installed plugins, calling hooks with isolation, listing.

The built-in plugins are whatever ``BuiltinPlugin`` entries the composition root
(the command line, above core) hands in, each with its name and a function that imports it;
this module knows none of them, not even where they live.

Hooks are called through attribute access, as pluggy's own ``manager.hook`` is:
``host.hook.dicomtui_check_message(message=..., analysis=..., report=...)``, with
``.first(...)`` and ``.registrations(...)`` for *first result* and ``register``-style
hooks.  A misspelt hook name is then an AttributeError at the call (and an error
for a type checker, since ``HookRelay`` declares every hook), not a silent no-op.

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

import os
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

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


@dataclass(frozen=True, slots=True)
class BuiltinPlugin:
    """A built-in plugin as the composition root names it.

    ``name`` is what ``--list-plugins`` shows and ``--disable-plugin`` takes; ``load``
    imports the plugin's module and returns it.  Importing happens in the host, one
    plugin at a time, so a disabled plugin is never imported and a broken one is a
    ``PluginFailure``, not a crash.
    """

    name: str
    load: Callable[[], Any]


_BUILDING = threading.RLock()


def _split_names(text: str | None) -> set[str]:
    return {part.strip() for part in (text or "").split(",") if part.strip()}


class PluginHost:
    """Owns the pluggy manager and calls hooks with per-plugin isolation."""

    def __init__(self, builtins: Sequence[BuiltinPlugin], *, disabled: set[str] | None = None,
                 load_installed: bool = True) -> None:
        """``builtins``: the built-in plugins, loaded first, in this order.

        Required, so nobody gets a host without decoders by accident: the composition
        root knows the list (its ``make_host``); ``()`` is a bare host.
        """
        self.manager = pluggy.PluginManager(PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._running = threading.local()  # whose hook implementation runs, per thread (the TUI asks
        # hooks from its UI thread while the analysis runs the rules in a worker)
        self.infos: dict[str, PluginInfo] = {}
        self.hook = HookRelay(self)
        self.disabled = set(disabled or ()) | _split_names(os.environ.get("DICOMTUI_DISABLE_PLUGINS"))
        # One host is built at a time in a process: batch mode builds one per Dask worker thread, and
        # threads importing the same plugin modules at once can deadlock on Python 3.11's import
        # locks (gh-91351; a threaded batch run hung the suite once, both workers in plugin loading).
        # Building a host takes milliseconds.
        with _BUILDING:
            for plugin in builtins:
                self._load_builtin(plugin)
            if load_installed:
                self._load_installed()

    # -- loading -----------------------------------------------------------------------------

    def _load_builtin(self, plugin: BuiltinPlugin) -> None:
        name = plugin.name
        info = PluginInfo(name, "built-in", __version__)
        self.infos[name] = info
        if name in self.disabled:
            info.status = "disabled"
            return
        try:
            module = plugin.load()
        except Exception as exc:  # a broken built-in must not take the program down either
            self._fail(info, "import", exc)
            return
        self.manager.register(module, name=name)
        self._isolate(name)
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
                self._isolate(name)
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
        self._isolate(name)
        self.infos[name] = PluginInfo(name, "in-process", "", self._hooks_of(name))

    @property
    def current_plugin(self) -> str:
        """The plugin whose hook implementation is running in this thread ("" outside any)."""
        return getattr(self._running, "name", "")

    @current_plugin.setter
    def current_plugin(self, name: str) -> None:
        self._running.name = name

    # -- calling -----------------------------------------------------------------------------
    #
    # Hooks are called through pluggy (``manager.hook.NAME(**kwargs)``), so ordering
    # (tryfirst/trylast, newest first), ``firstresult`` and wrappers (``wrapper=True``,
    # old-style ``hookwrapper=True``) behave as pluggy documents.  Isolation is per
    # implementation: each plain hookimpl's function is wrapped once, when its plugin is
    # registered, so an exception inside it becomes a PluginFailure and pluggy goes on
    # with the next implementation.  A wrapper that raises ends that one hook call (pluggy
    # cannot go on without it); that is recorded too, and the caller gets no result.

    def _isolate(self, plugin_name: str) -> None:
        plugin = self.manager.get_plugin(plugin_name)
        for caller in self.manager.get_hookcallers(plugin) or []:
            for implementation in caller.get_hookimpls():
                if implementation.plugin_name != plugin_name or implementation.wrapper \
                        or implementation.hookwrapper or getattr(implementation.function, "_isolated", False):
                    continue
                implementation.function = self._isolated(implementation.function, plugin_name, caller.name)

    def _isolated(self, function, plugin_name: str, hook_name: str):
        def call(*args, **kwargs):
            outer = self.current_plugin
            self.current_plugin = plugin_name
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                self._record(plugin_name, hook_name, exc)
                return None
            finally:
                self.current_plugin = outer

        call._isolated = True
        call.__wrapped__ = function
        return call

    def _record(self, plugin_name: str, hook_name: str, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self.failures.append(PluginFailure(plugin_name, hook_name, detail))

    def _call(self, caller: Any, kwargs: dict[str, Any]) -> Any:
        """Call a hook as pluggy does: a list of results, or one result for *first result* hooks."""
        try:
            return caller(**kwargs)
        except Exception as exc:  # a wrapper raised (plain implementations are isolated)
            wrappers = [impl.plugin_name for impl in caller.get_hookimpls() if impl.wrapper or impl.hookwrapper]
            self._record(", ".join(wrappers) or "<hook wrapper>", caller.name, exc)
            return None if _is_firstresult(caller) else []

    def _call_first(self, caller: Any, kwargs: dict[str, Any]) -> Any:
        result = self._call(caller, kwargs)
        if isinstance(result, list) and not _is_firstresult(caller):
            return next((item for item in result if item is not None), None)
        return result

    def _registrations(self, caller: Any, kwargs: dict[str, Any]) -> list[tuple[str, tuple]]:
        by_plugin: dict[str, list[tuple]] = {}

        def register(*args) -> None:
            by_plugin.setdefault(self.current_plugin, []).append(args)

        names = [impl.plugin_name for impl in reversed(caller.get_hookimpls())]  # pluggy's calling order
        self._call(caller, {"register": register, **kwargs})
        return [(name, args) for name in reversed(names) for args in by_plugin.get(name, [])]

    # By name: for callers that hold a hook's name as data (and those not yet moved to
    # ``host.hook``); the same isolation.

    def call(self, hook_name: str, **kwargs: Any) -> Any:
        """``host.hook.NAME(**kwargs)`` by name."""
        return getattr(self.hook, hook_name)(**kwargs)

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        """``host.hook.NAME.first(**kwargs)`` by name."""
        return getattr(self.hook, hook_name).first(**kwargs)

    def collect_registrations(self, hook_name: str, **kwargs: Any) -> list[tuple[str, tuple]]:
        """``host.hook.NAME.registrations(**kwargs)`` by name."""
        return getattr(self.hook, hook_name).registrations(**kwargs)

    def list_plugins(self) -> list[PluginInfo]:
        return list(self.infos.values())


def _is_firstresult(caller: Any) -> bool:
    return bool(caller.spec and caller.spec.opts.get("firstresult"))


class HookCall:
    """One hook of one host, called with the host's isolation (see ``PluginHost``)."""

    __slots__ = ("_caller", "_host", "name")

    def __init__(self, host: PluginHost, caller: Any) -> None:
        self._host = host
        self._caller = caller
        self.name: str = caller.name

    def __call__(self, **kwargs: Any) -> Any:
        """As pluggy calls it: a list of results, or one result for *first result* hooks."""
        return self._host._call(self._caller, kwargs)

    def first(self, **kwargs: Any) -> Any:
        """The first non-None result (pluggy's order; wrappers may change it)."""
        return self._host._call_first(self._caller, kwargs)

    def registrations(self, **kwargs: Any) -> list[tuple[str, tuple]]:
        """For ``register``-style hooks: every (plugin, args) a plugin registered.

        Lowest priority first (the reverse of pluggy's calling order: built-ins before
        installed plugins, trylast before tryfirst), so a table filled in this order lets
        the plugin pluggy would ask first have the last word.  What a plugin registered
        before it raised is kept.
        """
        return self._host._registrations(self._caller, kwargs)


class HookRelay:
    """``host.hook``: every hook of ``hookspecs`` as an attribute, a ``HookCall``.

    The annotations are for type checkers (and a test checks they list exactly the
    hook specifications); at run time each attribute is made on first use from
    pluggy's relay, which also knows hooks a plugin added with ``add_hookspecs``.
    """

    dicomtui_register_pdu_decoders: HookCall
    dicomtui_register_stream_transforms: HookCall
    dicomtui_make_connection_decoder: HookCall
    dicomtui_complete_model: HookCall
    dicomtui_finish_analysis: HookCall
    dicomtui_status_meaning: HookCall
    dicomtui_register_dictionaries: HookCall
    dicomtui_decode_dataset: HookCall
    dicomtui_check_association: HookCall
    dicomtui_check_message: HookCall
    dicomtui_check_analysis: HookCall
    dicomtui_check_provisional: HookCall
    dicomtui_validate_messages: HookCall
    dicomtui_register_rule_options: HookCall
    dicomtui_register_exporters: HookCall

    def __init__(self, host: PluginHost) -> None:
        self._host = host

    def __getattr__(self, name: str) -> HookCall:
        if name.startswith("_"):
            raise AttributeError(name)
        caller = getattr(self._host.manager.hook, name, None)
        if caller is None:
            raise AttributeError(f"no hook {name!r} (hooks are named in dicomtui.core.api.hookspecs)")
        call = HookCall(self._host, caller)
        setattr(self, name, call)  # pluggy keeps one caller per hook: look it up once
        return call
