"""The ``ngram`` strategy: propose the tokens that followed the last n-gram earlier in the text.

No draft model and almost no overhead; it pays off when the output copies from the input
(summaries, retrieval-augmented answers, code edits) and costs little when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm import InvalidParameterError, SpeculativeStrategy, param

if TYPE_CHECKING:
    from sage.llm.proposer import Proposer, ProposerContext


@dataclass(frozen=True, kw_only=True)
class NgramStrategy(SpeculativeStrategy):
    """Prompt-lookup speculation: find the last n tokens earlier on, propose what followed."""

    name: ClassVar[str] = "ngram"

    n: int = param(5, doc="Longest n-gram to match (vLLM prompt_lookup_max).", ge=1, le=64)
    num_speculative_tokens: int = param(5, doc="Tokens proposed per step (k).", ge=1, le=64)
    prompt_lookup_min: int = param(
        1, doc="Shortest n-gram to fall back to when the longest does not match.", ge=1, le=64
    )

    def validate(self) -> None:
        if self.prompt_lookup_min > self.n:
            raise InvalidParameterError(
                self.name,
                f"prompt_lookup_min ({self.prompt_lookup_min}) must be <= n ({self.n}).",
                "prompt_lookup_min",
            )

    def apply(self, engine_config: dict[str, Any]) -> None:
        self.speculative_config(engine_config).update(
            method="ngram",
            num_speculative_tokens=self.num_speculative_tokens,
            prompt_lookup_max=self.n,
            prompt_lookup_min=self.prompt_lookup_min,
        )

    def make_proposer(self, context: ProposerContext) -> Proposer:
        """Prompt lookup for the reference engine (no model needed, so ``context`` is unused)."""
        from sage_llm_strategy_ngram.proposer import NgramProposer

        return NgramProposer(self.num_speculative_tokens, self.n, self.prompt_lookup_min)
