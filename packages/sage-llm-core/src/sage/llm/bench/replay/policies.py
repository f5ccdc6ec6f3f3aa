"""The policies a strategy is compared with, each over the same inner proposer.

``fixed-k``; ``hf-heuristic`` (transformers' assisted-generation schedule: +2 after a fully
accepted step, -1 otherwise, starting at 5 as transformers' prompt lookup does); ``ema-tiers``
(in the style of SGLang's adaptive speculation: a running mean of the acceptance rate picks one
of a few depths); ``ucb`` (UCB1 over ``k`` with tokens per second as the reward, knowing the
cost table); ``oracle`` (proposes exactly the tokens that will be accepted, none when none
will: the upper bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sage.llm.bench.replay.simulator import SimClock
from sage.llm.bench.traces import CostTable, Trace, common_prefix
from sage.llm.proposer import Proposal, Proposer

HF_HEURISTIC_START = 5
"""transformers starts prompt lookup at ``prompt_lookup_num_tokens`` (its docs use 5-10)."""

EMA_WEIGHT = 0.3
EMA_TIERS = ((0.8, 1.0), (0.5, 0.5), (0.2, 0.25))
"""``ema-tiers``: acceptance-rate thresholds and the fraction of ``max_k`` they allow; below
the last threshold one token (or none when the policy may switch off)."""

HF_ASSISTED_TOKENS = 20
HF_ASSISTED_CONFIDENCE = 0.4
"""transformers' assisted generation left at its defaults (``num_assistant_tokens=20``,
constant schedule, ``assistant_confidence_threshold=0.4``): the ``hf-assisted:default`` column
of a draft-model replay. Passes larger than the measured table cost what its largest does."""

UCB_EXPLORATION = 0.5
"""UCB1's exploration weight on rewards normalised to a plain step's speed (1.0)."""


class Fixed:
    """Always ask the inner proposer for ``k``."""

    def __init__(self, inner: Proposer, k: int) -> None:
        self.inner, self.k = inner, k

    def start(self, prompt_ids: Sequence[int]) -> None:
        self.inner.start(prompt_ids)

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        if self.k == 0:
            return Proposal([])
        return self.inner.propose(context_ids, min(self.k, max_tokens))

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        self.inner.on_verified(num_proposed, num_accepted)

    def set_clock(self, clock: SimClock) -> None:
        """Pass the replay's clock on (a traced draft charges its time to it)."""
        set_inner = getattr(self.inner, "set_clock", None)
        if callable(set_inner):
            set_inner(clock)


class HfHeuristic(Fixed):
    """transformers' ``num_assistant_tokens_schedule="heuristic"``: +2 if all kept, else -1."""

    def __init__(self, inner: Proposer, max_k: int) -> None:
        super().__init__(inner, min(HF_HEURISTIC_START, max_k))
        self.max_k = max_k

    def start(self, prompt_ids: Sequence[int]) -> None:
        super().start(prompt_ids)
        self.k = min(HF_HEURISTIC_START, self.max_k)

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        super().on_verified(num_proposed, num_accepted)
        if num_proposed == 0:
            return
        if num_accepted == num_proposed:
            self.k = min(self.max_k, self.k + 2)
        else:
            self.k = max(1, self.k - 1)


class EmaTiers(Fixed):
    """A running mean of the acceptance rate chooses a tier of depths."""

    def __init__(self, inner: Proposer, max_k: int, *, allow_off: bool) -> None:
        super().__init__(inner, max_k)
        self.max_k, self.allow_off, self.rate = max_k, allow_off, 0.5

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        super().on_verified(num_proposed, num_accepted)
        if num_proposed:
            self.rate += EMA_WEIGHT * (num_accepted / num_proposed - self.rate)
        self.k = 0 if self.allow_off else 1
        for threshold, share in EMA_TIERS:
            if self.rate >= threshold:
                self.k = max(1, round(share * self.max_k))
                break
        if self.k == 0:
            self.rate += EMA_WEIGHT * (0.5 - self.rate)  # drift back so it tries again


class Ucb(Fixed):
    """UCB1 over ``k``; reward: tokens per second of the step over a plain step's speed."""

    def __init__(self, inner: Proposer, ks: Sequence[int], costs: CostTable) -> None:
        super().__init__(inner, ks[-1])
        self.ks, self.costs = list(ks), costs
        self.count = dict.fromkeys(self.ks, 0)
        self.total = dict.fromkeys(self.ks, 0.0)
        self.plays = 0

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        untried = [k for k in self.ks if self.count[k] == 0]
        if untried:
            self.k = untried[0]
        else:
            bonus = UCB_EXPLORATION * math.sqrt(2 * math.log(self.plays))
            self.k = max(
                self.ks,
                key=lambda k: self.total[k] / self.count[k] + bonus / math.sqrt(self.count[k]),
            )
        return super().propose(context_ids, max_tokens)

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        super().on_verified(num_proposed, num_accepted)
        speed = (num_accepted + 1) / self.costs.step(1 + num_proposed)
        self.count[self.k] += 1
        self.total[self.k] += speed * self.costs.step(1)
        self.plays += 1


class Oracle(Fixed):
    """Proposes exactly the prefix that will be accepted (needs the future: ``set_trace``).

    Over a traced draft model it also drafts only those tokens (the draft's time for them is
    still paid): the bound on what choosing ``k`` can gain."""

    def __init__(self, inner: Proposer, max_k: int) -> None:
        super().__init__(inner, max_k)
        self.truth: list[int] = []
        self.prompt_len = 0

    def set_trace(self, trace: Trace) -> None:
        self.truth = trace.output_ids
        self.prompt_len = len(trace.prompt_ids)

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        done = len(context_ids) - self.prompt_len
        peek = getattr(self.inner, "peek", None)
        if callable(peek):  # a costly proposer: ask it for the accepted tokens only
            ahead = peek(context_ids, min(self.k, max_tokens)).token_ids
            n = common_prefix(ahead, self.truth[done:])
            return self.inner.propose(context_ids, n) if n else Proposal([])
        proposal = super().propose(context_ids, max_tokens)
        n = common_prefix(proposal.token_ids, self.truth[done:])
        return Proposal(list(proposal.token_ids[:n]))
