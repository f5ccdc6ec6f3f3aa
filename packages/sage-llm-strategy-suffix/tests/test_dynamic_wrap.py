"""dynamic-lookahead around the suffix proposer, through the proposer contract only."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sage.llm import get_strategy
from sage.llm.proposer import FinishingProposer
from sage_llm_strategy_suffix.proposer import SuffixProposer

pytest.importorskip("sage_llm_strategy_dynamic", reason="sage-llm-strategy-dynamic missing")
VOCAB = 128


@pytest.fixture(scope="module")
def engine() -> Any:
    pytest.importorskip("torch")
    from sage.llm.engines.transformers import TransformersEngine
    from sage.llm.testing.tiny import tiny_llama

    return TransformersEngine(tiny_llama(VOCAB, seed=0))


def test_dynamic_around_suffix_is_lossless_and_keeps_the_cross_request_cache(
    engine: Any,
) -> None:
    """The controller picks k each step; the suffix cache still hears each request's end
    (dynamic hands ``finish`` on), so a repeated request's opening finds the rest of its
    earlier output (asked of the inner proposer: the controller's k depends on timing)."""
    inner = SuffixProposer(8)
    wrapped = get_strategy("dynamic-lookahead:max_tokens=8").wrap_proposer(inner, cheap=True)  # type: ignore[attr-defined]
    assert isinstance(wrapped, FinishingProposer)
    rng = random.Random(3)
    prompts = [[rng.randrange(3, VOCAB) for _ in range(24)] for _ in range(3)]
    for prompt in [*prompts, *prompts]:
        plain = engine.generate(prompt, max_tokens=32)
        spec = engine.generate(prompt, proposer=wrapped, max_tokens=32)
        assert spec.token_ids == plain.token_ids
    assert len(inner.cache) == 6
    output = plain.token_ids
    inner.start(prompt)
    assert inner.propose([*prompt, *output[:3]], 8).token_ids == output[3:9]
