"""Draft-model traces: replay policies over a draft model without running it.

Under greedy decoding a draft's proposal at position ``i`` is accepted exactly as far as its
greedy tokens equal the target's greedy output. While they are equal, the draft reads the very
tokens the target committed, so its ``j``-th proposed token is its greedy prediction after
``prompt + output[:i + j]``: the prediction of one forward pass over the whole trace (teacher
forcing). One pass per trace therefore fixes every proposal's accepted prefix at every
position. What follows the first wrong token is never judged and needs no value; only how
many tokens the draft makes matters (for the verify pass and the draft's time).

:func:`record_draft` adds those predictions (and the draft's probability for each, for the
confidence stop) to a :class:`~sage.llm.bench.traces.TraceSet`, with the draft's measured
forward cost by number of tokens fed. :class:`TracedDraft` is the proposer the replay runs:
it proposes what the draft model would, keeps the draft's KV cache bookkeeping (tokens it
must first read after plain steps, the whole prompt at a request's start) and charges what
each call would have cost to the replay's simulated clock. What it cannot know: how the
draft's confidence runs after its first wrong token (taken as that token's own) and how two
models sharing the cores slow each other down. The end-to-end check reports the error.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from sage.llm.bench.traces import CostTable, Trace, TraceSet, common_prefix
from sage.llm.proposer import DraftTiming, Proposal

DRAFT_FEED_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024)
"""Tokens per draft forward pass whose time is measured; other sizes are interpolated. One
token is a drafting step, the rest is the draft catching up (up to a whole prompt)."""

WRONG_TOKEN = -1
"""Stands for a draft token after its first wrong one: never equal to any output token."""


def draft_predictions(model: Any, trace: Trace) -> tuple[list[int], list[float]]:
    """The draft's greedy token and its probability for every output position of ``trace``,
    each after ``prompt + output[:i]``, from one forward pass."""
    import torch

    from sage.llm.engines.transformers.compat import forward, new_cache

    out = trace.output_ids
    ids = [*trace.prompt_ids, *out[:-1]]
    with torch.inference_mode():
        logits = forward(model, ids, new_cache(model), logits_to_keep=len(out)).float()
        probs = torch.softmax(logits, dim=-1)
        confidence, tokens = probs.max(dim=-1)
    return [int(t) for t in tokens.tolist()], [float(c) for c in confidence.tolist()]


def record_target_confidence(
    traces: TraceSet, model: Any, *, on_trace: Callable[[Trace], None] | None = None
) -> TraceSet:
    """``traces`` with the target ``model``'s probability of each of its output tokens.

    The same teacher-forced pass as the draft's, on the target: its greedy tokens must be the
    trace's output (the same model, dtype and weights), which is checked, so the probability
    of each is the one a plain run computes when it commits that token."""
    for trace in traces.traces:
        tokens, confidence = draft_predictions(model, trace)
        if tokens != trace.output_ids:
            pairs = zip(tokens, trace.output_ids, strict=True)
            where = next(i for i, (a, b) in enumerate(pairs) if a != b)
            raise ValueError(
                f"question {trace.question_id}: this model's greedy token at output position "
                f"{where} differs from the trace's; record confidence with the traces' own "
                f"target ({traces.model}) and dtype."
            )
        trace.target_confidence = confidence
        if on_trace is not None:
            on_trace(trace)
    return traces


def measure_draft_feed(
    model: Any, prompt_ids: Sequence[int], sizes: Sequence[int] = DRAFT_FEED_SIZES, repeats: int = 3
) -> list[float]:
    """Median seconds of a draft forward pass of ``n`` tokens for each ``n`` in ``sizes``,
    on top of a cache holding ``prompt_ids``, with the last row's argmax read back, as the
    draft proposer does."""
    import torch

    from sage.llm.engines.transformers.compat import drop_last_tokens, forward, new_cache

    samples: dict[int, list[float]] = {n: [] for n in sizes}
    token = int(prompt_ids[-1])
    with torch.inference_mode():
        cache = new_cache(model)
        forward(model, list(prompt_ids), cache, logits_to_keep=1)
        for _ in range(repeats + 1):  # the first round warms up and is dropped
            for n in sizes:
                start = time.perf_counter()
                forward(model, [token] * n, cache, logits_to_keep=1)[-1].argmax().item()
                drop_last_tokens(cache, n)
                samples[n].append(time.perf_counter() - start)
    return [statistics.median(samples[n][1:]) for n in sizes]


def record_draft(
    traces: TraceSet,
    model: Any,
    name: str,
    *,
    on_trace: Callable[[Trace], None] | None = None,
) -> TraceSet:
    """``traces`` with the draft ``model``'s predictions and measured feed costs added."""
    for trace in traces.traces:
        trace.draft_tokens, trace.draft_confidence = draft_predictions(model, trace)
        if on_trace is not None:
            on_trace(trace)
    middle = traces.traces[len(traces.traces) // 2]
    costs = traces.costs
    costs.draft_model = name
    costs.draft_feed_tokens = list(DRAFT_FEED_SIZES)
    costs.draft_feed_seconds = measure_draft_feed(model, middle.prompt_ids + middle.output_ids[:64])
    return traces


class TracedDraft:
    """The draft model of a trace set, as a proposer: its greedy tokens, its early stop, its
    cache bookkeeping, and its measured time charged to ``clock`` (see the module doc)."""

    def __init__(
        self,
        traces: TraceSet,
        clock: Callable[[], float] | None = None,
        *,
        confidence_threshold: float = 0.0,
        cumulative_confidence_threshold: float = 0.0,
    ) -> None:
        if not traces.costs.draft_feed_seconds or any(not t.draft_tokens for t in traces.traces):
            raise ValueError(
                "these traces hold no draft predictions; add them with "
                "`sage-llm replay record-draft TRACES --draft MODEL`"
            )
        self.costs: CostTable = traces.costs
        self.by_prompt = {tuple(t.prompt_ids): t for t in traces.traces}
        self.clock = clock
        self.confidence_threshold = confidence_threshold
        self.cumulative_confidence_threshold = cumulative_confidence_threshold
        self.trace: Trace | None = None
        self._cached: list[int] = []  # tokens in the draft's KV cache
        self.last_timing: DraftTiming | None = None

    def set_clock(self, clock: Callable[[], float]) -> None:
        """The replay's clock (:class:`~sage.llm.bench.replay.SimClock`), which
        :meth:`propose` advances by the draft's time; a clock without ``now`` is left alone
        (a test that compares with a live run passes a constant one)."""
        self.clock = clock

    def start(self, prompt_ids: Sequence[int]) -> None:
        self.trace = self.by_prompt[tuple(prompt_ids)]
        self._cached = []

    def peek(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        """What :meth:`propose` would return, without spending time or touching the cache."""
        trace = self.trace
        assert trace is not None, "start() first"
        out, predicted = trace.output_ids, trace.draft_tokens
        at = len(context_ids) - len(trace.prompt_ids)
        eos = set(trace.eos_ids)
        tokens: list[int] = []
        confidence = all_accepted = 1.0
        for i in range(max_tokens):
            pos = at + i
            on_track = pos < len(predicted) and (not tokens or tokens[-1] == out[pos - 1])
            if on_track:
                token, confidence = predicted[pos], trace.draft_confidence[pos]
            else:  # after the first wrong token: never judged (see WRONG_TOKEN)
                token = WRONG_TOKEN
            tokens.append(token)
            if token in eos or i == max_tokens - 1:
                break
            if confidence < self.confidence_threshold:
                break
            all_accepted *= confidence
            if all_accepted < self.cumulative_confidence_threshold:
                break
        return Proposal(tokens)

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        if max_tokens <= 0:
            return Proposal([])
        proposal = self.peek(context_ids, max_tokens)
        keep = min(common_prefix(self._cached, context_ids), len(context_ids) - 1)
        fed = len(context_ids) - keep
        self._cached = [*context_ids, *proposal.token_ids[:-1]]
        start = self._advance(0.0)
        read_end = self._advance(self.costs.draft_feed(fed))
        end = self._advance((len(proposal) - 1) * self.costs.draft_feed(1))
        self.last_timing = DraftTiming(fed, read_end - start, len(proposal), end - read_end)
        return proposal

    def _advance(self, seconds: float) -> float:
        """Spend ``seconds`` on the replay's clock; what the clock reads then (0 without one)."""
        if hasattr(self.clock, "now"):
            self.clock.now += seconds  # type: ignore[union-attr]
        return self.clock() if self.clock is not None else 0.0

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        """The next :meth:`propose` finds what was rejected in the cache bookkeeping."""
