"""Everything this package takes from outside itself, through public names only.

The proposer contract comes from :mod:`sage.llm.proposing` (sage-llm's plugin-author API); the
n-gram lookup from ``sage-llm-strategy-ngram`` (a declared dependency) and the draft model from
``sage-llm-strategy-draft`` (the ``[draft]`` extra), each through its package's public names,
as a third party's strategy would use them. The draft package (and torch) are imported only
when a draft model is asked for, so importing this module stays light.
"""

from __future__ import annotations

from typing import Any

from sage.llm.proposing import EarlyStoppingProposer, Proposal, Proposer, ProposerContext
from sage_llm_strategy_ngram import DEFAULT_LOOKUP_MIN, NgramProposer

__all__ = [
    "DEFAULT_LOOKUP_MIN",
    "EarlyStoppingProposer",
    "NgramProposer",
    "Proposal",
    "Proposer",
    "ProposerContext",
    "build_draft",
]


def build_draft(
    draft_model_id: str,
    max_tokens: int,
    context: ProposerContext,
    *,
    confidence_threshold: float = 0.0,
) -> Any:
    """sage-llm-strategy-draft's draft-model proposer, ``max_tokens`` deep at most, stopping
    early after a token the draft gave less than ``confidence_threshold``."""
    try:
        from sage_llm_strategy_draft import build_draft_proposer
    except ImportError as exc:
        raise ImportError(
            "dynamic-lookahead with draft_model_id runs the draft-model proposer of "
            "sage-llm-strategy-draft: pip install 'sage-llm-strategy-dynamic[draft]'"
        ) from exc
    return build_draft_proposer(
        draft_model_id, max_tokens, context, confidence_threshold=confidence_threshold
    )
