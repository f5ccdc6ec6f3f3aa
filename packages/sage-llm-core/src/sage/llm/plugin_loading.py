"""Importing one plugin entry point so that nothing the plugin does can end the host.

Strategies (:mod:`sage.llm.registry`) and control-plane plugins
(:mod:`sage.llm.control_plane.hooks`) load through these functions, one entry point at a time:
a malformed entry point, a distribution built for another ``sage-llm-core`` and an import that
raises (``sys.exit()`` included; ``KeyboardInterrupt`` excepted: that is the user) each become
:class:`PluginLoadFailed` with one line that says why, for the caller to report with the
plugin's name and distribution. What a plugin prints while it is imported goes to stderr.
"""

from __future__ import annotations

from typing import Any

from sage.llm import discovery
from sage.llm._stdio import stdout_to_stderr
from sage.llm._versions import fast_contains
from sage.llm.discovery import PluginEntry


class PluginLoadFailed(Exception):
    """One entry point could not be loaded; ``reason`` says why and what to do."""

    def __init__(self, reason: str, *, incompatible: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.incompatible = incompatible
        """The distribution was built for another ``sage-llm-core`` (nothing was imported)."""


def core_incompatibility(entry: PluginEntry) -> str | None:
    """Why the entry's distribution does not fit the installed core, or None when it does
    (or declares no range). Read from metadata: nothing is imported."""
    spec = entry.core_requirement()
    if not spec:
        return None
    ok = fast_contains(spec, discovery.core_version())
    if ok is None:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            ok = SpecifierSet(spec).contains(discovery.core_version(), prereleases=True)
        except InvalidSpecifier:
            return None
    if ok:
        return None
    return (
        f"it needs sage-llm-core{spec}, but sage-llm-core {discovery.core_version()} is "
        f"installed. Install a release of {entry.distribution} built for this core, or "
        f"pip install 'sage-llm-core{spec}'."
    )


def import_entry(entry: PluginEntry) -> Any:
    """The object ``entry`` names, imported with the host guarded; raises
    :class:`PluginLoadFailed` (its cause chained) when the entry cannot be loaded."""
    if entry.malformed:
        raise PluginLoadFailed(entry.malformed)
    incompatible = core_incompatibility(entry)
    if incompatible:
        raise PluginLoadFailed(incompatible, incompatible=True)
    try:
        with stdout_to_stderr():
            return entry.load()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # third-party code: even sys.exit() must not end the host
        raise PluginLoadFailed(f"import failed: {summarize(exc)}") from exc


def summarize(exc: BaseException) -> str:
    """The exception and the innermost frames, short enough for one listing row."""
    import traceback  # failures only

    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")
    ][-2:]
    where = "; ".join(f"{_short_path(f.filename)}:{f.lineno} in {f.name}" for f in frames)
    msg = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, SystemExit):
        msg = f"SystemExit({exc.code!r}): the plugin called sys.exit()"
    return f"{msg} (at {where})" if where else msg


def _short_path(filename: str) -> str:
    """``.../site-packages/broken_plugin/__init__.py`` -> ``broken_plugin/__init__.py``."""
    return "/".join(filename.replace("\\", "/").rsplit("/", 2)[-2:])
