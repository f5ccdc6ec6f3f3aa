"""Contract conformance of the ``__NAME__`` strategy."""

from sage.llm.testing import StrategyConformanceTests


class TestConformance(StrategyConformanceTests):
    strategy_name = "__NAME__"
    valid_params = {"num_speculative_tokens": 3}
    invalid_params = [{"num_speculative_tokens": 0}]
