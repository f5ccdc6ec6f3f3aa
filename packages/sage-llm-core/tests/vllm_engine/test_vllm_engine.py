"""End to end on a real vLLM (CPU): every strategy starts an engine on a tiny model built here,
generates, and reads back speculative metrics; greedy output with speculation equals greedy
output without it.

One engine per configuration, started once per module (a parametrized module fixture) and shut
down before the next starts, so the whole file costs one engine start per row of ``RUNS`` (about
25 s each on the CI machine): one row per way vLLM is driven. The draft-model method runs with
the target as its own draft (acceptance known exactly); vLLM's acceptance of a separate draft
model is checked without starting an engine (test_vllm_config.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_vllm_checks import LookupStrategy
from vllm_testutils import CPU_ENGINE_ARGS, needs_builtins, needs_vllm

from sage.llm import SpeculativeStrategy, get_strategy, list_strategies
from sage.llm.engines.vllm import generate_cli
from sage.llm.engines.vllm.errors import ServiceStateError
from sage.llm.engines.vllm.metrics import GENERATION_TOKENS, own_counters, snapshot
from sage.llm.engines.vllm.service import GenerationResult, VLLMService, VLLMServiceConfig
from sage.llm.known import KNOWN_STRATEGIES

pytestmark = [needs_vllm, needs_builtins, pytest.mark.slow, pytest.mark.vllm]

PROMPTS = [
    "abc abc abc abc abc abc",
    "hello world, hello world, hello",
    "1 2 3 4 1 2 3 4 1 2 3",
]
MAX_TOKENS = 32
BUILTIN_DISTRIBUTIONS = {known.distribution for known in KNOWN_STRATEGIES}
RUNS = [
    "ngram",
    "draft-self",
    "dynamic",
    "dynamic-static",
    "custom-class",
    "example-plugin",
]
ADAPTIVE = {"dynamic"}
"""Runs whose k is chosen from measured step times: their draft counts differ run to run."""


@dataclass
class Run:
    name: str
    strategy: SpeculativeStrategy | None
    engine_args: dict[str, Any]
    first: GenerationResult
    second: GenerationResult
    sampled: GenerationResult | None = None
    drafter: list[tuple[dict[int, int], int, dict[bool, int]]] | None = None  # adaptive runs


def drafter_stats(service: VLLMService) -> list[tuple[dict[int, int], int, dict[bool, int]]]:
    """The adaptive proposer's own counts, read inside vLLM's workers (collective_rpc)."""
    return service._llm.collective_rpc(  # type: ignore[no-any-return]
        lambda worker: (
            dict(worker.model_runner.drafter.draft_lengths),
            worker.model_runner.drafter.learned_accepted,
            dict(worker.model_runner.drafter.gate.steps),
        )
    )


def start_and_generate(model: Path, strategy: SpeculativeStrategy | None, name: str) -> Run:
    """The seed's sequence: config, setup(), generate, cleanup()."""
    config = VLLMServiceConfig(
        model_id=str(model),
        auto_download=True,  # a local path: nothing is downloaded
        speculative_strategy=strategy,
        engine_args=dict(CPU_ENGINE_ARGS),
    )
    service = VLLMService(config)
    with pytest.MonkeyPatch.context() as patch:
        if name in ADAPTIVE:  # collective_rpc sends drafter_stats' function to the engine
            patch.setenv("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
        service.setup()
        return generate_all(service, strategy, name)


def generate_all(service: VLLMService, strategy: SpeculativeStrategy | None, name: str) -> Run:
    try:
        assert service.engine_args is not None
        first = service.generate(PROMPTS, max_tokens=MAX_TOKENS, temperature=0.0)
        second = service.generate(PROMPTS, {"max_tokens": MAX_TOKENS, "temperature": 0.0})
        sampled = service.generate(PROMPTS[0], max_tokens=MAX_TOKENS, temperature=0.8, seed=7)
        drafter = drafter_stats(service) if name in ADAPTIVE else None
        check_own_counters(service)
        return Run(name, strategy, service.engine_args, first, second, sampled, drafter)
    finally:
        service.cleanup()
        with pytest.raises(ServiceStateError, match="shut down"):
            service.generate("again")


def check_own_counters(service: VLLMService) -> None:
    """The counters read from the engine's own stat logger (what the control plane reads, as
    vLLM's process-wide registry holds only the last engine started) are the registry's, here
    where this engine is the only one."""
    own = own_counters(service._llm)
    assert own is not None, "vLLM's stat logger layout changed: metrics.own_counters"
    registry = snapshot(service._llm.get_metrics())
    assert snapshot(own) == registry
    assert registry.counters[GENERATION_TOKENS] > 0


def example_plugin() -> SpeculativeStrategy:
    """The third-party example plugin from examples/, when it is installed."""
    for info in list_strategies():
        if info.status == "ok" and info.distribution not in BUILTIN_DISTRIBUTIONS:
            return get_strategy(info.name)
    pytest.skip("no third-party strategy plugin installed (nox -s vllm installs examples/)")


def strategy_for(name: str, model: Path) -> SpeculativeStrategy:
    if name == "ngram":
        return get_strategy("ngram", n=3, num_speculative_tokens=3, prompt_lookup_min=1)
    if name == "draft-self":
        return get_strategy("draft", draft_model_id=str(model), num_speculative_tokens=2)
    if name == "dynamic":
        return get_strategy("dynamic", min_tokens=0, max_tokens=4, prompt_lookup_max=3)
    if name == "dynamic-static":
        return get_strategy(
            "dynamic", mode="static", min_tokens=0, max_tokens=4, prompt_lookup_max=3
        )
    if name == "custom-class":
        return LookupStrategy(k=3)
    return example_plugin()


@pytest.fixture(scope="module")
def baseline(tiny_model: Path) -> Run:
    """Plain decoding, through generate_cli (what `sage-llm generate --engine vllm` calls)."""
    result = generate_cli(
        model=str(tiny_model),
        prompts=PROMPTS,
        strategy=None,
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        engine_args=CPU_ENGINE_ARGS,
    )
    return Run("baseline", None, {}, result, result)


@pytest.fixture(scope="module", params=RUNS)
def run(request: pytest.FixtureRequest, tiny_model: Path) -> Run:
    strategy = strategy_for(request.param, tiny_model)
    return start_and_generate(tiny_model, strategy, request.param)


def test_baseline_has_no_speculation(baseline: Run) -> None:
    assert baseline.strategy is None
    metrics = baseline.first.metrics
    assert (metrics.num_drafts, metrics.num_draft_tokens, metrics.num_accepted_tokens) == (0, 0, 0)
    assert metrics.num_generated_tokens == sum(len(t) for t in baseline.first.batch_token_ids) > 0
    assert baseline.first.prompt_tokens > 0


def test_greedy_output_equals_plain_decoding(run: Run, baseline: Run) -> None:
    assert run.first.batch_token_ids == baseline.first.batch_token_ids
    assert run.first.texts == baseline.first.texts
    assert run.second.batch_token_ids == baseline.first.batch_token_ids
    assert run.first.token_ids == run.first.batch_token_ids[0]
    assert run.first.text == run.first.texts[0]


def test_speculative_metrics_are_read_back(run: Run) -> None:
    m = run.first.metrics
    k = run.engine_args["speculative_config"]["num_speculative_tokens"]
    assert m.num_drafts > 0
    assert m.num_drafts <= m.num_draft_tokens <= k * m.num_drafts
    assert 0 <= m.num_accepted_tokens <= m.num_draft_tokens
    assert len(m.accepted_per_position) == k
    assert sum(m.accepted_per_position) == m.num_accepted_tokens
    per_pos = m.accepted_per_position
    assert all(a >= b for a, b in itertools.pairwise(per_pos))
    assert m.acceptance_rate == m.num_accepted_tokens / m.num_draft_tokens
    assert m.mean_accepted_length == 1 + m.num_accepted_tokens / m.num_drafts
    assert m.num_generated_tokens == sum(len(t) for t in run.first.batch_token_ids)
    assert run.first.usage["completion_tokens"] == m.num_generated_tokens


def test_metrics_are_per_call(run: Run) -> None:
    """Each generate reports its own counters (deltas), not the engine's running totals:
    the same greedy batch twice gives the same numbers twice."""
    if run.name in ADAPTIVE:
        pytest.skip("k follows measured step times: drafts differ between identical calls")
    a, b = run.first.metrics, run.second.metrics
    assert (b.num_drafts, b.num_draft_tokens, b.num_accepted_tokens) == (
        a.num_drafts,
        a.num_draft_tokens,
        a.num_accepted_tokens,
    )


def test_known_acceptance(run: Run) -> None:
    """A draft identical to the target is always accepted; repeated text feeds n-gram lookup."""
    m = run.first.metrics
    if run.name == "draft-self":
        assert m.acceptance_rate == 1.0
        assert m.mean_accepted_length == 3.0
    elif run.name in {"ngram", "dynamic", "dynamic-static", "custom-class"}:
        assert m.num_accepted_tokens > 0


def test_sampling_runs_with_speculation(run: Run) -> None:
    """Random sampling goes through the same engine (vLLM's rejection sampler keeps the
    target distribution; that is vLLM's own, tested code, not re-proven here)."""
    assert run.sampled is not None
    assert len(run.sampled.texts) == 1
    assert 0 < run.sampled.metrics.num_generated_tokens <= MAX_TOKENS
    assert run.sampled.metrics.num_accepted_tokens <= run.sampled.metrics.num_draft_tokens


def test_adaptive_proposer_drafts_are_what_vllm_verified(run: Run) -> None:
    """mode="adaptive": vLLM ran the per-request proposer; it returned drafts of several lengths,
    empty ones included (no match, k = 0, or a step its load gate kept plain), and learned
    acceptances from the committed tokens that vLLM's own counters confirm."""
    if run.name not in ADAPTIVE:
        pytest.skip("only the adaptive custom_class proposer keeps these counts")
    assert run.engine_args["speculative_config"]["method"] == "custom_class"
    assert run.drafter is not None
    assert run.sampled is not None
    [(lengths, learned, gate_steps)] = run.drafter
    assert gate_steps[True] > 0  # the load gate decided the steps, speculation among them
    calls = [run.first.metrics, run.second.metrics, run.sampled.metrics]
    vllm_drafted = sum(m.num_draft_tokens for m in calls)
    vllm_accepted = sum(m.num_accepted_tokens for m in calls)
    assert lengths.get(0, 0) > 0  # empty drafts
    assert len([n for n in lengths if n > 0]) > 1  # drafts of different lengths
    assert max(lengths) <= run.engine_args["speculative_config"]["num_speculative_tokens"]
    # Every token vLLM verified came from this proposer; some of a request's last draft may be
    # cut by vLLM or judged after the request ended, so the proposer's counts bound vLLM's.
    assert sum(n * c for n, c in lengths.items()) >= vllm_drafted > 0
    assert 0 < learned <= vllm_accepted
