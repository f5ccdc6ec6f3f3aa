"""The ``__NAME__`` strategy's proposer: what the reference engine calls once per step.

The reference engine (the default of ``sage-llm generate``) runs the draft/verify loop itself
and asks the strategy for a proposer (``make_proposer``); vLLM uses what ``apply`` writes
instead. Replace the lookup below with your method. The engine verifies every proposed token
with the target model, so a poor proposal costs time, never a different output.
"""

from __future__ import annotations

from collections.abc import Sequence

from sage.llm.proposing import Proposal


class PromptLookupProposer:
    """Propose up to ``k`` tokens that followed the latest earlier match of the last n-gram."""

    def __init__(self, k: int, lookup: int) -> None:
        self.k = k
        self.lookup = lookup

    def start(self, prompt_ids: Sequence[int]) -> None:
        """A new request: reset per-request state here (this proposer keeps none)."""

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        ids = list(context_ids)
        limit = min(self.k, max_tokens)
        for n in range(min(self.lookup, len(ids) - 1), 0, -1):  # the longest n-gram first
            tail = ids[-n:]
            for start in range(len(ids) - n - 1, -1, -1):  # the latest occurrence first
                if ids[start : start + n] == tail:
                    return Proposal(ids[start + n : start + n + limit])
        return Proposal()  # nothing to propose: the engine takes a plain step

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        """How many of the proposed tokens the target accepted (adapt here if you want)."""
