"""Fixtures: a fake engine with the reference engine's face, so bench tests need no torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from sage.llm.metrics import SpecDecodeMetrics


@dataclass
class FakeResult:
    token_ids: list[int]
    metrics: SpecDecodeMetrics = field(default_factory=SpecDecodeMetrics)


class FakeEngine:
    """Greedy 'model': the next token is a fixed function of the previous one.

    A strategy spec containing ``k=7`` is 'buggy': its last token differs from plain greedy.
    """

    device = "cpu"
    dtype = "float32"
    eos_token_ids = frozenset({0})
    model: Any = None

    def __init__(self) -> None:
        self.calls: list[str | None] = []

    def encode_prompt(self, prompt: str | Sequence[int], *, chat: bool | None = None) -> list[int]:
        return [ord(c) % 40 + 1 for c in str(prompt)][:24]

    def generate(
        self, prompt: Sequence[int], *, strategy: Any = None, max_tokens: int = 16
    ) -> FakeResult:
        if strategy is not None and not isinstance(strategy, str):  # a resolved strategy
            strategy = strategy.to_string()
        self.calls.append(strategy)
        last, out = prompt[-1], []
        for _ in range(max_tokens):
            last = (last * 7 + 3) % 41 + 1
            out.append(last)
        metrics = SpecDecodeMetrics(num_generated_tokens=len(out))
        if strategy is not None:
            metrics.record_step(4, 3)
            metrics.record_step(4, 1)
            if "k=7" in strategy:
                out[-1] += 1
        return FakeResult(out, metrics)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()
