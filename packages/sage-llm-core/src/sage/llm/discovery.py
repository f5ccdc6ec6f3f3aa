"""Finding strategy plugins: a small loop over the ``sage.llm.speculative`` entry points.

Nothing here imports a plugin. Discovery reads installed distributions' metadata only, so
``import sage.llm``, listing names and resolving one name stay cheap however many plugins are
installed, and a broken plugin cannot break discovery. Importing happens in
:mod:`sage.llm.registry`, one entry point at a time.

Two groups are read:

``sage.llm.speculative``
    ``name = "module:Class"`` — the entry-point name is the canonical strategy name.
``sage.llm.speculative.aliases``
    ``alias = "canonical-name"`` — other names for a strategy of the same distribution
    (``draft-model = "draft"``); the value is a name, never imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import Distribution, EntryPoint, entry_points

GROUP = "sage.llm.speculative"
ALIAS_GROUP = "sage.llm.speculative.aliases"
CORE_DISTRIBUTION = "sage-llm-core"

PLUGINS_ENV = "SAGE_LLM_PLUGINS"
"""Comma-separated strategy or distribution names allowed to load; set but empty: none."""
STRICT_ENV = "SAGE_LLM_STRICT_PLUGINS"
"""``1``: a plugin that fails to load is an error everywhere, not a line in a listing."""


@dataclass(frozen=True)
class StrategyEntry:
    """One registered strategy, as its distribution's metadata describes it."""

    name: str
    target: str
    distribution: str | None
    version: str | None
    entry_point: EntryPoint
    aliases: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        return f"{self.distribution}:{self.name}" if self.distribution else self.name

    @property
    def class_name(self) -> str:
        """The attribute the entry point names (``NgramStrategy``), known without importing."""
        return self.entry_point.attr or ""

    def core_requirement(self) -> str | None:
        """The ``sage-llm-core`` version specifier the distribution declares, if any."""
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.utils import canonicalize_name

        dist = _distribution(self.entry_point)
        for line in (dist.requires or ()) if dist is not None else ():
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if canonicalize_name(req.name) != CORE_DISTRIBUTION:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            return str(req.specifier) or None
        return None


def _distribution(ep: EntryPoint) -> Distribution | None:
    return getattr(ep, "dist", None)


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _dist_info(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = _distribution(ep)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


@lru_cache(maxsize=1)
def _all_entries() -> tuple[StrategyEntry, ...]:
    alias_map: dict[tuple[str | None, str], list[str]] = {}
    for ep in entry_points(group=ALIAS_GROUP):
        dist, _ = _dist_info(ep)
        alias_map.setdefault((dist, ep.value.strip()), []).append(ep.name)
    entries = []
    for ep in entry_points(group=GROUP):
        dist, version = _dist_info(ep)
        entries.append(
            StrategyEntry(
                name=ep.name,
                target=ep.value,
                distribution=dist,
                version=version,
                entry_point=ep,
                aliases=tuple(sorted(alias_map.get((dist, ep.name), ()))),
            )
        )
    entries.sort(key=lambda e: (e.name, e.distribution or ""))
    return tuple(entries)


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
    if allowed is None:
        return True
    names = {entry.name, *entry.aliases}
    if entry.distribution:
        names.add(entry.distribution)
    return any(_normalize(n) in allowed for n in names)


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def installed_entries() -> list[StrategyEntry]:
    """Every registered strategy, allowed by ``SAGE_LLM_PLUGINS`` or not."""
    return list(_all_entries())


def entries() -> list[StrategyEntry]:
    """The registered strategies that ``SAGE_LLM_PLUGINS`` allows to load."""
    allowed = allowed_names()
    return [e for e in _all_entries() if is_allowed(e, allowed)]


def find(name: str, distribution: str | None = None) -> list[StrategyEntry]:
    """Allowed entries whose canonical name or alias is ``name`` (optionally of one dist)."""
    wanted = _normalize(name)
    found = [
        e
        for e in entries()
        if wanted == _normalize(e.name) or wanted in {_normalize(a) for a in e.aliases}
    ]
    if distribution is not None:
        found = [e for e in found if _normalize(e.distribution or "") == _normalize(distribution)]
    return found


def find_by_class_name(class_name: str) -> list[StrategyEntry]:
    """Allowed entries whose target attribute is ``class_name`` (``NgramStrategy``)."""
    return [e for e in entries() if e.class_name == class_name]


def core_version() -> str:
    from sage.llm._version import __version__

    return __version__
