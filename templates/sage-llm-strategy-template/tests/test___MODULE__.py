"""Contract conformance of the ``__NAME__`` strategy and of its proposer.

The proposer checks run greedy generation on a tiny model and need torch and transformers
(`pip install 'sage-llm-core[transformers,testing]'`); without them they are skipped, and say so.
"""

from sage.llm.testing import ProposerConformanceTests, StrategyConformanceTests


class TestConformance(StrategyConformanceTests):
    strategy_name = "__NAME__"
    valid_params = {"num_speculative_tokens": 3}
    invalid_params = [{"num_speculative_tokens": 0}]


class TestProposerConformance(ProposerConformanceTests):
    strategy_name = "__NAME__"
    valid_params = {"num_speculative_tokens": 3, "prompt_lookup_max": 2}
