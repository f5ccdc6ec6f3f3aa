"""The seed's ``MyCustomStrategy``, as a third party would publish it."""

from __future__ import annotations

from typing import Any

from lookahead_example.proposer import PromptLookupProposer
from sage.llm import SpeculativeStrategy
from sage.llm.proposing import ProposerContext


class MyCustomStrategy(SpeculativeStrategy):
    """Custom speculative decoding strategy (自定义 speculative decoding 策略)."""

    def __init__(self, **kwargs: Any) -> None:
        self.config = kwargs

    def apply(self, engine_config: dict[str, Any]) -> None:
        """Apply the strategy to the engine configuration."""
        self.speculative_config(engine_config).update(
            method="ngram",
            num_speculative_tokens=self._compute_optimal_k(),
            prompt_lookup_max=int(self.config.get("lookup", 4)),
        )

    def make_proposer(self, context: ProposerContext) -> PromptLookupProposer:
        """The same lookup on the reference engine (`sage-llm generate --strategy my-custom`)."""
        return PromptLookupProposer(self._compute_optimal_k(), int(self.config.get("lookup", 4)))

    def _compute_optimal_k(self) -> int:
        # A real plugin would compute this; the seed's example returns a constant default.
        return int(self.config.get("k", 5))
