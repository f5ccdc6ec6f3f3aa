"""The ``draft`` strategy: a small model of the same vocabulary proposes, the target verifies.

It gives the highest speedups on free text where nothing can be copied from the prompt, at the
cost of loading and running a second model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm import InvalidParameterError, SpeculativeStrategy, param

if TYPE_CHECKING:
    from sage.llm.proposing import Proposer, ProposerContext

MIN_VLLM = "0.14.0"
"""The seed notes draft models need vLLM >= 0.14."""


@dataclass(frozen=True, kw_only=True)
class DraftModelStrategy(SpeculativeStrategy):
    """Draft-model speculation: a small same-vocabulary model proposes k tokens per step."""

    name: ClassVar[str] = "draft"

    draft_model_id: str = param(
        doc="Draft model: a local path, a model-pack name or a hub id (same tokenizer as the "
        "target).",
        draft_model=True,
    )
    num_speculative_tokens: int = param(
        5, doc="Tokens the draft proposes per step (k).", ge=1, le=64
    )
    auto_download: bool = param(
        True, doc="Allow fetching the draft model from a model hub when it is not local."
    )
    draft_tensor_parallel_size: int | None = param(
        None, doc="Tensor-parallel size of the draft (vLLM: 1 or the target's size).", ge=1
    )
    quantization: str | None = param(None, doc="Quantization method of the draft model.")
    revision: str | None = param(None, doc="Revision (branch, tag or commit) of the draft model.")
    max_model_len: int | None = param(
        None, doc="Longest sequence the draft handles; longer requests skip speculation.", ge=1
    )

    def validate(self) -> None:
        if not self.draft_model_id.strip():
            raise InvalidParameterError(
                self.name,
                "draft_model_id must name a model (a local path, a model-pack name or a hub id).",
                "draft_model_id",
            )

    def apply(self, engine_config: dict[str, Any]) -> None:
        self.require_vllm_at_least(MIN_VLLM, feature="draft-model speculation")
        config: dict[str, Any] = {
            "method": "draft_model",
            "model": self.draft_model_id,
            "num_speculative_tokens": self.num_speculative_tokens,
        }
        optional = {
            "draft_tensor_parallel_size": self.draft_tensor_parallel_size,
            "quantization": self.quantization,
            "revision": self.revision,
            "max_model_len": self.max_model_len,
        }
        config.update({k: v for k, v in optional.items() if v is not None})
        self.speculative_config(engine_config).update(config)

    def make_proposer(self, context: ProposerContext) -> Proposer:
        """Load the draft next to the target and propose with it (the reference engine).

        ``quantization``, ``revision`` and ``draft_tensor_parallel_size`` are vLLM settings
        and do not apply here.
        """
        from sage_llm_strategy_draft.proposer import build_draft_proposer

        return build_draft_proposer(
            self.draft_model_id,
            self.num_speculative_tokens,
            context,
            allow_hub=self.auto_download,
        )

    def wrap_proposer(self, inner: Proposer) -> Proposer:
        """``inner`` (any model-drafting proposer) asked for ``num_speculative_tokens`` every
        step: this strategy's policy, e.g. over a draft model's recorded predictions."""
        from sage_llm_strategy_draft.fixed import FixedDepthProposer

        return FixedDepthProposer(inner, self.num_speculative_tokens)

    def with_num_speculative_tokens(self, k: int) -> DraftModelStrategy:
        """The same draft proposing ``k`` tokens per step (a scheduling policy's depth)."""
        return dataclasses.replace(self, num_speculative_tokens=k)

    def transformers_peer(self) -> dict[str, Any]:
        """transformers' assisted generation with the same draft and a constant ``k``, without
        its confidence stop (transformers reads these from the assistant's own settings and
        would otherwise draft up to 20 tokens and stop below 0.4)."""
        return {
            "assistant_model": self.draft_model_id,
            "num_assistant_tokens": self.num_speculative_tokens,
            "num_assistant_tokens_schedule": "constant",
            "assistant_confidence_threshold": 0.0,
        }
