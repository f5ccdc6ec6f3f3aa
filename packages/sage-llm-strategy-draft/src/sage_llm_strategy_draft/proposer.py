"""A draft model with its own KV cache: the draft strategy's per-step proposer.

The draft cache follows the committed context lazily: at each step the proposer finds how much
of what it has cached (the context it saw last time plus its own proposals) is still the
committed context, crops the rest away, feeds only the new committed tokens, and then drafts
token by token. Nothing is recomputed from the start of the prompt.

With sampling, each draft token is drawn from the draft's distribution ``q`` (the same
temperature/top-k/top-p as the target), and ``q`` is returned so that the engine's verifier can
apply ``min(1, p/q)``. For that rule to keep the target's distribution, draft tokens must be
random draws independent of the verifier's, so the proposer has its own generator; the engine
seeds it through :meth:`DraftModelProposer.reseed` when a run is seeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sage.llm.proposing import (
    DraftTiming,
    Proposal,
    ProposerContext,
    SamplingParams,
    drop_last_tokens,
    forward,
    load_draft_model,
    new_kv_cache,
    probabilities,
    sample,
    sampling_params,
)


class DraftModelProposer:
    """Propose ``num_speculative_tokens`` tokens per step by running a small draft model."""

    def __init__(
        self,
        model: Any,
        num_speculative_tokens: int,
        sampling: SamplingParams | None = None,
        eos_token_ids: Sequence[int] = (),
        *,
        confidence_threshold: float = 0.0,
        cumulative_confidence_threshold: float = 0.0,
    ) -> None:
        import torch

        if num_speculative_tokens < 1:
            raise ValueError(f"num_speculative_tokens must be >= 1, got {num_speculative_tokens}")
        if not 0.0 <= confidence_threshold < 1.0:
            raise ValueError(f"confidence_threshold must be in [0, 1), got {confidence_threshold}")
        if not 0.0 <= cumulative_confidence_threshold <= 1.0:
            raise ValueError(
                "cumulative_confidence_threshold must be in [0, 1], got "
                f"{cumulative_confidence_threshold}"
            )
        self.confidence_threshold = confidence_threshold
        """Stop drafting after a token the draft gave less than this probability (0: never).

        The early stop of SpecDec++ / transformers' ``assistant_confidence_threshold``. Whether
        token ``i+1`` is drafted depends only on tokens ``<= i``, never on token ``i+1`` itself,
        so every drafted token is still a draw from ``q`` and speculative sampling stays exact.
        """
        self.cumulative_confidence_threshold = cumulative_confidence_threshold
        """Stop drafting once the product of the draft's probabilities of the tokens drafted
        in this call falls below this (0: never).

        SpecDec++'s stopping rule (Huang et al. 2024): that product is the draft's own estimate
        of the chance that every one of them is accepted, so the next token is worth drafting
        only while it stays above what a drafted token costs over what an accepted one saves.
        Unlike :attr:`confidence_threshold` one unsure token in a long, sure run does not end
        the draft. A caller that measures those costs (dynamic-lookahead) sets it every step.
        Exact for sampling for the same reason as :attr:`confidence_threshold`."""
        self.model = model
        self.num_speculative_tokens = num_speculative_tokens
        self.sampling = sampling or SamplingParams()
        self.eos_token_ids = frozenset(eos_token_ids)
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device)
        self.generator.seed()
        self._cache: Any = None
        self._cached: list[int] = []  # the tokens whose keys/values are in the draft cache
        self._seen = 0  # len(context) at the previous step: that prefix is still committed
        self.clock: Callable[[], float] = time.perf_counter
        self.last_timing: DraftTiming | None = None
        """How the last :meth:`propose` spent its time (``None`` before the first; see
        :class:`sage.llm.proposing.DraftTiming`)."""

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Time :attr:`last_timing` with ``clock`` (a wrapper's, so both read the same)."""
        self.clock = clock

    def reseed(self, seed: int) -> None:
        """Make draft sampling reproducible for a seeded run."""
        self.generator.manual_seed(seed)

    def start(self, prompt_ids: Sequence[int]) -> None:
        self._cache = new_kv_cache(self.model)
        self._cached = []
        self._seen = 0

    def _sync(self, context: Sequence[int]) -> int:
        """Crop the cache to what is still committed; return how many cached tokens remain."""
        keep = self._seen
        limit = min(len(self._cached), len(context) - 1)  # always feed at least one token
        while keep < limit and self._cached[keep] == context[keep]:
            keep += 1
        keep = min(keep, limit)
        drop_last_tokens(self._cache, len(self._cached) - keep)
        del self._cached[keep:]
        return keep

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        import torch

        k = min(self.num_speculative_tokens, max_tokens)
        if k <= 0:
            return Proposal([])
        if self._cache is None:
            self.start(context_ids)
        keep = self._sync(context_ids)
        feed = list(context_ids[keep:])
        read_tokens = len(feed)
        self._seen = len(context_ids)
        greedy = self.sampling.greedy
        tokens: list[int] = []
        rows: list[torch.Tensor] = []
        all_accepted = 1.0  # the draft's probability that every token so far is accepted
        start = read_end = self.clock()
        with torch.inference_mode():
            for i in range(k):
                logits = forward(self.model, feed, self._cache, logits_to_keep=1)[-1]
                self._cached.extend(feed)
                if greedy:
                    token = int(logits.argmax().item())
                else:
                    q = probabilities(logits, self.sampling)
                    token = int(sample(q, self.generator).item())
                    rows.append(q)
                tokens.append(token)
                if i == 0:
                    read_end = self.clock()
                if token in self.eos_token_ids or i == k - 1:
                    break  # nothing useful follows an end of sequence
                if self.confidence_threshold > 0.0 or self.cumulative_confidence_threshold > 0.0:
                    q_token = (rows[-1] if rows else probabilities(logits, self.sampling))[token]
                    confidence = float(q_token)
                    if confidence < self.confidence_threshold:
                        break  # the draft is unsure: the next token is likely rejected
                    all_accepted *= confidence
                    if all_accepted < self.cumulative_confidence_threshold:
                        break  # the run so far is unlikely to be accepted whole
                feed = [token]
        self.last_timing = DraftTiming(
            read_tokens, read_end - start, len(tokens), self.clock() - read_end
        )
        return Proposal(tokens, None if greedy else torch.stack(rows))

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        """The next :meth:`propose` crops whatever was rejected; nothing to do here."""


def build_draft_proposer(
    draft_model_id: str,
    num_speculative_tokens: int,
    context: ProposerContext,
    *,
    allow_hub: bool = True,
    confidence_threshold: float = 0.0,
    cumulative_confidence_threshold: float = 0.0,
) -> DraftModelProposer:
    """Load the draft next to the target (same device and dtype) and check its vocabulary."""
    draft = load_draft_model(draft_model_id, context, allow_hub=allow_hub)
    return DraftModelProposer(
        draft.model,
        num_speculative_tokens,
        sampling_params(context),
        sorted(draft.eos_token_ids),
        confidence_threshold=confidence_threshold,
        cumulative_confidence_threshold=cumulative_confidence_threshold,
    )
