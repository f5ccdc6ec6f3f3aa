"""Running policies over a trace set: the table of ``sage-llm replay run``.

A strategy under test takes part through the contract only: its ``make_proposer`` over n-gram
traces, or its ``wrap_proposer`` hook around a draft model's recorded predictions
(:class:`~sage.llm.bench.draft_traces.TracedDraft`). A strategy that proposes with a draft
model (a parameter declared ``param(..., draft_model=True)``, required or given) is replayed
over the traces' recorded draft instead of loading one.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence

from sage.llm.bench.draft_traces import TracedDraft
from sage.llm.bench.replay.policies import (
    HF_ASSISTED_CONFIDENCE,
    HF_ASSISTED_TOKENS,
    EmaTiers,
    Fixed,
    HfHeuristic,
    Oracle,
    Ucb,
)
from sage.llm.bench.replay.simulator import SimClock, SimResult, simulate
from sage.llm.bench.replay.summary import summarize
from sage.llm.bench.traces import TraceSet
from sage.llm.proposer import Proposer


def run_policies(
    traces: TraceSet,
    policies: dict[str, Callable[[], Proposer | None]],
) -> dict[str, list[SimResult]]:
    """Every policy over every trace, in trace order (a policy may learn across requests)."""
    results: dict[str, list[SimResult]] = {}
    for name, make in policies.items():
        policy = make()
        clock = SimClock()
        set_clock = getattr(policy, "set_clock", None)
        if callable(set_clock):
            set_clock(clock)
        runs = []
        for trace in traces.traces:
            if isinstance(policy, Oracle):
                policy.set_trace(trace)
            before = clock.now
            result = simulate(trace, policy, traces.costs, clock)
            result.seconds = clock.now - before
            runs.append(result)
        results[name] = runs
    return results


def standard_policies(
    traces: TraceSet,
    inner: Callable[[], Proposer],
    max_k: int,
    strategies: Sequence[str] = (),
    *,
    draft: bool = False,
) -> dict[str, Callable[[], Proposer | None]]:
    """plain, fixed-1..max_k, hf-heuristic, ema-tiers, ucb, the strategies, oracle.

    ``draft``: ``inner`` is a traced draft model; the strategies then run around it (their
    ``wrap_proposer``), and transformers' default assisted generation joins the table."""
    costs = traces.costs
    policies: dict[str, Callable[[], Proposer | None]] = {"plain": lambda: None}
    for k in range(1, max_k + 1):
        policies[f"fixed-{k}"] = lambda k=k: Fixed(inner(), k)  # type: ignore[misc]
    policies["hf-heuristic"] = lambda: HfHeuristic(inner(), max_k)
    policies["ema-tiers"] = lambda: EmaTiers(inner(), max_k, allow_off=True)
    policies["ucb"] = lambda: Ucb(inner(), list(range(max_k + 1)), costs)
    if draft:
        policies["hf-assisted:default"] = lambda: Fixed(
            TracedDraft(traces, confidence_threshold=HF_ASSISTED_CONFIDENCE), HF_ASSISTED_TOKENS
        )
    for spec in strategies:
        policies[spec] = strategy_policy(spec, inner if draft else None)
    policies["oracle"] = lambda: Oracle(inner(), max_k)
    return policies


def strategy_policy(
    spec: str, draft: Callable[[], Proposer] | None = None
) -> Callable[[], Proposer | None]:
    """A strategy's proposer as the engine would build it, or, around ``draft`` (a traced
    draft model), what its ``wrap_proposer`` hook returns. Raises ``ValueError`` for a
    strategy that cannot run around another proposer."""
    from sage.llm import get_strategy
    from sage.llm.plugins import implements
    from sage.llm.proposer import ProposerContext

    strategy = get_strategy(spec)
    if draft is None:
        return lambda: strategy.make_proposer(ProposerContext())
    if not implements(strategy, "wrap_proposer"):
        raise ValueError(
            f"strategy {spec!r} cannot run around another proposer (it has no wrap_proposer "
            "hook), so it cannot be replayed over a traced draft"
        )

    def wrapped() -> Proposer:
        proposer = strategy.wrap_proposer(draft())
        if proposer is None:
            raise ValueError(
                f"strategy {spec!r}: wrap_proposer returned None, so it cannot be replayed "
                "over a traced draft"
            )
        return proposer

    return wrapped


def proposes_with_draft(spec: str) -> bool:
    """Whether the strategy ``spec`` names proposes with a draft model: it declares a
    draft-model parameter that is required, or given in ``spec``. Such a strategy is
    replayed over the traces' recorded draft."""
    from sage.llm.params import draft_model_param, parse_spec
    from sage.llm.registry import get_strategy_class

    parsed = parse_spec(spec)
    param = draft_model_param(get_strategy_class(parsed.name, distribution=parsed.distribution))
    return param is not None and (param.required or param.name in parsed.params)


def inner_proposer(spec: str, traces: TraceSet) -> tuple[Callable[[], Proposer], bool]:
    """The proposer the baseline policies run over, and whether it is the traces' recorded
    draft: for a strategy that proposes with a draft model (:func:`proposes_with_draft`)
    the recorded draft, asked for as many tokens as each policy wants; otherwise the
    strategy's own proposer (``make_proposer``). Raises ``ValueError`` when there is none."""
    if proposes_with_draft(spec):
        TracedDraft(traces)  # traces without the draft's predictions: say so now

        def traced() -> Proposer:
            return TracedDraft(traces)

        return traced, True
    from sage.llm import get_strategy
    from sage.llm.plugins import implements
    from sage.llm.proposer import ProposerContext

    strategy = get_strategy(spec)
    if not implements(strategy, "make_proposer"):
        raise ValueError(f"strategy {spec!r} has no proposer to replay (no make_proposer)")

    def own() -> Proposer:
        proposer = strategy.make_proposer(ProposerContext())
        if proposer is None:
            raise ValueError(f"strategy {spec!r} has no proposer to replay")
        return proposer

    return own, False


def over_orders(
    traces: TraceSet,
    make: Callable[[], Proposer | None],
    plain: list[SimResult],
    orders: int,
) -> dict[str, dict[str, float]]:
    """A policy that learns across requests, replayed in ``orders`` orders of the traces
    (the given one, then seeded shuffles 1, 2, ...): per category, the mean, lowest and
    highest speedup over plain decoding. One order's figure moves by a few percent with which
    requests came first; the mean is what the policy does on such traffic."""
    import random
    import statistics

    per_group: dict[str, list[float]] = defaultdict(list)
    for seed in range(orders):
        order = list(range(len(traces.traces)))
        if seed:
            random.Random(seed).shuffle(order)
        shuffled = dataclasses.replace(traces, traces=[traces.traces[i] for i in order])
        runs = run_policies(shuffled, {"policy": make})["policy"]
        back: list[SimResult | None] = [None] * len(order)
        for position, i in enumerate(order):
            back[i] = runs[position]
        table = summarize(traces, {"plain": plain, "policy": [r for r in back if r]})
        for group, row in table["speedup"].items():
            per_group[group].append(row["policy"])
    return {
        group: {"mean": statistics.fmean(v), "min": min(v), "max": max(v)}
        for group, v in per_group.items()
    }
