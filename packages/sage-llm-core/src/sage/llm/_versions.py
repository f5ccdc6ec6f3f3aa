"""Is the installed core inside a plugin's declared range? The common case without ``packaging``.

Every ``get_strategy`` checks the plugin's ``Requires-Dist: sage-llm-core...`` against the
installed core before importing the plugin. ``packaging.specifiers`` answers that exactly but
costs a noticeable share of a fresh process's start-up (issue 10 measured the whole lookup path),
while nearly every plugin declares something like ``>=1.0,<2``. For specifiers whose operators
are ``>=``, ``<=``, ``>``, ``<``, ``==`` or ``!=`` and whose versions, like the core's, are plain
final releases (``1``, ``1.0``, ``1.0.2``), comparing zero-padded number tuples gives exactly
packaging's answer (no pre-release, post-release, local-version or wildcard rules apply).
Anything else returns None, and the caller asks ``packaging`` (tests compare the two).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

_RELEASE = re.compile(r"^\d+(\.\d+)*$")
_CLAUSE = re.compile(r"^(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)$")
_OPS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def _release(text: str, width: int) -> tuple[int, ...]:
    numbers = [int(n) for n in text.split(".")]
    return tuple(numbers + [0] * (width - len(numbers)))


def fast_contains(specifier: str, version: str) -> bool | None:
    """``version in SpecifierSet(specifier)`` for plain releases; None: ask packaging."""
    if not _RELEASE.match(version):
        return None
    clauses = []
    for raw in filter(None, (c.strip() for c in specifier.split(","))):
        match = _CLAUSE.match(raw)
        if match is None:
            return None
        clauses.append((match.group(1), match.group(2)))
    for op, bound in clauses:
        width = max(len(version.split(".")), len(bound.split(".")))
        if not _OPS[op](_release(version, width), _release(bound, width)):
            return False
    return True
