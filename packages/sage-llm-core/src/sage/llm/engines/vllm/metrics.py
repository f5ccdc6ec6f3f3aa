"""Speculative-decoding metrics read from vLLM's own counters.

vLLM keeps process-wide Prometheus counters (``llm.get_metrics()``, with
``disable_log_stats=False``) that only grow over an engine's life. The service snapshots them
before and after each ``generate`` and turns the difference into a
:class:`~sage.llm.metrics.SpecDecodeMetrics`, the dataclass the reference engine fills too, so
acceptance rate (``accepted / draft tokens``) and mean accepted length (``1 + accepted /
drafts``) mean the same thing for both engines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sage.llm.metrics import SpecDecodeMetrics

NUM_DRAFTS = "vllm:spec_decode_num_drafts"
NUM_DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens"
NUM_ACCEPTED_TOKENS = "vllm:spec_decode_num_accepted_tokens"
ACCEPTED_PER_POSITION = "vllm:spec_decode_num_accepted_tokens_per_pos"
PROMPT_TOKENS = "vllm:prompt_tokens"
GENERATION_TOKENS = "vllm:generation_tokens"

_COUNTERS = (NUM_DRAFTS, NUM_DRAFT_TOKENS, NUM_ACCEPTED_TOKENS, PROMPT_TOKENS, GENERATION_TOKENS)


@dataclass(frozen=True)
class CounterSnapshot:
    """vLLM's cumulative counters at one moment, summed over label sets (engines)."""

    counters: dict[str, int] = field(default_factory=dict)
    per_position: list[int] = field(default_factory=list)

    @property
    def has_spec_decode(self) -> bool:
        """vLLM registers the speculative counters only when speculation is configured."""
        return NUM_DRAFTS in self.counters


def snapshot(metrics: Iterable[Any], model_name: str | None = None) -> CounterSnapshot:
    """Sum the counters we use from ``llm.get_metrics()`` (objects with name/value/values).

    The counters are process-wide: with several engines in one process (the control plane's),
    ``model_name`` keeps only the series labelled with that engine's ``served_model_name``."""
    counters: dict[str, int] = {}
    per_position: list[int] = []
    for metric in metrics:
        name = getattr(metric, "name", None)
        labels = getattr(metric, "labels", None) or {}
        if model_name is not None and labels.get("model_name") != model_name:
            continue
        if name in _COUNTERS:
            counters[name] = counters.get(name, 0) + int(getattr(metric, "value", 0))
        elif name == ACCEPTED_PER_POSITION:
            values = [int(v) for v in getattr(metric, "values", [])]
            per_position = _add(per_position, values)
    return CounterSnapshot(counters, per_position)


def spec_decode_delta(
    before: CounterSnapshot,
    after: CounterSnapshot,
    *,
    num_generated_tokens: int,
    wall_time_s: float,
) -> SpecDecodeMetrics:
    """What happened between two snapshots, as the shared metrics dataclass.

    vLLM does not report draft or verify time or the number of target forward passes, so
    those fields stay 0 (documented, not guessed).
    """

    def diff(name: str) -> int:
        return after.counters.get(name, 0) - before.counters.get(name, 0)

    per_position = _sub(after.per_position, before.per_position)
    return SpecDecodeMetrics(
        num_drafts=diff(NUM_DRAFTS),
        num_draft_tokens=diff(NUM_DRAFT_TOKENS),
        num_accepted_tokens=diff(NUM_ACCEPTED_TOKENS),
        accepted_per_position=per_position,
        num_generated_tokens=num_generated_tokens,
        wall_time_s=wall_time_s,
    )


def _add(a: list[int], b: list[int]) -> list[int]:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(n)]


def _sub(a: list[int], b: list[int]) -> list[int]:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else 0) - (b[i] if i < len(b) else 0) for i in range(n)]
