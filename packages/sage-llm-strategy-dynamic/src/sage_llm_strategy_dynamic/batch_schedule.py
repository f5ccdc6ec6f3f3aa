"""vLLM's static depth-by-batch-size table for ``mode="static"`` (read once at start)."""

from __future__ import annotations

from typing import Final

BATCH_BAND_GROWTH: Final = 4
"""Batch-size bands grow 4x (1-4, 5-16, 17-64, ...) and the deepest k halves per band: a
busier engine has less idle compute to spend on rejected drafts. This is vLLM's
``num_speculative_tokens_per_batch_size`` in ``mode="static"``; in ``mode="adaptive"`` the
proposer switches by measured throughput instead (:mod:`~sage_llm_strategy_dynamic.load_gate`)."""


def batch_size_schedule(min_tokens: int, max_tokens: int) -> list[list[int]]:
    """Rows ``[first, last, k]``: from batch size 1, never overlapping, k halving per band from
    ``max_tokens`` down to ``min_tokens``; the last row's k holds for every larger batch."""
    rows: list[list[int]] = []
    first, last, k = 1, BATCH_BAND_GROWTH, max_tokens
    while True:
        rows.append([first, last, k])
        if k <= min_tokens:
            return rows
        k = max(min_tokens, k // 2)
        first, last = last + 1, last * BATCH_BAND_GROWTH
