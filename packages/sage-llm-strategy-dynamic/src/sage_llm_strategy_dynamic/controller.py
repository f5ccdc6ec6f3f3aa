"""How many tokens to propose next: the expected-gain controller of dynamic-lookahead.

Pure Python (no torch), so it is cheap to test on synthetic acceptance sequences and to replay
on recorded traces. Each step it picks the ``k`` that maximises expected committed tokens per
second, ``k* = argmax E(k) / C(k)`` over ``{0 if min_tokens == 0} U [max(1, min_tokens), cap]``,
from four parts, each in its own module:

* :mod:`~sage_llm_strategy_dynamic.acceptance`: per-position acceptance ``a_j`` and ``E(k)``;
* :mod:`~sage_llm_strategy_dynamic.costs`: ``C(k)``, the step's measured cost in seconds;
* :mod:`~sage_llm_strategy_dynamic.probes`: when a costly proposer that is off may run to
  find out whether it pays again, and what switching it on may cost;
* :mod:`~sage_llm_strategy_dynamic.confidence`: a model draft switched on and off by the
  target's confidence, where the engine reports it.

How the constants were chosen, with the replays behind each: docs/notes/dynamic-lookahead.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sage_llm_strategy_dynamic.acceptance import (
    CARRY_OVER_COPY,
    CARRY_OVER_FRESH,
    MEMORY,
    PRIOR_ACCEPTANCE,
    PRIOR_WEIGHT,
    STALE_MEMORY,
    AcceptanceEstimates,
    CarryOver,
    expected_tokens,
)
from sage_llm_strategy_dynamic.batch_schedule import BATCH_BAND_GROWTH, batch_size_schedule
from sage_llm_strategy_dynamic.confidence import (
    CALIBRATION_MEMORY,
    CALIBRATION_PRIOR,
    CALIBRATION_RECOVERY,
    CONFIDENCE_CAP,
    CONFIDENCE_CAUTION,
    CONFIDENCE_MARGIN,
    CONFIDENCE_MIN_TOKENS,
    CONFIDENCE_RECENCY,
    LENGTH_MEMORY,
    TargetConfidence,
)
from sage_llm_strategy_dynamic.costs import COST_SMOOTHING, OUTLIER_FACTOR, StepCosts
from sage_llm_strategy_dynamic.probes import (
    LOSS_MEMORY,
    PROBE_BUDGET,
    PROBE_CREDIT_LIMIT,
    PROBE_FIRST,
    PROBE_LAST,
    ProbeBudget,
    probe_depth,
)

__all__ = [  # the controller, and the names this module has always offered
    "BATCH_BAND_GROWTH",
    "CALIBRATION_MEMORY",
    "CALIBRATION_PRIOR",
    "CALIBRATION_RECOVERY",
    "CARRY_OVER_COPY",
    "CARRY_OVER_FRESH",
    "CONFIDENCE_CAP",
    "CONFIDENCE_CAUTION",
    "CONFIDENCE_MARGIN",
    "CONFIDENCE_MIN_TOKENS",
    "CONFIDENCE_RECENCY",
    "COST_SMOOTHING",
    "HYSTERESIS",
    "LENGTH_MEMORY",
    "LOSS_MEMORY",
    "MEMORY",
    "MODEL_DRAFT_MARGIN",
    "OUTLIER_FACTOR",
    "PRIOR_ACCEPTANCE",
    "PRIOR_WEIGHT",
    "PROBE_BUDGET",
    "PROBE_CREDIT_LIMIT",
    "PROBE_FIRST",
    "PROBE_LAST",
    "STALE_MEMORY",
    "AcceptanceEstimates",
    "LookaheadController",
    "StepCosts",
    "batch_size_schedule",
    "expected_tokens",
]

HYSTERESIS: Final = 0.02
"""Keep the previous ``k`` unless another is expected to be 2% faster: estimates move a little
every step, and flapping between near-equal depths only adds noise."""

MODEL_DRAFT_MARGIN: Final = 0.05
"""A model draft speculates only when expected 5% faster than plain decoding: switching it on
costs more than its steps show (it reads what it missed; two models share the cores). A lookup
proposer, whose mistakes cost only extra verify positions, keeps a margin of 0."""


class LookaheadController:
    """Chooses ``k`` per step in ``[min_tokens, max_tokens]`` (0 allowed when min_tokens is 0).

    Feed it what happened: :meth:`observe` (positions checked and accepted), and step times
    (:attr:`costs`). ``cap`` lowers the deepest ``k`` from outside (a control plane under load)
    without touching what was learned.
    """

    def __init__(
        self,
        min_tokens: int,
        max_tokens: int,
        *,
        profile: Sequence[float] | None = None,
    ) -> None:
        if isinstance(min_tokens, bool) or isinstance(max_tokens, bool):
            raise ValueError("min_tokens and max_tokens must be integers")
        if not 0 <= min_tokens <= max_tokens or max_tokens < 1:
            raise ValueError(
                "LookaheadController needs 0 <= min_tokens <= max_tokens and max_tokens >= 1, "
                f"got min_tokens={min_tokens}, max_tokens={max_tokens}."
            )
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self.states = {
            False: AcceptanceEstimates(max_tokens),
            True: AcceptanceEstimates(max_tokens),
        }
        self.state = False
        """Which estimates apply to this step: ``True`` while the proposer continues a proposal
        that has matched so far (a copy in progress), ``False`` for a fresh one. Set by the
        proposer before :meth:`choose`; a copy in progress is far likelier to go on."""
        self.costs = StepCosts(max_tokens + 1, profile)
        self.probes = ProbeBudget()
        self.confidence = TargetConfidence()
        self.margin = 0.0
        """Speculate only when expected to be this much faster than plain decoding (a model
        draft sets :data:`MODEL_DRAFT_MARGIN`; a cheap lookup needs none)."""
        self.draft_stops = False
        """The proposer ends each draft by itself where one more token stops paying (a model
        draft whose cumulative confidence stop is set from
        :meth:`StepCosts.draft_break_even`): then, when the target's confidence switches the
        draft on, it drafts up to the deepest allowed ``k`` and the stop decides the depth
        from the draft's own probabilities, which know more about this step than any
        estimate made before it."""
        self._carry_over = CarryOver()
        self._cap = max_tokens
        self._last = max_tokens
        self._plain_first = True

    @property
    def acceptance(self) -> AcceptanceEstimates:
        """The estimates of the current :attr:`state`."""
        return self.states[self.state]

    # -- control from outside ---------------------------------------------------------------

    @property
    def cap(self) -> int:
        return self._cap

    def set_cap(self, cap: int | None) -> None:
        """Never propose more than ``cap`` tokens (``None``: back to ``max_tokens``).

        A cap below ``min_tokens`` wins over it: the control plane asked for less work.
        """
        if cap is None:
            self._cap = self.max_tokens
            return
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"cap must be an integer >= 0 or None, got {cap!r}")
        self._cap = min(cap, self.max_tokens)

    # -- what happened ------------------------------------------------------------------------

    def start_request(self) -> None:
        """A new request: start from what its predecessors taught (see ``CARRY_OVER_*``).
        The probe schedule and credit carry over whole (see :mod:`.probes`)."""
        self._carry_over.start_request(self.states)
        self.state = False
        self._last = self.max_tokens
        self.confidence.start_request()

    def observe(
        self, tested: int, accepted: int, first: int = 0, state: bool | None = None
    ) -> None:
        """Positions ``first..tested-1`` were checked against the target; ``accepted`` held.

        ``state``: the :attr:`state` the proposal was made in (default: the current one).
        """
        if tested <= first:
            return
        self.states[self.state if state is None else state].observe(tested, accepted, first)
        self.confidence.observe_verdict(tested, accepted, first)
        if first == 0:  # the step's own verdict, not a later shadow check
            self.probes.observe_verdict(accepted)
            self._carry_over.observe(accepted)

    def observe_confidence(self, confidence: Sequence[float]) -> None:
        """The target's probability of each token it just committed (the engine's report,
        :class:`~sage.llm.proposer.ConfidenceAwareProposer`), oldest first. Once a request
        has reported :data:`CONFIDENCE_MIN_TOKENS` values, it decides a model draft's steps
        instead of probes."""
        self.confidence.observe(confidence)

    def observe_probe(self, seconds: float, k: int, accepted: int, catch_up: int = 0) -> None:
        """A probe of ``k`` tokens took ``seconds`` in all and got ``accepted`` accepted,
        its draft first reading ``catch_up`` missed tokens (:meth:`ProbeBudget.observe_probe`)."""
        self.probes.observe_probe(seconds, k, accepted, catch_up, self.costs.step_cost(0))

    # -- what was learned ---------------------------------------------------------------------

    @property
    def probing(self) -> bool:
        """The last :meth:`choose` was a probe or a switch-on (its verdict is still to come)."""
        return self.probes.probing

    @property
    def probe_loss(self) -> float | None:
        """Running mean of the seconds a probe lost against plain decoding."""
        return self.probes.loss

    def expected_probe_loss(self, catch_up: int) -> float | None:
        return self.probes.expected_loss(catch_up)

    def probe_depth(self, candidates: Sequence[int]) -> int | None:
        return probe_depth(candidates, self.costs, self.margin)

    @property
    def hears_confidence(self) -> bool:
        """The engine reports the target's confidence in this request."""
        return self.confidence.heard

    def predicted_acceptance(self) -> float | None:
        return self.confidence.predicted_acceptance()

    @property
    def calibration(self) -> float:
        return self.confidence.calibration

    def expected_remaining(self, limit: int) -> float:
        return self.confidence.expected_remaining(limit)

    # -- the decision -----------------------------------------------------------------------

    def candidates(self, limit: int) -> list[int]:
        """The depths allowed this step, ``limit`` being what the engine or proposal allows."""
        top = min(self._cap, limit, self.max_tokens)
        if top <= 0:
            return [0]
        low = max(1, min(self.min_tokens, top))
        ks = list(range(low, top + 1))
        if self.min_tokens == 0 or self._cap < low:
            ks.insert(0, 0)
        return ks

    def scores(self, limit: int) -> dict[int, float]:
        """Expected tokens per second (per cost unit) for each allowed ``k``."""
        acceptance = self.acceptance.estimates()
        return {
            k: expected_tokens(acceptance, k) / self.costs.step_cost(k)
            for k in self.candidates(limit)
        }

    def choose(self, limit: int, *, learns_when_off: bool = False, catch_up: int = 0) -> int:
        """The ``k`` for this step. ``learns_when_off``: the caller keeps observing proposals
        while speculation is off (from committed tokens), so no probe is needed. ``catch_up``:
        the tokens a costly proposer must read before it can propose (it did not run at the
        previous step); switching it on is then priced like a probe."""
        scores = self.scores(limit)
        may_stop = 0 in scores and not learns_when_off  # a costly proposer that may go plain
        if may_stop and self._plain_first:
            self._plain_first = False
            if self.costs.mean[1] is None and self.costs.profile is None:
                self._last = 0  # time one plain step first: every choice is weighed against it
                return 0
        best = max(scores, key=lambda k: (scores[k], -k))
        if may_stop and len(scores) > 1 and self.hears_confidence:
            by_confidence = self.by_confidence(scores, best, catch_up, limit)
            if by_confidence is not None:
                return by_confidence
        if self._last in scores and scores[self._last] * (1.0 + HYSTERESIS) >= scores[best]:
            best = self._last
        if best > 0 and 0 in scores and scores[best] < scores[0] * (1.0 + self.margin):
            best = 0  # not clearly worth it for a proposer whose costs are hard to predict
        if not may_stop or len(scores) == 1:
            self._last = best
            return best
        if best == 0 or catch_up > 0:  # a plain step, or a switch-on: the probe budget counts
            paid_for = self.probes.plain_step(self.costs.step_cost(0), catch_up)
            if best > 0 and paid_for:
                self.probes.probing = True  # a switch-on's loss is measured as a probe's
            elif best > 0:
                best = 0  # switched on as soon as its read is paid for
            elif paid_for and self.probes.interval_over:
                depth = self.probe_depth([k for k in scores if k > 0])
                if depth is not None:
                    self.probes.start()
                    return depth  # a probe does not become the new "last" choice
        if best > 0:
            self.probes.speculating()
        self._last = best
        return best

    def by_confidence(
        self, scores: dict[int, float], best: int, catch_up: int, limit: int
    ) -> int | None:
        """A model draft's step when the engine reports the target's confidence: plain for
        the request's first tokens, then :meth:`TargetConfidence.choice`; while the draft
        runs, at least as deep as the verdicts' own estimates (``best``) prefer. No probes:
        they are what this signal replaces. ``None``: fall back to probes (no read timed)."""
        k = 0
        if self.confidence.decides:
            depths = [k for k in scores if k > 0]
            chosen = self.confidence.choice(depths, catch_up, limit, self.costs)
            if chosen is None:
                return None
            if chosen > 0 and self.draft_stops:
                k = max(depths)  # the draft's own stop decides how deep (see draft_stops)
            else:
                k = max(chosen, best) if chosen > 0 and catch_up == 0 else chosen
        if k > 0 and catch_up > 0:
            self.probes.probing = True  # a switch-on: its loss is measured as a probe's
        self._last = k
        self.confidence.drafted(k)
        return k
