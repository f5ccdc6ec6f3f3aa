"""The seed's module path ``sage.llm.engines.vllm.speculative``.

Strategies used to live in this one module. They are separate distributions now; importing
them from here still works and resolves them through the entry points.
"""

from __future__ import annotations

from sage.llm._lazy import lazy_getattr
from sage.llm.strategy import SpeculativeStrategy

__all__ = ["SpeculativeStrategy"]


__getattr__ = lazy_getattr(__name__, {})
