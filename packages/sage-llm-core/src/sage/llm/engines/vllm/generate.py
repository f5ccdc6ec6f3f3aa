"""One-shot generation on vLLM for ``sage-llm generate --engine vllm``.

The CLI command lives with the reference engine (``sage.llm.cli.generate``); it calls
:func:`generate_cli` so that both engines take the same options and return results that
compare one to one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sage.llm.engines.vllm.service import GenerationResult, VLLMService, VLLMServiceConfig

if TYPE_CHECKING:
    from sage.llm.strategy import SpeculativeStrategy


def generate_cli(
    *,
    model: str,
    prompts: Sequence[str],
    strategy: SpeculativeStrategy | str | None = None,
    max_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    auto_download: bool = False,
    engine_args: Mapping[str, Any] | None = None,
) -> GenerationResult:
    """Start an engine, generate for ``prompts`` in one batch, shut the engine down.

    ``temperature=0`` is greedy decoding. ``engine_args`` goes to ``vllm.LLM`` as is (on CPU,
    e.g. ``{"kv_cache_memory_bytes": 1 << 30}``). Raises the project's errors (missing vLLM,
    unresolvable model, bad strategy) before any engine starts.
    """
    config = VLLMServiceConfig(
        model_id=model,
        auto_download=auto_download,
        speculative_strategy=strategy,
        seed=seed,
        engine_args=dict(engine_args or {}),
    )
    sampling: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
    }
    if top_k is not None:
        sampling["top_k"] = top_k
    with VLLMService(config) as service:
        return service.generate(list(prompts), **sampling)
