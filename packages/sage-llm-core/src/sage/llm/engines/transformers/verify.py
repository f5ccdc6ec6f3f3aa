"""Where a speculative step is verified: the only place that decides which tokens are kept.

The target model has scored the pending token plus ``k`` proposed tokens in one forward pass,
giving ``k + 1`` rows of logits: row ``i`` is the target's distribution for the position of
proposed token ``i``; the last row is the position after all of them.

Greedy: keep the longest prefix of proposed tokens that equals the target's argmax, then add the
target's argmax at the first mismatch (or after the last token). Every kept token is exactly the
token plain greedy decoding would have produced, so the output is identical token for token.

Sampling (Leviathan et al. 2023, Chen et al. 2023): accept proposed token ``x_i`` with
probability ``min(1, p_i(x_i) / q_i(x_i))``; at the first rejection draw the replacement from the
residual ``norm(max(0, p_i - q_i))``; if all are accepted draw a bonus token from ``p_k``. Each
emitted token is then distributed exactly as ``p`` (the target's distribution after temperature,
top-k and top-p), whatever ``q`` is. A deterministic proposer (n-gram lookup) is the case where
``q_i`` is a point mass on ``x_i``: accept with probability ``p_i(x_i)``, and on rejection draw from
``p_i`` with ``x_i`` removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sage.llm.engines.transformers.sampling import SamplingParams, probabilities, sample

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Verdict:
    """The outcome of one step: how many proposed tokens were kept, and the tokens to commit.

    ``tokens`` is the accepted prefix of the proposal followed by one token chosen by the
    target (the correction at the first rejection, or the bonus token), so it always holds
    ``num_accepted + 1`` ids.
    """

    num_accepted: int
    tokens: list[int]


def verify(
    target_logits: torch.Tensor,
    proposed: Sequence[int],
    draft_probs: torch.Tensor | None,
    params: SamplingParams,
    generator: torch.Generator | None = None,
) -> Verdict:
    """Verify ``proposed`` against ``target_logits`` ``[len(proposed) + 1, vocab]``.

    ``draft_probs`` is ``q`` (``[len(proposed), vocab]``) or ``None`` for a deterministic
    proposer. Greedy ignores ``draft_probs``: acceptance is decided by the argmax alone.
    """
    k = len(proposed)
    if target_logits.shape[0] != k + 1:
        raise ValueError(
            f"verify() needs {k + 1} rows of target logits for {k} proposed tokens, "
            f"got {target_logits.shape[0]}"
        )
    if params.greedy:
        return verify_greedy(target_logits, proposed)
    return verify_sampling(probabilities(target_logits, params), proposed, draft_probs, generator)


def verify_greedy(target_logits: torch.Tensor, proposed: Sequence[int]) -> Verdict:
    """Keep proposed tokens while they equal the target's argmax; one host sync per step."""
    best: list[int] = target_logits.argmax(dim=-1).tolist()
    n = 0
    for token, target_token in zip(proposed, best[:-1], strict=True):
        if token != target_token:
            break
        n += 1
    return Verdict(n, [*proposed[:n], best[n]])


def verify_sampling(
    target_probs: torch.Tensor,
    proposed: Sequence[int],
    draft_probs: torch.Tensor | None,
    generator: torch.Generator | None = None,
) -> Verdict:
    """The speculative-sampling accept/reject rule on probabilities ``p`` (and ``q``)."""
    import torch

    k = len(proposed)
    if k == 0:
        return Verdict(0, [int(sample(target_probs[0], generator).item())])
    device = target_probs.device
    index = torch.tensor(list(proposed), device=device, dtype=torch.long)
    rows = torch.arange(k, device=device)
    p_x = target_probs[rows, index]
    if draft_probs is None:
        q_x = torch.ones_like(p_x)
    else:
        if tuple(draft_probs.shape) != (k, target_probs.shape[-1]):
            raise ValueError(
                f"draft_probs must have shape ({k}, {target_probs.shape[-1]}), "
                f"got {tuple(draft_probs.shape)}"
            )
        draft_probs = draft_probs.to(device=device, dtype=target_probs.dtype)
        q_x = draft_probs[rows, index]
    u = torch.rand(k, device=device, generator=generator, dtype=target_probs.dtype)
    # u < p/q  <=>  u * q < p (no division; q_x > 0 for a token the proposer actually drew).
    accepted = (u * q_x < p_x).tolist()
    n = accepted.index(False) if False in accepted else k
    if n == k:
        bonus = int(sample(target_probs[k], generator).item())
        return Verdict(k, [*proposed, bonus])
    p = target_probs[n]
    if draft_probs is None:
        residual = p.clone()
        residual[index[n]] = 0.0
    else:
        residual = (p - draft_probs[n]).clamp_(min=0.0)
    total = residual.sum()
    # A rejection implies p(x) < q(x), so the residual has positive mass; guard rounding anyway.
    residual = residual / total if float(total) > 0 else p
    correction = int(sample(residual, generator).item())
    return Verdict(n, [*proposed[:n], correction])
