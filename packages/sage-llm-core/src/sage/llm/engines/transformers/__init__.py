"""The reference engine: speculative decoding on transformers + torch, run by sage-llm itself.

Importing this package is light (torch loads on first use) and sets ``OMP_WAIT_POLICY=PASSIVE``
unless the user chose otherwise, because the policy is only read when torch starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sage.llm.engines.transformers.loading import set_cpu_environment

set_cpu_environment()

if TYPE_CHECKING:
    from sage.llm.engines.transformers.engine import TransformersEngine
    from sage.llm.engines.transformers.layout import use_column_major_weights
    from sage.llm.engines.transformers.loading import load_model
    from sage.llm.engines.transformers.sampling import SamplingParams
    from sage.llm.results import GenerationResult

__all__ = [
    "GenerationResult",
    "SamplingParams",
    "TransformersEngine",
    "load_model",
    "use_column_major_weights",
]

_EXPORTS = {
    "TransformersEngine": "sage.llm.engines.transformers.engine",
    "GenerationResult": "sage.llm.results",
    "SamplingParams": "sage.llm.engines.transformers.sampling",
    "load_model": "sage.llm.engines.transformers.loading",
    "use_column_major_weights": "sage.llm.engines.transformers.layout",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
