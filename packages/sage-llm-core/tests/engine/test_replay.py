"""Replay on traces is exact: the same steps, proposals and verdicts as a live greedy run."""

from __future__ import annotations

from typing import Any

import pytest

from sage.llm.bench.replay import (
    EmaTiers,
    Fixed,
    HfHeuristic,
    Oracle,
    SimClock,
    Ucb,
    run_policies,
    simulate,
    summarize,
)
from sage.llm.bench.traces import CostTable, Trace, TraceSet, acceptance
from sage.llm.engines.transformers import TransformersEngine
from sage.llm.testing.tiny import repetitive_prompt
from sage_llm_strategy_dynamic.controller import LookaheadController
from sage_llm_strategy_dynamic.proposer import DynamicProposer
from sage_llm_strategy_ngram.proposer import NgramProposer

MAX_NEW = 40
COSTS = CostTable([1.0, 1.3, 1.4, 1.45, 1.5, 1.55, 1.6, 1.65, 1.7])


@pytest.fixture(scope="module")
def engine(target: Any) -> TransformersEngine:
    return TransformersEngine(target)


@pytest.fixture(scope="module")
def traces(engine: TransformersEngine) -> list[Trace]:
    out = []
    for seed in range(3):
        prompt = repetitive_prompt(24, seed=seed)
        result = engine.generate(prompt, max_tokens=MAX_NEW)
        out.append(Trace(seed, "c", prompt, result.token_ids, MAX_NEW, [], 0.0))
    return out


def dynamic() -> DynamicProposer:
    proposer = DynamicProposer(NgramProposer(6, 3, 1), LookaheadController(0, 6), cheap=True)
    proposer.set_clock(lambda: 0.0)  # live: no timings, so live and replay see the same costs
    proposer.set_cost_profile(COSTS.pass_seconds)
    return proposer


@pytest.mark.parametrize("make", [lambda: Fixed(NgramProposer(6, 3, 1), 3), dynamic])
def test_replay_reproduces_a_live_run(
    engine: TransformersEngine, traces: list[Trace], make: Any
) -> None:
    live, replayed = make(), make()
    for trace in traces:
        result = engine.generate(trace.prompt_ids, proposer=live, max_tokens=MAX_NEW)
        sim = simulate(trace, replayed, COSTS, SimClock())
        m = result.metrics
        assert sim.tokens == len(result.token_ids)
        assert (sim.steps, sim.proposed, sim.accepted) == (
            m.num_steps,
            m.num_draft_tokens,
            m.num_accepted_tokens,
        )
        if isinstance(live, DynamicProposer):
            assert live.chosen == replayed.chosen


def test_plain_time_is_one_pass_per_token(traces: list[Trace]) -> None:
    sim = simulate(traces[0], None, COSTS)
    assert sim.steps == len(traces[0].output_ids) - 1
    assert sim.seconds == pytest.approx(sim.steps * COSTS.step(1))


def test_oracle_bounds_every_policy(traces: list[Trace]) -> None:
    set_ = TraceSet("tiny", traces, COSTS)
    inner = lambda: NgramProposer(6, 3, 1)  # noqa: E731
    policies: dict[str, Any] = {
        "plain": lambda: None,
        **{f"fixed-{k}": (lambda k=k: Fixed(inner(), k)) for k in range(1, 7)},
        "hf-heuristic": lambda: HfHeuristic(inner(), 6),
        "ema-tiers": lambda: EmaTiers(inner(), 6, allow_off=True),
        "ucb": lambda: Ucb(inner(), list(range(7)), COSTS),
        "dynamic": dynamic,
        "oracle": lambda: Oracle(inner(), 6),
    }
    results = run_policies(set_, policies)
    table = summarize(set_, results)["speedup"]["overall"]
    for name in policies:
        assert table[name] <= table["oracle"] + 1e-9, name
    oracle = results["oracle"]
    assert all(r.accepted == r.proposed for r in oracle)  # it proposes only what will be kept
    total = 0
    for trace, run in zip(traces, results["fixed-6"], strict=True):
        offered, accepted = acceptance(trace, inner, 6)
        assert all(a <= o for a, o in zip(accepted, offered, strict=True))
        total += sum(accepted)
        assert run.accepted <= sum(accepted)
    assert total > 0


def test_check_compares_a_bench_run_with_its_replay(traces: list[Trace]) -> None:
    """``replay check``: a bench run whose timings are exactly the cost table's gives zero
    error; traces of another model (different plain output) are refused, not compared."""
    from sage.llm.bench.replay import check

    set_ = TraceSet("tiny", traces, COSTS)
    spec = "ngram:n=3,num_speculative_tokens=4"
    records = []
    for trace in traces:
        plain = simulate(trace, None, COSTS)
        from sage.llm import get_strategy
        from sage.llm.proposer import ProposerContext

        sim = simulate(trace, get_strategy(spec).make_proposer(ProposerContext()), COSTS)
        for method, run in (("plain", plain), (spec, sim)):
            records.append(
                {
                    "method": method,
                    "question_id": trace.question_id,
                    "category": trace.category,
                    "num_tokens": run.tokens,
                    "seconds": run.seconds,
                    "token_ids": list(trace.output_ids),
                    "metrics": {},
                }
            )
    rows = check(set_, {"records": records})
    overall = next(r for r in rows if r["method"] == spec and r["category"] == "all")
    plain_s = sum(r["seconds"] for r in records if r["method"] == "plain")
    spec_s = sum(r["seconds"] for r in records if r["method"] == spec)
    assert overall["simulated"] == pytest.approx(plain_s / spec_s)
    assert overall["error"] == pytest.approx(0.0, abs=1e-9)
    assert {r["category"] for r in rows} == {"c", "all"}
    records[0]["token_ids"] = [*records[0]["token_ids"][:-1], -1]
    with pytest.raises(ValueError, match="another model"):
        check(set_, {"records": records})
