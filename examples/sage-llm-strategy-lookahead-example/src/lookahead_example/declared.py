"""The same strategy with declared parameters: validation, `show` and the string form for free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from lookahead_example.proposer import PromptLookupProposer
from sage.llm import InvalidParameterError, SpeculativeStrategy, param
from sage.llm.proposing import ProposerContext


@dataclass(frozen=True, kw_only=True)
class MyLookupStrategy(SpeculativeStrategy):
    """Prompt lookup with a fixed depth."""

    name: ClassVar[str] = "my-lookup"  # must equal the entry-point name
    k: int = param(5, doc="Tokens proposed per step.", ge=1, le=16)
    lookup: int = param(4, doc="Longest n-gram matched.", ge=1)

    def validate(self) -> None:  # relations between parameters
        if self.k > 4 * self.lookup:
            raise InvalidParameterError(self.name, "k must be <= 4 * lookup", "k")

    def apply(self, engine_config: dict[str, Any]) -> None:
        self.speculative_config(engine_config).update(
            method="ngram", num_speculative_tokens=self.k, prompt_lookup_max=self.lookup
        )

    def make_proposer(self, context: ProposerContext) -> PromptLookupProposer:
        return PromptLookupProposer(self.k, self.lookup)
