"""The ``__NAME__`` strategy. Say here when it pays off and what it costs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sage.llm import SpeculativeStrategy, param


@dataclass(frozen=True, kw_only=True)
class __CLASS__(SpeculativeStrategy):
    """One line that `sage-llm strategies list` shows."""

    name: ClassVar[str] = "__NAME__"

    num_speculative_tokens: int = param(4, doc="Tokens proposed per step (k).", ge=1, le=64)

    def apply(self, engine_config: dict[str, Any]) -> None:
        self.speculative_config(engine_config).update(
            method="ngram", num_speculative_tokens=self.num_speculative_tokens
        )
