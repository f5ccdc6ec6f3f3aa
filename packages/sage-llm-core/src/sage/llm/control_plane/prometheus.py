"""Prometheus exposition of a manager's metrics (``GET /metrics``).

Each manager gets its own ``CollectorRegistry`` holding one custom collector that reads the
engines' statistics at scrape time: the numbers exist once (in :mod:`.stats`), several
managers in one process do not collide, and nothing is registered in the global registry.
Needs ``prometheus-client`` (``pip install 'sage-llm-core[serve]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sage.llm.control_plane.stats import QUANTILES

if TYPE_CHECKING:
    from sage.llm.control_plane.manager import ControlPlaneManager

PREFIX = "sage_llm"


def registry_for(manager: ControlPlaneManager) -> Any:
    try:
        from prometheus_client import CollectorRegistry
    except ImportError as exc:
        raise ImportError(
            "Prometheus metrics need prometheus-client: pip install 'sage-llm-core[serve]'."
        ) from exc
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(manager))
    return registry


def exposition(registry: Any) -> bytes:
    from prometheus_client import generate_latest

    text: bytes = generate_latest(registry)
    return text


class _Collector:
    def __init__(self, manager: ControlPlaneManager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        def gauge(name: str, doc: str, labels: list[str]) -> Any:
            return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)

        def counter(name: str, doc: str, labels: list[str]) -> Any:
            return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)

        base = ["engine_id", "model"]
        state = gauge("engine_ready", "1 when the engine takes requests.", [*base, "state"])
        queue = gauge("queue_depth", "Requests waiting.", base)
        running = gauge("running_requests", "Requests running (batch size).", base)
        outcomes = counter("requests", "Finished or rejected requests.", [*base, "outcome"])
        spec_on = counter("speculative_seconds", "Generation time with speculation on.", base)
        restarts = counter("engine_restarts", "Restarts after failures.", base)
        per = [*base, "strategy"]
        requests = counter("strategy_requests", "Completed requests per strategy.", per)
        tokens = counter("generated_tokens", "Generated tokens per strategy.", per)
        busy = counter("generation_seconds", "Generation time per strategy.", per)
        drafts = counter("spec_decode_num_drafts", "Draft steps.", per)
        draft_tokens = counter("spec_decode_num_draft_tokens", "Proposed tokens.", per)
        accepted = counter("spec_decode_num_accepted_tokens", "Accepted tokens.", per)
        rate = gauge("tokens_per_second", "Generated tokens / generation time.", per)
        acceptance = gauge("acceptance_rate", "Accepted / proposed draft tokens.", per)
        mean_len = gauge("mean_accepted_length", "1 + accepted / drafts.", per)
        latency = gauge(
            "latency_seconds", "Recent latency percentiles.", [*base, "kind", "quantile"]
        )
        for engine in self.manager.engines().values():
            labels = [engine.engine_id, engine.model_name]
            snap = engine.stats.snapshot()
            state.add_metric(
                [*labels, engine.state.value], 1.0 if engine.state.value == "ready" else 0.0
            )
            queue.add_metric(labels, engine.queue_depth)
            running.add_metric(labels, engine.running)
            for outcome, count in snap["requests"].items():
                outcomes.add_metric([*labels, outcome], count)
            spec_on.add_metric(labels, snap["speculative_time_s"])
            restarts.add_metric(labels, engine.restarts)
            for name, s in snap["by_strategy"].items():
                values = [*labels, name]
                requests.add_metric(values, s["requests"])
                tokens.add_metric(values, s["generated_tokens"])
                busy.add_metric(values, s["busy_s"])
                drafts.add_metric(values, s["num_drafts"])
                draft_tokens.add_metric(values, s["num_draft_tokens"])
                accepted.add_metric(values, s["num_accepted_tokens"])
                rate.add_metric(values, s["tokens_per_second"])
                acceptance.add_metric(values, s["acceptance_rate"])
                mean_len.add_metric(values, s["mean_accepted_length"])
            for kind, stats in snap["latency"].items():
                for q in QUANTILES:
                    value = stats[f"p{int(q * 100)}"]
                    if value is not None:
                        latency.add_metric([*labels, kind.removesuffix("_s"), str(q)], value)
        yield from (
            state,
            queue,
            running,
            outcomes,
            spec_on,
            restarts,
            requests,
            tokens,
            busy,
            drafts,
            draft_tokens,
            accepted,
            rate,
            acceptance,
            mean_len,
            latency,
        )
