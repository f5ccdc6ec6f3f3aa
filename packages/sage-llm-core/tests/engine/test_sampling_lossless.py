"""End to end: speculative sampling through the engine draws from the target's distribution.

A tiny model with a six-token vocabulary generates three tokens from many seeds; the empirical
joint distribution of the first two tokens and the marginal of the third (every one of them
produced by a verification step when a proposal was made) is compared with the exact target
distribution computed from the model's own probabilities, with a chi-square bound.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sage.llm.engines.transformers import SamplingParams, TransformersEngine
from sage.llm.engines.transformers.sampling import probabilities
from sage.llm.testing.statistics import chi2_critical, chi_square
from sage.llm.testing.tiny import noisy_copy, tiny_llama
from sage_llm_strategy_draft.proposer import DraftModelProposer
from sage_llm_strategy_ngram.proposer import NgramProposer

VOCAB = 6
SAMPLES = 1500
PROMPT = [1, 2, 3, 1, 2, 4, 1, 2, 0, 5]  # rich in n-grams: prompt lookup usually proposes
SAMPLING = SamplingParams(temperature=1.0, top_k=5)


@pytest.fixture(scope="module")
def model() -> Any:
    return tiny_llama(VOCAB, seed=21, layers=1, hidden=32)


def next_probs(model: Any, context: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([context], device=model.device)).logits[0, -1]
    return probabilities(logits, SAMPLING)


@pytest.fixture(scope="module")
def exact(model: Any) -> tuple[dict[Any, float], dict[Any, float]]:
    """Exact P(t1, t2) and P(t3) under the target."""
    pair: dict[Any, float] = {}
    third: dict[Any, float] = dict.fromkeys(range(VOCAB), 0.0)
    p1 = next_probs(model, PROMPT)
    for a in range(VOCAB):
        p2 = next_probs(model, [*PROMPT, a])
        for b in range(VOCAB):
            pair[(a, b)] = float(p1[a] * p2[b])
            if pair[(a, b)] == 0.0:
                continue
            p3 = next_probs(model, [*PROMPT, a, b])
            for c in range(VOCAB):
                third[c] += pair[(a, b)] * float(p3[c])
    return pair, third


def run(engine: TransformersEngine, proposer: Any) -> tuple[dict[Any, int], dict[Any, int], int]:
    pairs: dict[Any, int] = {}
    thirds: dict[Any, int] = {}
    drafts = 0
    for seed in range(SAMPLES):
        result = engine.generate(
            PROMPT,
            proposer=proposer,
            max_tokens=3,
            temperature=SAMPLING.temperature,
            top_k=SAMPLING.top_k,
            seed=seed,
        )
        a, b, c = result.token_ids
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
        thirds[c] = thirds.get(c, 0) + 1
        drafts += result.metrics.num_drafts
    return pairs, thirds, drafts


def check(exact: tuple[dict[Any, float], dict[Any, float]], pairs: Any, thirds: Any) -> None:
    stat, df = chi_square(pairs, exact[0], SAMPLES)
    assert stat < chi2_critical(df), f"(t1, t2): chi2={stat:.1f} with {df} dof"
    stat, df = chi_square(thirds, exact[1], SAMPLES)
    assert stat < chi2_critical(df), f"t3: chi2={stat:.1f} with {df} dof"


def test_plain_sampling_matches_the_target(model: Any, exact: Any) -> None:
    pairs, thirds, _ = run(TransformersEngine(model), None)
    check(exact, pairs, thirds)


def test_ngram_sampling_matches_the_target(model: Any, exact: Any) -> None:
    pairs, thirds, drafts = run(TransformersEngine(model), NgramProposer(2, 2))
    assert drafts > SAMPLES // 3  # most requests verified a proposal
    check(exact, pairs, thirds)


def test_draft_sampling_matches_the_target(model: Any, exact: Any) -> None:
    proposer = DraftModelProposer(noisy_copy(model, 0.3, seed=0), 2, SAMPLING)
    pairs, thirds, drafts = run(TransformersEngine(model), proposer)
    assert drafts >= SAMPLES
    check(exact, pairs, thirds)


def test_seeded_sampling_is_reproducible(model: Any) -> None:
    engine = TransformersEngine(model)
    runs = [
        engine.generate(
            PROMPT, proposer=NgramProposer(3, 2), max_tokens=12, temperature=0.9, seed=s
        )
        for s in (5, 5, 6)
    ]
    assert runs[0].token_ids == runs[1].token_ids
    assert len(runs[2].token_ids) == 12
