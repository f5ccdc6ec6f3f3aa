"""Traces for replaying speculation policies: plain greedy outputs plus measured step costs.

Under greedy decoding every lossless speculative run commits exactly the plain greedy output, so
one plain run per prompt fixes everything that happens: at each position, a proposer's tokens
are accepted as far as they equal the greedy continuation. What a policy (a choice of ``k`` per
step) changes is only how many steps it takes and how big each verify pass is. A trace keeps the
prompt and the greedy output; :func:`acceptance` derives, at every position, how many of a
proposer's ``k`` tokens the target would accept; :func:`measure_pass_costs` measures what a
verify pass of ``1..n`` tokens costs on the model. :mod:`sage.llm.bench.replay` does the rest.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sage.llm.proposer import Proposer


@dataclass
class Trace:
    """One prompt and the target's plain greedy output for it."""

    question_id: int | str
    category: str
    prompt_ids: list[int]
    output_ids: list[int]
    max_tokens: int
    eos_ids: list[int] = field(default_factory=list)
    plain_seconds: float = 0.0
    """Measured wall time of the plain run (prefill included)."""
    draft_tokens: list[int] = field(default_factory=list)
    """A draft model's greedy token for each output position, after ``prompt + output[:i]``
    (:mod:`sage.llm.bench.draft_traces`; empty for lookup-only traces)."""
    draft_confidence: list[float] = field(default_factory=list)
    """The draft's probability of each of those tokens (for its confidence stop)."""
    target_confidence: list[float] = field(default_factory=list)
    """The target's own probability (softmax of its logits) of each output token, as the
    engine reports it to a :class:`~sage.llm.proposer.ConfidenceAwareProposer` when the token
    is committed (``replay record-confidence``; empty when not recorded)."""


@dataclass
class CostTable:
    """Seconds per verify step by the number of tokens in the pass (index 0: one token)."""

    pass_seconds: list[float]
    prefill_seconds: float = 0.0
    overhead_seconds: float = 0.0
    """The decoding loop's time per step outside the forward pass, already in ``pass_seconds``."""
    draft_seconds_per_token: float = 0.0
    """Unused; kept so that trace files written before the draft's feed table still load."""
    machine: dict[str, Any] = field(default_factory=dict)
    draft_model: str = ""
    draft_feed_tokens: list[int] = field(default_factory=list)
    draft_feed_seconds: list[float] = field(default_factory=list)
    """Measured seconds of one draft forward pass by tokens fed (``draft_feed_tokens``)."""

    def step(self, tokens_in_pass: int) -> float:
        index = min(tokens_in_pass, len(self.pass_seconds)) - 1
        return self.pass_seconds[index]

    def draft_feed(self, tokens: int) -> float:
        """Seconds of a draft pass of ``tokens``: linear between the measured sizes, and on
        the line through the last two beyond them."""
        sizes, seconds = self.draft_feed_tokens, self.draft_feed_seconds
        if not sizes:
            raise ValueError("no draft feed costs in this table; record-draft first")
        if tokens <= sizes[0]:
            return seconds[0]
        for i in range(1, len(sizes)):
            if tokens <= sizes[i] or i == len(sizes) - 1:
                lo, hi = sizes[i - 1], sizes[i]
                slope = (seconds[i] - seconds[i - 1]) / (hi - lo)
                return seconds[i - 1] + slope * (tokens - lo)
        return seconds[0]  # one measured size only


@dataclass
class TraceSet:
    model: str
    traces: list[Trace]
    costs: CostTable

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "model": self.model,
            "costs": asdict(self.costs),
            "traces": [asdict(t) for t in self.traces],
        }
        path.write_text(json.dumps(data))

    @classmethod
    def load(cls, path: Path) -> TraceSet:
        data = json.loads(Path(path).read_text())
        return cls(
            data["model"],
            [Trace(**t) for t in data["traces"]],
            CostTable(**data["costs"]),
        )


def acceptance(
    trace: Trace, make_proposer: Callable[[], Proposer], depth: int
) -> tuple[list[int], list[int]]:
    """At every step position: (tokens the proposer offers, of which the target accepts).

    Index ``i`` (from 1) is a step whose committed context is the prompt plus
    ``output_ids[:i]`` (index 0, the prefill's token, is never proposed for); the proposer is
    asked for ``depth`` tokens. A deterministic proposer's first ``k`` tokens are what it offers
    when asked for ``k``, so ``min(k, accepted[i])`` is what a step with ``k`` keeps.
    """
    proposer = make_proposer()
    proposer.start(trace.prompt_ids)
    out = trace.output_ids
    offered: list[int] = [0]
    accepted: list[int] = [0]
    for i in range(1, len(out)):
        proposal = proposer.propose([*trace.prompt_ids, *out[:i]], depth).token_ids
        offered.append(len(proposal))
        accepted.append(common_prefix(proposal, out[i:]))
    return offered, accepted


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def measure_pass_costs(
    engine: Any, prompt_ids: Sequence[int], max_pass: int, *, repeats: int = 5
) -> list[float]:
    """Median seconds of a verify step with ``1..max_pass`` tokens after ``prompt_ids``.

    Each sample is what the engine's loop does per step: one forward pass of ``n`` tokens over
    the KV cache, the argmax read back to the host, and the cache cropped back. Sizes are
    interleaved within each round so that a busy spell hits them alike.
    """
    import torch
    from transformers import DynamicCache

    from sage.llm.engines.transformers.compat import cache_argument

    model = engine.model
    device = engine.device
    kw = cache_argument(model)
    samples: dict[int, list[float]] = {n: [] for n in range(1, max_pass + 1)}
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        model(input_ids=torch.tensor([list(prompt_ids)], device=device), **{kw: cache})
        token = int(prompt_ids[-1])
        for _ in range(repeats + 1):  # the first round warms up and is dropped
            for n in range(1, max_pass + 1):
                start = time.perf_counter()
                logits = model(
                    input_ids=torch.tensor([[token] * n], device=device),
                    **{kw: cache},
                    use_cache=True,
                    logits_to_keep=n,
                ).logits[0]
                logits.argmax(dim=-1).tolist()
                cache.crop(-n)
                samples[n].append(time.perf_counter() - start)
    return [statistics.median(samples[n][1:]) for n in range(1, max_pass + 1)]


def record(
    engine: Any,
    questions: Sequence[Any],
    *,
    max_tokens: int,
    max_pass: int,
    chat: bool = True,
    on_trace: Callable[[Trace], None] | None = None,
) -> TraceSet:
    """Plain greedy runs of ``questions`` plus the engine's measured step costs.

    The loop's own overhead per step (committing tokens, Python) is what the plain runs took
    per step beyond a one-token pass; it is added to every pass size.
    """
    traces: list[Trace] = []
    steps = 0
    decode_seconds = 0.0
    prefill = 0.0
    for question in questions:
        prompt_ids = engine.encode_prompt(question.prompt, chat=chat)
        result = engine.generate(prompt_ids, max_tokens=max_tokens)
        m = result.metrics
        trace = Trace(
            question.question_id,
            question.category,
            list(prompt_ids),
            list(result.token_ids),
            max_tokens,
            sorted(engine.eos_token_ids),
            m.wall_time_s,
        )
        traces.append(trace)
        steps += max(0, len(result.token_ids) - 1)
        decode_seconds += m.wall_time_s - m.prefill_time_s
        prefill += m.prefill_time_s
        if on_trace is not None:
            on_trace(trace)
    middle = traces[len(traces) // 2]
    passes = measure_pass_costs(engine, middle.prompt_ids + middle.output_ids[:64], max_pass)
    per_step = decode_seconds / steps if steps else passes[0]
    overhead = max(0.0, per_step - passes[0])
    costs = CostTable(
        [p + overhead for p in passes],
        prefill_seconds=prefill / max(1, len(traces)),
        overhead_seconds=overhead,
        machine=_machine(engine),
    )
    return TraceSet(engine.name, traces, costs)


def _machine(engine: Any) -> dict[str, Any]:
    import os
    import platform

    import torch

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "dtype": str(engine.model.dtype),
        "device": str(engine.device),
    }
