"""The plugin proves it follows the sage-llm contract by subclassing the conformance suite."""

from typing import Any

from sage.llm import get_strategy
from sage.llm.testing import StrategyConformanceTests


class TestMyCustomStrategy(StrategyConformanceTests):
    strategy_name = "my-custom"
    valid_params = {"k": 3}
    # It takes **kwargs and checks nothing, so the suite skips the parameter checks (and says so).


class TestMyLookupStrategy(StrategyConformanceTests):
    strategy_name = "my-lookup"
    valid_params = {"k": 3}
    invalid_params = [{"k": 0}, {"k": "many"}, {"k": 16, "lookup": 1}]


def test_parameters_reach_the_engine_config() -> None:
    config: dict[str, Any] = {}
    get_strategy("my-custom", k=3, lookup=2).apply(config)
    assert config == {
        "speculative_config": {
            "method": "ngram",
            "num_speculative_tokens": 3,
            "prompt_lookup_max": 2,
        }
    }
    assert get_strategy("ml:k=2").to_string() == "my-lookup:k=2"
