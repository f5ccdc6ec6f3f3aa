"""vLLM engine integration (the seed's import path ``sage.llm.engines.vllm``).

Strategy classes are resolved lazily through the entry points, exactly as from ``sage.llm``.
vLLM itself is only imported when an engine is started.
"""

from __future__ import annotations

from sage.llm._lazy import lazy_getattr
from sage.llm.engines.vllm.config import build_engine_args
from sage.llm.engines.vllm.cpu import cpu_defaults
from sage.llm.strategy import SpeculativeStrategy

_LAZY_ATTRIBUTES: dict[str, str] = {
    "VLLMService": "sage.llm.engines.vllm.service",
    "VLLMServiceConfig": "sage.llm.engines.vllm.service",
    "GenerationResult": "sage.llm.results",
    "VLLMProposer": "sage.llm.engines.vllm.proposer",
    "generate_cli": "sage.llm.engines.vllm.generate",
}

__all__ = [
    "GenerationResult",
    "SpeculativeStrategy",
    "VLLMProposer",
    "VLLMService",
    "VLLMServiceConfig",
    "build_engine_args",
    "cpu_defaults",
    "generate_cli",
]


__getattr__ = lazy_getattr(__name__, _LAZY_ATTRIBUTES)
