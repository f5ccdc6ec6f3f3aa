"""Per-category numbers from benchmark records.

Speed is total generated tokens over total seconds (prefill included) per category and method;
a speedup is the ratio of two such rates measured in the same run ("vs plain": against plain
decoding on the same engine, ``vllm:plain`` for vLLM rows). Acceptance and mean accepted
length come from the engine's merged :class:`~sage.llm.metrics.SpecDecodeMetrics` (vLLM's
definitions); transformers does not report them, so its rows leave them empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sage.llm.bench.methods import PLAIN, Method, peer_of
from sage.llm.bench.runner import Record
from sage.llm.metrics import SpecDecodeMetrics

ALL = "all"


@dataclass
class Row:
    category: str
    method: str
    peer: str | None
    questions: int
    tokens: int
    seconds: float
    tokens_per_second: float
    speedup_vs_plain: float | None
    speedup_vs_peer: float | None
    mean_accepted_length: float | None
    acceptance_rate: float | None
    mismatches: int
    checked: bool
    """True for our methods in float32: a mismatch with plain greedy is a failure."""
    first_mismatch: int | None = None
    """Smallest index of a generated token that differs from plain greedy (None: identical)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _metrics(records: Sequence[Record]) -> SpecDecodeMetrics | None:
    if not records or records[0].metrics is None:
        return None
    total = SpecDecodeMetrics()
    for r in records:
        data = dict(r.metrics or {})
        known = {k: data[k] for k in SpecDecodeMetrics.__dataclass_fields__ if k in data}
        total.merge(SpecDecodeMetrics(**known))
    return total


def summarize(
    records: Sequence[Record], methods: Sequence[Method], *, exact: bool = True
) -> list[Row]:
    """One row per (category, method), then the ``all`` rows over every category.

    ``exact=False`` (a low-precision dtype, see :func:`~sage.llm.bench.methods.exact_dtype`)
    reports our methods' differences from plain greedy without counting them as failures.
    """
    categories = list(dict.fromkeys(r.category for r in records))
    rows: list[Row] = []
    for category in [*categories, ALL]:
        chosen = [r for r in records if category in (ALL, r.category)]
        rate: dict[str, float] = {}
        for method in methods:
            mine = [r for r in chosen if r.method == method.name]
            tokens = sum(r.num_tokens for r in mine)
            seconds = sum(r.seconds for r in mine)
            rate[method.name] = tokens / seconds if seconds > 0 else 0.0
        for method in methods:
            mine = [r for r in chosen if r.method == method.name]
            if not mine:
                continue
            peer = peer_of(method, methods)
            metrics = _metrics(mine) if method.family != PLAIN else None
            speed = rate[method.name]
            base = rate.get(method.baseline, 0.0)
            rows.append(
                Row(
                    category=category,
                    method=method.name,
                    peer=peer.name if peer else None,
                    questions=len(mine),
                    tokens=sum(r.num_tokens for r in mine),
                    seconds=sum(r.seconds for r in mine),
                    tokens_per_second=speed,
                    speedup_vs_plain=speed / base if base else None,
                    speedup_vs_peer=(
                        speed / rate[peer.name] if peer and rate.get(peer.name) else None
                    ),
                    mean_accepted_length=metrics.mean_accepted_length if metrics else None,
                    acceptance_rate=metrics.acceptance_rate if metrics else None,
                    mismatches=sum(not r.matches_plain for r in mine),
                    checked=method.ours and exact,
                    first_mismatch=min(
                        (r.first_mismatch for r in mine if r.first_mismatch is not None),
                        default=None,
                    ),
                )
            )
    return rows


def failures(rows: Sequence[Row]) -> list[Row]:
    """Our methods whose output differed from plain greedy somewhere (the ``all`` rows)."""
    return [r for r in rows if r.category == ALL and r.checked and r.mismatches]
