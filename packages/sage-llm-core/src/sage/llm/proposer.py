"""The per-step face of a strategy: a proposer driven by an engine that runs the loop itself.

vLLM runs its own draft/verify loop, so for vLLM a strategy only writes engine arguments
(:meth:`SpeculativeStrategy.apply`). The reference engine runs the loop in Python and asks the
strategy for a :class:`Proposer` instead (:meth:`SpeculativeStrategy.make_proposer`). Keeping the
two faces separate lets a plugin implement either or both; a plugin written before proposers
existed keeps working, it just cannot run on the reference engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable


@dataclass
class Proposal:
    """Up to ``k`` proposed tokens for the next verification step.

    ``draft_probs`` is the proposer's distribution ``q`` for each proposed position
    (a tensor ``[len(token_ids), vocab]``) when the proposer samples from a model; ``None`` means
    the proposal is deterministic (``q`` is a point mass on each token), as for n-gram lookup.
    An empty proposal makes the step plain decoding.
    """

    token_ids: list[int] = field(default_factory=list)
    draft_probs: Any | None = None

    def __len__(self) -> int:
        return len(self.token_ids)


class DraftTiming(NamedTuple):
    """How one ``propose()`` of a model-running proposer spent its time, set as its optional
    ``last_timing`` (the draft model's proposer does; dynamic-lookahead reads it from any
    proposer, and a replayed draft reports the same).

    The first forward pass reads every token the model missed since it last ran (at a
    request's start the whole prompt) and yields the first proposed token; each further token
    is one pass of one token. Only those later passes measure what a proposed token costs:
    the first one's time is mostly reading when the model has fallen behind."""

    read_tokens: int
    read_seconds: float
    drafted: int
    draft_seconds: float


@runtime_checkable
class Proposer(Protocol):
    """What the reference engine calls once per step.

    ``context_ids`` holds every committed token (prompt plus accepted output); it only grows
    within a request, so a proposer may index it incrementally. ``max_tokens`` is the most the
    engine will verify this step; an adaptive proposer may choose fewer, or none.
    """

    def start(self, prompt_ids: Sequence[int]) -> None:
        """A new request begins with ``prompt_ids``; drop per-request state."""
        ...

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        """Propose between 0 and ``max_tokens`` tokens that continue ``context_ids``."""
        ...

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        """The engine accepted ``num_accepted`` of the ``num_proposed`` tokens."""
        ...


@runtime_checkable
class SeededProposer(Proposer, Protocol):
    """A proposer that draws its tokens at random and can be seeded (optional capability).

    Kept apart from :class:`Proposer` so that deterministic proposers (n-gram lookup) need not
    define it. When a request is seeded, the reference engine calls :meth:`reseed` after
    :meth:`~Proposer.start`, so the whole run is reproducible. The proposer's draws must come
    from its own generator, independent of the verifier's, or speculative sampling would no
    longer keep the target's distribution (see docs/engine.md).
    """

    def reseed(self, seed: int) -> None:
        """Seed the proposer's own random generator for the request that just started."""
        ...


@runtime_checkable
class ConfidenceAwareProposer(Proposer, Protocol):
    """A proposer that hears how sure the target is of what it commits (optional capability).

    After the prefill and after every step (following :meth:`~Proposer.on_verified`) the
    reference engine calls :meth:`on_target_confidence` with the target's probability of each
    token it committed, in order: one value after the prefill, ``1 + num_accepted`` after a
    step. The probability is the softmax of the target's logits at that position (temperature
    1, before sampling's filters), so it means the same under greedy decoding and sampling.

    Why: while a costly proposer (a draft model) is switched off it learns nothing, and running
    it just to find out costs steps. The target's confidence comes with every plain step: a
    draft tends to agree with the target where the target is sure
    (docs/notes/dynamic-lookahead-tuning.md measures how well it predicts a 0.5B draft's
    acceptance). The engine computes it only for proposers that define this method: one softmax over
    the committed rows per step. vLLM does not hand the target's probabilities to a ``custom_class``
    proposer, so there it is never called.
    """

    def on_target_confidence(self, confidence: Sequence[float]) -> None:
        """The target's probability of each token committed since the previous call."""
        ...


@runtime_checkable
class EarlyStoppingProposer(Proposer, Protocol):
    """A proposer that drafts with a model and can end a draft early by the draft's own
    probabilities (optional capability; the draft model's proposer has it).

    A wrapper that chooses how deep to draft (a strategy's ``wrap_proposer``, dynamic-lookahead's
    controller) sets these between steps; 0 turns a stop off. Both stops cut a proposal short
    and never change a token in it, so they keep decoding lossless. A proposer without them is
    simply run without an early stop; a wrapper asked for a stop it cannot set says so.
    """

    confidence_threshold: float
    """End the draft after a token the draft gives less than this probability."""
    cumulative_confidence_threshold: float
    """End the draft once the product of its drafted tokens' probabilities (the draft's
    estimate that the whole draft is accepted) falls below this."""


@runtime_checkable
class FinishingProposer(Proposer, Protocol):
    """A proposer that hears how each request ended (optional capability).

    When a request ends (end of sequence, token budget or stop string) the reference engine
    calls :meth:`finish` with every token it generated, the last step's included, which
    :meth:`~Proposer.propose` never saw. Why: a proposer that learns across requests (suffix
    decoding caches earlier outputs for later requests) needs a request's whole output, and
    the next :meth:`~Proposer.start` comes late or never. Proposers without it are not called.
    """

    def finish(self, output_ids: Sequence[int]) -> None:
        """The request that began at the last ``start`` ended after generating ``output_ids``."""
        ...


@dataclass(frozen=True)
class ProposerContext:
    """What the engine tells a strategy when it asks for a proposer."""

    target: Any = None
    tokenizer: Any = None
    vocab_size: int = 0
    device: str = "cpu"
    dtype: Any = None
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
