"""Everything a proposer needs, in one stable module for plugin authors.

A strategy's per-step face (``make_proposer``, see :mod:`sage.llm.proposer`) runs inside the
reference engine. Proposers written outside sage-llm, and the built-in ``ngram``, ``draft`` and
``dynamic-lookahead`` strategies, import from here and from :mod:`sage.llm` only, never from
``sage.llm.engines.*`` (whose layout may change between releases)::

    from sage.llm.proposing import (
        Proposal, ProposerContext, forward, load_draft_model, new_kv_cache, probabilities,
    )

What is here, by job:

* the contract: :class:`Proposer`, :class:`SeededProposer` (optional ``reseed``),
  :class:`ConfidenceAwareProposer` (optional ``on_target_confidence``),
  :class:`EarlyStoppingProposer` (a model draft's settable early stops),
  :class:`FinishingProposer` (optional ``finish``),
  :class:`Proposal`, :class:`ProposerContext`, :class:`DraftTiming` (an optional
  ``last_timing`` of a proposer that runs a model);
* sampling: :class:`SamplingParams` (:func:`sampling_params` builds it from a context),
  :func:`probabilities` (the same temperature/top-k/top-p the verifier applies to the target,
  which is what keeps speculative sampling exact) and :func:`sample`;
* a draft model: :func:`load_draft_model` (next to the target, same device and dtype, its
  vocabulary checked), :func:`new_kv_cache`, :func:`forward` and :func:`drop_last_tokens`
  (these bridge the transformers versions the core supports);
* token ids: :func:`eos_token_ids`, :func:`output_vocab_size`, :func:`check_same_vocabulary`;
* vLLM draft heads (EAGLE, EAGLE-3, MTP checkpoints): :func:`read_head_config`,
  :func:`describe_head` and :func:`check_head_kind`, for a strategy that checks its head
  when it is built (the same checks run against the target before vLLM starts);
* vLLM's ``custom_class`` proposers: :class:`VLLMProposer`, the base class of a proposer that
  vLLM instantiates in its workers (a strategy's ``vllm_proposer_class`` hook; docs/vllm.md).
  Loaded on first use (it imports no vLLM either);
* the errors a proposer raises: :class:`ModelLoadError`, :class:`VocabularyMismatchError`,
  :class:`InvalidSamplingParamsError` (all :class:`~sage.llm.errors.SageLLMError`).

Importing this module is light: torch and transformers load when a function needs them.
Names are added here, not renamed or removed, within a major version of ``sage-llm-core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sage.llm.engines.transformers.compat import drop_last_tokens, forward
from sage.llm.engines.transformers.compat import new_cache as new_kv_cache
from sage.llm.engines.transformers.errors import (
    InvalidSamplingParamsError,
    ModelLoadError,
    VocabularyMismatchError,
)
from sage.llm.engines.transformers.sampling import SamplingParams, probabilities, sample
from sage.llm.engines.transformers.vocab import (
    check_same_vocabulary,
    eos_token_ids,
    output_vocab_size,
)
from sage.llm.proposer import (
    ConfidenceAwareProposer,
    DraftTiming,
    EarlyStoppingProposer,
    FinishingProposer,
    Proposal,
    Proposer,
    ProposerContext,
    SeededProposer,
)

if TYPE_CHECKING:
    from sage.llm.engines.vllm.heads import check_head_kind, describe_head
    from sage.llm.engines.vllm.heads import read_local_config as read_head_config
    from sage.llm.engines.vllm.proposer import VLLMProposer

__all__ = [
    "ConfidenceAwareProposer",
    "DraftModel",
    "DraftTiming",
    "EarlyStoppingProposer",
    "FinishingProposer",
    "InvalidSamplingParamsError",
    "ModelLoadError",
    "Proposal",
    "Proposer",
    "ProposerContext",
    "SamplingParams",
    "SeededProposer",
    "VLLMProposer",
    "VocabularyMismatchError",
    "check_head_kind",
    "check_same_vocabulary",
    "describe_head",
    "drop_last_tokens",
    "eos_token_ids",
    "forward",
    "load_draft_model",
    "new_kv_cache",
    "output_vocab_size",
    "probabilities",
    "read_head_config",
    "sample",
    "sampling_params",
]


_HEADS = {
    "read_head_config": "read_local_config",
    "describe_head": "describe_head",
    "check_head_kind": "check_head_kind",
}


def __getattr__(name: str) -> Any:
    """``VLLMProposer`` and the head checks on first use, so that importing this module loads
    no engine package."""
    if name == "VLLMProposer":
        from sage.llm.engines.vllm.proposer import VLLMProposer

        return VLLMProposer
    if name in _HEADS:
        from sage.llm.engines.vllm import heads

        return getattr(heads, _HEADS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sampling_params(context: ProposerContext) -> SamplingParams:
    """The engine's sampling settings for this proposer (greedy when temperature is 0)."""
    return SamplingParams(context.temperature, context.top_k, context.top_p)


@dataclass(frozen=True)
class DraftModel:
    """A loaded draft model: ``model`` for forward passes, ``tokenizer`` if it has one, and the
    target's end-of-sequence ids (a draft stops proposing after one)."""

    model: Any
    tokenizer: Any
    eos_token_ids: frozenset[int]


def load_draft_model(
    name_or_path: str,
    context: ProposerContext,
    *,
    allow_hub: bool = True,
    weight_layout: Literal["auto", "column", "row"] = "row",
) -> DraftModel:
    """Load a draft model next to the target (its device and dtype) and check its vocabulary.

    ``name_or_path`` is a local directory, a ``.gguf`` file, a model-pack name or a hub id;
    ``allow_hub=False`` refuses a hub id that is not on disk (``auto_download=False``).
    ``weight_layout`` defaults to PyTorch's row-major layout: a draft runs 1- and 2-token passes,
    where the column-major layout that speeds up the target's verify pass gains nothing.
    Raises :class:`ModelLoadError` or :class:`VocabularyMismatchError` with what to do.
    """
    from sage.llm.engines.transformers.loading import load_model

    target = context.target
    if target is None:
        raise ValueError(
            "loading a draft model needs the target model in the ProposerContext to check the "
            "draft's vocabulary; build the proposer through an engine."
        )
    looks_like_hub_id = name_or_path.count("/") == 1 and not name_or_path.startswith(
        (".", "/", "~")
    )
    if not allow_hub and looks_like_hub_id and not Path(name_or_path).expanduser().exists():
        raise ModelLoadError(
            f"draft model {name_or_path!r} is a hub id and auto_download is off; pass a "
            "local directory, a .gguf file or a model pack name."
        )
    model, tokenizer = load_model(
        name_or_path,
        device=context.device,
        dtype=context.dtype,
        require_tokenizer=False,
        weight_layout=weight_layout,
    )
    target_name = getattr(target.config, "_name_or_path", "") or "target"
    check_same_vocabulary(
        target_name,
        context.vocab_size or output_vocab_size(target),
        context.tokenizer,
        name_or_path,
        model,
        tokenizer,
    )
    return DraftModel(model, tokenizer, eos_token_ids(target, context.tokenizer))
