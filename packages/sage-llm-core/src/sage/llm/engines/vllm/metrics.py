"""Speculative-decoding metrics read from vLLM's own counters.

vLLM keeps Prometheus counters (``llm.get_metrics()``, with ``disable_log_stats=False``) that
only grow over an engine's life; :func:`read_metrics` reads one engine's own. The service
snapshots them before and after each ``generate`` and turns the difference into a
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


@dataclass(frozen=True)
class _Read:
    """One counter series as ``llm.get_metrics()`` gives it (name, labels, value or values)."""

    name: str
    labels: dict[str, str]
    value: float = 0.0
    values: tuple[float, ...] = ()


def read_metrics(llm: Any) -> list[Any]:
    """This engine's counters.

    ``llm.get_metrics()`` reads Prometheus's process-wide registry, and every vLLM engine
    started in a process first unregisters the collectors already there: with several engines
    in one process (the control plane's), only the last one started is still registered, and
    every other engine read zero drafts (``always`` at 0 drafts in the load benchmark while it
    speculated). So the counters are read from the engine's own Prometheus stat logger, where
    the installed vLLM has it; otherwise, from the registry."""
    own = own_counters(llm)
    return own if own is not None else list(llm.get_metrics())


def own_counters(llm: Any) -> list[Any] | None:
    """The counters of ``llm``'s own Prometheus stat logger, or ``None`` where the installed
    vLLM keeps them elsewhere (the ``vllm`` nox session checks the layout of the one CI runs)."""
    manager = getattr(getattr(llm, "llm_engine", None), "logger_manager", None)
    for logger in getattr(manager, "stat_loggers", None) or ():
        spec = getattr(logger, "spec_decoding_prom", None)
        if spec is None or not hasattr(logger, "counter_generation_tokens"):
            continue
        try:
            return _own_counters(logger, spec)
        except AttributeError:
            return None
    return None


def _own_counters(logger: Any, spec: Any) -> list[Any]:
    out: list[Any] = []
    sources = [
        (logger, "counter_prompt_tokens", PROMPT_TOKENS),
        (logger, "counter_generation_tokens", GENERATION_TOKENS),
        (spec, "counter_spec_decode_num_drafts", NUM_DRAFTS),
        (spec, "counter_spec_decode_num_draft_tokens", NUM_DRAFT_TOKENS),
        (spec, "counter_spec_decode_num_accepted_tokens", NUM_ACCEPTED_TOKENS),
    ]
    for owner, attribute, name in sources:
        if not hasattr(owner, attribute) and owner is spec:
            continue  # speculation not configured: vLLM creates no such counters
        for child in getattr(owner, attribute).values():
            out.append(_Read(name, _labels(child), value=child._value.get()))
    for children in getattr(spec, "counter_spec_decode_num_accepted_tokens_per_pos", {}).values():
        if children:
            labels = {k: v for k, v in _labels(children[0]).items() if k != "position"}
            values = tuple(child._value.get() for child in children)
            out.append(_Read(ACCEPTED_PER_POSITION, labels, values=values))
    return out


def _labels(child: Any) -> dict[str, str]:
    return dict(zip(child._labelnames, child._labelvalues, strict=False))


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
