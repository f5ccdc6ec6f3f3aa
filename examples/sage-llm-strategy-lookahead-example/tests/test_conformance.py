"""The plugin proves it follows the sage-llm contract by subclassing the conformance suite."""

from sage.llm import get_strategy
from sage.llm.testing import StrategyConformanceTests


class TestMyCustomStrategy(StrategyConformanceTests):
    strategy_name = "my-custom"
    valid_params = {"k": 3}


def test_parameters_reach_the_engine_config() -> None:
    config: dict = {}
    get_strategy("my-custom", k=3, lookup=2).apply(config)
    assert config == {
        "speculative_config": {
            "method": "ngram",
            "num_speculative_tokens": 3,
            "prompt_lookup_max": 2,
        }
    }
