"""Sampling parameters and the one function that turns logits into a distribution.

Target and draft go through the same :func:`probabilities` so that ``p`` and ``q`` in the
accept/reject rule (:mod:`.verify`) are the distributions that plain sampling would draw from;
that is what makes speculative sampling reproduce plain sampling's output distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sage.llm.engines.transformers.errors import InvalidSamplingParamsError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen. ``temperature == 0`` means greedy (argmax).

    ``top_k`` keeps the ``k`` most likely tokens, ``top_p`` the smallest set whose probability
    reaches ``p`` (nucleus sampling); both are ignored when greedy. ``None`` disables them.
    """

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise InvalidSamplingParamsError(
                f"temperature must be a finite number >= 0 (0 = greedy), got {t!r}."
            )
        k = self.top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise InvalidSamplingParamsError(
                f"top_k must be an integer >= 1, or None to disable it; got {k!r}."
            )
        p = self.top_p
        if p is not None and (
            isinstance(p, bool)
            or not isinstance(p, (int, float))
            or not math.isfinite(p)
            or not 0.0 < p <= 1.0
        ):
            raise InvalidSamplingParamsError(
                f"top_p must be a number in (0, 1], or None to disable it; got {p!r}."
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def probabilities(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Rows of ``logits`` ``[..., vocab]`` -> float32 probabilities after temperature/top-k/top-p.

    Filtering happens on the logits (masked to ``-inf``) before one softmax, the order
    transformers and vLLM use: temperature, then top-k, then top-p.
    """
    import torch

    scores = logits.float()
    if params.temperature != 1.0 and params.temperature > 0:
        scores = scores / params.temperature
    vocab = scores.shape[-1]
    if params.top_k is not None and params.top_k < vocab:
        kth = torch.topk(scores, params.top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p is not None and params.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p; the first always stays.
        drop_sorted = (cumulative - sorted_scores.softmax(dim=-1)) >= params.top_p
        # A top_p below float32's smallest number (1e-300) rounds to 0 and would drop the
        # first token too, leaving no token at all (a NaN distribution).
        drop_sorted[..., 0] = False
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    return scores.softmax(dim=-1)


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token id per row of ``probs`` (a 1-D tensor of ids)."""
    import torch

    return torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).view(-1)
