"""The suffix proposer on a tiny model: the conformance kit, losslessness (greedy token for
token, sampling by chi-square) with the cross-request cache on, and the cache's gain."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sage.llm import get_strategy
from sage.llm.proposer import FinishingProposer
from sage.llm.testing import ProposerConformanceTests
from sage.llm.testing.statistics import chi2_critical, chi_square
from sage_llm_strategy_suffix.proposer import SuffixProposer, arctic_available

VOCAB = 128


class TestSuffixProposerConformance(ProposerConformanceTests):
    """The kit runs the same prompts twice and expects the same drafts: with the cross-request
    cache off, as here, a request's drafts depend on the request alone."""

    strategy_name = "suffix"
    valid_params = {"num_speculative_tokens": 4, "max_cached_requests": 0}


class TestSuffixProposerConformanceArctic(ProposerConformanceTests):
    strategy_name = "suffix"
    valid_params = {"num_speculative_tokens": 4, "max_cached_requests": 0, "backend": "arctic"}

    @pytest.fixture(autouse=True)
    def _needs_arctic(self) -> None:
        if not arctic_available():
            pytest.skip("arctic-inference is not installed (a C++ build; docs/dependencies.md)")


@pytest.fixture(scope="module")
def tiny() -> Any:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from sage.llm.testing.tiny import tiny_llama

    return tiny_llama(VOCAB, seed=0)


def random_prompt(seed: int, length: int = 24) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(3, VOCAB) for _ in range(length)]


def backends() -> list[str]:
    return ["python", "arctic"] if arctic_available() else ["python"]


@pytest.mark.parametrize("backend", backends())
def test_greedy_is_lossless_with_the_cache_on(tiny: Any, backend: str) -> None:
    """Requests that repeat, overlap and differ, through one engine (one shared cache)."""
    from sage.llm.engines.transformers import TransformersEngine
    from sage.llm.testing.tiny import repetitive_prompt

    engine = TransformersEngine(tiny)
    strategy = get_strategy("suffix", num_speculative_tokens=6, backend=backend)
    prompts = [random_prompt(s) for s in range(3)] + [repetitive_prompt(16, seed=4)]
    prompts += [prompts[0], prompts[1][:12] + prompts[0][12:], [5], prompts[3]]
    accepted = 0
    for prompt in prompts:
        plain = engine.generate(prompt, max_tokens=24)
        spec = engine.generate(prompt, strategy=strategy, max_tokens=24)
        assert spec.token_ids == plain.token_ids
        accepted += spec.metrics.num_accepted_tokens
    assert accepted > 0  # the check above compared real proposals


@pytest.mark.parametrize("backend", backends())
def test_a_repeated_request_reuses_the_first_output(tiny: Any, backend: str) -> None:
    """An agent re-sending a request: the second pass proposes the first's output and
    accepts more per step than the first, and more than with the cache off."""
    from sage.llm.engines.transformers import TransformersEngine

    engine = TransformersEngine(tiny)
    prompt = random_prompt(11)
    cached = get_strategy("suffix", num_speculative_tokens=8, backend=backend)
    uncached = get_strategy(
        "suffix", num_speculative_tokens=8, backend=backend, max_cached_requests=0
    )
    first = engine.generate(prompt, strategy=cached, max_tokens=40)
    second = engine.generate(prompt, strategy=cached, max_tokens=40)
    alone = engine.generate(prompt, strategy=uncached, max_tokens=40)
    engine.generate(prompt, strategy=uncached, max_tokens=40)
    alone_again = engine.generate(prompt, strategy=uncached, max_tokens=40)
    assert second.token_ids == first.token_ids == alone_again.token_ids
    assert alone_again.metrics.num_accepted_tokens == alone.metrics.num_accepted_tokens
    assert second.metrics.num_accepted_tokens > first.metrics.num_accepted_tokens
    assert second.metrics.num_steps < alone_again.metrics.num_steps
    assert second.metrics.mean_accepted_length > alone_again.metrics.mean_accepted_length


@pytest.mark.parametrize("backend", backends())
def test_min_match_length_holds_back_one_token_matches(backend: str) -> None:
    """The proposer reads the prompt: after a token that occurred once, a 1-token minimum
    proposes its continuation, a 2-token minimum waits for a second matching token."""
    prompt = [5, 6, 7, 8, 9, 10, 11, 12]
    for minimum, after_one, after_two in ((1, [7], [7, 8]), (2, [], [7, 8])):
        strategy = get_strategy(
            "suffix",
            num_speculative_tokens=4,
            min_match_length=minimum,
            max_spec_factor=1.0,
            backend=backend,
        )
        proposer = strategy.make_proposer(None)  # type: ignore[arg-type]
        proposer.start(prompt)
        assert list(proposer.propose([*prompt, 3, 6], 4).token_ids) == after_one
        assert list(proposer.propose([*prompt, 3, 6, 7, 5, 6], 4).token_ids) == after_two


def test_the_cache_of_earlier_outputs_waits_for_a_longer_match() -> None:
    """A 2-token match proposes from the request's own text but not from an earlier output
    (``cache_min_match_length=3``); a third matching token lets the cache propose."""
    proposer = SuffixProposer(8, max_spec_factor=4.0)
    proposer.start([1])
    proposer.finish([10, 11, 12, 13, 14, 15])
    proposer.start([20, 21, 22, 23])
    assert proposer.propose([20, 21, 22, 23, 9, 20, 21], 8).token_ids == [22, 23, 9, 20, 21]
    assert proposer.propose([20, 21, 22, 23, 9, 20, 21, 5, 10, 11], 8).token_ids == []
    assert proposer.propose([20, 21, 22, 23, 9, 20, 21, 5, 10, 11, 12], 8).token_ids == [
        13,
        14,
        15,
    ]
    eager = SuffixProposer(8, max_spec_factor=4.0, cache_min_match_length=2)
    eager.start([1])
    eager.finish([10, 11, 12, 13, 14, 15])
    eager.start([20, 21, 22, 23])
    assert eager.propose([20, 21, 22, 23, 5, 10, 11], 8).token_ids == [12, 13, 14, 15]


def test_finish_commits_the_whole_output_and_start_commits_what_was_seen() -> None:
    proposer = SuffixProposer(4, max_spec_factor=4.0, min_match_length=1, cache_min_match_length=1)
    assert isinstance(proposer, FinishingProposer)
    proposer.start([1, 2])
    proposer.propose([1, 2, 30, 31], 4)
    proposer.finish([30, 31, 32, 33])  # 32, 33 came after the last propose()
    proposer.start([9])
    assert proposer.propose([9, 31], 4).token_ids == [32, 33]
    # No finish(): the next start() keeps what propose() saw of the output.
    proposer.propose([9, 31, 40, 41, 42], 4)
    proposer.start([7])
    assert proposer.propose([7, 40], 4).token_ids == [41, 42]


def test_a_continuation_from_the_cache_that_is_accepted_stays_cached() -> None:
    proposer = SuffixProposer(
        4, max_spec_factor=4.0, max_cached_requests=2, min_match_length=1, cache_min_match_length=1
    )
    for output in ([10, 11, 12], [20, 21, 22]):
        proposer.start([1])
        proposer.finish(output)
    proposer.start([1])
    assert proposer.propose([1, 10], 4).token_ids == [11, 12]
    proposer.on_verified(2, 2)  # accepted: [10, 11, 12] becomes the most recently used
    proposer.finish([30, 31])  # evicts [20, 21, 22], the least recently used
    proposer.start([1])
    assert proposer.propose([1, 10], 4).token_ids == [11, 12]
    assert proposer.propose([1, 10, 11, 12, 20], 4).token_ids == []


# -- sampling: the target's distribution, with the cache filled by earlier requests ----------

SAMPLES = 1200
SMALL_VOCAB = 6
PROMPT = [1, 2, 3, 1, 2, 4, 1, 2, 0, 5]


def test_sampling_matches_the_target_with_the_cache_on() -> None:
    pytest.importorskip("torch")
    import torch

    from sage.llm.engines.transformers import SamplingParams, TransformersEngine
    from sage.llm.engines.transformers.sampling import probabilities
    from sage.llm.testing.tiny import tiny_llama

    model = tiny_llama(SMALL_VOCAB, seed=21, layers=1, hidden=32)
    sampling = SamplingParams(temperature=1.0, top_k=5)

    def next_probs(context: list[int]) -> Any:
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([context])).logits[0, -1]
        return probabilities(logits, sampling)

    exact: dict[Any, float] = {}
    p1 = next_probs(PROMPT)
    for a in range(SMALL_VOCAB):
        p2 = next_probs([*PROMPT, a])
        for b in range(SMALL_VOCAB):
            exact[(a, b)] = float(p1[a] * p2[b])
    engine = TransformersEngine(model)
    proposer = SuffixProposer(2, max_spec_factor=2.0, min_token_prob=0.0, cache_min_match_length=2)
    counts: dict[Any, int] = {}
    drafts = 0
    for seed in range(SAMPLES):
        result = engine.generate(
            PROMPT, proposer=proposer, max_tokens=3, temperature=1.0, top_k=5, seed=seed
        )
        pair = tuple(result.token_ids[:2])  # the second token is a verification's
        counts[pair] = counts.get(pair, 0) + 1
        drafts += result.metrics.num_drafts
    assert len(proposer.cache) > 0
    assert drafts > SAMPLES // 2
    stat, df = chi_square(counts, exact, SAMPLES)
    assert stat < chi2_critical(df), f"chi2={stat:.1f} with {df} dof"
