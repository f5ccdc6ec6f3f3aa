"""Resolving strategy names to classes and instances: where a strategy is resolved.

``get_strategy("ngram", n=5)`` goes: parse the name (:mod:`sage.llm.params`) → find the entry
point by name or alias, without importing anything (:mod:`sage.llm.discovery`) → check the
plugin's declared ``sage-llm-core`` range → import that one entry point → validate the class
against the hookspec (:mod:`sage.llm.plugins`) → validate the parameters → instance.

Load results, good or bad, are cached per entry point, so a broken plugin is imported once and
reported the same way every time. Nothing a plugin does while it is imported can end the host:
``sys.exit()`` and every other exception (``KeyboardInterrupt`` excepted: that is the user) become
that plugin's load error, and what it prints goes to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sage.llm import discovery, known
from sage.llm import params as _params
from sage.llm._stdio import stdout_to_stderr
from sage.llm.discovery import StrategyEntry
from sage.llm.errors import (
    AmbiguousStrategyError,
    IncompatibleStrategyError,
    InvalidParameterError,
    SageLLMError,
    StrategyDisabledError,
    StrategyLoadError,
    StrategyNotInstalledError,
    StrategyPluginError,
    UnknownStrategyError,
)
from sage.llm.plugin_loading import (
    PluginLoadFailed,
    core_incompatibility,
    import_entry,
    summarize,
)
from sage.llm.strategy import SpeculativeStrategy

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_INCOMPATIBLE = "incompatible"


@dataclass
class StrategyInfo:
    """What ``list_strategies`` and ``sage-llm strategies list`` report about one plugin."""

    name: str
    distribution: str | None
    version: str | None
    target: str
    status: str
    error: str | None = None
    aliases: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    requires_core: str | None = None
    summary: str = ""
    conflicts: list[str] = field(default_factory=list)
    """Other distributions registering the same name: resolve with ``"distribution:name"``."""
    warnings: list[str] = field(default_factory=list)
    """Problems that do not stop the plugin from loading (an alias that was ignored)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "target": self.target,
            "status": self.status,
            "error": self.error,
            "aliases": self.aliases,
            "hooks": self.hooks,
            "requires_core": self.requires_core,
            "summary": self.summary,
            "conflicts": self.conflicts,
            "warnings": self.warnings,
        }


_loaded: dict[str, type[SpeculativeStrategy] | StrategyLoadError] = {}
_entries_by_class: dict[type, StrategyEntry] = {}
_strict_checked: list[bool] = []


def _cache_key(entry: StrategyEntry) -> str:
    return f"{entry.qualified_name}={entry.target}"


def _check_compatible(entry: StrategyEntry) -> None:
    reason = core_incompatibility(entry)
    if reason:
        raise IncompatibleStrategyError(entry.name, entry.distribution, entry.version, reason)


def load_entry(entry: StrategyEntry) -> type[SpeculativeStrategy]:
    """Import and validate one entry point; raises StrategyLoadError (cached) on failure."""
    key = _cache_key(entry)
    cached = _loaded.get(key)
    if cached is None:
        cached = _load_uncached(entry)
        _loaded[key] = cached
    if isinstance(cached, StrategyLoadError):
        raise cached
    return cached


def _load_uncached(entry: StrategyEntry) -> type[SpeculativeStrategy] | StrategyLoadError:
    try:
        obj = import_entry(entry)
    except PluginLoadFailed as exc:
        kind = IncompatibleStrategyError if exc.incompatible else StrategyLoadError
        err = kind(entry.name, entry.distribution, entry.version, exc.reason)
        err.__cause__ = exc.__cause__
        return err
    from sage.llm.plugins import PluginValidationFailed, plugin_manager  # pluggy: only to load

    try:
        plugin_manager.register_strategy(obj, entry.qualified_name)
    except PluginValidationFailed as exc:
        return StrategyLoadError(entry.name, entry.distribution, entry.version, str(exc))
    declared = getattr(obj, "name", None)
    if declared and declared != entry.name:
        plugin_manager.unregister(name=entry.qualified_name)
        return StrategyLoadError(
            entry.name,
            entry.distribution,
            entry.version,
            f"the class says name = {declared!r} but its entry point registers it as "
            f"{entry.name!r}; make them equal.",
        )
    _entries_by_class.setdefault(obj, entry)
    return cast("type[SpeculativeStrategy]", obj)


def check_strict() -> None:
    """Under ``SAGE_LLM_STRICT_PLUGINS=1``: load every allowed plugin once; any problem raises.

    Strict mode trades isolation for certainty (CI, a deployment's start-up check): the first
    time plugins are used in a process, every allowed plugin is imported and validated, and a
    failure, a malformed entry point or an ignored alias is raised instead of reported. Without
    strict mode, resolving one name imports only that plugin.
    """
    if not discovery.strict() or _strict_checked:
        return
    for entry, problem in discovery.metadata_problems():
        raise StrategyLoadError(entry.name, entry.distribution, entry.version, problem)
    for entry in discovery.entries():
        load_entry(entry)
    _strict_checked.append(True)


def _select(name: str, distribution: str | None) -> StrategyEntry:
    check_strict()
    found = discovery.find(name, distribution)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        # the same distribution registering a name twice is one plugin, not ambiguity
        dists = sorted({e.distribution or "?" for e in found})
        if len(dists) == 1:
            exact = [e for e in found if e.name == name]
            return (exact or found)[0]
        raise AmbiguousStrategyError(name, dists)
    _raise_not_found(name, distribution)
    raise AssertionError("unreachable")


def _raise_not_found(name: str, distribution: str | None) -> None:
    wanted = discovery.normalize(name)
    allowed_entries = discovery.entries()
    disabled = [
        e
        for e in discovery.installed_entries()
        if e not in allowed_entries
        and (wanted == discovery.normalize(e.name) or wanted in map(discovery.normalize, e.aliases))
    ]
    if disabled:
        allowed = ",".join(sorted(discovery.allowed_names() or ()))
        raise StrategyDisabledError(
            f"strategy {name!r} is installed ({disabled[0].distribution}) but "
            f"{discovery.PLUGINS_ENV}={allowed!r} does not allow it to load. "
            f"Add {disabled[0].name!r} (its canonical name) or {disabled[0].distribution!r} to "
            f"{discovery.PLUGINS_ENV}, or unset the variable."
        )
    if distribution is not None and discovery.find(name):
        others = sorted({e.distribution or "?" for e in discovery.find(name)})
        raise UnknownStrategyError(
            f"{distribution}:{name}",
            available_names(),
            install_hint=f"Distribution {distribution!r} does not register {name!r}; "
            f"it is registered by: {', '.join(others)}.",
        )
    names = available_names()
    if distribution is not None:
        name = f"{distribution}:{name}"
    hint = known.hint_for_name(name)
    import difflib  # failures only

    candidates = sorted(set(names) | set(_known_names()))
    # The name itself is no suggestion (a known built-in that is not installed gets its hint).
    candidates = [c for c in candidates if c != name]
    suggestions = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    raise UnknownStrategyError(
        name,
        names,
        suggestions,
        known.install_hint(hint) if hint else None,
        none_allowed=not names and bool(discovery.installed_entries()),
    )


def _known_names() -> list[str]:
    return [n for k in known.KNOWN_STRATEGIES for n in (k.name, *k.aliases)]


def available_names() -> list[str]:
    """Canonical names and aliases of the allowed strategies (nothing is imported)."""
    names: set[str] = set()
    for e in discovery.entries():
        names.add(e.name)
        names.update(e.aliases)
    return sorted(names)


def get_strategy_class(name: str, *, distribution: str | None = None) -> type[SpeculativeStrategy]:
    """The class registered under ``name`` (or an alias), importing only that entry point.

    ``name`` may be qualified as ``"distribution:name"`` to pick one of several distributions
    that register the same name.
    """
    spec = _params.parse_spec(name)
    if spec.params:
        raise InvalidParameterError(spec.name, "get_strategy_class takes a name, not parameters.")
    return load_entry(_select(spec.name, distribution or spec.distribution))


def get_strategy(
    spec: str | SpeculativeStrategy,
    /,
    *,
    distribution: str | None = None,
    **params: Any,
) -> SpeculativeStrategy:
    """A configured strategy from a name or a string such as ``"ngram:n=5"``.

    Keyword arguments are parameters and override those in the string. Unknown, missing, badly
    typed and out-of-range parameters raise :class:`~sage.llm.errors.InvalidParameterError`.
    An instance is returned unchanged (so APIs can accept either form).
    """
    if isinstance(spec, SpeculativeStrategy):
        if params:
            raise InvalidParameterError(
                spec.strategy_name(), "pass parameters with a name, not with an instance."
            )
        return spec
    parsed = _params.parse_spec(spec)
    entry = _select(parsed.name, distribution or parsed.distribution)
    cls = load_entry(entry)
    values = _params.coerce_all(entry.name, cls, parsed.params)
    values.update(params)
    return build(cls, values, entry.name)


NO_STRATEGY = frozenset({"", "none", "plain"})
"""Strategy strings that mean plain decoding (compared stripped and case-insensitively)."""

STRATEGY_ARGUMENT = "speculative_strategy"
"""The parameter named in the error for a value that is no strategy at all."""


def means_no_strategy(value: object) -> bool:
    """Whether ``value`` asks for plain decoding: ``None``, or a string in :data:`NO_STRATEGY`."""
    return value is None or (isinstance(value, str) and value.strip().lower() in NO_STRATEGY)


def resolve_optional_strategy(
    value: SpeculativeStrategy | str | None, /
) -> SpeculativeStrategy | None:
    """The one reading of "which strategy, if any", for every API that takes either form.

    ``None``, ``""``, ``"none"`` and ``"plain"`` (any case) mean plain decoding and give
    ``None``; a strategy string such as ``"ngram:n=5"`` is resolved with :func:`get_strategy`;
    an instance is returned unchanged. Anything else raises
    :class:`~sage.llm.errors.InvalidParameterError` naming ``speculative_strategy``.
    """
    if means_no_strategy(value):
        return None
    if isinstance(value, str):
        return get_strategy(value.strip())
    if isinstance(value, SpeculativeStrategy):
        return value
    raise InvalidParameterError(
        STRATEGY_ARGUMENT,
        "expected a strategy object, a strategy string such as 'ngram:n=5', or None/'none' "
        f"for plain decoding; got {type(value).__name__}.",
        STRATEGY_ARGUMENT,
    )


def entry_of(cls: type) -> StrategyEntry | None:
    """The entry point the registry loaded ``cls`` from; ``None`` for a class it did not load."""
    return _entries_by_class.get(cls)


def build(
    cls: type[SpeculativeStrategy], values: Mapping[str, Any], label: str
) -> SpeculativeStrategy:
    """Instantiate ``cls`` with checked names; type/range errors come from the class itself."""
    _params.check_names(label, cls, values)
    with plugin_code(cls, "validate"):
        try:
            return cls(**values)
        except TypeError as exc:
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is not None:
                raise  # raised inside the class's code: the plugin's bug, not the caller's
            raise InvalidParameterError(
                label, f"could not construct {cls.__name__}: {exc}"
            ) from exc


@contextmanager
def plugin_code(strategy: SpeculativeStrategy | type, hook: str) -> Iterator[None]:
    """Run a strategy's own code: its output goes to stderr, and an exception that is not one
    of ours becomes :class:`StrategyPluginError` naming the strategy, distribution and hook."""
    try:
        with stdout_to_stderr():
            yield
    except (SageLLMError, KeyboardInterrupt):
        raise  # ours (a parameter error, an engine-config error) or the user's Ctrl-C
    except BaseException as exc:
        cls = strategy if isinstance(strategy, type) else type(strategy)
        entry = _entries_by_class.get(cls)
        name = entry.name if entry else (getattr(cls, "name", None) or cls.__name__)
        raise StrategyPluginError(
            name,
            entry.distribution if entry else None,
            entry.version if entry else None,
            hook,
            summarize(exc),
        ) from exc


def list_strategies(*, load: bool = True) -> list[StrategyInfo]:
    """Every allowed strategy plugin with its status (``ok``, ``failed``, ``incompatible``).

    With ``load=False`` nothing is imported and every status is reported from metadata only
    (``incompatible`` is still detected; import failures are not).
    ``SAGE_LLM_STRICT_PLUGINS=1`` raises the first failure instead of reporting it.
    """
    infos = []
    found = discovery.entries()
    dists_by_name: dict[str, set[str]] = {}
    for entry in found:
        dists_by_name.setdefault(entry.name, set()).add(entry.distribution or "?")
    problems: dict[int, list[str]] = {}
    for problem_entry, problem in discovery.metadata_problems():
        problems.setdefault(id(problem_entry), []).append(problem)
    if discovery.strict() and problems:
        bad = next(e for e in found if id(e) in problems)
        raise StrategyLoadError(bad.name, bad.distribution, bad.version, problems[id(bad)][0])
    for entry in found:
        info = StrategyInfo(
            name=entry.name,
            distribution=entry.distribution,
            version=entry.version,
            target=entry.target,
            status=STATUS_OK,
            aliases=list(entry.aliases),
            requires_core=entry.core_requirement(),
            conflicts=sorted(dists_by_name[entry.name] - {entry.distribution or "?"}),
            warnings=[p for p in problems.get(id(entry), []) if p != entry.malformed],
        )
        try:
            if load:
                cls = load_entry(entry)
                from sage.llm.plugins import plugin_manager

                info.hooks = plugin_manager.implemented_hooks(entry.qualified_name)
                info.summary = _first_line(cls.__doc__)
            else:
                if entry.malformed:
                    raise StrategyLoadError(
                        entry.name, entry.distribution, entry.version, entry.malformed
                    )
                _check_compatible(entry)
        except IncompatibleStrategyError as exc:
            info.status, info.error = STATUS_INCOMPATIBLE, exc.reason
            if discovery.strict():
                raise
        except StrategyLoadError as exc:
            info.status, info.error = STATUS_FAILED, exc.reason
            if discovery.strict():
                raise
        infos.append(info)
    return infos


def name_of(cls: type) -> str | None:
    """The name a strategy class is registered under, or None; never imports a plugin.

    An entry point counts only when the module it names is already imported and holds this very
    class (a package may re-export it from a submodule): a class defined elsewhere that merely
    shares an installed plugin's class name (the seed's ``MyCustomStrategy``) is not registered,
    and that plugin is not imported to find out.
    """
    entry = _entries_by_class.get(cls)
    if entry is not None:
        return entry.name
    for entry in discovery.entries():
        if entry.class_name.rsplit(".", 1)[-1] != cls.__name__:
            continue
        obj: Any = sys.modules.get(entry.module)
        for part in entry.class_name.split(".") if obj is not None else ():
            obj = getattr(obj, part, None)
        if obj is cls:
            return entry.name
    return None


def resolve_class_export(class_name: str, module: str = "sage.llm") -> type[SpeculativeStrategy]:
    """``from sage.llm import NgramStrategy``: the class an entry point names ``class_name``.

    Raises :class:`~sage.llm.errors.StrategyNotInstalledError` (an ``ImportError``) naming the
    distribution to install when no installed plugin provides it.
    """
    check_strict()
    found = discovery.find_by_class_name(class_name)
    hint = known.hint_for_class(class_name)
    if hint is not None:
        # The seed's class names belong to the built-in distributions: another distribution's
        # class of the same name never answers `from sage.llm import NgramStrategy`.
        found = [
            e
            for e in found
            if discovery.normalize(e.distribution or "") == discovery.normalize(hint.distribution)
        ]
        exact = [e for e in found if e.name == hint.name]
        found = exact or found[:1]
    dists = sorted({e.distribution or "?" for e in found})
    if len(dists) > 1:
        raise AmbiguousStrategyError(found[0].name, dists)
    if found:
        try:
            return load_entry(found[0])
        except StrategyLoadError as exc:
            raise StrategyNotInstalledError(
                f"cannot import name {class_name!r} from {module!r}: {exc}",
                name=class_name,
            ) from exc
    if hint is None:
        raise AttributeError(f"module {module!r} has no attribute {class_name!r}")
    raise StrategyNotInstalledError(
        f"cannot import name {class_name!r} from {module!r}: it is provided by the "
        f"distribution {hint.distribution!r}, which is not installed (or not allowed by "
        f"{discovery.PLUGINS_ENV}). Run: pip install {hint.distribution}",
        name=class_name,
    )


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()


def reset() -> None:
    """Forget discovered entry points and loaded classes (tests, in-process installs)."""
    discovery.refresh()
    plugins = sys.modules.get("sage.llm.plugins")  # not imported: nothing was registered
    for key in list(_loaded):
        loaded = _loaded.pop(key)
        qualified = key.split("=", 1)[0]
        manager = getattr(plugins, "plugin_manager", None)
        if manager is None or isinstance(loaded, StrategyLoadError):
            continue
        if manager.get_plugin(qualified):
            manager.unregister(name=qualified)
    _entries_by_class.clear()
    _strict_checked.clear()
