"""Validating loaded strategy classes against the hookspec, with pluggy.

Each strategy class that the registry imports is registered here as a pluggy plugin. pluggy
compares every hook method's signature with :mod:`sage.llm.hookspecs`; we add the checks pluggy
cannot know about (the class must derive from :class:`SpeculativeStrategy` and implement every
required hook itself). Any failure becomes one message naming the strategy, its distribution
and the hook, so the person who reads it knows whose code to fix.
"""

from __future__ import annotations

import inspect
from typing import Any

import pluggy

from sage.llm.hookspecs import PROJECT, REQUIRED_HOOKS, SPEC_NAMES, StrategySpec
from sage.llm.strategy import SpeculativeStrategy


class PluginValidationFailed(Exception):
    """Internal: a class failed validation; the registry wraps it in StrategyLoadError."""


class StrategyPluginManager(pluggy.PluginManager):
    """A pluggy manager whose plugins are strategy classes.

    Methods that override a hook of :class:`SpeculativeStrategy`, or carry the
    :data:`sage.llm.hookimpl` marker, are that plugin's hook implementations.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(StrategySpec)

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None:
            return opts
        if name in SPEC_NAMES and inspect.isclass(plugin) and _overrides(plugin, name):
            return {}
        return None

    def implemented_hooks(self, plugin_name: str) -> list[str]:
        """The hooks a registered plugin implements itself, in spec order."""
        plugin = self.get_plugin(plugin_name)
        if plugin is None:
            return []
        return sorted(caller.name for caller in self.get_hookcallers(plugin) or ())

    def register_strategy(self, cls: Any, plugin_name: str) -> list[str]:
        """Validate ``cls`` and register it; returns the hooks it implements."""
        if self.get_plugin(plugin_name) is cls:
            return self.implemented_hooks(plugin_name)
        if not inspect.isclass(cls):
            raise PluginValidationFailed(
                f"the entry point must name a class deriving from "
                f"sage.llm.SpeculativeStrategy, got {type(cls).__name__} {cls!r}."
            )
        if not issubclass(cls, SpeculativeStrategy):
            raise PluginValidationFailed(
                f"{cls.__module__}.{cls.__qualname__} does not derive from "
                "sage.llm.SpeculativeStrategy; subclass it (from sage.llm import "
                "SpeculativeStrategy)."
            )
        try:
            self.register(cls, name=plugin_name)
        except pluggy.PluginValidationError as exc:
            raise PluginValidationFailed(_describe(exc)) from exc
        try:
            self.check_pending()
            missing = sorted(h for h in REQUIRED_HOOKS if not _overrides(cls, h))
            if missing:
                raise PluginValidationFailed(
                    f"{cls.__qualname__} does not implement the required hook(s) "
                    + ", ".join(f"{h}{_spec_signature(h)}" for h in missing)
                    + "."
                )
        except pluggy.PluginValidationError as exc:
            self.unregister(name=plugin_name)
            raise PluginValidationFailed(_describe(exc)) from exc
        except PluginValidationFailed:
            self.unregister(name=plugin_name)
            raise
        return self.implemented_hooks(plugin_name)


def implements(strategy: object, hook: str) -> bool:
    """Whether ``strategy`` (an instance or a class) implements the optional ``hook`` itself
    rather than inheriting the base class's "not implemented" default.

    What a tool asks before it relies on a hook: ``sage-llm generate`` refuses a strategy
    without ``make_proposer`` on the reference engine before loading any model.
    """
    cls = strategy if inspect.isclass(strategy) else type(strategy)
    return _overrides(cls, hook)


def _overrides(cls: type, name: str) -> bool:
    """True when ``cls`` (or a base other than SpeculativeStrategy) defines ``name``."""
    for klass in cls.__mro__:
        if klass is SpeculativeStrategy or klass is object:
            return False
        if name in vars(klass):
            return True
    return False


def _spec_signature(hook: str) -> str:
    return str(inspect.signature(getattr(StrategySpec, hook)))


def _describe(exc: pluggy.PluginValidationError) -> str:
    """pluggy's message, with the expected signature from our spec appended."""
    text = " ".join(str(exc).split())
    for hook in SPEC_NAMES:
        if f"hook {hook!r}" in text:
            text += f" The contract is {hook}{_spec_signature(hook)}."
            break
    else:
        if "unknown hook" in text:
            text += " Known hooks: " + ", ".join(sorted(SPEC_NAMES)) + "."
    return text


plugin_manager = StrategyPluginManager()
"""The process-wide manager; the registry registers every strategy class it loads here."""
