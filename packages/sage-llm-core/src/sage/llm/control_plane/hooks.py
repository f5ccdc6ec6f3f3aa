"""Control-plane plugins: observers, exporters and policies, called through pluggy.

The manager owns one :class:`ControlPlanePlugins` (a pluggy manager with
:class:`~sage.llm.hookspecs.ControlPlaneSpec`). Plugins come from two places, treated apart:

- the ``sage.llm.control_plane`` entry-point group (unless ``load_entry_points=False``), loaded
  one entry point at a time by the code that loads strategies
  (:mod:`sage.llm.plugin_loading`). A plugin that cannot be imported, was built for another
  ``sage-llm-core`` or does not match the hookspec is logged as a warning (plugin, distribution,
  what to do) and listed under ``failed`` in :meth:`ControlPlanePlugins.describe` (so in the
  manager's ``status()`` and at ``/status``); the others load and the server starts. An
  installed distribution is not the caller's code, and one broken package must not keep a
  server down. ``SAGE_LLM_STRICT_PLUGINS=1`` makes such a failure an error, as for strategies.
- the ``plugins=`` argument: objects the caller wrote or chose. One that does not match the
  hookspec raises :class:`ControlPlanePluginError` at once, naming it and the hook: that is a
  programming error its author can fix, and skipping it would hide it.

Hooks are called one implementation at a time (pluggy would stop at the first exception), so a
plugin that raises while observing is logged, once per plugin and hook with its traceback, and
counted in ``describe()``; the other plugins still see the event. For the same reason hook
wrappers (``hookwrapper=``/``wrapper=``) are refused: an observer sees an event, it does not
wrap the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pluggy

from sage.llm import discovery
from sage.llm.control_plane.policies import PolicyFactory
from sage.llm.errors import SageLLMError
from sage.llm.hookspecs import (
    CONTROL_PLANE_GROUP,
    CONTROL_PLANE_HOOKS,
    PROJECT,
    ControlPlaneSpec,
)
from sage.llm.plugin_loading import PluginLoadFailed, import_entry

log = logging.getLogger("sage.llm.control_plane")


class ControlPlanePluginError(SageLLMError):
    """A control-plane plugin could not be loaded or does not match the hook contract."""


class _Manager(pluggy.PluginManager):
    """Methods named after a hook are its implementations, marked with
    :data:`sage.llm.hookimpl` or not (as for strategies)."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name in CONTROL_PLANE_HOOKS and callable(getattr(plugin, name, None)):
            return {}
        return opts


@dataclass
class PluginRecord:
    """One control-plane plugin as ``describe()`` reports it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    source: str = "argument"
    """``entry point`` (installed) or ``argument`` (``plugins=``)."""
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    """Why it was not loaded (failed plugins only)."""
    hook_errors: dict[str, int] = field(default_factory=dict)
    """Exceptions raised per hook since the manager started (each was logged or counted)."""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "source": self.source,
        }
        if self.error is not None:
            body["error"] = self.error
        else:
            body["hooks"] = self.hooks
            body["hook_errors"] = dict(self.hook_errors)
        return body


class ControlPlanePlugins:
    """The hook relay of one manager; see the module docstring for what is isolated."""

    def __init__(self, plugins: list[Any], *, load_entry_points: bool = True) -> None:
        self.pm = _Manager(PROJECT)
        self.pm.add_hookspecs(ControlPlaneSpec)
        self.loaded: dict[str, PluginRecord] = {}
        """Registered plugins by their pluggy name."""
        self.failed: list[PluginRecord] = []
        self._lock = threading.Lock()
        if load_entry_points:
            for entry in discovery.group_entries(CONTROL_PLANE_GROUP):
                self._load_entry(entry)
        for plugin in plugins:
            if not self.pm.is_registered(plugin):  # also installed: once is enough
                self.register(plugin)

    def _load_entry(self, entry: discovery.PluginEntry) -> None:
        record = PluginRecord(entry.name, entry.distribution, entry.version, "entry point")
        try:
            plugin = import_entry(entry)
            self.register(plugin, entry.qualified_name, record)
        except (PluginLoadFailed, ControlPlanePluginError) as exc:
            record.error = exc.reason if isinstance(exc, PluginLoadFailed) else str(exc)
            dist = entry.distribution or "an unknown distribution"
            release = f"{dist} {entry.version}" if entry.version else dist
            message = (
                f"control-plane plugin {entry.name!r} from {release} was not loaded:"
                f" {record.error.rstrip('.')}. The control plane runs without it; fix or "
                f"uninstall {dist} (pip uninstall {dist}), or set {discovery.STRICT_ENV}=1 to "
                "make this an error."
            )
            if discovery.strict():
                raise ControlPlanePluginError(message) from exc
            log.warning("%s", message)
            self.failed.append(record)

    def register(
        self, plugin: Any, name: str | None = None, record: PluginRecord | None = None
    ) -> None:
        """Register one plugin; raises :class:`ControlPlanePluginError` naming it and the hook
        when it does not match :class:`~sage.llm.hookspecs.ControlPlaneSpec`."""
        label = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        try:
            registered = self.pm.register(plugin, name=name)
        except ValueError as exc:  # the name or the object is registered already
            raise ControlPlanePluginError(
                f"control-plane plugin {label!r} cannot be registered: {exc}"
            ) from exc
        except pluggy.PluginValidationError as exc:
            if self.pm.is_registered(plugin):  # pluggy leaves it half registered
                self.pm.unregister(plugin)
            raise _mismatch(label, exc) from exc
        assert registered is not None
        try:
            self.pm.check_pending()
            for caller in self.pm.get_hookcallers(plugin) or ():
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                        raise ControlPlanePluginError(
                            f"control-plane plugin {label!r}: {caller.name} is a hook wrapper; "
                            "control-plane hooks are called one plugin at a time, so that one "
                            "failing observer does not stop the others. Drop wrapper=/"
                            "hookwrapper= from its hookimpl."
                        )
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(plugin)
            raise _mismatch(label, exc) from exc
        except ControlPlanePluginError:
            self.pm.unregister(plugin)
            raise
        record = record or PluginRecord(label)
        record.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or ())
        with self._lock:
            self.loaded[registered] = record

    def describe(self) -> dict[str, Any]:
        """The plugins that loaded (with their hooks and hook exceptions) and those that did
        not (with why): the ``plugins`` entry of the manager's ``status()``."""
        with self._lock:
            return {
                "loaded": [r.to_json() for r in self.loaded.values()],
                "failed": [r.to_json() for r in self.failed],
            }

    def policies(self) -> dict[str, PolicyFactory]:
        """Policies registered by plugins (name -> factory); a plugin that raises while
        registering contributes none and is logged."""
        found: dict[str, PolicyFactory] = {}
        hook = "register_scheduling_policies"
        for impl in self._impls(hook):
            mine: dict[str, PolicyFactory] = {}

            def register(name: str, factory: PolicyFactory, mine: dict[str, Any] = mine) -> None:
                mine[name] = factory

            if self._call(impl, hook, {"register": register}):
                found.update(mine)
        return found

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin; one plugin's exception is logged (never
        raised) and the others are still called."""
        for impl in self._impls(hook):
            self._call(impl, hook, kwargs)

    def _impls(self, hook: str) -> Iterator[Any]:
        """The hook's implementations in pluggy's call order (last registered first,
        ``tryfirst``/``trylast`` honoured)."""
        caller = getattr(self.pm.hook, hook)
        yield from reversed(caller.get_hookimpls())

    def _call(self, impl: Any, hook: str, kwargs: dict[str, Any]) -> bool:
        """Call one implementation with the arguments it declares (as pluggy does); False when
        it raised."""
        try:
            impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception as exc:
            self._failed_in(impl.plugin_name, hook, exc)
            return False
        return True

    def _failed_in(self, plugin_name: str, hook: str, exc: Exception) -> None:
        with self._lock:
            record = self.loaded.get(plugin_name)
            count = 1
            if record is not None:
                count = record.hook_errors.get(hook, 0) + 1
                record.hook_errors[hook] = count
        if count > 1:  # the first one was logged with its traceback
            log.debug("control-plane plugin %r failed in %s again: %r", plugin_name, hook, exc)
            return
        who = repr(record.name if record is not None else plugin_name)
        if record is not None and record.distribution:
            who += f" from {record.distribution}"
        log.warning(
            "control-plane plugin %s failed in %s; the other plugins were called and serving "
            "goes on (later failures of this hook are counted in status(), not logged again)",
            who,
            hook,
            exc_info=exc,
        )


def _mismatch(label: str, exc: pluggy.PluginValidationError) -> ControlPlanePluginError:
    return ControlPlanePluginError(
        f"control-plane plugin {label!r} does not match the hooks in "
        f"sage.llm.hookspecs.ControlPlaneSpec: {' '.join(str(exc).split())}"
    )
