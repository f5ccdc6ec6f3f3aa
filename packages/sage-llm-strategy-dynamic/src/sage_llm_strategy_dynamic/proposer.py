"""The dynamic-lookahead proposer: any proposer, with ``k`` chosen every step by the controller.

:class:`DynamicProposer` wraps an inner proposer (n-gram lookup by default, the draft model
with ``draft_model_id``, or anyone's :class:`~sage.llm.proposer.Proposer`) and asks
:class:`~sage_llm_strategy_dynamic.controller.LookaheadController` how deep to go.

What it learns from, all without changing the engine:

* verdicts: ``on_verified(num_proposed, num_accepted)``;
* committed tokens: a proposal's positions the target did not judge (beyond the chosen ``k``,
  or every position while speculation is off) are compared with the tokens the target commits
  afterwards. Under greedy decoding that is exactly the verdict the target would have given;
  with sampling and a deterministic proposal it has the same probability (``p(x)``). Only a
  *cheap* inner proposer (``cheap=True``, n-gram lookup) is asked for more than ``k`` tokens or
  while off; a model draft is asked for ``k`` only, and probes when off;
* step times: the engine calls ``propose`` then, after the verify pass, ``on_verified``; the
  time in between is the cost of a pass of ``1 + k`` tokens, the time inside ``propose`` is the
  draft's cost, the time from ``on_verified`` to the next ``propose`` the loop's own overhead.
  A costly proposer that reports how it spent a call (``last_timing``, a
  ``sage.llm.proposing.DraftTiming``: a first pass that reads what it missed, then one pass
  per further token, as the draft model's proposer reports)
  gives the cost per drafted token on every call, not only after a drafting step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sage_llm_strategy_dynamic._deps import (
    EarlyStoppingProposer,
    NgramProposer,
    Proposal,
    build_draft,
)
from sage_llm_strategy_dynamic.controller import MODEL_DRAFT_MARGIN, LookaheadController

if TYPE_CHECKING:
    from sage.llm.proposer import Proposer, ProposerContext
    from sage_llm_strategy_dynamic.strategy import DynamicLookaheadStrategy

_EMPTY: Final = Proposal([])

SPLIT_STATES: Final = True
"""For a cheap proposer, keep separate acceptance estimates for a proposal made while the
previous one matched everything checked so far (a copy in progress) and for a fresh one. On the
replay of recorded traces (docs/notes/dynamic-lookahead-tuning.md) this gained 0.8% overall with the
cost table measured on a loaded machine (rag 0.95x -> 0.98x of plain) and lost 0.4% with a quiet
machine's table; kept for the categories where speculation rarely pays."""


@dataclass
class _Pending:
    """A proposal whose later positions are still to be checked against committed tokens."""

    start: int  # len(context) when proposed: token i was a guess for context[start + i]
    tokens: list[int]
    next: int  # first position not yet checked
    state: bool = False  # the controller's state when it was proposed
    missed: bool = False  # a position was rejected or did not match


class DynamicProposer:
    """Propose ``k`` tokens per step, ``k`` chosen by a :class:`LookaheadController`."""

    def __init__(
        self,
        inner: Proposer | Any,
        controller: LookaheadController,
        *,
        cheap: bool = False,
        confidence_threshold: float = 0.0,
        cumulative_confidence_threshold: float | None = None,
        listens: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.inner = inner
        self.controller = controller
        self.cheap = cheap
        self.listens = listens and not cheap
        if not cheap:
            controller.margin = max(controller.margin, MODEL_DRAFT_MARGIN)
        stopping = inner if isinstance(inner, EarlyStoppingProposer) else None
        if confidence_threshold > 0.0:
            # The draft model's early stop lives in its proposer (DraftModelProposer); a
            # proposer without one cannot honour the threshold, which must not pass silently.
            if stopping is None:
                raise ValueError(
                    f"confidence_threshold needs a proposer with a confidence stop (the draft "
                    f"model's, an EarlyStoppingProposer); {type(inner).__name__} has none."
                )
            stopping.confidence_threshold = confidence_threshold
        stops = not cheap and stopping is not None
        if cumulative_confidence_threshold is not None:
            if cumulative_confidence_threshold > 0.0 and not stops:
                raise ValueError(
                    "cumulative_confidence_threshold needs a costly proposer with a cumulative "
                    f"confidence stop (the draft model's, an EarlyStoppingProposer); "
                    f"{type(inner).__name__} has none."
                )
            if stops and stopping is not None:
                stopping.cumulative_confidence_threshold = cumulative_confidence_threshold
        self._break_even_stop: Any = (
            stopping if stops and cumulative_confidence_threshold is None else None
        )
        """The inner proposer whose cumulative stop is set every step to the measured
        break-even of one more drafted token (:meth:`StepCosts.draft_break_even
        <sage_llm_strategy_dynamic.controller.StepCosts.draft_break_even>`); ``None``: its
        stop is left as given."""
        controller.draft_stops = stops and (
            cumulative_confidence_threshold is None or cumulative_confidence_threshold > 0.0
        )
        self.clock = clock
        self._pending: list[_Pending] = []
        self._proposed_at: float | None = None  # when propose() returned
        self._verified_at: float | None = None  # when on_verified() returned
        self._last: _Pending | None = None
        self._recent: _Pending | None = None  # the latest proposal, resolved or not
        self.chosen: list[int] = []  # k per step of the current request (for reports/tests)
        self._probe_draft_s: float | None = None  # a model draft's probe: its drafting time
        self._probe_catch_up = 0  # ... and the tokens its draft had to read first
        self._draft_seen = 0  # len(context) when a model draft last ran in this request

    # -- outside control --------------------------------------------------------------------

    def set_max_tokens_cap(self, cap: int | None) -> None:
        """Propose at most ``cap`` tokens per step from now on (``None`` lifts the cap)."""
        self.controller.set_cap(cap)

    def pause(self) -> None:
        """The engine ran a step without asking for a proposal (vLLM's load gate): the step
        times measured from this proposer's last call no longer describe one step."""
        self._proposed_at = self._verified_at = None
        self._probe_draft_s = None

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Measure step times with ``clock`` (a replay passes its simulated clock, which an
        inner proposer that takes one, a replayed draft model, advances by its own time)."""
        self.clock = clock
        set_inner = getattr(self.inner, "set_clock", None)
        if callable(set_inner):
            set_inner(clock)

    def set_cost_profile(self, seconds_by_pass: Sequence[float]) -> None:
        """Seconds of a verify pass of ``1, 2, ...`` tokens, measured elsewhere (a trace)."""
        self.controller.costs.set_profile(seconds_by_pass)

    # -- the Proposer contract --------------------------------------------------------------

    def reseed(self, seed: int) -> None:
        reseed = getattr(self.inner, "reseed", None)
        if callable(reseed):
            reseed(seed)

    def start(self, prompt_ids: Sequence[int]) -> None:
        self.inner.start(prompt_ids)
        self.controller.start_request()
        self._pending = []
        self._proposed_at = self._verified_at = None
        self._last = None
        self._recent = None
        self.chosen = []
        self._draft_seen = 0

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        now = self.clock()
        verified_at, self._verified_at = self._verified_at, None
        self._learn_from_commits(context_ids)
        controller = self.controller
        if self.cheap:
            recent = self._recent
            controller.state = (
                SPLIT_STATES and recent is not None and not recent.missed and recent.next > 0
            )
            proposal = self.inner.propose(context_ids, controller.max_tokens)
            limit = min(max_tokens, len(proposal))
            k = controller.choose(limit, learns_when_off=True) if limit > 0 else 0
            if proposal.token_ids:
                item = _Pending(len(context_ids), list(proposal.token_ids), k, controller.state)
                self._pending.append(item)
                self._recent = item
        else:
            catch_up = 0 if self._drafted_last_step() else len(context_ids) - self._draft_seen
            k = controller.choose(max_tokens, catch_up=catch_up)
            proposal = _EMPTY
            self._probe_draft_s = None
            if k > 0:
                proposal = self._draft(context_ids, k)
                self._draft_seen = len(context_ids)
                drafting = self.clock() - now
                timing = getattr(self.inner, "last_timing", None)
                if timing is not None:  # the passes after the first: drafting alone
                    controller.costs.observe_read(timing.read_tokens, timing.read_seconds)
                    if timing.drafted > 1:
                        controller.costs.observe_draft(timing.drafted - 1, timing.draft_seconds)
                elif self._drafted_last_step():
                    controller.costs.observe_draft(len(proposal), drafting)
                if controller.probing:
                    self._probe_draft_s, self._probe_catch_up = drafting, catch_up
        self.chosen.append(k)
        tokens = list(proposal.token_ids[:k])
        probs = proposal.draft_probs
        if probs is not None and len(tokens) < len(proposal.token_ids):
            probs = probs[: len(tokens)]
        self._last = self._pending[-1] if self.cheap and proposal.token_ids else None
        self._proposed_at = self.clock()
        if verified_at is not None:  # the loop's time, plus the lookup for a cheap proposer
            self.controller.costs.observe_overhead(
                (self._proposed_at if self.cheap else now) - verified_at
            )
        return Proposal(tokens, probs if tokens else None)

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        now = self.clock()
        if self._proposed_at is not None:
            self.controller.costs.observe_pass(1 + num_proposed, now - self._proposed_at)
            if self._probe_draft_s is not None:  # what this probe cost, catching up included
                self.controller.observe_probe(
                    self._probe_draft_s + now - self._proposed_at,
                    num_proposed,
                    num_accepted,
                    self._probe_catch_up,
                )
                self._probe_draft_s = None
            self.controller.observe(num_proposed, num_accepted)
            last = self._last
            if last is not None:
                if num_accepted < num_proposed:  # a rejection: later positions mean nothing
                    self._pending.remove(last)
                    last.missed = True
                else:
                    last.next = num_proposed
        self.inner.on_verified(num_proposed, num_accepted)
        self._proposed_at = None
        self._last = None
        self._verified_at = self.clock()

    def finish(self, output_ids: Sequence[int]) -> None:
        """Hand the request's end on to an inner proposer that hears it (a
        :class:`~sage.llm.proposer.FinishingProposer`, such as suffix decoding's cache)."""
        finish = getattr(self.inner, "finish", None)
        if callable(finish):
            finish(output_ids)

    # -- helpers ----------------------------------------------------------------------------

    def _drafted_last_step(self) -> bool:
        """The draft ran at the previous step, so it has (nearly) everything committed cached
        and this step's drafting time is drafting alone. After plain steps, or at a request's
        start, the draft first reads every token it missed (the whole prompt at the start):
        that time belongs to switching speculation on (a probe's measured loss), not to the
        cost per drafted token. Counting it there made one catching-up probe of 0.9 s per
        token stand for a draft that costs 0.13 s per token, so speculation never looked
        worth it again, even where fixed k=5 ran 1.12x of plain
        (docs/notes/dynamic-lookahead-tuning.md)."""
        return bool(self.chosen) and self.chosen[-1] > 0

    def _draft(self, context_ids: Sequence[int], k: int) -> Proposal:
        if self._break_even_stop is not None:
            threshold = self.controller.costs.draft_break_even()
            self._break_even_stop.cumulative_confidence_threshold = threshold
        proposal = self.inner.propose(context_ids, k)
        if not isinstance(proposal, Proposal):
            raise TypeError(
                f"{type(self.inner).__name__}.propose returned {type(proposal).__name__}, "
                "not a sage.llm.proposer.Proposal."
            )
        return proposal

    def _learn_from_commits(self, context: Sequence[int]) -> None:
        """Check pending positions against the tokens committed since they were proposed."""
        still: list[_Pending] = []
        for item in self._pending:
            first = item.next
            pos = first
            miss = False
            while pos < len(item.tokens) and item.start + pos < len(context):
                if item.tokens[pos] != context[item.start + pos]:
                    miss = True
                    break
                pos += 1
            checked = pos + 1 if miss else pos
            if checked > first:
                self.controller.observe(checked, pos, first, item.state)
            item.next = checked
            item.missed = miss
            if not miss and item.next < len(item.tokens):
                still.append(item)
        self._pending = still


class ListeningDynamicProposer(DynamicProposer):
    """A :class:`DynamicProposer` that hears the target's confidence from the engine (a
    :class:`~sage.llm.proposer.ConfidenceAwareProposer`): its controller switches a costly
    proposer on and off by it, and an inner proposer that listens hears it too. A separate
    class so that the engine computes the probabilities only for a proposer that uses them
    (an n-gram lookup learns from the committed tokens instead)."""

    def on_target_confidence(self, confidence: Sequence[float]) -> None:
        if self.listens:
            self.controller.observe_confidence(confidence)
        hear = getattr(self.inner, "on_target_confidence", None)
        if callable(hear):
            hear(confidence)


def _dynamic(
    inner: Proposer | Any,
    controller: LookaheadController,
    *,
    cheap: bool,
    confidence_threshold: float = 0.0,
    cumulative_confidence_threshold: float | None = None,
    listens: bool = True,
) -> DynamicProposer:
    """The controller around ``inner``, listening to the target's confidence where that is
    used: by the controller of a costly proposer, or by the inner proposer itself."""
    uses = (listens and not cheap) or callable(getattr(inner, "on_target_confidence", None))
    kind = ListeningDynamicProposer if uses else DynamicProposer
    return kind(
        inner,
        controller,
        cheap=cheap,
        confidence_threshold=confidence_threshold,
        cumulative_confidence_threshold=cumulative_confidence_threshold,
        listens=listens,
    )


def build_proposer(strategy: DynamicLookaheadStrategy, context: ProposerContext) -> DynamicProposer:
    """The strategy's proposer: n-gram lookup, or the draft model, under the controller."""
    controller = LookaheadController(strategy.min_tokens, strategy.max_tokens)
    if strategy.draft_model_id is not None:
        draft = build_draft(
            strategy.draft_model_id,
            strategy.max_tokens,
            context,
            confidence_threshold=strategy.confidence_threshold,
        )
        return _dynamic(
            draft,
            controller,
            cheap=False,
            cumulative_confidence_threshold=strategy.cumulative_confidence_threshold,
            listens=strategy.target_confidence,
        )
    ngram = NgramProposer(
        num_speculative_tokens=strategy.max_tokens,
        max_n=strategy.prompt_lookup_max,
        min_n=strategy.lookup_min,
    )
    return DynamicProposer(ngram, controller, cheap=True)


def wrap(
    inner: Proposer,
    min_tokens: int,
    max_tokens: int,
    *,
    cheap: bool = False,
    confidence_threshold: float = 0.0,
    cumulative_confidence_threshold: float | None = None,
    listens: bool = True,
) -> DynamicProposer:
    """Put a third party's proposer under the controller.

    ``cheap=True`` only for a proposer whose cost does not grow with the tokens asked for (a
    lookup): it is then asked for ``max_tokens`` every step, also while speculation is off.
    ``confidence_threshold``: handed to the proposer's own early stop (see DynamicProposer).
    ``cumulative_confidence_threshold``: the same for a cumulative stop (an
    :class:`~sage.llm.proposing.EarlyStoppingProposer`, as the draft model's); ``None`` sets it
    every step to the measured break-even of one more drafted token, 0 turns it off.
    ``listens``: a costly proposer's controller is switched on and off by the target's
    confidence when the engine reports it (see :class:`~sage.llm.proposer.ConfidenceAwareProposer`).
    """
    return _dynamic(
        inner,
        LookaheadController(min_tokens, max_tokens),
        cheap=cheap,
        confidence_threshold=confidence_threshold,
        cumulative_confidence_threshold=cumulative_confidence_threshold,
        listens=listens,
    )
