"""Module ``__getattr__`` for lazy exports, shared by ``sage.llm`` and the seed's engine paths.

Two kinds of names resolve lazily: attributes of heavier core modules (``VLLMService``), imported
on first use so ``import sage.llm`` stays light; and strategy classes by class name
(``NgramStrategy``), resolved through the entry points with an install hint when missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(module_name: str, attributes: Mapping[str, str]) -> Callable[[str], Any]:
    """A ``__getattr__`` for ``module_name``; ``attributes`` maps a name to its module."""

    def __getattr__(name: str) -> Any:
        target = attributes.get(name)
        if target is not None:
            return getattr(importlib.import_module(target), name)
        if name.startswith("__"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        from sage.llm.registry import resolve_class_export

        return resolve_class_export(name, module_name)

    return __getattr__
