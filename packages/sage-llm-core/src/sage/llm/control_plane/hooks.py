"""Control-plane plugins: observers, exporters and policies, called through pluggy.

The manager owns one :class:`ControlPlanePlugins` (a pluggy manager with
:class:`~sage.llm.hookspecs.ControlPlaneSpec`). Plugins come from the ``plugins=`` argument
and, unless turned off, from the ``sage.llm.control_plane`` entry-point group; pluggy checks
each hook's signature at registration, so a misspelled argument fails at start, naming the
plugin. A plugin that raises while observing is logged and skipped: an exporter's bug must not
take the server down.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

import pluggy

from sage.llm.control_plane.policies import PolicyFactory
from sage.llm.errors import SageLLMError
from sage.llm.hookspecs import (
    CONTROL_PLANE_GROUP,
    CONTROL_PLANE_HOOKS,
    PROJECT,
    ControlPlaneSpec,
)

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


class ControlPlanePlugins:
    """The hook relay of one manager."""

    def __init__(self, plugins: list[Any], *, load_entry_points: bool = True) -> None:
        self.pm = _Manager(PROJECT)
        self.pm.add_hookspecs(ControlPlaneSpec)
        if load_entry_points:
            for ep in entry_points(group=CONTROL_PLANE_GROUP):
                try:
                    plugin = ep.load()
                except Exception as exc:
                    dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
                    raise ControlPlanePluginError(
                        f"control-plane plugin {ep.name!r} from {dist} failed to import: {exc}. "
                        "Fix or uninstall that distribution."
                    ) from exc
                self.register(plugin, ep.name)
        for plugin in plugins:
            self.register(plugin)

    def register(self, plugin: Any, name: str | None = None) -> None:
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            label = name or getattr(plugin, "__name__", type(plugin).__name__)
            raise ControlPlanePluginError(
                f"control-plane plugin {label!r} does not match the hooks in "
                f"sage.llm.hookspecs.ControlPlaneSpec: {' '.join(str(exc).split())}"
            ) from exc

    def policies(self) -> dict[str, PolicyFactory]:
        """Policies registered by plugins (name -> factory)."""
        found: dict[str, PolicyFactory] = {}

        def register(name: str, factory: PolicyFactory) -> None:
            found[name] = factory

        self.pm.hook.register_scheduling_policies(register=register)
        return found

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook; log (never raise) a plugin's exception."""
        try:
            getattr(self.pm.hook, hook)(**kwargs)
        except Exception:
            log.exception("control-plane plugin failed in %s; continuing", hook)
