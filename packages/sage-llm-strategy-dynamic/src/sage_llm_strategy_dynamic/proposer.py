"""The dynamic-lookahead strategy's per-step proposer, as it is today: a fixed depth.

Honest status: the adaptive part (choosing k every step from recent acceptance, between
``min_tokens`` and ``max_tokens``) is not implemented yet. Today the proposer always allows
``max_tokens`` per step and reuses the n-gram proposer (or the draft-model proposer when
``draft_model_id`` is set), exactly what the static vLLM configuration of this strategy does
for a batch of one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sage.llm.proposer import Proposer, ProposerContext
    from sage_llm_strategy_dynamic.strategy import DynamicLookaheadStrategy


def build_proposer(strategy: DynamicLookaheadStrategy, context: ProposerContext) -> Proposer:
    """A fixed-depth proposer with ``k = max_tokens`` (see the module docstring)."""
    if strategy.draft_model_id is not None:
        try:
            from sage_llm_strategy_draft.proposer import build_draft_proposer
        except ImportError as exc:
            raise ImportError(
                "dynamic-lookahead with draft_model_id runs the draft-model proposer of "
                "sage-llm-strategy-draft: pip install 'sage-llm-strategy-dynamic[draft]'"
            ) from exc
        return build_draft_proposer(strategy.draft_model_id, strategy.max_tokens, context)
    from sage_llm_strategy_ngram.proposer import NgramProposer  # a declared dependency

    return NgramProposer(
        num_speculative_tokens=strategy.max_tokens,
        max_n=strategy.prompt_lookup_max,
        min_n=strategy.lookup_min,
    )
