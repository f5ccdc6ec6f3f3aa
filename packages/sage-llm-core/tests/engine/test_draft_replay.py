"""Replay over a traced draft model is exact: the steps, proposals, verdicts and controller
choices of a live greedy run with the real draft, and the draft's time as the table says."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from sage.llm import get_strategy
from sage.llm.bench.draft_traces import (
    WRONG_TOKEN,
    TracedDraft,
    record_draft,
    record_target_confidence,
)
from sage.llm.bench.replay import Fixed, Oracle, SimClock, run_policies, simulate, summarize
from sage.llm.bench.traces import CostTable, Trace, TraceSet
from sage.llm.engines.transformers import TransformersEngine
from sage.llm.proposer import ConfidenceAwareProposer, Proposal
from sage.llm.testing.tiny import noisy_copy, repetitive_prompt
from sage_llm_strategy_draft.proposer import DraftModelProposer

MAX_NEW = 40
PASS = [1.0, 1.3, 1.4, 1.45, 1.5, 1.55, 1.6, 1.65, 1.7]


@pytest.fixture(scope="module")
def engine(target: Any) -> TransformersEngine:
    return TransformersEngine(target)


@pytest.fixture(scope="module")
def near_draft(target: Any) -> Any:
    """The target with noise on its weights: often right, sometimes wrong."""
    return noisy_copy(target, 0.05, seed=11)


@pytest.fixture(scope="module")
def traced(engine: TransformersEngine, near_draft: Any) -> TraceSet:
    traces = []
    for seed in range(3):
        prompt = repetitive_prompt(24, seed=seed)
        result = engine.generate(prompt, max_tokens=MAX_NEW)
        traces.append(Trace(seed, "c", prompt, result.token_ids, MAX_NEW, [], 0.0))
    set_ = record_draft(TraceSet("tiny", traces, CostTable(list(PASS))), near_draft, "near")
    set_.costs.draft_feed_seconds = [0.1 + 0.01 * n for n in set_.costs.draft_feed_tokens]
    return record_target_confidence(set_, engine.model)


class Listening:
    """A ConfidenceAwareProposer around another proposer: keeps what the engine reports."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.heard: list[list[float]] = []

    def start(self, prompt_ids: Any) -> None:
        self.heard = []
        self.inner.start(prompt_ids)

    def propose(self, context_ids: Any, max_tokens: int) -> Proposal:
        return self.inner.propose(context_ids, max_tokens)  # type: ignore[no-any-return]

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        self.inner.on_verified(num_proposed, num_accepted)

    def on_target_confidence(self, confidence: Any) -> None:
        self.heard.append(list(confidence))

    def set_clock(self, clock: Any) -> None:
        self.inner.set_clock(clock)


def test_the_engine_reports_the_targets_probability_of_each_committed_token(
    engine: TransformersEngine, near_draft: Any, traced: TraceSet
) -> None:
    """Live: one report after the prefill, then one per step of 1 + accepted values, equal to
    the teacher-forced probabilities the traces hold; the replay reports the same. Output is
    plain greedy's."""
    assert not isinstance(DraftModelProposer(near_draft, 4), ConfidenceAwareProposer)
    live = Listening(DraftModelProposer(near_draft, 4))
    replayed = Listening(Fixed(TracedDraft(traced), 4))
    assert isinstance(live, ConfidenceAwareProposer)
    for trace in traced.traces:
        result = engine.generate(trace.prompt_ids, proposer=live, max_tokens=MAX_NEW)
        assert result.token_ids == trace.output_ids
        assert len(live.heard) == 1 + result.metrics.num_steps
        assert len(live.heard[0]) == 1
        heard = [c for step in live.heard for c in step]
        assert heard == pytest.approx(trace.target_confidence, abs=1e-5)
        assert all(0.0 < c <= 1.0 for c in heard)
        simulate(trace, replayed, traced.costs, SimClock())
        assert [len(step) for step in replayed.heard] == [len(step) for step in live.heard]
        assert [c for step in replayed.heard for c in step] == trace.target_confidence


def test_recording_confidence_needs_the_traces_own_target(
    traced: TraceSet, near_draft: Any
) -> None:
    with pytest.raises(ValueError, match="differs from the trace"):
        record_target_confidence(copy.deepcopy(traced), near_draft)


def test_predictions_are_the_drafts_own(traced: TraceSet) -> None:
    agree = [
        sum(d == o for d, o in zip(t.draft_tokens, t.output_ids, strict=True))
        for t in traced.traces
    ]
    total = sum(len(t.output_ids) for t in traced.traces)
    assert 0 < sum(agree) < total, "the noisy draft should be right sometimes, not always"
    assert all(0.0 < c <= 1.0 for t in traced.traces for c in t.draft_confidence)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_fixed_k_replays_a_live_run_with_the_real_draft(
    engine: TransformersEngine, near_draft: Any, traced: TraceSet, k: int
) -> None:
    live = DraftModelProposer(near_draft, k)
    replayed = Fixed(TracedDraft(traced), k)
    for trace in traced.traces:
        m = engine.generate(trace.prompt_ids, proposer=live, max_tokens=MAX_NEW).metrics
        sim = simulate(trace, replayed, traced.costs, SimClock())
        assert (sim.steps, sim.proposed, sim.accepted) == (
            m.num_steps,
            m.num_draft_tokens,
            m.num_accepted_tokens,
        )


@pytest.mark.parametrize("stop", ["token", "cumulative"])
def test_early_stops_replay_exactly_while_the_draft_is_right(
    engine: TransformersEngine, target: Any, traced: TraceSet, stop: str
) -> None:
    """The target as its own draft is never wrong, so every confidence is known: the stop
    after an unsure token and the stop on the product of the draft's probabilities replay
    step for step."""
    engine_out = [engine.generate(t.prompt_ids, max_tokens=MAX_NEW) for t in traced.traces]
    own = record_draft(
        TraceSet("tiny", copy.deepcopy(traced.traces), copy.deepcopy(traced.costs)),
        target,
        "self",
    )
    if stop == "token":
        confidences = sorted(c for t in own.traces for c in t.draft_confidence)
        thresholds = {"confidence_threshold": confidences[len(own.traces) * 10]}
    else:
        thresholds = {"cumulative_confidence_threshold": 0.5}
    live = DraftModelProposer(target, 6, **thresholds)
    replayed = Fixed(TracedDraft(own, **thresholds), 6)
    stopped = 0
    for trace, plain in zip(own.traces, engine_out, strict=True):
        m = engine.generate(trace.prompt_ids, proposer=live, max_tokens=MAX_NEW).metrics
        sim = simulate(trace, replayed, own.costs, SimClock())
        assert sim.tokens == len(plain.token_ids)
        assert (sim.steps, sim.proposed, sim.accepted) == (
            m.num_steps,
            m.num_draft_tokens,
            m.num_accepted_tokens,
        )
        stopped += m.num_drafts * 6 - m.num_draft_tokens
    assert stopped > 0, "the threshold should stop some drafts early"


def test_dynamic_lookahead_chooses_as_it_does_live(
    engine: TransformersEngine, near_draft: Any, traced: TraceSet
) -> None:
    """The strategy's own controller around the replayed draft (wrap_proposer) makes the
    choices it makes around the real draft, when both see the same (constant) clock."""
    strategy = get_strategy("dynamic-lookahead:min_tokens=0,max_tokens=6,confidence_threshold=0")
    live = strategy.wrap_proposer(DraftModelProposer(near_draft, 6))  # type: ignore[attr-defined]
    replayed = strategy.wrap_proposer(TracedDraft(traced))  # type: ignore[attr-defined]
    for proposer in (live, replayed):
        proposer.set_clock(lambda: 0.0)
        proposer.set_cost_profile([p / 10 for p in PASS])
    for trace in traced.traces:
        m = engine.generate(trace.prompt_ids, proposer=live, max_tokens=MAX_NEW).metrics
        sim = simulate(trace, replayed, traced.costs, SimClock())
        assert live.chosen == replayed.chosen
        assert (sim.steps, sim.proposed, sim.accepted) == (
            m.num_steps,
            m.num_draft_tokens,
            m.num_accepted_tokens,
        )


def test_draft_time_is_charged_with_catching_up() -> None:
    """Feeding after plain steps (or at the start) is one pass over every missed token; each
    further drafted token is one 1-token pass."""
    costs = CostTable([1.0, 1.0, 1.0, 1.0], draft_feed_tokens=[1, 4, 8])
    costs.draft_feed_seconds = [0.1, 0.4, 0.6]
    trace = Trace(0, "c", [1, 2, 3], [4, 5, 6, 7, 8, 9], 6, [], 0.0, [4, 5, 9, 7, 8, 9], [1.0] * 6)
    clock = SimClock()
    draft = TracedDraft(TraceSet("t", [trace], costs), clock)
    draft.start(trace.prompt_ids)
    proposal = draft.propose([1, 2, 3, 4], 3)
    assert proposal.token_ids == [5, 9, WRONG_TOKEN]  # right, wrong, never judged
    assert clock.now == pytest.approx(0.4 + 2 * 0.1)  # the whole context, then 2 tokens
    draft.on_verified(3, 1)
    clock.now = 0.0
    assert draft.propose([1, 2, 3, 4, 5, 6], 1).token_ids == [7]
    assert clock.now == pytest.approx(0.1)  # the cache still held 1..5: one token fed
    clock.now = 0.0
    assert draft.propose([1, 2, 3, 4, 5, 6, 7, 8], 2).token_ids == [9, WRONG_TOKEN]
    assert clock.now == pytest.approx(0.1 + (0.4 - 0.1) / 3 * (2 - 1) + 0.1)  # 2 fed
    assert costs.draft_feed(16) == pytest.approx(0.6 + 0.05 * 8)  # beyond: the last slope


def test_oracle_drafts_only_what_is_accepted(traced: TraceSet) -> None:
    policies: dict[str, Any] = {
        "plain": lambda: None,
        **{f"fixed-{k}": (lambda k=k: Fixed(TracedDraft(traced), k)) for k in range(1, 7)},
        "dynamic": lambda: get_strategy("dynamic-lookahead:max_tokens=6").wrap_proposer(
            TracedDraft(traced)
        ),  # type: ignore[attr-defined]
        "oracle": lambda: Oracle(TracedDraft(traced), 6),
    }
    results = run_policies(traced, policies)
    table = summarize(traced, results)["speedup"]["overall"]
    assert all(table[name] <= table["oracle"] + 1e-9 for name in policies)
    assert all(r.accepted == r.proposed for r in results["oracle"])
    assert sum(r.accepted for r in results["oracle"]) > 0


def test_traces_without_draft_predictions_are_refused(tmp_path: Path, traced: TraceSet) -> None:
    path = tmp_path / "t.json"
    traced.save(path)
    loaded = TraceSet.load(path)
    assert loaded.traces[0].draft_tokens == traced.traces[0].draft_tokens
    assert loaded.costs.draft_feed_seconds == traced.costs.draft_feed_seconds
    for trace in loaded.traces:
        trace.draft_tokens = []
    with pytest.raises(ValueError, match="record-draft"):
        TracedDraft(loaded)


def test_replaying_a_draft_method_on_lookup_only_traces_says_what_to_do(
    tmp_path: Path, traced: TraceSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`replay check` of a bench run with a draft method, on traces without the draft's
    predictions: one line that names record-draft, no traceback; a strategy without the
    wrap_proposer hook is refused by name."""
    import json

    from sage.llm.bench.replay import main, strategy_policy

    lookup_only = TraceSet("tiny", copy.deepcopy(traced.traces), CostTable(list(PASS)))
    for trace in lookup_only.traces:
        trace.draft_tokens, trace.draft_confidence = [], []
    traces_path = tmp_path / "t.json"
    lookup_only.save(traces_path)
    spec = "draft:draft_model_id=some-draft,num_speculative_tokens=3"
    records = [
        {
            "method": method,
            "question_id": trace.question_id,
            "category": trace.category,
            "num_tokens": len(trace.output_ids),
            "seconds": 1.0,
            "token_ids": list(trace.output_ids),
            "metrics": {},
        }
        for trace in lookup_only.traces
        for method in ("plain", spec)
    ]
    bench_path = tmp_path / "bench.json"
    bench_path.write_text(json.dumps({"records": records}))
    with pytest.raises(SystemExit, match="record-draft"):
        main(["check", str(bench_path), str(traces_path)])
    import sage.llm

    class Neither:  # no wrap_proposer hook
        pass

    monkeypatch.setattr(sage.llm, "get_strategy", lambda spec: Neither())
    with pytest.raises(ValueError, match="cannot be replayed over a traced draft"):
        strategy_policy("neither", lambda: TracedDraft(traced))


def test_over_orders_replays_a_learning_policy_in_shuffled_orders(traced: TraceSet) -> None:
    """A policy without memory across requests gets the same figure in every order; one that
    learns is summarised by mean and range, the first order being the given one."""
    from sage.llm.bench.replay import over_orders

    plain = run_policies(traced, {"plain": lambda: None})["plain"]
    fixed = over_orders(traced, lambda: Fixed(TracedDraft(traced), 3), plain, 3)
    assert fixed["overall"]["min"] == pytest.approx(fixed["overall"]["max"])
    dynamic = get_strategy("dynamic-lookahead:max_tokens=6")

    def make() -> Any:
        return dynamic.wrap_proposer(TracedDraft(traced))  # type: ignore[attr-defined]

    spread = over_orders(traced, make, plain, 3)
    given = summarize(traced, run_policies(traced, {"plain": lambda: None, "d": make}))
    for group, row in spread.items():
        assert row["min"] <= row["mean"] <= row["max"]
        assert row["min"] <= given["speedup"][group]["d"] <= row["max"]
