"""How likely each drafted position is to be accepted, and what a step is expected to commit.

``a_j`` is the probability that position ``j`` is accepted given that ``1..j-1`` were,
estimated per position from the positions the target actually judged (a position after the
first rejection tells nothing). ``E(k) = 1 + sum_{i<=k} prod_{j<=i} a_j`` (Leviathan et al.
2023, section 3.4). Evidence for each value: docs/notes/dynamic-lookahead.md#acceptance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

PRIOR_ACCEPTANCE: Final = 0.3
"""``a_1`` before anything is observed: cautious, as a cheap proposer's shadow checks correct a
low prior within a step or two, while a high one pays for rejected passes."""

PRIOR_WEIGHT: Final = 0.25
"""The prior is worth a quarter of an observation, so the first real verdict dominates and an
estimate can fall to ~2% after a run of rejections."""

MEMORY: Final = 0.8
"""Each observation of a position discounts the older ones by this (about five remembered):
a regime change is followed within a handful of steps."""

STALE_MEMORY: Final = 0.95
"""Positions not judged this step (after the first rejection) fade by this per step (about
20 steps), so a depth that stopped being reached loses its old, good estimate."""

CARRY_OVER_COPY: Final = 1.0
"""What the next request keeps of the copy-in-progress estimates: all, since whether a
matching copy goes on is a property of the proposer and the text, not of one request."""

CARRY_OVER_FRESH: Final = 0.3
"""What it keeps of the fresh-proposal estimates, which depend more on the request: a third,
so its own verdicts dominate within a couple of steps."""


def expected_tokens(acceptance: Sequence[float], k: int) -> float:
    """``E(k) = 1 + sum_{i<=k} prod_{j<=i} a_j``: the tokens one step commits on average."""
    total, run = 1.0, 1.0
    for a in acceptance[:k]:
        run *= a
        total += run
    return total


class AcceptanceEstimates:
    """Per-position conditional acceptance with exponential forgetting (a discounted Beta)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.hits = [0.0] * depth
        self.trials = [0.0] * depth
        self.prior = PRIOR_ACCEPTANCE

    def reset(self, prior: float | None = None, keep: float = 0.0) -> None:
        """Start over (``keep`` of what was observed is kept, as a weaker prior)."""
        self.hits = [h * keep for h in self.hits]
        self.trials = [t * keep for t in self.trials]
        if prior is not None:
            self.prior = prior

    def observe(self, tested: int, accepted: int, first: int = 0) -> None:
        """Positions ``first..tested-1`` (0-based) were checked; the first ``accepted`` held.

        Only positions up to and including the first rejection count: after it, the target
        never judged the proposal (``a_j`` is conditional on the earlier positions).
        """
        last = min(tested, accepted + 1, self.depth)
        for j in range(first, last):
            self.hits[j] = self.hits[j] * MEMORY + (1.0 if j < accepted else 0.0)
            self.trials[j] = self.trials[j] * MEMORY + 1.0
        if first == 0:  # once per step: what was not judged grows stale
            for j in range(last, self.depth):
                self.hits[j] *= STALE_MEMORY
                self.trials[j] *= STALE_MEMORY

    def estimates(self) -> list[float]:
        """``a_1..a_depth``; an unobserved depth borrows the estimate of the one before it
        (a copy that started tends to go on)."""
        out: list[float] = []
        prior = self.prior
        for hit, trial in zip(self.hits, self.trials, strict=True):
            a = (hit + PRIOR_WEIGHT * prior) / (trial + PRIOR_WEIGHT)
            out.append(a)
            prior = a
        return out


class CarryOver:
    """What one request's estimates hand to the next: the first position's acceptance over
    recent requests (the new prior) and part of each state's observations."""

    def __init__(self) -> None:
        self.hits = 0.0  # discounted acceptance of position 1 across requests
        self.trials = 0.0

    def observe(self, accepted: int) -> None:
        """A step's verdict (once per step)."""
        self.hits = self.hits * MEMORY + (1.0 if accepted > 0 else 0.0)
        self.trials = self.trials * MEMORY + 1.0

    def start_request(self, states: Mapping[bool, AcceptanceEstimates]) -> None:
        """Reset ``states`` (``True``: a copy in progress) for a new request."""
        prior = None
        if self.trials > 0:
            prior = (self.hits + PRIOR_WEIGHT * PRIOR_ACCEPTANCE) / (self.trials + PRIOR_WEIGHT)
        states[True].reset(prior, CARRY_OVER_COPY)
        states[False].reset(prior, CARRY_OVER_FRESH)
