"""dynamic-lookahead's proposer today: a fixed depth of max_tokens (adaptivity comes later)."""

from __future__ import annotations

import pytest

from sage.llm import get_strategy
from sage.llm.proposer import ProposerContext
from sage.llm.testing import ProposerConformanceTests


class TestDynamicProposerConformance(ProposerConformanceTests):
    strategy_name = "dynamic-lookahead"
    valid_params = {"min_tokens": 1, "max_tokens": 6, "prompt_lookup_max": 3}


def test_proposes_max_tokens_deep_by_ngram_lookup() -> None:
    pytest.importorskip("sage_llm_strategy_ngram", reason="the n-gram proposer is not installed")
    strategy = get_strategy("dynamic-lookahead", min_tokens=0, max_tokens=4)
    proposer = strategy.make_proposer(ProposerContext())
    proposer.start([1, 2, 3])
    context = [1, 2, 3, 4, 5, 6, 7, 1, 2]
    assert proposer.propose(context, 10).token_ids == [3, 4, 5, 6]
    assert proposer.propose(context, 2).token_ids == [3, 4]
