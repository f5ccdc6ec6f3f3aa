"""The seed's module path ``sage.llm.engines.vllm.speculative``.

Strategies used to live in this one module. They are separate distributions now; importing
them from here still works and resolves them through the entry points.
"""

from __future__ import annotations

from typing import Any

from sage.llm.strategy import SpeculativeStrategy

__all__ = ["SpeculativeStrategy"]


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from sage.llm.registry import resolve_class_export

    return resolve_class_export(name)
