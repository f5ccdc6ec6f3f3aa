"""The draft strategy's policy around any model-drafting proposer: ``k`` tokens every step.

Separate from :mod:`~sage_llm_strategy_draft.proposer` (which runs a model) so that wrapping a
proposer imports no torch: ``sage-llm replay`` runs it around a draft model's recorded
predictions (the strategy's ``wrap_proposer`` hook).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sage.llm.proposing import Proposal, Proposer


class FixedDepthProposer:
    """Ask ``inner`` for ``k`` tokens every step (fewer where the request has less room)."""

    def __init__(self, inner: Proposer, k: int) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.inner = inner
        self.k = k

    def start(self, prompt_ids: Sequence[int]) -> None:
        self.inner.start(prompt_ids)

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        return self.inner.propose(context_ids, min(self.k, max_tokens))

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        self.inner.on_verified(num_proposed, num_accepted)

    def reseed(self, seed: int) -> None:
        """Seed a sampling inner proposer (see ``sage.llm.proposing.SeededProposer``)."""
        reseed: Any = getattr(self.inner, "reseed", None)
        if callable(reseed):
            reseed(seed)

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Hand a replay's simulated clock on to an inner proposer that charges time to it."""
        set_clock: Any = getattr(self.inner, "set_clock", None)
        if callable(set_clock):
            set_clock(clock)
