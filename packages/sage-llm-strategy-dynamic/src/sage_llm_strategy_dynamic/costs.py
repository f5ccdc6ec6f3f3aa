"""What a step costs, in seconds, by the size of its verify pass: measured, never assumed.

A step of ``k`` drafted tokens costs a verify pass of ``1 + k`` tokens, the draft's time per
drafted token times ``k``, and the loop's own overhead. Evidence for each value:
docs/notes/dynamic-lookahead.md#costs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from sage_llm_strategy_dynamic.lines import DiscountedLine

COST_SMOOTHING: Final = 0.2
"""Weight of a new step-time sample in the running mean of its pass size (about 5 samples)."""

OUTLIER_FACTOR: Final = 3.0
"""A sample above 3x the current estimate (another process took the CPU) is clipped to 3x, so
one stall cannot switch speculation off for a long time."""

READ_MEMORY: Final = 0.8
"""Each timed read discounts the earlier ones by this (about five remembered)."""


class StepCosts:
    """Seconds per step by number of tokens in the verify pass, from measured step times.

    ``profile`` (seconds for a pass of ``1..len(profile)`` tokens, e.g. from a calibration of
    the target model) fills sizes never observed yet, scaled by how the observed sizes compare
    with it (the cache grows during a request, so every pass gets slower alike). Without a
    profile an unobserved size costs what the nearest observed size costs; with nothing
    observed every size costs the same, and the choice rests on acceptance alone.
    """

    def __init__(self, max_pass: int, profile: Sequence[float] | None = None) -> None:
        self.max_pass = max_pass
        self.mean: list[float | None] = [None] * (max_pass + 1)  # index = tokens in the pass
        self.profile: list[float] | None = None
        self.draft_per_token: float = 0.0
        self.overhead: float = 0.0  # the loop's own time per step, whatever k is
        self._reads = DiscountedLine(READ_MEMORY)  # seconds against tokens read
        self.set_profile(profile)

    def set_profile(self, profile: Sequence[float] | None) -> None:
        if profile is None:
            self.profile = None
            return
        values = [float(v) for v in profile]
        if not values or any(not math.isfinite(v) or v <= 0 for v in values):
            raise ValueError(f"a cost profile needs positive finite seconds, got {values!r}")
        while len(values) < self.max_pass:  # beyond the calibrated sizes: as the largest
            values.append(values[-1])
        self.profile = values[: self.max_pass]

    def observe_pass(self, tokens: int, seconds: float) -> None:
        if not 1 <= tokens <= self.max_pass or not math.isfinite(seconds) or seconds <= 0:
            return
        old = self.mean[tokens]
        if old is None:
            self.mean[tokens] = seconds
            return
        seconds = min(seconds, OUTLIER_FACTOR * old)
        self.mean[tokens] = old + COST_SMOOTHING * (seconds - old)

    def observe_draft(self, tokens: int, seconds: float) -> None:
        """A model draft took ``seconds`` for ``tokens`` tokens (lookup proposers: never)."""
        if tokens < 1 or not math.isfinite(seconds) or seconds < 0:
            return
        sample = seconds / tokens
        if self.draft_per_token == 0.0:
            self.draft_per_token = sample
        else:
            sample = min(sample, OUTLIER_FACTOR * self.draft_per_token)
            self.draft_per_token += COST_SMOOTHING * (sample - self.draft_per_token)

    def observe_read(self, tokens: int, seconds: float) -> None:
        """A model draft's first pass of a call read ``tokens`` tokens (what it had missed)
        in ``seconds``: one or two after a drafting step, a whole prompt at a request's start."""
        if tokens < 1 or not math.isfinite(seconds) or seconds < 0:
            return
        self._reads.add(float(tokens), seconds)

    def read_cost(self, tokens: int) -> float | None:
        """Seconds for the draft to read ``tokens`` missed tokens: the least-squares line
        through the reads timed so far (slope at least 0). With one size timed so far, that
        read's seconds per token times ``tokens``: a forward pass reads many tokens for
        little more than one, so this overstates a long read, and no switch-on bets on a
        cheap long read that was never seen. ``None`` before any read was timed."""
        if self._reads.weight == 0.0:
            return None
        line = self._reads.at(tokens)
        if line is not None:
            return max(0.0, line)
        return self._reads.y_per_x * tokens

    def observe_overhead(self, seconds: float) -> None:
        """Time per step spent outside the draft and the verify pass (committing, lookup)."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        if self.overhead == 0.0:
            self.overhead = seconds
        else:
            seconds = min(seconds, OUTLIER_FACTOR * self.overhead)
            self.overhead += COST_SMOOTHING * (seconds - self.overhead)

    def pass_cost(self, tokens: int) -> float:
        """Seconds (or relative units before any measurement) for a pass of ``tokens``."""
        seen = self.mean[tokens]
        if seen is not None:
            return seen
        observed = [(n, m) for n, m in enumerate(self.mean) if m is not None]
        if self.profile is not None:
            ratios = [m / self.profile[n - 1] for n, m in observed]
            scale = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else 1.0
            return self.profile[tokens - 1] * scale
        if not observed:
            return 1.0
        below = [nm for nm in observed if nm[0] < tokens]
        above = [nm for nm in observed if nm[0] > tokens]
        if below and above:  # between two measured sizes: on the line between them
            (n0, m0), (n1, m1) = below[-1], above[0]
            return m0 + (m1 - m0) * (tokens - n0) / (n1 - n0)
        return (below[-1] if below else above[0])[1]

    def step_cost(self, k: int) -> float:
        return self.pass_cost(1 + k) + self.draft_per_token * k + self.overhead

    def draft_break_even(self) -> float:
        """The chance of being accepted at which drafting one more token pays for itself:
        its drafting time plus the verify position it adds, over the plain step an accepted
        token saves. The position's cost is the mean slope of the pass cost from 2 tokens to
        the largest (single sizes are noisy; the step from 1 to 2 tokens is the price of
        speculating at all, paid before the first drafted token). About 0.4 for the 0.5B
        draft of the 1.5B target on a 2-core CPU; lower where drafting is cheap next to the
        target (a GPU)."""
        n = self.max_pass
        slope = (self.pass_cost(n) - self.pass_cost(2)) / (n - 2) if n > 2 else 0.0
        plain = self.step_cost(0)
        return min(1.0, (self.draft_per_token + max(0.0, slope)) / plain) if plain > 0 else 0.0
