"""Scheduling policies: built-ins, the adaptive rule, and policies from plugins."""

from __future__ import annotations

import pytest

from sage.llm.control_plane import (
    AdaptivePolicy,
    Capabilities,
    Completion,
    ControlPlaneManager,
    Decision,
    LoadView,
    SchedulingPolicy,
    UnknownPolicyError,
)
from sage.llm.control_plane.policies import make_policy
from sage.llm.metrics import SpecDecodeMetrics
from sage.llm.testing.control_plane import ScriptedBackend, ScriptedStrategy

SINGLE = Capabilities(batching=False, switch_per_request=True, switch_k_per_request=True)
BATCHING = Capabilities(batching=True, switch_per_request=False, switch_k_per_request=False)


def view(
    caps: Capabilities = SINGLE, queue: int = 0, running: int = 1, strategy: bool = True
) -> LoadView:
    return LoadView("e", "test", caps, strategy, queue, running)


def finished(speculative: bool, tokens_per_s: float) -> Completion:
    metrics = SpecDecodeMetrics(
        num_generated_tokens=11, wall_time_s=10 / tokens_per_s + 1.0, prefill_time_s=1.0
    )
    return Completion("r", "e", "m", "", [0] * 11, 1, "length", speculative, "x", metrics)


def test_builtin_policies() -> None:
    assert make_policy("always").decide(view()).speculate is True
    assert make_policy("always").decide(view(strategy=False)).speculate is False
    assert make_policy("never").decide(view()).speculate is False
    with pytest.raises(UnknownPolicyError, match="known policies: adaptive, always, never"):
        make_policy("sometimes")


def test_adaptive_measures_both_modes_then_keeps_the_faster_and_probes() -> None:
    policy = AdaptivePolicy(warmup=2, probe_every=5)
    rates = {True: 50.0, False: 20.0}
    choices = []
    for _ in range(15):
        decision = policy.decide(view())
        choices.append(decision.speculate)
        policy.observe("e", finished(decision.speculate, rates[decision.speculate]))
    assert choices[:4] == [True, True, False, False]  # warm-up: two of each
    later = choices[4:]  # decisions 5..15: every 5th probes the slower (plain) mode
    assert [i + 5 for i, c in enumerate(later) if not c] == [5, 10, 15]
    rates = {True: 10.0, False: 40.0}  # acceptance collapsed: plain is faster now
    for _ in range(12):
        decision = policy.decide(view())
        policy.observe("e", finished(decision.speculate, rates[decision.speculate]))
    assert policy.decide(view()).speculate is False


def test_adaptive_turns_speculation_off_on_a_full_batch_only_for_batching_engines() -> None:
    policy = AdaptivePolicy(max_batch=4)
    assert policy.decide(view(BATCHING, queue=1, running=3)).speculate is False
    assert "batch 4 >= 4" in policy.decide(view(BATCHING, queue=1, running=3)).reason
    assert policy.decide(view(BATCHING, queue=0, running=2)).speculate is True
    assert policy.decide(view(SINGLE, queue=30, running=1)).speculate is True


def test_adaptive_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="probe_every >= 2"):
        AdaptivePolicy(probe_every=1)


class OffOnEvenQueues(SchedulingPolicy):
    name = "even-off"

    def decide(self, view: LoadView) -> Decision:
        return Decision(view.queue_depth % 2 == 1, "test policy")


class PolicyPlugin:
    @staticmethod
    def register_scheduling_policies(register: object) -> None:
        register("even-off", OffOnEvenQueues)  # type: ignore[operator]


def test_a_plugin_policy_is_used_by_name_and_its_decisions_are_observed() -> None:
    decisions: list[Decision] = []

    class Observer:
        def on_policy_decision(self, manager: object, engine_id: str, decision: Decision) -> None:
            decisions.append(decision)

    cp = ControlPlaneManager(
        "even-off", plugins=[PolicyPlugin, Observer()], load_entry_points=False
    )
    try:
        eid = cp.start_engine("m", ScriptedStrategy(), engine=ScriptedBackend)
        done = cp.generate(engine_id=eid, prompt="abc")
        assert done.speculative is False
        assert [d.reason for d in decisions] == ["test policy"]
        assert cp.engine_info(eid)["policy"] == "even-off"
    finally:
        cp.shutdown()
