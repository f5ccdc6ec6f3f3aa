"""The reference engine's loop with the model replaced by a recorded trace.

:func:`simulate` proposes (through any :class:`~sage.llm.proposer.Proposer`), keeps the
proposal's prefix that equals the greedy output, commits one more token, and advances a
simulated clock by the measured cost of a pass of ``1 + len(draft)`` tokens. Tokens, steps and
every proposer call are exactly those of a live greedy run; only time is modelled (the measured
cost table). ``tests/engine/test_replay.py`` checks it step for step against the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from sage.llm.bench.traces import CostTable, Trace, common_prefix
from sage.llm.proposer import ConfidenceAwareProposer, Proposer


class SimClock:
    """Seconds of simulated time; call it to read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class SimResult:
    seconds: float
    steps: int
    tokens: int
    proposed: int
    accepted: int


def simulate(
    trace: Trace, proposer: Proposer | None, costs: CostTable, clock: SimClock | None = None
) -> SimResult:
    """Run ``proposer`` on ``trace`` as the engine would, timing steps with ``costs``."""
    clock = clock or SimClock()
    out = trace.output_ids
    eos = set(trace.eos_ids)
    clock.now += costs.prefill_seconds
    if proposer is not None:
        proposer.start(trace.prompt_ids)
    confidence = trace.target_confidence  # the engine's report (ConfidenceAwareProposer)
    listener = proposer if isinstance(proposer, ConfidenceAwareProposer) else None
    if listener is not None and confidence:
        listener.on_target_confidence(confidence[:1])
    context = [*trace.prompt_ids, out[0]]
    done = 1
    steps = proposed = accepted = 0
    finished = out[0] in eos or done >= trace.max_tokens
    while not finished:
        room = trace.max_tokens - done - 1
        draft: list[int] = []
        if proposer is not None and room > 0:
            draft = list(proposer.propose(context, room).token_ids[:room])
        n = common_prefix(draft, out[done:])
        clock.now += costs.step(1 + len(draft))
        if proposer is not None:
            proposer.on_verified(len(draft), n)
            if listener is not None and confidence:
                listener.on_target_confidence(confidence[done : done + n + 1])
        steps += 1
        proposed += len(draft)
        accepted += n
        for token in out[done : done + n + 1]:
            context.append(token)
            done += 1
            if token in eos or done >= trace.max_tokens:
                finished = True
                break
        if done >= len(out):
            finished = True
    return SimResult(clock.now, steps, done, proposed, accepted)
