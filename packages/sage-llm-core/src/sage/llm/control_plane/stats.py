"""Per-engine counters and latency samples, read by Python callers, ``/status`` and Prometheus.

Counters are split by the strategy that ran (``"none"`` when speculation was off for a
request), so one engine's numbers show what speculation gained on the requests that used it.
Latencies keep the last :data:`WINDOW` samples: percentiles describe recent behaviour and
memory stays bounded however long the server runs.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sage.llm.metrics import SpecDecodeMetrics

WINDOW = 2048
QUANTILES = (0.5, 0.9, 0.99)
OUTCOMES = ("ok", "error", "cancelled", "timeout", "rejected")


def percentile(samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1), ``None`` without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class StrategyStats:
    """Totals of the requests that ran with one strategy (or ``"none"``)."""

    requests: int = 0
    generated_tokens: int = 0
    busy_s: float = 0.0
    """Summed generation wall time of these requests (queueing excluded)."""
    spec: SpecDecodeMetrics = field(default_factory=SpecDecodeMetrics)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "generated_tokens": self.generated_tokens,
            "busy_s": self.busy_s,
            "tokens_per_second": self.generated_tokens / self.busy_s if self.busy_s else 0.0,
            "acceptance_rate": self.spec.acceptance_rate,
            "mean_accepted_length": self.spec.mean_accepted_length,
            "num_drafts": self.spec.num_drafts,
            "num_draft_tokens": self.spec.num_draft_tokens,
            "num_accepted_tokens": self.spec.num_accepted_tokens,
        }


class EngineStats:
    """Thread-safe statistics of one engine (workers write, readers copy)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.created = time.monotonic()
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.by_strategy: dict[str, StrategyStats] = {}
        self.speculative_time_s = 0.0
        self.ttft_s: deque[float] = deque(maxlen=WINDOW)
        self.per_token_s: deque[float] = deque(maxlen=WINDOW)
        self.latency_s: deque[float] = deque(maxlen=WINDOW)
        self.queue_s: deque[float] = deque(maxlen=WINDOW)

    def record_outcome(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1

    def record_completion(
        self,
        strategy: str,
        speculative: bool,
        metrics: SpecDecodeMetrics,
        generation_s: float,
        queued_s: float,
        ttft_s: float | None,
        latency_s: float,
    ) -> None:
        with self._lock:
            self.outcomes["ok"] += 1
            stats = self.by_strategy.setdefault(strategy, StrategyStats())
            stats.requests += 1
            stats.generated_tokens += metrics.num_generated_tokens
            stats.busy_s += generation_s
            stats.spec.merge(metrics)
            if speculative:
                self.speculative_time_s += generation_s
            self.queue_s.append(queued_s)
            self.latency_s.append(latency_s)
            if ttft_s is not None:
                self.ttft_s.append(ttft_s)
                if metrics.num_generated_tokens > 1:
                    after_first = latency_s - ttft_s
                    self.per_token_s.append(after_first / (metrics.num_generated_tokens - 1))

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: counters, per-strategy totals and latency percentiles."""
        with self._lock:
            by_strategy = {name: s.to_json() for name, s in self.by_strategy.items()}
            samples = {
                "ttft_s": list(self.ttft_s),
                "per_token_s": list(self.per_token_s),
                "latency_s": list(self.latency_s),
                "queue_s": list(self.queue_s),
            }
            outcomes = dict(self.outcomes)
            spec_time = self.speculative_time_s
        uptime = time.monotonic() - self.created
        tokens = sum(s["generated_tokens"] for s in by_strategy.values())
        return {
            "requests": outcomes,
            "generated_tokens": tokens,
            "uptime_s": uptime,
            "tokens_per_second": tokens / uptime if uptime > 0 else 0.0,
            "speculative_time_s": spec_time,
            "by_strategy": by_strategy,
            "latency": {
                name: {
                    "count": len(values),
                    **{f"p{int(q * 100)}": percentile(values, q) for q in QUANTILES},
                }
                for name, values in samples.items()
            },
        }
