"""When a costly proposer that is off may run once to see whether speculating pays again.

A model draft that is off learns nothing from verdicts; a probe (one drafting step) finds out,
at a price: the draft first reads every token it missed. Probes, and switching the draft on,
are paid from a credit that plain steps earn, and come on a growing schedule. Evidence for
each value: docs/notes/dynamic-lookahead.md#probes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from sage_llm_strategy_dynamic.acceptance import expected_tokens
from sage_llm_strategy_dynamic.costs import COST_SMOOTHING, StepCosts
from sage_llm_strategy_dynamic.lines import DiscountedLine

PROBE_BUDGET: Final = 0.02
"""Probes may lose at most 2% of the time spent decoding plainly: room within the 3% a
category may lose to the better of plain decoding and the best fixed k."""

PROBE_CREDIT_LIMIT: Final = 2.0
"""The credit never exceeds what two probes lose: a long plain stretch must not pay for a
burst of probes, and a pricier probe than usual must still come within reach."""

LOSS_MEMORY: Final = 0.8
"""Each probe discounts what earlier probes taught about probe losses by this (about five)."""

PROBE_FIRST: Final = 4
"""With speculation off, the first probe comes after 4 plain steps (and again after a probe
that was promising); the interval then doubles."""

PROBE_LAST: Final = 64
"""... up to once every 64 steps: a bounded price for noticing that proposals became good."""


class ProbeBudget:
    """The credit probes spend, their schedule, and what they were measured to lose. All of it
    carries over from request to request: whether a draft pays is a property of the pair, the
    machine and the traffic."""

    def __init__(self) -> None:
        self.credit = 0.0  # seconds probes may still lose
        self.every = PROBE_FIRST  # plain steps between probes
        self.off_steps = 0  # plain steps since speculation or the last probe
        self.probing = False
        """The last choice was a probe or a switch-on (its verdict is still to come)."""
        self.loss: float | None = None
        """Running mean of the seconds a probe lost against plain decoding of the tokens it
        committed (drafting, the draft catching up, verifying); negative when probes gained."""
        self._losses = DiscountedLine(LOSS_MEMORY)  # loss against tokens the draft read first
        self._paid: bool | None = None  # the pending probe's measured verdict
        self._last_paid = False

    def plain_step(self, plain: float, catch_up: int) -> bool:
        """A step that would be plain (or switch the proposer on), of ``plain`` seconds: earn
        :data:`PROBE_BUDGET` of it. True when the credit covers what a probe that first reads
        ``catch_up`` tokens is expected to lose, or, after a probe that paid for itself, is
        not negative (the budget widens where the draft was just found good)."""
        self.off_steps += 1
        self.credit += PROBE_BUDGET * plain
        expected = self.expected_loss(catch_up)
        if self.loss is not None and expected is not None:
            cap = PROBE_CREDIT_LIMIT * max(self.loss, plain, expected)
            self.credit = min(self.credit, cap)
        return (
            expected is None or self.credit >= expected or (self._last_paid and self.credit >= 0.0)
        )

    @property
    def interval_over(self) -> bool:
        return self.off_steps >= self.every

    def start(self) -> None:
        """A probe is made: the next one waits twice as long."""
        self.off_steps = 0
        self.every = min(PROBE_LAST, self.every * 2)
        self.probing = True

    def speculating(self) -> None:
        """Speculation is on: if it goes off again, probing starts from the shortest interval."""
        self.off_steps = 0
        self.every = PROBE_FIRST

    def observe_verdict(self, accepted: int) -> None:
        """The verdict of a step. A promising probe (one that paid for itself; when the caller
        does not time probes, one that got a token accepted) resets the interval; its verdict
        already raised the estimates, so if speculating pays now, it is switched on."""
        if not self.probing:
            return
        self.probing = False
        paid, self._paid = self._paid, None
        if (accepted > 0) if paid is None else paid:
            self.every = PROBE_FIRST
            self.off_steps = 0

    def observe_probe(
        self, seconds: float, k: int, accepted: int, catch_up: int, plain: float
    ) -> None:
        """A probe of ``k`` tokens took ``seconds`` in all (reading ``catch_up`` missed
        tokens, drafting, verifying) and got ``accepted`` accepted: spend what it lost against
        plain decoding (``plain`` seconds a step) of the ``1 + accepted`` tokens it committed.
        A probe that gained pays the credit back."""
        if not math.isfinite(seconds) or seconds < 0 or k < 1:
            return
        loss = seconds - (1 + min(accepted, k)) * plain
        self.credit -= loss
        self._paid = self._last_paid = loss <= 0.0
        if self.loss is None:
            self.loss = loss
        else:
            self.loss += COST_SMOOTHING * (loss - self.loss)
        self._losses.add(float(max(0, catch_up)), loss)

    def expected_loss(self, catch_up: int) -> float | None:
        """Seconds a probe that first reads ``catch_up`` missed tokens is expected to lose: the
        least-squares line through past probes' losses against their reads (slope at least
        0), or their mean loss while they all read about as many tokens (scaling one loss with
        the read would take drafting and verifying for reading, and in a long request no probe
        would be affordable again). ``None`` before the first probe."""
        if self._losses.weight == 0.0:
            return None
        line = self._losses.at(catch_up)
        return self._losses.mean_y if line is None else line


def probe_depth(candidates: Sequence[int], costs: StepCosts, margin: float) -> int | None:
    """The depth among ``candidates`` that pays at the lowest acceptance (the same at every
    position), with the costs measured so far; ``None`` when none would pay even if every
    drafted token were accepted. A probe asks "would speculating pay now?": the depth the
    current, pessimistic estimates prefer (one token) could not show that a deep draft pays."""
    plain = costs.step_cost(0)
    best: tuple[float, int] | None = None
    for k in candidates:
        if k <= 0:
            continue
        need = (1.0 + margin) * costs.step_cost(k) / plain  # E(k) to break even
        if k + 1 <= need:
            continue
        lo, hi = 0.0, 1.0
        for _ in range(30):  # E(k) grows with the acceptance: bisect for the break-even
            mid = (lo + hi) / 2
            if expected_tokens([mid] * k, k) < need:
                lo = mid
            else:
                hi = mid
        if best is None or hi < best[0]:
            best = (hi, k)
    return None if best is None else best[1]
