"""Reading installed distributions' entry points and core requirement, cheaply.

Measured (issue 10, instructions counted with valgrind so that a busy machine does not matter):
``import importlib.metadata`` alone is more than half of what ``import sage.llm`` plus
``get_strategy("ngram")`` costs a fresh process, because it imports ``email``, ``zipfile``,
``csv``, ``pathlib`` and more. What discovery needs is small: the ``*.dist-info`` (or
``*.egg-info``) folders on ``sys.path``, the sections of ``entry_points.txt`` for our groups, and
``Name``, ``Version`` and ``Requires-Dist`` from ``METADATA``. This module reads exactly that,
in the formats the packaging specifications define (entry points: an INI-like file;
METADATA: email-style headers ending at the first blank line).

It reads them only where importlib.metadata would find the same distributions the same way:
when the only distribution finder is the standard path finder and every ``sys.path`` entry is a
directory (or absent). Anywhere else (zip imports, custom finders) it asks
``importlib.metadata``; the tests check that both give the same answer.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import NamedTuple

_SUFFIXES = (".dist-info", ".egg-info")


class InstalledDistribution(NamedTuple):
    """What discovery knows about one distribution that registers strategies."""

    name: str
    version: str
    requires: tuple[str, ...]
    entry_points: tuple[tuple[str, str, str], ...]
    """``(group, name, value)`` for the requested groups, in file order."""


def plugin_distributions(
    groups: tuple[str, ...], paths: Iterable[str] | None = None
) -> list[InstalledDistribution]:
    """Distributions whose ``entry_points.txt`` has any of ``groups``, first on the path wins.

    ``paths`` defaults to ``sys.path``; tests pass their own folders.
    """
    if paths is None:
        if not _plain_path_lookup():
            return _with_importlib(groups)
        paths = sys.path
    found = []
    seen: set[str] = set()
    for folder in paths:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:  # absent, or a file (then _plain_path_lookup said it is not a zip)
            continue
        for entry in names:
            if not entry.endswith(_SUFFIXES):
                continue
            key = _stem_key(entry)
            if key in seen:
                continue
            seen.add(key)
            info = os.path.join(folder or ".", entry)
            text = _read(os.path.join(info, "entry_points.txt"))
            if not text or not any(f"[{g}]" in text for g in groups):
                continue
            meta = _read(
                os.path.join(info, "METADATA" if entry.endswith(".dist-info") else "PKG-INFO")
            )
            name, version, requires = _headers(meta or "")
            found.append(
                InstalledDistribution(
                    name or entry.split("-", 1)[0],
                    version,
                    requires,
                    tuple(ep for ep in parse_entry_points(text) if ep[0] in groups),
                )
            )
    return found


def parse_entry_points(text: str) -> list[tuple[str, str, str]]:
    """``(group, name, value)`` from an ``entry_points.txt`` (the PyPA entry-points format)."""
    out = []
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            continue
        name, sep, value = line.partition("=")
        if group is not None and sep:
            out.append((group, name.strip(), value.strip()))
    return out


def _headers(text: str) -> tuple[str, str, tuple[str, ...]]:
    name = version = ""
    requires = []
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line; the description follows
        if line[0] in " \t":
            continue  # a folded continuation line (never in these three fields in practice)
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "name":
            name = value.strip()
        elif key == "version":
            version = value.strip()
        elif key == "requires-dist":
            requires.append(value.strip())
    return name, version, tuple(requires)


def _stem_key(entry: str) -> str:
    """The normalized distribution name of a ``name-version.dist-info`` folder (importlib's rule:
    a distribution shadowed by an earlier one of the same name is not seen)."""
    stem = entry.rsplit(".", 1)[0]
    return re.sub(r"[-_.]+", "_", stem.split("-", 1)[0]).lower()


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _plain_path_lookup() -> bool:
    """True when importlib.metadata would look in ``sys.path`` folders only."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) is not None and finder is not PathFinder:
            return False
    return all(not os.path.isfile(p) for p in sys.path if p)


def _with_importlib(groups: tuple[str, ...]) -> list[InstalledDistribution]:
    """The same answer from importlib.metadata (zip imports, custom finders)."""
    from importlib.metadata import distributions

    found = []
    seen: set[str] = set()
    for dist in distributions():
        text = dist.read_text("entry_points.txt")
        if not text or not any(f"[{g}]" in text for g in groups):
            continue
        meta = dist.metadata
        name = meta["Name"] or ""
        key = re.sub(r"[-_.]+", "_", name).lower()
        if key in seen:
            continue
        seen.add(key)
        found.append(
            InstalledDistribution(
                name,
                meta["Version"] or "",
                tuple(dist.requires or ()),
                tuple(
                    (ep.group, ep.name, ep.value) for ep in dist.entry_points if ep.group in groups
                ),
            )
        )
    return found
