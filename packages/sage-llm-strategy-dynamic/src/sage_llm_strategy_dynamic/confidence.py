"""A model draft's acceptance predicted from the target's confidence, calibrated on its verdicts.

Engines that report the target's probability of each committed token
(:class:`~sage.llm.proposer.ConfidenceAwareProposer`) give, for free every step, what a draft
that is off cannot: where the target is sure, a draft tends to agree with it. This predicts a
drafted position's acceptance from the request's confidence so far, times a calibration
learned from the draft's own verdicts, and says whether switching the draft on pays for its
reading what it missed. Evidence for each value: docs/notes/dynamic-lookahead.md#confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from sage_llm_strategy_dynamic.acceptance import expected_tokens
from sage_llm_strategy_dynamic.costs import StepCosts

CONFIDENCE_MIN_TOKENS: Final = 4
"""A request's first 4 tokens are plain; after them its confidence decides a model draft's
steps (4 lost least of 2 / 4 / 8 / 16 on math, whose gain is thin and spread out)."""

CALIBRATION_PRIOR: Final = 20.0
"""The calibration (tokens got over tokens predicted) starts at 20 / 20, worth about three
drafting steps: a draft that disagrees where the target is sure is found out within a few."""

CALIBRATION_MEMORY: Final = 0.9
"""Each drafting step discounts what earlier ones taught the calibration by this (about ten):
it follows the kind of text."""

CALIBRATION_RECOVERY: Final = 0.9
"""Each new request moves the calibration 10% back to its prior, so a few bad requests cannot
keep a good draft off for good (it learns only while the draft runs)."""

CONFIDENCE_CAUTION: Final = 0.5
"""The prediction is the mean less half its standard error: a request's first few values say
little, and a scattered few say less than a steady run."""

CONFIDENCE_RECENCY: Final = 0.9
"""A second estimate weighs each value 0.9 times the next (about the last ten): an answer that
turns from prose to a code block is sure for dozens of tokens before its mean catches up."""

CONFIDENCE_CAP: Final = 0.99
"""Predicted acceptance never above this: at 1.0 every depth would look free."""

CONFIDENCE_MARGIN: Final = 0.0
"""The margin over a plain step when confidence decides: none, as the draft's reading of what
it missed, which a probe's margin stands for, is priced here from measured read times."""

LENGTH_MEMORY: Final = 32
"""How many recent requests' lengths say how long the current one will go on."""


class _Moments:
    """Mean and standard error of a stream of values (the target's confidences), each value
    weighing ``decay`` times the one after it (1: all alike)."""

    def __init__(self, decay: float = 1.0) -> None:
        self.decay = decay
        self.count = 0
        self.weight = 0.0  # sum of the weights
        self.weight_sq = 0.0  # sum of the squared weights (for the effective count)
        self.total = 0.0
        self.squares = 0.0

    def add(self, values: Sequence[float]) -> None:
        d = self.decay
        for v in values:
            self.count += 1
            self.weight = self.weight * d + 1.0
            self.weight_sq = self.weight_sq * d * d + 1.0
            self.total = self.total * d + v
            self.squares = self.squares * d + v * v

    @property
    def mean(self) -> float:
        return self.total / self.weight if self.weight else 0.0

    @property
    def stderr(self) -> float:
        """The spread over the square root of the effective count of values."""
        if self.weight == 0.0:
            return 0.0
        variance = max(0.0, self.squares / self.weight - self.mean**2)
        return math.sqrt(variance * self.weight_sq) / self.weight

    def lower(self, caution: float) -> float:
        """The mean less ``caution`` standard errors."""
        return self.mean - caution * self.stderr


class TargetConfidence:
    """The request's target confidence, the draft's calibration, and recent requests' lengths."""

    def __init__(self) -> None:
        self.request = _Moments()  # this request's reported values
        self.recent = _Moments(CONFIDENCE_RECENCY)  # ... recent ones weighing more
        self._calibration = [CALIBRATION_PRIOR, CALIBRATION_PRIOR]  # tokens got, predicted
        self._step: float | None = None  # the request's mean when the draft last ran
        self._lengths: list[int] = []  # tokens reported by recent requests

    def start_request(self) -> None:
        if self.request.count > 0:
            self._lengths = [*self._lengths, self.request.count][-LENGTH_MEMORY:]
        self.request = _Moments()
        self.recent = _Moments(CONFIDENCE_RECENCY)
        self._step = None
        self._calibration = [
            v * CALIBRATION_RECOVERY + CALIBRATION_PRIOR * (1.0 - CALIBRATION_RECOVERY)
            for v in self._calibration
        ]

    def observe(self, confidence: Sequence[float]) -> None:
        """The target's probability of each token it just committed, oldest first."""
        values = [float(c) for c in confidence if math.isfinite(c) and 0.0 <= c <= 1.0]
        self.request.add(values)
        self.recent.add(values)

    @property
    def heard(self) -> bool:
        """The engine reports the target's confidence in this request."""
        return self.request.count > 0

    @property
    def decides(self) -> bool:
        """Enough of this request was reported for the confidence to decide."""
        return self.request.count >= CONFIDENCE_MIN_TOKENS

    def drafted(self, k: int) -> None:
        """The controller chose ``k`` from this: the next verdict calibrates the prediction.
        (It compares the draft with the target's plain mean confidence, a property of the
        pair; the caution is about how little of this request was seen.)"""
        self._step = self.request.mean if k > 0 else None

    def observe_verdict(self, tested: int, accepted: int, first: int) -> None:
        """Positions ``first..tested-1`` were checked; ``accepted`` held."""
        seen, self._step = self._step, None
        if seen is not None and first == 0:
            got, expected = self._calibration
            self._calibration = [
                got * CALIBRATION_MEMORY + 1 + min(accepted, tested),
                expected * CALIBRATION_MEMORY + expected_tokens([seen] * tested, tested),
            ]

    def predicted_acceptance(self) -> float | None:
        """The acceptance of a drafted position expected from the request's confidence so
        far: the larger of the whole request's and the recent values' estimate, each less
        :data:`CONFIDENCE_CAUTION` standard errors; ``None`` until :attr:`decides`."""
        if not self.decides:
            return None
        estimate = max(
            self.request.lower(CONFIDENCE_CAUTION), self.recent.lower(CONFIDENCE_CAUTION)
        )
        return min(CONFIDENCE_CAP, max(0.0, estimate))

    @property
    def calibration(self) -> float:
        """Tokens the draft's steps committed over the tokens predicted for them, at most 1:
        it only ever lowers the prediction."""
        got, predicted = self._calibration
        return min(1.0, got / predicted)

    def expected_remaining(self, limit: int) -> float:
        """Tokens the current request is expected to go on for: the mean of what recent
        requests that got this far went on for, but never more than it has run so far (a
        request seen for ``t`` tokens is as likely to stop before ``2t`` as after), and at
        most ``limit``, what the engine allows. Neither the budget nor other requests' mean
        alone will do: a short answer to a long retrieved context cannot pay for reading it."""
        done = self.request.count
        longer = [n - done for n in self._lengths if n > done]
        seen = sum(longer) / len(longer) if longer else float(done)
        return min(float(limit), float(done), seen if self._lengths else float(limit))

    def choice(
        self, candidates: Sequence[int], catch_up: int, limit: int, costs: StepCosts
    ) -> int | None:
        """How deep a model draft goes this step: the ``k`` with the largest expected gain over
        a plain step at the predicted acceptance (times :attr:`calibration`), or 0 when none
        gains. Switching the draft on (``catch_up`` > 1: it first reads what it missed) must
        also pay for that read, over the steps the request is expected to go on for. ``None``
        when there is no prediction yet, or no read was timed yet (then probes decide)."""
        a = self.predicted_acceptance()
        if a is None:
            return None
        plain = costs.step_cost(0)
        margin = 1.0 + CONFIDENCE_MARGIN
        calibration = self.calibration
        gain, best = 0.0, 0
        for k in candidates:
            if k > 0:
                tokens = expected_tokens([a] * k, k) * calibration
                g = tokens * plain - costs.step_cost(k) * margin
                if g > gain:
                    gain, best = g, k
        if best == 0 or catch_up <= 1:
            return best
        read = costs.read_cost(catch_up)
        if read is None:
            return None
        extra = max(0.0, read - costs.draft_per_token)  # beyond drafting's first token
        steps = max(1.0, self.expected_remaining(limit) / expected_tokens([a] * best, best))
        return best if gain * steps >= extra else 0
