"""The ``ngram`` strategy: propose the tokens that followed the last n-gram earlier in the text.

No draft model and almost no overhead; it pays off when the output copies from the input
(summaries, retrieval-augmented answers, code edits) and costs little when it does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm import InvalidParameterError, SpeculativeStrategy, param

if TYPE_CHECKING:
    from sage.llm.proposing import Proposer, ProposerContext

DEFAULT_LOOKUP_MIN = 2
"""Shortest n-gram matched unless ``prompt_lookup_min`` says otherwise (see ``min_n``)."""


@dataclass(frozen=True, kw_only=True)
class NgramStrategy(SpeculativeStrategy):
    """Prompt-lookup speculation: find the last n tokens earlier on, propose what followed."""

    name: ClassVar[str] = "ngram"

    n: int = param(5, doc="Longest n-gram to match (vLLM prompt_lookup_max).", ge=1, le=64)
    num_speculative_tokens: int = param(5, doc="Tokens proposed per step (k).", ge=1, le=64)
    prompt_lookup_min: int | None = param(
        None,
        doc="Shortest n-gram to fall back to when the longest does not match "
        f"(default: min({DEFAULT_LOOKUP_MIN}, n)).",
        ge=1,
        le=64,
    )

    @property
    def min_n(self) -> int:
        """The shortest n-gram matched: ``prompt_lookup_min``, or min(2, n) when unset.

        Why not 1 (transformers' prompt lookup goes down to single tokens): on free text a
        one-token match is mostly a coincidence, and every rejected proposal costs a wider
        verify pass. docs/benchmarks.md ("Spec-Bench categories, default model") compares both
        settings side by side: stopping at 2-grams accepted more and ran faster in every
        category.
        """
        if self.prompt_lookup_min is not None:
            return self.prompt_lookup_min
        return min(DEFAULT_LOOKUP_MIN, self.n)

    def validate(self) -> None:
        if self.prompt_lookup_min is not None and self.prompt_lookup_min > self.n:
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
            prompt_lookup_min=self.min_n,
        )

    def make_proposer(self, context: ProposerContext) -> Proposer:
        """Prompt lookup for the reference engine (no model needed, so ``context`` is unused)."""
        from sage_llm_strategy_ngram.proposer import NgramProposer

        return NgramProposer(self.num_speculative_tokens, self.n, self.min_n)

    def with_num_speculative_tokens(self, k: int) -> NgramStrategy:
        """The same lookup proposing ``k`` tokens per step (a scheduling policy's depth)."""
        return dataclasses.replace(self, num_speculative_tokens=k)

    def transformers_peer(self) -> dict[str, Any]:
        """transformers' prompt lookup at the same ``k`` and longest n-gram (it goes down to
        single tokens where this strategy stops at ``min_n``)."""
        return {
            "prompt_lookup_num_tokens": self.num_speculative_tokens,
            "max_matching_ngram_size": self.n,
        }
