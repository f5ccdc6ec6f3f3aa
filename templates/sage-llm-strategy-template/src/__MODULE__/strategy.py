"""The ``__NAME__`` strategy. Say here when it pays off and what it costs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sage.llm import SpeculativeStrategy, param
from sage.llm.proposing import ProposerContext

from .proposer import PromptLookupProposer


@dataclass(frozen=True, kw_only=True)
class __CLASS__(SpeculativeStrategy):
    """One line that `sage-llm strategies list` shows."""

    name: ClassVar[str] = "__NAME__"

    num_speculative_tokens: int = param(4, doc="Tokens proposed per step (k).", ge=1, le=64)
    prompt_lookup_max: int = param(3, doc="Longest n-gram matched.", ge=1, le=64)

    def apply(self, engine_config: dict[str, Any]) -> None:
        """vLLM's face: engine arguments (vLLM runs its own n-gram lookup from them)."""
        self.speculative_config(engine_config).update(
            method="ngram",
            num_speculative_tokens=self.num_speculative_tokens,
            prompt_lookup_max=self.prompt_lookup_max,
        )

    def make_proposer(self, context: ProposerContext) -> PromptLookupProposer:
        """The reference engine's face: a proposer called once per step."""
        return PromptLookupProposer(self.num_speculative_tokens, self.prompt_lookup_max)
