"""Everything this package takes from sage-llm's engine and from its sibling strategies.

Kept in one module on purpose: the proposer-author API of sage-llm is being gathered into one
public module, and when it lands only this module changes. The draft strategy (and torch) are
imported inside the functions that need them, so importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sage.llm.proposer import Proposal, Proposer, ProposerContext
from sage_llm_strategy_ngram.proposer import NgramProposer
from sage_llm_strategy_ngram.strategy import DEFAULT_LOOKUP_MIN

__all__ = [
    "DEFAULT_LOOKUP_MIN",
    "NgramProposer",
    "Proposal",
    "Proposer",
    "ProposerContext",
    "build_draft",
    "draft_until_unsure",
]


def build_draft(draft_model_id: str, max_tokens: int, context: ProposerContext) -> Any:
    """sage-llm-strategy-draft's draft-model proposer, ``max_tokens`` deep at most."""
    try:
        from sage_llm_strategy_draft.proposer import build_draft_proposer
    except ImportError as exc:
        raise ImportError(
            "dynamic-lookahead with draft_model_id runs the draft-model proposer of "
            "sage-llm-strategy-draft: pip install 'sage-llm-strategy-dynamic[draft]'"
        ) from exc
    return build_draft_proposer(draft_model_id, max_tokens, context)


def draft_until_unsure(
    draft: Any, context_ids: Sequence[int], k: int, threshold: float
) -> tuple[Proposal, list[float]]:
    """Draft up to ``k`` tokens, stopping after a token the draft gave less than ``threshold``.

    The draft-model proposer's own loop (same cache handling, same sampling), plus the early
    stop of SpecDec++ / transformers' ``assistant_confidence_threshold``. Whether token ``i+1``
    is drafted depends only on tokens ``<= i``, never on token ``i+1`` itself, so every kept
    token is still a draw from ``q`` and speculative sampling keeps the target's distribution.
    Returns the proposal and the draft's probability of each drafted token.
    """
    import torch

    from sage.llm.engines.transformers.sampling import probabilities

    if k <= 0:
        return Proposal([]), []
    if draft._cache is None:
        draft.start(context_ids)
    keep = draft._sync(context_ids)
    feed = list(context_ids[keep:])
    draft._seen = len(context_ids)
    greedy = draft.sampling.greedy
    tokens: list[int] = []
    confidence: list[float] = []
    rows: list[torch.Tensor] = []
    with torch.inference_mode():
        for i in range(k):
            logits = draft.model(
                input_ids=torch.tensor([feed], device=draft.device),
                **{draft._cache_kw: draft._cache},
                use_cache=True,
                logits_to_keep=1,
            ).logits[0, -1]
            draft._cached.extend(feed)
            q = probabilities(logits, draft.sampling)
            if greedy:
                token = int(logits.argmax().item())
            else:
                token = int(torch.multinomial(q, 1, generator=draft.generator).item())
                rows.append(q)
            p = float(q[token])
            tokens.append(token)
            confidence.append(p)
            if token in draft.eos_token_ids or i == k - 1 or p < threshold:
                break
            feed = [token]
    return Proposal(tokens, None if greedy else torch.stack(rows)), confidence
