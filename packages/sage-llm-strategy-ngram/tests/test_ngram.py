"""The ngram strategy: contract conformance and the exact vLLM arguments it writes."""

from __future__ import annotations

import pytest

from sage.llm import InvalidParameterError, get_strategy
from sage.llm.testing import StrategyConformanceTests
from sage_llm_strategy_ngram import NgramStrategy


class TestNgramConformance(StrategyConformanceTests):
    strategy_name = "ngram"
    valid_params = {"n": 3, "num_speculative_tokens": 2}
    invalid_params = [
        {"n": 0},
        {"num_speculative_tokens": 0},
        {"num_speculative_tokens": "many"},
        {"n": 2, "prompt_lookup_min": 3},
        {"n": True},
    ]


def test_apply_writes_exactly_the_ngram_config() -> None:
    config: dict = {"model": "m"}
    get_strategy("ngram", n=5, num_speculative_tokens=4, prompt_lookup_min=2).apply(config)
    assert config == {
        "model": "m",
        "speculative_config": {
            "method": "ngram",
            "num_speculative_tokens": 4,
            "prompt_lookup_max": 5,
            "prompt_lookup_min": 2,
        },
    }


def test_seed_constructor_and_defaults() -> None:
    strategy = NgramStrategy(n=5, num_speculative_tokens=5)
    assert (strategy.n, strategy.num_speculative_tokens, strategy.prompt_lookup_min) == (5, 5, None)
    assert strategy.min_n == 2


@pytest.mark.parametrize(
    ("params", "min_n"), [({}, 2), ({"n": 1}, 1), ({"prompt_lookup_min": 1}, 1)]
)
def test_shortest_ngram_defaults_to_two_but_never_above_n(params: dict, min_n: int) -> None:
    strategy = NgramStrategy(**params)
    config: dict = {}
    strategy.apply(config)
    assert strategy.min_n == config["speculative_config"]["prompt_lookup_min"] == min_n


def test_string_form_parses_types() -> None:
    strategy = get_strategy("ngram:n=7,num_speculative_tokens=3")
    assert isinstance(strategy, NgramStrategy)
    assert (strategy.n, strategy.num_speculative_tokens) == (7, 3)


def test_range_error_names_parameter_and_bound() -> None:
    with pytest.raises(InvalidParameterError, match=r"ngram: parameter 'n' must be >= 1, got 0"):
        NgramStrategy(n=0)


def test_vllm_accepts_the_config() -> None:
    pytest.importorskip("vllm", reason="vLLM not installed: checked in the `vllm` nox session")
    from vllm.config import SpeculativeConfig

    config: dict = {}
    NgramStrategy(n=4, num_speculative_tokens=3, prompt_lookup_min=2).apply(config)
    parsed = SpeculativeConfig(**config["speculative_config"])
    assert (parsed.method, parsed.num_speculative_tokens) == ("ngram", 3)
    assert (parsed.prompt_lookup_min, parsed.prompt_lookup_max) == (2, 4)
