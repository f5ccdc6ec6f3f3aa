"""Finding strategy plugins: a small loop over the ``sage.llm.speculative`` entry points.

Nothing here imports a plugin. Discovery reads installed distributions' metadata only
(:mod:`sage.llm._metadata`, which avoids the cost of importing ``importlib.metadata``), so
``import sage.llm``, listing names and resolving one name stay cheap however many plugins are
installed, and a broken plugin cannot break discovery. Importing happens in
:mod:`sage.llm.registry`, one entry point at a time.

Names are claimed in this order, so that no installed package can take a name from another:
a canonical name (the entry-point name) always wins over an alias, and an alias that equals any
installed strategy's canonical name is ignored (and reported). ``SAGE_LLM_PLUGINS`` matches
canonical names and distribution names, never aliases. A malformed entry-point value is that one
plugin's load error, found without importing anything.

Two groups are read:

``sage.llm.speculative``
    ``name = "module:Class"`` — the entry-point name is the canonical strategy name.
``sage.llm.speculative.aliases``
    ``alias = "canonical-name"`` — other names for a strategy of the same distribution
    (``draft-model = "draft"``); the value is a name, never imported.

Other plugin groups (the control plane's ``sage.llm.control_plane``) are read by
:func:`group_entries` into the same :class:`PluginEntry`, so they are checked and imported by
the same code as strategies.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sage.llm._metadata import plugin_distributions

GROUP = "sage.llm.speculative"
ALIAS_GROUP = "sage.llm.speculative.aliases"
CORE_DISTRIBUTION = "sage-llm-core"

PLUGINS_ENV = "SAGE_LLM_PLUGINS"
"""Comma-separated canonical strategy names or distribution names allowed to load; set but
empty: none."""
STRICT_ENV = "SAGE_LLM_STRICT_PLUGINS"
"""``1``: a plugin that fails to load (or a broken entry point) is an error everywhere, not a
line in a listing; see :func:`strict`."""

search_path: list[str] | None = None
"""Folders searched for installed distributions; None: ``sys.path`` (tests set their own)."""

_ENTRY_VALUE = re.compile(
    r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
)
"""``module[:attr] [extras]``, the entry-point object reference (PyPA specification)."""


@dataclass(frozen=True)
class PluginEntry:
    """One entry point of a plugin group, as its distribution's metadata describes it.

    Strategies (:class:`StrategyEntry`) and control-plane plugins
    (:mod:`sage.llm.control_plane.hooks`) are both read into it, so both are checked and
    imported by the same code (:mod:`sage.llm.plugin_loading`).
    """

    name: str
    target: str
    distribution: str | None
    version: str | None
    requires: tuple[str, ...] = ()
    """The distribution's ``Requires-Dist`` lines."""
    group: str = GROUP

    @property
    def qualified_name(self) -> str:
        return f"{self.distribution}:{self.name}" if self.distribution else self.name

    def load(self) -> Any:
        """Import the module the entry point names and return the object (the plugin's code
        runs here; :func:`sage.llm.plugin_loading.import_entry` guards the call)."""
        import importlib

        obj: Any = importlib.import_module(self.module)
        for part in filter(None, self.class_name.split(".")):
            obj = getattr(obj, part)
        return obj

    @property
    def module(self) -> str:
        """The module the entry point names; empty when the value is malformed."""
        match = _ENTRY_VALUE.match(self.target.strip())
        return match.group("module") if match else ""

    @property
    def class_name(self) -> str:
        """The attribute the entry point names (``NgramStrategy``), known without importing.

        Empty when the value is malformed: ``EntryPoint.attr`` would raise AttributeError there,
        and one broken distribution must not break lookups of the others.
        """
        match = _ENTRY_VALUE.match(self.target.strip())
        return (match.group("attr") or "") if match else ""

    @property
    def malformed(self) -> str | None:
        """Why the entry-point value cannot be loaded, or None when it is well formed."""
        if _ENTRY_VALUE.match(self.target.strip()):
            return None
        return (
            f"its entry point value {self.target!r} is not 'module:Class'; fix the "
            f'[project.entry-points."{self.group}"] table of {self.distribution or "its project"}.'
        )

    def core_requirement(self) -> str | None:
        """The ``sage-llm-core`` version specifier the distribution declares, if any.

        Read from ``Requires-Dist`` without ``packaging.requirements`` (which pulls in
        ``packaging.tags`` and half the standard library): only lines that name the core are
        parsed, and only a line with an environment marker needs the full parser.
        """
        for line in self.requires:
            match = _CORE_REQUIREMENT.match(line)
            if match is None:
                continue
            if ";" in line:
                spec = _marker_requirement(line)
                if spec is None:
                    continue
                return spec or None
            return match.group("spec").strip().strip("()").replace(" ", "") or None
        return None


@dataclass(frozen=True)
class StrategyEntry(PluginEntry):
    """One registered strategy (group ``sage.llm.speculative``) and the aliases it declares."""

    aliases: tuple[str, ...] = ()
    ignored_aliases: tuple[str, ...] = ()
    """Aliases this distribution declares that equal another strategy's canonical name."""


_CORE_REQUIREMENT = re.compile(
    r"^\s*sage[-_.]+llm[-_.]+core\s*(\[[^\]]*\])?\s*(?P<spec>[^;]*)", re.IGNORECASE
)
"""A ``Requires-Dist`` line naming the core (PEP 503 normalization: ``-``, ``_``, ``.`` alike)."""


def _marker_requirement(line: str) -> str | None:
    """The specifier of a core requirement with a marker, or None when the marker is false
    (for example ``extra == "testing"``)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(line)
    except InvalidRequirement:
        return None
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    return str(req.specifier)


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def normalize(name: str) -> str:
    """The form names are compared in: case, ``_`` and ``.`` do not matter (as for PEP 503)."""
    return _normalize(name)


@lru_cache(maxsize=1)
def _all_entries() -> tuple[StrategyEntry, ...]:
    scanned = plugin_distributions((GROUP, ALIAS_GROUP), search_path)
    canonical = {
        _normalize(name) for d in scanned for group, name, _ in d.entry_points if group == GROUP
    }
    entries = []
    for dist in scanned:
        aliases: dict[str, list[str]] = {}
        for group, name, value in dist.entry_points:
            if group == ALIAS_GROUP:
                aliases.setdefault(_normalize(value), []).append(name)
        for group, name, value in dist.entry_points:
            if group != GROUP:
                continue
            declared = sorted(set(aliases.get(_normalize(name), ())))
            entries.append(
                StrategyEntry(
                    name=name,
                    target=value,
                    distribution=dist.name or None,
                    version=dist.version or None,
                    requires=dist.requires,
                    aliases=tuple(a for a in declared if _normalize(a) not in canonical),
                    ignored_aliases=tuple(a for a in declared if _normalize(a) in canonical),
                )
            )
    entries.sort(key=lambda e: (e.name, e.distribution or ""))
    return tuple(entries)


def group_entries(group: str) -> list[PluginEntry]:
    """Every entry point of ``group`` (metadata only, nothing imported), read afresh each call:
    groups other than the strategies' are read once per use (a control plane's start)."""
    found = [
        PluginEntry(
            name=name,
            target=value,
            distribution=dist.name or None,
            version=dist.version or None,
            requires=dist.requires,
            group=group,
        )
        for dist in plugin_distributions((group,), search_path)
        for entry_group, name, value in dist.entry_points
        if entry_group == group
    ]
    found.sort(key=lambda e: (e.name, e.distribution or ""))
    return found


def refresh() -> None:
    """Forget what was discovered (after installing or removing a plugin in-process)."""
    _all_entries.cache_clear()


def allowed_names() -> set[str] | None:
    """Names from ``SAGE_LLM_PLUGINS``; ``None`` when the variable is unset (allow all)."""
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return {_normalize(n.strip()) for n in raw.split(",") if n.strip()}


def is_allowed(entry: StrategyEntry, allowed: set[str] | None) -> bool:
    """Whether ``SAGE_LLM_PLUGINS`` names the entry's canonical name or its distribution.

    Aliases do not count: a distribution that declares someone else's name as its alias must not
    be let in by that name.
    """
    if allowed is None:
        return True
    names = {entry.name}
    if entry.distribution:
        names.add(entry.distribution)
    return any(_normalize(n) in allowed for n in names)


def strict() -> bool:
    """``SAGE_LLM_STRICT_PLUGINS`` is on: every plugin problem the core finds is an error.

    It applies wherever plugins are listed or resolved: :func:`sage.llm.list_strategies` (and
    ``sage-llm strategies list``) raise the first failure; resolving a name
    (``get_strategy``, ``from sage.llm import NgramStrategy``, every CLI ``--strategy``) also
    fails when any allowed plugin's entry point is malformed, its name is ambiguous, or one of
    its aliases was ignored, without importing the other plugins.
    """
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def metadata_problems() -> list[tuple[StrategyEntry, str]]:
    """Problems visible in metadata alone (nothing imported), for strict mode and listings."""
    found = []
    for entry in entries():
        if entry.malformed:
            found.append((entry, entry.malformed))
        for alias in entry.ignored_aliases:
            found.append(
                (
                    entry,
                    f"alias {alias!r} is ignored: it is the canonical name of another "
                    "strategy, and a canonical name always wins.",
                )
            )
    return found


def installed_entries() -> list[StrategyEntry]:
    """Every registered strategy, allowed by ``SAGE_LLM_PLUGINS`` or not."""
    return list(_all_entries())


def entries() -> list[StrategyEntry]:
    """The registered strategies that ``SAGE_LLM_PLUGINS`` allows to load."""
    allowed = allowed_names()
    return [e for e in _all_entries() if is_allowed(e, allowed)]


def find(name: str, distribution: str | None = None) -> list[StrategyEntry]:
    """Allowed entries called ``name`` (optionally of one distribution).

    Entries whose canonical name is ``name`` win; aliases are looked at only when no entry has
    that canonical name.
    """
    wanted = _normalize(name)
    candidates = entries()
    if distribution is not None:
        dist = _normalize(distribution)
        candidates = [e for e in candidates if _normalize(e.distribution or "") == dist]
    canonical = [e for e in candidates if wanted == _normalize(e.name)]
    if canonical:
        return canonical
    return [e for e in candidates if wanted in {_normalize(a) for a in e.aliases}]


def find_by_class_name(class_name: str) -> list[StrategyEntry]:
    """Allowed entries whose target attribute is ``class_name`` (``NgramStrategy``)."""
    return [e for e in entries() if e.class_name == class_name]


def core_version() -> str:
    from sage.llm._version import __version__

    return __version__
