"""``sage-llm bench --repeat``: a question's repeats start from the same cache, so the second
run is not proposed from the first run's output."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sage.llm import get_strategy
from sage.llm.bench.methods import PLAIN, Method
from sage.llm.bench.questions import Question
from sage.llm.bench.runner import run_benchmark

VOCAB = 128


@pytest.fixture
def engine() -> Any:
    pytest.importorskip("torch")
    from sage.llm.engines.transformers import TransformersEngine
    from sage.llm.testing.tiny import tiny_llama

    tiny = TransformersEngine(tiny_llama(VOCAB, seed=0))
    rng = random.Random(5)
    prompts = {f"q{i}": [rng.randrange(3, VOCAB) for _ in range(24)] for i in range(2)}
    encode = tiny.encode_prompt

    def by_name(prompt: Any, chat: Any = None) -> list[int]:
        """The bench encodes a question's text: here the text names a fixed prompt."""
        if isinstance(prompt, str):
            return list(prompts.get(prompt, [3, 4, 5, 6]))  # the bench's warm-up: any prompt
        return encode(prompt, chat=chat)

    tiny.encode_prompt = by_name  # type: ignore[method-assign]
    return tiny


def test_restore_puts_the_cache_back(engine: Any) -> None:
    strategy = get_strategy("suffix", num_speculative_tokens=8)
    prompt = engine.encode_prompt("q0")
    alone = engine.generate(prompt, strategy=strategy, max_tokens=24)  # nothing cached yet
    before = engine.snapshot_learning_proposers()
    assert len(before) == 1
    first = engine.generate(prompt, strategy=strategy, max_tokens=24)
    assert first.metrics.num_accepted_tokens > alone.metrics.num_accepted_tokens
    for _ in range(2):  # the snapshot stays usable
        engine.restore_proposers(before)
        again = engine.generate(prompt, strategy=strategy, max_tokens=24)
        assert again.metrics.num_accepted_tokens == first.metrics.num_accepted_tokens
        assert again.metrics.num_steps == first.metrics.num_steps


def test_every_repeat_of_a_question_sees_the_same_cache(engine: Any) -> None:
    seen: list[tuple[str, int]] = []
    generate = engine.generate

    def spy(prompt: Any, **kwargs: Any) -> Any:
        result = generate(prompt, **kwargs)
        if kwargs.get("strategy") is not None:
            seen.append((str(prompt[:3]), result.metrics.num_accepted_tokens))
        return result

    engine.generate = spy
    methods = [Method(PLAIN, "engine", PLAIN), Method("suffix", "engine", "suffix", "suffix")]
    questions = [
        Question("q0", "qa", "q0"),
        Question("q1", "qa", "q1"),
        Question("q0b", "qa", "q0"),
    ]
    records = run_benchmark(engine, methods, questions, max_tokens=24, repeat=2)
    assert all(r.matches_plain for r in records)
    runs = seen[1:]  # after the warm-up
    pairs = [runs[i : i + 2] for i in range(0, len(runs), 2)]
    assert len(pairs) == 3
    for (prompt_a, accepted_a), (prompt_b, accepted_b) in pairs:
        assert (prompt_a, accepted_a) == (prompt_b, accepted_b)
    # the third question repeats the first: the cache of earlier questions still counts
    assert pairs[2][0][1] > pairs[0][0][1]
