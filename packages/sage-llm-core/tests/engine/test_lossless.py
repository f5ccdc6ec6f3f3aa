"""Greedy speculative decoding must equal plain greedy decoding token for token.

Every test that takes ``model`` runs twice: on PyTorch's default row-major weights and on the
column-major layout the engine's loader uses on the CPU (``engines/transformers/layout.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from sage.llm import get_strategy
from sage.llm.engines.transformers import TransformersEngine
from sage.llm.engines.transformers.layout import use_column_major_weights
from sage.llm.proposer import Proposal
from sage.llm.testing.tiny import (
    noisy_copy,
    reference_greedy,
    repetitive_prompt,
    tiny_device,
    tiny_llama,
)
from sage_llm_strategy_draft.proposer import DraftModelProposer
from sage_llm_strategy_ngram.proposer import NgramProposer

MAX_NEW = 48


@pytest.fixture(scope="module", params=["row", "column"])
def model(request: pytest.FixtureRequest, target: Any) -> Any:
    if request.param == "row":
        return target
    if tiny_device() != "cpu":
        pytest.skip("the column-major layout is a CPU layout (layout.py leaves CUDA weights alone)")
    model = copy.deepcopy(target)
    assert use_column_major_weights(model) > 0
    return model


@pytest.fixture(scope="module")
def near_draft(model: Any) -> Any:
    """The target with noise on its weights: agrees often but not always (real rejections)."""
    return noisy_copy(model, 0.05, seed=7)


@pytest.fixture(scope="module")
def engine(model: Any) -> TransformersEngine:
    return TransformersEngine(model)


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    return [repetitive_prompt(24, seed=s) for s in range(3)]


@pytest.fixture(scope="module")
def references(model: Any, prompts: list[list[int]]) -> list[list[int]]:
    return [reference_greedy(model, p, MAX_NEW) for p in prompts]


def test_plain_decoding_equals_model_generate(
    engine: TransformersEngine, prompts: list[list[int]], references: list[list[int]]
) -> None:
    for prompt, ref in zip(prompts, references, strict=True):
        result = engine.generate(prompt, max_tokens=MAX_NEW)
        assert result.token_ids == ref
        assert result.finish_reason == "length"
        assert result.metrics.num_drafts == 0
        assert result.metrics.num_generated_tokens == MAX_NEW
        # every step is a plain step, so all verify time is plain-step time
        assert result.metrics.plain_verify_time_s == result.metrics.verify_time_s > 0


@pytest.mark.parametrize("k", range(1, 9))
def test_ngram_greedy_is_lossless(
    engine: TransformersEngine, prompts: list[list[int]], references: list[list[int]], k: int
) -> None:
    accepted = 0
    for prompt, ref in zip(prompts, references, strict=True):
        result = engine.generate(prompt, proposer=NgramProposer(k, 3), max_tokens=MAX_NEW)
        assert result.token_ids == ref
        m = result.metrics
        assert m.num_draft_tokens <= k * m.num_drafts
        accepted += m.num_accepted_tokens
        # plain steps (no n-gram found) are timed apart: a part of the verify time
        assert (m.plain_verify_time_s > 0) == (m.num_plain_steps > 0)
        assert m.plain_verify_time_s < m.verify_time_s
    assert accepted > 0, "the repeated prompt should let prompt lookup get tokens accepted"


@pytest.mark.parametrize("k", range(1, 9))
def test_draft_greedy_is_lossless(
    engine: TransformersEngine,
    near_draft: Any,
    prompts: list[list[int]],
    references: list[list[int]],
    k: int,
) -> None:
    proposer = DraftModelProposer(near_draft, k)
    rejected = accepted = 0
    for prompt, ref in zip(prompts, references, strict=True):
        result = engine.generate(prompt, proposer=proposer, max_tokens=MAX_NEW)
        assert result.token_ids == ref
        m = result.metrics
        accepted += m.num_accepted_tokens
        rejected += m.num_draft_tokens - m.num_accepted_tokens
    assert accepted > 0
    if k > 1:
        assert rejected > 0, "the noisy draft should also be rejected sometimes"


def test_unrelated_draft_is_lossless(
    engine: TransformersEngine, draft: Any, prompts: list[list[int]], references: list[list[int]]
) -> None:
    proposer = DraftModelProposer(draft, 4)
    for prompt, ref in zip(prompts, references, strict=True):
        assert engine.generate(prompt, proposer=proposer, max_tokens=MAX_NEW).token_ids == ref


@pytest.mark.parametrize(
    "spec",
    [
        "ngram:n=3,num_speculative_tokens=4,prompt_lookup_min=1",
        "dynamic-lookahead:min_tokens=1,max_tokens=6,prompt_lookup_min=1",
    ],
)
def test_strategies_by_name_are_lossless(
    engine: TransformersEngine, prompts: list[list[int]], references: list[list[int]], spec: str
) -> None:
    for prompt, ref in zip(prompts, references, strict=True):
        result = engine.generate(prompt, strategy=spec, max_tokens=MAX_NEW)
        assert result.token_ids == ref
        assert result.metrics.num_drafts > 0


def test_dynamic_proposes_up_to_max_tokens(engine: TransformersEngine) -> None:
    strategy = get_strategy("dynamic-lookahead", min_tokens=0, max_tokens=7)
    proposer: Any = engine.make_proposer(strategy, engine_sampling())
    assert isinstance(proposer.inner, NgramProposer)  # n-gram lookup under the controller
    assert proposer.inner.num_speculative_tokens == 7
    assert (proposer.controller.min_tokens, proposer.controller.max_tokens) == (0, 7)


def engine_sampling() -> Any:
    from sage.llm.engines.transformers import SamplingParams

    return SamplingParams()


def test_prompt_shorter_than_the_ngram(engine: TransformersEngine, model: Any) -> None:
    for prompt in ([5], [5, 9], [5, 9, 5]):
        ref = reference_greedy(model, prompt, 24)
        result = engine.generate(prompt, proposer=NgramProposer(4, 5, 2), max_tokens=24)
        assert result.token_ids == ref


def test_max_tokens_is_exact_with_long_drafts(
    engine: TransformersEngine, prompts: list[list[int]], references: list[list[int]]
) -> None:
    for max_tokens in (1, 2, 3, 7):
        result = engine.generate(prompts[0], proposer=NgramProposer(8, 3), max_tokens=max_tokens)
        assert result.token_ids == references[0][:max_tokens]
        assert result.finish_reason == "length"


class OracleProposer:
    """Proposes the true continuation (beyond EOS too), to force EOS inside accepted drafts."""

    def __init__(self, prompt: Sequence[int], continuation: Sequence[int], k: int) -> None:
        self.full = [*prompt, *continuation]
        self.k = k
        self.proposed: list[list[int]] = []

    def start(self, prompt_ids: Sequence[int]) -> None:
        self.proposed = []

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        n = len(context_ids)
        tokens = self.full[n : n + min(self.k, max_tokens)]
        self.proposed.append(tokens)
        return Proposal(tokens)

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        pass


def test_eos_inside_an_accepted_draft_stops_generation(target: Any) -> None:
    prompt = repetitive_prompt(16, seed=11)
    free_run = reference_greedy(target, prompt, 40)
    # The first draft (k=8) covers generated positions 1..8: put the EOS in its middle.
    stop_at = next(j for j in range(2, 8) if free_run.index(free_run[j]) == j)
    eos = free_run[stop_at]
    model = copy.deepcopy(target)
    model.generation_config.eos_token_id = eos
    engine = TransformersEngine(model)
    plain = engine.generate(prompt, max_tokens=40)
    assert plain.token_ids == free_run[: stop_at + 1]
    assert plain.finish_reason == "eos"
    oracle = OracleProposer(prompt, free_run, k=8)
    spec = engine.generate(prompt, proposer=oracle, max_tokens=40)
    assert spec.token_ids == plain.token_ids
    assert spec.finish_reason == "eos"
    assert any(eos in p[:-1] for p in oracle.proposed), "a draft should run past the EOS"
    ngram = engine.generate(prompt, proposer=NgramProposer(8, 2), max_tokens=40)
    assert ngram.token_ids == plain.token_ids


def test_proposals_longer_than_allowed_are_cut(engine: TransformersEngine) -> None:
    class Greedy:
        def start(self, prompt_ids: Sequence[int]) -> None: ...

        def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
            return Proposal([1] * (max_tokens + 5))  # ignores the limit on purpose

        def on_verified(self, num_proposed: int, num_accepted: int) -> None: ...

    prompt = repetitive_prompt(8, seed=3)
    result = engine.generate(prompt, proposer=Greedy(), max_tokens=10)
    assert len(result.token_ids) == 10


def test_run_metrics_accumulate(target: Any) -> None:
    engine = TransformersEngine(target)
    prompt = repetitive_prompt(24, seed=0)
    a = engine.generate(prompt, proposer=NgramProposer(3, 3), max_tokens=16)
    b = engine.generate(prompt, proposer=NgramProposer(3, 3), max_tokens=16)
    run = engine.run_metrics
    assert run.num_generated_tokens == 32
    assert run.num_drafts == a.metrics.num_drafts + b.metrics.num_drafts
    assert run.num_accepted_tokens == a.metrics.num_accepted_tokens + b.metrics.num_accepted_tokens


def test_other_vocab_size_model_runs(draft: Any) -> None:
    """Nothing in the loop assumes the test vocabulary size."""
    model = tiny_llama(300, seed=5)
    prompt = repetitive_prompt(20, seed=2, vocab_size=300)
    ref = reference_greedy(model, prompt, 20)
    assert (
        TransformersEngine(model)
        .generate(prompt, proposer=NgramProposer(5, 2), max_tokens=20)
        .token_ids
        == ref
    )
